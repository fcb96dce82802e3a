/**
 * Concurrent commitFiles calls are committed as a chain: each call still gets its own commit, in
 * call order, and a failing or empty build affects only its own call. Local bare and work-tree
 * repositories; the remote case (one push per chain) is in git-remote.test.ts.
 */
import path from 'node:path';
import t from 'tap';
import { stalled } from '../core/errors.js';
import { GitStore } from '../core/git/store.js';
import { codeOf, commitFiles, git, gitOut, initRepo, removeDir, tempDir } from './helpers/git-fixtures.js';

const AUTHOR = { name: 'Chain Tester', email: 'chain@example.test' };

for (const kind of ['bare', 'work tree'] as const) {
  t.test(`${kind}: 60 concurrent commits, each its own, in call order; failures stay with their caller`, async (t) => {
    const root = await tempDir();
    t.teardown(() => removeDir(root));
    const work = await initRepo(path.join(root, 'work'));
    await commitFiles(work, { 'tenants/seed.yaml': 'seed\n' }, 'seed');
    let repo = work;
    if (kind === 'bare') {
      repo = path.join(root, 'bare.git');
      await git(root, ['clone', '-q', '--bare', work, repo]);
    }
    const chains: number[] = [];
    const logger = {
      debug: (msg: string, data?: object) => {
        if (msg === 'git: committed') chains.push((data as { commits: number }).commits);
      },
      warn: () => undefined,
    };
    const store = await GitStore.open({ repo, dataDir: root, branch: 'main', logger });
    t.teardown(() => store.close());
    const before = await gitOut(repo, ['rev-parse', 'main']);
    const heads: Array<string | null> = [];
    const calls = Array.from({ length: 60 }, (_, i) =>
      store.commitFiles({
        message: `call ${i}`,
        author: AUTHOR,
        build: (head) => {
          heads.push(head);
          if (i % 10 === 3) throw stalled('E_TEST_REFUSED', `call ${i} refused`);
          if (i % 10 === 7) return []; // nothing to commit
          if (i % 10 === 8) return [{ path: 'tenants/seed.yaml', content: 'seed\n' }]; // identical content
          return [{ path: `tenants/t-${i}.yaml`, content: `tenant ${i}\n` }];
        },
      }),
    );
    const results = await Promise.allSettled(calls);
    const commits: string[] = [];
    results.forEach((r, i) => {
      if (i % 10 === 3) {
        t.equal(r.status, 'rejected', `call ${i} rejected`);
        if (r.status === 'rejected') t.equal((r.reason as { code?: string }).code, 'E_TEST_REFUSED');
      } else if (i % 10 === 7 || i % 10 === 8) {
        t.same(r, { status: 'fulfilled', value: null }, `call ${i}: nothing to commit`);
      } else if (r.status === 'fulfilled' && r.value) {
        commits.push(r.value.commit);
        t.equal(r.value.parent, commits.length === 1 ? before : commits[commits.length - 2], `call ${i} builds on the call before`);
      } else t.fail(`call ${i} should have committed`);
    });
    t.equal(commits.length, 42);
    t.equal(chains.reduce((a, b) => a + b, 0), 42, 'every commit went out in some chain');
    t.ok(chains.length < 42 && Math.max(...chains) > 1, `calls waiting behind the first were chained (${chains.join(', ')})`);
    t.same(heads.length, 60, 'each build ran exactly once');
    const onMain = (await gitOut(repo, ['rev-list', '--reverse', `${before}..main`])).split('\n');
    t.same(onMain, commits, 'main holds exactly these commits, in call order');
    const messages = (await gitOut(repo, ['log', '--reverse', '--format=%s', `${before}..main`])).split('\n');
    t.same(messages, Array.from({ length: 60 }, (_, i) => i).filter((i) => ![3, 7, 8].includes(i % 10)).map((i) => `call ${i}`));
    t.equal((await gitOut(repo, ['ls-tree', '--name-only', 'main', 'tenants/'])).split('\n').length, 43);
    if (kind === 'work tree') t.equal(await gitOut(work, ['status', '--porcelain']), '', 'work tree and index follow the chain');
    await git(repo, ['fsck', '--strict']);

    // a later single commit still works, and a failing build alone rejects alone
    t.equal(await codeOf(store.commitFiles({ message: 'bad', author: AUTHOR, build: () => [{ path: '../x', content: 'x' }] })), 'E_GIT_BAD_PATH');
    const last = await store.commitFiles({ message: 'last', author: AUTHOR, build: () => [{ path: 'tenants/last.yaml', content: 'last\n' }] });
    t.equal(last?.parent, commits.at(-1));
  });
}
