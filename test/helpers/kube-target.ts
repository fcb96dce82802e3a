/**
 * The real cluster the Kubernetes provider tests run against (see kube-cluster.ts for which), and
 * what the tests do on it with real means, as envtest users do:
 *
 *   const target = await startKubeTarget(t);
 *   const id = target.tenantId('acme');            // unique per run; its namespace and PVs go at teardown
 *   await target.setReady(ns, 'Deployment', 'web', 1);   // write the status subresource (no kubelet here)
 *   await target.bindClaims(ns);                   // create matching PersistentVolumes: the binder binds them
 *   const kubelet = target.kubelet();              // keep every workload of this target's tenants ready
 *
 * There is no kubelet, scheduler or CNI: no pod ever runs, so readiness is what a test writes.
 * The StorageClasses tenantd names per cloud (gp3, managed-csi, standard-rwo) are created with
 * `allowVolumeExpansion: true`, as the clouds' are.
 */
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import type { Test } from 'tap';
import { LABEL_MANAGED_BY, LABEL_TENANT_ID, MANAGED_BY, STORAGE_CLASSES } from '../../providers/resources/renderer.js';
import { namespaceFor } from '../../core/tenant/types.js';
import { KubeClient, type LiveObject } from '../../providers/kubernetes/client.js';
import type { KubeObject, KubeObjectRef } from '../../providers/resources/types.js';
import { testCluster } from './kube-cluster.js';
import { kubeOk, kubeRequest } from './kube-http.js';

/** An object as someone other than tenantd writes it (any metadata, finalizers included). */
export type SeedObject = LiveObject & { apiVersion: string; kind: string };

export interface KubeTarget {
  readonly kubeConfig: KubeConfig;
  readonly kubeconfigPath: string;
  /** The kubeconfig context (the provider's outputs name it). */
  readonly context: string;
  /** A tenant id for this test, `<base>-<run id>`; its namespace is deleted at teardown. */
  tenantId(base: string): string;
  /** Takes a fixed tenant id (an example tenant) under this target: cleaned up, kept ready by kubelet(). */
  track(tenantId: string): void;
  /** Reads an object as the server has it (null when absent). */
  get(ref: KubeObjectRef): Promise<LiveObject | null>;
  /** Objects of a kind, in a namespace or cluster-wide, optionally by label selector. */
  list(apiVersion: string, kind: string, namespace?: string, labelSelector?: string): Promise<LiveObject[]>;
  /** Creates an object as field manager `test-seed` (someone else's object). */
  create(obj: SeedObject): Promise<LiveObject>;
  /** Changes an object as another field manager (default `kubectl-edit`) with a JSON merge patch, like `kubectl edit`. */
  edit(ref: KubeObjectRef, mergePatch: Record<string, unknown>, manager?: string): Promise<void>;
  /** Server-side apply as another field manager. */
  applyAs(obj: KubeObject, manager: string, force?: boolean): Promise<LiveObject>;
  /** Deletes an object behind tenantd's back. */
  remove(ref: KubeObjectRef): Promise<void>;
  /** Merge-patches the `status` subresource as `manager`. */
  patchStatus(ref: KubeObjectRef, status: Record<string, unknown>, manager?: string): Promise<void>;
  /** A Deployment's or StatefulSet's status as its controller would write it with `readyReplicas` ready (default: all). */
  setReady(namespace: string, kind: 'Deployment' | 'StatefulSet', name: string, readyReplicas?: number): Promise<void>;
  /** Progressing=False with `reason` (default ProgressDeadlineExceeded), as the Deployment controller reports a stuck rollout. */
  failRollout(namespace: string, name: string, reason?: string): Promise<void>;
  /** A PersistentVolume for every unbound claim of the namespace; the controller manager's binder binds them. Returns how many. */
  bindClaims(namespace: string): Promise<number>;
  /** Every workload of the namespace ready and every claim bound; resolves once the claims are Bound. */
  markAllReady(namespace: string): Promise<void>;
  /** Keeps every workload of this target's tenants ready and their claims bound until stopped (the test acting as kubelet). */
  kubelet(intervalMs?: number): { stop(): Promise<void> };
}

const num = (v: unknown, fallback: number): number => (typeof v === 'number' ? v : fallback);
const rec = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** The status a workload controller writes once `ready` of the object's replicas run. */
function workloadStatus(live: LiveObject, kind: 'Deployment' | 'StatefulSet', ready?: number): Record<string, unknown> {
  const replicas = num(rec(live.spec).replicas, 1);
  const n = Math.min(ready ?? replicas, replicas);
  const observedGeneration = num(live.metadata.generation, 1);
  if (kind === 'StatefulSet') {
    return { observedGeneration, replicas, readyReplicas: n, currentReplicas: replicas, updatedReplicas: replicas, currentRevision: `${live.metadata.name}-r`, updateRevision: `${live.metadata.name}-r` };
  }
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    observedGeneration,
    replicas,
    updatedReplicas: replicas,
    readyReplicas: n,
    availableReplicas: n,
    conditions: [
      { type: 'Available', status: n >= replicas ? 'True' : 'False', reason: n >= replicas ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable', lastUpdateTime: now, lastTransitionTime: now },
      { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', lastUpdateTime: now, lastTransitionTime: now },
    ],
  };
}

/** Whether a workload's status already says what workloadStatus(…, all) would. */
function fullyReady(live: LiveObject): boolean {
  const status = rec(live.status);
  const replicas = num(rec(live.spec).replicas, 1);
  return num(status.observedGeneration, -1) >= num(live.metadata.generation, 0) && num(status.readyReplicas, 0) >= replicas && num(status.updatedReplicas, 0) >= replicas;
}

/** The test cluster, or (`on`) another one, such as an independent API server of startApiServer. */
export async function startKubeTarget(t: Test, on?: { kubeConfig: KubeConfig; kubeconfigPath: string }): Promise<KubeTarget> {
  const cluster = on ? { kubeconfigPath: on.kubeconfigPath, context: undefined } : await testCluster();
  const kubeConfig = on?.kubeConfig ?? new KubeConfig();
  if (!on) kubeConfig.loadFromFile(cluster.kubeconfigPath);
  if (cluster.context) kubeConfig.setCurrentContext(cluster.context);
  const context = kubeConfig.getCurrentContext();
  const client = new KubeClient(context, kubeConfig);
  const signal = (): AbortSignal => AbortSignal.timeout(30_000);
  const run = randomBytes(3).toString('hex');
  const tenants = new Set<string>();
  const runLabel = 'tenantd.io/test-run';

  const request = (method: string, path: string, opts: Parameters<typeof kubeRequest>[3] = {}) => kubeOk(kubeConfig, method, path, opts);
  const list = async (apiVersion: string, kind: string, namespace?: string, labelSelector?: string): Promise<LiveObject[]> =>
    client.list(apiVersion, kind, namespace, labelSelector ?? '', signal());

  // The storage classes tenantd's claims name, expandable as on the clouds.
  for (const name of [...new Set(Object.values(STORAGE_CLASSES))].sort()) {
    await request('PATCH', `/apis/storage.k8s.io/v1/storageclasses/${name}`, {
      query: { fieldManager: 'tenantd-test', force: 'true' },
      contentType: 'application/apply-patch+yaml',
      body: { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name }, provisioner: 'kubernetes.io/no-provisioner', allowVolumeExpansion: true, volumeBindingMode: 'Immediate' },
    });
  }

  const patchStatus = async (ref: KubeObjectRef, status: Record<string, unknown>, manager = 'kube-controller-manager'): Promise<void> => {
    await request('PATCH', `${await client.path(ref, 'read', signal())}/status`, { query: { fieldManager: manager }, contentType: 'application/merge-patch+json', body: { status } });
  };

  const setReady = async (namespace: string, kind: 'Deployment' | 'StatefulSet', name: string, readyReplicas?: number): Promise<void> => {
    const ref: KubeObjectRef = { apiVersion: 'apps/v1', kind, name, namespace };
    const live = await client.get(ref, signal());
    if (!live) throw new Error(`setReady: ${kind} ${namespace}/${name} does not exist`);
    await patchStatus(ref, workloadStatus(live, kind, readyReplicas), kind === 'Deployment' ? 'deployment-controller' : 'statefulset-controller');
  };

  const bindClaims = async (namespace: string): Promise<number> => {
    let made = 0;
    for (const claim of await list('v1', 'PersistentVolumeClaim', namespace)) {
      const spec = rec(claim.spec);
      if (typeof spec.volumeName === 'string' && spec.volumeName !== '') continue;
      const name = `pv-${namespace}-${claim.metadata.name}`.slice(0, 253);
      const storage = rec(rec(spec.resources).requests).storage ?? '1Gi';
      const res = await kubeRequest(kubeConfig, 'POST', '/api/v1/persistentvolumes', {
        query: { fieldManager: 'test-provisioner' },
        body: {
          apiVersion: 'v1',
          kind: 'PersistentVolume',
          metadata: { name, labels: { [runLabel]: run } },
          spec: {
            capacity: { storage },
            accessModes: spec.accessModes ?? ['ReadWriteOnce'],
            storageClassName: spec.storageClassName ?? '',
            persistentVolumeReclaimPolicy: 'Retain',
            hostPath: { path: `/tmp/tenantd-test/${name}` },
            claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name: claim.metadata.name, uid: claim.metadata.uid },
          },
        },
      });
      if (res.status === 201) made++;
      else if (res.status !== 409) throw new Error(`bindClaims: creating ${name}: HTTP ${res.status}: ${JSON.stringify(res.body)}`);
    }
    return made;
  };

  const readyAll = async (namespace: string): Promise<void> => {
    for (const kind of ['Deployment', 'StatefulSet'] as const) {
      for (const live of await list('apps/v1', kind, namespace)) {
        if (!live.metadata.deletionTimestamp && !fullyReady(live)) await setReady(namespace, kind, live.metadata.name);
      }
    }
    await bindClaims(namespace);
  };

  t.teardown(async () => {
    for (const id of tenants) {
      await client.delete({ apiVersion: 'v1', kind: 'Namespace', name: namespaceFor(id) }, { propagationPolicy: 'Background' }, signal()).catch(() => undefined);
    }
    await request('DELETE', '/api/v1/persistentvolumes', { query: { labelSelector: `${runLabel}=${run}` } }).catch(() => undefined);
  });

  return {
    kubeConfig,
    kubeconfigPath: cluster.kubeconfigPath,
    context,
    tenantId(base) {
      const id = `${base}-${run}`;
      tenants.add(id);
      return id;
    },
    track: (id) => void tenants.add(id),
    get: (ref) => client.get(ref, signal()),
    list,
    async create(obj) {
      const collection = await client.path({ apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}) }, 'create', signal());
      return (await request('POST', collection, { query: { fieldManager: 'test-seed' }, body: obj })) as unknown as LiveObject;
    },
    async edit(ref, mergePatch, manager = 'kubectl-edit') {
      const path = await client.path(ref, 'read', signal());
      await request('PATCH', path, { query: { fieldManager: manager }, contentType: 'application/merge-patch+json', body: mergePatch });
    },
    async applyAs(obj, manager, force = false) {
      const ref: KubeObjectRef = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}) };
      return (await client.apply(obj, ref, { fieldManager: manager, force }, signal())).object;
    },
    async remove(ref) {
      await client.delete(ref, { propagationPolicy: 'Background' }, signal());
    },
    patchStatus,
    setReady,
    async failRollout(namespace, name, reason = 'ProgressDeadlineExceeded') {
      const ref: KubeObjectRef = { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace };
      const live = await client.get(ref, signal());
      if (!live) throw new Error(`failRollout: Deployment ${namespace}/${name} does not exist`);
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const status = workloadStatus(live, 'Deployment', 0);
      status.conditions = [
        { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', lastUpdateTime: now, lastTransitionTime: now },
        { type: 'Progressing', status: 'False', reason, message: `ReplicaSet "${name}" has timed out progressing.`, lastUpdateTime: now, lastTransitionTime: now },
      ];
      await patchStatus(ref, status, 'deployment-controller');
    },
    bindClaims,
    async markAllReady(namespace) {
      await readyAll(namespace);
      const deadline = Date.now() + 30_000;
      for (;;) {
        const claims = await list('v1', 'PersistentVolumeClaim', namespace);
        if (claims.every((c) => rec(c.status).phase === 'Bound')) return;
        if (Date.now() > deadline) throw new Error(`markAllReady: claims of ${namespace} not Bound after 30 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    kubelet(intervalMs = 200) {
      let stopped = false;
      const loop = (async () => {
        while (!stopped) {
          for (const id of [...tenants]) {
            const ns = namespaceFor(id);
            await readyAll(ns).catch(() => undefined); // a namespace being created or deleted: next round
          }
          await new Promise((r) => setTimeout(r, intervalMs));
        }
      })();
      const handle = {
        async stop() {
          stopped = true;
          await loop;
        },
      };
      t.teardown(() => handle.stop());
      return handle;
    },
  };
}

/** Labels tenantd puts on what it owns (for tests that list a tenant's objects). */
export const tenantSelector = (tenantId: string): string => `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_TENANT_ID}=${tenantId}`;

/** Polls `probe` until it returns something other than undefined/false (real time). */
export async function eventually<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
