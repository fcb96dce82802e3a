import Koa from 'koa';
import Router, { type RouterContext, type RouterMiddleware } from '@koa/router';
import { TenantdError } from '../core/errors.js';
import { STATUSES } from '../core/phases.js';
import { DEFAULT_BODY_LIMIT, readRawBody } from './body.js';
import type { DaemonMetrics } from './metrics.js';
import { IdempotencyStore, type StoredResponse } from './idempotency.js';
import { openApiDocument } from './openapi.js';
import { apiError, problemOf } from './problem.js';
import { assertTenantId, newRequestId, type TenantInfrastructureService } from './service.js';
import type { EventStreamHub } from './sse.js';
import { serveSchemas } from './schemas.js';
import { serveDashboard } from './static.js';

export const API_PREFIX = '/api/v1';
export type ApiScope = 'tenants:read' | 'tenants:write' | 'tenants:delete' | 'admin';

export interface ApiPrincipal {
  name: string;
  scopes: readonly string[];
}

export interface ApiAuthenticator {
  authenticate(authorization: string | undefined): Promise<ApiPrincipal>;
}

export interface WebhookDeliveryInfo {
  provider: string;
  deliveryId: string;
  event: 'push' | 'ping' | 'other';
  branch: string | null;
  after: string | null;
}

export interface WebhookHandler<D extends WebhookDeliveryInfo = WebhookDeliveryInfo> {
  /** Verifies the signature over the raw body, then parses the delivery (throws coded errors). */
  verify(provider: string, headers: Record<string, string | string[] | undefined>, rawBody: Buffer): D;
  /** True if this delivery was seen before (and records it otherwise). */
  seen(delivery: D): Promise<boolean>;
  /** A push the daemon should act on (its tracked branch). */
  relevant(delivery: D): boolean;
  /** Fetch and reconcile now. */
  onPush(delivery: D): void;
  branch: string;
}

export interface ApiDeps {
  service: TenantInfrastructureService;
  auth: ApiAuthenticator;
  events: EventStreamHub;
  metrics: DaemonMetrics;
  idempotency: IdempotencyStore;
  /** Readiness: the repository (and provider backend) can be reached. */
  ready: () => boolean | Promise<boolean>;
  /** Under leader election: this replica's role, shown by /readyz. */
  role?: () => { role: 'leader' | 'standby'; identity: string; leader: string | null };
  /** Why the repository cannot be acted on (tracked branch gone, invalid layout): shown by /readyz. */
  problem?: () => { code: string; message: string } | null;
  webhooks?: WebhookHandler;
  bodyLimit?: number;
  /** Where unexpected errors are logged (with the request id); never sent to the caller. */
  logError?: (requestId: string, err: unknown) => void;
}

interface State {
  requestId: string;
  principal?: ApiPrincipal;
}

type Ctx = RouterContext<State>;

const hasScope = (p: ApiPrincipal, scope: ApiScope): boolean => p.scopes.includes(scope) || p.scopes.includes('admin');

/**
 * `createApp(deps)`: the REST API as a Koa app, testable in memory. One error middleware first
 * turns every error into a problem document; writes go through the TenantInfrastructureService,
 * which turns them into commits.
 */
export function createApp(deps: ApiDeps): Koa<State> & { routes: RouteInfo[] } {
  const app = new Koa<State>();
  // A client closing an event stream is not an error worth a log line; anything else is.
  app.on('error', (err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    deps.logError?.('-', err);
  });
  const limit = deps.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const router = new Router<State>();

  // Outermost, so it times the whole request and sees the final status (problems included).
  app.use(async (ctx, next) => {
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      deps.metrics.observeRequest({ method: ctx.method, route: routeLabel(ctx), code: ctx.status, seconds });
    }
  });

  app.use(async (ctx, next) => {
    const incoming = ctx.get('X-Request-Id');
    ctx.state.requestId = /^[A-Za-z0-9._-]{1,128}$/.test(incoming) ? incoming : newRequestId();
    ctx.set('X-Request-Id', ctx.state.requestId);
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw apiError('E_NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
    } catch (err: unknown) {
      const problem = problemOf(err, ctx.state.requestId);
      if (problem.status >= 500) deps.logError?.(ctx.state.requestId, err);
      if (problem.code === 'E_AUTH_MISSING' || problem.code === 'E_AUTH_INVALID') ctx.set('WWW-Authenticate', 'Bearer realm="tenantd"');
      if (problem.status === 503) ctx.set('Retry-After', '5');
      ctx.status = problem.status;
      ctx.type = 'application/problem+json';
      ctx.body = problem;
    }
  });

  const requireScope =
    (scope: ApiScope): RouterMiddleware<State> =>
    async (ctx, next) => {
      const principal = await deps.auth.authenticate(ctx.get('Authorization') || undefined);
      if (!hasScope(principal, scope)) throw apiError('E_FORBIDDEN_SCOPE', `this call needs the ${scope} scope`, { scope });
      ctx.state.principal = principal;
      await next();
    };

  const caller = (ctx: Ctx): { name: string; requestId: string } => ({ name: ctx.state.principal?.name ?? 'anonymous', requestId: ctx.state.requestId });

  /** Runs a write, honouring Idempotency-Key. */
  const write = async (ctx: Ctx, rawBody: Buffer, fn: () => Promise<StoredResponse>): Promise<void> => {
    const key = ctx.get('Idempotency-Key');
    let response: StoredResponse & { replayed?: boolean };
    if (key) {
      if (key.length > 255) throw apiError('E_BAD_REQUEST', 'Idempotency-Key is longer than 255 characters');
      response = await deps.idempotency.run(IdempotencyStore.scope(caller(ctx).name, ctx.method, ctx.path, key), rawBody, fn);
      if (response.replayed) ctx.set('Idempotent-Replayed', 'true');
    } else {
      response = await fn();
    }
    ctx.status = response.status;
    for (const [h, v] of Object.entries(response.headers)) ctx.set(h, v);
    ctx.body = response.body;
  };

  const tenantUrl = (id: string): string => `${API_PREFIX}/infrastructure/tenants/${id}`;
  const intParam = (ctx: Ctx, name: string, dflt: number, max: number): number => {
    const raw = ctx.query[name];
    if (raw === undefined) return dflt;
    const v = Array.isArray(raw) ? raw[0] : raw;
    if (!v || !/^\d+$/.test(v) || Number(v) > max) throw apiError('E_BAD_QUERY', `${name} must be a whole number from 0 to ${max}`, { errors: [{ path: name, message: `0..${max}` }] });
    return Number(v);
  };
  const strParam = (ctx: Ctx, name: string): string | undefined => {
    const raw = ctx.query[name];
    return Array.isArray(raw) ? raw[0] : raw;
  };

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const ok = await deps.ready();
    const problem = deps.problem?.() ?? null;
    ctx.status = ok ? 200 : 503;
    const role = deps.role?.();
    ctx.body = { ready: ok, ...(role ? { role } : {}), ...(problem ? { problem: { code: problem.code, message: problem.message } } : {}) };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  router.get('/openapi.json', (ctx) => {
    ctx.body = openApiDocument();
  });

  const T = `${API_PREFIX}/infrastructure/tenants`;
  router.get(T, requireScope('tenants:read'), (ctx) => {
    const status = strParam(ctx, 'status');
    if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) {
      throw apiError('E_BAD_QUERY', `status must be one of ${STATUSES.join(', ')}`, { errors: [{ path: 'status', message: 'unknown status' }] });
    }
    const limit = intParam(ctx, 'limit', 50, 500);
    const after = strParam(ctx, 'after');
    const q = strParam(ctx, 'q')?.slice(0, 128);
    const page = deps.service.list({ ...(status ? { status } : {}), ...(q ? { q } : {}), limit: Math.max(1, limit), ...(after ? { after } : {}) });
    const nextQuery = { ...(status ? { status } : {}), ...(q ? { q } : {}), limit: String(limit) };
    ctx.body = { items: page.items, total: page.total, counts: page.counts, next: page.next ? `${T}?${new URLSearchParams({ ...nextQuery, after: page.next })}` : null };
  });

  router.post(`${T}/:tenantId/provision`, requireScope('tenants:write'), async (ctx) => {
    const id = ctx.params.tenantId as string;
    const raw = await readRawBody(ctx.req, limit);
    const body = parseJson(ctx, raw, ['application/json']);
    await write(ctx, raw, async () => {
      const result = await deps.service.provision(id, body, caller(ctx));
      return {
        status: 202,
        body: { requestId: ctx.state.requestId, commit: result.commit, tenant: result.entity },
        headers: { Location: tenantUrl(id), ETag: result.etag },
      };
    });
  });

  router.get(`${T}/:tenantId`, requireScope('tenants:read'), async (ctx) => {
    const id = ctx.params.tenantId as string;
    const found = await deps.service.get(id);
    if (!found) throw apiError('E_TENANT_NOT_FOUND', `no tenant ${id}`, { tenantId: id });
    if (found.etag) ctx.set('ETag', found.etag);
    ctx.body = found.entity;
  });

  router.put(`${T}/:tenantId`, requireScope('tenants:write'), async (ctx) => {
    const id = ctx.params.tenantId as string;
    const raw = await readRawBody(ctx.req, limit);
    const body = parseJson(ctx, raw, ['application/json', 'application/merge-patch+json']);
    const ifMatch = ctx.headers['if-match'];
    await write(ctx, raw, async () => {
      const result = await deps.service.update(id, body, ifMatch, caller(ctx));
      return { status: 202, body: { requestId: ctx.state.requestId, commit: result.commit, tenant: result.entity }, headers: { ETag: result.etag, Location: tenantUrl(id) } };
    });
  });

  router.delete(`${T}/:tenantId`, requireScope('tenants:delete'), async (ctx) => {
    const id = ctx.params.tenantId as string;
    const ifMatch = ctx.headers['if-match'];
    await write(ctx, Buffer.from(ctx.querystring), async () => {
      const result = await deps.service.remove(id, strParam(ctx, 'confirm'), ifMatch, caller(ctx));
      return { status: 202, body: { requestId: ctx.state.requestId, commit: result.commit, tenant: result.entity }, headers: { Location: tenantUrl(id) } };
    });
  });

  router.get(`${T}/:tenantId/transitions`, requireScope('tenants:read'), async (ctx) => {
    const id = ctx.params.tenantId as string;
    const offset = intParam(ctx, 'offset', 0, Number.MAX_SAFE_INTEGER);
    const lim = intParam(ctx, 'limit', 100, 1000);
    const page = await deps.service.transitions(id, { offset, limit: lim });
    ctx.body = { items: page.items, total: page.total, offset, limit: lim };
  });

  router.get(`${T}/:tenantId/desired`, requireScope('tenants:read'), async (ctx) => {
    ctx.body = await deps.service.desired(ctx.params.tenantId as string);
  });

  router.post(`${T}/:tenantId/reconcile`, requireScope('tenants:write'), async (ctx) => {
    const id = ctx.params.tenantId as string;
    const raw = await readRawBody(ctx.req, limit);
    const body = raw.length > 0 ? parseJson(ctx, raw, ['application/json']) : undefined;
    const { requestedAt } = await deps.service.reconcile(id, body, caller(ctx));
    ctx.status = 202;
    ctx.body = { requestId: ctx.state.requestId, tenantId: id, trigger: `api:${ctx.state.requestId}`, requestedAt };
  });

  router.get(`${API_PREFIX}/deletions`, requireScope('tenants:read'), (ctx) => {
    ctx.body = { hold: deps.service.deletionHold() };
  });

  router.post(`${API_PREFIX}/deletions/approve`, requireScope('tenants:delete'), async (ctx) => {
    const raw = await readRawBody(ctx.req, limit);
    const body = parseJson(ctx, raw, ['application/json']);
    await write(ctx, raw, async () => {
      const result = await deps.service.approveDeletions(body, caller(ctx));
      return { status: 202, body: { requestId: ctx.state.requestId, commit: result.commit, approved: result.tenants.length, tenants: result.tenants, trigger: result.trigger }, headers: {} };
    });
  });

  router.post(`${T}/:tenantId/approve`, requireScope('tenants:write'), async (ctx) => {
    const id = ctx.params.tenantId as string;
    const raw = await readRawBody(ctx.req, limit);
    const body = parseJson(ctx, raw, ['application/json']);
    const mayDelete = hasScope(ctx.state.principal as ApiPrincipal, 'tenants:delete');
    await write(ctx, raw, async () => {
      const result = deps.service.approvePlan(id, body, caller(ctx), mayDelete);
      return { status: 202, body: { requestId: ctx.state.requestId, ...result }, headers: { Location: tenantUrl(id) } };
    });
  });

  router.get(`${API_PREFIX}/events`, requireScope('tenants:read'), (ctx) => {
    const tenant = strParam(ctx, 'tenant') ?? null;
    if (tenant !== null) assertTenantId(tenant);
    const lastRaw = ctx.get('Last-Event-ID') || strParam(ctx, 'lastEventId');
    const lastEventId = lastRaw && /^\d+$/.test(lastRaw) ? Number(lastRaw) : null;
    const socket = ctx.req.socket;
    const { stream, close } = deps.events.open({ tenant, lastEventId, principal: ctx.state.principal?.name ?? 'anonymous', onDrop: () => socket.destroy() });
    ctx.req.on('close', close);
    ctx.req.socket.setTimeout(0);
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('X-Accel-Buffering', 'no');
    ctx.type = 'text/event-stream';
    ctx.status = 200;
    ctx.body = stream;
  });

  router.post(`${API_PREFIX}/webhooks/:provider`, async (ctx) => {
    const hooks = deps.webhooks;
    if (!hooks) throw apiError('E_WEBHOOK_PROVIDER', 'webhooks are not configured (set --webhook-secret)');
    const provider = ctx.params.provider as string;
    const raw = await readRawBody(ctx.req, Math.max(limit, 1024 * 1024));
    const delivery = hooks.verify(provider, ctx.headers, raw);
    ctx.status = 200;
    if (await hooks.seen(delivery)) {
      ctx.body = { status: 'duplicate', deliveryId: delivery.deliveryId };
    } else if (delivery.event !== 'push') {
      ctx.body = { status: delivery.event === 'ping' ? 'pong' : 'ignored', deliveryId: delivery.deliveryId };
    } else if (!hooks.relevant(delivery)) {
      ctx.body = { status: 'ignored', reason: `push to ${delivery.branch ?? 'unknown ref'}, tracking ${hooks.branch}`, deliveryId: delivery.deliveryId };
    } else {
      hooks.onPush(delivery);
      ctx.status = 202;
      ctx.body = { status: 'accepted', deliveryId: delivery.deliveryId, trigger: `webhook:${delivery.deliveryId}` };
    }
  });

  app.use(serveDashboard());
  app.use(serveSchemas());
  app.use(router.routes());
  app.use(
    router.allowedMethods({
      throw: true,
      methodNotAllowed: () => apiError('E_METHOD_NOT_ALLOWED', 'method not allowed on this route'),
      notImplemented: () => apiError('E_METHOD_NOT_ALLOWED', 'method not implemented'),
    }),
  );
  const routes = router.stack.flatMap((layer) =>
    layer.methods.filter((m) => m !== 'HEAD').map((method) => ({ method, path: String(layer.path).replace(/:([A-Za-z]+)/g, '{$1}') })),
  );
  return Object.assign(app, { routes });
}

/** The route template a request matched (`/api/v1/infrastructure/tenants/:tenantId`), never its raw path. */
function routeLabel(ctx: Koa.Context): string {
  const matched = (ctx as Koa.Context & { _matchedRoute?: string | RegExp })._matchedRoute;
  if (typeof matched === 'string') return matched;
  if (ctx.status === 404 || ctx.status === 405) return 'unmatched';
  return ctx.path.startsWith('/schemas/') ? '/schemas/:file' : 'dashboard';
}

function parseJson(ctx: Ctx, raw: Buffer, accepted: readonly string[]): unknown {
  const type = (ctx.get('Content-Type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!accepted.includes(type)) {
    throw new TenantdError('E_UNSUPPORTED_MEDIA_TYPE', 'stalled', `Content-Type must be ${accepted.join(' or ')}${type ? `, not ${type}` : ''}`, { accepted });
  }
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw apiError('E_BAD_JSON', 'the body is not valid JSON');
  }
}

export interface RouteInfo {
  method: string;
  /** In OpenAPI syntax: `/api/v1/infrastructure/tenants/{tenantId}`. */
  path: string;
}
