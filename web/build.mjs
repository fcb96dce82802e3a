// Bundles the dashboard (web/src) into dist/web: index.html plus content-hashed assets, so the
// daemon can serve the assets with a year-long immutable cache and index.html with no-cache.
// Usage: node web/build.mjs [--outdir <dir>]
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const argOut = process.argv.indexOf('--outdir');
const outdir = path.resolve(argOut > 0 && process.argv[argOut + 1] ? process.argv[argOut + 1] : path.join(root, 'dist', 'web'));
// Built next to the target and swapped in, so a running daemon never sees half a build.
const staging = `${outdir}.tmp-${process.pid}`;

const sha = (buf, alg = 'sha256') => createHash(alg).update(buf).digest();
const hashName = (name, buf) => {
  const ext = path.extname(name);
  return `${path.basename(name, ext)}-${sha(buf).toString('hex').slice(0, 12)}${ext}`;
};
const sri = (buf) => `sha384-${sha(buf, 'sha384').toString('base64')}`;

const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#161b26"/>' +
  '<path d="M8 10h16M16 10v14" stroke="#3ddc84" stroke-width="4" stroke-linecap="round"/></svg>\n';

async function main() {
  const started = Date.now();
  await fsp.rm(staging, { recursive: true, force: true });
  const assets = path.join(staging, 'assets');
  await fsp.mkdir(assets, { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { app: 'web/src/main.tsx' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome111', 'firefox115', 'safari16.4'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: 'web/tsconfig.json',
    minify: true,
    sourcemap: 'linked',
    legalComments: 'none',
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    outdir: assets,
    metafile: true,
    write: true,
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => path.resolve(root, p));
  const js = outputs.find((p) => p.endsWith('.js'));
  const css = outputs.find((p) => p.endsWith('.css'));
  if (!js || !css) throw new Error(`expected one .js and one .css output, got ${outputs.join(', ')}`);

  const favicon = Buffer.from(FAVICON);
  const faviconName = hashName('favicon.svg', favicon);
  await fsp.writeFile(path.join(assets, faviconName), favicon);

  const url = (file) => `/assets/${path.basename(file)}`;
  const template = await fsp.readFile(path.join(here, 'src', 'index.html'), 'utf8');
  const html = template
    .replace('%JS%', url(js))
    .replace('%JS_SRI%', sri(await fsp.readFile(js)))
    .replace('%CSS%', url(css))
    .replace('%CSS_SRI%', sri(await fsp.readFile(css)))
    .replace('%FAVICON%', `/assets/${faviconName}`);
  if (html.includes('%')) throw new Error('index.html template has an unreplaced placeholder');
  await fsp.writeFile(path.join(staging, 'index.html'), html);

  await fsp.mkdir(path.dirname(outdir), { recursive: true });
  const old = `${outdir}.old-${process.pid}`;
  await fsp.rename(outdir, old).catch(() => undefined);
  await fsp.rename(staging, outdir);
  await fsp.rm(old, { recursive: true, force: true });
  const files = await fsp.readdir(path.join(outdir, 'assets'));
  console.log(`web: ${path.relative(root, outdir) || outdir}/ (${files.join(', ')}) in ${Date.now() - started} ms`);
}

main().catch(async (err) => {
  await fsp.rm(staging, { recursive: true, force: true });
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
