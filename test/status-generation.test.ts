/**
 * The generation bookkeeping of a tenant (metadata.generation / observedGeneration) and Flux's
 * reconcile-request handshake (requestedAt / lastHandledReconcileAt), on a real reconciler whose
 * store and log are on disk, reopened to check what survives a restart.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { DesiredInfrastructureState, TenantRecord } from '../core/state/record.js';
import { reconcilerHarness } from './helpers/reconciler.js';
import { desiredOf, tenantDoc } from './helpers/tenants.js';

const broken = (id: string, commit: string, blobOid: string): DesiredInfrastructureState => ({
  tenantId: id,
  file: `tenants/${id}.yaml`,
  commit,
  blobOid,
  specDigest: null,
  document: null,
  issues: [{ file: `tenants/${id}.yaml`, line: 1, column: 1, path: 'spec', message: 'must be an object' }],
});

const gens = (r: TenantRecord | undefined) => ({ generation: r?.generation, observed: r?.observed ?? null, status: r?.status, applied: r?.applied?.commit ?? null });

t.test('generation counts spec changes, observedGeneration the one reconciled to its end', async (t) => {
  const { reconciler, store } = await reconcilerHarness(t);
  const run = (desired: DesiredInfrastructureState | null, commit: string) => reconciler.reconcile({ tenantId: 'acme', desired, commit, trigger: `commit:${commit}` });
  const doc = tenantDoc('acme');
  const c1 = desiredOf(doc, 'c1');
  await run(c1, 'c1');
  t.match(gens(store.get('acme')), { generation: 1, observed: { generation: 1, commit: 'c1', specDigest: c1.specDigest }, status: 'ACTIVE' });

  // Same spec, another blob (a comment, another layout): no new generation, but observed at the newer commit.
  await run(desiredOf(doc, 'c2', 'f'.repeat(40)), 'c2');
  t.match(gens(store.get('acme')), { generation: 1, observed: { generation: 1, commit: 'c2' }, applied: 'c1' });

  // A label is rendered into the namespace: it is a change to reconcile, and counts.
  const relabelled = tenantDoc('acme');
  relabelled.metadata.labels = { team: 'other' };
  await run(desiredOf(relabelled, 'c3'), 'c3');
  t.match(gens(store.get('acme')), { generation: 2, observed: { generation: 2, commit: 'c3' }, applied: 'c3' });

  // An invalid file is the next generation; its reconcile ends stalled, so it is observed (kstatus: failed, not in progress).
  await run(broken('acme', 'c4', 'a'.repeat(40)), 'c4');
  t.match(gens(store.get('acme')), { generation: 3, observed: { generation: 3, commit: 'c4', specDigest: null }, status: 'INVALID', applied: 'c3' });
  await run(broken('acme', 'c5', 'b'.repeat(40)), 'c5');
  t.equal(store.get('acme')?.generation, 4, 'every edit of a file that does not validate counts');

  // Fixed back to the applied spec: a new generation, converged at once.
  await run(desiredOf(relabelled, 'c6'), 'c6');
  t.match(gens(store.get('acme')), { generation: 5, observed: { generation: 5, commit: 'c6' }, status: 'ACTIVE', applied: 'c3' });

  // Removal is a change of the desired state too (Kubernetes bumps generation on delete).
  await run(null, 'c7');
  t.match(gens(store.get('acme')), { generation: 6, observed: { generation: 6, commit: null, specDigest: null }, status: 'DEPROVISIONED' });
  await run(null, 'c8');
  t.equal(store.get('acme')?.generation, 6, 'still removed: nothing new');
  await run(desiredOf(doc, 'c9'), 'c9');
  t.match(gens(store.get('acme')), { generation: 7, observed: { generation: 7, commit: 'c9' }, status: 'ACTIVE' });
});

t.test('a retry, a wait and a suspend leave observedGeneration behind', async (t) => {
  const { reconciler, store, provider, clock } = await reconcilerHarness(t);
  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  provider.failNext('apply', 1);
  const changed = desiredOf(tenantDoc('acme', { region: 'us-west-2' }), 'c2');
  const out = await reconciler.reconcile({ tenantId: 'acme', desired: changed, commit: 'c2', trigger: 'commit:c2' });
  t.equal(out.kind, 'retry');
  t.match(gens(store.get('acme')), { generation: 2, observed: { generation: 1, commit: 'c1' }, status: 'FAILED' });
  provider.failNext('deploy', 1, 'waiting', 'E_CLUSTER_UNREACHABLE');
  clock.ms += 60_000;
  await reconciler.reconcile({ tenantId: 'acme', desired: changed, commit: 'c2', trigger: 'retry:1' });
  t.match(gens(store.get('acme')), { generation: 2, observed: { generation: 1 }, status: 'UPDATING' });
  clock.ms += 60_000;
  await reconciler.reconcile({ tenantId: 'acme', desired: changed, commit: 'c2', trigger: 'retry:2' });
  t.match(gens(store.get('acme')), { generation: 2, observed: { generation: 2, commit: 'c2' }, status: 'ACTIVE' });

  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme', { region: 'us-west-2', suspend: true }), 'c3'), commit: 'c3', trigger: 'commit:c3' });
  t.match(gens(store.get('acme')), { generation: 3, observed: { generation: 2 }, status: 'SUSPENDED' }, 'a suspended spec is not reconciled (as in Flux)');
});

t.test('generation survives a restart and never goes back', async (t) => {
  const dir = t.testdir();
  const first = await reconcilerHarness(t, dir);
  await first.reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  await first.reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme', { region: 'us-west-2' }), 'c2'), commit: 'c2', trigger: 'commit:c2' });
  await first.store.flush();
  await first.log.close();

  const second = await reconcilerHarness(t, dir);
  t.match(gens(second.store.get('acme')), { generation: 2, observed: { generation: 2, commit: 'c2' } });
  // Back to the first spec: the count goes on, it does not return to 1.
  await second.reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c3'), commit: 'c3', trigger: 'commit:c3' });
  t.match(gens(second.store.get('acme')), { generation: 3, observed: { generation: 3, commit: 'c3' } });
});

t.test('a record written before generations existed is upgraded when read', async (t) => {
  const dir = t.testdir();
  const first = await reconcilerHarness(t, dir);
  const broken1 = broken('bad', 'c2', 'a'.repeat(40));
  await first.reconciler.reconcile({ tenantId: 'ok', desired: desiredOf(tenantDoc('ok'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  await first.reconciler.reconcile({ tenantId: 'bad', desired: desiredOf(tenantDoc('bad'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  await first.reconciler.reconcile({ tenantId: 'bad', desired: broken1, commit: 'c2', trigger: 'commit:c2' });
  await first.store.flush();
  await first.log.close();
  // Rewrite both records as an older tenantd left them: no generation fields, INVALID kept its phase.
  for (const id of ['ok', 'bad']) {
    const file = path.join(dir, 'state', 'tenants', `${id}.json`);
    const old = JSON.parse(await fsp.readFile(file, 'utf8')) as Record<string, unknown>;
    for (const k of ['generation', 'generationOf', 'observed', 'reconcileRequestedAt', 'lastHandledReconcileAt']) delete old[k];
    if (id === 'bad') old['phase'] = 'Complete';
    await fsp.writeFile(file, JSON.stringify(old));
  }
  const second = await reconcilerHarness(t, dir);
  t.match(second.store.get('ok'), { generation: 1, observed: { generation: 1, commit: 'c1' }, lastHandledReconcileAt: null, reconcileRequestedAt: null });
  t.match(second.store.get('bad'), { generation: 1, status: 'INVALID', phase: null, observed: { generation: 1, commit: 'c2', specDigest: null } });
  // The upgraded count goes on from there.
  await second.reconciler.reconcile({ tenantId: 'bad', desired: desiredOf(tenantDoc('bad'), 'c3'), commit: 'c3', trigger: 'commit:c3' });
  t.match(gens(second.store.get('bad')), { generation: 2, observed: { generation: 2 }, status: 'ACTIVE' });
});

t.test('a reconcile request is forced, then shown as handled once its reconcile ends', async (t) => {
  const { reconciler, store, provider } = await reconcilerHarness(t);
  provider.failNext('verify', 1, 'stalled', 'E_QUOTA_EXCEEDED');
  const desired = desiredOf(tenantDoc('acme'), 'c1');
  await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'commit:c1' });
  t.equal(store.get('acme')?.status, 'FAILED');
  t.equal(reconciler.needsWork('acme', desired), true, 'stalled');

  await reconciler.requestReconcile('acme', '2026-11-28T12:00:01.000Z');
  t.match(store.get('acme'), { reconcileRequestedAt: '2026-11-28T12:00:01.000Z', lastHandledReconcileAt: null });
  // No `force` on the call: the noted request forces it (it may come from a restart, not the API).
  const out = await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'api:r1' });
  t.same(out, { kind: 'converged', status: 'ACTIVE' });
  t.equal(store.get('acme')?.lastHandledReconcileAt, '2026-11-28T12:00:01.000Z');
  t.equal(reconciler.needsWork('acme', desired), false, 'handled: nothing left to do');

  // A request made while a reconcile runs is kept by that reconcile's saves, and handled by the next one.
  provider.hook = async (step) => {
    if (step === 'apply') await reconciler.requestReconcile('acme', '2026-11-28T12:00:02.000Z');
  };
  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme', { region: 'us-west-2' }), 'c2'), commit: 'c2', trigger: 'commit:c2' });
  provider.hook = null;
  t.match(store.get('acme'), { status: 'ACTIVE', reconcileRequestedAt: '2026-11-28T12:00:02.000Z', lastHandledReconcileAt: '2026-11-28T12:00:01.000Z' });
  t.equal(reconciler.needsWork('acme', desiredOf(tenantDoc('acme', { region: 'us-west-2' }), 'c2')), true, 'the newer request is still to handle');
  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme', { region: 'us-west-2' }), 'c2'), commit: 'c2', trigger: 'api:r2' });
  t.equal(store.get('acme')?.lastHandledReconcileAt, '2026-11-28T12:00:02.000Z');
});

t.test('a reconcile request outlives a restart', async (t) => {
  const dir = t.testdir();
  const first = await reconcilerHarness(t, dir);
  const desired = desiredOf(tenantDoc('acme'), 'c1');
  await first.reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'commit:c1' });
  await first.reconciler.requestReconcile('acme', 'token-1');
  // A request for a tenant tenantd knows only by its file: a PENDING record holds it.
  await first.reconciler.requestReconcile('newbie', 'token-2');
  t.match(first.store.get('newbie'), { status: 'PENDING', generation: 0, reconcileRequestedAt: 'token-2' });
  await first.store.flush();
  await first.log.close();

  const second = await reconcilerHarness(t, dir);
  t.equal(second.reconciler.needsWork('acme', desired), true, 'the unhandled request is work after a restart');
  await second.reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'resume' });
  t.equal(second.store.get('acme')?.lastHandledReconcileAt, 'token-1');
  await second.reconciler.reconcile({ tenantId: 'newbie', desired: desiredOf(tenantDoc('newbie'), 'c1'), commit: 'c1', trigger: 'resume' });
  t.match(second.store.get('newbie'), { status: 'ACTIVE', generation: 1, lastHandledReconcileAt: 'token-2' });
});
