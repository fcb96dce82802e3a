import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Middleware } from 'koa';

/**
 * The dashboard's Content-Security-Policy: scripts, styles and connections only from the daemon
 * itself, no inline script or style, no framing, no form posts, no <base> rewriting.
 */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': DASHBOARD_CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/** Hashed asset names are immutable; index.html must be revalidated so a new build is picked up. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';
export const REVALIDATE = 'no-cache';

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
  cacheControl: string;
}

/**
 * Where the bundle is: `dist/web` next to the compiled `dist/api` (a build), or `<root>/dist/web`
 * when running from source (`api/` next to `dist/`). `node web/build.mjs` produces it.
 */
export function defaultDashboardDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '..', 'web'), path.resolve(here, '..', 'dist', 'web')];
  return candidates.find((dir) => existsSync(path.join(dir, 'index.html'))) ?? (candidates[1] as string);
}

const etagOf = (body: Buffer): string => `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;

/**
 * Serves the dashboard (built by `node web/build.mjs`) from the daemon: `/` and `/index.html`
 * (no-cache), `/assets/<hashed name>` (a year, immutable). Everything it serves is static —
 * no tenant data; the page reads the API with the user's token. Every response carries the CSP.
 * Files are read once into memory and re-read when index.html changes (a new build).
 */
export function serveDashboard(opts: { dir?: string } = {}): Middleware {
  let dir: string | null = opts.dir ?? null;
  let files = new Map<string, StaticFile>();
  let indexMtime = -1;

  const load = async (): Promise<void> => {
    dir ??= defaultDashboardDir();
    let stat;
    try {
      stat = await fsp.stat(path.join(dir, 'index.html'));
    } catch {
      files = new Map();
      indexMtime = -1;
      if (!opts.dir) dir = null; // look again next time (a build may appear)
      return;
    }
    if (stat.mtimeMs === indexMtime) return;
    const next = new Map<string, StaticFile>();
    const add = async (urlPath: string, file: string, cacheControl: string): Promise<void> => {
      const type = TYPES[path.extname(file)];
      if (!type) return;
      const body = await fsp.readFile(file);
      next.set(urlPath, { body, type, etag: etagOf(body), cacheControl });
    };
    await add('/', path.join(dir, 'index.html'), REVALIDATE);
    const assets = path.join(dir, 'assets');
    const names = await fsp.readdir(assets).catch(() => [] as string[]);
    for (const name of names) await add(`/assets/${name}`, path.join(assets, name), IMMUTABLE);
    files = next;
    indexMtime = stat.mtimeMs;
  };

  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    const p = ctx.path === '/index.html' ? '/' : ctx.path;
    if (p !== '/' && !p.startsWith('/assets/')) return next();
    await load();
    const file = files.get(p);
    for (const [h, v] of Object.entries(SECURITY_HEADERS)) ctx.set(h, v);
    if (!file) {
      if (p === '/') {
        ctx.status = 503;
        ctx.type = 'text/plain; charset=utf-8';
        ctx.set('Cache-Control', 'no-store');
        ctx.body = 'The dashboard is not built: run `npm run build` (or `node web/build.mjs`).\n';
        return;
      }
      return next(); // an unknown asset: the API's 404 problem document
    }
    ctx.set('Cache-Control', file.cacheControl);
    ctx.set('ETag', file.etag);
    ctx.type = file.type;
    ctx.status = 200;
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.body = file.body;
  };
}
