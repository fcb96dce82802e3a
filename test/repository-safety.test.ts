/**
 * A repository that stops making sense — the tracked branch deleted, tenants/ replaced by a file —
 * stops the daemon acting on it: /readyz false, API writes refused with a problem document,
 * nothing deprovisioned, nothing written to the repository.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { GitStore } from '../core/git/store.js';
import { apiHarness } from './helpers/api.js';
import { ScriptedProvider } from './helpers/fake-provider.js';
import { codeOf, commitFiles, git, gitOut, initRepo } from './helpers/git-fixtures.js';
import { spawnTenantd, waitFor } from './helpers/process.js';
import { tenantYaml } from './helpers/tenants.js';

const AUTHOR = { name: 'Test', email: 'test@example.test' };
const seedBody = { tier: 'professional', region: 'eastus', cloudProvider: 'AZURE', configuration: { databaseSize: 'GP_Gen5_2', storageGb: 100, enableHa: true } };

t.test('the git store never starts a branch that had history over with a root commit', async (t) => {
  const dir = t.testdir();
  const repo = await initRepo(path.join(dir, 'repo'));
  const store = await GitStore.open({ repo, dataDir: path.join(dir, 'data'), branch: 'main' });
  t.equal(await store.sync(), null, 'an empty repository');
  const first = await store.commitFiles({ message: 'first', author: AUTHOR, build: () => [{ path: 'tenants/a.yaml', content: 'a\n' }] });
  t.equal(first?.parent, null, 'its first commit is a root commit');
  await git(repo, ['update-ref', '-d', 'refs/heads/main']);
  t.equal(await store.sync(), null);
  const build = (): Array<{ path: string; content: string }> => [{ path: 'tenants/b.yaml', content: 'b\n' }];
  t.equal(await codeOf(store.commitFiles({ message: 'x', author: AUTHOR, build })), 'E_GIT_BRANCH_MISSING', 'this store saw the branch');
  t.equal(await codeOf(store.commitFiles({ branch: 'status', message: 'x', author: AUTHOR, build })), 'E_GIT_BRANCH_MISSING', 'nor a status branch from it');
  // A store opened afresh (a restart) has not seen it, but the repository has history.
  const fresh = await GitStore.open({ repo, dataDir: path.join(dir, 'data2'), branch: 'main' });
  t.equal(await codeOf(fresh.commitFiles({ message: 'x', author: AUTHOR, build })), 'E_GIT_BRANCH_MISSING', 'objects exist: it had history');
  t.equal(await gitOut(repo, ['for-each-ref']), '', 'no ref was written');
  await store.close();
  await fresh.close();
});

t.test('tenants/ replaced by a file (or a symlink) is a repository-level error; nothing is touched', async (t) => {
  const provider = new ScriptedProvider();
  const files: Record<string, string> = {};
  for (const id of ['a', 'b', 'c']) files[`tenants/${id}.yaml`] = tenantYaml(id);
  const h = await apiHarness(t, { files, deps: { provider } });
  const good = h.daemon.loader.commit;
  const calls = provider.calls.length;
  const events: Array<{ type: string; code?: string; message?: string }> = [];
  h.daemon.publisher.subscribe((e) => events.push(e));

  await git(h.repo, ['rm', '-r', '-q', 'tenants']);
  await fsp.writeFile(path.join(h.repo, 'tenants'), 'not a directory\n');
  await git(h.repo, ['add', 'tenants']);
  await git(h.repo, ['commit', '-q', '-m', 'tenants is a file now']);
  const bad = await gitOut(h.repo, ['rev-parse', 'HEAD']);
  await h.daemon.poll();
  await h.daemon.whenIdle();

  t.equal(provider.calls.length, calls, 'no provider call: nothing deprovisioned');
  for (const id of ['a', 'b', 'c']) t.equal(h.daemon.store.get(id)?.status, 'ACTIVE');
  t.equal(h.daemon.loader.commit, good, 'the daemon stays at the last good commit');
  t.match(events.filter((e) => e.type === 'SourceFailed'), [{ code: 'E_REPO_LAYOUT', message: /^tenants is a file/ }], 'one event names the layout error');
  t.match(await h.call('GET', '/readyz', { token: null }), { status: 503, body: { ready: false, problem: { code: 'E_REPO_LAYOUT', message: /^tenants is a file/ } } }, '/readyz false, saying why');
  const write = await h.call('POST', '/api/v1/infrastructure/tenants/d/provision', { body: seedBody });
  t.match(write, { status: 409, body: { code: 'E_REPO_LAYOUT' } }, 'writes are refused with a stable code');
  t.equal(await gitOut(h.repo, ['rev-parse', 'HEAD']), bad, 'the API wrote nothing');
  await h.daemon.poll();
  t.equal(events.filter((e) => e.type === 'SourceFailed').length, 1, 'the same problem is not announced on every poll');

  // A symlink in its place says so.
  await git(h.repo, ['rm', '-q', 'tenants']);
  await fsp.symlink('elsewhere', path.join(h.repo, 'tenants'));
  await git(h.repo, ['add', 'tenants']);
  await git(h.repo, ['commit', '-q', '-m', 'tenants is a symlink now']);
  await h.daemon.poll();
  t.match(events.at(-1), { type: 'SourceFailed', code: 'E_REPO_LAYOUT', message: /symlink/ });

  // Restoring the directory: ready again, and nothing happens to the tenants.
  await git(h.repo, ['rm', '-q', 'tenants']);
  await commitFiles(h.repo, files, 'tenants is a directory again');
  await h.daemon.poll();
  await h.daemon.whenIdle();
  t.equal((await h.call('GET', '/readyz', { token: null })).status, 200);
  t.equal(provider.calls.length, calls, 'the same specs: still no provider call');
  t.equal(provider.count('destroy'), 0);
});

t.test('a real daemon: the tracked branch deleted makes /readyz false, API writes 409, and nothing changes in the repository or the fleet', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  const dataDir = path.join(dir, 'data');
  await initRepo(repo);
  const ids = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];
  const files: Record<string, string> = {};
  for (const id of ids) files[`tenants/${id}.yaml`] = tenantYaml(id);
  await commitFiles(repo, files, 'five tenants');
  const p = spawnTenantd(['daemon', '--repo', repo, '--data-dir', dataDir, '--poll', '1', '--host', '127.0.0.1', '--port', '0', '--log-format', 'json']);
  t.teardown(() => {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  await waitFor(() => /API on (http:\/\/127\.0\.0\.1:\d+)/.test(p.output()), 120_000, 'the API to listen');
  const url = /API on (http:\/\/127\.0\.0\.1:\d+)/.exec(p.output())?.[1] as string;
  const token = (await fsp.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  const call = async (method: string, route: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const active = async (): Promise<number> => ((await call('GET', '/api/v1/infrastructure/tenants')).body.counts as Record<string, number> | undefined)?.ACTIVE ?? 0;
  await waitFor(async () => (await active()) === 5, 120_000, 'five tenants ACTIVE');
  // Let the pass's status commit land so the branch is quiet.
  await waitFor(async () => (await gitOut(repo, ['log', '-1', '--format=%an'])) === 'tenantd', 30_000, 'the status commit');
  const tip = await gitOut(repo, ['rev-parse', 'main']);

  await git(repo, ['update-ref', '-d', 'refs/heads/main']);
  const refsAfterDelete = await gitOut(repo, ['for-each-ref']);
  await waitFor(async () => (await fetch(`${url}/readyz`)).status === 503, 30_000, '/readyz to turn false');
  const write = await call('POST', '/api/v1/infrastructure/tenants/550e8400/provision', seedBody);
  t.equal(write.status, 409, 'the provision is refused');
  t.equal(write.body.code, 'E_GIT_BRANCH_MISSING', 'with a stable code');
  t.equal(write.body.status, 409, 'as a problem document');
  // Several polls later: still nothing.
  await new Promise((r) => setTimeout(r, 2500));
  t.equal(await gitOut(repo, ['for-each-ref']), refsAfterDelete, 'no ref was created: no parentless main');
  t.equal(await active(), 5, 'all five still ACTIVE');
  for (const id of ids) t.ok(await fsp.stat(path.join(dataDir, 'rendered', id)), `${id} still rendered`);
  t.match(p.output(), /"type":"SourceFailed","code":"E_GIT_BRANCH_MISSING"/, 'the log says why');

  // Restoring the branch: ready again, the write goes through, nothing was deprovisioned.
  await git(repo, ['update-ref', 'refs/heads/main', tip]);
  await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, 30_000, '/readyz to turn true');
  t.equal((await call('POST', '/api/v1/infrastructure/tenants/550e8400/provision', seedBody)).status, 202);
  await waitFor(async () => (await active()) === 6, 120_000, 'six tenants ACTIVE');
  t.notMatch(await fsp.readFile(path.join(dataDir, 'transitions.jsonl'), 'utf8'), /DEPROVISIONING/, 'no tenant was ever deprovisioned');
  p.child.kill('SIGTERM');
  t.equal((await p.exited).code, 0);
});
