/**
 * The mass-deletion breaker end to end: a real git repository, a daemon with a recording
 * provider, the API over HTTP.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { ReconciliationEvent } from '../core/events/events.js';
import type { TenantRecord } from '../core/state/record.js';
import { apiHarness, type ApiHarness } from './helpers/api.js';
import { openDaemon, statusAt } from './helpers/daemon.js';
import { ScriptedProvider } from './helpers/fake-provider.js';
import { commitFiles, git, gitOut } from './helpers/git-fixtures.js';
import { tenantYaml } from './helpers/tenants.js';

const id = (i: number): string => `t${String(i).padStart(3, '0')}`;
function fleet(n: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i++) files[`tenants/${id(i)}.yaml`] = tenantYaml(id(i));
  return files;
}
const removal = (ids: string[]): Record<string, null> => Object.fromEntries(ids.map((x) => [`tenants/${x}.yaml`, null]));
const range = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => id(from + i));
const stalledOf = (r: TenantRecord | undefined): { status: string; reason: string } | undefined => r?.conditions.find((c) => c.type === 'Stalled');

function recordEvents(h: ApiHarness): ReconciliationEvent[] {
  const events: ReconciliationEvent[] = [];
  h.daemon.publisher.subscribe((e) => events.push(e));
  return events;
}

t.test('a commit deleting 20 of 100 tenants deprovisions none until approved, then exactly those 20', async (t) => {
  const provider = new ScriptedProvider();
  const h = await apiHarness(t, { files: fleet(100), deps: { provider } });
  t.equal(h.daemon.store.all().filter((r) => r.status === 'ACTIVE').length, 100, '100 tenants ACTIVE');
  const events = recordEvents(h);
  const before = await gitOut(h.repo, ['rev-parse', 'HEAD']);

  // One change: 20 removed, one added, one updated.
  const doomed = range(0, 20);
  const commit = await commitFiles(
    h.repo,
    { ...removal(doomed), 'tenants/newbie.yaml': tenantYaml('newbie'), [`tenants/${id(50)}.yaml`]: tenantYaml(id(50), { region: 'eu-west-1' }) },
    'remove twenty tenants, add one, move one',
  );
  await h.daemon.poll();
  await h.daemon.whenIdle();

  t.equal(provider.count('destroy'), 0, 'nothing destroyed');
  for (const x of doomed) {
    const r = h.daemon.store.get(x);
    t.equal(r?.status, 'ACTIVE', `${x} keeps running`);
    t.match(stalledOf(r), { status: 'True', reason: 'DeletionHeld' }, `${x}: Stalled=True DeletionHeld`);
  }
  t.equal(h.daemon.store.get('newbie')?.status, 'ACTIVE', 'the create in the same change went ahead');
  t.equal(h.daemon.store.get(id(50))?.applied?.document.spec.region, 'eu-west-1', 'the update in the same change went ahead');
  t.match(stalledOf(h.daemon.store.get(id(50))), { status: 'False' });
  const held = events.filter((e) => e.type === 'DeletionHeld');
  t.equal(held.length, 1, 'one event says why');
  t.match(held[0], { commit, previous: /^[0-9a-f]{40}$/, reasons: ['threshold'], tenants: 20, limit: 10, fleet: 100 });
  t.match((await statusAt(h.repo, 'main', id(3))).status.conditions, [{ type: 'Ready', status: 'False', reason: 'DeletionHeld' }, {}, { type: 'Stalled', status: 'True', reason: 'DeletionHeld' }], 'the committed status says so');

  t.equal((await h.call('GET', '/readyz', { token: null })).status, 200, '/readyz stays true');
  const metrics = (await h.call('GET', '/metrics', { token: null })).body.text as string;
  t.match(metrics, /tenantd_deletions_held\{reason="threshold"\} 20/, 'one metric says why');
  t.match(metrics, /tenantd_deletions_held\{reason="emptyListing"\} 0/);
  const view = await h.call('GET', '/api/v1/deletions', { token: 'reader' });
  t.equal(view.status, 200);
  t.match(view.body.hold, { commit, count: 20, tenants: doomed, reasons: ['threshold'], approve: { commit, trailer: 'Tenantd-Approve-Deletions: 20' } });

  // Refusals change nothing.
  t.match(await h.call('POST', '/api/v1/deletions/approve', { token: 'writer', body: { commit } }), { status: 403, body: { code: 'E_FORBIDDEN_SCOPE' } });
  t.match(await h.call('POST', '/api/v1/deletions/approve', { body: { commit: before } }), { status: 409, body: { code: 'E_DELETION_HOLD_CHANGED' } });
  t.match(await h.call('POST', '/api/v1/deletions/approve', { body: { commit: commit.slice(0, 12) } }), { status: 422, body: { code: 'E_VALIDATION' } });
  await h.daemon.whenIdle();
  t.equal(provider.count('destroy'), 0, 'still nothing destroyed');

  const ok = await h.call('POST', '/api/v1/deletions/approve', { body: { commit } });
  t.equal(ok.status, 202);
  t.match(ok.body, { commit, approved: 20, tenants: doomed, trigger: /^approve:/ });
  await h.daemon.whenIdle();
  t.same([...new Set(provider.calls.filter((c) => c.step === 'destroy').map((c) => c.tenantId))].sort(), doomed, 'exactly those 20 are destroyed');
  t.equal(provider.count('destroy'), 20, 'each once');
  for (const x of doomed) t.equal(h.daemon.store.get(x)?.status, 'DEPROVISIONED', `${x} DEPROVISIONED`);
  t.equal(h.daemon.store.all().filter((r) => r.status === 'ACTIVE').length, 81, 'the other 80 and the new one are ACTIVE');
  const transitions = await h.daemon.log.read(id(0));
  t.match(transitions.find((x) => x.toState === 'DEPROVISIONING/Request')?.trigger, `approve:${ok.body.requestId as string}`, 'the deprovision names the approval');
  t.equal(events.filter((e) => e.type === 'DeletionHoldEnded' && e.how === 'approved').length, 1);
  t.match(await h.call('POST', '/api/v1/deletions/approve', { body: { commit } }), { status: 409, body: { code: 'E_NO_DELETION_HOLD' } }, 'nothing left to approve');
  t.same((await h.call('GET', '/api/v1/deletions')).body, { hold: null });
});

t.test('an empty tenants/ is held; the files coming back changes nothing', async (t) => {
  const provider = new ScriptedProvider();
  const h = await apiHarness(t, { files: fleet(4), deps: { provider } });
  const events = recordEvents(h);
  const calls = provider.calls.length;
  const emptied = await commitFiles(h.repo, removal(range(0, 4)), 'remove every tenant');
  await h.daemon.poll();
  await h.daemon.whenIdle();
  t.equal(provider.count('destroy'), 0, 'four deletions are under the limit, but the listing is empty: held');
  t.match(h.daemon.deletions.hold, { commit: emptied, reasons: ['emptyListing'], tenants: range(0, 4) });
  for (const x of range(0, 4)) t.match(stalledOf(h.daemon.store.get(x)), { status: 'True', reason: 'DeletionHeld' });
  t.equal((await h.call('GET', '/readyz', { token: null })).status, 200);

  await git(h.repo, ['revert', '--no-edit', emptied]);
  await h.daemon.poll();
  await h.daemon.whenIdle();
  t.equal(h.daemon.deletions.hold, null, 'the hold ends');
  t.equal(provider.calls.length, calls, 'no provider call at all');
  for (const x of range(0, 4)) {
    const r = h.daemon.store.get(x);
    t.equal(r?.status, 'ACTIVE');
    t.match(stalledOf(r), { status: 'False' }, `${x} no longer stalled`);
  }
  t.match(events.filter((e) => e.type === 'DeletionHoldEnded'), [{ how: 'restored' }]);
});

t.test('a non-fast-forward reset is held; a commit with the approval trailer releases it', async (t) => {
  const provider = new ScriptedProvider();
  const h = await apiHarness(t, { files: fleet(10), deps: { provider } });
  const base = await gitOut(h.repo, ['rev-parse', 'HEAD']);
  await commitFiles(h.repo, { ...fleet(13) }, 'three more');
  await h.daemon.poll();
  await h.daemon.whenIdle();
  t.equal(h.daemon.store.get(id(12))?.status, 'ACTIVE');

  // Reset main to before the three were added: a rewrite, not a fast-forward.
  await git(h.repo, ['reset', '-q', '--hard', base]);
  await h.daemon.poll();
  await h.daemon.whenIdle();
  t.equal(provider.count('destroy'), 0, 'three deletions are under the limit, but the branch was rewound: held');
  t.match(h.daemon.deletions.hold, { commit: base, reasons: ['nonFastForward'], tenants: range(10, 13) });

  // A trailer with another count approves nothing; the right count releases them.
  await git(h.repo, ['commit', '-q', '--allow-empty', '-m', 'drop them\n\nTenantd-Approve-Deletions: 2']);
  await h.daemon.poll();
  await h.daemon.whenIdle();
  t.equal(provider.count('destroy'), 0, 'a count that does not match the hold approves nothing');
  await git(h.repo, ['commit', '-q', '--allow-empty', '-m', 'drop them\n\nReviewed-by: someone\nTenantd-Approve-Deletions: 3']);
  await h.daemon.poll();
  await h.daemon.whenIdle();
  t.equal(provider.count('destroy'), 3);
  for (const x of range(10, 13)) t.equal(h.daemon.store.get(x)?.status, 'DEPROVISIONED');
  t.equal(h.daemon.deletions.hold, null);
});

t.test('a deletion approved by the trailer of its own commit goes ahead at once', async (t) => {
  const provider = new ScriptedProvider();
  const h = await apiHarness(t, { files: fleet(30), deps: { provider } });
  await commitFiles(h.repo, removal(range(0, 8)), 'retire eight\n\nTenantd-Approve-Deletions: 8');
  await h.daemon.poll();
  await h.daemon.whenIdle();
  t.equal(provider.count('destroy'), 8);
  t.equal(h.daemon.deletions.hold, null);
});

t.test('a hold survives a restart, and is approved after it', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  const dataDir = path.join(dir, 'data');
  await git(dir, ['init', '-q', '--initial-branch=main', repo]);
  await commitFiles(repo, fleet(40), 'forty');
  const first = await openDaemon(repo, dataDir, [], { provider: new ScriptedProvider() });
  await first.daemon.start();
  await first.daemon.whenIdle();
  const commit = await commitFiles(repo, removal(range(0, 10)), 'ten');
  await first.daemon.poll();
  await first.daemon.whenIdle();
  t.equal(first.daemon.deletions.hold?.tenants.length, 10);
  await first.daemon.stop();

  const provider = new ScriptedProvider();
  const second = await openDaemon(repo, dataDir, [], { provider });
  t.teardown(() => second.daemon.stop());
  await second.daemon.start();
  await second.daemon.whenIdle();
  t.equal(provider.count('destroy'), 0, 'nothing deprovisioned after the restart');
  t.match(second.daemon.deletions.hold, { commit, tenants: range(0, 10) });
  for (const x of range(0, 10)) t.match(stalledOf(second.daemon.store.get(x)), { reason: 'DeletionHeld' });
  t.same(await second.daemon.approveDeletions(commit, 'alice', 'approve:test'), range(0, 10));
  await second.daemon.whenIdle();
  t.equal(provider.count('destroy'), 10);
});

t.test('with --max-deletions 0 every deletion waits for a person', async (t) => {
  const provider = new ScriptedProvider();
  const h = await apiHarness(t, { files: fleet(3), flags: ['--max-deletions', '0'], deps: { provider } });
  const commit = await commitFiles(h.repo, removal([id(1)]), 'one');
  await h.daemon.poll();
  await h.daemon.whenIdle();
  t.equal(provider.count('destroy'), 0);
  t.match(h.daemon.deletions.hold, { commit, tenants: [id(1)], reasons: ['threshold'], limit: 0 });
  // A forced reconcile does not get past the hold either.
  t.equal((await h.call('POST', `/api/v1/infrastructure/tenants/${id(1)}/reconcile`)).status, 202);
  await h.daemon.whenIdle();
  t.equal(provider.count('destroy'), 0, 'reconcile now does not bypass the hold');
});

t.test('when the breaker cannot record its decision, nothing of the change is queued until it can', async (t) => {
  const provider = new ScriptedProvider();
  const h = await apiHarness(t, { files: fleet(3), deps: { provider } });
  const file = path.join(h.daemon.config.dataDir, 'deletion-guard.json');
  await fsp.rm(file);
  await fsp.mkdir(file); // the rename over it fails
  await commitFiles(h.repo, { ...removal([id(0)]), 'tenants/late.yaml': tenantYaml('late') }, 'one out, one in');
  await h.daemon.poll();
  await h.daemon.whenIdle();
  t.equal(h.daemon.store.get('late'), undefined, 'not even the create is queued');
  t.equal(provider.count('destroy'), 0);
  t.match(h.daemon.problem, { code: /^E_DELETION_GUARD/ });
  t.equal((await h.call('GET', '/readyz', { token: null })).status, 503);
  t.same((await fsp.readdir(h.daemon.config.dataDir)).filter((n) => n.endsWith('.tmp')), [], 'no temp file left behind');
  await fsp.rm(file, { recursive: true });
  await h.daemon.poll();
  await h.daemon.whenIdle();
  t.equal(h.daemon.store.get('late')?.status, 'ACTIVE', 'the next poll decides and queues the change');
  t.equal(h.daemon.store.get(id(0))?.status, 'DEPROVISIONED', 'one deletion is under the limit');
  t.equal(h.daemon.problem, null);
});
