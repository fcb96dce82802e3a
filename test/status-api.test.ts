/**
 * The status file and `GET …/tenants/:id` tell one story: a real daemon reconciling a real
 * repository, its API on 127.0.0.1, and the status files read back with native git.
 *
 * They used to disagree on `observedCommit`: the status file wrote the commit last *applied*, the
 * API the commit last *read*, so any commit that did not end in a new apply (a reformatted file, a
 * broken one) showed two values. Both now come from one function over the record.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { apiHarness, type ApiHarness } from './helpers/api.js';
import { openDaemon, statusAt } from './helpers/daemon.js';
import { commitFiles, initRepo } from './helpers/git-fixtures.js';
import { tenantYaml } from './helpers/tenants.js';

const T = '/api/v1/infrastructure/tenants';
const FIELDS = ['observedGeneration', 'observedCommit', 'observedSpecDigest', 'appliedCommit', 'appliedSpecDigest', 'lastHandledReconcileAt', 'desiredCommit', 'desiredSpecDigest'] as const;

/** The same fields from both doors: the committed status file and the API. */
async function bothViews(h: ApiHarness, id: string) {
  const file = await statusAt(h.repo, 'main', id);
  const get = await h.call('GET', `${T}/${id}`);
  const fromFile: Record<string, unknown> = { generation: (file['metadata'] as { generation: number }).generation, status: file.status['status'], phase: file.status['phase'] };
  const fromApi: Record<string, unknown> = { generation: get.body['generation'], status: get.body['status'], phase: get.body['phase'] };
  for (const f of FIELDS) {
    fromFile[f] = file.status[f];
    fromApi[f] = get.body[f];
  }
  return { fromFile, fromApi, conditions: { file: file.status['conditions'], api: get.body['conditions'] } };
}

async function settle(h: ApiHarness): Promise<void> {
  await h.daemon.poll();
  await h.daemon.whenIdle();
}

t.test('status file and API agree on observedCommit through an apply, a reformat and a broken file', async (t) => {
  const h = await apiHarness(t);
  const c1 = await commitFiles(h.repo, { 'tenants/agree.yaml': tenantYaml('agree') }, 'add agree');
  await settle(h);
  let v = await bothViews(h, 'agree');
  t.same(v.fromApi, v.fromFile, 'ACTIVE: one story');
  t.match(v.fromFile, { status: 'ACTIVE', generation: 1, observedGeneration: 1, observedCommit: c1, appliedCommit: c1, desiredCommit: c1 });
  t.same(v.conditions.api, v.conditions.file);

  // Same spec, new layout: nothing to apply. Observed moves to the new commit; applied stays.
  const c2 = await commitFiles(h.repo, { 'tenants/agree.yaml': `# owned by team test\n${tenantYaml('agree')}` }, 'comment agree');
  await settle(h);
  v = await bothViews(h, 'agree');
  t.same(v.fromApi, v.fromFile, 'after a reformat: one story (the API used to say c2, the file c1)');
  t.match(v.fromFile, { generation: 1, observedGeneration: 1, observedCommit: c2, appliedCommit: c1, desiredCommit: c2 });
  t.equal(v.fromFile['observedSpecDigest'], v.fromFile['appliedSpecDigest'], 'the same spec');

  // A broken file: the next generation, observed as stalled; what runs is still the c1 spec.
  const c3 = await commitFiles(h.repo, { 'tenants/agree.yaml': tenantYaml('agree', { tier: 'gold' as never }) }, 'break agree');
  await settle(h);
  v = await bothViews(h, 'agree');
  t.same(v.fromApi, v.fromFile, 'INVALID: one story');
  t.match(v.fromFile, { status: 'INVALID', phase: null, generation: 2, observedGeneration: 2, observedCommit: c3, observedSpecDigest: null, appliedCommit: c1 });
  t.match(v.conditions.file, [
    { type: 'Ready', status: 'False', reason: 'InvalidSpec' },
    { type: 'Reconciling', status: 'False' },
    { type: 'Stalled', status: 'True', reason: 'InvalidSpec' },
  ]);
  const transitions = await h.call('GET', `${T}/agree/transitions`);
  const states = (transitions.body['items'] as Array<{ toState: string }>).map((x) => x.toState);
  t.equal(states.at(-1), 'INVALID', 'the state is INVALID, never INVALID/Complete');
  t.notOk(states.includes('INVALID/Complete'));
});

t.test('the API counts a committed spec change before tenantd reconciles it', async (t) => {
  const h = await apiHarness(t);
  await commitFiles(h.repo, { 'tenants/ahead.yaml': tenantYaml('ahead') }, 'add ahead');
  await settle(h);
  t.match((await h.call('GET', `${T}/ahead`)).body, { generation: 1, observedGeneration: 1, reconciled: true });

  // Committed, not polled yet: a client must not read generation 1 as current.
  const c2 = await commitFiles(h.repo, { 'tenants/ahead.yaml': tenantYaml('ahead', { region: 'us-west-2' }) }, 'move ahead');
  const pending = await h.call('GET', `${T}/ahead`);
  t.match(pending.body, { generation: 2, observedGeneration: 1, reconciled: false, desiredCommit: c2 });
  t.match((await h.call('GET', `${T}?q=ahead`)).body, { items: [{ tenantId: 'ahead', generation: 1 }] }, 'the list shows what the daemon has read');
  // A commit of another tenant's file is no change of this one.
  const c3 = await commitFiles(h.repo, { 'tenants/other.yaml': tenantYaml('other') }, 'unrelated');
  t.equal((await h.call('GET', `${T}/ahead`)).body['generation'], 2);

  await settle(h);
  const v = await bothViews(h, 'ahead');
  t.same(v.fromApi, v.fromFile);
  // Both commits landed before one poll: the daemon read the file at the newer head, and counted one change.
  t.match(v.fromFile, { generation: 2, observedGeneration: 2, desiredCommit: c3, observedCommit: c3, appliedCommit: c3 }, 'the daemon counted it the same way');

  // A removed file counts too, in the API before the daemon gets to it.
  await commitFiles(h.repo, { 'tenants/ahead.yaml': null }, 'remove ahead');
  t.match((await h.call('GET', `${T}/ahead`)).body, { generation: 3, observedGeneration: 2 });
  await settle(h);
  t.match((await bothViews(h, 'ahead')).fromFile, { status: 'DEPROVISIONED', generation: 3, observedGeneration: 3 });
});

t.test('POST …/reconcile carries a requestedAt token that status and API show as handled', async (t) => {
  const h = await apiHarness(t);
  await commitFiles(h.repo, { 'tenants/nudged.yaml': tenantYaml('nudged') }, 'add nudged');
  await settle(h);

  const token = '2026-11-28T12:34:56.789Z';
  const res = await h.call('POST', `${T}/nudged/reconcile`, { body: { requestedAt: token } });
  t.equal(res.status, 202);
  t.match(res.body, { tenantId: 'nudged', requestedAt: token, trigger: /^api:/ });
  await h.daemon.whenIdle();
  let v = await bothViews(h, 'nudged');
  t.same(v.fromApi, v.fromFile);
  t.equal(v.fromFile['lastHandledReconcileAt'], token);

  // Without a body the request's time is the token; it sorts after the older one.
  const before = new Date().toISOString();
  const plain = await h.call('POST', `${T}/nudged/reconcile`);
  t.equal(plain.status, 202);
  const generated = plain.body['requestedAt'] as string;
  t.ok(generated >= before, `an RFC 3339 time of the request: ${generated}`);
  await h.daemon.whenIdle();
  v = await bothViews(h, 'nudged');
  t.equal(v.fromApi['lastHandledReconcileAt'], generated);
  t.equal(v.fromFile['lastHandledReconcileAt'], generated);

  const bad = await h.call('POST', `${T}/nudged/reconcile`, { body: { requestedAt: 'has spaces in it' } });
  t.equal(bad.status, 422);
  t.equal(bad.body['code'], 'E_VALIDATION');
  t.match(bad.body.errors, [{ path: 'requestedAt' }]);
  const extra = await h.call('POST', `${T}/nudged/reconcile`, { body: { requestedAt: token, force: true } });
  t.equal(extra.status, 422);
  t.match(extra.body.errors, [{ path: 'force' }]);
  const notJson = await h.call('POST', `${T}/nudged/reconcile`, { raw: 'requestedAt=x', headers: { 'Content-Type': 'text/plain' } });
  t.equal(notJson.status, 415);
  t.equal((await h.call('POST', `${T}/nobody/reconcile`)).status, 404);
});

t.test('a reconcile request accepted before a restart is handled after it', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'tenantd-status-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  await commitFiles(repo, { 'tenants/durable.yaml': tenantYaml('durable') }, 'add durable');
  const dataDir = path.join(dir, 'data');

  const first = await openDaemon(repo, dataDir);
  await first.daemon.start();
  await first.daemon.whenIdle();
  // Accepted (durable), but the daemon stops before the queue runs it.
  first.daemon.queue.pause();
  await first.daemon.requestReconcile('durable', 'api:r1', 'before-restart');
  await first.daemon.stop();
  t.equal((await statusAt(repo, 'main', 'durable')).status['lastHandledReconcileAt'], null, 'not handled yet');

  const second = await openDaemon(repo, dataDir);
  t.teardown(() => second.daemon.stop());
  await second.daemon.start();
  await second.daemon.whenIdle();
  t.equal(second.daemon.store.get('durable')?.lastHandledReconcileAt, 'before-restart');
  t.equal((await statusAt(repo, 'main', 'durable')).status['lastHandledReconcileAt'], 'before-restart');
});
