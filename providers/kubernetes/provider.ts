/**
 * The `kubernetes` provider: applies each tenant's rendered objects to a cluster with server-side
 * apply (field manager `tenantd`), the way Flux's kustomize-controller does, and walks Deploy,
 * Configure and Verify against what the API server reports.
 *
 * - apply / deploy / configure: server-side apply of that phase's group in the renderer's order
 *   (the Namespace first). An inventory of what was applied is kept in the cluster (ConfigMap
 *   `tenantd-inventory` in the tenant namespace); objects of the group that are inventoried but no
 *   longer rendered are pruned — only when they carry tenantd's managed-by and tenant-id labels.
 *   An existing object tenantd neither labelled nor applied before is never adopted (E_NOT_OWNED).
 * - Conflicts with another field manager stall with E_FIELD_CONFLICT unless spec.forceConflicts.
 * - Generated secrets: values are generated once (randomBytes) and written only into the Secret,
 *   under a separate field manager (`<fieldManager>-secrets`), so tenantd's own apply of the value-less
 *   Secret shell never removes them. No value appears in results, progress, errors or logs.
 * - A StatefulSet with `tenantd.io/replace-strategy: orphan` whose immutable fields changed
 *   (volumeClaimTemplates storage) is deleted with propagationPolicy Orphan and re-applied; its
 *   PVCs are expanded in place by the apply of the rendered PVCs.
 * - verify: polls until Deployments and StatefulSets are ready and PVCs Bound (progress as replicas
 *   come up), fails on a failed rollout, times out after spec.verifyTimeoutSeconds (or the tier's),
 *   and stops promptly when the operation's signal aborts. For a deprovision it waits until the
 *   namespace is gone, finalizers included.
 * - plan: a server-side dry-run apply per object, diffed against the live object.
 * - refresh: the same dry-run diff (forced, so fields another manager took are shown); `correct`
 *   re-applies with force.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { retryable, stalled, TenantdError } from '../../core/errors.js';
import { TIER_POLICIES } from '../../core/tenant/catalog.js';
import { DNS1123_LABEL, MAX_TENANT_ID_LENGTH, namespaceFor, type TenantInfrastructureDocument } from '../../core/tenant/types.js';
import type { DriftReport, InfrastructureProvider, PhaseResult, PlanResult, ProviderContext, ResourceChange } from '../provider.js';
import { allObjects, ANNOTATION_REPLACE_STRATEGY, APPLY_GROUPS, objectRef, outputsFor, refKey, renderTenant } from '../resources/renderer.js';
import type { ApplyGroup, GeneratedSecret, KubeObject, KubeObjectRef, RenderedTenant } from '../resources/types.js';
import { KubeApiError, KubeClient, linkSignals, UnsupportedKindError, type LiveObject } from './client.js';
import { moveIssue, placementIssue, requireContext, type ClusterMap } from './clusters.js';
import { changedPaths, projectedDiff } from './compare.js';
import { kubeconfigProblems } from './kubeconfig-check.js';
import { ownedFieldChanges } from './owned-fields.js';
import { ServedVersions } from './served-versions.js';
import { tenantRoleBinding, tenantRoleBindingRef, type TenantRole } from './tenant-role.js';
import {
  E_ABORTED,
  E_CLUSTER_UNREACHABLE,
  E_FIELD_CONFLICT,
  E_FORBIDDEN,
  E_KUBE_CONTEXT_NOT_FOUND,
  E_KUBECONFIG,
  E_NAMESPACE_TERMINATING,
  E_NOT_OWNED,
  E_OBJECT_TERMINATING,
  E_ROLLOUT_FAILED,
  E_VERIFY_TIMEOUT,
  fieldConflicts,
  toKubeError,
} from './errors.js';
import { abortableSleep } from '../../core/abortable-sleep.js';
import { applyFingerprint } from './apply-fingerprint.js';
import {
  appliedBy,
  emptyInventory,
  identityKey,
  INVENTORY_NAME,
  inventoryObject,
  inventoryRef,
  normalizeRefs,
  ownedBy,
  parseFingerprints,
  parseInventory,
  sameFingerprints,
  sameInventory,
  type Fingerprints,
  type Inventory,
} from './inventory.js';
import { claimReadiness, ingressAddress, workloadReadiness, type Readiness } from './readiness.js';

export { loadClustersFile, parseClusterMap, placementIssue, moveIssue, contextFor, type ClusterMap, type ClusterEntry } from './clusters.js';
export { INVENTORY_NAME } from './inventory.js';
export { subjectFromUserName, type TenantRole, type RbacSubject } from './tenant-role.js';

export interface KubernetesProviderOptions {
  /** A ready KubeConfig (tests pass one). Otherwise `kubeconfigPath`, else KUBECONFIG / ~/.kube/config / in-cluster. */
  kubeConfig?: KubeConfig;
  kubeconfigPath?: string;
  /** The kubeconfig context to use (default: the current one). Ignored for tenants placed by `clusters`. */
  context?: string;
  /** cloudProvider + region → context; when set, every tenant must be placed by it. */
  clusters?: ClusterMap;
  /** Field manager of server-side apply (default `tenantd`). */
  fieldManager?: string;
  now?: () => Date;
  /** Waits `ms`, resolving early when `signal` aborts. Default: a timer. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Between readiness polls (default 2000 ms). */
  pollIntervalMs?: number;
  /** Verify timeout; default spec.verifyTimeoutSeconds, else the tier's. */
  verifyTimeoutMs?: number;
  /** How long a deprovision's Verify waits for the namespace to disappear (default 10 minutes). */
  namespaceDeleteTimeoutMs?: number;
  /** How long to wait for an object being deleted (StatefulSet replace) before retrying later (default 60 s). */
  objectDeleteTimeoutMs?: number;
  /** Per API request (default 30 s); longer counts as an unreachable cluster. */
  requestTimeoutMs?: number;
  randomBytes?: (n: number) => Buffer;
  /**
   * Namespaced access granted per tenant namespace (tenant-role.ts): tenantd binds this ClusterRole
   * to itself in each tenant namespace it owns before working in it. Unset: its identity is expected
   * to have the access already (a cluster-wide binding, an admin kubeconfig).
   */
  tenantRole?: TenantRole;
  /** How long to wait for a new tenant RoleBinding to be honoured by the authorizer (default 30 s). */
  tenantRoleTimeoutMs?: number;
}

/** Bytes of randomness per generated value (32 base64url characters), as in the render provider. */
export const GENERATED_SECRET_BYTES = 24;
/** Field manager suffix for generated secret values. */
export const SECRETS_MANAGER_SUFFIX = '-secrets';
/** A tenant RoleBinding the authorizer does not honour yet (RBAC caches catch up within seconds). */
export const E_TENANT_ROLE_PENDING = 'E_TENANT_ROLE_PENDING';

const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet']);
const NAMESPACE_REF = (name: string): KubeObjectRef => ({ apiVersion: 'v1', kind: 'Namespace', name });

type ApplyOutcome = 'created' | 'configured' | 'unchanged' | 'replaced';

interface GroupResult {
  created: string[];
  configured: string[];
  replaced: string[];
  unchanged: number;
  pruned: string[];
  skipped: { ref: string; reason: string }[];
  secretsGenerated: string[];
}

function listNames(refs: readonly string[], max = 10): string {
  return refs.length <= max ? refs.join(', ') : `${refs.slice(0, max).join(', ')} and ${refs.length - max} more`;
}

const stripDot = (field: string): string => field.replace(/^\./, '');

function loadKubeConfig(opts: KubernetesProviderOptions): KubeConfig {
  if (opts.kubeConfig) return opts.kubeConfig;
  const kc = new KubeConfig();
  try {
    if (opts.kubeconfigPath) kc.loadFromFile(opts.kubeconfigPath);
    else kc.loadFromDefault();
  } catch (err: unknown) {
    throw stalled(E_KUBECONFIG, `cannot load the kubeconfig${opts.kubeconfigPath ? ` ${opts.kubeconfigPath}` : ''}: ${err instanceof Error ? err.message : String(err)}`, {
      path: opts.kubeconfigPath ?? null,
    });
  }
  return kc;
}

/** A KubeConfig whose current context is `context` (the original is left alone). */
function forContext(kc: KubeConfig, context: string): KubeConfig {
  const copy = new KubeConfig();
  copy.loadFromOptions({ clusters: kc.getClusters(), users: kc.getUsers(), contexts: kc.getContexts(), currentContext: context });
  return copy;
}

/** What one phase call works with: the tenant, its cluster, the signal, error wrapping. */
class Session {
  readonly namespace: string;
  /** Strings that must never appear in an error (generated values in flight). */
  readonly redact: string[] = [];

  constructor(
    readonly ctx: ProviderContext,
    readonly tenantId: string,
    readonly client: KubeClient,
    readonly served: ServedVersions,
    readonly signal: AbortSignal,
  ) {
    this.namespace = namespaceFor(tenantId);
  }

  /** The rendered objects in the versions this cluster serves. */
  adapt(rendered: RenderedTenant): Promise<RenderedTenant> {
    return this.call('discovery', undefined, (sig) => this.served.adapt(rendered, sig));
  }

  async call<T>(action: string, ref: KubeObjectRef | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.checkAbort();
    try {
      return await fn(this.signal);
    } catch (err: unknown) {
      throw this.error(err, action, ref);
    }
  }

  error(err: unknown, action: string, ref?: KubeObjectRef): TenantdError {
    if (err instanceof TenantdError) return err;
    return toKubeError(err, { tenantId: this.tenantId, cluster: this.client.description, action, ...(ref ? { ref } : {}), signal: this.signal, redact: this.redact });
  }

  checkAbort(): void {
    if (this.signal.aborted) throw retryable(E_ABORTED, `operation for tenant ${this.tenantId} was aborted`, { tenantId: this.tenantId });
  }

  get(ref: KubeObjectRef): Promise<LiveObject | null> {
    return this.call('read', ref, (s) => this.client.get(ref, s));
  }
}

export function createKubernetesProvider(opts: KubernetesProviderOptions = {}): InfrastructureProvider {
  const kubeConfig = loadKubeConfig(opts);
  const fieldManager = opts.fieldManager ?? 'tenantd';
  const secretsManager = `${fieldManager}${SECRETS_MANAGER_SUFFIX}`;
  const now = opts.now ?? (() => new Date());
  const sleep = opts.sleep ?? abortableSleep;
  const pollIntervalMs = opts.pollIntervalMs ?? 2000;
  const namespaceDeleteTimeoutMs = opts.namespaceDeleteTimeoutMs ?? 600_000;
  const objectDeleteTimeoutMs = opts.objectDeleteTimeoutMs ?? 60_000;
  const randomBytes = opts.randomBytes ?? nodeRandomBytes;
  const closed = new AbortController();

  const knownContexts = kubeConfig.getContexts().map((c) => c.name);
  const requireKnown = (context: string, why: string): void => {
    if (!knownContexts.includes(context)) {
      throw stalled(E_KUBE_CONTEXT_NOT_FOUND, `kubeconfig context ${JSON.stringify(context)} (${why}) does not exist; known contexts: ${knownContexts.join(', ') || 'none'}`, {
        context,
        known: knownContexts,
      });
    }
  };
  const defaultContext = opts.context ?? kubeConfig.getCurrentContext();
  if (opts.context) requireKnown(opts.context, '--kube-context');
  for (const entry of opts.clusters?.clusters ?? []) requireKnown(entry.context, `clusters file entry ${entry.cloudProvider}/${entry.region}`);
  const problems = kubeconfigProblems(kubeConfig, contextsInUse());
  if (problems.length > 0) {
    throw stalled(E_KUBECONFIG, `the kubeconfig${opts.kubeconfigPath ? ` ${opts.kubeconfigPath}` : ''} cannot be used: ${problems.join('; ')}`, { path: opts.kubeconfigPath ?? null, problems });
  }

  const clients = new Map<string, { client: KubeClient; served: ServedVersions }>();
  function connectionFor(context: string): { client: KubeClient; served: ServedVersions } {
    let connection = clients.get(context);
    if (!connection) {
      const kc = context === kubeConfig.getCurrentContext() ? kubeConfig : forContext(kubeConfig, context);
      const client = new KubeClient(context, kc, opts.requestTimeoutMs !== undefined ? { requestTimeoutMs: opts.requestTimeoutMs } : {});
      connection = { client, served: new ServedVersions(client, now) };
      clients.set(context, connection);
    }
    return connection;
  }
  const clientFor = (context: string): KubeClient => connectionFor(context).client;

  function contextForTenant(doc: TenantInfrastructureDocument): string {
    return opts.clusters ? requireContext(opts.clusters, doc) : defaultContext;
  }

  // --- guards ---------------------------------------------------------------------------------

  function tenantIdOf(ctx: ProviderContext): string {
    const id = ctx.tenantId;
    if (!DNS1123_LABEL.test(id) || id.length > MAX_TENANT_ID_LENGTH) {
      throw stalled('E_INVALID_TENANT_ID', `tenant id ${JSON.stringify(id)} is not a DNS-1123 label`, { tenantId: id });
    }
    if (ctx.desired && ctx.desired.tenantId !== id) {
      throw stalled('E_TENANT_MISMATCH', `rendered objects belong to tenant ${ctx.desired.tenantId}, not ${id}`, { tenantId: id, renderedTenantId: ctx.desired.tenantId });
    }
    return id;
  }

  /** Runs one provider step for a tenant on its cluster, with the operation's signal (and close()). */
  async function withSession<T>(ctx: ProviderContext, step: (s: Session) => Promise<T>): Promise<T> {
    const tenantId = tenantIdOf(ctx);
    const { client, served } = connectionFor(contextForTenant(ctx.tenant));
    const link = linkSignals([ctx.signal, closed.signal]);
    try {
      const s = new Session(ctx, tenantId, client, served, link.signal);
      s.checkAbort();
      const access = await ensureAccess(s);
      try {
        return await step(s);
      } catch (err: unknown) {
        if (!(err instanceof TenantdError) || err.code !== E_FORBIDDEN) throw err;
        if (access === 'foreign') throw foreignNamespace(s, err);
        // Access this process granted itself earlier is gone (someone deleted the RoleBinding):
        // bind it again and run the step once more; steps are idempotent.
        if (access !== 'cached') throw err;
        accessGranted.delete(accessKey(s));
        const again = new Session(ctx, tenantId, client, served, link.signal);
        await ensureAccess(again);
        return await step(again);
      }
    } finally {
      link.dispose();
    }
  }

  function requireDesired(ctx: ProviderContext, phaseName: string): RenderedTenant {
    if (!ctx.desired) throw stalled('E_NO_DESIRED_STATE', `${phaseName} needs the tenant's rendered objects; a deprovision runs destroy instead`, { tenantId: ctx.tenantId });
    return ctx.desired;
  }

  // --- per-namespace access (opts.tenantRole) -------------------------------------------------

  /** Namespaces (per context) whose RoleBinding this process applied and saw honoured, by uid. */
  const accessGranted = new Map<string, string>();
  const accessKey = (s: Session): string => `${s.client.context}\0${s.namespace}`;
  const tenantRoleTimeoutMs = opts.tenantRoleTimeoutMs ?? 30_000;

  /**
   * Makes sure tenantd may work inside the tenant namespace: binds opts.tenantRole there (once per
   * namespace uid and process) and waits until the authorizer honours it. `known`: the namespace as
   * just read or applied; undefined reads it unless this process already granted itself access.
   * A namespace that is absent, terminating or not tenantd's (`foreign`) is left alone. `cached`:
   * granted earlier by this process and not checked again now.
   */
  async function ensureAccess(s: Session, known?: LiveObject | null): Promise<'none' | 'cached' | 'granted' | 'foreign'> {
    const role = opts.tenantRole;
    if (!role) return 'none';
    const key = accessKey(s);
    if (known === undefined && accessGranted.has(key)) return 'cached';
    const ns = known !== undefined ? known : await s.get(NAMESPACE_REF(s.namespace));
    if (!ns || ns.metadata.deletionTimestamp) return 'none';
    if (!(ownedBy(ns, s.tenantId) || appliedBy(ns, fieldManager))) return 'foreign';
    const uid = ns.metadata.uid ?? '';
    if (accessGranted.get(key) === uid) return 'cached';
    const binding = tenantRoleBinding(role, s.namespace, s.tenantId);
    const ref = tenantRoleBindingRef(role, s.namespace);
    await s.call('bind the tenant role', ref, (sig) => s.client.apply(binding, ref, { fieldManager, force: true }, sig));
    const deadline = now().getTime() + tenantRoleTimeoutMs;
    const probe = { verb: 'patch', resource: 'configmaps', namespace: s.namespace, name: INVENTORY_NAME };
    while (!(await s.call('review access', ref, (sig) => s.client.accessAllowed(probe, sig)))) {
      const left = deadline - now().getTime();
      if (left <= 0) {
        throw retryable(E_TENANT_ROLE_PENDING, `RoleBinding ${s.namespace}/${role.clusterRole} is applied but ${s.client.description} does not let tenantd work in ${s.namespace} yet; retrying later`, {
          tenantId: s.tenantId,
          ref: refKey(ref),
        });
      }
      await sleep(Math.min(pollIntervalMs, left), s.signal);
      s.checkAbort();
    }
    accessGranted.set(key, uid);
    return 'granted';
  }

  /** Forbidden inside a namespace tenantd did not create: it never binds itself there, so say that. */
  function foreignNamespace(s: Session, cause: TenantdError): TenantdError {
    const ref = refKey(NAMESPACE_REF(s.namespace));
    return stalled(
      E_NOT_OWNED,
      `${ref} already exists and was not created by tenantd for tenant ${s.tenantId}; tenantd binds its tenant role only in namespaces it created, so it cannot work in this one. Delete or rename it, or label it (app.kubernetes.io/managed-by=tenantd, tenantd.io/tenant-id=${s.tenantId}) to hand it over`,
      { tenantId: s.tenantId, ref, cause: cause.code },
      cause,
    );
  }

  // --- inventory ------------------------------------------------------------------------------

  async function readInventory(s: Session): Promise<{ inv: Inventory; exists: boolean; fingerprints: Fingerprints }> {
    const cm = await s.get(inventoryRef(s.namespace));
    return cm ? { inv: parseInventory(cm, s.tenantId), exists: true, fingerprints: parseFingerprints(cm) } : { inv: emptyInventory(), exists: false, fingerprints: {} };
  }

  async function writeInventory(s: Session, inv: Inventory, fingerprints: Fingerprints): Promise<void> {
    const obj = inventoryObject(s.tenantId, s.namespace, inv, fingerprints);
    const ref = objectRef(obj);
    // The inventory is tenantd's alone: force keeps a stray edit from blocking every apply.
    await s.call('write inventory', ref, (sig) => s.client.apply(obj, ref, { fieldManager, force: true }, sig));
  }

  // --- apply ----------------------------------------------------------------------------------

  /** Waits until an object being deleted is gone; throws a retryable error when it takes too long. */
  async function waitGone(s: Session, ref: KubeObjectRef, timeoutMs: number): Promise<void> {
    const deadline = now().getTime() + timeoutMs;
    for (;;) {
      const live = await s.get(ref);
      if (!live) return;
      const left = deadline - now().getTime();
      if (left <= 0) {
        throw retryable(E_OBJECT_TERMINATING, `${refKey(ref)} is still being deleted (finalizers: ${(live.metadata.finalizers ?? []).join(', ') || 'none'}); retrying later`, {
          tenantId: s.tenantId,
          ref: refKey(ref),
          finalizers: live.metadata.finalizers ?? [],
        });
      }
      await sleep(Math.min(pollIntervalMs, left), s.signal);
      s.checkAbort();
    }
  }

  function isImmutableRejection(err: unknown): boolean {
    if (!(err instanceof KubeApiError) || err.statusCode !== 422) return false;
    const texts = [err.status.message ?? '', ...(err.status.details?.causes ?? []).map((c) => `${c.reason ?? ''} ${c.message ?? ''}`)];
    return texts.some((t) => /immutable|Forbidden: updates to statefulset spec|FieldValueForbidden/.test(t));
  }

  /**
   * Applies an object tenantd applied before (it is in the inventory with a fingerprint) without
   * reading it first: one request instead of two on a converged pass. "Unchanged" when the
   * response's fingerprint is the recorded one. Undefined hands the object back to the full path,
   * which reads it first: when it is being deleted, or an immutable field needs a replace.
   */
  async function applyRecorded(s: Session, obj: KubeObject, force: boolean, recorded: string): Promise<{ outcome: ApplyOutcome; after: LiveObject } | undefined> {
    const ref = objectRef(obj);
    try {
      const { object, created } = await s.client.apply(obj, ref, { fieldManager, force }, s.signal);
      if (object.metadata.deletionTimestamp) return undefined;
      return { outcome: created ? 'created' : applyFingerprint(object, fieldManager) === recorded ? 'unchanged' : 'configured', after: object };
    } catch (err: unknown) {
      if (isImmutableRejection(err) && obj.metadata.annotations?.[ANNOTATION_REPLACE_STRATEGY] === 'orphan') return undefined;
      throw s.error(err, 'apply', ref);
    }
  }

  /**
   * Applies one rendered object. Refuses to adopt an object tenantd neither labelled nor applied;
   * replaces (Orphan delete + apply) an object whose immutable fields changed when it allows that.
   */
  async function applyObject(
    s: Session,
    obj: KubeObject,
    options: { force: boolean; known?: LiveObject | null; recorded?: string },
  ): Promise<{ outcome: ApplyOutcome; after: LiveObject }> {
    const ref = objectRef(obj);
    const key = refKey(ref);
    if (options.recorded !== undefined && options.known === undefined) {
      const fast = await applyRecorded(s, obj, options.force, options.recorded);
      if (fast) return fast;
    }
    // `known`: the caller has just read it (the namespace), no second GET.
    let before = options.known !== undefined ? options.known : await s.get(ref);
    if (before?.metadata.deletionTimestamp) {
      if (ref.kind === 'Namespace') {
        throw retryable(E_NAMESPACE_TERMINATING, `namespace ${ref.name} is still being deleted; tenant ${s.tenantId} is applied once it is gone`, {
          tenantId: s.tenantId,
          ref: key,
        });
      }
      await waitGone(s, ref, objectDeleteTimeoutMs);
      before = null;
    }
    // Adopting is refused: an object is tenantd's when it carries the labels or tenantd applied it
    // before (its labels may have been edited away; the apply restores them).
    if (before && !ownedBy(before, s.tenantId) && !appliedBy(before, fieldManager)) {
      throw stalled(
        E_NOT_OWNED,
        `${key} already exists and was not created by tenantd for tenant ${s.tenantId} (it lacks the app.kubernetes.io/managed-by=tenantd and tenantd.io/tenant-id=${s.tenantId} labels); tenantd does not adopt it. Delete or rename it, or label it to hand it over`,
        { tenantId: s.tenantId, ref: key },
      );
    }
    try {
      const { object, created } = await s.client.apply(obj, ref, { fieldManager, force: options.force }, s.signal);
      // Changed means a field tenantd owns changed: controllers move the resourceVersion all the time.
      const outcome: ApplyOutcome = created ? 'created' : before && ownedFieldChanges(before, object, fieldManager, changedPaths).length === 0 ? 'unchanged' : 'configured';
      return { outcome, after: object };
    } catch (err: unknown) {
      if (before && isImmutableRejection(err) && obj.metadata.annotations?.[ANNOTATION_REPLACE_STRATEGY] === 'orphan') {
        s.ctx.progress(`replacing ${key}: an immutable field changed; deleting it with propagationPolicy Orphan (its pods and claims stay)`, { ref: key, action: 'replace' });
        const uid = before.metadata.uid;
        await s.call('delete (orphan)', ref, (sig) => s.client.delete(ref, { propagationPolicy: 'Orphan', ...(uid ? { uid } : {}) }, sig));
        await waitGone(s, ref, objectDeleteTimeoutMs);
        const { object } = await s.call('apply', ref, (sig) => s.client.apply(obj, ref, { fieldManager, force: options.force }, sig));
        return { outcome: 'replaced', after: object };
      }
      throw s.error(err, 'apply', ref);
    }
  }

  function generatedSecretFor(rendered: RenderedTenant, obj: KubeObject): GeneratedSecret | undefined {
    if (obj.apiVersion !== 'v1' || obj.kind !== 'Secret') return undefined;
    return rendered.generatedSecrets.find((g) => g.name === obj.metadata.name && g.namespace === obj.metadata.namespace);
  }

  const decode = (v: unknown): string | undefined => (typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : undefined);

  /** Keys of a generated secret that are missing from the live Secret, and fixed keys with a wrong value. */
  function secretGaps(gs: GeneratedSecret, live: LiveObject | null): { missing: string[]; wrongFixed: string[] } {
    const data = (live?.data ?? {}) as Record<string, unknown>;
    const missing = gs.generatedKeys.filter((k) => !(typeof data[k] === 'string' && data[k] !== '')).sort();
    const wrongFixed = Object.keys(gs.fixed)
      .filter((k) => decode(data[k]) !== gs.fixed[k])
      .sort();
    return { missing, wrongFixed };
  }

  /**
   * Keeps the values of a generated Secret; generates (once) those it lacks. Values go only into the
   * Secret's data, written by the secrets field manager.
   */
  async function ensureSecretValues(s: Session, gs: GeneratedSecret, live: LiveObject | null): Promise<boolean> {
    const { missing, wrongFixed } = secretGaps(gs, live);
    if (missing.length === 0 && wrongFixed.length === 0) return false;
    const current = (live?.data ?? {}) as Record<string, unknown>;
    const data: Record<string, string> = {};
    const secrets: string[] = [];
    for (const key of gs.generatedKeys) {
      const existing = current[key];
      if (typeof existing === 'string' && existing !== '') {
        data[key] = existing;
        secrets.push(existing, decode(existing) ?? '');
      } else {
        const value = randomBytes(GENERATED_SECRET_BYTES).toString('base64url');
        data[key] = Buffer.from(value, 'utf8').toString('base64');
        secrets.push(value, data[key]);
      }
    }
    for (const [key, value] of Object.entries(gs.fixed)) data[key] = Buffer.from(value, 'utf8').toString('base64');
    const ref: KubeObjectRef = { apiVersion: 'v1', kind: 'Secret', name: gs.name, namespace: gs.namespace };
    const body = { apiVersion: 'v1', kind: 'Secret', metadata: { name: gs.name, namespace: gs.namespace }, data };
    s.redact.push(...secrets.filter((x) => x.length > 0));
    try {
      await s.call('write secret values', ref, (sig) => s.client.apply(body, ref, { fieldManager: secretsManager, force: true }, sig));
    } finally {
      s.redact.length = 0;
    }
    s.ctx.progress(missing.length > 0 ? `generated secret ${gs.name} (keys: ${missing.join(', ')})` : `restored fixed keys of secret ${gs.name} (keys: ${wrongFixed.join(', ')})`, {
      secret: gs.name,
      generatedKeys: missing,
    });
    return true;
  }

  /** Deletes one object if, and only if, it carries this tenant's ownership labels. */
  async function deleteOwned(s: Session, ref: KubeObjectRef): Promise<'deleted' | 'absent' | 'not-owned'> {
    const live = await s.get(ref);
    if (!live) return 'absent';
    if (!ownedBy(live, s.tenantId)) return 'not-owned';
    if (live.metadata.deletionTimestamp) return 'deleted';
    const uid = live.metadata.uid;
    try {
      const outcome = await s.client.delete(ref, { propagationPolicy: 'Background', ...(uid ? { uid } : {}) }, s.signal);
      return outcome === 'absent' ? 'absent' : 'deleted';
    } catch (err: unknown) {
      throw s.error(err, 'delete', ref);
    }
  }

  async function prune(s: Session, stale: readonly KubeObjectRef[], result: GroupResult): Promise<void> {
    for (const ref of stale) {
      const key = refKey(ref);
      const outcome = await deleteOwned(s, ref);
      if (outcome === 'deleted') {
        result.pruned.push(key);
        s.ctx.progress(`pruned ${key}`, { ref: key, action: 'delete' });
      } else if (outcome === 'not-owned') {
        result.skipped.push({ ref: key, reason: 'not labelled as created by tenantd for this tenant; left alone' });
        s.ctx.progress(`left ${key} alone: it is no longer rendered but does not carry tenantd's labels`, { ref: key, action: 'skip' });
      }
    }
  }

  /** Applies one group (namespace first), records it in the inventory, prunes what it no longer renders. */
  async function syncGroup(s: Session, rendered: RenderedTenant, group: ApplyGroup, force: boolean): Promise<GroupResult> {
    const result: GroupResult = { created: [], configured: [], replaced: [], unchanged: 0, pruned: [], skipped: [], secretsGenerated: [] };
    const objects = rendered.groups[group];
    const namespaces = objects.filter((o) => o.kind === 'Namespace' && o.apiVersion === 'v1');
    const rest = objects.filter((o) => !namespaces.includes(o));

    const record = (key: string, outcome: ApplyOutcome): void => {
      if (outcome === 'unchanged') {
        result.unchanged++;
        return;
      }
      result[outcome].push(key);
      s.ctx.progress(`${outcome} ${key}`, { ref: key, action: outcome });
    };

    // The namespace first: everything else, the inventory included, lives in it. A group without
    // it reads the inventory directly (absent when the namespace is): one request less per phase.
    const nsLive = namespaces.length > 0 ? await s.get(NAMESPACE_REF(s.namespace)) : undefined;
    const current = nsLive === null || nsLive?.metadata.deletionTimestamp ? { inv: emptyInventory(), exists: false, fingerprints: {} } : await readInventory(s);
    const fingerprints: Fingerprints = { ...current.fingerprints };
    for (const ns of namespaces) {
      const { outcome, after } = await applyObject(s, ns, { force, known: ns.metadata.name === s.namespace ? (nsLive ?? null) : undefined });
      record(refKey(objectRef(ns)), outcome);
      // A namespace this pass created (or re-created) needs its RoleBinding before anything goes in.
      if (ns.metadata.name === s.namespace) await ensureAccess(s, after);
    }

    // Record the intent before creating anything, so a crash never leaves an object unlisted.
    const desiredRefs = normalizeRefs(objects.map(objectRef));
    // By identity, not version: a PDB applied as policy/v1beta1 and now as policy/v1 is one object.
    const desiredKeys = new Set(desiredRefs.map(identityKey));
    const stale = current.inv[group].filter((r) => !desiredKeys.has(identityKey(r)));
    const intent: Inventory = { ...current.inv, [group]: normalizeRefs([...current.inv[group], ...desiredRefs]) };
    if (!current.exists || !sameInventory(intent, current.inv)) await writeInventory(s, intent, current.fingerprints);

    // A namespace this pass created holds nothing of anyone's yet: no need to read each object first.
    const fresh = nsLive === null && namespaces.some((n) => n.metadata.name === s.namespace);
    // Objects this group applied before, with the fingerprint of that apply, are not read first.
    const listed = new Set(current.inv[group].map(identityKey));
    for (const obj of rest) {
      const id = identityKey(objectRef(obj));
      const inFresh = fresh && obj.metadata.namespace === s.namespace;
      const recorded = listed.has(id) ? current.fingerprints[id] : undefined;
      const { outcome, after } = await applyObject(s, obj, { force, ...(inFresh ? { known: null } : recorded !== undefined ? { recorded } : {}) });
      fingerprints[id] = applyFingerprint(after, fieldManager);
      record(refKey(objectRef(obj)), outcome);
      const gs = generatedSecretFor(rendered, obj);
      // tenantd's own apply never writes a Secret's data: the response holds the values as they were.
      if (gs && (await ensureSecretValues(s, gs, after))) result.secretsGenerated.push(gs.name);
    }

    await prune(s, stale, result);
    const final: Inventory = { ...intent, [group]: desiredRefs };
    if (!sameInventory(final, intent) || !sameFingerprints(fingerprints, current.fingerprints)) await writeInventory(s, final, fingerprints);
    return result;
  }

  async function phase(ctx: ProviderContext, group: ApplyGroup, phaseName: string): Promise<PhaseResult> {
    const rendered = requireDesired(ctx, phaseName);
    return withSession(ctx, async (s) => runPhase(s, await s.adapt(rendered), group, phaseName));
  }

  async function runPhase(s: Session, rendered: RenderedTenant, group: ApplyGroup, phaseName: string): Promise<PhaseResult> {
    const ctx = s.ctx;
    const force = ctx.tenant.spec.forceConflicts === true;
    const r = await syncGroup(s, rendered, group, force);
    const changed = r.created.length + r.configured.length + r.replaced.length + r.pruned.length;
    const where = `${group} group on ${s.client.context}`;
    const result: PhaseResult = {
      summary:
        changed === 0 && r.secretsGenerated.length === 0
          ? `${phaseName}: ${r.unchanged} ${group} objects up to date on ${s.client.context}`
          : `${phaseName}: ${r.created.length} created, ${r.configured.length} configured, ${r.replaced.length} replaced, ${r.pruned.length} pruned, ${r.unchanged} unchanged (${where})`,
      details: { group, cluster: s.client.context, fieldManager, force, ...r },
    };
    if (group === 'Configure') result.outputs = { ...outputsFor(rendered), 'kubernetes.context': s.client.context };
    return result;
  }

  // --- plan -----------------------------------------------------------------------------------

  interface ObjectDiff {
    change: ResourceChange;
    conflicts: { ref: string; manager: string; field: string }[];
  }

  /** What applying `obj` would change, by a server-side dry-run apply diffed against `live`. */
  async function dryRunDiff(s: Session, obj: KubeObject, live: LiveObject | null, force: boolean): Promise<ObjectDiff> {
    const ref = objectRef(obj);
    const key = refKey(ref);
    try {
      const { object } = await s.client.apply(obj, ref, { fieldManager, force, dryRun: true }, s.signal);
      if (!live) return { change: { ref, action: 'create' }, conflicts: [] };
      const fields = ownedFieldChanges(live, object, fieldManager, changedPaths);
      return { change: fields.length > 0 ? { ref, action: 'update', fields } : { ref, action: 'unchanged' }, conflicts: [] };
    } catch (err: unknown) {
      if (err instanceof KubeApiError && err.statusCode === 409) {
        const conflicts = fieldConflicts(err.status);
        if (conflicts.length > 0) {
          return {
            change: { ref, action: 'update', fields: [...new Set(conflicts.map((c) => stripDot(c.field)))].sort() },
            conflicts: conflicts.map((c) => ({ ref: key, manager: c.manager, field: c.field })),
          };
        }
      }
      if (live && isImmutableRejection(err) && obj.metadata.annotations?.[ANNOTATION_REPLACE_STRATEGY] === 'orphan') {
        return { change: { ref, action: 'replace', fields: projectedDiff(obj, live) }, conflicts: [] };
      }
      throw s.error(err, 'dry-run apply', ref);
    }
  }

  function plan(ctx: ProviderContext): Promise<PlanResult> {
    return withSession(ctx, (s) => planWith(s));
  }

  async function planWith(s: Session): Promise<PlanResult> {
    const ctx = s.ctx;
    const nsRef = NAMESPACE_REF(s.namespace);
    const nsLive = await s.get(nsRef);
    const nsUsable = nsLive !== null && !nsLive.metadata.deletionTimestamp;
    const { inv } = nsUsable ? await readInventory(s) : { inv: emptyInventory() };
    const changes: ResourceChange[] = [];
    const conflicts: { ref: string; manager: string; field: string }[] = [];
    const notOwned: string[] = [];
    const secretsToGenerate: string[] = [];

    if (!ctx.desired) {
      if (nsLive) {
        for (const group of [...APPLY_GROUPS].reverse()) {
          for (const ref of inv[group]) if (refKey(ref) !== refKey(nsRef)) changes.push({ ref, action: 'delete' });
        }
        if (ownedBy(nsLive, s.tenantId)) changes.push({ ref: nsRef, action: 'delete' });
      }
      return {
        summary: `plan: ${changes.length} to delete on ${s.client.context}`,
        details: { cluster: s.client.context, delete: changes.length },
        changes,
      };
    }

    const rendered = await s.adapt(ctx.desired);
    const force = ctx.tenant.spec.forceConflicts === true;
    const desiredKeys = new Set<string>();
    for (const obj of allObjects(rendered)) {
      const ref = objectRef(obj);
      const key = refKey(ref);
      desiredKeys.add(identityKey(ref));
      const clusterScoped = ref.namespace === undefined;
      const live = clusterScoped || nsUsable ? await s.get(ref) : null;
      if (live && !ownedBy(live, s.tenantId) && !appliedBy(live, fieldManager)) notOwned.push(key);
      const gs = generatedSecretFor(rendered, obj);
      if (gs) {
        const gaps = secretGaps(gs, live);
        if (gaps.missing.length > 0) secretsToGenerate.push(gs.name);
      }
      if (!clusterScoped && !nsUsable) {
        // The namespace does not exist yet: a namespaced dry run would only say so.
        changes.push({ ref, action: 'create' });
        continue;
      }
      s.checkAbort();
      const diff = await dryRunDiff(s, obj, live, force);
      changes.push(diff.change);
      conflicts.push(...diff.conflicts);
    }
    for (const group of APPLY_GROUPS) {
      for (const ref of inv[group]) if (!desiredKeys.has(identityKey(ref))) changes.push({ ref, action: 'delete' });
    }
    const n = {
      create: changes.filter((c) => c.action === 'create').length,
      update: changes.filter((c) => c.action === 'update').length,
      replace: changes.filter((c) => c.action === 'replace').length,
      delete: changes.filter((c) => c.action === 'delete').length,
      unchanged: changes.filter((c) => c.action === 'unchanged').length,
    };
    return {
      summary: `plan: ${n.create} to create, ${n.update} to update, ${n.replace} to replace, ${n.delete} to delete, ${n.unchanged} unchanged on ${s.client.context}`,
      details: { ...n, cluster: s.client.context, digest: rendered.digest, secretsToGenerate, conflicts, notOwned, namespaceExists: nsLive !== null },
      changes,
      outputs: outputsFor(rendered),
    };
  }

  // --- verify ---------------------------------------------------------------------------------

  function verifyTimeoutMs(doc: TenantInfrastructureDocument): number {
    if (opts.verifyTimeoutMs !== undefined) return opts.verifyTimeoutMs;
    const seconds = doc.spec.verifyTimeoutSeconds ?? TIER_POLICIES[doc.spec.tier]?.verifyTimeoutSeconds ?? 600;
    return seconds * 1000;
  }

  async function verifyReady(s: Session, rendered: RenderedTenant): Promise<PhaseResult> {
    const timeoutMs = verifyTimeoutMs(s.ctx.tenant);
    const deadline = now().getTime() + timeoutMs;
    const targets = allObjects(rendered).filter((o) => WORKLOAD_KINDS.has(o.kind) || o.kind === 'PersistentVolumeClaim');
    const reported = new Map<string, string>();
    let polls = 0;
    for (;;) {
      s.checkAbort();
      polls++;
      const pending: { ref: string; summary: string }[] = [];
      for (const obj of targets) {
        const ref = objectRef(obj);
        const key = refKey(ref);
        const live = await s.get(ref);
        const state: Readiness = !live
          ? { ready: false, summary: `${obj.kind === 'PersistentVolumeClaim' ? 'claim ' : ''}${ref.name} does not exist` }
          : WORKLOAD_KINDS.has(obj.kind)
            ? workloadReadiness({ ...live, kind: obj.kind })
            : claimReadiness(live);
        if (state.failure) {
          throw retryable(E_ROLLOUT_FAILED, `rollout of ${key} failed: ${state.failure.reason}${state.failure.message ? ` (${state.failure.message})` : ''}`, {
            tenantId: s.tenantId,
            ref: key,
            reason: state.failure.reason,
            message: state.failure.message,
            readyReplicas: state.readyReplicas ?? 0,
            desiredReplicas: state.desiredReplicas ?? 0,
          });
        }
        if (reported.get(key) !== state.summary) {
          reported.set(key, state.summary);
          s.ctx.progress(state.summary, {
            ref: key,
            ready: state.ready,
            ...(state.readyReplicas !== undefined ? { readyReplicas: state.readyReplicas, desiredReplicas: state.desiredReplicas } : {}),
          });
        }
        if (!state.ready) pending.push({ ref: key, summary: state.summary });
      }
      if (pending.length === 0) break;
      const left = deadline - now().getTime();
      if (left <= 0) {
        throw retryable(
          E_VERIFY_TIMEOUT,
          `tenant ${s.tenantId} not ready after ${Math.round(timeoutMs / 1000)} s: ${listNames(pending.map((p) => p.summary))}`,
          { tenantId: s.tenantId, timeoutMs, pending },
        );
      }
      await sleep(Math.min(pollIntervalMs, left), s.signal);
    }

    const outputs: Record<string, string> = { ...outputsFor(rendered), 'kubernetes.context': s.client.context };
    const ingress = rendered.groups.Configure.find((o) => o.kind === 'Ingress');
    if (ingress) {
      const live = await s.get(objectRef(ingress));
      const address = live ? ingressAddress(live) : undefined;
      if (address) outputs['ingress.address'] = address;
    }
    return {
      summary: `verify: ${targets.length} workloads and claims ready on ${s.client.context}`,
      details: { cluster: s.client.context, ready: targets.map((o) => refKey(objectRef(o))), polls },
      outputs: Object.fromEntries(Object.entries(outputs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    };
  }

  function namespaceConditions(ns: LiveObject): string[] {
    const status = (ns.status ?? {}) as { conditions?: unknown };
    const list = Array.isArray(status.conditions) ? status.conditions : [];
    return list
      .filter((c): c is { status?: unknown; message?: unknown } => c !== null && typeof c === 'object')
      .filter((c) => c.status === 'True' && typeof c.message === 'string')
      .map((c) => String(c.message));
  }

  async function verifyGone(s: Session): Promise<PhaseResult> {
    const nsRef = NAMESPACE_REF(s.namespace);
    const deadline = now().getTime() + namespaceDeleteTimeoutMs;
    let last = '';
    for (;;) {
      s.checkAbort();
      const ns = await s.get(nsRef);
      if (!ns) return { summary: `verify: namespace ${s.namespace} is gone from ${s.client.context}`, details: { cluster: s.client.context, namespace: s.namespace } };
      if (!ns.metadata.deletionTimestamp) {
        if (!ownedBy(ns, s.tenantId)) {
          return {
            summary: `verify: namespace ${s.namespace} was not created by tenantd and is kept`,
            details: { cluster: s.client.context, namespace: s.namespace, kept: true },
          };
        }
        // Ours and not terminating (deleted and re-created meanwhile?): delete it again.
        await deleteOwned(s, nsRef);
        continue;
      }
      const conditions = namespaceConditions(ns);
      const message = conditions.length > 0 ? `namespace ${s.namespace} terminating: ${conditions.join('; ')}` : `namespace ${s.namespace} terminating`;
      if (message !== last) {
        last = message;
        s.ctx.progress(message, { namespace: s.namespace, finalizers: ns.metadata.finalizers ?? [], conditions });
      }
      const left = deadline - now().getTime();
      if (left <= 0) {
        throw retryable(E_NAMESPACE_TERMINATING, `namespace ${s.namespace} still exists after ${Math.round(namespaceDeleteTimeoutMs / 1000)} s: ${conditions.join('; ') || 'waiting for its finalizers'}`, {
          tenantId: s.tenantId,
          namespace: s.namespace,
          conditions,
          finalizers: ((ns.spec ?? {}) as { finalizers?: unknown }).finalizers ?? [],
        });
      }
      await sleep(Math.min(pollIntervalMs, left), s.signal);
    }
  }

  function verify(ctx: ProviderContext): Promise<PhaseResult> {
    return withSession(ctx, async (s) => (ctx.desired ? verifyReady(s, await s.adapt(ctx.desired)) : verifyGone(s)));
  }

  // --- destroy --------------------------------------------------------------------------------

  function destroy(ctx: ProviderContext): Promise<PhaseResult> {
    return withSession(ctx, (s) => destroyWith(s));
  }

  async function destroyWith(s: Session): Promise<PhaseResult> {
    const ctx = s.ctx;
    const nsRef = NAMESPACE_REF(s.namespace);
    const nsLive = await s.get(nsRef);
    if (!nsLive) {
      return { summary: `destroy: namespace ${s.namespace} does not exist on ${s.client.context}; nothing to delete`, details: { cluster: s.client.context, deleted: [], skipped: [] } };
    }
    if (opts.tenantRole && nsLive.metadata.deletionTimestamp) {
      // Its RoleBinding may already be gone with the rest; the namespace controller finishes the job.
      return { summary: `destroy: namespace ${s.namespace} is already being deleted on ${s.client.context}`, details: { cluster: s.client.context, deleted: [], skipped: [], namespace: 'deleting' } };
    }
    if (opts.tenantRole && !ownedBy(nsLive, s.tenantId) && !appliedBy(nsLive, fieldManager)) {
      // tenantd never bound itself into a namespace it did not create, so nothing in it is tenantd's.
      return { summary: `destroy: namespace ${s.namespace} was not created by tenantd; nothing to delete`, details: { cluster: s.client.context, deleted: [], skipped: [], namespace: 'kept' } };
    }
    const { inv } = await readInventory(s);
    const deleted: string[] = [];
    const skipped: { ref: string; reason: string }[] = [];
    // Reverse apply order: ingress and services before the database and the namespace.
    for (const group of [...APPLY_GROUPS].reverse()) {
      for (const ref of inv[group]) {
        const key = refKey(ref);
        if (key === refKey(nsRef)) continue;
        const outcome = await deleteOwned(s, ref);
        if (outcome === 'deleted') {
          deleted.push(key);
          ctx.progress(`deleted ${key}`, { ref: key, action: 'delete' });
        } else if (outcome === 'not-owned') {
          skipped.push({ ref: key, reason: 'not labelled as created by tenantd for this tenant' });
        }
      }
    }
    let namespace: 'deleting' | 'kept' = 'kept';
    if (ownedBy(nsLive, s.tenantId)) {
      await deleteOwned(s, nsRef);
      namespace = 'deleting';
      ctx.progress(`deleting namespace ${s.namespace}`, { ref: refKey(nsRef), action: 'delete' });
    } else {
      skipped.push({ ref: refKey(nsRef), reason: 'not labelled as created by tenantd for this tenant' });
      await deleteOwned(s, inventoryRef(s.namespace));
    }
    return {
      summary: `destroy: deleted ${deleted.length} objects${namespace === 'deleting' ? ` and namespace ${s.namespace}` : ''} on ${s.client.context}${skipped.length > 0 ? `, left ${skipped.length} not created by tenantd` : ''}`,
      details: { cluster: s.client.context, deleted, skipped, namespace },
    };
  }

  // --- refresh (drift) ------------------------------------------------------------------------

  function refresh(ctx: ProviderContext, correct: boolean): Promise<DriftReport> {
    return withSession(ctx, (s) => refreshWith(s, correct));
  }

  async function refreshWith(s: Session, correct: boolean): Promise<DriftReport> {
    const ctx = s.ctx;
    if (!ctx.desired) {
      // A deprovisioned tenant: anything left is reported, never deleted by a drift check.
      const ns = await s.get(NAMESPACE_REF(s.namespace));
      const changes: ResourceChange[] = ns && ownedBy(ns, s.tenantId) && !ns.metadata.deletionTimestamp ? [{ ref: NAMESPACE_REF(s.namespace), action: 'delete' }] : [];
      return { drifted: changes.length > 0, changes, corrected: false };
    }
    const rendered = await s.adapt(ctx.desired);
    const nsLive = await s.get(NAMESPACE_REF(s.namespace));
    const nsUsable = nsLive !== null && !nsLive.metadata.deletionTimestamp;
    const { inv } = nsUsable ? await readInventory(s) : { inv: emptyInventory() };
    const changes: ResourceChange[] = [];
    const desiredKeys = new Set<string>();
    for (const obj of allObjects(rendered)) {
      const ref = objectRef(obj);
      desiredKeys.add(identityKey(ref));
      const live = ref.namespace === undefined || nsUsable ? await s.get(ref) : null;
      if (!live) {
        changes.push({ ref, action: 'create' });
        continue;
      }
      // Forced: the result shows tenantd's values even where another manager took a field over.
      const diff = await dryRunDiff(s, obj, live, true);
      const gs = generatedSecretFor(rendered, obj);
      const gaps = gs ? secretGaps(gs, live) : { missing: [], wrongFixed: [] };
      const secretFields = [...gaps.missing, ...gaps.wrongFixed].map((k) => `data.${k}`);
      if (secretFields.length > 0) {
        const fields = [...new Set([...(diff.change.fields ?? []), ...secretFields])].sort();
        changes.push({ ref, action: diff.change.action === 'unchanged' ? 'update' : diff.change.action, fields });
      } else if (diff.change.action !== 'unchanged') {
        changes.push(diff.change);
      }
    }
    for (const group of APPLY_GROUPS) {
      for (const ref of inv[group]) {
        if (desiredKeys.has(identityKey(ref))) continue;
        const live = await s.get(ref);
        if (live && ownedBy(live, s.tenantId)) changes.push({ ref, action: 'delete' });
      }
    }
    const drifted = changes.length > 0;
    if (drifted && correct) {
      for (const group of APPLY_GROUPS) await syncGroup(s, rendered, group, true);
      ctx.progress(`corrected drift in ${changes.length} objects`, { changes: changes.map((c) => refKey(c.ref)) });
    }
    return { drifted, changes, corrected: drifted && correct };
  }

  // --- admission: kinds the tenant's cluster does not serve -------------------------------------

  /**
   * A tenant that needs a kind its cluster serves in no version tenantd can send is INVALID, with the
   * kind and the cluster's version, rather than failing in Apply and retrying forever. When the
   * cluster cannot be asked now, nothing is said here: the phases wait for it as usual.
   */
  async function servedIssues(doc: TenantInfrastructureDocument): Promise<Array<{ path: string; message: string }>> {
    const context = contextForTenant(doc);
    const { served } = connectionFor(context);
    const link = linkSignals([closed.signal]);
    const timer = setTimeout(() => link.abort(), opts.requestTimeoutMs ?? 30_000);
    try {
      for (const obj of allObjects(renderTenant(doc))) await served.versionFor(obj, link.signal);
      return [];
    } catch (err: unknown) {
      if (!(err instanceof UnsupportedKindError)) return [];
      const version = await served.clusterVersion(link.signal).catch(() => 'an unknown version');
      return [
        {
          path: 'spec',
          message: `cluster ${context} (Kubernetes ${version}) serves no version of ${err.kind} that tenantd can send (tried ${err.tried.join(', ')}); this tenant needs one (high availability or more than one replica). Use a cluster that serves it, or change the spec so it is not needed`,
        },
      ];
    } finally {
      clearTimeout(timer);
      link.dispose();
    }
  }

  // --- readiness of the provider itself -------------------------------------------------------

  function contextsInUse(): string[] {
    const set = new Set<string>();
    if (opts.clusters && opts.clusters.clusters.length > 0) for (const c of opts.clusters.clusters) set.add(c.context);
    else set.add(defaultContext);
    return [...set].sort();
  }

  async function ready(): Promise<boolean> {
    if (closed.signal.aborted) return false;
    const results = await Promise.all(
      contextsInUse().map(async (context) => {
        const link = linkSignals([closed.signal]);
        const timer = setTimeout(() => link.abort(), 5000);
        try {
          await clientFor(context).version(link.signal);
          return true;
        } catch {
          return false;
        } finally {
          clearTimeout(timer);
          link.dispose();
        }
      }),
    );
    return results.every(Boolean);
  }

  return {
    name: 'kubernetes',
    // A region no cluster serves makes the tenant INVALID up front rather than failing in Apply.
    admit: async (doc, current) => {
      const issue = placementIssue(opts.clusters, doc) ?? moveIssue(opts.clusters, current, doc);
      return issue ? [issue] : servedIssues(doc);
    },
    plan,
    apply: (ctx) => phase(ctx, 'Apply', 'apply'),
    deploy: (ctx) => phase(ctx, 'Deploy', 'deploy'),
    configure: (ctx) => phase(ctx, 'Configure', 'configure'),
    verify,
    destroy,
    refresh,
    ready,
    async close(): Promise<void> {
      closed.abort();
      for (const { client } of clients.values()) client.close();
    },
  };
}

/**
 * `tenantd plan --provider kubernetes`: a server-side dry-run plan of one tenant without a
 * reconcile. `rendered` null plans its deprovision.
 */
export function planAgainstCluster(
  provider: InfrastructureProvider,
  tenant: TenantInfrastructureDocument,
  rendered: RenderedTenant | null,
  options: { signal?: AbortSignal; operationId?: string; progress?: ProviderContext['progress'] } = {},
): Promise<PlanResult> {
  return provider.plan({
    tenantId: tenant.metadata.tenantId,
    tenant,
    desired: rendered,
    operationId: options.operationId ?? 'plan',
    signal: options.signal ?? new AbortController().signal,
    progress: options.progress ?? (() => undefined),
  });
}

/** Whether an error means the cluster could not be reached (for /readyz and logs). */
export const isClusterUnreachable = (err: unknown): boolean => err instanceof TenantdError && err.code === E_CLUSTER_UNREACHABLE;
/** Whether an error is a field-manager conflict. */
export const isFieldConflict = (err: unknown): boolean => err instanceof TenantdError && err.code === E_FIELD_CONFLICT;
