/**
 * A thin, raw-JSON client over @kubernetes/client-node's `KubernetesObjectApi`.
 *
 * Why not `KubernetesObjectApi.patch/read` as they are: in client-node 1.x both run every body through
 * the generated `ObjectSerializer`, which (measured) drops fields its models name differently — a
 * LimitRange's `default` becomes `_default` and is silently left out of an apply — and turns
 * timestamps into `Date` objects. tenantd needs the server to see exactly the rendered object and
 * needs the live object exactly as the server sent it (to diff it), so this subclass keeps
 * client-node's discovery, authentication (kubeconfig users, exec plugins, in-cluster tokens),
 * middleware and HTTP stack, and only replaces (de)serialization with plain JSON.
 */
import {
  createConfiguration,
  HttpMethod,
  KubernetesObjectApi,
  ServerConfiguration,
  type KubeConfig,
  type RequestContext,
  type ResponseContext,
  type V1APIResource,
} from '@kubernetes/client-node';
import { KeepAliveAuthentication } from './keep-alive.js';
import type { KubeObjectRef } from '../resources/types.js';
import { isRecord } from '../../core/is-record.js';

/** A live object as the API server returns it: plain JSON. */
export interface LiveObject {
  apiVersion?: string;
  kind?: string;
  metadata: LiveMetadata;
  [field: string]: unknown;
}

export interface LiveMetadata {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  finalizers?: string[];
  [field: string]: unknown;
}

/** A Kubernetes `Status` failure body. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    causes?: { type?: string; reason?: string; message?: string; field?: string }[];
    retryAfterSeconds?: number;
  };
}

/** The API server answered with a non-2xx status. */
export class KubeApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly status: KubeStatus,
  ) {
    super(status.message ?? `HTTP ${statusCode}`);
    this.name = 'KubeApiError';
  }
}

/** The server does not serve the object's apiVersion/kind (discovery found no such resource). */
export class UnsupportedKindError extends Error {
  constructor(
    readonly apiVersion: string,
    readonly kind: string,
    /** Every version that was tried, newest first. */
    readonly tried: readonly string[] = [apiVersion],
  ) {
    super(`the API server does not serve ${kind} in ${tried.join(' or ')}`);
    this.name = 'UnsupportedKindError';
  }
}

/** A request did not finish within the client's request timeout. */
export class RequestTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/** The caller's signal aborted the request. */
export class RequestAbortedError extends Error {
  constructor() {
    super('request aborted');
    this.name = 'RequestAbortedError';
  }
}

const STATUS_CODE = Symbol('statusCode');

/**
 * A signal that aborts when any of `signals` does (or on `abort()`). Unlike AbortSignal.any it
 * leaves nothing attached to long-lived parents after `dispose()`.
 */
export function linkSignals(signals: readonly AbortSignal[]): { signal: AbortSignal; abort(reason?: unknown): void; dispose(): void } {
  const controller = new AbortController();
  const listeners: [AbortSignal, () => void][] = [];
  for (const parent of signals) {
    if (parent.aborted) {
      controller.abort(parent.reason);
      break;
    }
    const onAbort = (): void => controller.abort(parent.reason);
    parent.addEventListener('abort', onAbort, { once: true });
    listeners.push([parent, onAbort]);
  }
  return {
    signal: controller.signal,
    abort: (reason) => controller.abort(reason),
    dispose: () => {
      for (const [parent, onAbort] of listeners) parent.removeEventListener('abort', onAbort);
      listeners.length = 0;
    },
  };
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { message: text.slice(0, 500) };
  }
}

/**
 * client-node's object API with plain-JSON bodies. Only the `raw*` methods are used by tenantd; the
 * inherited discovery (`resource`) keeps its cache per apiVersion.
 */
class RawObjectApi extends KubernetesObjectApi {
  protected override async processResponse<T>(response: ResponseContext): Promise<T> {
    const text = await response.body.text();
    const code = response.httpStatusCode;
    if (code >= 200 && code <= 299) {
      const parsed = parseJson(text);
      const body = isRecord(parsed) ? parsed : { value: parsed };
      Object.defineProperty(body, STATUS_CODE, { value: code, enumerable: false });
      return body as T;
    }
    const parsed = parseJson(text);
    throw new KubeApiError(code, isRecord(parsed) ? (parsed as KubeStatus) : { message: String(parsed) });
  }

  async rawResource(apiVersion: string, kind: string): Promise<V1APIResource> {
    let resource: V1APIResource | undefined;
    try {
      resource = await this.resource(apiVersion, kind);
    } catch (err: unknown) {
      // A group/version the server does not serve at all answers 404 to discovery.
      if (err instanceof KubeApiError && err.statusCode === 404) throw new UnsupportedKindError(apiVersion, kind);
      throw err;
    }
    if (!resource) throw new UnsupportedKindError(apiVersion, kind);
    return resource;
  }

  async rawPath(ref: KubeObjectRef, action: 'read' | 'patch' | 'delete' | 'list' | 'create'): Promise<string> {
    await this.rawResource(ref.apiVersion, ref.kind);
    const spec = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) } };
    return this.specUriPath(spec, action);
  }

  async rawRequest(
    method: HttpMethod,
    path: string,
    options: { query?: Record<string, string>; body?: string; contentType?: string; signal: AbortSignal },
  ): Promise<{ code: number; body: Record<string, unknown> }> {
    const ctx: RequestContext = this.configuration.baseServer.makeRequestContext(path, method);
    ctx.setHeaderParam('Accept', 'application/json');
    for (const [k, v] of Object.entries(options.query ?? {})) ctx.setQueryParam(k, v);
    if (options.body !== undefined) {
      ctx.setHeaderParam('Content-Type', options.contentType ?? 'application/json');
      ctx.setBody(options.body);
    }
    ctx.setSignal(options.signal);
    const body = await this.requestPromise<Record<string, unknown>>(ctx);
    const code = (body as Record<symbol, unknown>)[STATUS_CODE];
    return { code: typeof code === 'number' ? code : 200, body };
  }
}

export interface KubeClientOptions {
  /** Per-request deadline (default 30 s); a request that takes longer counts as an unreachable cluster. */
  requestTimeoutMs?: number;
}

export interface ApplyOptions {
  fieldManager: string;
  force: boolean;
  dryRun?: boolean;
}

export type DeleteOutcome = 'deleted' | 'terminating' | 'absent';

function isLiveObject(v: unknown): v is LiveObject {
  return isRecord(v) && isRecord(v.metadata) && typeof v.metadata.name === 'string';
}

/**
 * One cluster (one kubeconfig context). Every call takes an AbortSignal; the returned promise settles
 * promptly when it aborts, even while client-node is still in discovery.
 */
export class KubeClient {
  private readonly api: RawObjectApi;
  private readonly auth: KeepAliveAuthentication;
  private readonly timeoutMs: number;
  /** Where the client points, for messages: `<context> (<server>)`. */
  readonly description: string;
  readonly server: string;

  constructor(
    readonly context: string,
    kubeConfig: KubeConfig,
    options: KubeClientOptions = {},
  ) {
    // As kubeConfig.makeApiClient does, with connections kept alive (keep-alive.ts).
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error(`kubeconfig context ${context} has no cluster`);
    this.auth = new KeepAliveAuthentication(kubeConfig);
    this.api = new RawObjectApi(createConfiguration({ baseServer: new ServerConfiguration(cluster.server, {}), authMethods: { default: this.auth } }));
    this.timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.server = kubeConfig.getCurrentCluster()?.server ?? 'unknown server';
    this.description = `${context} (${this.server})`;
  }

  /** Runs `work` with a signal that aborts on the caller's signal or the request timeout. */
  private async run<T>(signal: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (signal.aborted) throw new RequestAbortedError();
    const link = linkSignals([signal]);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        link.abort(new RequestTimeoutError(this.timeoutMs));
        reject(new RequestTimeoutError(this.timeoutMs));
      }, this.timeoutMs);
      timer.unref();
      onAbort = () => reject(new RequestAbortedError());
      signal.addEventListener('abort', onAbort, { once: true });
    });
    // The loser of the race must not become an unhandled rejection.
    guard.catch(() => undefined);
    try {
      return await Promise.race([work(link.signal), guard]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
      link.dispose();
    }
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.auth.close();
  }

  /** GET /version: whether the API server answers at all. */
  async version(signal: AbortSignal): Promise<Record<string, unknown>> {
    return this.run(signal, async (s) => (await this.api.rawRequest(HttpMethod.GET, '/version', { signal: s })).body);
  }

  /**
   * The first of `apiVersions` (newest first) in which the server serves `kind`; throws
   * UnsupportedKindError naming the first when it serves none of them.
   */
  async servedVersion(kind: string, apiVersions: readonly string[], signal: AbortSignal): Promise<string> {
    return this.run(signal, async () => {
      for (const apiVersion of apiVersions) {
        try {
          await this.api.rawResource(apiVersion, kind);
          return apiVersion;
        } catch (err: unknown) {
          if (!(err instanceof UnsupportedKindError)) throw err;
        }
      }
      throw new UnsupportedKindError(apiVersions[0] ?? '', kind, apiVersions);
    });
  }

  /** The URL path of an object (`read`) or of its collection (`create`), found by discovery. */
  async path(ref: KubeObjectRef, action: 'read' | 'create', signal: AbortSignal): Promise<string> {
    return this.run(signal, () => this.api.rawPath(ref, action));
  }

  /** The live object, or null when it does not exist. */
  async get(ref: KubeObjectRef, signal: AbortSignal): Promise<LiveObject | null> {
    return this.run(signal, async (s) => {
      const path = await this.api.rawPath(ref, 'read');
      try {
        const { body } = await this.api.rawRequest(HttpMethod.GET, path, { signal: s });
        return isLiveObject(body) ? body : null;
      } catch (err: unknown) {
        if (err instanceof KubeApiError && err.statusCode === 404) return null;
        throw err;
      }
    });
  }

  /**
   * Whether the server's authorizer lets this client do `attributes` now (a SelfSubjectAccessReview,
   * which every authenticated identity may create).
   */
  async accessAllowed(attributes: { verb: string; resource: string; group?: string; namespace?: string; name?: string }, signal: AbortSignal): Promise<boolean> {
    return this.run(signal, async (s) => {
      const review = { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: attributes } };
      const { body } = await this.api.rawRequest(HttpMethod.POST, '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { body: JSON.stringify(review), signal: s });
      return isRecord(body.status) && body.status.allowed === true;
    });
  }

  /** Server-side apply. `created` is true when the server answered 201. */
  async apply(obj: object, ref: KubeObjectRef, options: ApplyOptions, signal: AbortSignal): Promise<{ object: LiveObject; created: boolean }> {
    return this.run(signal, async (s) => {
      const path = await this.api.rawPath(ref, 'patch');
      const query: Record<string, string> = { fieldManager: options.fieldManager, force: String(options.force) };
      if (options.dryRun) query.dryRun = 'All';
      const { code, body } = await this.api.rawRequest(HttpMethod.PATCH, path, {
        query,
        // JSON is YAML: the apply patch is sent exactly as rendered.
        body: JSON.stringify(obj),
        contentType: 'application/apply-patch+yaml',
        signal: s,
      });
      if (!isLiveObject(body)) throw new KubeApiError(500, { message: 'the server answered an apply without an object' });
      return { object: body, created: code === 201 };
    });
  }

  /** Creates an object (POST to its collection); an existing one is a KubeApiError 409 (AlreadyExists). */
  async create(obj: object, ref: KubeObjectRef, signal: AbortSignal): Promise<LiveObject> {
    return this.run(signal, async (s) => {
      const path = await this.api.rawPath(ref, 'create');
      const { body } = await this.api.rawRequest(HttpMethod.POST, path, { body: JSON.stringify(obj), signal: s });
      if (!isLiveObject(body)) throw new KubeApiError(500, { message: 'the server answered a create without an object' });
      return body;
    });
  }

  /**
   * Replaces an object (PUT). Optimistic: the server refuses it with a KubeApiError 409 (Conflict)
   * unless the object's `metadata.resourceVersion` is still the current one.
   */
  async replace(obj: object, ref: KubeObjectRef, signal: AbortSignal): Promise<LiveObject> {
    return this.run(signal, async (s) => {
      const path = await this.api.rawPath(ref, 'patch');
      const { body } = await this.api.rawRequest(HttpMethod.PUT, path, { body: JSON.stringify(obj), signal: s });
      if (!isLiveObject(body)) throw new KubeApiError(500, { message: 'the server answered a replace without an object' });
      return body;
    });
  }

  /** Every object of a kind in a namespace matching a label selector (all pages). */
  async list(apiVersion: string, kind: string, namespace: string | undefined, labelSelector: string, signal: AbortSignal): Promise<LiveObject[]> {
    return this.run(signal, async (s) => {
      const path = await this.api.rawPath({ apiVersion, kind, name: '', ...(namespace ? { namespace } : {}) }, 'list');
      const out: LiveObject[] = [];
      let token: string | undefined;
      do {
        const query: Record<string, string> = { labelSelector, limit: '500' };
        if (token) query.continue = token;
        const { body } = await this.api.rawRequest(HttpMethod.GET, path, { query, signal: s });
        const items = Array.isArray(body.items) ? body.items : [];
        for (const item of items) if (isLiveObject(item)) out.push({ apiVersion, kind, ...item });
        const meta = isRecord(body.metadata) ? body.metadata : {};
        token = typeof meta.continue === 'string' && meta.continue !== '' ? meta.continue : undefined;
      } while (token);
      return out;
    });
  }

  /**
   * Deletes an object. `uid` is sent as a precondition so an object re-created under the same name
   * in between is never deleted by mistake. A 404 is `absent`.
   */
  async delete(
    ref: KubeObjectRef,
    options: { propagationPolicy: 'Background' | 'Foreground' | 'Orphan'; uid?: string },
    signal: AbortSignal,
  ): Promise<DeleteOutcome> {
    return this.run(signal, async (s) => {
      const path = await this.api.rawPath(ref, 'delete');
      const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: options.propagationPolicy };
      if (options.uid) body.preconditions = { uid: options.uid };
      try {
        const res = await this.api.rawRequest(HttpMethod.DELETE, path, {
          query: { propagationPolicy: options.propagationPolicy },
          body: JSON.stringify(body),
          signal: s,
        });
        // A Status means gone; the object itself means it waits for finalizers.
        return res.body.kind === 'Status' ? 'deleted' : isLiveObject(res.body) && res.body.metadata.deletionTimestamp ? 'terminating' : 'deleted';
      } catch (err: unknown) {
        if (err instanceof KubeApiError && err.statusCode === 404) return 'absent';
        throw err;
      }
    });
  }
}
