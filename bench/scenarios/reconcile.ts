/**
 * Full reconcile: N new tenants to ACTIVE with the render provider, status files committed, in a
 * daemon process of its own (bench/child.ts) so the peak RSS reported is the daemon's alone.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { ReconcileReport } from '../child.js';
import { DaemonChild } from '../lib/child-proc.js';
import { gitOut } from '../lib/git.js';
import { figure, row, type Row } from '../lib/report.js';
import { copyRepo, type TenantsRepo } from './repo.js';

export interface ReconcileResult {
  rows: Row[];
  /** The repository and data directory of the last run, all tenants ACTIVE. */
  repo: string;
  dataDir: string;
}

export async function fullReconcile(r: TenantsRepo, root: string, runs: number, concurrency: number, timeoutMs: number, execArgv: string[] = []): Promise<ReconcileResult> {
  const wall: number[] = [];
  const peak: number[] = [];
  const reports: ReconcileReport[] = [];
  const cpu: number[] = [];
  let repo = '';
  let dataDir = '';
  for (let i = 0; i < runs; i++) {
    // Earlier runs are removed only at the end of the benchmark: deleting 200,000 files right
    // before a run would slow the file creations of that run on some file systems (ext4 without
    // a journal avoids reusing recently deleted inodes, and looking for others costs).
    const dir = path.join(root, `reconcile-${r.tenants}-${i}`);
    await fsp.mkdir(dir, { recursive: true });
    repo = await copyRepo(r.repo, path.join(dir, 'repo.git'));
    dataDir = path.join(dir, 'data');
    const child = new DaemonChild({ mode: 'reconcile', repo, dataDir, concurrency }, execArgv);
    try {
      const report = await child.waitFor<ReconcileReport>('reconciled', timeoutMs);
      reports.push(report);
      wall.push(report.wallMs / 1000);
      peak.push(Math.max(report.memory.maxRssMb, report.memory.vmHwmMb ?? 0));
      cpu.push(report.cpuUserS + report.cpuSystemS);
      await child.finish();
    } finally {
      child.kill();
    }
  }
  const last = reports[reports.length - 1] as ReconcileReport;
  const active = last.statuses['ACTIVE'] ?? 0;
  // What a user sees: status files committed on main by tenantd, counted by native git.
  const statusFiles = Number(await gitOut(repo, ['ls-tree', '--name-only', 'main', 'status/']).then((s) => (s ? s.split('\n').length : 0)));
  const allActive = reports.every((x) => (x.statuses['ACTIVE'] ?? 0) === r.tenants && x.tenants === r.tenants);
  const wallFig = figure(wall);
  const peakFig = figure(peak);
  const check = `${active}/${r.tenants} ACTIVE; ${statusFiles} status files on main in ${last.statusCommits} status commit(s); concurrency ${concurrency}; daemon CPU ${(figure(cpu).median).toFixed(0)} s (user ${last.cpuUserS.toFixed(0)} + sys ${last.cpuSystemS.toFixed(0)} in the last run)`;
  return {
    repo,
    dataDir,
    rows: [
      row({ scenario: 'full reconcile: wall time', tenants: r.tenants, unit: 's', tenantd: wallFig, native: null, target: '≤ 120 s', met: wallFig.median <= 120 && allActive && statusFiles === r.tenants, check }),
      row({
        scenario: 'full reconcile: daemon peak RSS',
        tenants: r.tenants,
        unit: 'MB',
        tenantd: peakFig,
        native: null,
        target: '≤ 512 MB',
        met: peakFig.max <= 512,
        check: 'getrusage maxrss / VmHWM of the daemon process',
      }),
    ],
  };
}
