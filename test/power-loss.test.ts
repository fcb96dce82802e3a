/**
 * Power loss, not only SIGKILL: a real daemon process whose records and log go through PowerCutFs
 * (test/helpers/power-cut-fs.ts) is killed mid-reconcile; what survives is only what was fsynced
 * (file contents by fdatasync, names by a directory fsync). Restarted on that, it must converge
 * with no transition lost or doubled.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { PHASES } from '../core/phases.js';
import { commitFiles, initRepo } from './helpers/git-fixtures.js';
import { PowerCutFs } from './helpers/power-cut-fs.js';
import { spawnScript, waitFor, type DaemonProcess } from './helpers/process.js';
import { tenantYaml } from './helpers/tenants.js';

// Real daemon processes through the TypeScript loader: minutes on a loaded 2-core machine.
t.setTimeout(600_000);

const COUNT = 30;
const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'power-cut-daemon.ts');
const id = (i: number): string => `tenant-${String(i).padStart(2, '0')}`;

interface Entry {
  id: string;
  tenantId: string;
  fromState: string;
  toState: string;
  trigger: string;
}

/** The machine as it would come back now: the durable log and records. */
function durable(dataDir: string, image: string): { log: Entry[]; statuses: Map<string, string> } {
  const fs = PowerCutFs.load(dataDir, image);
  const text = fs.contentOf(path.join(dataDir, 'transitions.jsonl'))?.toString('utf8') ?? '';
  const log = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Entry);
  const statuses = new Map<string, string>();
  for (let i = 0; i < COUNT; i++) {
    const rec = fs.contentOf(path.join(dataDir, 'state', 'tenants', `${id(i)}.json`));
    if (rec) statuses.set(id(i), (JSON.parse(rec.toString('utf8')) as { status: string }).status);
  }
  return { log, statuses };
}

t.test('a daemon that loses power mid-reconcile converges on what was fsynced, no transition lost or doubled', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  const dataDir = path.join(dir, 'data');
  const image = path.join(dir, 'disk-image');
  await initRepo(repo);
  const files: Record<string, string> = {};
  for (let i = 0; i < COUNT; i++) files[`tenants/${id(i)}.yaml`] = tenantYaml(id(i));
  await commitFiles(repo, files, `${COUNT} tenants`);
  const started: DaemonProcess[] = [];
  t.teardown(() => {
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  const args = [image, '--repo', repo, '--data-dir', dataDir, '--poll', '1', '--concurrency', '2', '--log-format', 'json', '--status-interval', '1'];

  for (const mark of [Math.floor(COUNT * 7 * 0.2), Math.floor(COUNT * 7 * 0.5)]) {
    const p = spawnScript(script, args);
    started.push(p);
    await waitFor(() => durable(dataDir, image).log.length >= mark, 60_000, `${mark} durable transitions`).catch((err: unknown) => {
      t.comment(p.output().slice(-3000));
      throw err;
    });
    p.child.kill('SIGKILL');
    t.equal((await p.exited).signal, 'SIGKILL', `power cut after ${mark} transitions`);
    const { statuses } = durable(dataDir, image);
    t.ok(statuses.size < COUNT || [...statuses.values()].some((s) => s !== 'ACTIVE'), `cut while work was left (${[...statuses.values()].filter((s) => s === 'ACTIVE').length} of ${COUNT} ACTIVE)`);
  }

  const last = spawnScript(script, args);
  started.push(last);
  await waitFor(() => {
    const { statuses } = durable(dataDir, image);
    return statuses.size === COUNT && [...statuses.values()].every((s) => s === 'ACTIVE');
  }, 90_000, 'every tenant ACTIVE').catch((err: unknown) => {
    t.comment(last.output().slice(-3000));
    throw err;
  });
  last.child.kill('SIGTERM');
  t.equal((await last.exited).code, 0, 'SIGTERM stops it cleanly');

  const { log } = durable(dataDir, image);
  t.equal(new Set(log.map((e) => e.id)).size, log.length, 'no transition id twice');
  for (let i = 0; i < COUNT; i++) {
    const mine = log.filter((e) => e.tenantId === id(i));
    t.same(mine.map((e) => e.toState.split('/')[1]), [...PHASES], `${id(i)}: seven phases, none lost, none repeated`);
    t.ok(mine.every((e, k) => k === 0 || e.fromState === (mine[k - 1] as Entry).toState), `${id(i)}: each transition starts where the last ended`);
  }
  t.ok(log.some((e) => e.trigger === 'resume'), 'some tenants resumed after a power cut');
});
