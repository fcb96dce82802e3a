import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { PHASES } from '../core/phases.js';
import { commitFiles, gitOut, initRepo } from './helpers/git-fixtures.js';
import { statusAt } from './helpers/daemon.js';
import { spawnTenantd, waitFor } from './helpers/process.js';
import { tenantYaml } from './helpers/tenants.js';

// Enough tenants that the second kill (at 45% of the transitions) lands with work left even on a
// fast machine: a create is a handful of milliseconds.
const COUNT = 60;

async function lineCount(file: string): Promise<number> {
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).length;
}

async function statuses(dataDir: string): Promise<string[]> {
  const dir = path.join(dataDir, 'state', 'tenants');
  const names = (await fsp.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
  const out: string[] = [];
  for (const n of names) out.push((JSON.parse(await fsp.readFile(path.join(dir, n), 'utf8')) as { status: string }).status);
  return out;
}

t.test('a daemon killed with SIGKILL mid-reconcile resumes and converges, nothing duplicated, every file parseable', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  const dataDir = path.join(dir, 'data');
  await initRepo(repo);
  const files: Record<string, string> = {};
  for (let i = 0; i < COUNT; i++) files[`tenants/tenant-${String(i).padStart(2, '0')}.yaml`] = tenantYaml(`tenant-${String(i).padStart(2, '0')}`);
  await commitFiles(repo, files, `${COUNT} tenants`);
  const log = path.join(dataDir, 'transitions.jsonl');
  const started: Array<ReturnType<typeof spawnTenantd>> = [];
  t.teardown(() => {
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  const args = ['daemon', '--repo', repo, '--data-dir', dataDir, '--poll', '1', '--concurrency', '2', '--log-format', 'json'];

  // Kill twice at different points of the pass; each time the log must have grown past the mark.
  for (const mark of [Math.floor(COUNT * 7 * 0.2), Math.floor(COUNT * 7 * 0.45)]) {
    const p = spawnTenantd(args);
    started.push(p);
    await waitFor(async () => (await lineCount(log)) >= mark, 60_000, `${mark} transitions`);
    p.child.kill('SIGKILL');
    const exit = await p.exited;
    t.equal(exit.signal, 'SIGKILL', `killed after ${mark} transitions`);
    // Work left: a tenant not ACTIVE, or one not started (no record yet). Between two tenants both
    // workers may have just finished theirs, so started ones alone can all be ACTIVE.
    const seen = await statuses(dataDir);
    t.ok(seen.length < COUNT || seen.some((s) => s !== 'ACTIVE'), `killed while work was still in progress (${seen.filter((s) => s === 'ACTIVE').length} of ${COUNT} ACTIVE)`);
  }

  const last = spawnTenantd(args);
  started.push(last);
  await waitFor(async () => {
    const s = await statuses(dataDir);
    return s.length === COUNT && s.every((x) => x === 'ACTIVE');
  }, 90_000, 'every tenant ACTIVE');
  // Let the status commit of the pass land, then stop gracefully.
  await waitFor(async () => {
    try {
      return (await statusAt(repo, 'main', `tenant-${COUNT - 1}`)).status.status === 'ACTIVE' && (await statusAt(repo, 'main', 'tenant-00')).status.status === 'ACTIVE';
    } catch {
      return false;
    }
  }, 30_000, 'status committed').catch((err: unknown) => {
    t.comment(last.output().split('\n').filter((l) => !l.includes('Phase')).slice(-15).join('\n'));
    throw err;
  });
  last.child.kill('SIGTERM');
  const exit = await last.exited;
  t.equal(exit.code, 0, 'SIGTERM finishes the checkpoint and exits 0');
  t.match(last.output(), /"msg":"stopped"/);

  // Every line of the log parses; per tenant exactly the seven phases once each.
  const lines = (await fsp.readFile(log, 'utf8')).split('\n').filter(Boolean);
  const entries = lines.map((l) => JSON.parse(l) as { id: string; tenantId: string; toState: string; trigger: string });
  t.equal(new Set(entries.map((e) => e.id)).size, entries.length, 'no transition id twice');
  for (let i = 0; i < COUNT; i++) {
    const id = `tenant-${String(i).padStart(2, '0')}`;
    const mine = entries.filter((e) => e.tenantId === id);
    t.same(mine.map((e) => e.toState.split('/')[1]), [...PHASES], `${id}: seven phases, none repeated`);
  }
  t.ok(entries.some((e) => e.trigger === 'resume'), 'some phases were resumed after a restart');
  for (const name of await fsp.readdir(path.join(dataDir, 'state', 'tenants'))) {
    if (name.endsWith('.json')) t.doesNotThrow(() => JSON.parse(readFileSync(path.join(dataDir, 'state', 'tenants', name), 'utf8')), name);
  }
  t.equal(await gitOut(repo, ['status', '--porcelain']), '', 'work tree clean after kills');
  await gitOut(repo, ['fsck', '--no-dangling']);
});


t.test('a running tenantd serves the API: the seed curl provisions 550e8400 to ACTIVE with the bootstrap token', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  const dataDir = path.join(dir, 'data');
  await initRepo(repo);
  await commitFiles(repo, { 'tenants/first.yaml': tenantYaml('first') }, 'one tenant');
  const p = spawnTenantd(['daemon', '--repo', repo, '--data-dir', dataDir, '--poll', '0', '--host', '127.0.0.1', '--port', '0']);
  t.teardown(() => {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  await waitFor(() => /API on (http:\/\/127\.0\.0\.1:\d+)/.test(p.output()), 60_000, 'the API to listen');
  const url = /API on (http:\/\/127\.0\.0\.1:\d+)/.exec(p.output())?.[1] as string;
  const tokenFile = path.join(dataDir, 'admin-token');
  t.match(p.output(), `read it from ${tokenFile}`, 'says where the bootstrap admin token is');
  const token = (await fsp.readFile(tokenFile, 'utf8')).trim();
  t.match(token, /^tdk_[A-Za-z0-9_-]+$/, 'the bootstrap admin token is in its file');
  t.notMatch(p.output(), token, 'and never printed');
  t.equal((await fsp.stat(tokenFile)).mode & 0o777, 0o600, 'the token file has mode 0600');
  const tokensFile = path.join(dataDir, 'api-tokens.yaml');
  t.equal((await fsp.stat(tokensFile)).mode & 0o777, 0o600, 'kept with mode 0600');
  t.notMatch(await fsp.readFile(tokensFile, 'utf8'), token as string, 'only its hash is stored');

  const body = { tier: 'professional', region: 'eastus', cloudProvider: 'AZURE', configuration: { databaseSize: 'GP_Gen5_2', storageGb: 100, enableHa: true } };
  const unauth = await fetch(`${url}/api/v1/infrastructure/tenants/550e8400/provision`, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
  t.equal(unauth.status, 401, 'never served unauthenticated');
  const res = await fetch(`${url}/api/v1/infrastructure/tenants/550e8400/provision`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token as string}` },
  });
  t.equal(res.status, 202);
  const { commit } = (await res.json()) as { commit: string };
  t.match(await gitOut(repo, ['show', `${commit}:tenants/550e8400.yaml`]), /cloudProvider: AZURE/);
  let tenant: { status?: string } = {};
  await waitFor(async () => {
    tenant = (await (await fetch(`${url}/api/v1/infrastructure/tenants/550e8400`, { headers: { Authorization: `Bearer ${token as string}` } })).json()) as { status?: string };
    return tenant.status === 'ACTIVE';
  }, 30_000, '550e8400 ACTIVE');
  // The record is written before its transition is appended to the log (crash safety), so the
  // last transition can follow the ACTIVE status by a moment.
  let transitions: { items: Array<{ toState: string }> } = { items: [] };
  await waitFor(async () => {
    transitions = (await (await fetch(`${url}/api/v1/infrastructure/tenants/550e8400/transitions`, { headers: { Authorization: `Bearer ${token as string}` } })).json()) as typeof transitions;
    return transitions.items.length >= PHASES.length;
  }, 10_000, 'the seven transitions');
  t.same(transitions.items.map((x) => x.toState.split('/')[1]), [...PHASES]);
  p.child.kill('SIGTERM');
  t.equal((await p.exited).code, 0);

  // A restart keeps the token (hashed) and does not print a new one.
  const again = spawnTenantd(['daemon', '--repo', repo, '--data-dir', dataDir, '--poll', '0', '--host', '127.0.0.1', '--port', '0']);
  await waitFor(() => /API on/.test(again.output()), 60_000, 'restart');
  t.notMatch(again.output(), /tdk_/, 'the token is never printed');
  t.match(again.output(), `still in ${tokenFile}`, 'a reminder to delete the token file');
  again.child.kill('SIGTERM');
  t.equal((await again.exited).code, 0);
});
