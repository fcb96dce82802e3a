import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { PHASES } from '../core/phases.js';
import { commitFiles, gitOut, initRepo } from './helpers/git-fixtures.js';
import { statusAt } from './helpers/daemon.js';
import { spawnTenantd, waitFor } from './helpers/process.js';
import { tenantYaml } from './helpers/tenants.js';

const COUNT = 30;

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
  for (const mark of [Math.floor(COUNT * 7 * 0.2), Math.floor(COUNT * 7 * 0.6)]) {
    const p = spawnTenantd(args);
    started.push(p);
    await waitFor(async () => (await lineCount(log)) >= mark, 60_000, `${mark} transitions`);
    p.child.kill('SIGKILL');
    const exit = await p.exited;
    t.equal(exit.signal, 'SIGKILL', `killed after ${mark} transitions`);
    t.ok((await statuses(dataDir)).some((s) => s !== 'ACTIVE'), 'killed while work was still in progress');
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
      return (await statusAt(repo, 'main', 'tenant-29')).status.status === 'ACTIVE' && (await statusAt(repo, 'main', 'tenant-00')).status.status === 'ACTIVE';
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
  t.match(last.output(), 'tenantd: stopped');

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

