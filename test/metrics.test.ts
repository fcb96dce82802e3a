import { spawnSync } from 'node:child_process';
import t from 'tap';
import { createMetrics, SERIES_PER_TENANT, type TenantMetricView } from '../api/metrics.js';
import { ReconciliationEventPublisher } from '../core/events/publisher.js';
import { apiHarness, type ApiHarness } from './helpers/api.js';
import { commitFiles } from './helpers/git-fixtures.js';

const T = '/api/v1/infrastructure/tenants';

const scrape = async (h: ApiHarness): Promise<string> => {
  const res = await fetch(`${h.api.url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
};

/** Sample lines (not comments) of an exposition. */
const samples = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
const tenantSeries = (text: string, tenant: string): string[] => samples(text).filter((l) => l.includes(`tenant="${tenant}"`));
const value = (text: string, series: string): number | undefined => {
  const line = samples(text).find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

t.test('per-tenant condition and info series, a stable set of 10 per tenant', async (t) => {
  const h = await apiHarness(t);
  const text = await scrape(h);
  for (const tenant of ['acme-corp', 'globex', 'initech']) {
    t.equal(tenantSeries(text, tenant).length, SERIES_PER_TENANT, `${tenant}: ${SERIES_PER_TENANT} series`);
  }
  t.equal(SERIES_PER_TENANT, 10, '3 condition types × 3 statuses + 1 info');
  t.equal(value(text, 'tenantd_tenant_condition{tenant="globex",type="Ready",status="True"}'), 1);
  t.equal(value(text, 'tenantd_tenant_condition{tenant="globex",type="Ready",status="False"}'), 0);
  t.equal(value(text, 'tenantd_tenant_condition{tenant="globex",type="Ready",status="Unknown"}'), 0);
  t.equal(value(text, 'tenantd_tenant_condition{tenant="globex",type="Stalled",status="False"}'), 1);
  t.equal(value(text, 'tenantd_tenant_condition{tenant="globex",type="Reconciling",status="False"}'), 1);
  t.equal(value(text, 'tenantd_tenant_info{tenant="globex",tier="professional",cloud="AZURE",region="westeurope",status="ACTIVE"}'), 1);
  t.match(text, /tenantd_tenant_info\{tenant="initech",tier="starter",cloud="[A-Z]+",region="[a-z0-9-]+",status="ACTIVE"\} 1/);
});

t.test('failure counters exist at 0 before the first failure; default, build and leader metrics', async (t) => {
  const h = await apiHarness(t);
  const text = await scrape(h);
  t.equal(value(text, 'tenantd_reconciles_total{result="failed"}'), 0);
  t.equal(value(text, 'tenantd_source_polls_total{result="failed"}'), 0);
  for (const phase of ['Request', 'Plan', 'Apply', 'Deploy', 'Configure', 'Verify']) {
    for (const kind of ['retryable', 'waiting', 'stalled']) t.equal(value(text, `tenantd_reconcile_failures_total{phase="${phase}",kind="${kind}"}`), 0, `${phase}/${kind} at 0`);
  }
  t.ok((value(text, 'tenantd_source_polls_total{result="ok"}') ?? 0) >= 1, 'the start poll counted');
  t.match(text, /^process_cpu_user_seconds_total \d/m, 'process_* default metrics');
  t.match(text, /^process_resident_memory_bytes \d/m);
  t.match(text, /^nodejs_heap_size_used_bytes \d/m, 'nodejs_* default metrics');
  t.match(text, /^nodejs_eventloop_lag_seconds \d/m);
  t.match(text, /^nodejs_active_handles\{type="[A-Za-z]+"\} \d/m, 'active handles by type');
  t.notMatch(text, /^nodejs_active_handles_total/m, 'not the gauge promtool rejects for its _total suffix');
  t.match(text, new RegExp(`^tenantd_build_info\\{version="\\d+\\.\\d+\\.\\d+[^"]*",node="${process.versions.node.replace(/\./g, '\\.')}"\\} 1$`, 'm'));
  t.equal(value(text, 'tenantd_leader'), 1, 'no election configured: this replica leads');
});

t.test('tenantd_leader follows the isLeader callback at each scrape', async (t) => {
  let leading = false;
  const h = await apiHarness(t, { api: { isLeader: () => leading } });
  t.equal(value(await scrape(h), 'tenantd_leader'), 0, 'standby');
  leading = true;
  t.equal(value(await scrape(h), 'tenantd_leader'), 1, 'took the lease');
});

t.test('HTTP request durations are labelled by route template and code, never by raw path', async (t) => {
  const h = await apiHarness(t);
  t.equal((await h.call('GET', `${T}/globex`)).status, 200);
  t.equal((await h.call('GET', `${T}/initech`)).status, 200);
  t.equal((await h.call('GET', `${T}/nobody`)).status, 404);
  t.equal((await h.call('GET', `${T}/globex`, { token: null })).status, 401);
  t.equal((await h.call('GET', '/no/such/route/42')).status, 404);
  const text = await scrape(h);
  const route = '/api/v1/infrastructure/tenants/:tenantId';
  t.equal(value(text, `tenantd_http_request_duration_seconds_count{method="GET",route="${route}",code="200"}`), 2, 'both tenants under one template');
  t.equal(value(text, `tenantd_http_request_duration_seconds_count{method="GET",route="${route}",code="404"}`), 1);
  t.equal(value(text, `tenantd_http_request_duration_seconds_count{method="GET",route="${route}",code="401"}`), 1);
  t.equal(value(text, 'tenantd_http_request_duration_seconds_count{method="GET",route="unmatched",code="404"}'), 1);
  t.match(text, /tenantd_http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/api\/v1\/infrastructure\/tenants\/:tenantId",code="200"\} \d/);
  t.notMatch(text, /route="[^"]*(globex|initech|nobody|42)/, 'no raw path in a label');
});

t.test('an INVALID tenant reads Stalled=True; a deleted tenant drops its series', async (t) => {
  const h = await apiHarness(t);
  await commitFiles(h.repo, { 'tenants/broken.yaml': 'apiVersion: tenantd.io/v1\nkind: Tenant\nmetadata: {name: broken}\nspec: {tier: gold}\n' }, 'a broken tenant');
  await h.daemon.poll('test');
  await h.daemon.whenIdle();
  let text = await scrape(h);
  t.equal(tenantSeries(text, 'broken').length, SERIES_PER_TENANT);
  t.equal(value(text, 'tenantd_tenant_condition{tenant="broken",type="Stalled",status="True"}'), 1);
  t.equal(value(text, 'tenantd_tenant_condition{tenant="broken",type="Ready",status="False"}'), 1);
  t.match(text, /tenantd_tenant_info\{tenant="broken",tier="",cloud="",region="",status="INVALID"\} 1/);

  t.equal((await h.call('DELETE', `${T}/globex?confirm=globex`)).status, 202);
  await h.daemon.whenIdle();
  t.equal((await h.call('GET', `${T}/globex`)).body['status'], 'DEPROVISIONED');
  text = await scrape(h);
  t.same(tenantSeries(text, 'globex'), [], 'no series left for the deleted tenant');
  t.equal(tenantSeries(text, 'initech').length, SERIES_PER_TENANT, 'the others keep theirs');
});

// CI installs Debian's prometheus package (.ci/run) and must run this; a developer machine may not have it.
const promtoolMissing = spawnSync('promtool', ['--version']).error !== undefined && !process.env['CI'];
t.test('promtool check metrics passes on a real daemon /metrics', { skip: promtoolMissing ? 'promtool is not installed (apt-get install prometheus gives /usr/bin/promtool)' : false }, async (t) => {
  const h = await apiHarness(t);
  await h.call('GET', `${T}/globex`);
  await h.call('GET', `${T}/nobody`);
  const text = await scrape(h);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  t.equal(`${check.stdout}${check.stderr}`.trim(), '', 'no lint findings');
});

/** A synthetic fleet for the cost measurement: ids as long as real ones, every label filled. */
const fleet = (n: number): TenantMetricView[] =>
  Array.from({ length: n }, (_, i) => ({
    tenantId: `tenant-${String(i).padStart(5, '0')}`,
    status: 'ACTIVE',
    tier: 'professional',
    cloud: 'AZURE',
    region: 'westeurope',
    conditions: [
      { type: 'Ready', status: 'True' },
      { type: 'Reconciling', status: 'False' },
      { type: 'Stalled', status: 'False' },
    ],
  }));

t.test('process_* and nodejs_* are collected once per process, whatever the number of daemons', async (t) => {
  const make = () => createMetrics({ publisher: new ReconciliationEventPublisher(), queue: { depth: 0, active: 0, scheduledRetries: 0 }, statuses: () => [] });
  const [a, b] = [make(), make()];
  for (const name of ['nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds', 'process_cpu_user_seconds_total']) {
    const metric = a.registry.getSingleMetric(name);
    t.ok(metric, `${name} is in every daemon's registry`);
    // one collector (one event-loop monitor, one GC observer), not one per daemon
    t.equal(b.registry.getSingleMetric(name), metric, `${name}: the same collector in both`);
  }
  t.not(a.registry.getSingleMetric('tenantd_reconciles_total'), b.registry.getSingleMetric('tenantd_reconciles_total'), "tenantd's own series stay per daemon");
  t.match(await b.registry.metrics(), /^nodejs_eventloop_lag_seconds \d/m, 'and are scraped from each');
});

t.test('cost per tenant, measured for 1,000 tenants: exactly 10 series, bounded bytes', async (t) => {
  let tenants: TenantMetricView[] = [];
  const m = createMetrics({ publisher: new ReconciliationEventPublisher(), queue: { depth: 0, active: 0, scheduledRetries: 0 }, statuses: () => [], tenants: () => tenants });
  // Only tenantd's own series: the process_*/nodejs_* ones move by themselves between two scrapes
  // (a first major GC adds its histogram series, a new kind of handle its gauge).
  const own = async (): Promise<string[]> => samples(await m.registry.metrics()).filter((l) => l.startsWith('tenantd_'));
  const bytesOf = (lines: string[]): number => lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
  const empty = await own();
  tenants = fleet(1000);
  const full = await own();
  const series = full.length - empty.length;
  const bytes = bytesOf(full) - bytesOf(empty);
  t.equal(series, 1000 * SERIES_PER_TENANT, 'series grow by exactly 10 per tenant');
  t.ok(bytes / 1000 < 1024, `under 1 KiB of /metrics per tenant (measured ${(bytes / 1000).toFixed(0)} B)`);
  t.comment(`1,000 tenants: +${series} series, +${bytes} bytes of /metrics (${(bytes / 1000).toFixed(0)} B per tenant)`);
  tenants = fleet(10);
  t.equal((await own()).length - empty.length, 10 * SERIES_PER_TENANT, 'tenants gone, series gone');
});
