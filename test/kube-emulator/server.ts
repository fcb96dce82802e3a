/**
 * The HTTP side: routing of Kubernetes REST paths, authentication, the request log, fault
 * injection, unreachable mode, list paging and watch streams. Semantics live in the registry.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import {
  badRequest,
  failureStatus,
  KubeStatusError,
  methodNotAllowed,
  resourceNotFound,
  statusForCode,
  unsupportedMediaType,
} from './errors.js';
import { isObject, str, toJson, type JsonObject, type JsonValue, type KubeObject } from './json.js';
import {
  apiGroupDocument,
  apiGroupListDocument,
  apiResourceListDocument,
  apiVersionOf,
  apiVersionsDocument,
  findByResource,
  hasGroupVersion,
  type KindInfo,
  type Subresource,
} from './kinds.js';
import type { PatchType, Registry } from './registry.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import type { ObjectStore, StoreEvent } from './store.js';
import type { Fault, RecordedRequest } from './traffic.js';

const MAX_BODY_BYTES = 3 * 1024 * 1024;

export const SERVER_VERSION: JsonObject = {
  major: '1',
  minor: '31',
  gitVersion: 'v1.31.0-tenantd-emulator',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2024-08-13T00:00:00Z',
  goVersion: 'go1.22.5',
  compiler: 'gc',
  platform: 'linux/amd64',
};

export interface ServerState {
  /** The bearer token every request must carry; undefined disables authentication. */
  token: string | undefined;
  unreachable: false | 'drop' | '503';
  faults: Fault[];
  requests: RecordedRequest[];
}

type Route =
  | { type: 'document'; body: JsonObject }
  | { type: 'health' }
  | { type: 'collection'; info: KindInfo; namespace: string | undefined }
  | { type: 'object'; info: KindInfo; namespace: string | undefined; name: string; subresource: Subresource | undefined };

function isNamespaceSubresource(rest: string[]): boolean {
  return rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize');
}

function resourceRoute(info: KindInfo | undefined, namespace: string | undefined, rest: string[]): Route | undefined {
  if (!info) return undefined;
  if (namespace !== undefined && !info.namespaced) return undefined;
  if (rest.length === 0) return { type: 'collection', info, namespace };
  const [name, sub, ...extra] = rest;
  if (name === undefined || extra.length > 0) return undefined;
  if (namespace === undefined && info.namespaced) return undefined;
  if (sub !== undefined && !info.subresources.includes(sub as Subresource)) return undefined;
  return { type: 'object', info, namespace, name, subresource: sub as Subresource | undefined };
}

/** Maps a URL path to what it names. */
export function route(pathname: string, serverAddress: string): Route | undefined {
  const segs = pathname.split('/').filter((s) => s.length > 0).map((s) => decodeURIComponent(s));
  const [first] = segs;
  if (segs.length === 1 && first === 'version') return { type: 'document', body: SERVER_VERSION };
  if (segs.length === 1 && (first === 'healthz' || first === 'readyz' || first === 'livez')) return { type: 'health' };
  if (segs.length === 1 && first === 'api') return { type: 'document', body: apiVersionsDocument(serverAddress) };
  if (segs.length === 1 && first === 'apis') return { type: 'document', body: apiGroupListDocument() };
  let group: string;
  let version: string | undefined;
  let rest: string[];
  if (first === 'api') {
    group = '';
    version = segs[1];
    rest = segs.slice(2);
  } else if (first === 'apis') {
    group = segs[1] ?? '';
    if (segs.length === 2) {
      const doc = apiGroupDocument(group);
      return doc ? { type: 'document', body: doc } : undefined;
    }
    version = segs[2];
    rest = segs.slice(3);
  } else {
    return undefined;
  }
  if (version === undefined || !hasGroupVersion(group, version)) return undefined;
  if (rest.length === 0) {
    const doc = apiResourceListDocument(group, version);
    return doc ? { type: 'document', body: doc } : undefined;
  }
  if (rest[0] === 'namespaces' && rest.length >= 3 && !isNamespaceSubresource(rest)) {
    const namespace = rest[1];
    const plural = rest[2] ?? '';
    return resourceRoute(findByResource(group, version, plural), namespace, rest.slice(3));
  }
  return resourceRoute(findByResource(group, version, rest[0] ?? ''), undefined, rest.slice(1));
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function decodeBody(raw: string, contentType: string | undefined): JsonValue | undefined {
  if (raw.trim() === '') return undefined;
  const type = mediaType(contentType);
  try {
    if (type === 'application/yaml' || type === 'application/apply-patch+yaml') return toJson(parseYaml(raw));
    return JSON.parse(raw) as JsonValue;
  } catch (err: unknown) {
    const why = err instanceof Error ? err.message : String(err);
    throw badRequest(`the body of the request could not be decoded as ${type || 'JSON'}: ${why}`);
  }
}

function bodyForLog(raw: string, contentType: string | undefined): unknown {
  try {
    return decodeBody(raw, contentType);
  } catch {
    return raw;
  }
}

/** Continue tokens are opaque to clients; here they hold the offset of the next page. */
function parseContinue(token: string | null): number {
  if (!token) return 0;
  try {
    const decoded: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (typeof decoded === 'object' && decoded !== null && 'start' in decoded && typeof decoded.start === 'number') return decoded.start;
  } catch {
    // fall through
  }
  throw badRequest('continue key is not valid');
}

function stripTypeMeta(obj: KubeObject): JsonObject {
  const { apiVersion: _a, kind: _k, ...rest } = obj;
  return rest;
}

function successStatus(info: KindInfo, obj: KubeObject): JsonObject {
  const details: JsonObject = { name: String(obj.metadata.name) };
  if (info.group) details.group = info.group;
  details.kind = info.plural;
  if (typeof obj.metadata.uid === 'string') details.uid = obj.metadata.uid;
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details };
}

function patchOptionsInvalid(field: string, reason: string, detail: string): KubeStatusError {
  return new KubeStatusError(422, 'Invalid', `PatchOptions.meta.k8s.io "" is invalid: ${field}: ${detail}`, {
    group: 'meta.k8s.io',
    kind: 'PatchOptions',
    causes: [{ reason, message: detail, field }],
  });
}

export class KubeHttpServer {
  private readonly server: http.Server;
  private readonly watches = new Set<http.ServerResponse>();
  private nextRequestId = 1;
  private address = '127.0.0.1:0';

  constructor(
    private readonly store: ObjectStore,
    private readonly registry: Registry,
    private readonly state: ServerState,
  ) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.send(res, 500, failureStatus(500, 'InternalError', String(err)));
        else res.destroy();
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = this.server.address() as AddressInfo;
    this.address = `127.0.0.1:${port}`;
    return `http://${this.address}`;
  }

  async close(): Promise<void> {
    for (const res of this.watches) res.end();
    this.watches.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = (req.method ?? 'GET').toUpperCase();
    const contentType = req.headers['content-type'];
    const record: RecordedRequest = {
      id: this.nextRequestId++,
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType,
      fieldManager: url.searchParams.get('fieldManager') ?? undefined,
      dryRun: url.searchParams.getAll('dryRun').length > 0,
      body: undefined,
      status: 0,
      injected: false,
    };
    this.state.requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });

    if (this.state.unreachable === 'drop') {
      req.socket.destroy();
      return;
    }
    const raw = await this.readBody(req);
    if (raw === undefined) {
      this.sendError(res, new KubeStatusError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728'));
      return;
    }
    record.body = bodyForLog(raw, contentType);
    if (this.state.unreachable === '503') {
      this.sendError(res, statusForCode(503));
      return;
    }
    if (this.state.token !== undefined && req.headers.authorization !== `Bearer ${this.state.token}`) {
      this.send(res, 401, failureStatus(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const fault = this.state.faults.find((f) => f.matches(record));
    if (fault) {
      fault.fire();
      record.injected = true;
      if (fault.options.drop) {
        req.socket.destroy();
        return;
      }
      const err = statusForCode(fault.status, fault.options.message);
      this.sendError(res, fault.options.reason ? new KubeStatusError(err.code, fault.options.reason, err.message, err.details) : err);
      return;
    }
    try {
      await this.dispatch(req, res, url, method, raw, contentType);
    } catch (err: unknown) {
      if (err instanceof KubeStatusError) this.sendError(res, err);
      else throw err;
    }
  }

  private readBody(req: http.IncomingMessage): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) tooLarge = true;
        else chunks.push(chunk);
      });
      req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  private async dispatch(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    method: string,
    raw: string,
    contentType: string | undefined,
  ): Promise<void> {
    const r = route(url.pathname, this.address);
    if (!r) throw resourceNotFound();
    if (r.type === 'health') {
      if (method !== 'GET') throw methodNotAllowed();
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('ok');
      return;
    }
    if (r.type === 'document') {
      if (method !== 'GET') throw methodNotAllowed();
      this.send(res, 200, r.body);
      return;
    }
    const q = url.searchParams;
    const dryRunValues = q.getAll('dryRun');
    for (const v of dryRunValues) {
      if (v !== 'All') throw badRequest(`dryRun: Unsupported value: "${v}": supported values: "All"`);
    }
    const userAgent = req.headers['user-agent'] ?? 'unknown';
    const write = {
      manager: q.get('fieldManager') ?? (userAgent.split('/')[0] || 'unknown'),
      dryRun: dryRunValues.length > 0,
    };
    const { info, namespace } = r;

    if (r.type === 'collection') {
      switch (method) {
        case 'GET':
          if (q.get('watch') === 'true' || q.get('watch') === '1') this.watch(req, res, info, namespace, q);
          else this.sendList(res, info, namespace, q);
          return;
        case 'POST': {
          if (info.namespaced && namespace === undefined) throw methodNotAllowed();
          const body = decodeBody(raw, contentType) ?? null;
          this.send(res, 201, this.registry.create(info, namespace, body, write));
          return;
        }
        case 'DELETE': {
          if (info.namespaced && namespace === undefined) throw methodNotAllowed();
          this.registry.deleteCollection(info, namespace, this.selectors(q), { dryRun: write.dryRun });
          this.send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' });
          return;
        }
        default:
          throw methodNotAllowed();
      }
    }

    const { name, subresource } = r;
    if (subresource === 'finalize') {
      if (method !== 'PUT') throw methodNotAllowed();
      this.send(res, 200, this.registry.finalizeNamespace(name, decodeBody(raw, contentType) ?? null, write));
      return;
    }
    const scope = subresource === 'status' ? 'status' : '';
    switch (method) {
      case 'GET':
        this.send(res, 200, this.registry.get(info, namespace, name));
        return;
      case 'PUT':
        this.send(res, 200, this.registry.replace(info, namespace, name, decodeBody(raw, contentType) ?? null, write, scope));
        return;
      case 'PATCH':
        this.patch(res, info, namespace, name, scope, raw, contentType, q, write);
        return;
      case 'DELETE': {
        if (subresource) throw methodNotAllowed();
        const options = decodeBody(raw, contentType);
        const preconditions = isObject(options) && isObject(options.preconditions) ? options.preconditions : undefined;
        const bodyDryRun = isObject(options) && Array.isArray(options.dryRun) && options.dryRun.includes('All');
        const result = this.registry.delete(info, namespace, name, {
          dryRun: write.dryRun || bodyDryRun,
          preconditions: preconditions
            ? { uid: str(preconditions.uid), resourceVersion: str(preconditions.resourceVersion) }
            : undefined,
        });
        this.send(res, 200, result.deleted ? successStatus(info, result.object) : result.object);
        return;
      }
      default:
        throw methodNotAllowed();
    }
  }

  private patch(
    res: http.ServerResponse,
    info: KindInfo,
    namespace: string | undefined,
    name: string,
    scope: '' | 'status',
    raw: string,
    contentType: string | undefined,
    q: URLSearchParams,
    write: { manager: string; dryRun: boolean },
  ): void {
    const type = mediaType(contentType);
    const force = q.get('force');
    const body = decodeBody(raw, contentType) ?? null;
    if (type === 'application/apply-patch+yaml') {
      if (!q.get('fieldManager')) throw patchOptionsInvalid('fieldManager', 'FieldValueRequired', 'Required value: is required for apply patch');
      if (scope === 'status') {
        // Simplification: apply to the status subresource is a merge of the status it carries.
        this.send(res, 200, this.registry.patch(info, namespace, name, 'merge', body, write, 'status'));
        return;
      }
      const { object, created } = this.registry.apply(info, namespace, name, body, { ...write, force: force === 'true' });
      this.send(res, created ? 201 : 200, object);
      return;
    }
    if (force !== null) throw patchOptionsInvalid('force', 'FieldValueForbidden', 'Forbidden: may not be specified for non-apply patch');
    const patchTypes: Record<string, PatchType> = {
      'application/json-patch+json': 'json',
      'application/merge-patch+json': 'merge',
      'application/strategic-merge-patch+json': 'strategic',
    };
    const patchType = patchTypes[type];
    if (!patchType) throw unsupportedMediaType(type);
    this.send(res, 200, this.registry.patch(info, namespace, name, patchType, body, write, scope));
  }

  private selectors(q: URLSearchParams): { labelSelector?: string; fieldSelector?: string } {
    return { labelSelector: q.get('labelSelector') ?? undefined, fieldSelector: q.get('fieldSelector') ?? undefined };
  }

  private sendList(res: http.ServerResponse, info: KindInfo, namespace: string | undefined, q: URLSearchParams): void {
    const all = this.registry.list(info, namespace, this.selectors(q));
    const start = parseContinue(q.get('continue'));
    const limit = Number(q.get('limit') ?? '0');
    const end = limit > 0 ? start + limit : all.length;
    const items = all.slice(start, end);
    const metadata: JsonObject = { resourceVersion: this.store.currentResourceVersion };
    if (end < all.length) {
      metadata.continue = Buffer.from(JSON.stringify({ start: end })).toString('base64url');
      metadata.remainingItemCount = all.length - end;
    }
    this.send(res, 200, {
      kind: `${info.kind}List`,
      apiVersion: apiVersionOf(info),
      metadata,
      // Like the real server, list items carry no apiVersion/kind.
      items: items.map(stripTypeMeta),
    });
  }

  private watch(req: http.IncomingMessage, res: http.ServerResponse, info: KindInfo, namespace: string | undefined, q: URLSearchParams): void {
    const labels = parseLabelSelector(q.get('labelSelector') ?? undefined);
    const fields = parseFieldSelector(q.get('fieldSelector') ?? undefined);
    const selected = (obj: KubeObject): boolean =>
      (namespace === undefined || obj.metadata.namespace === namespace) && labels(obj) && fields(obj);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    // Clients wait for the response headers before they consider the watch established.
    res.flushHeaders();
    this.watches.add(res);
    const emit = (type: string, object: JsonObject): void => {
      res.write(`${JSON.stringify({ type, object })}\n`);
    };
    const since = q.get('resourceVersion');
    if (!since || since === '0') {
      for (const obj of this.store.list(info, namespace)) if (selected(obj)) emit('ADDED', obj);
    } else {
      const events = this.store.eventsSince(Number(since));
      if (!events) {
        emit('ERROR', failureStatus(410, 'Expired', `too old resource version: ${since} (${this.store.currentResourceVersion})`));
        this.watches.delete(res);
        res.end();
        return;
      }
      for (const e of events) if (e.info === info && selected(e.object)) emit(e.type, e.object);
    }
    const unsubscribe = this.store.subscribe((e: StoreEvent) => {
      if (e.info === info && selected(e.object)) emit(e.type, e.object);
    });
    const finish = (): void => {
      unsubscribe();
      this.watches.delete(res);
      clearTimeout(timer);
    };
    const timeout = Number(q.get('timeoutSeconds') ?? '0');
    const timer = setTimeout(() => res.end(), (timeout > 0 ? timeout : 1800) * 1000);
    timer.unref();
    res.on('close', finish);
    req.on('close', finish);
  }

  private send(res: http.ServerResponse, code: number, body: JsonObject): void {
    const text = JSON.stringify(body);
    res.writeHead(code, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Audit-Id': randomUUID(),
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  private sendError(res: http.ServerResponse, err: KubeStatusError): void {
    const headers: Record<string, string> = {};
    if (err.details?.retryAfterSeconds !== undefined) headers['Retry-After'] = String(err.details.retryAfterSeconds);
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    this.send(res, err.code, err.toStatus());
  }
}
