/**
 * Packs written by core/git/pack-write.ts for a chain of commits, checked by native git
 * (verify-pack, cat-file, fsck), by isomorphic-git and by a fresh ObjectDb.
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as isogit from 'isomorphic-git';
import t from 'tap';
import { ObjectDb, applyDelta } from '../core/git/object-db.js';
import { encodeDelta, MAX_DELTA_DEPTH, writePack, type DeltaPiece, type PackInput } from '../core/git/pack-write.js';
import { GitStore } from '../core/git/store.js';
import { commitFiles, git, gitOut, initRepo, removeDir, tempDir } from './helpers/git-fixtures.js';
import { prng } from './helpers/prng.js';

const execFileP = promisify(execFile);
const AUTHOR = { name: 'Pack Tester', email: 'pack@example.test' };

t.test('encodeDelta: what applyDelta rebuilds is the target, across copy and insert limits', async (t) => {
  const r = prng(5);
  for (let round = 0; round < 60; round++) {
    const base = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 140_000) }, () => Math.floor(r() * 256)));
    const pieces: DeltaPiece[] = [];
    const target: Buffer[] = [];
    for (let k = Math.floor(r() * 6) + 1; k > 0; k--) {
      if (r() < 0.5) {
        const start = Math.floor(r() * base.length);
        const end = Math.min(base.length, start + 1 + Math.floor(r() * 0x12000)); // crosses 0x10000 sometimes
        pieces.push({ copy: [start, end] });
        target.push(base.subarray(start, end));
      } else {
        const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 400) }, () => Math.floor(r() * 256))); // > 127: several inserts
        pieces.push({ insert: bytes });
        target.push(bytes);
      }
    }
    const want = Buffer.concat(target);
    if (!t.ok(applyDelta(base, encodeDelta(base.length, want.length, pieces)).equals(want), `round ${round}`)) break;
  }
});

t.test('writePack: git verifies the pack, reads every object, and sees offset deltas no deeper than the limit', async (t) => {
  const root = await tempDir();
  t.teardown(() => removeDir(root));
  const repo = await initRepo(path.join(root, 'p.git'), { bare: true });
  // 70 versions of a file, each derived from the one before by one changed line
  const objects: PackInput[] = [];
  let prev: { oid: string; data: Buffer } | null = null;
  const lines = Array.from({ length: 400 }, (_, i) => `line ${i}: ${'x'.repeat(i % 40)}\n`);
  for (let v = 0; v < 70; v++) {
    const at = (v * 37) % lines.length;
    const changed = `changed in version ${v}\n`;
    const before = Buffer.from(lines.slice(0, at).join(''));
    lines[at] = changed;
    const data = Buffer.from(lines.join(''));
    const oid = ObjectDb.hash('blob', data);
    const delta: DeltaPiece[] | undefined = prev
      ? [{ copy: [0, before.length] }, { insert: Buffer.from(changed) }, { copy: [before.length + (prev.data.length - data.length) + changed.length, prev.data.length] }]
      : undefined;
    objects.push({ oid, type: 'blob', data, level: 1, ...(prev && delta ? { delta: { base: prev.oid, pieces: delta } } : {}) });
    prev = { oid, data };
  }
  const { pack, idx, packSha, deltas } = writePack(objects);
  t.equal(deltas, 69 - Math.floor(69 / (MAX_DELTA_DEPTH + 1)), 'every version but the chain restarts is a delta');
  const dir = path.join(repo, 'objects', 'pack');
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, `pack-${packSha}.pack`), pack);
  await fsp.writeFile(path.join(dir, `pack-${packSha}.idx`), idx);
  const { stdout } = await execFileP('git', ['verify-pack', '-v', path.join(dir, `pack-${packSha}.idx`)], { maxBuffer: 1 << 24 });
  const depths = stdout.split('\n').filter((l) => /^[0-9a-f]{40} blob/.test(l)).map((l) => Number(l.split(/\s+/)[5] ?? 0));
  t.equal(depths.length, 70);
  t.ok(Math.max(...depths) <= MAX_DELTA_DEPTH && Math.max(...depths) >= 40, `chain depth ${Math.max(...depths)} ≤ ${MAX_DELTA_DEPTH}`);
  for (const o of objects) t.equal((await git(repo, ['cat-file', 'blob', o.oid])), o.data.toString(), `git reads ${o.oid.slice(0, 8)}`);
  const db = new ObjectDb(repo);
  t.teardown(() => db.close());
  t.same((await db.readMany(objects.map((o) => o.oid))).map((o) => o?.data.toString()), objects.map((o) => o.data.toString()), 'ObjectDb reads them all');
});

t.test('a chain of commits is flushed as one pack of tree deltas; git, isomorphic-git and a fresh reader agree', async (t) => {
  const root = await tempDir();
  t.teardown(() => removeDir(root));
  const work = await initRepo(path.join(root, 'work'));
  const files: Record<string, string> = {};
  for (let i = 0; i < 2000; i++) files[`tenants/t-${String(i).padStart(4, '0')}.yaml`] = `tenant ${i}\n`;
  await commitFiles(work, files, '2000 tenants');
  const repo = path.join(root, 'bare.git');
  await git(root, ['clone', '-q', '--bare', work, repo]);
  await git(repo, ['repack', '-adq']);
  const packsBefore = (await fsp.readdir(path.join(repo, 'objects', 'pack'))).filter((n) => n.endsWith('.pack'));
  const store = await GitStore.open({ repo, dataDir: root, branch: 'main' });
  t.teardown(() => store.close());
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => store.commitFiles({ message: `c${i}`, author: AUTHOR, build: () => [{ path: `tenants/new-${i}.yaml`, content: `new ${i}\n` }] })),
  );
  t.equal(results.filter(Boolean).length, 40);
  const packs = (await fsp.readdir(path.join(repo, 'objects', 'pack'))).filter((n) => n.endsWith('.pack'));
  t.equal(packs.length, packsBefore.length + 1, 'one new pack');
  const loose = (await fsp.readdir(path.join(repo, 'objects'))).filter((n) => /^[0-9a-f]{2}$/.test(n));
  t.same(loose, [], 'no loose objects');
  const newPack = packs.find((p) => !packsBefore.includes(p)) as string;
  const { stdout } = await execFileP('git', ['verify-pack', '-v', path.join(repo, 'objects', 'pack', newPack.replace(/\.pack$/, '.idx'))], { maxBuffer: 1 << 24 });
  const treeDeltas = stdout.split('\n').filter((l) => /^[0-9a-f]{40} tree/.test(l) && l.trim().split(/\s+/).length >= 7);
  t.ok(treeDeltas.length >= 39, `${treeDeltas.length} trees stored as deltas`);
  const packSize = (await fsp.stat(path.join(repo, 'objects', 'pack', newPack))).size;
  t.ok(packSize < 200_000, `the pack is small: ${packSize} bytes for 40 commits of a ${2000 * 40} byte tree`);
  await git(repo, ['fsck', '--strict']);
  const head = (await store.resolve('main')) as string;
  t.equal((await gitOut(repo, ['ls-tree', '--name-only', 'main', 'tenants/'])).split('\n').length, 2040);
  const { tree } = await isogit.readTree({ fs: await import('node:fs'), gitdir: repo, oid: head, filepath: 'tenants' });
  t.equal(tree.length, 2040, 'isomorphic-git reads the packed tree');
  const fresh = await GitStore.open({ repo, dataDir: root, branch: 'main' });
  t.teardown(() => fresh.close());
  const listed = await fresh.listFiles(head, 'tenants');
  t.equal(listed.length, 2040);
  t.same(await fresh.readBlobs(listed.filter((f) => f.path.includes('new-')).map((f) => f.oid)), Array.from({ length: 40 }, (_, i) => i).sort((a, b) => (`new-${a}.yaml` < `new-${b}.yaml` ? -1 : 1)).map((i) => `new ${i}\n`));
});
