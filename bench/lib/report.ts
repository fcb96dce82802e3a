/** The benchmark's one table: rows built from samples of this run, printed and written as JSON. */
import os from 'node:os';
import { summarize } from './stats.js';

export type Unit = 'ms' | 's' | 'MB' | 'KB' | 'writes/s' | 'commits/h' | 'req/object';

export interface Figure {
  n: number;
  median: number;
  min: number;
  max: number;
}

export interface Row {
  scenario: string;
  /** Fleet size the row was measured at; null when it does not depend on one. */
  tenants: number | null;
  unit: Unit;
  tenantd: Figure;
  /** The same work done by native git in the same run, when there is such a command. */
  native: (Figure & { command: string }) | null;
  /** tenantd median ÷ native git median. */
  ratio: number | null;
  target: string;
  /** Whether this run's figures meet the target (null: no target for this row). */
  met: boolean | null;
  /** What the run checked besides time (correctness, work done). */
  check: string;
}

export function figure(samples: readonly number[]): Figure {
  const s = summarize(samples);
  return { n: s.n, median: s.median, min: s.min, max: s.max };
}

export function row(r: Omit<Row, 'ratio'> & { ratio?: number | null }): Row {
  const ratio = r.ratio !== undefined ? r.ratio : r.native ? r.tenantd.median / r.native.median : null;
  return { ...r, ratio };
}

function fmt(v: number, unit: Unit): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 'MB' || unit === 'KB' || unit === 'writes/s' || unit === 'commits/h') return v.toFixed(0);
  if (unit === 's') return v.toFixed(1);
  return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
}

/** The table as aligned text (one line per row, a header, a rule). */
export function formatTable(rows: readonly Row[]): string {
  const header = ['scenario', 'tenants', 'unit', 'median', 'min', 'max', 'n', 'native git', 'ratio', 'target', 'met', 'checked'];
  const lines = rows.map((r) => [
    r.scenario,
    r.tenants === null ? '-' : String(r.tenants),
    r.unit,
    fmt(r.tenantd.median, r.unit),
    fmt(r.tenantd.min, r.unit),
    fmt(r.tenantd.max, r.unit),
    String(r.tenantd.n),
    r.native ? `${fmt(r.native.median, r.unit)} (${fmt(r.native.min, r.unit)}–${fmt(r.native.max, r.unit)})` : '-',
    r.ratio === null ? '-' : `${r.ratio.toFixed(2)}×`,
    r.target,
    r.met === null ? '-' : r.met ? 'yes' : 'NO',
    r.check,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const right = new Set([1, 3, 4, 5, 6, 8]);
  const fmtLine = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : right.has(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [fmtLine(header), widths.map((w, i) => (i === widths.length - 1 ? '-'.repeat(Math.min(w, 40)) : '-'.repeat(w))).join('  '), ...lines.map(fmtLine)].join('\n');
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  os: string;
  node: string;
  git: string;
  filesystemNote: string;
}

export function machine(gitVersion: string, tmpdir: string): Machine {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    git: gitVersion,
    filesystemNote: `temporary directories under ${tmpdir}`,
  };
}
