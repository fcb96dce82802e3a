/**
 * A smoke run of `npm run bench` (bench/run.ts, from source) with 100 tenants: it must complete,
 * print its one table with every scenario, and write that table as JSON. Nothing about time is
 * asserted — the benchmark measures, the tests do not gate on figures.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runBench } from './helpers/bench-run.js';

t.test('the benchmark completes with 100 tenants and prints one table', async (t) => {
  const out = path.join(t.testdir(), 'latest.json');
  // The kubernetes scenario starts a control plane of its own: its smoke run is bench-kube-smoke.test.ts.
  const r = await runBench(['--sizes', '100', '--runs', '1', '--burst', '20', '--sse-clients', '40', '--status-changed', '50', '--log-entries', '1000', '--failing-tenants', '50', '--skip', 'kube', '--out', out]);
  t.equal(r.code, 0, `exit 0\n${r.stderr.slice(-4000)}`);
  t.match(r.stdout, /scenario\s+tenants\s+unit\s+median\s+min\s+max/, 'the table header');
  for (const scenario of [
    'change detection',
    'cold load',
    'full reconcile: wall time',
    'full reconcile: daemon peak RSS',
    'status write-back',
    'no-op poll',
    'webhook → reconcile started',
    'API burst: 20 concurrent POST provision',
    'API burst: p99 latency',
    'SSE: 40 clients that never read',
    'transition log: 1 append',
    'failing fleet: status commits per hour',
  ]) {
    t.ok(r.stdout.includes(scenario), `a row for ${scenario}`);
  }
  const json = JSON.parse(await fsp.readFile(out, 'utf8')) as { rows: Array<{ scenario: string; tenantd: { n: number } }>; machine: { cpus: number } };
  t.ok(json.rows.length >= 10, 'the rows are written as JSON');
  t.ok(json.rows.every((row) => row.tenantd.n >= 1), 'every row has samples');
  t.ok(json.machine.cpus >= 1, 'the machine is described');
});
