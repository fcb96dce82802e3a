/**
 * `npm run bench`: tenantd at fleet scale, measured against native git in the same run.
 *
 *   node dist/bench/run.js [--sizes 1000,10000] [--runs 5] [--reconcile-runs 3] [--burst 200] [--sse-clients 500]
 *                          [--concurrency 4] [--log-entries 100000] [--out bench/results/latest.json]
 *                          [--failing-tenants 1000] [--failing-hours 1] [--kube-sizes 100,1000]
 *                          [--only|--skip name,name] [--keep] [--child-cpu-prof DIR]
 *
 * For each size it generates a tenants repository (git fast-import), then measures change
 * detection, cold load, full reconcile (daemon in a child process: wall time and peak RSS), status
 * write-back, and — against a running daemon with the API on 127.0.0.1 — no-op polls, signed
 * webhooks and a burst of concurrent provision requests; the transition log once; once, the status
 * commits per hour of a fleet whose cluster is unreachable (on a simulated clock). It prints one
 * table (median, min, max; native git and the ratio where git does the same work) and writes it as
 * JSON. It asserts nothing about time: the "met" column only reports what this run measured.
 */
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gitVersion } from './lib/git.js';
import { formatTable, machine, row, figure, type Row } from './lib/report.js';
import { changeDetection, coldLoad } from './scenarios/git-read.js';
import { failingFleet } from './scenarios/failing-fleet.js';
import { kubeApply, kubeScriptsPresent } from './scenarios/kube-apply.js';
import { fullReconcile } from './scenarios/reconcile.js';
import { createTenantsRepo } from './scenarios/repo.js';
import { serveScenarios } from './scenarios/serve.js';
import { sseScenario } from './scenarios/sse.js';
import { statusWriteBack } from './scenarios/status-writeback.js';
import { transitionLog } from './scenarios/transition-log.js';

export const SCENARIOS = ['change', 'cold-load', 'reconcile', 'status', 'serve', 'sse', 'log', 'failing', 'kube'] as const;
type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  sizes: number[];
  runs: number;
  reconcileRuns: number;
  burst: number;
  /** Event-stream clients that never read, in the sse scenario. */
  sseClients: number;
  concurrency: number;
  logEntries: number;
  statusChanged: number;
  failingTenants: number;
  failingHours: number;
  out: string | null;
  only: Set<Scenario>;
  keep: boolean;
  timeoutMs: number;
  /** Profile every daemon child process (node --cpu-prof) into this directory. */
  childCpuProf: string | null;
  /** Fleet sizes of the kubernetes scenario (a real control plane: see bench/scenarios/kube-apply.ts). */
  kubeSizes: number[];
}

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    // package-lock.json: dist/ has a package.json of its own (compiled in for the version).
    if (existsSync(path.join(dir, 'package-lock.json')) && existsSync(path.join(dir, 'bench'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

const positiveInt = (name: string, v: string, min = 1): number => {
  if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`--${name} must be a whole number ≥ ${min} (got ${JSON.stringify(v)})`);
  return Number(v);
};

export function parseBenchArgs(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string', default: '1000,10000' },
      runs: { type: 'string', default: '5' },
      'reconcile-runs': { type: 'string' },
      burst: { type: 'string', default: '200' },
      'sse-clients': { type: 'string', default: '500' },
      concurrency: { type: 'string', default: '4' },
      'log-entries': { type: 'string', default: '100000' },
      'status-changed': { type: 'string', default: '1000' },
      'failing-tenants': { type: 'string', default: '1000' },
      'failing-hours': { type: 'string', default: '1' },
      out: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      only: { type: 'string' },
      skip: { type: 'string' },
      keep: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '1800' },
      'child-cpu-prof': { type: 'string' },
      'kube-sizes': { type: 'string', default: '100,1000' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${readmeUsage()}\n`);
    process.exit(0);
  }
  const sizes = (values.sizes as string).split(',').map((s) => positiveInt('sizes', s.trim(), 10));
  const runs = positiveInt('runs', values.runs as string);
  const scenarioList = (flag: string, v: string): Scenario[] =>
    v.split(',').map((x) => {
      const s = x.trim();
      if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`--${flag}: unknown scenario ${JSON.stringify(s)} (one of ${SCENARIOS.join(', ')})`);
      return s as Scenario;
    });
  const only = new Set<Scenario>(scenarioList('only', values.only ?? SCENARIOS.join(',')));
  for (const s of values.skip ? scenarioList('skip', values.skip) : []) only.delete(s);
  return {
    sizes,
    runs,
    reconcileRuns: values['reconcile-runs'] === undefined ? Math.min(runs, 3) : positiveInt('reconcile-runs', values['reconcile-runs']),
    burst: positiveInt('burst', values.burst as string),
    sseClients: positiveInt('sse-clients', values['sse-clients'] as string),
    concurrency: positiveInt('concurrency', values.concurrency as string),
    logEntries: positiveInt('log-entries', values['log-entries'] as string, 0),
    statusChanged: positiveInt('status-changed', values['status-changed'] as string),
    failingTenants: positiveInt('failing-tenants', values['failing-tenants'] as string),
    failingHours: positiveInt('failing-hours', values['failing-hours'] as string),
    out: values['no-write'] ? null : path.resolve(values.out ?? path.join(packageRoot(), 'bench', 'results', 'latest.json')),
    only,
    keep: values.keep as boolean,
    timeoutMs: positiveInt('timeout', values.timeout as string) * 1000,
    childCpuProf: values['child-cpu-prof'] ? path.resolve(values['child-cpu-prof']) : null,
    kubeSizes: (values['kube-sizes'] as string).split(',').map((s) => positiveInt('kube-sizes', s.trim())),
  };
}

function readmeUsage(): string {
  return 'Usage: npm run bench -- [--sizes 1000,10000] [--runs 5] [--reconcile-runs 3] [--burst 200] [--sse-clients 500] [--concurrency 4]\n' +
    '                        [--log-entries 100000] [--status-changed 1000] [--failing-tenants 1000] [--failing-hours 1] [--kube-sizes 100,1000]\n' +
    '                        [--out FILE | --no-write] [--only|--skip ' + SCENARIOS.join(',') + '] [--keep]';
}

const childArgs = (o: BenchOptions): string[] => (o.childCpuProf ? ['--cpu-prof', `--cpu-prof-dir=${o.childCpuProf}`] : []);

const progress = (msg: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

export interface BenchResult {
  rows: Row[];
  table: string;
  json: Record<string, unknown>;
}

export async function runBench(o: BenchOptions, argv: string[]): Promise<BenchResult> {
  const started = new Date();
  const loadBefore = os.loadavg();
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'tenantd-bench-'));
  const rows: Row[] = [];
  const peaks = new Map<number, number>();
  progress(`temporary directory ${root}`);
  try {
    const perSize: readonly Scenario[] = ['change', 'cold-load', 'reconcile', 'status', 'serve'];
    for (const n of perSize.some((s) => o.only.has(s)) ? o.sizes : []) {
      const sizeRoot = path.join(root, `n${n}`);
      await fsp.mkdir(sizeRoot, { recursive: true });
      const chainLength = o.only.has('change') ? Math.max(o.runs * 4, 5) : 0;
      const repo = await createTenantsRepo(sizeRoot, n, chainLength);
      progress(`${n} tenants: repository generated with git fast-import in ${(repo.generateMs / 1000).toFixed(1)} s`);
      const scratch = path.join(sizeRoot, 'scratch');
      await fsp.mkdir(scratch, { recursive: true });
      if (o.only.has('change')) {
        rows.push(await changeDetection(repo, scratch));
        progress(`${n} tenants: change detection done`);
      }
      if (o.only.has('cold-load')) {
        rows.push(await coldLoad(repo, scratch, o.runs));
        progress(`${n} tenants: cold load done`);
      }
      if (o.only.has('reconcile') || o.only.has('status') || o.only.has('serve') || o.only.has('sse')) {
        const runs = o.only.has('reconcile') ? o.reconcileRuns : 1;
        progress(`${n} tenants: full reconcile, ${runs} run(s)…`);
        const rec = await fullReconcile(repo, sizeRoot, runs, o.concurrency, o.timeoutMs, childArgs(o));
        if (o.only.has('reconcile')) rows.push(...rec.rows);
        const peakRow = rec.rows.find((r) => r.unit === 'MB');
        if (peakRow) peaks.set(n, peakRow.tenantd.median);
        progress(`${n} tenants: full reconcile done (median ${rec.rows[0]?.tenantd.median.toFixed(1)} s)`);
        if (o.only.has('status')) {
          rows.push(await statusWriteBack({ tenants: n, repo: rec.repo, dataDir: rec.dataDir, root: sizeRoot, runs: o.runs, changed: Math.min(o.statusChanged, n) }));
          progress(`${n} tenants: status write-back done`);
        }
        if (o.only.has('serve')) {
          progress(`${n} tenants: daemon with API: no-op polls, webhooks, API bursts…`);
          rows.push(
            ...(await serveScenarios({
              tenants: n,
              repo: rec.repo,
              dataDir: rec.dataDir,
              concurrency: o.concurrency,
              runs: o.runs,
              burst: o.burst,
              webhooks: o.runs * 4,
              polls: o.runs * 20,
              timeoutMs: o.timeoutMs,
              execArgv: childArgs(o),
            })),
          );
          progress(`${n} tenants: serve scenarios done`);
        }
        if (o.only.has('sse')) {
          progress(`${n} tenants: ${o.sseClients} event-stream clients that never read, during two API bursts…`);
          rows.push(
            ...(await sseScenario({
              tenants: n,
              repo: rec.repo,
              dataDir: rec.dataDir,
              concurrency: o.concurrency,
              clients: o.sseClients,
              bursts: 2,
              burst: o.burst,
              timeoutMs: o.timeoutMs,
              execArgv: childArgs(o),
            })),
          );
          progress(`${n} tenants: sse scenario done`);
        }
      }
    }
    if (o.only.has('reconcile') && o.sizes.length >= 2 && o.only.has('reconcile')) {
      const small = Math.min(...o.sizes);
      const large = Math.max(...o.sizes);
      const a = peaks.get(small);
      const b = peaks.get(large);
      if (a !== undefined && b !== undefined && large > small) {
        rows.push(
          row({
            scenario: 'daemon peak RSS growth per tenant',
            tenants: null,
            unit: 'KB',
            tenantd: figure([((b - a) * 1024) / (large - small)]),
            native: null,
            target: '-',
            met: null,
            check: `(peak at ${large} − peak at ${small}) ÷ ${large - small} tenants`,
          }),
        );
      }
    }
    if (o.only.has('kube')) {
      if (kubeScriptsPresent(packageRoot())) {
        const work = path.join(root, 'kube');
        await fsp.mkdir(work, { recursive: true });
        rows.push(...(await kubeApply({ root: packageRoot(), work, sizes: o.kubeSizes, concurrency: o.concurrency, progress })));
      } else progress('kubernetes: test/cluster/ is not here (not a checkout): scenario skipped');
    }
    if (o.only.has('log') && o.logEntries > 0) {
      progress(`transition log: ${o.logEntries} existing entries…`);
      rows.push(...(await transitionLog(root, o.logEntries, o.runs, 100)));
    }
    if (o.only.has('failing')) {
      progress(`failing fleet: ${o.failingTenants} tenants, cluster unreachable, ${o.failingHours} simulated hour(s)…`);
      rows.push(...(await failingFleet({ root, tenants: o.failingTenants, concurrency: o.concurrency, hours: o.failingHours })));
    }
  } finally {
    if (!o.keep) await fsp.rm(root, { recursive: true, force: true });
    else progress(`kept ${root}`);
  }
  const table = formatTable(rows);
  const json = {
    tool: 'tenantd bench',
    command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    startedAt: started.toISOString(),
    durationS: Math.round((Date.now() - started.getTime()) / 1000),
    machine: machine(await gitVersion(), os.tmpdir()),
    // Other work on the machine skews the figures: the 1-minute load average before and after.
    loadAverage: { before: loadBefore.map((x) => Math.round(x * 100) / 100), after: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    options: { sizes: o.sizes, runs: o.runs, reconcileRuns: o.reconcileRuns, burst: o.burst, sseClients: o.sseClients, concurrency: o.concurrency, logEntries: o.logEntries, statusChanged: o.statusChanged, failingTenants: o.failingTenants, failingHours: o.failingHours, kubeSizes: o.kubeSizes },
    rows,
    table: table.split('\n'),
  };
  return { rows, table, json };
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const argv = process.argv.slice(2);
  try {
    const opts = parseBenchArgs(argv);
    const result = await runBench(opts, argv);
    const m = result.json.machine as ReturnType<typeof machine>;
    process.stdout.write(
      `\ntenantd benchmark — ${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, ${m.os}, Node ${m.node}, git ${m.git}\n` +
        `sizes ${opts.sizes.join(', ')}; ${opts.runs} runs per scenario (${opts.reconcileRuns} for full reconcile); took ${result.json.durationS} s; ` +
        `load average ${(result.json.loadAverage as { before: number[] }).before[0]} before, ${(result.json.loadAverage as { after: number[] }).after[0]} after\n\n` +
        `${result.table}\n`,
    );
    if (opts.out) {
      await fsp.mkdir(path.dirname(opts.out), { recursive: true });
      await fsp.writeFile(opts.out, `${JSON.stringify(result.json, null, 2)}\n`);
      process.stdout.write(`\nwritten to ${path.relative(process.cwd(), opts.out) || opts.out}\n`);
    }
  } catch (err: unknown) {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
