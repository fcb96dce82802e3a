/**
 * GitStore against an http(s) remote: a real `git http-backend` served on 127.0.0.1, with
 * native git clones playing the other writers (people merging pull requests).
 */
import * as nodeFs from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { GitStore, type GitLogger } from '../core/git/store.js';
import { startGitHttpServer, type GitHttpServer, type GitHttpServerOptions } from './helpers/git-http-server.js';
import { cloneRepo, commitFiles, git, gitOut, makeBareRemote, removeDir, tempDir } from './helpers/git-fixtures.js';

const AUTHOR = { name: 'Ada Operator', email: 'ada@example.test' };
const now = () => new Date('2024-05-06T07:08:09Z');

interface Env {
  root: string;
  bare: string;
  server: GitHttpServer;
  url: string;
  dataDir: string;
}

async function setup(
  t: { teardown(fn: () => unknown): void },
  files: Record<string, string> | undefined = { 'tenants/a.yaml': 'a: 1\n', 'README.md': 'readme\n' },
  serverOpts: GitHttpServerOptions = {},
): Promise<Env> {
  const root = await tempDir();
  const projects = path.join(root, 'srv');
  await nodeFs.promises.mkdir(projects);
  const bare = await makeBareRemote(projects, 'tenants.git', files);
  const server = await startGitHttpServer(projects, serverOpts);
  t.teardown(async () => {
    await server.close();
    await removeDir(root);
  });
  return { root, bare, server, url: `${server.url}/tenants.git`, dataDir: path.join(root, 'data') };
}

function recordingLogger(): GitLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    debug: (m, d) => lines.push(`debug ${m} ${JSON.stringify(d ?? {})}`),
    warn: (m, d) => lines.push(`warn ${m} ${JSON.stringify(d ?? {})}`),
  };
}

async function errorOf(p: Promise<unknown>): Promise<{ code?: string; kind?: string; message?: string }> {
  try {
    await p;
  } catch (err: unknown) {
    return err as { code?: string; kind?: string; message?: string };
  }
  return {};
}

t.test('clone, sync and read over http; reopening reuses the mirror', async (t) => {
  const env = await setup(t);
  const s = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now });
  t.equal(s.remote, true);
  t.equal(s.gitdir, path.join(env.dataDir, 'repo.git'));
  t.ok(nodeFs.existsSync(path.join(env.dataDir, 'repo.git', 'HEAD')));
  const h1 = await s.sync();
  t.equal(h1, await gitOut(env.bare, ['rev-parse', 'main']));
  t.same((await s.listFiles(h1 ?? '', 'tenants')).map((f) => f.path), ['tenants/a.yaml']);
  t.equal(await s.readBlob((await s.listFiles(h1 ?? '', 'tenants'))[0]?.oid ?? ''), 'a: 1\n');

  // someone merges a change: sync fast-forwards and changedFiles sees it
  const other = await cloneRepo(env.url, path.join(env.root, 'other'));
  const h2 = await commitFiles(other, { 'tenants/b.yaml': 'b: 1\n' }, 'add b');
  await git(other, ['push', '-q', 'origin', 'main']);
  t.equal(await s.sync(), h2);
  t.equal(await s.resolve('main'), h2);
  t.same(await s.changedFiles(h1, h2, 'tenants'), [
    { path: 'tenants/b.yaml', oldOid: null, newOid: await gitOut(other, ['rev-parse', 'HEAD:tenants/b.yaml']) },
  ]);
  t.same((await s.log('main', 5)).map((e) => e.message), ['add b', 'seed']);

  // reopen: no second clone, same mirror
  const before = env.server.requests.length;
  const s2 = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now });
  t.equal(env.server.requests.length, before, 'opening an existing mirror makes no request');
  t.equal(await s2.resolve('main'), h2);
  t.equal(await s2.sync(), h2);

  // the remote branch is rewritten (force-pushed by someone): sync follows and warns
  const logger = recordingLogger();
  const s3 = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now, logger });
  await git(other, ['reset', '-q', '--hard', 'HEAD~1']);
  const h3 = await commitFiles(other, { 'tenants/c.yaml': 'c\n' }, 'rewritten');
  await git(env.bare, ['config', 'receive.denyNonFastForwards', 'false']);
  await git(other, ['push', '-q', '--force', 'origin', 'main']);
  t.equal(await s3.sync(), h3);
  t.ok(logger.lines.some((l) => l.includes('history was rewritten')));
});

t.test('commitFiles pushes; the commit is visible to a native clone', async (t) => {
  const env = await setup(t);
  const s = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now });
  const h1 = await s.sync();
  const r = await s.commitFiles({
    message: 'status: a ACTIVE',
    author: AUTHOR,
    build: () => [{ path: 'status/a.yaml', content: 'status: ACTIVE\n' }],
  });
  t.equal(r?.parent, h1);
  t.equal(await gitOut(env.bare, ['rev-parse', 'main']), r?.commit);
  t.equal(await s.resolve('main'), r?.commit, 'local branch moved after the push');
  t.equal(await s.resolve('refs/remotes/origin/main'), r?.commit, 'remote-tracking ref too');

  const clone = await cloneRepo(env.url, path.join(env.root, 'check'));
  t.equal(await gitOut(clone, ['log', '-1', '--format=%an <%ae> %at %s']), 'Ada Operator <ada@example.test> 1714979289 status: a ACTIVE');
  t.equal(await gitOut(clone, ['show', 'HEAD:status/a.yaml']), 'status: ACTIVE');
  await git(clone, ['fsck', '--strict', '--no-progress']);

  t.equal(await s.commitFiles({ message: 'same', author: AUTHOR, build: () => [{ path: 'status/a.yaml', content: 'status: ACTIVE\n' }] }), null);
  t.equal(await gitOut(env.bare, ['rev-parse', 'main']), r?.commit, 'no empty commit pushed');
});

t.test('a rejected push: fetch, rebuild on the new head, both changes land, no force', async (t) => {
  const env = await setup(t);
  const logger = recordingLogger();
  const s = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now, logger });
  const h1 = await s.sync();

  // another clone pushes first; our mirror does not know yet
  const other = await cloneRepo(env.url, path.join(env.root, 'other'));
  const theirs = await commitFiles(other, { 'tenants/b.yaml': 'b: 1\n' }, 'their change');
  await git(other, ['push', '-q', 'origin', 'main']);

  const heads: Array<string | null> = [];
  const r = await s.commitFiles({
    message: 'our change',
    author: AUTHOR,
    build: async (head) => {
      heads.push(head);
      // the files we write may depend on what is at head: list it
      const files = head ? await s.listFiles(head, 'tenants') : [];
      return [{ path: 'status/summary.yaml', content: `tenants: ${files.length}\n` }];
    },
  });
  t.same(heads, [h1, theirs], 'build called again with the new head');
  t.equal(r?.parent, theirs);
  t.equal(await gitOut(env.bare, ['rev-parse', 'main']), r?.commit);
  t.equal(await gitOut(env.bare, ['show', 'main:status/summary.yaml']), 'tenants: 2', 'rebuilt from the new head');
  t.equal(await gitOut(env.bare, ['log', '--format=%s', 'main']), 'our change\ntheir change\nseed');
  await git(env.bare, ['merge-base', '--is-ancestor', theirs, 'main']);
  t.ok(logger.lines.some((l) => l.includes('push rejected')), 'the rejection was logged');
  t.equal(await s.resolve('main'), r?.commit);
});

t.test('the remote moves between ref discovery and the pack upload: receive-pack refuses, we rebuild', async (t) => {
  let racedOnce = false;
  const late: { env?: Env } = {};
  let theirs = '';
  const env = await setup(t, undefined, {
    intercept: async (req) => {
      const e = late.env;
      if (racedOnce || req.method !== 'POST' || req.service !== 'git-receive-pack' || !e) return;
      racedOnce = true;
      // before our pack reaches receive-pack, someone else updates the branch
      // (native git's own requests pass through this same server)
      const other = await cloneRepo(e.url, path.join(e.root, 'racer'));
      theirs = await commitFiles(other, { 'tenants/race.yaml': 'r\n' }, 'racing change');
      await git(other, ['push', '-q', 'origin', 'main']);
    },
  });
  late.env = env;
  const logger = recordingLogger();
  const s = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now, logger });
  await s.sync();
  const heads: Array<string | null> = [];
  const r = await s.commitFiles({
    message: 'ours',
    author: AUTHOR,
    build: (head) => {
      heads.push(head);
      return [{ path: 'status/x.yaml', content: 'x\n' }];
    },
  });
  t.ok(racedOnce);
  t.equal(heads.length, 2);
  t.equal(heads[1], theirs);
  t.equal(r?.parent, theirs);
  t.equal(await gitOut(env.bare, ['log', '--format=%s', 'main']), 'ours\nracing change\nseed');
  const rejection = logger.lines.find((l) => l.includes('push rejected')) ?? '';
  t.comment(rejection);
  t.match(rejection, /failed to update ref|cannot lock|fetch first|stale|expected/, 'refused by receive-pack, not by the pre-push check');
});

t.test('20 concurrent commitFiles on a remote serialize and all land', async (t) => {
  const env = await setup(t);
  const s = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now });
  await s.sync();
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      s.commitFiles({ message: `status ${i}`, author: AUTHOR, build: () => [{ path: `status/t${i}.yaml`, content: `${i}\n` }] }),
    ),
  );
  t.equal(new Set(results.map((r) => r?.commit)).size, 20);
  t.equal(await gitOut(env.bare, ['rev-list', '--count', 'main']), '21');
  t.equal((await gitOut(env.bare, ['ls-tree', '--name-only', 'main', 'status/'])).split('\n').length, 20);
  // each commit's parent is the previous one: a straight line
  t.equal(await gitOut(env.bare, ['rev-list', '--merges', '--count', 'main']), '0');
  await git(env.bare, ['fsck', '--strict', '--no-progress']);
});

t.test('concurrent commits while another writer keeps pushing: nothing lost, no force', async (t) => {
  const env = await setup(t);
  const s = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now });
  await s.sync();
  const other = await cloneRepo(env.url, path.join(env.root, 'other'));
  const theirs = (async () => {
    for (let i = 0; i < 3; i++) {
      await git(other, ['pull', '-q', '--rebase', 'origin', 'main']);
      await commitFiles(other, { [`tenants/n${i}.yaml`]: `${i}\n` }, `theirs ${i}`);
      await git(other, ['push', '-q', 'origin', 'main']).catch(() => undefined); // may lose a race; fine
    }
  })();
  const ours = Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      s.commitFiles({ message: `ours ${i}`, author: AUTHOR, build: () => [{ path: `status/o${i}.yaml`, content: `${i}\n` }] }),
    ),
  );
  const [, results] = await Promise.all([theirs, ours]);
  t.equal(results.filter((r) => r !== null).length, 8);
  const subjects = (await gitOut(env.bare, ['log', '--format=%s', 'main'])).split('\n');
  for (let i = 0; i < 8; i++) t.ok(subjects.includes(`ours ${i}`), `ours ${i} landed`);
  t.equal((await gitOut(env.bare, ['ls-tree', '--name-only', 'main', 'status/'])).split('\n').length, 8);
});

t.test('a remote that keeps moving: bounded attempts, then retryable E_GIT_PUSH_CONFLICT', async (t) => {
  const env = await setup(t);
  const s = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now, maxPushAttempts: 3 });
  await s.sync();
  const other = await cloneRepo(env.url, path.join(env.root, 'other'));
  let builds = 0;
  const err = await errorOf(
    s.commitFiles({
      message: 'never lands',
      author: AUTHOR,
      build: async () => {
        builds++;
        // every time we build, someone else pushes first
        await git(other, ['pull', '-q', '--rebase', 'origin', 'main']);
        await commitFiles(other, { [`tenants/m${builds}.yaml`]: 'm\n' }, `move ${builds}`);
        await git(other, ['push', '-q', 'origin', 'main']);
        return [{ path: 'status/x.yaml', content: 'x\n' }];
      },
    }),
  );
  t.equal(err.code, 'E_GIT_PUSH_CONFLICT');
  t.equal(err.kind, 'retryable');
  t.equal(builds, 3);
  t.notMatch(await gitOut(env.bare, ['log', '--format=%s', 'main']), /never lands/);
  t.equal(await gitOut(env.bare, ['rev-list', '--count', 'main']), '4', 'their three commits, none lost');
});

t.test('status branch on a remote: created from the tracked head, found on the remote by a fresh mirror', async (t) => {
  const env = await setup(t);
  const s = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now });
  const h1 = await s.sync();
  const heads: Array<string | null> = [];
  const r1 = await s.commitFiles({
    branch: 'tenantd-status',
    message: 'status 1',
    author: AUTHOR,
    build: (head) => {
      heads.push(head);
      return [{ path: 'status/a.yaml', content: '1\n' }];
    },
  });
  t.same(heads, [h1]);
  t.equal(r1?.parent, h1);
  t.equal(await gitOut(env.bare, ['rev-parse', 'tenantd-status']), r1?.commit);
  t.equal(await gitOut(env.bare, ['rev-parse', 'main']), h1, 'tracked branch untouched');

  // a second daemon with an empty data dir: the status branch already exists on the remote
  const s2 = await GitStore.open({ repo: env.url, dataDir: path.join(env.root, 'data2'), branch: 'main', now });
  await s2.sync();
  const r2 = await s2.commitFiles({
    branch: 'tenantd-status',
    message: 'status 2',
    author: AUTHOR,
    build: (head) => {
      heads.push(head);
      return [{ path: 'status/a.yaml', content: '2\n' }];
    },
  });
  t.equal(heads[1], r1?.commit, 'built on the remote status branch, not on main');
  t.equal(r2?.parent, r1?.commit);
  t.equal(await gitOut(env.bare, ['log', '--format=%s', 'tenantd-status']), 'status 2\nstatus 1\nseed');
});

t.test('an empty remote: sync is null, the first commit creates the branch', async (t) => {
  const env = await setup(t, undefined);
  // replace the seeded repo by an empty one
  await removeDir(env.bare);
  await makeBareRemote(path.dirname(env.bare), 'tenants.git');
  const s = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now });
  t.equal(await s.sync(), null);
  const r = await s.commitFiles({
    message: 'first',
    author: AUTHOR,
    build: (head) => {
      t.equal(head, null);
      return [{ path: 'tenants/a.yaml', content: 'a\n' }];
    },
  });
  t.equal(r?.parent, null);
  t.equal(await gitOut(env.bare, ['rev-parse', 'main']), r?.commit);
  t.equal(await s.sync(), r?.commit);
  const clone = await cloneRepo(env.url, path.join(env.root, 'check'));
  t.equal(await gitOut(clone, ['show', 'HEAD:tenants/a.yaml']), 'a');
});

t.test('errors: missing repo, unreachable server, failing push', async (t) => {
  const env = await setup(t);

  const notFound = await errorOf(GitStore.open({ repo: `${env.server.url}/nope.git`, dataDir: path.join(env.root, 'd1'), branch: 'main' }));
  t.equal(notFound.code, 'E_GIT_REPO_NOT_FOUND');
  t.equal(notFound.kind, 'stalled');
  t.notOk(nodeFs.existsSync(path.join(env.root, 'd1', 'repo.git')), 'no half-made mirror');
  t.same(
    nodeFs.readdirSync(path.join(env.root, 'd1')),
    [],
    'temporary clone directory removed',
  );

  const down = await errorOf(GitStore.open({ repo: 'http://127.0.0.1:9/x.git', dataDir: path.join(env.root, 'd2'), branch: 'main' }));
  t.equal(down.code, 'E_GIT_FETCH');
  t.equal(down.kind, 'retryable');

  // server answers 500 to the push; the local branch does not move
  let failPush = false;
  const env2 = await setup(t, undefined, {
    intercept: (req) => (failPush && req.service === 'git-receive-pack' ? 500 : undefined),
  });
  const s = await GitStore.open({ repo: env2.url, dataDir: env2.dataDir, branch: 'main', now });
  const h1 = await s.sync();
  failPush = true;
  const pushErr = await errorOf(s.commitFiles({ message: 'x', author: AUTHOR, build: () => [{ path: 'status/x.yaml', content: 'x\n' }] }));
  t.equal(pushErr.code, 'E_GIT_PUSH');
  t.equal(pushErr.kind, 'retryable');
  t.equal(await s.resolve('main'), h1, 'local branch unchanged after a failed push');
  t.equal(await gitOut(env2.bare, ['rev-parse', 'main']), h1);
  failPush = false;
  t.ok(await s.commitFiles({ message: 'x', author: AUTHOR, build: () => [{ path: 'status/x.yaml', content: 'x\n' }] }), 'works again');

  // the server goes away: sync is a retryable E_GIT_FETCH
  await env2.server.close();
  const syncErr = await errorOf(s.sync());
  t.equal(syncErr.code, 'E_GIT_FETCH');
  t.equal(syncErr.kind, 'retryable');
});

t.test('token auth: sent when the server asks, never logged', async (t) => {
  const token = 'tok-s3cret-value';
  const env = await setup(t, undefined, { auth: { token } });
  const noToken = await errorOf(GitStore.open({ repo: env.url, dataDir: path.join(env.root, 'd1'), branch: 'main' }));
  t.equal(noToken.code, 'E_GIT_AUTH');
  t.equal(noToken.kind, 'stalled');
  const wrong = await errorOf(GitStore.open({ repo: env.url, dataDir: path.join(env.root, 'd2'), branch: 'main', token: 'nope' }));
  t.equal(wrong.code, 'E_GIT_AUTH');
  t.notMatch(String(wrong.message), /nope/);

  const logger = recordingLogger();
  const s = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', token, logger, now });
  const h1 = await s.sync();
  t.equal(h1, await gitOut(env.bare, ['rev-parse', 'main']));
  const r = await s.commitFiles({ message: 'authd', author: AUTHOR, build: () => [{ path: 'status/a.yaml', content: 'a\n' }] });
  t.equal(await gitOut(env.bare, ['rev-parse', 'main']), r?.commit);
  t.ok(logger.lines.length > 0);
  t.notOk(logger.lines.some((l) => l.includes(token)), 'token never logged');
  const config = await nodeFs.promises.readFile(path.join(env.dataDir, 'repo.git', 'config'), 'utf8');
  t.notMatch(config, token, 'token not stored in the mirror config');

  // a URL with embedded credentials is redacted in errors
  const embedded = await errorOf(
    GitStore.open({ repo: `http://user:${token}@127.0.0.1:9/x.git`, dataDir: path.join(env.root, 'd3'), branch: 'main' }),
  );
  t.equal(embedded.code, 'E_GIT_FETCH');
  t.notMatch(String(embedded.message), token);
});

t.test('the mirror directory: leftovers of an interrupted clone are removed; a foreign repo.git is refused', async (t) => {
  const env = await setup(t);
  // Abandoned: a pid that cannot be alive (old-style name, and one naming this host), and another
  // host's that is older than any clone runs. In progress: this process's, another host's recent one.
  const host = hostname();
  const abandoned = ['repo.git.tmp-99999999-abcd', `repo.git.tmp-99999999-abcd@${host}`, 'repo.git.tmp-7-beef@other-pod'];
  const inProgress = [`repo.git.tmp-${process.pid}-cafe@${host}`, 'repo.git.tmp-8-f00d@other-pod'];
  for (const name of [...abandoned, ...inProgress]) await nodeFs.promises.mkdir(path.join(env.dataDir, name, 'objects'), { recursive: true });
  const hoursAgo = new Date(Date.now() - 2 * 3600_000);
  await nodeFs.promises.utimes(path.join(env.dataDir, 'repo.git.tmp-7-beef@other-pod'), hoursAgo, hoursAgo);
  await nodeFs.promises.mkdir(path.join(env.dataDir, 'repo.git'));
  const s = await GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now });
  t.ok(await s.sync());
  t.same(nodeFs.readdirSync(env.dataDir).sort(), ['repo.git', ...inProgress].sort(), 'abandoned leftovers removed, clones in progress kept, empty repo.git replaced by the clone');
  for (const name of inProgress) await nodeFs.promises.rm(path.join(env.dataDir, name), { recursive: true });

  const other = path.join(env.root, 'other-data');
  await nodeFs.promises.mkdir(path.join(other, 'repo.git'), { recursive: true });
  await nodeFs.promises.writeFile(path.join(other, 'repo.git', 'precious.txt'), 'not a repo\n');
  const err = await errorOf(GitStore.open({ repo: env.url, dataDir: other, branch: 'main' }));
  t.equal(err.code, 'E_GIT_DATA_DIR');
  t.ok(nodeFs.existsSync(path.join(other, 'repo.git', 'precious.txt')), 'nothing deleted');

  // the repository URL changes (moved server): the mirror follows it
  const logger = recordingLogger();
  const moved = await GitStore.open({ repo: `${env.url}/`, dataDir: env.dataDir, branch: 'main', now, logger });
  t.notOk(logger.lines.some((l) => l.includes('URL changed')), 'a trailing slash is the same URL');
  t.ok(moved);
  const server2 = await startGitHttpServer(path.dirname(env.bare));
  t.teardown(() => server2.close());
  const s2 = await GitStore.open({ repo: `${server2.url}/tenants.git`, dataDir: env.dataDir, branch: 'main', now, logger });
  t.ok(logger.lines.some((l) => l.includes('URL changed')));
  await env.server.close();
  t.equal(await s2.sync(), await gitOut(env.bare, ['rev-parse', 'main']), 'fetches from the new URL');
});

t.test('replicas cloning into one fresh shared data dir at once: each opens the same mirror, nothing left behind', async (t) => {
  const env = await setup(t);
  const logger = recordingLogger();
  const stores = await Promise.all([1, 2, 3].map(() => GitStore.open({ repo: env.url, dataDir: env.dataDir, branch: 'main', now, logger })));
  const head = await gitOut(env.bare, ['rev-parse', 'main']);
  for (const s of stores) t.equal(await s.sync(), head);
  t.same(nodeFs.readdirSync(env.dataDir), ['repo.git'], 'one mirror, no temporary clone left');
  t.ok(logger.lines.some((l) => l.includes('another process cloned first')), 'the losers used the winner’s mirror');
  await git(path.join(env.dataDir, 'repo.git'), ['fsck', '--no-dangling']);
});
