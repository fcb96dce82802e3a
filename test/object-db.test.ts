/**
 * ObjectDb against real repositories built with native git: loose objects, OFS_DELTA and
 * REF_DELTA packs, idx v1 and v2 (with 8-byte offsets), packs that appear and vanish, writes read
 * back by native git and isomorphic-git, and corrupt data. Every read is compared with
 * `git cat-file --batch` output.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import * as isogit from 'isomorphic-git';
import t, { type Test } from 'tap';
import { atomicWriteFs } from '../core/git/atomic-fs.js';
import { ObjectDb, applyDelta, type GitObject } from '../core/git/object-db.js';
import { codeOf, commitFiles, git, gitOut, initRepo, removeDir, tempDir } from './helpers/git-fixtures.js';

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('GIT_')) delete env[k];
  }
  env.GIT_CONFIG_NOSYSTEM = '1';
  return env;
}

/** Run a command (binary-safe) and return stdout as a Buffer. */
function run(cmd: string, args: string[], cwd: string, input?: Buffer | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { cwd, env: cleanEnv(), encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr.toString() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

const sh = (script: string, cwd: string) => run('sh', ['-c', script], cwd);

/** Every object git can see in `dir`, with its type and bytes. */
async function allObjects(dir: string): Promise<Map<string, GitObject>> {
  const out = await run('git', ['cat-file', '--batch-all-objects', '--batch', '--unordered'], dir);
  const objects = new Map<string, GitObject>();
  let pos = 0;
  while (pos < out.length) {
    const nl = out.indexOf(0x0a, pos);
    const [oid, type, size] = out.toString('latin1', pos, nl).split(' ');
    const len = Number(size);
    objects.set(oid as string, { type: type as GitObject['type'], data: out.subarray(nl + 1, nl + 1 + len) });
    pos = nl + 1 + len + 1;
  }
  return objects;
}

async function readAllAndCompare(t: Test, db: ObjectDb, expected: Map<string, GitObject>, label: string): Promise<void> {
  let bad = 0;
  for (const [oid, want] of expected) {
    const got = await db.read(oid);
    if (!got || got.type !== want.type || !got.data.equals(want.data)) {
      bad++;
      if (bad <= 3) t.fail(`${label}: ${oid} differs (${got?.type ?? 'null'} vs ${want.type})`);
    }
  }
  t.equal(bad, 0, `${label}: all ${expected.size} objects read back identical`);
}

interface PackEntryInfo {
  oid: string;
  type: string;
  sizeInPack: number;
  offset: number;
  depth: number;
}

/** `git verify-pack -v` entries of a pack (by its .idx path). */
async function verifyPack(dir: string, idxPath: string): Promise<PackEntryInfo[]> {
  const out = await gitOut(dir, ['verify-pack', '-v', idxPath]);
  const entries: PackEntryInfo[] = [];
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]{40}) (\w+)\s+(\d+) (\d+) (\d+)(?: (\d+) [0-9a-f]{40})?$/.exec(line);
    if (m) entries.push({ oid: m[1] as string, type: m[2] as string, sizeInPack: Number(m[4]), offset: Number(m[5]), depth: Number(m[6] ?? 0) });
  }
  return entries;
}

/** The raw pack-entry type numbers (6 = OFS_DELTA, 7 = REF_DELTA, …) of a pack's entries. */
async function rawTypes(packPath: string, entries: PackEntryInfo[]): Promise<Set<number>> {
  const bytes = await fsp.readFile(packPath);
  return new Set(entries.map((e) => ((bytes[e.offset] as number) >> 4) & 7));
}

async function packFiles(gitdir: string, ext: '.pack' | '.idx'): Promise<string[]> {
  const dir = path.join(gitdir, 'objects', 'pack');
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith(ext)).map((n) => path.join(dir, n));
}

async function newRepo(t: Test, name = 'work'): Promise<{ root: string; dir: string; gitdir: string }> {
  const root = await tempDir('tenantd-odb-');
  t.teardown(() => removeDir(root));
  const dir = await initRepo(path.join(root, name));
  return { root, dir, gitdir: path.join(dir, '.git') };
}

/** Similar YAML documents: the kind of content that packs into long delta chains. */
function tenantYaml(i: number, version = 0): string {
  const id = `t${String(i).padStart(5, '0')}`;
  const lines = [
    'apiVersion: tenantd.io/v1',
    'kind: TenantInfrastructure',
    'metadata:',
    `  tenantId: ${id}`,
    `  name: tenant-${id}`,
    '  labels:',
    '    team: platform',
    `    shard: s${i % 7}`,
    'spec:',
    `  tier: ${i % 3 === 0 ? 'premium' : 'basic'}`,
    `  replicas: ${(i % 5) + 1}`,
    `  version: ${version}`,
    '  resources:',
    '    cpu: 500m',
    '    memory: 512Mi',
    '  network:',
    `    cidr: 10.${i % 250}.0.0/16`,
    '    ingress: true',
  ];
  return `${lines.join('\n')}\n`;
}

const noise = (seed: string) => createHash('sha1').update(seed).digest('hex');

/**
 * Version `v` of a file of 64 incompressible lines that changes one line per version: each
 * version is closest to its neighbours, so git stores the history as long delta chains.
 */
function chainFile(v: number): string {
  const lines: string[] = [];
  for (let i = 0; i < 64; i++) {
    const u = v - ((((v - i) % 64) + 64) % 64); // the last version that rewrote line i
    lines.push(`${i}: ${noise(`${i}/${u >= 1 ? u : 0}`)}${noise(`${i}/${u}/b`)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A repo whose history has many similar files and many versions of a few files. */
async function deltaRepo(dir: string, files = 80, versions = 40): Promise<void> {
  const first: Record<string, string> = {};
  for (let i = 0; i < files; i++) first[`tenants/${i % 4}/t${i}.yaml`] = tenantYaml(i);
  // Fixed dates: the same objects on every run, so the pack git makes of them (one thread) is too.
  const date = (v: number): string => new Date(Date.UTC(2030, 0, 1, 0, v)).toISOString();
  await commitFiles(dir, first, 'many similar files', { date: date(0) });
  for (let v = 1; v <= versions; v++) {
    await commitFiles(dir, { 'tenants/0/t0.yaml': tenantYaml(0, v), 'chain.txt': chainFile(v) }, `version ${v}`, { date: date(v) });
  }
}

t.test('loose-only repository: every object reads back as git has it', async (t) => {
  const { dir, gitdir } = await newRepo(t);
  await commitFiles(dir, { 'README.md': 'readme\n', 'tenants/a.yaml': 'a: 1\n', 'tenants/deep/er/b.yaml': 'b: 1\n' }, 'one');
  await commitFiles(dir, { 'tenants/a.yaml': 'a: 2\n', 'bin/blob.bin': randomBytes(5000).toString('latin1') }, 'two');
  await commitFiles(dir, { 'tenants/deep/er/b.yaml': null, 'tenants/deep/c.yaml': 'c\n' }, 'three');
  await git(dir, ['tag', '-a', '-m', 'annotated', 'v1']);
  t.same(await packFiles(gitdir, '.pack'), [], 'no packs');

  const expected = await allObjects(dir);
  t.same(new Set([...expected.values()].map((o) => o.type)), new Set(['blob', 'tree', 'commit', 'tag']));
  const db = new ObjectDb(gitdir);
  t.teardown(() => db.close());
  await readAllAndCompare(t, db, expected, 'loose');
});

t.test('after repack -adf: OFS_DELTA chains resolve', async (t) => {
  const { dir, gitdir } = await newRepo(t);
  await deltaRepo(dir);
  // One thread and fixed commit dates (deltaRepo): git splits the delta search between threads,
  // where the split falls depends on scheduling, and commits made at other times are other
  // objects; either moved the deepest chain from run to run (10 to 15 seen).
  await git(dir, ['repack', '-adf', '--depth=50', '--window=250', '--threads=1']);
  const [idx] = await packFiles(gitdir, '.idx');
  const entries = await verifyPack(dir, idx as string);
  const deltas = entries.filter((e) => e.depth > 0);
  t.ok(deltas.length > 20, `the pack has deltas (${deltas.length})`);
  const maxDepth = Math.max(...deltas.map((e) => e.depth));
  t.ok(maxDepth > 10, `and chains deeper than a few links (max depth ${maxDepth})`);
  t.ok((await rawTypes((await packFiles(gitdir, '.pack'))[0] as string, deltas)).has(6), 'stored as OFS_DELTA');

  const expected = await allObjects(dir);
  const db = new ObjectDb(gitdir);
  t.teardown(() => db.close());
  await readAllAndCompare(t, db, expected, 'ofs-delta');
  // again in a fresh db with readMany (sorted, cache-cold) and in reverse offset order
  const fresh = new ObjectDb(gitdir);
  t.teardown(() => fresh.close());
  const oids = [...entries].sort((a, b) => b.offset - a.offset).map((e) => e.oid);
  const many = await fresh.readMany(oids);
  t.ok(
    many.every((o, i) => o !== null && o.type === expected.get(oids[i] as string)?.type && o.data.equals(expected.get(oids[i] as string)?.data ?? Buffer.alloc(0))),
    'readMany matches too',
  );
});

t.test('REF_DELTA pack made by pack-objects --no-delta-base-offset and index-pack', async (t) => {
  const { root, dir } = await newRepo(t, 'src');
  await deltaRepo(dir, 40, 30);
  const dst = await initRepo(path.join(root, 'dst.git'), { bare: true });
  const packPath = path.join(dst, 'objects', 'pack', 'incoming.pack');
  await sh(
    `git rev-list --objects --all | git pack-objects --stdout --no-delta-base-offset --window=250 --depth=50 --threads=1 > '${packPath}'`,
    dir,
  );
  await git(dst, ['index-pack', packPath]);
  const entries = await verifyPack(dst, packPath.replace(/\.pack$/, '.idx'));
  const deltas = entries.filter((e) => e.depth > 0);
  t.ok(deltas.length > 10, `the pack has deltas (${deltas.length})`);
  t.same([...(await rawTypes(packPath, deltas))], [7], 'every delta is a REF_DELTA');

  const expected = await allObjects(dir);
  t.equal(entries.length, expected.size, 'the pack holds every object');
  const db = new ObjectDb(dst);
  t.teardown(() => db.close());
  await readAllAndCompare(t, db, expected, 'ref-delta');
});

t.test('idx v1, and idx v2 with every offset in the 8-byte table', async (t) => {
  const { root, dir, gitdir } = await newRepo(t, 'src');
  await deltaRepo(dir, 40, 20);
  await git(dir, ['repack', '-adf', '--depth=50', '--window=250', '--threads=1']);
  const expected = await allObjects(dir);
  const [srcPack] = await packFiles(gitdir, '.pack');

  for (const [label, version] of [['v1', '1'], ['v2-large', '2,0']] as const) {
    const dst = await initRepo(path.join(root, `dst-${label}.git`), { bare: true });
    const packPath = path.join(dst, 'objects', 'pack', path.basename(srcPack as string));
    await fsp.copyFile(srcPack as string, packPath);
    await git(dst, ['index-pack', `--index-version=${version}`, packPath]);
    const idx = await fsp.readFile(packPath.replace(/\.pack$/, '.idx'));
    if (label === 'v1') {
      t.not(idx.readUInt32BE(0), 0xff744f63, 'a v1 index has no magic');
    } else {
      t.ok(idx.readUInt32BE(8 + 1024 + expected.size * 24 + 4) >= 0x80000000, 'offsets point into the large-offset table');
    }
    const db = new ObjectDb(dst);
    t.teardown(() => db.close());
    await readAllAndCompare(t, db, expected, `idx ${label}`);
  }
});

t.test('several packs plus loose objects; a pack that arrives later; packs removed by gc', async (t) => {
  const { dir, gitdir } = await newRepo(t);
  await deltaRepo(dir, 20, 5);
  await git(dir, ['repack', '-d']);
  await commitFiles(dir, { 'tenants/second.yaml': tenantYaml(1000), 'tenants/0/t0.yaml': tenantYaml(0, 99) }, 'second pack');
  await git(dir, ['repack', '-d']);
  await commitFiles(dir, { 'tenants/loose.yaml': tenantYaml(2000) }, 'loose');
  const packs = await packFiles(gitdir, '.pack');
  t.equal(packs.length, 2, 'two packs');
  const db = new ObjectDb(gitdir);
  t.teardown(() => db.close());
  await readAllAndCompare(t, db, await allObjects(dir), 'two packs + loose');

  // a new pack appears after the first reads: its objects were never seen loose
  const late = await commitFiles(dir, { 'tenants/late.yaml': tenantYaml(3000) }, 'late');
  await git(dir, ['repack', '-d']);
  t.equal((await packFiles(gitdir, '.pack')).length, 3, 'a third pack');
  t.notOk(nodeFs.existsSync(path.join(gitdir, 'objects', late.slice(0, 2), late.slice(2))), 'the late commit is only packed');
  const lateObj = await db.read(late);
  t.equal(lateObj?.type, 'commit');
  t.ok(lateObj?.data.equals(await run('git', ['cat-file', 'commit', late], dir)), 'found after a rescan');
  const lateBlob = await gitOut(dir, ['rev-parse', 'HEAD:tenants/late.yaml']);
  t.ok(await db.has(lateBlob));

  // a db that loaded the pack indexes but never opened a pack file, then gc replaces every pack
  const idle = new ObjectDb(gitdir);
  t.teardown(() => idle.close());
  t.ok(await idle.has(late), 'indexes loaded');
  await git(dir, ['gc', '--prune=now']);
  const after = await packFiles(gitdir, '.pack');
  t.equal(after.length, 1, 'gc left one pack');
  t.notOk(packs.some((p) => after.includes(p)), 'the old packs are gone');
  const expected = await allObjects(dir);
  await readAllAndCompare(t, idle, expected, 'vanished packs (never opened)');
  await readAllAndCompare(t, db, expected, 'vanished packs (handles open)');
  await db.close();
  await readAllAndCompare(t, db, expected, 'vanished packs (after close)');
  const many = await db.readMany([...expected.keys()]);
  t.ok(many.every((o) => o !== null), 'readMany after gc');
});

t.test('missing objects, has(), and bad ids', async (t) => {
  const { dir, gitdir } = await newRepo(t);
  const c1 = await commitFiles(dir, { 'a.txt': 'a\n' }, 'one');
  await git(dir, ['repack', '-ad']);
  await commitFiles(dir, { 'b.txt': 'b\n' }, 'two');
  const packedBlob = await gitOut(dir, ['rev-parse', `${c1}:a.txt`]);
  const looseBlob = await gitOut(dir, ['rev-parse', 'HEAD:b.txt']);
  const db = new ObjectDb(gitdir);
  t.teardown(() => db.close());
  const missing = 'deadbeef'.repeat(5);
  t.equal(await db.read(missing), null);
  t.equal(await db.has(missing), false);
  t.equal(await db.has(packedBlob), true);
  t.equal(await db.has(looseBlob), true);
  t.equal(await db.has(packedBlob.toUpperCase()), true, 'upper-case hex is accepted');
  t.equal((await db.read(looseBlob))?.data.toString(), 'b\n');
  t.same(await db.readMany([]), []);
  t.equal(await codeOf(db.read('nope')), 'E_GIT_BAD_OID');
  t.equal(await codeOf(db.readMany([packedBlob, 'x'.repeat(40)])), 'E_GIT_BAD_OID');

  // an empty database (no objects/pack directory at all)
  const empty = new ObjectDb(path.join(gitdir, 'nonexistent'));
  t.equal(await empty.read(packedBlob), null);
  t.equal(await empty.has(packedBlob), false);
});

t.test('write: native git and isomorphic-git read it back; duplicates are no-ops; level 0', async (t) => {
  const root = await tempDir('tenantd-odb-');
  t.teardown(() => removeDir(root));
  const gitdir = await initRepo(path.join(root, 'repo.git'), { bare: true });
  const db = new ObjectDb(gitdir);
  t.teardown(() => db.close());

  const content = Buffer.from('hello: world\n');
  const blob = await db.write('blob', content);
  t.equal(blob, (await run('git', ['hash-object', '--stdin'], gitdir, content)).toString().trim(), 'same id as git hash-object');
  t.equal(blob, ObjectDb.hash('blob', content));
  t.equal(await gitOut(gitdir, ['cat-file', '-t', blob]), 'blob');
  t.ok((await run('git', ['cat-file', 'blob', blob], gitdir)).equals(content));

  const big = randomBytes(300 * 1024); // incompressible, and large enough for the async deflate
  const bigOid = await db.write('blob', big, { level: 0 });
  t.ok((await run('git', ['cat-file', 'blob', bigOid], gitdir)).equals(big), 'level 0 object read by git');
  const bigStat = await fsp.stat(path.join(gitdir, 'objects', bigOid.slice(0, 2), bigOid.slice(2)));
  t.ok(bigStat.size > big.length, 'stored, not compressed');

  const tree = await db.write(
    'tree',
    Buffer.concat([
      Buffer.from('100644 big.bin\0'), Buffer.from(bigOid, 'hex'),
      Buffer.from('100644 hello.yaml\0'), Buffer.from(blob, 'hex'),
    ]),
  );
  const commitText = `tree ${tree}\nauthor A <a@example.test> 1700000000 +0000\ncommitter A <a@example.test> 1700000000 +0000\n\nwritten by ObjectDb\n`;
  const commit = await db.write('commit', Buffer.from(commitText));
  await git(gitdir, ['update-ref', 'refs/heads/main', commit]);
  t.equal(await gitOut(gitdir, ['cat-file', '-p', `${commit}^{tree}`]), `100644 blob ${bigOid}\tbig.bin\n100644 blob ${blob}\thello.yaml`);
  await git(gitdir, ['fsck', '--full', '--strict', '--no-dangling']);
  t.pass('git fsck is clean');

  const iso = await isogit.readBlob({ fs: nodeFs, gitdir, oid: commit, filepath: 'hello.yaml' });
  t.equal(Buffer.from(iso.blob).toString(), 'hello: world\n', 'isomorphic-git reads the written objects');
  t.same((await isogit.readTree({ fs: nodeFs, gitdir, oid: tree })).tree.map((e) => e.path), ['big.bin', 'hello.yaml']);

  // rewriting is a no-op; after a repack the object is packed and no loose copy is made
  t.equal(await db.write('blob', content), blob);
  await git(gitdir, ['repack', '-ad']);
  await git(gitdir, ['prune-packed']);
  const loosePath = path.join(gitdir, 'objects', blob.slice(0, 2), blob.slice(2));
  t.notOk(nodeFs.existsSync(loosePath), 'packed now');
  const fresh = new ObjectDb(gitdir);
  t.teardown(() => fresh.close());
  t.equal(await fresh.write('blob', content), blob);
  t.notOk(nodeFs.existsSync(loosePath), 'no loose duplicate written');
  // through an injected fs, here the atomic-writeFile wrapper the git store uses
  const viaWrapper = new ObjectDb(gitdir, atomicWriteFs(nodeFs));
  t.teardown(() => viaWrapper.close());
  const wrapped = await viaWrapper.write('blob', Buffer.from('via a wrapped fs\n'));
  t.equal(await gitOut(gitdir, ['cat-file', '-p', wrapped]), 'via a wrapped fs');
  t.equal((await viaWrapper.read(bigOid))?.data.length, big.length);
  const leftovers = await fsp.readdir(path.join(gitdir, 'objects'), { recursive: true });
  t.same(leftovers.filter((n) => n.includes('tmp_obj') || n.endsWith('.lock')), [], 'no temporary files left');
});

t.test('readMany of ~2,000 blobs equals individual reads, in input order', async (t) => {
  const { dir, gitdir } = await newRepo(t);
  const files: Record<string, string> = {};
  for (let i = 0; i < 1500; i++) files[`tenants/${i % 10}/t${i}.yaml`] = tenantYaml(i);
  await commitFiles(dir, files, 'packed');
  await git(dir, ['gc', '-q']);
  const more: Record<string, string> = {};
  for (let i = 1500; i < 2000; i++) more[`tenants/loose/t${i}.yaml`] = tenantYaml(i);
  await commitFiles(dir, more, 'loose');
  const blobs = (await gitOut(dir, ['ls-tree', '-r', '--format=%(objectname)', 'HEAD'])).split('\n');
  t.equal(blobs.length, 2000);

  const missing = ['0'.repeat(40), 'f'.repeat(40)];
  const oids = [...blobs].reverse();
  oids.splice(10, 0, missing[0] as string, blobs[5] as string);
  oids.splice(1000, 0, blobs[5] as string, missing[1] as string, missing[0] as string);
  oids.push(blobs[0] as string);

  const db = new ObjectDb(gitdir);
  t.teardown(() => db.close());
  const many = await db.readMany(oids);
  t.equal(many.length, oids.length);
  const expected = await allObjects(dir);
  let bad = 0;
  for (let i = 0; i < oids.length; i++) {
    const oid = oids[i] as string;
    const single = await db.read(oid);
    const want = expected.get(oid) ?? null;
    const got = many[i] ?? null;
    const same = (a: GitObject | null, b: GitObject | null) => (a === null ? b === null : b !== null && a.type === b.type && a.data.equals(b.data));
    if (!same(got, single) || !same(got, want)) bad++;
  }
  t.equal(bad, 0, 'every position matches read() and git');
  t.equal(many.filter((o) => o === null).length, 3, 'the missing ids are null');
  const dupA = many[11];
  const dupB = many[1000];
  t.ok(dupA && dupB && dupA.data.equals(dupB.data) && dupA.data !== dupB.data, 'duplicates get their own buffers');
});

t.test('corrupt data gives E_GIT_OBJECT_CORRUPT, and the db keeps working', async (t) => {
  const { dir, gitdir } = await newRepo(t);
  await commitFiles(dir, { 'random.bin': randomBytes(20000).toString('hex'), 'ok.txt': 'fine\n' }, 'one');
  await git(dir, ['repack', '-adf']);
  const victim = await gitOut(dir, ['rev-parse', 'HEAD:random.bin']);
  const healthy = await gitOut(dir, ['rev-parse', 'HEAD:ok.txt']);
  const [idx] = await packFiles(gitdir, '.idx');
  const [packPath] = await packFiles(gitdir, '.pack');
  const entry = (await verifyPack(dir, idx as string)).find((e) => e.oid === victim);
  t.ok(entry && entry.depth === 0, 'the victim is stored whole');

  await fsp.chmod(packPath as string, 0o644);
  const fh = await fsp.open(packPath as string, 'r+');
  const at = (entry as PackEntryInfo).offset + Math.floor((entry as PackEntryInfo).sizeInPack / 2);
  const b = Buffer.alloc(8);
  await fh.read(b, 0, 8, at);
  for (let i = 0; i < b.length; i++) b[i] = (b[i] as number) ^ 0x5a;
  await fh.write(b, 0, 8, at);
  await fh.close();

  const db = new ObjectDb(gitdir);
  t.teardown(() => db.close());
  t.equal(await codeOf(db.read(victim)), 'E_GIT_OBJECT_CORRUPT');
  t.equal(await codeOf(db.readMany([healthy, victim])), 'E_GIT_OBJECT_CORRUPT');
  try {
    await db.read(victim);
  } catch (err: unknown) {
    t.same((err as { data?: { oid?: string } }).data?.oid, victim, 'the error names the object');
  }
  t.equal((await db.read(healthy))?.data.toString(), 'fine\n', 'other objects still read');

  // a corrupt loose object
  await commitFiles(dir, { 'loose.txt': 'loose\n' }, 'two');
  const loose = await gitOut(dir, ['rev-parse', 'HEAD:loose.txt']);
  const loosePath = path.join(gitdir, 'objects', loose.slice(0, 2), loose.slice(2));
  await fsp.chmod(loosePath, 0o644);
  await fsp.writeFile(loosePath, Buffer.from('not zlib at all'));
  t.equal(await codeOf(db.read(loose)), 'E_GIT_OBJECT_CORRUPT');
});

t.test('applyDelta: copies, inserts, and malformed deltas', async (t) => {
  const base = Buffer.from('0123456789abcdefghij');
  // src 20, target 13: copy 10 bytes at 5, insert "XYZ"
  const delta = Buffer.from([20, 13, 0x80 | 0x01 | 0x10, 5, 10, 3, 0x58, 0x59, 0x5a]);
  t.equal(applyDelta(base, delta).toString(), '56789abcdeXYZ');
  // a copy with size bytes absent means 0x10000
  const bigBase = randomBytes(0x10000);
  t.ok(applyDelta(bigBase, Buffer.from([0x80, 0x80, 0x04, 0x80, 0x80, 0x04, 0x80])).equals(bigBase));

  const bad: Array<[string, Buffer]> = [
    ['wrong base size', Buffer.from([19, 1, 1, 0x41])],
    ['copy out of bounds', Buffer.from([20, 10, 0x80 | 0x01 | 0x10, 15, 10])],
    ['reserved opcode', Buffer.from([20, 1, 0])],
    ['short result', Buffer.from([20, 5, 1, 0x41])],
    ['truncated insert', Buffer.from([20, 5, 5, 0x41])],
    ['truncated header', Buffer.from([0x80])],
  ];
  for (const [label, d] of bad) {
    try {
      applyDelta(base, d, 'f00d'.repeat(10));
      t.fail(`${label}: no error`);
    } catch (err: unknown) {
      const e = err as { code?: string; data?: { oid?: string } };
      t.equal(e.code, 'E_GIT_OBJECT_CORRUPT', label);
      t.equal(e.data?.oid, 'f00d'.repeat(10));
    }
  }
});

t.test('deferred writes: held and readable in memory, on disk only after flush; discard drops them', async (t) => {
  const root = await tempDir();
  t.teardown(() => removeDir(root));
  const dir = await initRepo(path.join(root, 'held.git'), { bare: true });
  const db = new ObjectDb(dir);
  t.teardown(() => db.close());
  const exists = (oid: string) => git(dir, ['cat-file', '-e', oid]).then(() => true, () => false);
  const a = await db.write('blob', Buffer.from('held a\n'), { defer: true });
  const b = await db.write('blob', Buffer.from('held b\n'), { defer: true, level: 0 });
  t.equal(a, ObjectDb.hash('blob', Buffer.from('held a\n')));
  t.ok(await db.has(a), 'has() sees a held object');
  t.equal((await db.read(a))?.data.toString(), 'held a\n');
  t.same((await db.readMany([b, a])).map((o) => o?.data.toString()), ['held b\n', 'held a\n']);
  t.notOk(await exists(a), 'not on disk before flush');
  await db.flush();
  t.ok((await exists(a)) && (await exists(b)), 'both on disk after flush');
  t.equal(await gitOut(dir, ['cat-file', '-p', b]), 'held b');
  const c = await db.write('blob', Buffer.from('dropped\n'), { defer: true });
  db.discard();
  t.equal(await db.read(c), null, 'a discarded object is gone');
  await db.flush();
  t.notOk(await exists(c), 'and never written');
});
