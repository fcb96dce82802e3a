/**
 * Emulated controllers: the deployment and statefulset controllers (status, readiness, a failed
 * rollout), the PVC binder, the quota controller and the namespace controller (content deletion,
 * then the `kubernetes` finalizer). They write as `kube-controller-manager`, like the real ones.
 */
import { createHash } from 'node:crypto';
import { KubeStatusError } from './errors.js';
import { child, clone, deepEqual, isObject, str, timestamp, type JsonObject, type JsonValue, type KubeObject } from './json.js';
import { findByKind, type KindInfo } from './kinds.js';
import { NAMESPACE_KIND, type Registry, type RegistryHooks } from './registry.js';
import type { ObjectStore } from './store.js';

export const CONTROLLER_MANAGER = 'kube-controller-manager';

export interface ControllerOptions {
  /** Workloads become ready and PVCs bound by themselves, `controllerDelayMs` after a write. */
  autoReady: boolean;
  /** How long after a write the controllers act (observedGeneration, readiness, binding). */
  controllerDelayMs: number;
  /** 'auto': terminating namespaces advance every `namespaceStepMs`; 'manual': only on stepNamespaces(). */
  namespaceFinalization: 'auto' | 'manual';
  namespaceStepMs: number;
  /** Every namespace gets the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap. */
  systemObjects: boolean;
}

/** Namespaces a cluster starts with; the first three may not be deleted. */
export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';

const ROOT_CA_PEM = [
  '-----BEGIN CERTIFICATE-----',
  'MIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAjMSEwHwYDVQQDDBhrdWJlLWVt',
  'dWxhdG9yLWNhLW5vdC1yZWFsMB4XDTI0MDEwMTAwMDAwMFoXDTM0MDEwMTAwMDAw',
  'MFowIzEhMB8GA1UEAwwYa3ViZS1lbXVsYXRvci1jYS1ub3QtcmVhbDBZMBMGByqG',
  '-----END CERTIFICATE-----',
  '',
].join('\n');

interface RolloutFailure {
  reason: string;
}

function must(info: KindInfo | undefined): KindInfo {
  if (!info) throw new Error('kind missing from the registry');
  return info;
}

const DEPLOYMENT = must(findByKind('apps/v1', 'Deployment'));
const STATEFULSET = must(findByKind('apps/v1', 'StatefulSet'));
const PVC = must(findByKind('v1', 'PersistentVolumeClaim'));
const QUOTA = must(findByKind('v1', 'ResourceQuota'));
const CONFIGMAP = must(findByKind('v1', 'ConfigMap'));
const SERVICEACCOUNT = must(findByKind('v1', 'ServiceAccount'));

function keyOf(info: KindInfo, namespace: string, name: string): string {
  return `${info.kind}/${namespace}/${name}`;
}

function specOf(obj: KubeObject): JsonObject {
  return isObject(obj.spec) ? obj.spec : {};
}

function statusOf(obj: KubeObject): JsonObject {
  return isObject(obj.status) ? obj.status : {};
}

function desiredReplicas(obj: KubeObject): number {
  const r = specOf(obj).replicas;
  return typeof r === 'number' ? r : 1;
}

function templateHash(obj: KubeObject): string {
  return createHash('sha256').update(JSON.stringify(specOf(obj).template ?? {})).digest('hex').slice(0, 10);
}

/** maxUnavailable resolved against the replica count (percentages round down), default 25%. */
function maxUnavailable(obj: KubeObject, desired: number): number {
  const strategy = specOf(obj).strategy;
  const rolling = isObject(strategy) && isObject(strategy.rollingUpdate) ? strategy.rollingUpdate : {};
  const raw: JsonValue = rolling.maxUnavailable ?? '25%';
  if (typeof raw === 'number') return raw;
  const pct = /^(\d+)%$/.exec(String(raw));
  return pct ? Math.floor((desired * Number(pct[1])) / 100) : 0;
}

function condition(previous: JsonValue | undefined, type: string, status: string, reason: string, message: string, now: string, withUpdateTime: boolean): JsonObject {
  const prev = Array.isArray(previous) ? previous.find((c) => isObject(c) && c.type === type) : undefined;
  const unchanged = isObject(prev) && prev.status === status && prev.reason === reason && prev.message === message;
  const transition = isObject(prev) && prev.status === status && typeof prev.lastTransitionTime === 'string' ? prev.lastTransitionTime : now;
  const c: JsonObject = { type, status };
  if (withUpdateTime) c.lastUpdateTime = unchanged && isObject(prev) && typeof prev.lastUpdateTime === 'string' ? prev.lastUpdateTime : now;
  c.lastTransitionTime = transition;
  c.reason = reason;
  c.message = message;
  return c;
}

function deploymentStatus(obj: KubeObject, ready: number, failure: RolloutFailure | undefined, now: string): JsonObject {
  const desired = desiredReplicas(obj);
  const name = String(obj.metadata.name);
  const rs = `${name}-${templateHash(obj)}`;
  const prev = statusOf(obj).conditions;
  const status: JsonObject = { observedGeneration: obj.metadata.generation ?? 1 };
  // The real status omits zero-valued counters (omitempty), so absent means 0.
  if (desired > 0) {
    status.replicas = desired;
    status.updatedReplicas = desired;
  }
  if (ready > 0) {
    status.readyReplicas = ready;
    status.availableReplicas = ready;
  }
  if (desired - ready > 0) status.unavailableReplicas = desired - ready;
  const available = ready >= desired - maxUnavailable(obj, desired);
  const conditions = [
    available
      ? condition(prev, 'Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.', now, true)
      : condition(prev, 'Available', 'False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.', now, true),
    failure
      ? condition(prev, 'Progressing', 'False', failure.reason, `ReplicaSet "${rs}" has timed out progressing.`, now, true)
      : ready >= desired
        ? condition(prev, 'Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${rs}" has successfully progressed.`, now, true)
        : condition(prev, 'Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${rs}" is progressing.`, now, true),
  ];
  status.conditions = conditions;
  return status;
}

function statefulSetStatus(obj: KubeObject, ready: number, failure: RolloutFailure | undefined, now: string): JsonObject {
  const desired = desiredReplicas(obj);
  const revision = `${String(obj.metadata.name)}-${templateHash(obj).slice(0, 10)}`;
  const status: JsonObject = { observedGeneration: obj.metadata.generation ?? 1, replicas: desired, availableReplicas: ready };
  if (ready > 0) {
    status.readyReplicas = ready;
    status.currentReplicas = ready;
    status.updatedReplicas = ready;
  }
  status.currentRevision = revision;
  status.updateRevision = revision;
  status.collisionCount = 0;
  if (failure) {
    // Real StatefulSets have no progress deadline; the emulator reports a failure the same way as for Deployments.
    status.conditions = [condition(statusOf(obj).conditions, 'Progressing', 'False', failure.reason, `StatefulSet "${String(obj.metadata.name)}" has timed out progressing.`, now, false)];
  }
  return status;
}

export class Controllers implements RegistryHooks {
  private registry: Registry | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private namespaceTimer: NodeJS.Timeout | undefined;
  private readonly readyOverride = new Map<string, number>();
  private readonly failures = new Map<string, RolloutFailure>();
  private closed = false;

  constructor(
    private readonly store: ObjectStore,
    readonly options: ControllerOptions,
  ) {}

  attach(registry: Registry): void {
    this.registry = registry;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.namespaceTimer) clearTimeout(this.namespaceTimer);
    this.namespaceTimer = undefined;
  }

  // ----- RegistryHooks -------------------------------------------------------------------------

  committed(info: KindInfo, obj: KubeObject, old: KubeObject | undefined): void {
    const namespace = str(obj.metadata.namespace) ?? '';
    const name = String(obj.metadata.name);
    if (info === NAMESPACE_KIND && !old && this.options.systemObjects) this.later(() => this.populateNamespace(name));
    if ((info === DEPLOYMENT || info === STATEFULSET) && statusOf(obj).observedGeneration !== obj.metadata.generation) {
      this.later(() => this.reconcileWorkload(info, namespace, name));
    }
    if (info === PVC && this.options.autoReady && statusOf(obj).phase === 'Pending' && !obj.metadata.deletionTimestamp) {
      this.later(() => this.bindPvc(namespace, name));
    }
    if (info === QUOTA && !deepEqual(specOf(obj).hard, statusOf(obj).hard)) {
      this.later(() => this.reconcileQuota(namespace, name));
    }
    if (info === NAMESPACE_KIND && obj.metadata.deletionTimestamp) this.scheduleNamespaceStep();
  }

  deleted(info: KindInfo, obj: KubeObject): void {
    const namespace = str(obj.metadata.namespace) ?? '';
    const name = String(obj.metadata.name);
    const key = keyOf(info, namespace, name);
    this.readyOverride.delete(key);
    this.failures.delete(key);
    const systemObject = (info === CONFIGMAP && name === ROOT_CA_CONFIGMAP) || (info === SERVICEACCOUNT && name === 'default');
    if (systemObject && this.options.systemObjects) this.later(() => this.populateNamespace(namespace));
  }

  /** Creates what the root-CA publisher and the serviceaccount controller put in every namespace. */
  populateNamespace(namespace: string): void {
    const ns = this.store.peek(NAMESPACE_KIND, undefined, namespace);
    if (!ns || ns.metadata.deletionTimestamp) return;
    const registry = this.requireRegistry();
    const write = { manager: CONTROLLER_MANAGER, dryRun: false };
    if (!this.store.peek(SERVICEACCOUNT, namespace, 'default')) {
      registry.create(SERVICEACCOUNT, namespace, { metadata: { name: 'default' } }, write);
    }
    if (!this.store.peek(CONFIGMAP, namespace, ROOT_CA_CONFIGMAP)) {
      registry.create(CONFIGMAP, namespace, {
        metadata: {
          name: ROOT_CA_CONFIGMAP,
          annotations: {
            'kubernetes.io/description':
              'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.',
          },
        },
        data: { 'ca.crt': ROOT_CA_PEM },
      }, write);
    }
  }

  // ----- test controls -------------------------------------------------------------------------

  setReady(info: KindInfo, namespace: string, name: string, readyReplicas: number): KubeObject {
    this.requireWorkload(info);
    const key = keyOf(info, namespace, name);
    this.readyOverride.set(key, readyReplicas);
    this.failures.delete(key);
    return this.reconcileWorkload(info, namespace, name, readyReplicas);
  }

  failRollout(info: KindInfo, namespace: string, name: string, reason: string): KubeObject {
    this.requireWorkload(info);
    this.failures.set(keyOf(info, namespace, name), { reason });
    return this.reconcileWorkload(info, namespace, name);
  }

  markAllReady(): void {
    for (const info of [DEPLOYMENT, STATEFULSET]) {
      for (const obj of this.store.list(info)) {
        const namespace = str(obj.metadata.namespace) ?? '';
        const name = String(obj.metadata.name);
        if (obj.metadata.deletionTimestamp) continue;
        this.setReady(info, namespace, name, desiredReplicas(obj));
      }
    }
    for (const pvc of this.store.list(PVC)) {
      if (statusOf(pvc).phase !== 'Bound' && !pvc.metadata.deletionTimestamp) this.bindPvc(str(pvc.metadata.namespace) ?? '', String(pvc.metadata.name));
    }
  }

  /** Binds a claim as the PV controller would: spec.volumeName, bind annotations, then status. */
  bindPvc(namespace: string, name: string): KubeObject {
    const registry = this.requireRegistry();
    const current = registry.get(PVC, namespace, name);
    if (statusOf(current).phase === 'Bound') return current;
    const write = { manager: CONTROLLER_MANAGER, dryRun: false };
    registry.update(PVC, namespace, name, (pvc) => {
      const spec = child(pvc, 'spec');
      spec.volumeName = `pvc-${String(pvc.metadata.uid)}`;
      const annotations = child(pvc.metadata, 'annotations');
      annotations['pv.kubernetes.io/bind-completed'] = 'yes';
      annotations['pv.kubernetes.io/bound-by-controller'] = 'yes';
    }, write);
    return registry.update(PVC, namespace, name, (pvc) => {
      const spec = specOf(pvc);
      const resources = isObject(spec.resources) ? spec.resources : {};
      const requests = isObject(resources.requests) ? resources.requests : {};
      pvc.status = {
        phase: 'Bound',
        accessModes: clone(spec.accessModes ?? ['ReadWriteOnce']),
        capacity: { storage: requests.storage ?? '0' },
      };
    }, { ...write, scope: 'status' });
  }

  /**
   * Advances every terminating namespace one step: first its content is deleted, then (once no
   * object is left, finalizers included) the `kubernetes` finalizer is removed and it disappears.
   * Returns how many namespaces are still terminating.
   */
  stepNamespaces(): number {
    const registry = this.requireRegistry();
    for (const ns of this.store.list(NAMESPACE_KIND)) {
      if (!ns.metadata.deletionTimestamp) continue;
      const name = String(ns.metadata.name);
      const content = this.store.inNamespace(name);
      const live = content.filter((c) => !c.object.metadata.deletionTimestamp);
      if (live.length > 0) {
        for (const { info, object } of live) {
          registry.delete(info, name, String(object.metadata.name), { dryRun: false });
        }
        continue;
      }
      if (content.length > 0) {
        this.reportRemainingContent(ns, content);
        continue;
      }
      const spec = specOf(ns);
      const finalizers = Array.isArray(spec.finalizers) ? spec.finalizers : [];
      if (finalizers.includes('kubernetes')) {
        registry.finalizeNamespace(name, { spec: { finalizers: finalizers.filter((f) => f !== 'kubernetes') } }, { manager: CONTROLLER_MANAGER, dryRun: false });
      }
    }
    return this.store.list(NAMESPACE_KIND).filter((ns) => ns.metadata.deletionTimestamp).length;
  }

  // ----- internals -----------------------------------------------------------------------------

  private reportRemainingContent(ns: KubeObject, content: { info: KindInfo; object: KubeObject }[]): void {
    const byResource = new Map<string, number>();
    const byFinalizer = new Map<string, number>();
    for (const { info, object } of content) {
      const resource = info.group ? `${info.plural}.${info.group}` : `${info.plural}.`;
      byResource.set(resource, (byResource.get(resource) ?? 0) + 1);
      for (const f of Array.isArray(object.metadata.finalizers) ? object.metadata.finalizers : []) {
        byFinalizer.set(String(f), (byFinalizer.get(String(f)) ?? 0) + 1);
      }
    }
    const now = timestamp();
    const prev = statusOf(ns).conditions;
    const conditions = [
      condition(prev, 'NamespaceContentRemaining', 'True', 'SomeResourcesRemain', `Some resources are remaining: ${[...byResource].map(([r, n]) => `${r} has ${n} resource instances`).join(', ')}`, now, false),
      condition(prev, 'NamespaceFinalizersRemaining', 'True', 'SomeFinalizersRemain', `Some content in the namespace has finalizers remaining: ${[...byFinalizer].map(([f, n]) => `${f} in ${n} resource instances`).join(', ')}`, now, false),
    ];
    if (deepEqual(conditions, prev)) return;
    this.requireRegistry().update(NAMESPACE_KIND, undefined, String(ns.metadata.name), (o) => {
      o.status = { ...statusOf(o), conditions };
    }, { manager: CONTROLLER_MANAGER, dryRun: false, scope: 'status' });
  }

  /**
   * Writes a workload's status. Ready replicas: the explicit count of setReady; else all of them
   * under autoReady (unless the rollout failed); else the last count set, capped at spec.replicas.
   */
  private reconcileWorkload(info: KindInfo, namespace: string, name: string, explicitReady?: number): KubeObject {
    const registry = this.requireRegistry();
    const key = keyOf(info, namespace, name);
    return registry.update(info, namespace, name, (obj) => {
      const desired = desiredReplicas(obj);
      const failure = this.failures.get(key);
      const current = typeof statusOf(obj).readyReplicas === 'number' ? Number(statusOf(obj).readyReplicas) : 0;
      const remembered = Math.min(this.readyOverride.get(key) ?? current, desired);
      const ready = explicitReady ?? (this.options.autoReady && !failure ? desired : remembered);
      const now = timestamp();
      obj.status = info === DEPLOYMENT ? deploymentStatus(obj, ready, failure, now) : statefulSetStatus(obj, ready, failure, now);
    }, { manager: CONTROLLER_MANAGER, dryRun: false, scope: 'status' });
  }

  private reconcileQuota(namespace: string, name: string): void {
    this.requireRegistry().update(QUOTA, namespace, name, (quota) => {
      const specHard = specOf(quota).hard;
      const hard: JsonObject = isObject(specHard) ? clone(specHard) : {};
      const used: JsonObject = {};
      for (const k of Object.keys(hard)) used[k] = '0';
      quota.status = { hard, used };
    }, { manager: CONTROLLER_MANAGER, dryRun: false, scope: 'status' });
  }

  private scheduleNamespaceStep(): void {
    if (this.options.namespaceFinalization !== 'auto' || this.namespaceTimer || this.closed) return;
    this.namespaceTimer = setTimeout(() => {
      this.namespaceTimer = undefined;
      if (this.closed) return;
      if (this.stepNamespaces() > 0) this.scheduleNamespaceStep();
    }, this.options.namespaceStepMs);
    this.namespaceTimer.unref();
  }

  private later(work: () => unknown): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.closed) return;
      try {
        work();
      } catch (err: unknown) {
        // The object may have been deleted or changed meanwhile; a real controller would requeue.
        if (!(err instanceof KubeStatusError)) throw err;
      }
    }, this.options.controllerDelayMs);
    timer.unref();
    this.timers.add(timer);
  }

  private requireWorkload(info: KindInfo): void {
    if (info !== DEPLOYMENT && info !== STATEFULSET) throw new Error(`${info.kind} is not a workload kind (Deployment, StatefulSet)`);
  }

  private requireRegistry(): Registry {
    if (!this.registry) throw new Error('controllers are not attached to a registry');
    return this.registry;
  }
}
