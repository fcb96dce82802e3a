/**
 * The record store and the transition log against power loss (PowerCutFs: only what was fsynced
 * survives). The power is cut before every single sync of a tenant's create in turn; the restart on
 * what survived must converge with each of the seven transitions in the log exactly once.
 */
import path from 'node:path';
import t from 'tap';
import { ReconciliationEventPublisher } from '../core/events/publisher.js';
import { TransitionLog } from '../core/log/transition-log.js';
import { PHASES } from '../core/phases.js';
import { TenantStateStore } from '../core/state/store.js';
import { InfrastructureReconciler } from '../daemon/reconciler.js';
import { ScriptedProvider } from './helpers/fake-provider.js';
import { PowerCutFs } from './helpers/power-cut-fs.js';
import { desiredOf, tenantDoc } from './helpers/tenants.js';

const root = '/data';

t.test('the test layer keeps exactly what was synced', async (t) => {
  const image = t.testdir();
  const fs = PowerCutFs.load(root, image);
  await fs.mkdirp('/data/d');
  await fs.syncDir('/data');
  const write = async (name: string, text: string, sync: boolean): Promise<void> => {
    const h = await fs.open(`/data/d/${name}`, 'w');
    await h.write(Buffer.from(text), 0, text.length, 0);
    if (sync) await h.datasync();
    await h.close();
  };
  await write('synced', 'kept', true);
  await write('unsynced-data', 'lost', false);
  await write('old', 'old content', true);
  await fs.syncDir('/data/d');
  await write('old.tmp', 'new content', true);
  await fs.rename('/data/d/old.tmp', '/data/d/old');
  await write('never-named', 'x', true);
  t.equal((await fs.readFile('/data/d/old')).toString(), 'new content', 'before the cut the process sees its writes');
  fs.cut();

  const after = PowerCutFs.load(root, image);
  t.same(await after.readdir('/data/d'), ['old', 'synced', 'unsynced-data'], 'names created after the last directory sync are gone');
  t.equal(after.contentOf('/data/d/synced')?.toString(), 'kept', 'synced content survives');
  t.equal(after.contentOf('/data/d/unsynced-data')?.toString(), '', 'a named file whose data was never synced comes back empty');
  t.equal(after.contentOf('/data/d/old')?.toString(), 'old content', 'a rename not followed by a directory sync is undone');
});

t.test('records are durable when put resolves; a burst of puts shares directory syncs', async (t) => {
  const image = t.testdir();
  const fs = PowerCutFs.load(root, image);
  const store = await TenantStateStore.open(root, { fs });
  const log = await TransitionLog.open({ path: path.join(root, 'transitions.jsonl'), fs });
  const reconciler = new InfrastructureReconciler({ provider: new ScriptedProvider(), store, log, publisher: new ReconciliationEventPublisher(), backoff: { baseMs: 1000, capMs: 8000 } });
  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  const base = store.get('acme');
  if (!base) throw new Error('acme has no record');
  const before = { ...fs.stats };
  await Promise.all(Array.from({ length: 50 }, (_, i) => store.put({ ...structuredClone(base), tenantId: `t-${String(i).padStart(2, '0')}` })));
  const dirSyncs = fs.stats.dirSyncs - before.dirSyncs;
  t.comment(`50 concurrent record writes: ${fs.stats.datasyncs - before.datasyncs} fdatasyncs, ${dirSyncs} directory fsyncs`);
  t.ok(dirSyncs >= 1 && dirSyncs < 50, `directory fsyncs grouped (${dirSyncs} for 50 renames)`);
  fs.cut();
  const again = await TenantStateStore.open(root, { fs: PowerCutFs.load(root, image) });
  t.equal(again.size, 51, 'every record whose put resolved is there after the power cut');
});

t.test('a power cut before any sync of a create, restarted on what survived, converges with each transition once', async (t) => {
  const doc = tenantDoc('acme');
  const desired = desiredOf(doc, 'c1');
  const open = async (fs: PowerCutFs) => {
    const store = await TenantStateStore.open(root, { fs });
    const log = await TransitionLog.open({ path: path.join(root, 'transitions.jsonl'), fs });
    const reconciler = new InfrastructureReconciler({ provider: new ScriptedProvider(), store, log, publisher: new ReconciliationEventPublisher(), backoff: { baseMs: 1000, capMs: 8000 } });
    return { store, log, reconciler };
  };
  // How many syncs a whole create makes, so every one of them gets its turn to be cut.
  const probe = PowerCutFs.load(root, t.testdir());
  const p = await open(probe);
  await p.reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'commit:c1' });
  const total = probe.stats.datasyncs + probe.stats.dirSyncs;
  t.ok(total > 14, `a create makes ${total} syncs`);

  const outcomes = new Map<string, number>();
  let wrong = 0;
  for (let n = 0; n <= total; n++) {
    const image = t.testdir();
    const fs = PowerCutFs.load(root, image);
    fs.cutAfterSyncs(n);
    const first = await Promise.race([open(fs), fs.whenCut().then(() => null)]);
    if (first) await Promise.race([first.reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'commit:c1' }), fs.whenCut()]);

    const back = await open(PowerCutFs.load(root, image));
    const survived = back.log.countFor('acme');
    await back.reconciler.recoverLog();
    const out = await back.reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'resume' });
    const states = (await back.log.read('acme')).map((x) => x.toState.split('/')[1]);
    if (out.kind !== 'converged' || states.join() !== PHASES.join()) {
      wrong++;
      t.comment(`cut after ${n} syncs: ${out.kind}, log ${states.join(' → ')}`);
    }
    outcomes.set(`${survived} transitions survived`, (outcomes.get(`${survived} transitions survived`) ?? 0) + 1);
    await back.log.close();
  }
  t.comment(`${total + 1} power cuts: ${[...outcomes].map(([k, v]) => `${v}× ${k}`).join(', ')}`);
  t.ok(outcomes.size >= 7, 'the cuts fell at every stage of the create');
  t.equal(wrong, 0, `after each of ${total + 1} cuts the restart converged with the seven transitions once each`);
});
