/**
 * GitStore against real local repositories (bare and with a work tree), built with native git.
 * Remote behaviour (clone, fetch, push, rejected push) is in git-remote.test.ts.
 */
import * as nodeFs from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { atomicWriteFs } from '../core/git/atomic-fs.js';
import { GitStore, type FileChange } from '../core/git/store.js';
import { codeOf, commitFiles, git, gitOut, initRepo, removeDir, renameFile, tempDir } from './helpers/git-fixtures.js';

const AUTHOR = { name: 'Ada Operator', email: 'ada@example.test' };
const FIXED_NOW = new Date('2024-05-06T07:08:09Z');
const now = () => FIXED_NOW;

async function workRepo(t: { teardown(fn: () => unknown): void }, files: Record<string, string>): Promise<{ dir: string; c1: string }> {
  const root = await tempDir();
  t.teardown(() => removeDir(root));
  const dir = await initRepo(path.join(root, 'work'));
  const c1 = await commitFiles(dir, files, 'initial');
  return { dir, c1 };
}

/** An fs whose promise-API readFile records the git object paths it reads. */
function recordingFs(reads: string[]): typeof nodeFs {
  const promises = {
    ...nodeFs.promises,
    readFile: ((file: nodeFs.PathLike | nodeFs.promises.FileHandle, options?: unknown) => {
      reads.push(String(file));
      return (nodeFs.promises.readFile as (f: unknown, o?: unknown) => Promise<unknown>)(file, options);
    }) as typeof nodeFs.promises.readFile,
  };
  return { ...nodeFs, promises } as typeof nodeFs;
}

const objectPath = (gitdir: string, oid: string) => path.join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2));

t.test('open: a local repo is found; a missing path or a non-repo directory is E_GIT_REPO_NOT_FOUND', async (t) => {
  const { dir } = await workRepo(t, { 'tenants/a.yaml': 'a\n' });
  const s = await GitStore.open({ repo: dir, dataDir: '/nonexistent', branch: 'main' });
  t.equal(s.remote, false);
  t.equal(s.workdir, dir);
  t.equal(s.gitdir, path.join(dir, '.git'));

  const viaUrl = await GitStore.open({ repo: pathToFileURL(dir).href, dataDir: '/nonexistent', branch: 'main' });
  t.equal(viaUrl.workdir, dir);

  const viaDotGit = await GitStore.open({ repo: path.join(dir, '.git'), dataDir: '/nonexistent', branch: 'main' });
  t.equal(viaDotGit.workdir, dir, 'a .git directory given directly knows its work tree');

  const missing = path.join(dir, 'does-not-exist');
  t.equal(await codeOf(GitStore.open({ repo: missing, dataDir: '/x', branch: 'main' })), 'E_GIT_REPO_NOT_FOUND');
  t.equal(await codeOf(GitStore.open({ repo: path.join(dir, 'tenants'), dataDir: '/x', branch: 'main' })), 'E_GIT_REPO_NOT_FOUND');
  t.equal(await codeOf(GitStore.open({ repo: 'ssh://git@example.test/x.git', dataDir: '/x', branch: 'main' })), 'E_GIT_BAD_URL');
  t.equal(await codeOf(GitStore.open({ repo: 'git@example.test:x.git', dataDir: '/x', branch: 'main' })), 'E_GIT_BAD_URL');
  t.equal(await codeOf(GitStore.open({ repo: dir, dataDir: '/x', branch: 'bad..name' })), 'E_GIT_BAD_REF');

  // a .git file pointing at the real git directory (as submodules use)
  const sep = path.join(path.dirname(dir), 'separate');
  await fsp.mkdir(sep);
  await fsp.writeFile(path.join(sep, '.git'), `gitdir: ${path.join(dir, '.git')}\n`);
  const viaGitFile = await GitStore.open({ repo: sep, dataDir: '/x', branch: 'main' });
  t.equal(viaGitFile.gitdir, path.join(dir, '.git'));
  await fsp.writeFile(path.join(sep, '.git'), 'nonsense\n');
  t.equal(await codeOf(GitStore.open({ repo: sep, dataDir: '/x', branch: 'main' })), 'E_GIT_REPO_NOT_FOUND');
});

t.test('bare repo: sync/resolve, listFiles, readBlob, log', async (t) => {
  const { dir, c1 } = await workRepo(t, {
    'tenants/b.yaml': 'b: 1\n',
    'tenants/a.yaml': 'a: 1\n',
    'tenants/nested/x.yaml': 'x\n',
    'README.md': 'readme\n',
  });
  const c2 = await commitFiles(dir, { 'tenants/c.yaml': 'c: 1\n' }, 'add c');
  const bare = path.join(path.dirname(dir), 'bare.git');
  await git(path.dirname(dir), ['clone', '-q', '--bare', dir, bare]);

  const s = await GitStore.open({ repo: bare, dataDir: '/unused', branch: 'main' });
  t.equal(s.workdir, null);
  t.equal(await s.sync(), c2);
  t.equal(await s.resolve('main'), c2);
  t.equal(await s.resolve('refs/heads/main'), c2);
  t.equal(await s.resolve('nope'), null);

  const files = await s.listFiles(c2, 'tenants');
  t.same(
    files.map((f) => f.path),
    ['tenants/a.yaml', 'tenants/b.yaml', 'tenants/c.yaml'],
    'only files directly under the directory, sorted',
  );
  t.equal(files[0]?.oid, await gitOut(bare, ['rev-parse', `${c2}:tenants/a.yaml`]));
  t.same(await s.listFiles(c1, 'tenants/'), (await s.listFiles(c1, 'tenants')), 'trailing slash is fine');
  t.same(await s.listFiles(c2, 'status'), [], 'missing directory is empty');
  t.equal(await codeOf(s.listFiles(c2, 'README.md')), 'E_REPO_LAYOUT', 'a file is not a directory, nor an empty one');
  t.same((await s.listFiles(c2, '')).map((f) => f.path), ['README.md']);
  t.equal(await codeOf(s.listFiles(c2, '../x')), 'E_GIT_BAD_PATH');

  t.equal(await s.readBlob(files[0]?.oid ?? ''), 'a: 1\n');
  t.equal(await codeOf(s.readBlob('0123456789012345678901234567890123456789')), 'E_GIT_OBJECT_NOT_FOUND');

  const log = await s.log('main', 10);
  t.same(
    log.map((e) => e.message),
    ['add c', 'initial'],
  );
  t.equal(log[0]?.oid, c2);
  t.equal(log[0]?.author.email, 'fixture@example.test');
  t.type(log[0]?.author.timestamp, 'number');
  t.same((await s.log('main', 1)).map((e) => e.oid), [c2]);
  t.same(await s.log('no-such-branch', 5), []);
});

t.test('changedFiles: add, modify, delete, rename; unchanged subtrees and blobs are not read', async (t) => {
  const { dir, c1 } = await workRepo(t, {
    'tenants/a.yaml': 'a: 1\n',
    'tenants/b.yaml': 'b: 1\n',
    'tenants/c.yaml': 'c: 1\n',
    'tenants/keep.yaml': 'keep\n',
    'tenants/sub/deep.yaml': 'deep\n',
    'docs/readme.md': 'docs\n',
  });
  await commitFiles(dir, { 'tenants/a.yaml': 'a: 2\n', 'tenants/b.yaml': null, 'tenants/d.yaml': 'd: 1\n' }, 'modify a, delete b, add d');
  const c3 = await renameFile(dir, 'tenants/c.yaml', 'tenants/e.yaml', 'rename c to e');
  const c4 = await commitFiles(dir, { 'docs/readme.md': 'docs v2\n' }, 'docs only');
  const oid = (rev: string) => gitOut(dir, ['rev-parse', rev]);

  const reads: string[] = [];
  const s = await GitStore.open({ repo: dir, dataDir: '/unused', branch: 'main', fs: recordingFs(reads) });
  const gitdir = s.gitdir;

  const changes = await s.changedFiles(c1, c3, 'tenants');
  t.same(changes, [
    { path: 'tenants/a.yaml', oldOid: await oid(`${c1}:tenants/a.yaml`), newOid: await oid(`${c3}:tenants/a.yaml`) },
    { path: 'tenants/b.yaml', oldOid: await oid(`${c1}:tenants/b.yaml`), newOid: null },
    { path: 'tenants/c.yaml', oldOid: await oid(`${c1}:tenants/c.yaml`), newOid: null },
    { path: 'tenants/d.yaml', oldOid: null, newOid: await oid(`${c3}:tenants/d.yaml`) },
    { path: 'tenants/e.yaml', oldOid: null, newOid: await oid(`${c3}:tenants/e.yaml`) },
  ]);
  // neither blobs nor the unchanged `tenants/sub` tree were read
  const blobsAndSub = await Promise.all(['tenants/keep.yaml', 'tenants/a.yaml', 'tenants/sub', 'docs'].map((p) => oid(`${c3}:${p}`)));
  for (const o of blobsAndSub) t.notOk(reads.includes(objectPath(gitdir, o)), `object ${o} not read`);

  reads.length = 0;
  t.same(await s.changedFiles(c3, c4, 'tenants'), [], 'a commit that only touches docs/ changes nothing under tenants/');
  const tenantsTree = await oid(`${c4}:tenants`);
  t.notOk(reads.includes(objectPath(gitdir, tenantsTree)), 'identical tenants/ tree is not even read');
  t.same(await s.changedFiles(c4, c4, 'tenants'), []);

  const all = await s.changedFiles(null, c1, 'tenants');
  t.same(
    all.map((c) => [c.path, c.oldOid, typeof c.newOid]),
    [
      ['tenants/a.yaml', null, 'string'],
      ['tenants/b.yaml', null, 'string'],
      ['tenants/c.yaml', null, 'string'],
      ['tenants/keep.yaml', null, 'string'],
      ['tenants/sub/deep.yaml', null, 'string'],
    ],
    'from=null: everything added, recursively',
  );
  t.same(await s.changedFiles(null, c1, 'status'), [], 'missing directory: nothing');
  t.same(
    (await s.changedFiles(c3, c4, '')).map((c) => c.path),
    ['docs/readme.md'],
    'root directory',
  );
});

t.test('commitFiles on a bare repo: author and clock, no empty commits, delete, nested paths', async (t) => {
  const { dir } = await workRepo(t, { 'tenants/a.yaml': 'a: 1\n', 'tenants/b.yaml': 'b: 1\n', 'docs/x.md': 'x\n' });
  const bare = path.join(path.dirname(dir), 'bare.git');
  await git(path.dirname(dir), ['clone', '-q', '--bare', dir, bare]);
  const s = await GitStore.open({ repo: bare, dataDir: '/unused', branch: 'main', now });
  const head0 = await s.sync();

  const heads: Array<string | null> = [];
  const r1 = await s.commitFiles({
    message: 'status: a is ACTIVE',
    author: AUTHOR,
    build: (head) => {
      heads.push(head);
      return [
        { path: 'status/a.yaml', content: 'status: ACTIVE\n' },
        { path: 'tenants/a.yaml', content: 'a: 2\n' },
      ];
    },
  });
  t.ok(r1);
  t.same(heads, [head0]);
  t.equal(r1?.parent, head0);
  t.equal(await gitOut(bare, ['rev-parse', 'main']), r1?.commit);
  t.equal(
    await gitOut(bare, ['log', '-1', '--format=%an|%ae|%at|%cn|%ce|%ct|%s|%P', 'main']),
    `Ada Operator|ada@example.test|${FIXED_NOW.getTime() / 1000}|Ada Operator|ada@example.test|${FIXED_NOW.getTime() / 1000}|status: a is ACTIVE|${head0}`,
  );
  t.equal(await gitOut(bare, ['show', 'main:status/a.yaml']), 'status: ACTIVE');
  t.equal(await gitOut(bare, ['show', 'main:tenants/b.yaml']), 'b: 1', 'other files kept');
  t.equal(
    await gitOut(bare, ['rev-parse', 'main:docs']),
    await gitOut(bare, ['rev-parse', `${head0}:docs`]),
    'untouched subtree reused as-is',
  );
  await git(bare, ['fsck', '--strict', '--no-progress']);

  // no empty commits
  t.equal(await s.commitFiles({ message: 'nothing', author: AUTHOR, build: () => [] }), null);
  t.equal(
    await s.commitFiles({ message: 'same', author: AUTHOR, build: () => [{ path: 'status/a.yaml', content: 'status: ACTIVE\n' }] }),
    null,
    'identical content: no commit',
  );
  t.equal(
    await s.commitFiles({ message: 'del missing', author: AUTHOR, build: async () => [{ path: 'status/zzz.yaml', content: null }] }),
    null,
    'deleting a missing file: no commit',
  );
  t.equal(await gitOut(bare, ['rev-parse', 'main']), r1?.commit);

  // delete: the last file of a directory removes the directory
  const r2 = await s.commitFiles({ message: 'remove a status', author: AUTHOR, build: () => [{ path: 'status/a.yaml', content: null }] });
  t.ok(r2);
  t.equal(await gitOut(bare, ['ls-tree', '--name-only', 'main']), 'docs\ntenants', 'empty status/ tree is dropped');

  // bad paths are refused before anything is written
  for (const bad of ['/abs.yaml', 'a/../b.yaml', '.git/config', 'a//b', 'x\\y', '']) {
    t.equal(
      await codeOf(s.commitFiles({ message: 'bad', author: AUTHOR, build: () => [{ path: bad, content: 'x' }] })),
      'E_GIT_BAD_PATH',
      `refuses ${JSON.stringify(bad)}`,
    );
  }
  t.equal(
    await codeOf(s.commitFiles({ message: 'bad', author: AUTHOR, build: () => [{ path: 'tenants/a.yaml/x', content: 'x' }] })),
    'E_GIT_BAD_PATH',
    'cannot write below a file',
  );
  t.equal(
    await codeOf(s.commitFiles({ message: 'bad', author: AUTHOR, build: () => [{ path: 'tenants', content: 'x' }] })),
    'E_GIT_BAD_PATH',
    'cannot overwrite a directory with a file',
  );
  t.equal(
    await codeOf(
      s.commitFiles({
        message: 'bad',
        author: AUTHOR,
        build: () => [
          { path: 'n', content: 'x' },
          { path: 'n/m', content: 'y' },
        ],
      }),
    ),
    'E_GIT_BAD_PATH',
    'a path cannot be both file and directory',
  );

  // a failing build does not wedge the writer queue
  const boom = s.commitFiles({
    message: 'x',
    author: AUTHOR,
    build: () => {
      throw new Error('boom');
    },
  });
  const after = s.commitFiles({ message: 'after boom', author: AUTHOR, build: () => [{ path: 'status/b.yaml', content: 'ok\n' }] });
  await t.rejects(boom, { message: 'boom' });
  t.ok(await after);

  // last change to a path wins; a committer identity can be set per store
  const s2 = await GitStore.open({
    repo: bare,
    dataDir: '/unused',
    branch: 'main',
    now,
    committer: { name: 'tenantd', email: 'tenantd@example.test' },
  });
  const r3 = await s2.commitFiles({
    message: 'multi',
    author: AUTHOR,
    build: () => [
      { path: 'status/c.yaml', content: 'one\n' },
      { path: 'status/c.yaml', content: 'two\n' },
    ],
  });
  t.ok(r3);
  t.equal(await gitOut(bare, ['show', 'main:status/c.yaml']), 'two');
  t.equal(await gitOut(bare, ['log', '-1', '--format=%an|%cn', 'main']), 'Ada Operator|tenantd');
  await git(bare, ['fsck', '--strict', '--no-progress']);
});

t.test('commitFiles keeps an executable bit and builds trees in git order', async (t) => {
  const { dir } = await workRepo(t, { 'tenants/a.yaml': 'a\n', 'bin/run.sh': '#!/bin/sh\n' });
  await fsp.chmod(path.join(dir, 'bin/run.sh'), 0o755);
  await git(dir, ['add', 'bin/run.sh']);
  await git(dir, ['commit', '-q', '-m', 'exec']);
  const s = await GitStore.open({ repo: dir, dataDir: '/unused', branch: 'main', now });
  // names whose order differs between plain string order and git's tree order ("a-b" < "a/" < "a0")
  const r = await s.commitFiles({
    message: 'order',
    author: AUTHOR,
    build: () => [
      { path: 'bin/run.sh', content: '#!/bin/sh\necho hi\n' },
      { path: 'o/a-b', content: '1' },
      { path: 'o/a/x', content: '2' },
      { path: 'o/a0', content: '3' },
    ],
  });
  t.ok(r);
  t.match(await gitOut(dir, ['ls-tree', 'HEAD', 'bin/run.sh']), /^100755 /);
  await git(dir, ['fsck', '--strict', '--no-progress']);
  t.equal(await gitOut(dir, ['status', '--porcelain']), '');
});

t.test('non-bare repo: commits to the checked-out branch keep the work tree and index clean', async (t) => {
  const { dir, c1 } = await workRepo(t, { 'tenants/a.yaml': 'a: 1\n', 'tenants/b.yaml': 'b: 1\n', 'status/b.yaml': 'old\n' });
  const warnings: string[] = [];
  const s = await GitStore.open({
    repo: dir,
    dataDir: '/unused',
    branch: 'main',
    now,
    logger: { debug: () => undefined, warn: (m) => warnings.push(m) },
  });

  const r1 = await s.commitFiles({
    message: 'status',
    author: AUTHOR,
    build: () => [
      { path: 'status/a.yaml', content: 'status: ACTIVE\n' },
      { path: 'status/b.yaml', content: null },
      { path: 'status/deep/c.yaml', content: 'c\n' },
    ],
  });
  t.equal(r1?.parent, c1);
  t.equal(await gitOut(dir, ['rev-parse', 'HEAD']), r1?.commit);
  t.equal(await gitOut(dir, ['status', '--porcelain']), '', 'git status is clean');
  t.equal(await fsp.readFile(path.join(dir, 'status/a.yaml'), 'utf8'), 'status: ACTIVE\n');
  t.notOk(nodeFs.existsSync(path.join(dir, 'status/b.yaml')), 'deleted file removed from the work tree');
  t.equal(await gitOut(dir, ['diff', '--cached', '--name-only']), '', 'index matches HEAD');

  // remove a whole directory: empty directories are pruned
  await s.commitFiles({ message: 'rm deep', author: AUTHOR, build: () => [{ path: 'status/deep/c.yaml', content: null }] });
  t.notOk(nodeFs.existsSync(path.join(dir, 'status/deep')), 'empty directory pruned');
  t.ok(nodeFs.existsSync(path.join(dir, 'status')), 'non-empty parent kept');
  t.equal(await gitOut(dir, ['status', '--porcelain']), '');

  // the user's own uncommitted edits elsewhere and to a written path are left alone
  await fsp.writeFile(path.join(dir, 'tenants/b.yaml'), 'b: local edit\n');
  await fsp.writeFile(path.join(dir, 'status/a.yaml'), 'hand edited\n');
  await fsp.writeFile(path.join(dir, 'untracked.txt'), 'mine\n');
  await fsp.writeFile(path.join(dir, 'status/staged.yaml'), 'staged by the user\n');
  await git(dir, ['add', 'status/staged.yaml']);
  const r2 = await s.commitFiles({
    message: 'status again',
    author: AUTHOR,
    build: () => [
      { path: 'status/a.yaml', content: 'status: UPDATING\n' },
      { path: 'status/new.yaml', content: 'new\n' },
      { path: 'status/staged.yaml', content: 'from tenantd\n' },
    ],
  });
  t.ok(r2);
  t.equal(await gitOut(dir, ['show', ':status/staged.yaml']), 'staged by the user', 'staged entry untouched');
  t.equal(await fsp.readFile(path.join(dir, 'tenants/b.yaml'), 'utf8'), 'b: local edit\n', 'other path untouched');
  t.equal(await fsp.readFile(path.join(dir, 'status/a.yaml'), 'utf8'), 'hand edited\n', 'locally modified written path untouched');
  t.equal(await fsp.readFile(path.join(dir, 'status/new.yaml'), 'utf8'), 'new\n');
  t.equal(
    await git(dir, ['status', '--porcelain']),
    ' M status/a.yaml\nM  status/staged.yaml\n M tenants/b.yaml\n?? untracked.txt\n',
    'only the user edits show',
  );
  t.ok(warnings.some((w) => /local changes/.test(w)), 'warned about the skipped path');
});

t.test('another branch (status branch): created from the tracked head; the work tree is not touched', async (t) => {
  const { dir, c1 } = await workRepo(t, { 'tenants/a.yaml': 'a: 1\n' });
  const s = await GitStore.open({ repo: dir, dataDir: '/unused', branch: 'main', now });
  const heads: Array<string | null> = [];
  const r1 = await s.commitFiles({
    branch: 'tenantd-status',
    message: 'status on its own branch',
    author: AUTHOR,
    build: (head) => {
      heads.push(head);
      return [{ path: 'status/a.yaml', content: 'ACTIVE\n' }];
    },
  });
  t.same(heads, [c1], 'build sees the tracked head for a new branch');
  t.equal(r1?.parent, c1);
  t.equal(await gitOut(dir, ['rev-parse', 'tenantd-status']), r1?.commit);
  t.equal(await gitOut(dir, ['rev-parse', 'main']), c1, 'tracked branch unchanged');
  t.notOk(nodeFs.existsSync(path.join(dir, 'status')), 'work tree untouched');
  t.equal(await gitOut(dir, ['status', '--porcelain']), '');

  const r2 = await s.commitFiles({
    branch: 'tenantd-status',
    message: 'second',
    author: AUTHOR,
    build: (head) => {
      heads.push(head);
      return [{ path: 'status/a.yaml', content: 'UPDATING\n' }];
    },
  });
  t.equal(heads[1], r1?.commit, 'existing branch: its own head');
  t.equal(r2?.parent, r1?.commit);
});

t.test('local: concurrent commitFiles serialize and none is lost', async (t) => {
  const { dir } = await workRepo(t, { 'tenants/a.yaml': 'a\n' });
  const s = await GitStore.open({ repo: dir, dataDir: '/unused', branch: 'main', now });
  // a reader polling the branch meanwhile never sees it missing
  let stop = false;
  let reads = 0;
  let missing = 0;
  const reader = (async () => {
    while (!stop) {
      if ((await s.resolve('main')) === null) missing++;
      reads++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      s.commitFiles({
        message: `status ${i}`,
        author: AUTHOR,
        build: (): FileChange[] => [{ path: `status/t${i}.yaml`, content: `${i}\n` }],
      }),
    ),
  );
  stop = true;
  await reader;
  t.ok(reads > 0);
  t.equal(missing, 0, 'branch never seen missing by a concurrent reader');
  t.equal(new Set(results.map((r) => r?.commit)).size, 20);
  t.equal((await gitOut(dir, ['ls-tree', '--name-only', 'HEAD', 'status/'])).split('\n').length, 20);
  t.equal(await gitOut(dir, ['rev-list', '--count', 'HEAD']), '21');
  t.equal(await gitOut(dir, ['status', '--porcelain']), '');
});

t.test('an unborn repository: first commit has no parent', async (t) => {
  const root = await tempDir();
  t.teardown(() => removeDir(root));
  const dir = await initRepo(path.join(root, 'w'));
  const s = await GitStore.open({ repo: dir, dataDir: '/unused', branch: 'main', now });
  t.equal(await s.sync(), null);
  t.same(await s.log('main', 5), []);
  t.equal(await s.commitFiles({ message: 'nothing', author: AUTHOR, build: () => [{ path: 'x', content: null }] }), null);
  const r = await s.commitFiles({
    message: 'first',
    author: AUTHOR,
    build: (head) => {
      t.equal(head, null);
      return [{ path: 'status/a.yaml', content: 'a\n' }];
    },
  });
  t.equal(r?.parent, null);
  t.equal(await gitOut(dir, ['rev-list', '--count', 'HEAD']), '1');
  t.equal(await gitOut(dir, ['status', '--porcelain']), '');
});

t.test('atomicWriteFs: replaces files by rename, leaves no temporary file behind', async (t) => {
  const root = await tempDir();
  t.teardown(() => removeDir(root));
  const afs = atomicWriteFs(nodeFs);
  const file = path.join(root, 'ref');
  await fsp.writeFile(file, 'old\n');
  const inode = (await fsp.stat(file)).ino;
  await afs.promises.writeFile(file, 'new\n', 'utf8');
  t.equal(await fsp.readFile(file, 'utf8'), 'new\n');
  t.not((await fsp.stat(file)).ino, inode, 'a new inode: the old content was never truncated in place');
  t.same(await fsp.readdir(root), ['ref']);
  // a missing directory fails like writeFile does (isomorphic-git then creates it and retries)
  await t.rejects(afs.promises.writeFile(path.join(root, 'missing', 'x'), 'x'), { code: 'ENOENT' });
  t.same(await fsp.readdir(root), ['ref']);
  // writing over a directory fails, and the temporary file is removed
  await fsp.mkdir(path.join(root, 'dir'));
  await fsp.writeFile(path.join(root, 'dir', 'keep'), 'k');
  await t.rejects(afs.promises.writeFile(path.join(root, 'dir'), 'x'));
  t.same((await fsp.readdir(root)).sort(), ['dir', 'ref']);
});
