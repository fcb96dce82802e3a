import { createHash } from 'node:crypto';
import type { Middleware } from 'koa';
import statusSchema from '../schemas/status.schema.json' with { type: 'json' };
import tenantSchema from '../schemas/tenant.schema.json' with { type: 'json' };
import transitionSchema from '../schemas/transition.schema.json' with { type: 'json' };

/** The registered media type of a JSON Schema (JSON Schema 2020-12, section 14). */
export const SCHEMA_MEDIA_TYPE = 'application/schema+json';
/** Schemas change only with a tenantd upgrade; the ETag makes a revalidation cheap after that. */
export const SCHEMA_CACHE_CONTROL = 'public, max-age=3600';

const SCHEMAS: Readonly<Record<string, unknown>> = {
  'tenant.schema.json': tenantSchema,
  'status.schema.json': statusSchema,
  'transition.schema.json': transitionSchema,
};

/**
 * `GET /schemas/<name>.schema.json`: the JSON Schemas this tenantd validates with, public (no
 * token: they hold no tenant data), cacheable and readable from any origin, so an editor's
 * yaml-language-server (`# yaml-language-server: $schema=http://<host>:8089/schemas/tenant.schema.json`)
 * or a CI job can fetch the exact catalogs of the running version.
 */
export function serveSchemas(): Middleware {
  const files = new Map(
    Object.entries(SCHEMAS).map(([name, doc]) => {
      const body = Buffer.from(`${JSON.stringify(doc, null, 2)}\n`);
      return [`/schemas/${name}`, { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` }];
    }),
  );
  return async (ctx, next) => {
    const file = ctx.method === 'GET' || ctx.method === 'HEAD' ? files.get(ctx.path) : undefined;
    if (!file) return next();
    ctx.set('Cache-Control', SCHEMA_CACHE_CONTROL);
    ctx.set('ETag', file.etag);
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.type = SCHEMA_MEDIA_TYPE;
    ctx.status = 200;
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.body = file.body;
  };
}
