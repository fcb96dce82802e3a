/**
 * The InfrastructureReconciler with the kubernetes provider against the emulator: the phases
 * reflect what the API server says (ACTIVE only once workloads are ready, DEPROVISIONED only once
 * the namespace is gone), and an unreachable cluster or a failed rollout ends in the documented
 * status and condition.
 */
import path from 'node:path';
import t, { type Test } from 'tap';
import type { ReconciliationEvent } from '../core/events/events.js';
import { ReconciliationEventPublisher } from '../core/events/publisher.js';
import { TransitionLog } from '../core/log/transition-log.js';
import { TenantStateStore } from '../core/state/store.js';
import { InfrastructureReconciler } from '../daemon/reconciler.js';
import { createKubernetesProvider } from '../providers/kubernetes/provider.js';
import type { KubeEmulatorOptions } from './kube-emulator/index.js';
import { eventually, startKubeTarget } from './helpers/kube-target.js';
import { desiredOf, tenantDoc } from './helpers/tenants.js';

async function setup(t: Test, emulatorOptions: KubeEmulatorOptions = {}) {
  const target = await startKubeTarget(t, emulatorOptions);
  const dir = t.testdir();
  const clock = { ms: Date.UTC(2026, 10, 28, 12, 0, 0) };
  const now = (): Date => new Date(clock.ms);
  const store = await TenantStateStore.open(dir);
  const log = await TransitionLog.open({ path: path.join(dir, 'transitions.jsonl') });
  t.teardown(() => log.close());
  const publisher = new ReconciliationEventPublisher(now);
  const events: ReconciliationEvent[] = [];
  publisher.subscribe((e) => events.push(e));
  const provider = createKubernetesProvider({ kubeConfig: target.kubeConfig, pollIntervalMs: 5, requestTimeoutMs: 2000 });
  t.teardown(() => provider.close?.());
  const reconciler = new InfrastructureReconciler({ provider, store, log, publisher, backoff: { baseMs: 1000, capMs: 8000 }, now, random: () => 0.5 });
  return { target, clock, store, log, events, reconciler };
}

const states = async (log: TransitionLog, id: string): Promise<string[]> => (await log.read(id)).map((x) => x.toState);

t.test('a tenant reaches ACTIVE only after its workloads report ready; deprovision ends only when the namespace is gone', async (t) => {
  const { target, store, log, events, reconciler } = await setup(t, { namespaceFinalization: 'manual' });
  const emu = target.emulator(t);
  if (!emu) return;
  const doc = tenantDoc('acme');
  const reconciling = reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(doc, 'c1'), commit: 'c1', trigger: 'commit:c1' });
  await eventually('Verify waiting', () =>
    events.some((e) => e.type === 'PhaseProgress' && e.phase === 'Verify' && e.message === 'web 0/2 ready'),
  );
  t.equal(store.get('acme')?.status, 'PROVISIONING');
  t.equal(store.get('acme')?.phase, 'Verify');
  const applied = events.find((e) => e.type === 'PhaseCompleted' && e.phase === 'Apply');
  t.match(applied, { summary: /^apply: \d+ created, 0 configured/ });
  t.ok(events.some((e) => e.type === 'PhaseProgress' && e.phase === 'Deploy' && e.message === 'created apps/v1/Deployment/tenant-acme/web'));

  emu.markAllReady();
  t.same(await reconciling, { kind: 'converged', status: 'ACTIVE' });
  t.same(await states(log, 'acme'), [
    'PROVISIONING/Request',
    'PROVISIONING/Plan',
    'PROVISIONING/Apply',
    'PROVISIONING/Deploy',
    'PROVISIONING/Configure',
    'PROVISIONING/Verify',
    'ACTIVE/Complete',
  ]);
  const rec = store.get('acme');
  t.match(rec?.outputs, { namespace: 'tenant-acme', 'kubernetes.context': 'kube-emulator' });
  t.match(rec?.lastPlan, { counts: { create: Number } });

  // Remove the file: DEPROVISIONING until the namespace is gone.
  const removing = reconciler.reconcile({ tenantId: 'acme', desired: null, commit: 'c2', trigger: 'commit:c2' });
  await eventually('namespace terminating', () => events.some((e) => e.type === 'PhaseProgress' && e.phase === 'Verify' && e.message.startsWith('namespace tenant-acme terminating')));
  t.equal(store.get('acme')?.status, 'DEPROVISIONING');
  while (emu.stepNamespaces() > 0) await new Promise((r) => setTimeout(r, 5));
  t.same(await removing, { kind: 'converged', status: 'DEPROVISIONED' });
  t.notOk(emu.get({ kind: 'Namespace', name: 'tenant-acme' }));
  t.same((await states(log, 'acme')).slice(7), ['DEPROVISIONING/Request', 'DEPROVISIONING/Plan', 'DEPROVISIONING/Apply', 'DEPROVISIONING/Verify', 'DEPROVISIONED/Complete']);
});

t.test('an unreachable cluster keeps PROVISIONING with a scheduled retry; it converges once reachable', async (t) => {
  const { target, clock, store, log, reconciler } = await setup(t, { autoReady: true });
  const emu = target.emulator(t);
  if (!emu) return;
  const desired = desiredOf(tenantDoc('down'), 'c1');
  emu.setUnreachable(true);
  const out = await reconciler.reconcile({ tenantId: 'down', desired, commit: 'c1', trigger: 'commit:c1' });
  t.equal(out.kind, 'retry');
  const rec = store.get('down');
  t.equal(rec?.status, 'PROVISIONING', 'waiting is not a failure');
  t.match(rec?.retry, { attempt: 1, lastError: { code: 'E_CLUSTER_UNREACHABLE', kind: 'waiting', phase: 'Plan' }, nextAttemptAt: String });
  t.match(rec?.conditions.find((c) => c.type === 'Reconciling'), { status: 'True', reason: 'ProgressingWithRetry' });
  t.notOk((await states(log, 'down')).some((s) => s.startsWith('FAILED')));

  emu.setUnreachable(false);
  if (out.kind === 'retry') clock.ms = out.at.getTime();
  t.same(await reconciler.reconcile({ tenantId: 'down', desired, commit: 'c1', trigger: 'retry:1' }), { kind: 'converged', status: 'ACTIVE' });
});

t.test('a failed rollout leaves the tenant FAILED naming the object and reason, with a retry', async (t) => {
  const { target, store, reconciler } = await setup(t);
  const emu = target.emulator(t);
  if (!emu) return;
  const desired = desiredOf(tenantDoc('roll'), 'c1');
  const reconciling = reconciler.reconcile({ tenantId: 'roll', desired, commit: 'c1', trigger: 'commit:c1' });
  await eventually('web deployed', () => emu.get({ kind: 'Deployment', namespace: 'tenant-roll', name: 'web' }) && store.get('roll')?.phase === 'Verify');
  emu.failRollout('tenant-roll', 'web');
  const out = await reconciling;
  t.equal(out.kind, 'retry');
  const rec = store.get('roll');
  t.equal(rec?.status, 'FAILED');
  t.equal(rec?.phase, 'Verify');
  t.match(rec?.conditions.find((c) => c.type === 'Ready'), {
    status: 'False',
    reason: 'RolloutFailed',
    code: 'E_ROLLOUT_FAILED',
    message: /apps\/v1\/Deployment\/tenant-roll\/web failed: ProgressDeadlineExceeded/,
  });
});

t.test('a field conflict stalls the tenant until a person acts', async (t) => {
  const { target, store, reconciler } = await setup(t, { autoReady: true });
  const emu = target.emulator(t);
  if (!emu) return;
  await reconciler.reconcile({ tenantId: 'own', desired: desiredOf(tenantDoc('own'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  emu.edit({ kind: 'Deployment', namespace: 'tenant-own', name: 'web' }, (d) => {
    (d.spec as { replicas: number }).replicas = 4;
  });
  const changed = tenantDoc('own', { services: [{ name: 'web', image: 'nginx:1.28', replicas: 3, port: 8080 }] });
  const out = await reconciler.reconcile({ tenantId: 'own', desired: desiredOf(changed, 'c2'), commit: 'c2', trigger: 'commit:c2' });
  t.same(out, { kind: 'stalled', code: 'E_FIELD_CONFLICT' });
  const rec = store.get('own');
  t.equal(rec?.status, 'FAILED');
  t.match(rec?.conditions.find((c) => c.type === 'Stalled'), { status: 'True', reason: 'FieldConflict', code: 'E_FIELD_CONFLICT', message: /kubectl-edit/ });
});
