/**
 * The generic registry: what the API server does between decoding a request and the store.
 * Every write goes through `commit`, in the real server's order: server-owned fields restored,
 * normalization and defaulting, validation, field ownership, generation, no-op detection, store.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { applyDefaults, initialServerSpec, initialStatus, normalize } from './defaults.js';
import { alreadyExists, badRequest, conflict, forbidden, invalid, KubeStatusError, notFound } from './errors.js';
import { clone, deepEqual, isObject, str, timestamp, type JsonObject, type JsonValue, type KubeObject } from './json.js';
import { apiVersionOf, findByKind, type KindInfo } from './kinds.js';
import { recordUpdate, serverSideApply, type SubresourceScope } from './managed-fields.js';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import type { ObjectStore } from './store.js';
import { checkDecodable, validate } from './validation.js';

export const NAMESPACE_KIND = ((): KindInfo => {
  const info = findByKind('v1', 'Namespace');
  if (!info) throw new Error('Namespace kind missing from the registry');
  return info;
})();

/** The API server refuses to delete these (NamespaceLifecycle admission). */
const UNDELETABLE_NAMESPACES = ['default', 'kube-system', 'kube-public'];

export type PatchType = 'json' | 'merge' | 'strategic';

export interface WriteOptions {
  /** The field manager recorded in managedFields. */
  manager: string;
  dryRun: boolean;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
}

export interface DeleteOptions {
  dryRun: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface DeleteResult {
  /** The object as it was deleted, or as it now is when deletion waits for finalizers. */
  object: KubeObject;
  /** True when the object is gone; false when it is terminating. */
  deleted: boolean;
}

export interface RegistryHooks {
  committed(info: KindInfo, object: KubeObject, old: KubeObject | undefined): void;
  deleted(info: KindInfo, object: KubeObject): void;
}

interface CommitRequest {
  info: KindInfo;
  namespace: string | undefined;
  name: string;
  old: KubeObject | undefined;
  next: KubeObject;
  scope: SubresourceScope;
  options: WriteOptions;
  /** 'update' records ownership from the change; 'applied' means serverSideApply already did. */
  ownership: 'update' | 'applied';
}

function finalizersOf(obj: KubeObject): JsonValue[] {
  return Array.isArray(obj.metadata.finalizers) ? obj.metadata.finalizers : [];
}

function namespaceFinalizers(obj: KubeObject): JsonValue[] {
  const spec = isObject(obj.spec) ? obj.spec : {};
  return Array.isArray(spec.finalizers) ? spec.finalizers : [];
}

/** The part of an object whose change bumps metadata.generation. */
function generationContent(info: KindInfo, obj: KubeObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'metadata' || k === 'apiVersion' || k === 'kind' || info.serverOwned.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

export class Registry {
  private nextClusterIP = 10;

  constructor(
    private readonly store: ObjectStore,
    private readonly hooks: RegistryHooks,
  ) {}

  get(info: KindInfo, namespace: string | undefined, name: string): KubeObject {
    const found = this.store.get(info, namespace, name);
    if (!found) throw notFound(info, name);
    return found;
  }

  list(info: KindInfo, namespace: string | undefined, options: ListOptions = {}): KubeObject[] {
    const labels = parseLabelSelector(options.labelSelector);
    const fields = parseFieldSelector(options.fieldSelector);
    return this.store.list(info, namespace).filter((o) => labels(o) && fields(o));
  }

  create(info: KindInfo, namespace: string | undefined, body: JsonValue, options: WriteOptions): KubeObject {
    const next = this.decode(info, namespace, body);
    if (str(next.metadata.resourceVersion)) throw badRequest('resourceVersion should not be set on objects to be created');
    let name = str(next.metadata.name);
    const generateName = str(next.metadata.generateName);
    if (!name && generateName) name = generateName + randomBytes(3).toString('hex').slice(0, 5);
    if (!name) {
      throw invalid(info, '', [{ field: 'metadata.name', type: 'FieldValueRequired', detail: 'Required value: name or generateName is required' }]);
    }
    this.checkNamespaceAcceptsContent(info, namespace, name);
    return this.commit({ info, namespace, name, old: undefined, next, scope: '', options, ownership: 'update' });
  }

  replace(info: KindInfo, namespace: string | undefined, name: string, body: JsonValue, options: WriteOptions, scope: SubresourceScope = ''): KubeObject {
    const old = this.store.get(info, namespace, name);
    if (!old) throw notFound(info, name);
    const next = this.decode(info, namespace, body, name);
    const rv = str(next.metadata.resourceVersion);
    if (rv && rv !== old.metadata.resourceVersion) throw conflict(info, name);
    return this.commit({ info, namespace, name, old, next, scope, options, ownership: 'update' });
  }

  patch(
    info: KindInfo,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    patch: JsonValue,
    options: WriteOptions,
    scope: SubresourceScope = '',
  ): KubeObject {
    const old = this.store.get(info, namespace, name);
    if (!old) throw notFound(info, name);
    let patched: JsonValue;
    if (type === 'json') {
      patched = jsonPatch(old, patch);
    } else {
      if (!isObject(patch)) throw badRequest('a merge patch must be a JSON object');
      patched = type === 'merge' ? mergePatch(old, patch) : strategicMergePatch(old, patch);
    }
    if (!isObject(patched)) throw badRequest('the patch did not produce an object');
    const rv = isObject(patched.metadata) ? str(patched.metadata.resourceVersion) : undefined;
    if (rv && rv !== old.metadata.resourceVersion) throw conflict(info, name);
    const next = this.decode(info, namespace, patched, name);
    return this.commit({ info, namespace, name, old, next, scope, options, ownership: 'update' });
  }

  /** Server-side apply (PATCH with application/apply-patch+yaml); `created` when it made the object. */
  apply(
    info: KindInfo,
    namespace: string | undefined,
    name: string,
    config: JsonValue,
    options: WriteOptions & { force: boolean },
  ): { object: KubeObject; created: boolean } {
    if (!isObject(config)) throw badRequest('an apply configuration must be an object');
    if (!str(config.apiVersion) || !str(config.kind)) {
      throw badRequest(`invalid object type: ${str(config.apiVersion) ?? ''}, Kind=${str(config.kind) ?? ''}`);
    }
    const cfg = this.decode(info, namespace, config, name);
    normalize(info, cfg);
    const live = this.store.get(info, namespace, name);
    const rv = str(cfg.metadata.resourceVersion);
    if (rv && rv !== live?.metadata.resourceVersion) throw conflict(info, name);
    if (!live) this.checkNamespaceAcceptsContent(info, namespace, name);
    const next = serverSideApply({
      info,
      live,
      config: cfg,
      manager: options.manager,
      apiVersion: apiVersionOf(info),
      force: options.force,
      now: timestamp(),
    });
    const object = this.commit({ info, namespace, name, old: live, next, scope: '', options, ownership: 'applied' });
    return { object, created: !live };
  }

  delete(info: KindInfo, namespace: string | undefined, name: string, options: DeleteOptions): DeleteResult {
    const old = this.store.get(info, namespace, name);
    if (!old) throw notFound(info, name);
    const pre = options.preconditions;
    if (pre?.uid && pre.uid !== old.metadata.uid) {
      throw conflict(info, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(old.metadata.uid)}`);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw conflict(
        info,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(old.metadata.resourceVersion)}`,
      );
    }
    if (info === NAMESPACE_KIND && UNDELETABLE_NAMESPACES.includes(name)) {
      throw forbidden(info, name, 'this namespace may not be deleted');
    }
    const waitsForFinalizers = info === NAMESPACE_KIND || finalizersOf(old).length > 0;
    if (waitsForFinalizers) {
      if (old.metadata.deletionTimestamp) return { object: old, deleted: false };
      const next = clone(old);
      next.metadata.deletionTimestamp = timestamp();
      next.metadata.deletionGracePeriodSeconds = 0;
      if (info === NAMESPACE_KIND) next.status = { ...(isObject(old.status) ? old.status : {}), phase: 'Terminating' };
      else if (typeof old.metadata.generation === 'number') next.metadata.generation = old.metadata.generation + 1;
      if (options.dryRun) return { object: next, deleted: false };
      const stored = this.store.put(info, next);
      this.hooks.committed(info, stored, old);
      return { object: stored, deleted: false };
    }
    if (options.dryRun) return { object: old, deleted: true };
    return { object: this.remove(info, old), deleted: true };
  }

  deleteCollection(info: KindInfo, namespace: string | undefined, list: ListOptions, options: DeleteOptions): KubeObject[] {
    return this.list(info, namespace, list).map(
      (o) => this.delete(info, namespace, String(o.metadata.name), { dryRun: options.dryRun }).object,
    );
  }

  /** PUT /api/v1/namespaces/<name>/finalize: replaces spec.finalizers; an emptied terminating namespace goes away. */
  finalizeNamespace(name: string, body: JsonValue, options: WriteOptions): KubeObject {
    const old = this.store.get(NAMESPACE_KIND, undefined, name);
    if (!old) throw notFound(NAMESPACE_KIND, name);
    const spec = isObject(body) && isObject(body.spec) ? body.spec : {};
    const finalizers = Array.isArray(spec.finalizers) ? spec.finalizers.filter((f) => typeof f === 'string') : [];
    const next = clone(old);
    next.spec = { ...(isObject(old.spec) ? old.spec : {}), finalizers };
    if (finalizers.length === 0 && isObject(next.spec)) delete next.spec.finalizers;
    if (deepEqual(next, old) || options.dryRun) return next;
    const stored = this.store.put(NAMESPACE_KIND, next);
    this.hooks.committed(NAMESPACE_KIND, stored, old);
    return this.completeDeletionIfFinalized(NAMESPACE_KIND, stored);
  }

  /** A write by a controller or a test control, with full validation and ownership tracking. */
  update(
    info: KindInfo,
    namespace: string | undefined,
    name: string,
    mutate: (obj: KubeObject) => KubeObject | void,
    options: WriteOptions & { scope?: SubresourceScope },
  ): KubeObject {
    if (options.scope === 'status' && !info.subresources.includes('status')) {
      throw new Error(`${info.kind} has no status subresource`);
    }
    const old = this.store.get(info, namespace, name);
    if (!old) throw notFound(info, name);
    const draft = clone(old);
    const next = mutate(draft) ?? draft;
    return this.commit({ info, namespace, name, old, next, scope: options.scope ?? '', options, ownership: 'update' });
  }

  allocateClusterIP(): string {
    const n = this.nextClusterIP++;
    return `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
  }

  private remove(info: KindInfo, obj: KubeObject): KubeObject {
    const gone = this.store.remove(info, str(obj.metadata.namespace), String(obj.metadata.name)) ?? obj;
    this.hooks.deleted(info, gone);
    return gone;
  }

  private completeDeletionIfFinalized(info: KindInfo, obj: KubeObject): KubeObject {
    if (!obj.metadata.deletionTimestamp || finalizersOf(obj).length > 0) return obj;
    if (info === NAMESPACE_KIND && namespaceFinalizers(obj).length > 0) return obj;
    return this.remove(info, obj);
  }

  /** Namespace lifecycle admission: the namespace must exist and must not be terminating. */
  private checkNamespaceAcceptsContent(info: KindInfo, namespace: string | undefined, name: string): void {
    if (!info.namespaced || namespace === undefined) return;
    const ns = this.store.peek(NAMESPACE_KIND, undefined, namespace);
    if (!ns) throw notFound(NAMESPACE_KIND, namespace);
    if (ns.metadata.deletionTimestamp) {
      throw forbidden(info, name, `unable to create new content in namespace ${namespace} because it is being terminated`, [
        { type: 'NamespaceTerminating', message: `namespace ${namespace} is being terminated`, field: 'metadata.namespace' },
      ]);
    }
  }

  /** Decodes a request body into an object of `info`, checking it against the URL. */
  private decode(info: KindInfo, namespace: string | undefined, body: JsonValue, urlName?: string): KubeObject {
    if (!isObject(body)) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
    checkDecodable(info, body);
    const apiVersion = str(body.apiVersion);
    const expected = apiVersionOf(info);
    if (apiVersion && apiVersion !== expected) {
      throw badRequest(`the API version in the data (${apiVersion}) does not match the expected API version (${expected})`);
    }
    const kind = str(body.kind);
    if (kind && kind !== info.kind) throw badRequest(`the kind in the data (${kind}) does not match the expected kind (${info.kind})`);
    const obj: KubeObject = { ...clone(body), apiVersion: expected, kind: info.kind, metadata: isObject(body.metadata) ? clone(body.metadata) : {} };
    const meta = obj.metadata;
    if (info.namespaced) {
      const ns = str(meta.namespace);
      if (ns && ns !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      if (namespace !== undefined) meta.namespace = namespace;
    } else {
      delete meta.namespace;
    }
    if (urlName !== undefined) {
      const name = str(meta.name);
      if (name && name !== urlName) throw badRequest(`the name of the object (${name}) does not match the name on the URL (${urlName})`);
      meta.name = urlName;
    }
    return obj;
  }

  private commit(req: CommitRequest): KubeObject {
    const { info, old, scope, options } = req;
    let next = req.next;
    if (scope === 'status') {
      if (!old) throw new KubeStatusError(500, 'InternalError', 'a status write needs an existing object');
      const withStatus = clone(old);
      if (next.status === undefined) delete withStatus.status;
      else withStatus.status = clone(next.status);
      next = withStatus;
    } else {
      for (const field of info.serverOwned) {
        const kept = old ? old[field] : field === 'status' ? initialStatus(info) : initialServerSpec(info);
        if (kept === undefined) delete next[field];
        else next[field] = clone(kept);
      }
    }

    const meta = next.metadata;
    meta.name = req.name;
    if (req.namespace !== undefined && info.namespaced) meta.namespace = req.namespace;
    if (old) {
      for (const f of ['uid', 'creationTimestamp', 'generation', 'resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds']) {
        const v = old.metadata[f];
        if (v === undefined) delete meta[f];
        else meta[f] = v;
      }
    } else {
      for (const f of ['resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds']) delete meta[f];
      meta.uid = randomUUID();
      meta.creationTimestamp = timestamp();
      meta.generation = 1;
    }
    delete meta.selfLink;

    normalize(info, next);
    applyDefaults(info, next, { old, allocateClusterIP: () => this.allocateClusterIP() });
    validate(info, next, old);
    if (req.ownership === 'update') {
      recordUpdate({ info, old, next, manager: options.manager, apiVersion: apiVersionOf(info), scope, now: timestamp() });
    }
    if (old && !deepEqual(generationContent(info, old), generationContent(info, next))) {
      meta.generation = (typeof old.metadata.generation === 'number' ? old.metadata.generation : 0) + 1;
    }
    if (old && deepEqual(old, next)) return old;
    if (!old && this.store.peek(info, req.namespace, req.name)) throw alreadyExists(info, req.name);
    if (options.dryRun) return next;

    const stored = this.store.put(info, next);
    this.hooks.committed(info, stored, old);
    return this.completeDeletionIfFinalized(info, stored);
  }
}
