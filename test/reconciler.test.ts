import path from 'node:path';
import t from 'tap';
import type { TransitionLog } from '../core/log/transition-log.js';
import { PHASES } from '../core/phases.js';
import { reconcilerHarness } from './helpers/reconciler.js';
import { desiredOf, tenantDoc } from './helpers/tenants.js';

const setup = reconcilerHarness;

const toStates = async (log: TransitionLog, id: string): Promise<string[]> => (await log.read(id)).map((x) => x.toState);

t.test('a new tenant walks the seven phases in order to ACTIVE, each provider step once', async (t) => {
  const { log, provider, reconciler, store } = await setup(t);
  const doc = tenantDoc('acme');
  const out = await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(doc, 'c1'), commit: 'c1', trigger: 'commit:c1' });
  t.same(out, { kind: 'converged', status: 'ACTIVE' });
  t.same(await toStates(log, 'acme'), [
    'PROVISIONING/Request',
    'PROVISIONING/Plan',
    'PROVISIONING/Apply',
    'PROVISIONING/Deploy',
    'PROVISIONING/Configure',
    'PROVISIONING/Verify',
    'ACTIVE/Complete',
  ]);
  t.same((await log.read('acme')).map((x) => x.toState.split('/')[1]), [...PHASES]);
  t.equal((await log.read('acme'))[0]?.fromState, 'PENDING');
  t.same(provider.calls.map((c) => c.step), ['plan', 'apply', 'deploy', 'configure', 'verify']);
  const rec = store.get('acme');
  t.equal(rec?.status, 'ACTIVE');
  t.equal(rec?.applied?.commit, 'c1');
  t.equal(rec?.namespace, 'tenant-acme');
  t.equal(rec?.conditions.find((c) => c.type === 'Ready')?.status, 'True');

  // The same desired state again is a no-op: no transition, no provider call.
  const again = await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(doc, 'c2'), commit: 'c2', trigger: 'commit:c2' });
  t.same(again, { kind: 'converged', status: 'ACTIVE' });
  t.equal(log.countFor('acme'), 7);
  t.equal(provider.calls.length, 5);
});

t.test('a changed spec is an update: UPDATING through the phases back to ACTIVE', async (t) => {
  const { log, reconciler } = await setup(t);
  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  const changed = tenantDoc('acme', { configuration: { databaseSize: 'db.t3.medium', storageGb: 80, enableHa: false } });
  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(changed, 'c2'), commit: 'c2', trigger: 'commit:c2' });
  const all = await log.read('acme');
  t.same(all.slice(7).map((x) => x.toState), [
    'UPDATING/Request',
    'UPDATING/Plan',
    'UPDATING/Apply',
    'UPDATING/Deploy',
    'UPDATING/Configure',
    'UPDATING/Verify',
    'ACTIVE/Complete',
  ]);
  t.equal(all[7]?.fromState, 'ACTIVE/Complete');
  t.equal(all[7]?.trigger, 'commit:c2');
});

t.test('a failing step is retried with growing delays, each failure and retry recorded', async (t) => {
  const { clock, log, provider, reconciler, store, events } = await setup(t);
  provider.failNext('apply', 3);
  const desired = desiredOf(tenantDoc('acme'), 'c1');
  const delays: number[] = [];
  let out = await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'commit:c1' });
  for (let i = 0; i < 5 && out.kind === 'retry'; i++) {
    delays.push(out.at.getTime() - clock.ms);
    // Too early: nothing happens.
    const early = await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: `retry:${out.attempt}` });
    t.equal(early.kind, 'retry', 'a retry before its time does nothing');
    clock.ms = out.at.getTime();
    out = await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: `retry:${out.attempt}` });
  }
  t.same(out, { kind: 'converged', status: 'ACTIVE' });
  t.equal(delays.length, 3);
  t.ok(delays[0]! < delays[1]! && delays[1]! < delays[2]!, `delays grow: ${delays.join(', ')}`);
  t.equal(provider.count('plan'), 1, 'completed phases are not redone on retry');
  t.equal(provider.count('apply'), 4);
  const transitions = await log.read('acme');
  const failed = transitions.filter((x) => x.toState === 'FAILED/Apply');
  t.equal(failed.length, 3);
  t.same(failed.map((x) => (x.details as { attempt: number }).attempt), [1, 2, 3]);
  t.same(failed.map((x) => (x.details as { error: { code: string } }).error.code), ['E_TEST_FAILURE', 'E_TEST_FAILURE', 'E_TEST_FAILURE']);
  const retries = transitions.filter((x) => x.fromState === 'FAILED/Apply');
  t.same(retries.map((x) => [x.toState, x.trigger]), [
    ['PROVISIONING/Apply', 'retry:1'],
    ['PROVISIONING/Apply', 'retry:2'],
    ['PROVISIONING/Apply', 'retry:3'],
  ]);
  t.equal(store.get('acme')?.retry, null);
  t.equal(events.filter((e) => e.type === 'PhaseFailed').length, 3);
});

t.test('a new commit resets the backoff of a failing tenant', async (t) => {
  const { provider, reconciler, store } = await setup(t);
  provider.failNext('apply', 2);
  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  t.equal(store.get('acme')?.retry?.attempt, 1);
  const fixed = tenantDoc('acme', { region: 'us-west-2' });
  const out = await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(fixed, 'c2'), commit: 'c2', trigger: 'commit:c2' });
  t.equal(out.kind, 'retry', 'runs at once despite the scheduled retry, and fails once more');
  t.equal(store.get('acme')?.retry?.attempt, 1, 'attempts counted from 1 again');
  t.equal(store.get('acme')?.operation?.target.commit, 'c2');
});

t.test('a stalled error waits for a person: FAILED with Stalled, no retry until forced', async (t) => {
  const { provider, reconciler, store } = await setup(t);
  provider.failNext('verify', 1, 'stalled', 'E_QUOTA_EXCEEDED');
  const desired = desiredOf(tenantDoc('acme'), 'c1');
  const out = await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'commit:c1' });
  t.same(out, { kind: 'stalled', code: 'E_QUOTA_EXCEEDED' });
  const rec = store.get('acme');
  t.equal(rec?.status, 'FAILED');
  t.equal(rec?.conditions.find((c) => c.type === 'Stalled')?.status, 'True');
  t.match(rec?.conditions.find((c) => c.type === 'Stalled'), { reason: 'QuotaExceeded', code: 'E_QUOTA_EXCEEDED' });
  t.same(await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'poll' }), { kind: 'stalled', code: 'E_QUOTA_EXCEEDED' });
  t.same(await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'api:r1', force: true }), { kind: 'converged', status: 'ACTIVE' });
});

t.test('a waiting error keeps the status and schedules a retry without a FAILED transition', async (t) => {
  const { provider, reconciler, store, log } = await setup(t);
  provider.failNext('deploy', 1, 'waiting', 'E_CLUSTER_UNREACHABLE');
  const out = await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  t.equal(out.kind, 'retry');
  t.equal(store.get('acme')?.status, 'PROVISIONING');
  t.match(store.get('acme')?.conditions, [{ type: 'Ready', status: 'Unknown', reason: 'ClusterUnreachable', code: 'E_CLUSTER_UNREACHABLE' }, { type: 'Reconciling', status: 'True', reason: 'ProgressingWithRetry' }, { type: 'Stalled', status: 'False' }]);
  t.notOk((await toStates(log, 'acme')).includes('FAILED/Deploy'));
});

t.test('stopping between phases and resuming in a new process redoes nothing', async (t) => {
  const dir = t.testdir();
  const first = await setup(t, dir);
  let stop = false;
  first.provider.hook = async (step) => {
    if (step === 'apply') stop = true;
  };
  const desired = desiredOf(tenantDoc('acme'), 'c1');
  const out = await first.reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'commit:c1', shouldStop: () => stop });
  t.same(out, { kind: 'interrupted' });
  t.same(await toStates(first.log, 'acme'), ['PROVISIONING/Request', 'PROVISIONING/Plan', 'PROVISIONING/Apply']);
  await first.log.close();

  const second = await setup(t, dir);
  t.equal(await second.reconciler.recoverLog(), 0, 'nothing to repair after a clean stop');
  const resumed = await second.reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'resume' });
  t.same(resumed, { kind: 'converged', status: 'ACTIVE' });
  t.same(second.provider.calls.map((c) => c.step), ['deploy', 'configure', 'verify'], 'apply was checkpointed, not redone');
  const states = await toStates(second.log, 'acme');
  t.same(states, [
    'PROVISIONING/Request',
    'PROVISIONING/Plan',
    'PROVISIONING/Apply',
    'PROVISIONING/Deploy',
    'PROVISIONING/Configure',
    'PROVISIONING/Verify',
    'ACTIVE/Complete',
  ]);
  t.equal((await second.log.read('acme'))[3]?.trigger, 'resume');
});

t.test('a transition written to the record but cut off before the log is re-appended once', async (t) => {
  const dir = t.testdir();
  const first = await setup(t, dir);
  await first.reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  await first.log.close();
  // Simulate the crash window: drop the log's last line.
  const { promises: fsp } = await import('node:fs');
  const file = path.join(dir, 'transitions.jsonl');
  const lines = (await fsp.readFile(file, 'utf8')).trimEnd().split('\n');
  await fsp.writeFile(file, `${lines.slice(0, -1).join('\n')}\n`);
  const second = await setup(t, dir);
  t.equal(second.log.countFor('acme'), 6);
  t.equal(await second.reconciler.recoverLog(), 1);
  t.equal(await second.reconciler.recoverLog(), 0, 'recovery is idempotent');
  const states = await toStates(second.log, 'acme');
  t.equal(states.length, 7);
  t.equal(new Set((await second.log.read('acme')).map((x) => x.id)).size, 7, 'no duplicated transition');
});

t.test('removal deprovisions, unless deletion protection holds the tenant', async (t) => {
  const { log, provider, reconciler, store } = await setup(t);
  await reconciler.reconcile({ tenantId: 'kept', desired: desiredOf(tenantDoc('kept', { deletionProtection: true }), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  await reconciler.reconcile({ tenantId: 'gone', desired: desiredOf(tenantDoc('gone'), 'c1'), commit: 'c1', trigger: 'commit:c1' });

  const held = await reconciler.reconcile({ tenantId: 'kept', desired: null, commit: 'c2', trigger: 'commit:c2' });
  t.same(held, { kind: 'held', status: 'ACTIVE', reason: 'DeletionProtected' });
  t.equal(provider.count('destroy'), 0);
  t.equal(store.get('kept')?.conditions.find((c) => c.type === 'Stalled')?.reason, 'DeletionProtected');
  t.equal(reconciler.needsWork('kept', null), false, 'a held tenant is not re-queued on every poll');

  const out = await reconciler.reconcile({ tenantId: 'gone', desired: null, commit: 'c2', trigger: 'commit:c2' });
  t.same(out, { kind: 'converged', status: 'DEPROVISIONED' });
  t.same((await toStates(log, 'gone')).slice(7), ['DEPROVISIONING/Request', 'DEPROVISIONING/Plan', 'DEPROVISIONING/Apply', 'DEPROVISIONING/Verify', 'DEPROVISIONED/Complete']);
  t.equal(provider.count('destroy', 'gone'), 1);
  t.equal(store.get('gone')?.applied, null);
});

t.test('an invalid file marks only that tenant INVALID and touches nothing; fixing it converges', async (t) => {
  const { provider, reconciler, store, log } = await setup(t);
  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  const calls = provider.calls.length;
  const broken = {
    tenantId: 'acme',
    file: 'tenants/acme.yaml',
    commit: 'c2',
    blobOid: 'bad',
    specDigest: null,
    document: null,
    issues: [{ file: 'tenants/acme.yaml', line: 3, column: 5, path: 'spec.tier', message: 'must be one of: starter, professional, enterprise' }],
  };
  const out = await reconciler.reconcile({ tenantId: 'acme', desired: broken, commit: 'c2', trigger: 'commit:c2' });
  t.same(out, { kind: 'held', status: 'INVALID', reason: 'InvalidSpec' });
  t.equal(provider.calls.length, calls, 'nothing touched');
  t.match(store.get('acme')?.hold?.message, 'tenants/acme.yaml:3:5: spec.tier');
  t.equal((await toStates(log, 'acme')).at(-1), 'INVALID', 'INVALID is no phase of an operation (never INVALID/Complete)');
  const back = await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c3'), commit: 'c3', trigger: 'commit:c3' });
  t.same(back, { kind: 'converged', status: 'ACTIVE' });
  t.equal(provider.calls.length, calls, 'the fixed file equals what is applied: nothing to do');
});

t.test('suspend pauses a tenant; resuming applies the current spec', async (t) => {
  const { provider, reconciler, store } = await setup(t);
  const out = await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme', { suspend: true }), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  t.same(out, { kind: 'held', status: 'SUSPENDED', reason: 'Suspended' });
  t.equal(provider.calls.length, 0);
  t.equal(store.get('acme')?.status, 'SUSPENDED');
  const resumed = await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c2'), commit: 'c2', trigger: 'commit:c2' });
  t.same(resumed, { kind: 'converged', status: 'ACTIVE' });
});
