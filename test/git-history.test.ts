import path from 'node:path';
import t from 'tap';
import { GitStore } from '../core/git/store.js';
import { commitFiles, git, gitOut, initRepo } from './helpers/git-fixtures.js';

async function revList(repo: string, range: string): Promise<string[]> {
  const out = await gitOut(repo, ['rev-list', range]);
  return out ? out.split('\n').sort() : [];
}

t.test('compare: fast-forwards, merges, rewinds, rewrites and a base that no longer exists, as git rev-list sees them', async (t) => {
  const dir = t.testdir();
  const repo = await initRepo(path.join(dir, 'repo'));
  const c1 = await commitFiles(repo, { 'tenants/a.yaml': 'a\n' }, 'one');
  const c2 = await commitFiles(repo, { 'tenants/b.yaml': 'b\n' }, 'two');
  // a side branch from c1, merged into main after c3
  await git(repo, ['checkout', '-q', '-b', 'side', c1]);
  const s1 = await commitFiles(repo, { 'tenants/s.yaml': 's\n' }, 'side one\n\nTenantd-Approve-Deletions: 4');
  await git(repo, ['checkout', '-q', 'main']);
  const c3 = await commitFiles(repo, { 'tenants/c.yaml': 'c\n' }, 'three');
  await git(repo, ['merge', '-q', '--no-ff', '-m', 'merge side', 'side']);
  const m = await gitOut(repo, ['rev-parse', 'HEAD']);
  const store = await GitStore.open({ repo, dataDir: path.join(dir, 'data'), branch: 'main' });
  t.teardown(() => store.close());

  const ff = await store.compare(c2, m);
  t.equal(ff.fastForward, true, 'a merge on top is a fast-forward');
  t.same(ff.newCommits.map((c) => c.oid).sort(), await revList(repo, `${c2}..${m}`), 'new commits = git rev-list c2..merge (the side branch included)');
  t.match(ff.newCommits.find((c) => c.oid === s1)?.message, /Tenantd-Approve-Deletions: 4/);
  t.same(await store.compare(m, m), { fastForward: true, newCommits: [], truncated: false });

  const rewind = await store.compare(m, c2);
  t.equal(rewind.fastForward, false, 'a reset to an ancestor is not a fast-forward');
  t.same(rewind.newCommits, [], 'and brings no new commit (an old approval trailer does not count again)');

  // A rewrite: c3 replaced by another commit on c2.
  await git(repo, ['checkout', '-q', '-b', 'rewrite', c2]);
  const r1 = await commitFiles(repo, { 'tenants/r.yaml': 'r\n' }, 'rewritten');
  const rw = await store.compare(c3, r1);
  t.equal(rw.fastForward, false);
  t.same(rw.newCommits.map((c) => c.oid), [r1], 'only the rewritten commit is new');

  // Unrelated history (a re-created repository) and a base that does not exist.
  await git(repo, ['checkout', '-q', '--orphan', 'fresh']);
  await git(repo, ['rm', '-r', '-q', '--cached', '.']);
  const o1 = await commitFiles(repo, { 'tenants/o.yaml': 'o\n' }, 'orphan');
  t.match(await store.compare(m, o1), { fastForward: false, newCommits: [{ oid: o1 }] });
  t.match(await store.compare('0123456789abcdef0123456789abcdef01234567', o1), { fastForward: false, newCommits: [{ oid: o1 }] });
  t.same((await store.compare(c1, c3)).newCommits.map((c) => c.oid), [c3, c2], 'newest first');
});
