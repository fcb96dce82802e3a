/**
 * A smoke run of `npm run bench -- --only kube` (bench/run.ts, from source) with 3 tenants: the
 * kubernetes scenario starts a control plane of its own, applies with tenantd and with kubectl, and
 * counts requests in the API server's audit log. Nothing about time is asserted.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runBench } from './helpers/bench-run.js';

t.test('the kubernetes scenario applies a few tenants with tenantd and kubectl on a control plane of its own', async (t) => {
  const out = path.join(t.testdir(), 'kube.json');
  const r = await runBench(['--only', 'kube', '--kube-sizes', '3', '--out', out]);
  t.equal(r.code, 0, `exit 0\n${r.stderr.slice(-4000)}`);
  const json = JSON.parse(await fsp.readFile(out, 'utf8')) as { rows: Array<{ scenario: string; tenants: number; tenantd: { median: number }; native: { median: number } | null; check: string }> };
  t.same(
    json.rows.map((row) => row.scenario),
    ['kubernetes apply: create', 'kubernetes apply: converged re-pass', 'kubernetes apply: re-pass requests per object'],
  );
  for (const row of json.rows) {
    t.equal(row.tenants, 3);
    t.ok(row.tenantd.median > 0 && (row.native?.median ?? 0) > 0, `${row.scenario}: both sides measured`);
  }
  t.match(json.rows[0]?.check, /API requests per tenant: tenantd \d/, 'requests counted from the audit log');
});
