/**
 * A measurement, not a benchmark gate: the cost of commitFiles (one file) and changedFiles
 * (one changed file) in a repository of ~1000 tenant files, printed as TAP comments.
 * Only correctness is asserted. Set TENANTD_GIT_PERF_FILES to change the size.
 */
import * as nodeFs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { GitStore } from '../core/git/store.js';
import { startGitHttpServer } from './helpers/git-http-server.js';
import { commitFiles, git, gitOut, initRepo, makeBareRemote, manyFiles, removeDir, tempDir } from './helpers/git-fixtures.js';

const N = Number(process.env.TENANTD_GIT_PERF_FILES ?? 1000);
const ROUNDS = 10;
const AUTHOR = { name: 'Perf', email: 'perf@example.test' };

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const med = s[Math.floor(s.length / 2)] ?? 0;
  return `median ${med.toFixed(1)} ms, min ${(s[0] ?? 0).toFixed(1)} ms, max ${(s[s.length - 1] ?? 0).toFixed(1)} ms (n=${s.length})`;
}

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [performance.now() - t0, r];
}

t.test(`cost with ${N} tenant files`, async (t) => {
  const root = await tempDir('tenantd-perf-');
  t.teardown(() => removeDir(root));
  const files = { ...manyFiles(N), ...manyFiles(N, 'status') };

  // local non-bare repository (native git wrote loose objects)
  const work = await initRepo(path.join(root, 'work'));
  const c1 = await commitFiles(work, files, 'many');
  const local = await GitStore.open({ repo: work, dataDir: root, branch: 'main' });
  const commitMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const [ms, r] = await time(() =>
      local.commitFiles({ message: `s${i}`, author: AUTHOR, build: () => [{ path: 'status/t0001.yaml', content: `round ${i}\n` }] }),
    );
    t.ok(r);
    commitMs.push(ms);
  }
  t.comment(`local work-tree repo, commitFiles(1 file, work tree + index updated): ${stats(commitMs)}`);
  t.equal(await gitOut(work, ['status', '--porcelain']), '');

  // a bare repository packed by native git (like a fetched mirror)
  const bare = path.join(root, 'bare.git');
  await git(root, ['clone', '-q', '--bare', work, bare]);
  await git(bare, ['repack', '-a', '-d', '-q']);
  const bareStore = await GitStore.open({ repo: bare, dataDir: root, branch: 'main' });
  const bareMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const [ms] = await time(() =>
      bareStore.commitFiles({ message: `b${i}`, author: AUTHOR, build: () => [{ path: 'status/t0002.yaml', content: `round ${i}\n` }] }),
    );
    bareMs.push(ms);
  }
  t.comment(`local bare packed repo, commitFiles(1 file): ${stats(bareMs)}`);

  // changedFiles: one tenant file changed among N (a fresh store each round: cold cache), and warm
  const c2 = await commitFiles(work, { 'tenants/t0500.yaml': 'changed\n' }, 'one change');
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const s = await GitStore.open({ repo: work, dataDir: root, branch: 'main' });
    const [ms, changes] = await time(() => s.changedFiles(c1, c2, 'tenants'));
    t.equal(changes.length, 1);
    cold.push(ms);
    const [ms2] = await time(() => s.changedFiles(c1, c2, 'tenants'));
    warm.push(ms2);
  }
  t.comment(`changedFiles(1 of ${N} changed, loose objects): cold ${stats(cold)}; warm ${stats(warm)}`);

  const packedHead = await bareStore.resolve('main');
  const packedBase = (await bareStore.log('main', ROUNDS + 1)).at(-1)?.oid ?? null;
  const packed: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const s = await GitStore.open({ repo: bare, dataDir: root, branch: 'main' });
    const [ms, changes] = await time(() => s.changedFiles(packedBase, packedHead ?? '', 'status'));
    t.equal(changes.length, 1);
    packed.push(ms);
  }
  t.comment(`changedFiles(1 of ${N} changed, packed, cold cache incl. pack load): ${stats(packed)}`);

  const [listMs, listed] = await time(() => local.listFiles(c2, 'tenants'));
  t.equal(listed.length, N);
  t.comment(`listFiles(${N} files): ${listMs.toFixed(1)} ms`);

  // remote: commit + push over http-backend
  const projects = path.join(root, 'srv');
  await nodeFs.promises.mkdir(projects);
  const remoteBare = await makeBareRemote(projects, 'r.git');
  await git(work, ['push', '-q', remoteBare, 'main']);
  const server = await startGitHttpServer(projects);
  t.teardown(() => server.close());
  const [cloneMs, remote] = await time(() =>
    GitStore.open({ repo: `${server.url}/r.git`, dataDir: path.join(root, 'data'), branch: 'main' }),
  );
  t.comment(`remote open (clone of ${2 * N} files): ${cloneMs.toFixed(1)} ms`);
  const pushMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const [ms, r] = await time(() =>
      remote.commitFiles({ message: `r${i}`, author: AUTHOR, build: () => [{ path: 'status/t0003.yaml', content: `round ${i}\n` }] }),
    );
    t.ok(r);
    pushMs.push(ms);
  }
  t.comment(`remote commitFiles(1 file) incl. push over http-backend: ${stats(pushMs)}`);
  const syncMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const [ms] = await time(() => remote.sync());
    syncMs.push(ms);
  }
  t.comment(`remote sync() with nothing new: ${stats(syncMs)}`);
});
