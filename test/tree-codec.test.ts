/**
 * Tree objects parsed and written by core/git/tree-codec.ts, checked byte for byte against trees
 * native git wrote, and the tree writer (GitStore.commitFiles) checked against a model of the
 * repository with native git reading the result.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ObjectDb } from '../core/git/object-db.js';
import { GitStore } from '../core/git/store.js';
import { encodeCommit } from '../core/git/commit-object.js';
import { compareEntries, diffEntries, encodeTree, findEntry, parseTree, parseTreeImage, serializeTree, type TreeEntry } from '../core/git/tree-codec.js';
import { commitFiles, git, gitOut, initRepo, removeDir, tempDir } from './helpers/git-fixtures.js';
import { prng } from './helpers/prng.js';

const execFileP = promisify(execFile);
const AUTHOR = { name: 'Tree Tester', email: 'tree@example.test' };

/** A tree's raw bytes as git stores them. */
async function rawTree(dir: string, rev: string): Promise<Buffer> {
  const { stdout } = await execFileP('git', ['cat-file', 'tree', rev], { cwd: dir, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

// Names whose order differs between "plain string order" and git's (directories sort as name + '/').
const TRICKY = ['a', 'a.b', 'a-b', 'a0', 'ab', 'a b', 'é', 'z', 'Z', '_x', 'a.yaml', 'tenants', 'tenants.yaml', 'tenants-old'];

t.test('parse and serialize give back git’s exact bytes, in git’s order from any order', async (t) => {
  const root = await tempDir();
  t.teardown(() => removeDir(root));
  const dir = await initRepo(path.join(root, 'work'));
  const files: Record<string, string> = {};
  for (const n of TRICKY) {
    files[n] = `file ${n}\n`;
    files[`d-${n}/${n}`] = `nested ${n}\n`;
  }
  // a directory and files whose names sort around it: git puts `x/` after `x.yaml`, before `x0`
  for (const n of ['x.yaml', 'x-1', 'x0']) files[n] = `${n}\n`;
  files['x/inner.yaml'] = 'inner\n';
  await commitFiles(dir, files, 'tricky names');
  await git(dir, ['update-index', '--chmod=+x', 'z']);
  await git(dir, ['commit', '-q', '-m', 'exec bit']);
  const raw = await rawTree(dir, 'HEAD^{tree}');
  const entries = parseTree(raw);
  const ls = (await gitOut(dir, ['ls-tree', '-z', 'HEAD']))
    .split('\0')
    .filter(Boolean)
    .map((l) => {
      const [meta, name] = l.split('\t');
      const [mode, type, oid] = (meta as string).split(' ');
      return { mode, type, oid, path: name };
    });
  t.same(
    entries.map((e) => ({ mode: e.mode, type: e.type, oid: e.oid, path: e.path })),
    ls,
    'entries match git ls-tree, in order',
  );
  t.ok(entries.some((e) => e.mode === '100755'), 'an executable entry');
  const order = entries.map((e) => e.path).filter((n) => n.startsWith('x'));
  t.same(order, ['x-1', 'x.yaml', 'x', 'x0'], 'a directory sorts as its name plus /');
  t.ok(entries.some((e) => e.mode === '040000'), 'a directory entry (stored as 40000)');
  t.ok(serializeTree(entries).equals(raw), 'serialize(parse(raw)) is raw');
  const r = prng(7);
  for (let k = 0; k < 20; k++) {
    const shuffled = [...entries].sort(() => r() - 0.5);
    t.ok(serializeTree(shuffled).equals(raw), `shuffled ${k}: sorted back into git's order`);
  }
  t.equal(ObjectDb.hash('tree', serializeTree(entries)), await gitOut(dir, ['rev-parse', 'HEAD^{tree}']), 'same object id');
  t.throws(() => parseTree(raw.subarray(0, raw.length - 5)), /malformed/, 'a truncated tree is refused');
  t.throws(() => serializeTree([{ mode: '100644', path: 'x', oid: 'nothex', type: 'blob' }]), /invalid oid/);
});

t.test('findEntry and diffEntries agree with a map-based model', async (t) => {
  const r = prng(42);
  const oid = (): string => Array.from({ length: 40 }, () => '0123456789abcdef'[Math.floor(r() * 16)]).join('');
  const names = [...TRICKY, ...Array.from({ length: 60 }, (_, i) => `t-${i}`)];
  const mk = (): TreeEntry[] => {
    const m = new Map<string, TreeEntry>();
    for (const n of names) {
      if (r() < 0.4) continue;
      const tree = r() < 0.2;
      m.set(n, { mode: tree ? '040000' : '100644', path: n, oid: oid(), type: tree ? 'tree' : 'blob' });
    }
    return [...m.values()].sort(compareEntries);
  };
  for (let round = 0; round < 200; round++) {
    const a = mk();
    const b = r() < 0.3 ? a.map((e) => (r() < 0.1 ? { ...e, oid: oid() } : e)) : mk();
    const got: string[] = [];
    diffEntries(a, b, (x, y) => got.push(`${x?.path ?? '-'}:${x?.type ?? '-'}>${y?.path ?? '-'}:${y?.type ?? '-'}`));
    const want: string[] = [];
    const key = (e: TreeEntry) => `${e.path}\0${e.type}`;
    const ma = new Map(a.map((e) => [key(e), e]));
    const mb = new Map(b.map((e) => [key(e), e]));
    for (const k of new Set([...ma.keys(), ...mb.keys()])) {
      const x = ma.get(k);
      const y = mb.get(k);
      if (x && y && x.oid === y.oid && x.mode === y.mode) continue;
      want.push(`${x?.path ?? '-'}:${x?.type ?? '-'}>${y?.path ?? '-'}:${y?.type ?? '-'}`);
    }
    if (!t.same([...got].sort(), [...want].sort(), `round ${round}`)) break;
    for (const [i, e] of a.entries()) if (findEntry(a, e.path, e.type) !== i) t.fail(`findEntry ${e.path}`);
    const at = findEntry(a, 'no-such-name', 'blob');
    t.ok(at < 0, 'absent → negative');
    const ins = -at - 1;
    const probe: TreeEntry = { mode: '100644', path: 'no-such-name', oid: oid(), type: 'blob' };
    const withIt = [...a.slice(0, ins), probe, ...a.slice(ins)];
    t.same(withIt, [...withIt].sort(compareEntries), 'insertion point keeps the order');
  }
});

t.test('the tree writer against a model: random commits, native git reads the same files, fsck clean', async (t) => {
  const root = await tempDir();
  t.teardown(() => removeDir(root));
  const dir = await initRepo(path.join(root, 'work'));
  await commitFiles(dir, { 'README.md': 'readme\n', 'tenants/a.yaml': 'a\n', 'tenants/sub/deep.yaml': 'deep\n' }, 'initial');
  const bare = path.join(root, 'bare.git');
  await git(root, ['clone', '-q', '--bare', dir, bare]);
  await git(bare, ['repack', '-adq']);
  const store = await GitStore.open({ repo: bare, dataDir: root, branch: 'main' });
  t.teardown(() => store.close());
  const model = new Map<string, string>([
    ['README.md', 'readme\n'],
    ['tenants/a.yaml', 'a\n'],
    ['tenants/sub/deep.yaml', 'deep\n'],
  ]);
  const r = prng(2024);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const paths = [...TRICKY.map((n) => `tenants/${n}`), 'tenants/sub/deep.yaml', 'tenants/sub/x.yaml', 'status/a.yaml', 'status/é.yaml', 'top.txt', 'd/e/f/g.txt'];
  for (let c = 0; c < 40; c++) {
    const changes = Array.from({ length: 1 + Math.floor(r() * 6) }, () => {
      const p = pick(paths);
      return { path: p, content: r() < 0.3 ? null : `v${c} ${p}\n` };
    });
    // a change to a path below a file (or a file over a directory) is refused; skip those rounds
    const res = await store
      .commitFiles({ message: `c${c}`, author: AUTHOR, build: () => changes })
      .then((x) => x)
      .catch((err: unknown) => (err as { code?: string }).code ?? 'error');
    if (typeof res === 'string') {
      t.equal(res, 'E_GIT_BAD_PATH', `round ${c}: only path conflicts are refused`);
      continue;
    }
    for (const ch of changes) {
      if (ch.content === null) model.delete(ch.path);
      else model.set(ch.path, ch.content);
    }
  }
  const listed = (await gitOut(bare, ['ls-tree', '-r', '--name-only', '-z', 'main'])).split('\0').filter(Boolean).sort();
  t.same(listed, [...model.keys()].sort(), 'the same paths as the model');
  for (const [p, content] of model) t.equal(await gitOut(bare, ['show', `main:${p}`]), content.trimEnd(), p);
  await git(bare, ['fsck', '--full', '--strict']);
  t.pass('git fsck --full --strict is clean');
});

t.test('encodeTree from a base copies unchanged runs and gives the same bytes and offsets as encoding from scratch', async (t) => {
  const r = prng(99);
  const oid = (): string => Array.from({ length: 40 }, () => '0123456789abcdef'[Math.floor(r() * 16)]).join('');
  for (let round = 0; round < 150; round++) {
    const n = Math.floor(r() * 300);
    const base = parseTreeImage(
      serializeTree(Array.from({ length: n }, (_, i) => ({ mode: i % 7 === 0 ? '040000' : '100644', path: `e-${String(i).padStart(4, '0')}`, oid: oid(), type: i % 7 === 0 ? ('tree' as const) : ('blob' as const) }))),
    );
    const entries = [...base.entries];
    for (let m = Math.floor(r() * 8); m > 0; m--) {
      const what = r();
      if (what < 0.3 && entries.length > 0) entries.splice(Math.floor(r() * entries.length), 1);
      else if (what < 0.6 && entries.length > 0) {
        const at = Math.floor(r() * entries.length);
        entries[at] = { ...(entries[at] as TreeEntry), oid: oid() };
      } else {
        const e: TreeEntry = { mode: '100644', path: `new-${Math.floor(r() * 1e6)}`, oid: oid(), type: 'blob' };
        if (findEntry(entries, e.path, 'blob') >= 0) continue;
        entries.splice(-findEntry(entries, e.path, 'blob') - 1, 0, e);
      }
    }
    const spliced = encodeTree(entries, base);
    const fresh = encodeTree(entries, null);
    if (!t.ok(spliced.raw.equals(fresh.raw), `round ${round}: same bytes`)) break;
    t.same([...spliced.offsets], [...fresh.offsets], `round ${round}: same offsets`);
    t.same(parseTreeImage(spliced.raw).offsets, spliced.offsets);
  }
});

t.test('commit objects: the bytes git writes for the same fields', async (t) => {
  const root = await tempDir();
  t.teardown(() => removeDir(root));
  const dir = await initRepo(path.join(root, 'work'), { bare: true });
  const tree = (await git(dir, ['mktree'], { input: '' })).trim();
  const env = { GIT_AUTHOR_NAME: 'Ada Operator', GIT_AUTHOR_EMAIL: 'ada@example.test', GIT_AUTHOR_DATE: '1700000000 +0000', GIT_COMMITTER_NAME: 'tenantd', GIT_COMMITTER_EMAIL: 'tenantd@example.test', GIT_COMMITTER_DATE: '1700000000 +0130' };
  const message = 'provision acme\n\nRequest-Id: 1\n';
  const { stdout } = await execFileP('git', ['commit-tree', tree, '-m', message.trim()], { cwd: dir, env: { ...process.env, ...env } });
  const nativeOid = stdout.trim();
  const ours = encodeCommit({
    tree,
    parents: [],
    author: { name: 'Ada Operator', email: 'ada@example.test', timestamp: 1700000000, timezoneOffset: 0 },
    committer: { name: 'tenantd', email: 'tenantd@example.test', timestamp: 1700000000, timezoneOffset: 90 },
    message: `\n${message}\n\n`,
  });
  t.equal(ObjectDb.hash('commit', ours), nativeOid, 'same object id as git commit-tree');
  const odd = encodeCommit({ tree, parents: [nativeOid], author: { name: 'Eve <evil>\nx', email: 'e@x', timestamp: 1, timezoneOffset: -330 }, committer: { name: 'c', email: 'c@x', timestamp: 1, timezoneOffset: 0 }, message: 'm' }).toString();
  t.match(odd, /^author Eve evilx <e@x> 1 -0530$/m, 'angle brackets and newlines are stripped from identities; negative offsets');
  t.match(odd, new RegExp(`^parent ${nativeOid}$`, 'm'));
});
