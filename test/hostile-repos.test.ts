/**
 * Hostile repositories against a real daemon process: each row of CASES commits something a
 * careless or malicious user could push (plain git plumbing into a bare repository), and after
 * each the daemon must be alive, every good tenant ACTIVE, every earlier hostile tenant still in
 * the status its row expects, and the hostile one in a status whose conditions name the reason.
 * Rows may damage objects after committing (corrupt or missing objects) and repair them again.
 *
 * One daemon serves every row (polling each second, status on its own branch so the test alone
 * moves `main`); at the end it is restarted with every kept row still in place, and with damaged
 * record files, and `tenantd plan` and `tenantd validate` run over the same files.
 *
 * New rows (a vanished branch, `tenants/` replaced by a file: issue 15 items 3 and 4) go in CASES.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { TenantStatus } from '../core/phases.js';
import { runCli } from '../daemon/cli.js';
import { initRepo, removeDir } from './helpers/git-fixtures.js';
import { blob, commitTree, makeTree, overwriteObject, readObjectContent, readStoredObject, setBranch, writeObject, type TreeItem } from './helpers/plumbing.js';
import { spawnTenantd, waitFor, type DaemonProcess } from './helpers/process.js';
import { tenantYaml } from './helpers/tenants.js';

// The margin is for a loaded machine: each row waits for a poll, each daemon start compiles TypeScript.
t.setTimeout(400_000);

const GOOD = ['good-a', 'good-b', 'good-c'];
const BRANCH = 'main';

/** A tenant file for `id` with `extra` lines appended under `spec:` (tenantYaml is JSON, so YAML here). */
function tenantWith(id: string, opts: { name?: string; labels?: string[]; spec?: string[]; metadataId?: string } = {}): string {
  return [
    'apiVersion: tenantd.io/v1alpha1',
    'kind: TenantInfrastructure',
    'metadata:',
    `  tenantId: ${opts.metadataId ?? id}`,
    `  name: ${opts.name ?? `Tenant ${id}`}`,
    ...(opts.labels ? ['  labels:', ...opts.labels] : []),
    'spec:',
    '  tier: professional',
    '  cloudProvider: AWS',
    '  region: us-east-1',
    '  configuration:',
    '    databaseSize: db.t3.medium',
    '    storageGb: 50',
    '    enableHa: false',
    ...(opts.spec ?? []),
    '',
  ].join('\n');
}

/** Nine levels of nine aliases: 9^9 strings once expanded. */
const laughs = (indent: string): string[] => [
  `${indent}l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]`,
  ...Array.from({ length: 9 }, (_, i) => `${indent}l${i + 1}: &l${i + 1} [${Array.from({ length: 9 }, () => `*l${i}`).join(',')}]`),
];

/** A tenant file whose name is "Café" in Latin-1: one byte (0xe9) that is not UTF-8. */
function latin1(id: string): Buffer {
  const bytes = Buffer.from(tenantWith(id, { name: 'Caf#' }));
  bytes[bytes.indexOf('Caf#') + 3] = 0xe9;
  return bytes;
}

const file = (name: string, oid: string): TreeItem => ({ mode: '100644', oid, name });

interface Expectation {
  /** The hostile tenant, the status it must reach and what its conditions must say. */
  tenant?: { id: string; status: TenantStatus; reason: RegExp };
  /** /readyz while the row is in place. */
  ready?: boolean;
  /** Lines the daemon's log must show. */
  logged?: RegExp[];
}

interface Committed {
  items: TreeItem[];
  tenantsTree: string;
  commit: string;
}

interface HostileCase {
  name: string;
  /** Entries the row adds under tenants/ (writing their objects). */
  add(repo: string): Promise<TreeItem[]>;
  /** After the commit is written and before `main` moves to it: damage objects. */
  damage?(repo: string, c: Committed): Promise<void>;
  expect: Expectation;
  /** Undo the damage (a re-fetch or rewrite of the object), then expect this. */
  repair?: { run(repo: string): Promise<void>; expect: Expectation };
  /** Left in the repository for the rest of the suite and the restart (default true). */
  keep?: boolean;
}

/** A tenant file as a regular blob under `tenants/<name>`. */
const fileCase = (name: string, id: string, content: string | Buffer, status: TenantStatus, reason: RegExp): HostileCase => ({
  name,
  add: async (repo) => [file(`${id}.yaml`, await blob(repo, content))],
  expect: { tenant: { id, status, reason } },
});

/** A file whose loose object is damaged after it is committed, and restored by `repair`. */
function damagedBlobCase(name: string, id: string, damage: (repo: string, oid: string, good: Buffer) => Promise<void>, reason: (oid: string) => RegExp): HostileCase {
  let oid = '';
  let good: Buffer = Buffer.alloc(0);
  return {
    name,
    add: async (repo) => {
      oid = await blob(repo, tenantYaml(id));
      good = await readStoredObject(repo, oid);
      return [file(`${id}.yaml`, oid)];
    },
    damage: (repo) => damage(repo, oid, good),
    get expect() {
      return { tenant: { id, status: 'FAILED' as const, reason: reason(oid) } };
    },
    repair: { run: (repo) => overwriteObject(repo, oid, good), expect: { tenant: { id, status: 'ACTIVE', reason: /./ } } },
  };
}

/** The commit (or its tenants/ tree) is damaged: not ready until it is restored; nothing else changes. */
function damagedSourceCase(name: string, which: 'commit' | 'tenantsTree'): HostileCase {
  let oid = '';
  let good: Buffer = Buffer.alloc(0);
  return {
    name,
    add: async (repo) => [file(`${which === 'commit' ? 'broken-commit' : 'broken-tree'}.yaml`, await blob(repo, tenantYaml(which === 'commit' ? 'broken-commit' : 'broken-tree')))],
    damage: async (repo, c) => {
      oid = c[which];
      good = await readStoredObject(repo, oid);
      await overwriteObject(repo, oid, Buffer.from('not zlib at all'));
    },
    expect: { ready: false, logged: [/source {2}FAILED E_GIT_OBJECT_CORRUPT: commit [0-9a-f]{40} cannot be read/] },
    repair: { run: (repo) => overwriteObject(repo, oid, good), expect: { ready: true } },
    keep: false,
  };
}

const CASES: HostileCase[] = [
  // --- YAML that tries to exhaust the parser -----------------------------------------------
  fileCase('an alias bomb in spec', 'bomb-spec', tenantWith('bomb-spec', { spec: ['  extra:', ...laughs('    ')] }), 'INVALID', /YAML aliases|values once YAML aliases/),
  fileCase('an alias bomb in labels', 'bomb-labels', tenantWith('bomb-labels', { labels: laughs('    ') }), 'INVALID', /YAML aliases|values once YAML aliases/),
  fileCase(
    'an alias bomb through merge keys',
    'bomb-merge',
    tenantWith('bomb-merge', {
      spec: ['  services:', '    - &s0 {name: web, image: nginx, port: 80}', ...Array.from({ length: 8 }, (_, i) => `    - &s${i + 1} {<<: [${Array.from({ length: 9 }, () => `*s${i}`).join(', ')}], name: w${i}, image: nginx, port: 80}`)],
    }),
    'INVALID',
    /YAML aliases|merge keys/,
  ),
  fileCase(
    '5,000 aliases of one service',
    'bomb-services',
    tenantWith('bomb-services', { spec: ['  services:', '    - &svc {name: web, image: nginx, port: 80}', ...Array.from({ length: 5000 }, () => '    - *svc')] }),
    'INVALID',
    /too many YAML aliases/,
  ),
  fileCase('10,000 levels of nesting', 'deep', tenantWith('deep', { spec: [`  deep: ${'['.repeat(10_000)}${']'.repeat(10_000)}`] }), 'INVALID', /nested|deep/),
  fileCase('a 10 MB file', 'huge', `${tenantWith('huge')}# ${'x'.repeat(10 * 1024 * 1024)}\n`, 'INVALID', /longer than/),
  // --- Plain mistakes ------------------------------------------------------------------------
  fileCase('a duplicate key', 'dup-keys', tenantWith('dup-keys', { spec: ['  tier: starter'] }), 'INVALID', /duplicate key "tier"/),
  fileCase('a tenantId that is not the file name', 'wrong-id', tenantWith('wrong-id', { metadataId: 'other-id' }), 'INVALID', /must equal the file name/),
  fileCase('a NUL in a text field', 'nul-text', tenantWith('nul-text', { name: '"Nul\\0Corp"' }), 'INVALID', /NUL/),
  fileCase('bytes that are not UTF-8', 'latin1', latin1('latin1'), 'INVALID', /not valid UTF-8/),
  // --- Entries that are not plain tenant files ----------------------------------------------
  {
    name: 'x.yaml and x.yml both',
    add: async (repo) => [file('twin.yaml', await blob(repo, tenantYaml('twin'))), file('twin.yml', await blob(repo, tenantYaml('twin', { region: 'eu-west-1' })))],
    expect: { tenant: { id: 'twin', status: 'INVALID', reason: /defined by 2 files \(tenants\/twin\.yaml, tenants\/twin\.yml\)/ } },
  },
  {
    name: 'a symlink named like a tenant file',
    add: async (repo) => [{ mode: '120000', oid: await blob(repo, 'good-a.yaml'), name: 'link.yaml' }],
    expect: { tenant: { id: 'link', status: 'INVALID', reason: /tenants\/link\.yaml is a symlink/ } },
  },
  {
    name: 'entries that are not tenant files: a directory, a submodule, a .txt, a symlink, a name with a newline',
    add: async (repo) => {
      const inner = await makeTree(repo, [file('nested.yaml', await blob(repo, tenantYaml('nested')))]);
      const readme = await blob(repo, 'notes\n');
      return [
        { mode: '040000', oid: inner, name: 'sub' },
        { mode: '160000', oid: '1234567890123456789012345678901234567890', name: 'mod' },
        file('notes.txt', readme),
        { mode: '120000', oid: await blob(repo, 'good-a.yaml'), name: 'current' },
        file('evil\nname.yaml', await blob(repo, tenantYaml('evil'))),
      ];
    },
    expect: {
      logged: [
        /source {2}skipped tenants\/sub: a directory/,
        /source {2}skipped tenants\/mod: a submodule/,
        /source {2}skipped tenants\/notes\.txt: not a tenant file/,
        /source {2}skipped tenants\/current: a symlink/,
        /source {2}skipped tenants\/evil\\nname\.yaml: the name contains control characters/,
      ],
    },
  },
  // --- Damaged objects ------------------------------------------------------------------------
  damagedBlobCase('a blob overwritten with garbage', 'garbage-blob', (repo, oid) => overwriteObject(repo, oid, Buffer.from('garbage, not zlib')), (oid) => new RegExp(`E_GIT_OBJECT_CORRUPT.*${oid}|${oid}.*corrupt`)),
  damagedBlobCase('a blob with a wrong size header', 'bad-size', async (repo) => void (await writeObject(repo, 'blob', tenantYaml('bad-size'), { claimSize: 12 })), (oid) => new RegExp(`${oid}.*does not match header`)),
  damagedBlobCase('a tree entry naming a blob that does not exist', 'missing-blob', (repo, oid) => fsp.rm(path.join(repo, 'objects', oid.slice(0, 2), oid.slice(2))), (oid) => new RegExp(`not found: ${oid}`)),
  damagedSourceCase('the tenants/ tree is corrupt', 'tenantsTree'),
  damagedSourceCase('the commit itself is corrupt', 'commit'),
  // Issue 15 items 3 (a deleted branch, then an API write) and 4 (tenants/ replaced by a file) go here.
];

interface Running {
  proc: DaemonProcess;
  url: string;
  token: string;
}

async function startDaemon(t: Test, repo: string, dataDir: string, token?: string): Promise<Running> {
  const proc = spawnTenantd(['daemon', '--repo', repo, '--data-dir', dataDir, '--status-branch', 'status', '--poll', '1', '--gc-interval', '0', '--host', '127.0.0.1', '--port', '0']);
  t.teardown(() => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  });
  await waitFor(() => /API on (http:\/\/127\.0\.0\.1:\d+)/.test(proc.output()) || proc.child.exitCode !== null, 120_000, 'the API to listen');
  const url = /API on (http:\/\/127\.0\.0\.1:\d+)/.exec(proc.output())?.[1];
  if (!url) throw new Error(`the daemon did not start:\n${proc.output()}`);
  // The bootstrap admin token is written to <data-dir>/admin-token, never printed.
  const written = token ?? (await fsp.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  return { proc, url, token: written };
}

/** Every tenant's status and what its conditions say, in one call. */
async function fleet(d: Running): Promise<Map<string, { status: string; text: string }>> {
  const res = await fetch(`${d.url}/api/v1/infrastructure/tenants?limit=500`, { headers: { Authorization: `Bearer ${d.token}` } });
  const body = (await res.json()) as { items: Array<{ tenantId: string; status: string; conditions: Array<{ type: string; reason: string; message: string }> }> };
  return new Map(body.items.map((i) => [i.tenantId, { status: i.status, text: i.conditions.map((c) => `${c.type} ${c.reason}: ${c.message}`).join('\n') }]));
}

async function isReady(d: Running): Promise<boolean> {
  return (await fetch(`${d.url}/readyz`)).status === 200;
}

/** Everything `e` asks for, now; a list of what is not so yet (empty: all holds). */
async function unmet(d: Running, e: Expectation, kept: Array<{ id: string; status: TenantStatus }>): Promise<string[]> {
  const out: string[] = [];
  if (d.proc.child.exitCode !== null) return [`the daemon exited (${d.proc.child.exitCode}):\n${d.proc.output().slice(-3000)}`];
  if ((await fetch(`${d.url}/healthz`)).status !== 200) out.push('healthz');
  const tenants = await fleet(d);
  for (const id of GOOD) {
    const s = tenants.get(id);
    if (s?.status !== 'ACTIVE') out.push(`${id} is ${s?.status ?? 'missing'}`);
  }
  for (const k of kept) {
    const s = tenants.get(k.id);
    if (s?.status !== k.status) out.push(`earlier ${k.id} is ${s?.status ?? 'missing'}, not ${k.status}`);
  }
  if (e.tenant) {
    const s = tenants.get(e.tenant.id);
    if (s?.status !== e.tenant.status) out.push(`${e.tenant.id} is ${s?.status ?? 'missing'}, not ${e.tenant.status}`);
    else if (!e.tenant.reason.test(s.text)) out.push(`${e.tenant.id}'s conditions do not match ${e.tenant.reason}:\n${s.text}`);
  }
  if (e.ready !== undefined && (await isReady(d)) !== e.ready) out.push(`readyz is not ${e.ready}`);
  for (const line of e.logged ?? []) if (!line.test(d.proc.output())) out.push(`no log line ${line}`);
  return out;
}

async function expectEventually(t: Test, d: Running, what: string, e: Expectation, kept: Array<{ id: string; status: TenantStatus }>): Promise<void> {
  let last: string[] = [];
  try {
    // Most rows settle within a second; a restart re-reads every file (14 s seen in a loaded full run).
    await waitFor(async () => (last = await unmet(d, e, kept)).length === 0, 120_000, what);
    t.pass(what);
  } catch (err: unknown) {
    t.fail(`${what}: ${last.length ? last.join('; ') : String(err)}`);
  }
}

t.test('hostile repositories: the daemon stays up, the others reconcile, the hostile tenant says why', { timeout: 400_000 }, async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'tenantd-hostile-'));
  t.teardown(() => removeDir(dir));
  const repo = path.join(dir, 'tenants.git');
  const dataDir = path.join(dir, 'data');
  await initRepo(repo, { bare: true });

  const entries: TreeItem[] = [];
  for (const id of GOOD) entries.push(file(`${id}.yaml`, await blob(repo, tenantYaml(id))));
  let head: string | null = null;
  const commit = async (message: string, damage?: (c: Committed) => Promise<void>, items: TreeItem[] = []): Promise<void> => {
    const tenantsTree = await makeTree(repo, entries);
    const root = await makeTree(repo, [{ mode: '040000', oid: tenantsTree, name: 'tenants' }]);
    const next = await commitTree(repo, root, head, message);
    await damage?.({ items, tenantsTree, commit: next });
    await setBranch(repo, BRANCH, next);
    head = next;
  };
  await commit('three good tenants');

  let d = await startDaemon(t, repo, dataDir);
  const kept: Array<{ id: string; status: TenantStatus }> = [];
  await expectEventually(t, d, 'the good tenants are ACTIVE', {}, kept);

  const started = Date.now();
  for (const c of CASES) {
    const items = await c.add(repo);
    entries.push(...items);
    await commit(c.name, c.damage ? (x) => (c.damage as NonNullable<HostileCase['damage']>)(repo, x) : undefined, items);
    const rowStarted = Date.now();
    await expectEventually(t, d, c.name, c.expect, kept);
    t.comment(`${c.name}: ${Date.now() - rowStarted} ms`);
    if (c.repair) {
      await c.repair.run(repo);
      await expectEventually(t, d, `${c.name}, repaired`, c.repair.expect, kept);
    }
    if (c.keep === false) {
      for (const i of items) entries.splice(entries.indexOf(i), 1);
      await commit(`revert: ${c.name}`);
    } else {
      const final = c.repair?.expect.tenant ?? c.expect.tenant;
      if (final) kept.push({ id: final.id, status: final.status });
    }
  }
  t.comment(`${CASES.length} rows in ${Date.now() - started} ms`);
  await expectEventually(t, d, 'after every row', { ready: true }, kept);

  // A restart with every kept row in place, and two record files damaged (a torn write, garbage).
  d.proc.child.kill('SIGTERM');
  t.equal((await d.proc.exited).code, 0, 'stops cleanly');
  const records = path.join(dataDir, 'state', 'tenants');
  await fsp.writeFile(path.join(records, 'good-b.json'), '');
  await fsp.writeFile(path.join(records, 'good-c.json'), '{"tenantId": "good-c", "sta');
  const restarted = Date.now();
  d = await startDaemon(t, repo, dataDir, d.token);
  await expectEventually(t, d, 'after a restart with damaged records', { ready: true, logged: [/good-b\.json could not be read \(Unexpected end of JSON input\)/, /good-c\.json could not be read/] }, kept);
  t.comment(`restart: ${Date.now() - restarted} ms`);
  t.ok((await fsp.readdir(records)).some((n) => n.startsWith('good-b.json.corrupt-')), 'the damaged record is kept aside, not deleted');
  t.notMatch(d.proc.output(), /\n\s+at .*\.ts:\d+/, 'no stack trace in the daemon log');
  t.notMatch(d.proc.output(), /^name\.yaml/m, 'a newline in a file name never splits a log line');
  d.proc.child.kill('SIGTERM');
  t.equal((await d.proc.exited).code, 0);

  // `tenantd plan` over the same commit, and `tenantd validate` on a checkout of the same files
  // (the CLI's own entry point, in this process: a spawn costs a TypeScript compile).
  const plan = await cli(['plan', '--repo', repo, '--to', BRANCH], dir);
  t.equal(plan.code, 1, 'plan exits 1: there are invalid tenants');
  for (const k of kept.filter((x) => x.status === 'INVALID')) t.match(plan.out, `tenant ${k.id}: INVALID`, `plan names ${k.id}`);
  t.match(plan.out, /skipped tenants\/evil\\nname\.yaml/);
  t.notMatch(plan.out + plan.err, /\n\s+at /, 'no stack trace from plan');

  const checkout = await checkoutTenants(repo, entries, path.join(dir, 'checkout'));
  const validate = await cli(['validate', checkout], dir);
  t.equal(validate.code, 1, 'validate exits 1');
  for (const k of kept.filter((x) => x.status === 'INVALID')) t.match(validate.err, new RegExp(`${k.id}\\.ya?ml`), `validate names ${k.id}`);
  t.match(validate.err, /notes\.txt: skipped: not a tenant file/);
  t.match(validate.err, /link\.yaml is a symlink/);
  t.notMatch(validate.out + validate.err, /\n\s+at /, 'no stack trace from validate');
});

async function cli(argv: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli({ argv, env: {}, cwd, out: (x) => void (out += x), err: (x) => void (err += x), stopSignal: new Promise(() => undefined) });
  return { code, out, err };
}

/** The regular files and symlinks of `tenants/` written out as a work tree would hold them. */
async function checkoutTenants(repo: string, entries: readonly TreeItem[], dir: string): Promise<string> {
  const tenantsDir = path.join(dir, 'tenants');
  await fsp.mkdir(tenantsDir, { recursive: true });
  for (const e of entries) {
    if (e.name.includes('\n')) continue;
    const content = await readObjectContent(repo, e.oid);
    if (content === null) continue;
    if (e.mode === '120000') await fsp.symlink(content.toString(), path.join(tenantsDir, e.name));
    else if (e.mode === '100644') await fsp.writeFile(path.join(tenantsDir, e.name), content);
  }
  return tenantsDir;
}
