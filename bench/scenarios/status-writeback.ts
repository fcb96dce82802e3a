/**
 * Status write-back: the status files of 1,000 tenants that changed in one pass, committed by the
 * daemon's StatusWriter in one commit (in this process, on a copy of a reconciled repository),
 * against native `git fast-import` writing the same 1,000 files as one commit on the same head.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ReconciliationEventPublisher } from '../../core/events/publisher.js';
import { GitStore } from '../../core/git/store.js';
import type { TenantRecord } from '../../core/state/record.js';
import { TenantStateStore } from '../../core/state/store.js';
import { renderStatusFile, statusPath } from '../../core/status/status-file.js';
import { StatusWriter } from '../../daemon/status-writer.js';
import { fastImport, git, gitOut } from '../lib/git.js';
import { figure, row, type Row } from '../lib/report.js';
import { timed } from '../lib/stats.js';
import { copyRepo } from './repo.js';

export async function statusWriteBack(opts: { tenants: number; repo: string; dataDir: string; root: string; runs: number; changed: number }): Promise<Row> {
  const dir = path.join(opts.root, `status-${opts.tenants}`);
  await fsp.mkdir(dir, { recursive: true });
  const repo = await copyRepo(opts.repo, path.join(dir, 'repo.git'));
  const stateDir = path.join(dir, 'data');
  // The records of `changed` reconciled tenants, as the daemon keeps them.
  const recordDir = path.join(opts.dataDir, 'state', 'tenants');
  const names = (await fsp.readdir(recordDir)).filter((n) => n.endsWith('.json')).sort().slice(0, opts.changed);
  const records: TenantRecord[] = [];
  for (const n of names) records.push(JSON.parse(await fsp.readFile(path.join(recordDir, n), 'utf8')) as TenantRecord);
  const store = await TenantStateStore.open(stateDir);
  const publisher = new ReconciliationEventPublisher();
  let committedEvents = 0;
  publisher.subscribe((e) => {
    if (e.type === 'StatusCommitted') committedEvents++;
  });
  const gitStore = await GitStore.open({ repo, dataDir: stateDir, branch: 'main' });
  // Only the explicit flush below commits: no interval comes round during the measurement.
  const writer = new StatusWriter({ git: gitStore, store, publisher, author: { name: 'tenantd', email: 'tenantd@localhost' }, intervalMs: 24 * 3_600_000 });

  const ours: number[] = [];
  const native: number[] = [];
  let oneCommitEach = true;
  let filesPerCommit = 0;
  for (let run = 0; run < opts.runs; run++) {
    // One pass changed every one of these tenants (a drift check recorded on each, say).
    const stamp = new Date(Date.UTC(2030, 0, 1, 0, run)).toISOString();
    for (const rec of records) {
      const t = { id: `bench-${run}-${rec.tenantId}`, tenantId: rec.tenantId, fromState: 'ACTIVE/Complete', toState: 'ACTIVE/Complete', trigger: `drift`, details: { run }, timestamp: stamp } as NonNullable<TenantRecord['lastTransition']>;
      rec.recentTransitions = [...rec.recentTransitions, { fromState: t.fromState, toState: t.toState, trigger: t.trigger, timestamp: t.timestamp }].slice(-5);
      rec.lastTransition = t;
      rec.updatedAt = stamp;
      await store.put(structuredClone(rec));
      writer.markDirty(rec.tenantId);
    }
    await store.flush();
    const before = await gitOut(repo, ['rev-parse', 'refs/heads/main']);
    const eventsBefore = committedEvents;
    const [ms, commit] = await timed(() => writer.flush());
    ours.push(ms);
    if (!commit) throw new Error('status write-back committed nothing');
    const count = Number(await gitOut(repo, ['rev-list', '--count', `${before}..${commit}`]));
    const files = (await gitOut(repo, ['diff', '--name-only', before, commit])).split('\n').filter(Boolean).length;
    filesPerCommit = files;
    if (count !== 1 || committedEvents - eventsBefore !== 1 || files !== records.length) oneCommitEach = false;

    // native: the same status files, one commit on the same parent, on a side branch
    const texts: Array<[string, string]> = records.map((rec) => [statusPath(rec.tenantId), `${renderStatusFile(rec)}# native ${run}\n`]);
    const n = await fastImport(repo, [{ ref: `refs/heads/native-status-${run}`, from: before, message: `native status of ${records.length} tenant(s)\n`, files: texts }]);
    native.push(n.ms);
  }
  await git(repo, ['count-objects']);
  writer.close();
  await gitStore.close(); // its pack files are open handles until then
  const f = figure(ours);
  await fsp.rm(dir, { recursive: true, force: true });
  return row({
    scenario: `status write-back (${records.length} changed)`,
    tenants: opts.tenants,
    unit: 'ms',
    tenantd: f,
    native: { ...figure(native), command: 'git fast-import (same files, one commit)' },
    target: 'one commit, ≤ 2000 ms',
    met: f.median <= 2000 && oneCommitEach,
    check: `${oneCommitEach ? 'one commit per pass' : 'NOT one commit per pass'}, ${filesPerCommit} status files in it`,
  });
}
