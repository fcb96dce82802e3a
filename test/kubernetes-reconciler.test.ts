/**
 * The InfrastructureReconciler with the kubernetes provider against the real control plane: the
 * phases reflect what the API server says (ACTIVE only once workloads are ready, DEPROVISIONED
 * only once the namespace controller has removed the namespace), and a stopped API server, a
 * failed rollout, a field conflict or a kind the cluster does not serve end in the documented
 * status and condition.
 */
import path from 'node:path';
import t, { type Test } from 'tap';
import type { ReconciliationEvent } from '../core/events/events.js';
import { ReconciliationEventPublisher } from '../core/events/publisher.js';
import { TransitionLog } from '../core/log/transition-log.js';
import { TenantStateStore } from '../core/state/store.js';
import { InfrastructureReconciler } from '../daemon/reconciler.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { createKubernetesProvider } from '../providers/kubernetes/provider.js';
import { startApiServer } from './helpers/kube-cluster.js';
import { eventually, startKubeTarget } from './helpers/kube-target.js';
import { desiredOf, tenantDoc } from './helpers/tenants.js';

async function setup(t: Test, kubeConfig?: KubeConfig) {
  const target = await startKubeTarget(t);
  const dir = t.testdir();
  const clock = { ms: Date.UTC(2026, 10, 28, 12, 0, 0) };
  const now = (): Date => new Date(clock.ms);
  const store = await TenantStateStore.open(dir);
  const log = await TransitionLog.open({ path: path.join(dir, 'transitions.jsonl') });
  t.teardown(() => log.close());
  const publisher = new ReconciliationEventPublisher(now);
  const events: ReconciliationEvent[] = [];
  publisher.subscribe((e) => events.push(e));
  // The default request timeout (30 s): a stopped server refuses at once, and a loaded or just
  // restarted one may take more than a couple of seconds to answer, which is not the test's subject.
  const provider = createKubernetesProvider({ kubeConfig: kubeConfig ?? target.kubeConfig, pollIntervalMs: 100 });
  t.teardown(() => provider.close?.());
  const reconciler = new InfrastructureReconciler({ provider, store, log, publisher, backoff: { baseMs: 1000, capMs: 8000 }, now, random: () => 0.5 });
  return { target, clock, store, log, events, reconciler };
}

const states = async (log: TransitionLog, id: string): Promise<string[]> => (await log.read(id)).map((x) => x.toState);

t.test('a tenant reaches ACTIVE only after its workloads report ready; deprovision ends only when the namespace is gone', async (t) => {
  const { target, store, log, events, reconciler } = await setup(t);
  const id = target.tenantId('acme');
  const ns = `tenant-${id}`;
  const doc = tenantDoc(id);
  const reconciling = reconciler.reconcile({ tenantId: id, desired: desiredOf(doc, 'c1'), commit: 'c1', trigger: 'commit:c1' });
  await eventually('Verify polling', () => events.some((e) => e.type === 'PhaseProgress' && e.phase === 'Verify'));
  t.equal(store.get(id)?.status, 'PROVISIONING');
  t.equal(store.get(id)?.phase, 'Verify');
  const applied = events.find((e) => e.type === 'PhaseCompleted' && e.phase === 'Apply');
  t.match(applied, { summary: /^apply: \d+ created, 0 configured/ });
  t.ok(events.some((e) => e.type === 'PhaseProgress' && e.phase === 'Deploy' && e.message === `created apps/v1/Deployment/${ns}/web`));

  await target.markAllReady(ns);
  t.same(await reconciling, { kind: 'converged', status: 'ACTIVE' });
  t.same(await states(log, id), [
    'PROVISIONING/Request',
    'PROVISIONING/Plan',
    'PROVISIONING/Apply',
    'PROVISIONING/Deploy',
    'PROVISIONING/Configure',
    'PROVISIONING/Verify',
    'ACTIVE/Complete',
  ]);
  const rec = store.get(id);
  t.match(rec?.outputs, { namespace: ns, 'kubernetes.context': target.context });
  t.match(rec?.lastPlan, { counts: { create: Number } });

  // Remove the file: DEPROVISIONING until the namespace is gone. Someone's finalizer holds it a while.
  const held = { apiVersion: 'v1', kind: 'ConfigMap', name: 'held', namespace: ns };
  await target.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'held', namespace: ns, finalizers: ['example.com/hold'] } });
  const removing = reconciler.reconcile({ tenantId: id, desired: null, commit: 'c2', trigger: 'commit:c2' });
  await eventually(
    'namespace terminating',
    () => events.some((e) => e.type === 'PhaseProgress' && e.phase === 'Verify' && e.message.startsWith(`namespace ${ns} terminating`)),
    60_000,
  );
  t.equal(store.get(id)?.status, 'DEPROVISIONING');
  await target.edit(held, { metadata: { finalizers: null } });
  t.same(await removing, { kind: 'converged', status: 'DEPROVISIONED' });
  t.equal(await target.get({ apiVersion: 'v1', kind: 'Namespace', name: ns }), null, 'the namespace is really gone');
  t.same((await states(log, id)).slice(7), ['DEPROVISIONING/Request', 'DEPROVISIONING/Plan', 'DEPROVISIONING/Apply', 'DEPROVISIONING/Verify', 'DEPROVISIONED/Complete']);
});

t.test('a stopped API server keeps PROVISIONING with a scheduled retry; it converges once the server is back', async (t) => {
  const server = await startApiServer(t);
  if (!server) return;
  const { target, clock, store, log, reconciler } = await setup(t, server.kubeConfig);
  const kubelet = target.kubelet();
  const id = target.tenantId('down');
  const desired = desiredOf(tenantDoc(id), 'c1');
  await server.stop();
  const out = await reconciler.reconcile({ tenantId: id, desired, commit: 'c1', trigger: 'commit:c1' });
  t.equal(out.kind, 'retry');
  const rec = store.get(id);
  t.equal(rec?.status, 'PROVISIONING', 'waiting is not a failure');
  t.match(rec?.retry, { attempt: 1, lastError: { code: 'E_CLUSTER_UNREACHABLE', kind: 'waiting', phase: 'Plan' }, nextAttemptAt: String });
  t.match(rec?.conditions.find((c) => c.type === 'Reconciling'), { status: 'True', reason: 'ProgressingWithRetry' });
  t.notOk((await states(log, id)).some((s) => s.startsWith('FAILED')));

  await server.start();
  if (out.kind === 'retry') clock.ms = out.at.getTime();
  t.same(await reconciler.reconcile({ tenantId: id, desired, commit: 'c1', trigger: 'retry:1' }), { kind: 'converged', status: 'ACTIVE' });
  await kubelet.stop();
});

t.test('a failed rollout leaves the tenant FAILED naming the object and reason, with a retry', async (t) => {
  const { target, store, reconciler } = await setup(t);
  const id = target.tenantId('roll');
  const ns = `tenant-${id}`;
  const desired = desiredOf(tenantDoc(id), 'c1');
  const reconciling = reconciler.reconcile({ tenantId: id, desired, commit: 'c1', trigger: 'commit:c1' });
  await eventually('in Verify', () => store.get(id)?.phase === 'Verify');
  await target.failRollout(ns, 'web');
  const out = await reconciling;
  t.equal(out.kind, 'retry');
  const rec = store.get(id);
  t.equal(rec?.status, 'FAILED');
  t.equal(rec?.phase, 'Verify');
  t.match(rec?.conditions.find((c) => c.type === 'Ready'), {
    status: 'False',
    reason: 'RolloutFailed',
    code: 'E_ROLLOUT_FAILED',
    message: new RegExp(`apps/v1/Deployment/${ns}/web failed: ProgressDeadlineExceeded`),
  });
});

t.test('a field conflict stalls the tenant until a person acts', async (t) => {
  const { target, store, reconciler } = await setup(t);
  const kubelet = target.kubelet();
  const id = target.tenantId('own');
  t.same(await reconciler.reconcile({ tenantId: id, desired: desiredOf(tenantDoc(id), 'c1'), commit: 'c1', trigger: 'commit:c1' }), { kind: 'converged', status: 'ACTIVE' });
  await kubelet.stop();
  await target.edit({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: `tenant-${id}`, name: 'web' }, { spec: { replicas: 4 } });
  const changed = tenantDoc(id, { services: [{ name: 'web', image: 'nginx:1.28', replicas: 3, port: 8080 }] });
  const out = await reconciler.reconcile({ tenantId: id, desired: desiredOf(changed, 'c2'), commit: 'c2', trigger: 'commit:c2' });
  t.same(out, { kind: 'stalled', code: 'E_FIELD_CONFLICT' });
  const rec = store.get(id);
  t.equal(rec?.status, 'FAILED');
  t.match(rec?.conditions.find((c) => c.type === 'Stalled'), { status: 'True', reason: 'FieldConflict', code: 'E_FIELD_CONFLICT', message: /kubectl-edit/ });
});

t.test('a tenant that needs a kind the cluster does not serve is INVALID, untouched, and recovers when the spec no longer needs it', async (t) => {
  const server = await startApiServer(t, { runtimeConfig: 'policy/v1beta1=false' });
  if (!server) return;
  const { target, store, reconciler } = await setup(t, server.kubeConfig);
  const id = target.tenantId('nopdb');
  const ha = tenantDoc(id, { configuration: { databaseSize: 'db.t3.medium', storageGb: 50, enableHa: true } });
  const out = await reconciler.reconcile({ tenantId: id, desired: desiredOf(ha, 'c1'), commit: 'c1', trigger: 'commit:c1' });
  t.match(out, { kind: 'held', status: 'INVALID' });
  const rec = store.get(id);
  t.equal(rec?.status, 'INVALID');
  t.match(rec?.hold?.message, /Kubernetes v1\.20\.2\) serves no version of PodDisruptionBudget/, 'names the kind and the cluster version');
  t.equal(await target.get({ apiVersion: 'v1', kind: 'Namespace', name: `tenant-${id}` }), null, 'nothing was touched');
  // Reconciled again (a retry, a resync): still INVALID, no retry loop.
  t.match(await reconciler.reconcile({ tenantId: id, desired: desiredOf(ha, 'c1'), commit: 'c1', trigger: 'resync' }), { kind: 'held', status: 'INVALID' });
  t.equal(store.get(id)?.retry ?? null, null);
  // One replica and no HA needs no PodDisruptionBudget: the fix is applied.
  const kubelet = target.kubelet();
  const single = tenantDoc(id, { services: [{ name: 'web', image: 'nginx:1.27', replicas: 1, port: 8080 }] });
  t.same(await reconciler.reconcile({ tenantId: id, desired: desiredOf(single, 'c2'), commit: 'c2', trigger: 'commit:c2' }), { kind: 'converged', status: 'ACTIVE' });
  await kubelet.stop();
});
