import { promises as fsp } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { Browser, Page } from 'playwright-core';
import { DASHBOARD_CSP } from '../api/static.js';
import { conditionTone } from '../web/src/conditions.js';
import { formatDuration, relativeTime, shortSha, toYaml } from '../web/src/format.js';
import { SseParser } from '../web/src/sse-parser.js';
import { reconcilesOf, widths } from '../web/src/timeline.js';
import type { InfrastructureStateTransition } from '../core/log/transition.js';
import { ARTIFACTS, ROOT, browserAvailability, buildDashboard, dashboardHarness, launchBrowser, typecheckDashboard, type DashboardHarness } from './helpers/browser.js';
import { commitFiles } from './helpers/git-fixtures.js';

const XSS_NAME = '<img src=x onerror=alert(1)>';
const tenantYaml = (id: string, name: string, extra = ''): string =>
  [
    'apiVersion: tenantd.io/v1alpha1',
    'kind: TenantInfrastructure',
    'metadata:',
    `  tenantId: ${id}`,
    `  name: ${JSON.stringify(name)}`,
    '  labels:',
    '    team: web',
    'spec:',
    '  tier: starter',
    '  cloudProvider: GCP',
    '  region: us-central1',
    '  configuration:',
    '    databaseSize: db-g1-small',
    '    storageGb: 10',
    '    enableHa: false',
    extra,
  ].join('\n');

/** Besides the three examples: a hostile name, an invalid file (with markup in its error) and a suspended tenant. */
const EXTRA: Record<string, string> = {
  'tenants/xss-probe.yaml': tenantYaml('xss-probe', XSS_NAME),
  'tenants/broken.yaml': tenantYaml('broken', 'Broken <script>alert(2)</script>').replace('tier: starter', 'tier: "<script>alert(3)</script>"'),
  'tenants/paused.yaml': tenantYaml('paused', 'Paused Ltd', '  suspend: true\n'),
};
const EXPECTED: Record<string, string> = { 'acme-corp': 'ACTIVE', globex: 'ACTIVE', initech: 'ACTIVE', 'xss-probe': 'ACTIVE', broken: 'INVALID', paused: 'SUSPENDED' };
/** And enough ordinary tenants to need a second page (the page holds 50 rows). */
const FILLER = Array.from({ length: 50 }, (_, i) => `tenant-${String(i + 1).padStart(3, '0')}`);
for (const id of FILLER) {
  EXTRA[`tenants/${id}.yaml`] = tenantYaml(id, `Filler ${id.slice(-3)}`);
  EXPECTED[id] = 'ACTIVE';
}
const ALL_IDS = Object.keys(EXPECTED).sort();

/** The dashboard's palette, as the browser computes it (from styles.css's custom properties). */
const colour = { ok: 'rgb(31, 138, 76)', bad: 'rgb(198, 40, 40)', busy: 'rgb(47, 91, 234)', ink: 'rgb(29, 35, 48)' };

/** Each condition row's status and the colour the browser draws it in. */
async function conditionColours(page: Page): Promise<Record<string, [string, string]>> {
  const rows = page.locator('[data-testid="conditions"] tbody tr[data-type]');
  const out: Record<string, [string, string]> = {};
  for (const row of await rows.all()) {
    const cell = row.locator('td.cond-status');
    out[(await row.getAttribute('data-type')) as string] = [((await cell.textContent()) ?? '').trim(), await cell.evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle(el).color)];
  }
  return out;
}

const bumpStorage = async (repo: string, id: string): Promise<string> => {
  const file = path.join(repo, 'tenants', `${id}.yaml`);
  const text = await fsp.readFile(file, 'utf8');
  return commitFiles(repo, { [`tenants/${id}.yaml`]: text.replace(/storageGb: (\d+)/, (_m, n: string) => `storageGb: ${Number(n) + 8}`) }, `grow ${id}`);
};

// ---------------------------------------------------------------------------------------------
// The pure parts of the front end, in node.

t.test('SSE parser: frames split anywhere, ids persist, comments and retry are handled', async (t) => {
  const stream = 'retry: 2000\n: connected\n\nid: 1\nevent: StatusChanged\ndata: {"a":1}\n\n: keep-alive\n\nid: 2\r\ndata: x\r\ndata: y\r\n\r\ndata: no id\n\n';
  for (const size of [1, 2, 3, 7, stream.length]) {
    const p = new SseParser();
    const got = [];
    for (let i = 0; i < stream.length; i += size) got.push(...p.push(stream.slice(i, i + size)));
    t.same(
      got,
      [
        { event: 'StatusChanged', data: '{"a":1}', id: '1' },
        { event: 'message', data: 'x\ny', id: '2' },
        { event: 'message', data: 'no id', id: '2' },
      ],
      `chunks of ${size}`,
    );
    t.equal(p.retryMs, 2000);
    t.equal(p.lastEventId, '2');
  }
});

t.test('condition tones follow polarity: Stalled=True and Ready=False are bad, a False Stalled or Reconciling is normal', async (t) => {
  const tones = Object.fromEntries(
    ['Ready', 'Stalled', 'Reconciling'].flatMap((type) => (['True', 'False', 'Unknown'] as const).map((status) => [`${type}=${status}`, conditionTone({ type: type as 'Ready', status })])),
  );
  t.same(tones, {
    'Ready=True': 'good',
    'Ready=False': 'bad',
    'Ready=Unknown': 'unknown',
    'Stalled=True': 'bad',
    'Stalled=False': 'normal',
    'Stalled=Unknown': 'unknown',
    'Reconciling=True': 'progressing',
    'Reconciling=False': 'normal',
    'Reconciling=Unknown': 'unknown',
  });
});

t.test('timeline: one bar per phase; a failed phase, its backoff and the retry are marked', async (t) => {
  const at = (s: number): string => new Date(Date.UTC(2030, 0, 1, 0, 0, s)).toISOString();
  let n = 0;
  const tr = (toState: string, s: number, trigger: string, details: Record<string, unknown> = { operationId: 'op1' }): InfrastructureStateTransition => ({
    id: String(n++),
    tenantId: 'x',
    fromState: '',
    toState,
    trigger,
    details,
    timestamp: at(s),
  });
  const log = [
    tr('INVALID', 0, 'commit:a', { commit: 'a' }),
    tr('UPDATING/Request', 1, 'commit:b', { operationId: 'op1', operation: 'update', commit: 'b' }),
    tr('UPDATING/Plan', 2, 'commit:b'),
    tr('UPDATING/Deploy', 3, 'commit:b'),
    tr('FAILED/Deploy', 5, 'commit:b', { operationId: 'op1', error: { code: 'E_X', kind: 'retryable', message: '<b>no</b>' } }),
    tr('UPDATING/Deploy', 9, 'retry:1'),
    tr('UPDATING/Verify', 10, 'retry:1'),
    tr('ACTIVE/Complete', 11, 'retry:1'),
    tr('UPDATING/Request', 20, 'commit:c', { operationId: 'op2', operation: 'update', commit: 'c' }),
    tr('UPDATING/Plan', 21, 'commit:c', { operationId: 'op2' }),
  ];
  const [first, second] = reconcilesOf(log, Date.parse(at(24)));
  t.ok(first && second);
  if (!first || !second) return;
  t.match(first, { operationId: 'op1', operation: 'update', commit: 'b', outcome: 'succeeded', open: false });
  t.same(
    first.bars.map((b) => [b.phase, b.kind, b.end - b.start, b.retry]),
    [
      ['Request', 'phase', 1000, null],
      ['Plan', 'phase', 1000, null],
      ['Deploy', 'failed', 2000, null],
      ['Deploy', 'backoff', 4000, null],
      ['Deploy', 'phase', 1000, 1],
      ['Verify', 'phase', 1000, null],
      ['Complete', 'done', 0, null],
    ],
  );
  t.same(first.bars[2]?.error, { code: 'E_X', message: '<b>no</b>' });
  t.match(second, { outcome: 'running', open: true });
  t.equal(second.bars.at(-1)?.end, Date.parse(at(24)), 'the running phase grows until now');
  const w = widths(first.bars);
  t.ok(Math.abs(w.reduce((a, b) => a + b, 0) - 1) < 1e-9, 'widths add up to the whole');
  t.ok(Math.min(...w) > 0, 'every bar is visible');
  t.same(
    [0, 999, 1500, 42_000, 125_000, 3 * 3600_000 + 60_000, 50 * 3600_000, -1].map(formatDuration),
    ['0 ms', '999 ms', '1.5 s', '42 s', '2 min 5 s', '3 h 1 min', '2 d 2 h', '—'],
  );
  const now = Date.parse(at(100));
  t.same([at(99), at(60), at(0), null, 'nonsense'].map((x) => relativeTime(x, now)), ['just now', '40 s ago', '1 min 40 s ago', '—', '—']);
  t.equal(shortSha('0123456789abcdef'), '01234567');
  t.equal(shortSha(null), '—');
  t.equal(toYaml({ metadata: { name: 'a: b', labels: { x: 'true' } }, list: [{ n: 1, m: 'ok' }, 'x'] }), 'metadata:\n  name: "a: b"\n  labels:\n    x: "true"\nlist:\n- n: 1\n  m: ok\n- x');
});

// ---------------------------------------------------------------------------------------------
// The dashboard in Chromium against a real daemon.

const availability = browserAvailability();
if (availability.kind === 'skip') {
  t.test('dashboard in Chromium', { skip: availability.reason }, async () => {});
} else if (availability.kind === 'missing') {
  t.fail(availability.message);
} else {
  t.test('dashboard in Chromium against a real daemon', async (t) => {
    const [built] = await Promise.all([buildDashboard(), typecheckDashboard()]);
    t.match(built, /dist\/web/, 'bundle built (and the web/ source type-checks)');
    const h = await dashboardHarness(t, { extra: EXTRA, flags: ['--retry-base', '1', '--retry-cap', '1'] });
    const browser = await launchBrowser(t);
    await fsp.mkdir(ARTIFACTS, { recursive: true });

    await t.test('static files carry the CSP and caching headers, and no data', async (t) => {
      await staticChecks(t, h);
    });

    await t.test('a wrong token shows an error, not data', async (t) => {
      const { page, problems } = await openPage(browser);
      const apiCalls: string[] = [];
      page.on('request', (r) => {
        if (new URL(r.url()).pathname.startsWith('/api/')) apiCalls.push(r.url());
      });
      await page.goto(h.url);
      await page.locator('#token').waitFor();
      t.same(apiCalls, [], 'nothing is asked of the API before a token is given');
      await page.fill('#token', 'not-a-token');
      await page.click('button[type=submit]');
      const err = page.getByTestId('signin-error');
      await err.waitFor();
      t.match(await err.textContent(), /rejected this token \(E_AUTH_INVALID/);
      t.equal(await page.locator('table').count(), 0, 'no table');
      const body = (await page.textContent('body')) ?? '';
      for (const id of Object.keys(EXPECTED)) t.notMatch(body, id, `${id} is not shown`);
      t.equal(await page.evaluate('sessionStorage.length'), 0, 'a rejected token is not kept');
      t.same(problems, [], 'no CSP violations or page errors');
      await page.context().close();
    });

    const { page, problems, dialogs } = await openPage(browser);
    await signIn(page, h, 'reader');

    await t.test('the fleet view lists the tenants with the statuses the API reports, 50 rows a page', async (t) => {
      const api = (await (await fetch(`${h.url}/api/v1/infrastructure/tenants?limit=100`, { headers: { Authorization: 'Bearer reader' } })).json()) as { items: Array<{ tenantId: string; status: string }> };
      t.same(Object.fromEntries(api.items.map((e) => [e.tenantId, e.status])), EXPECTED, 'the API agrees with what the test expects');
      await rowsAre(page, ALL_IDS.slice(0, 50));
      t.same(await shownStatuses(page), pick(ALL_IDS.slice(0, 50)), 'first page: every status as the API says');
      t.equal(await page.getByTestId('range').textContent(), `1–50 of ${ALL_IDS.length}`);
      await page.locator('tr[data-tenant="acme-corp"] td.name', { hasText: /^ACME Corporation$/ }).waitFor({ timeout: 5000 });
      t.pass('names come from metadata.name');
      t.match(await page.locator('tr[data-tenant="globex"]').textContent(), /globexGlobex Corporationprofessional.*AZURE westeurope.*ACTIVE.*Complete/);
      await page.locator('.count[data-status="ACTIVE"] .n', { hasText: new RegExp(`^${ALL_IDS.length - 2}$`) }).waitFor();
      t.equal(await page.locator('.count[data-status="INVALID"] .n').textContent(), '1', 'counts per status');
      t.equal(await page.locator('.count[data-status="SUSPENDED"] .n').textContent(), '1');
      t.equal(await page.locator('.count[data-status="ALL"] .n').textContent(), String(ALL_IDS.length));
      await page.locator('tr[data-tenant="paused"] td.name', { hasText: 'Paused Ltd' }).waitFor();
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-fleet.png') });

      await page.click('text=Next →');
      await rowsAre(page, ALL_IDS.slice(50));
      t.same(await shownStatuses(page), pick(ALL_IDS.slice(50)), 'second page');
      t.equal(await page.getByTestId('range').textContent(), `51–${ALL_IDS.length} of ${ALL_IDS.length}`);
      await page.click('text=← Previous');
      await rowsAre(page, ALL_IDS.slice(0, 50));

      await page.selectOption('[data-testid="status-filter"]', 'INVALID');
      await rowsAre(page, ['broken']);
      t.pass('filter by status (asked of the API)');
      t.match(page.url(), /#\/\?status=INVALID$/, 'the filter is in the address');
      await page.click('.count[data-status="SUSPENDED"]');
      await rowsAre(page, ['paused']);
      t.pass('a count is a filter too');
      await page.selectOption('[data-testid="status-filter"]', '');
      await page.fill('[data-testid="search"]', 'GLOB');
      await rowsAre(page, ['globex']);
      t.pass('search by id');
      await page.fill('[data-testid="search"]', 'tenant-04');
      await rowsAre(page, ALL_IDS.filter((id) => id.startsWith('tenant-04')));
      t.pass('search across pages');
      await page.fill('[data-testid="search"]', 'paused ltd');
      await rowsAre(page, ['paused']);
      t.pass('search by name');
      await page.fill('[data-testid="search"]', '');
      await rowsAre(page, ALL_IDS.slice(0, 50));
    });

    await t.test('a hostile tenant name is text: nothing runs, nothing is inserted as HTML', async (t) => {
      await page.fill('[data-testid="search"]', 'xss');
      await rowsAre(page, ['xss-probe']);
      const cell = page.locator('tr[data-tenant="xss-probe"] td.name');
      await cell.filter({ hasText: XSS_NAME }).waitFor();
      t.equal(await cell.textContent(), XSS_NAME, 'shown literally');
      t.equal(await page.locator('img').count(), 0, 'no <img> element was created');
      await page.click('a[href="#/tenants/xss-probe"]');
      const name = page.getByTestId('tenant-name');
      await name.filter({ hasText: XSS_NAME }).waitFor();
      t.equal(await page.locator('img').count(), 0);
      await page.goto(`${h.url}/#/tenants/broken`);
      const issues = page.getByTestId('issues');
      await issues.waitFor();
      t.match(await issues.textContent(), '<script>alert(3)</script>', 'a validation error quoting markup is text');
      t.match(await page.getByTestId('conditions').textContent(), 'InvalidSpec');
      t.same(await conditionColours(page), { Ready: ['False', colour.bad], Reconciling: ['False', colour.ink], Stalled: ['True', colour.bad] }, 'an invalid tenant: Stalled=True and Ready=False in red');
      t.equal(await page.evaluate('document.scripts.length'), 1, 'the bundle is the only script');
      t.same(dialogs, [], 'no dialog was opened (alert never ran)');
    });

    await t.test('a commit shows UPDATING then ACTIVE in the fleet view, live, without a reload', async (t) => {
      await page.goto(`${h.url}/#/`);
      await rowStatus(page, 'globex', 'ACTIVE').waitFor();
      await page.getByTestId('live-state').filter({ hasText: 'live' }).waitFor();
      await page.evaluate('window.__sameDocument = true');
      const release = h.provider.hold('globex', 'deploy');
      const commit = await bumpStorage(h.repo, 'globex');
      await h.daemon.poll('test');
      await rowStatus(page, 'globex', 'UPDATING').waitFor({ timeout: 10_000 });
      await page.locator('tr[data-tenant="globex"] td.sha', { hasText: commit.slice(0, 8) }).first().waitFor();
      t.pass('the desired commit is the new one');
      await page.locator('tr[data-tenant="globex"] [data-testid="phase"]', { hasText: 'Deploy' }).waitFor();
      await page.locator('tr[data-tenant="globex"] td.name', { hasText: 'Globex Corporation' }).waitFor();
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-fleet-updating.png') });
      await page.locator('.count[data-status="UPDATING"] .n', { hasText: /^1$/ }).waitFor();
      t.pass('the UPDATING count follows');
      release();
      await rowStatus(page, 'globex', 'ACTIVE').waitFor({ timeout: 10_000 });
      await h.daemon.whenIdle();
      t.equal(await page.evaluate('window.__sameDocument'), true, 'the page was not reloaded');
    });

    await t.test('the tenant view: spec, conditions, outputs, plan, history, and a live timeline with a failed phase and its retry', async (t) => {
      await page.click('a[href="#/tenants/initech"]');
      await page.getByTestId('tenant-status').filter({ hasText: 'ACTIVE' }).waitFor();
      await page.locator('[data-testid="timeline"] > li[data-outcome="succeeded"]').waitFor();
      await page.getByTestId('spec').waitFor();
      t.match(await page.getByTestId('spec').textContent(), /tenantId: initech[\s\S]*storageGb: 20/, 'the spec as committed');
      t.match(await page.getByTestId('conditions').textContent(), /Ready.*True.*ReconciliationSucceeded/);
      t.same(await conditionColours(page), { Ready: ['True', colour.ok], Reconciling: ['False', colour.ink], Stalled: ['False', colour.ink] }, 'a healthy tenant: Ready=True in green, nothing else coloured');
      t.ok((await page.getByTestId('outputs').textContent())?.includes('tenant-initech'), 'outputs');
      t.match(await page.getByTestId('plan').textContent(), /create/, 'the last plan');
      t.match(await page.getByTestId('plan-digest').textContent(), /^sha256:[0-9a-f]{64}$/, 'and its digest');
      t.equal(await page.locator('[data-testid="timeline"] > li').count(), 1, 'one reconcile so far');
      t.equal(await page.locator('[data-testid="timeline"] .bar-phase').count(), 6, 'a bar per phase (Request … Verify)');

      // The first Deploy fails (a retryable error whose message carries markup), the retry is held open.
      h.provider.failOnce('initech', 'deploy', 'quota <b>exceeded</b>');
      const release = h.provider.hold('initech', 'deploy');
      await bumpStorage(h.repo, 'initech');
      await h.daemon.poll('test');
      const newest = page.locator('[data-testid="timeline"] > li').first();
      await newest.locator('.bar-failed[data-phase="Deploy"]').waitFor({ timeout: 10_000 });
      await newest.locator('.bar.retry.open[data-phase="Deploy"]').waitFor({ timeout: 10_000 });
      await page.getByTestId('tenant-status').filter({ hasText: 'UPDATING' }).waitFor();
      await page.locator('[data-testid="conditions"] tr[data-type="Reconciling"][data-tone="progressing"]').waitFor();
      t.match(await conditionColours(page), { Reconciling: ['True', colour.busy] }, 'a reconcile in progress in blue');
      t.equal(await newest.getAttribute('data-outcome'), 'running');
      t.match(await newest.locator('.failures').textContent(), 'E_TEST_INJECTED — quota <b>exceeded</b>', 'the error is text');
      t.equal(await newest.locator('.bar-backoff').count(), 1, 'the wait before the retry is drawn');
      release();
      await page.getByTestId('tenant-status').filter({ hasText: 'ACTIVE' }).waitFor({ timeout: 10_000 });
      await newest.and(page.locator('[data-outcome="succeeded"]')).waitFor({ timeout: 10_000 });
      await page.getByTestId('spec').filter({ hasText: 'storageGb: 28' }).waitFor();
      const history = (await page.getByTestId('transitions').textContent()) ?? '';
      t.match(history, /FAILED\/Deploy/, 'the full history has the failure');
      t.match(history, /retry:1/, 'and the retry');
      t.equal(await page.locator('b').count(), 0, 'no markup from the error message');
      await h.daemon.whenIdle();
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-tenant.png'), fullPage: true });
    });

    await t.test('a plan awaiting approval shows the digest to approve and says so', async (t) => {
      const text = await fsp.readFile(path.join(h.repo, 'tenants', 'initech.yaml'), 'utf8');
      await commitFiles(h.repo, { 'tenants/initech.yaml': text.replace(/^ {2}suspend: false$/m, '  suspend: false\n  approval: manual').replace(/storageGb: (\d+)/, 'storageGb: 30') }, 'initech: approve plans');
      await h.daemon.poll('test');
      await page.getByTestId('awaiting-approval').waitFor({ timeout: 10_000 });
      const digest = h.daemon.store.get('initech')?.lastPlan?.digest as string;
      t.match(digest, /^sha256:[0-9a-f]{64}$/);
      await page.getByTestId('plan-digest').filter({ hasText: digest }).waitFor();
      t.pass('the digest the daemon waits for is shown');
      const res = await fetch(`${h.url}/api/v1/infrastructure/tenants/initech/approve`, {
        method: 'POST',
        headers: { Authorization: 'Bearer admin', 'Content-Type': 'application/json' },
        body: JSON.stringify({ planDigest: digest }),
      });
      t.equal(res.status, 202);
      await page.getByTestId('awaiting-approval').waitFor({ state: 'detached', timeout: 10_000 });
      await page.getByTestId('tenant-status').filter({ hasText: 'ACTIVE' }).waitFor({ timeout: 10_000 });
      await page.getByTestId('spec').filter({ hasText: 'storageGb: 30' }).waitFor();
      await h.daemon.whenIdle();
    });

    await t.test('a lost connection is shown and resumed with Last-Event-ID; updates keep coming', async (t) => {
      await page.goto(`${h.url}/#/`);
      await page.getByTestId('live-state').filter({ hasText: 'live' }).waitFor();
      const resumed: Array<string | undefined> = [];
      page.on('request', (r) => {
        if (new URL(r.url()).pathname === '/api/v1/events') resumed.push(r.headers()['last-event-id']);
      });
      await h.restartApi(async () => {
        await page.getByTestId('connection-banner').filter({ hasText: 'Connection lost — reconnecting' }).waitFor({ timeout: 5000 });
      });
      await page.getByTestId('connection-banner').waitFor({ state: 'detached', timeout: 20_000 });
      t.ok(resumed.length >= 1 && resumed.every((id) => id !== undefined && /^\d+$/.test(id)), `reconnected with Last-Event-ID (${resumed.join(', ')})`);
      const release = h.provider.hold('acme-corp', 'deploy');
      await bumpStorage(h.repo, 'acme-corp');
      await h.daemon.poll('test');
      await rowStatus(page, 'acme-corp', 'UPDATING').waitFor({ timeout: 10_000 });
      release();
      await rowStatus(page, 'acme-corp', 'ACTIVE').waitFor({ timeout: 10_000 });
      await h.daemon.whenIdle();
    });

    await t.test('signing out forgets the token', async (t) => {
      t.equal(await page.evaluate("sessionStorage.getItem('tenantd.dashboard.token')"), 'reader', 'kept for the session only');
      t.equal(await page.evaluate('localStorage.length'), 0, 'never in localStorage');
      await page.click('text=Sign out');
      await page.locator('#token').waitFor();
      t.equal(await page.evaluate('sessionStorage.length'), 0);
      t.equal(await page.locator('table').count(), 0);
    });

    t.same(problems, [], 'no CSP violation, console error or page error during the whole session');
    t.same(dialogs, [], 'no dialogs');
    await publishScreenshots(t);
  });
}

// ---------------------------------------------------------------------------------------------

const rowStatus = (page: Page, id: string, status: string) => page.locator(`tr[data-tenant="${id}"] [data-testid="status"]`, { hasText: new RegExp(`^${status}$`) });
/** Polls (from node: the page's CSP rightly forbids the eval that waitForFunction needs) until the rows are `ids`. */
async function rowsAre(page: Page, ids: string[], timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  let rows: string[] = [];
  while (Date.now() < deadline) {
    rows = await tenantRows(page);
    if (JSON.stringify(rows) === JSON.stringify(ids)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`rows are ${JSON.stringify(rows)}, expected ${JSON.stringify(ids)}`);
}

const statusOf = (url: string, headers: Record<string, string>): Promise<number> =>
  new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });

const pick = (ids: string[]): Record<string, string> => Object.fromEntries(ids.map((id) => [id, EXPECTED[id] as string]));
const shownStatuses = async (page: Page): Promise<Record<string, string>> =>
  Object.fromEntries(
    (await page.evaluate(
      "[...document.querySelectorAll('tbody tr[data-tenant]')].map((r) => [r.getAttribute('data-tenant'), r.querySelector('[data-testid=status]').textContent])",
    )) as Array<[string, string]>,
  );

const tenantRows = async (page: Page): Promise<string[]> =>
  (await page.evaluate("[...document.querySelectorAll('tbody tr[data-tenant]')].map((r) => r.getAttribute('data-tenant'))")) as string[];

async function openPage(browser: Browser): Promise<{ page: Page; problems: string[]; dialogs: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const problems: string[] = [];
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    const text = msg.text();
    // Failed API calls during the deliberate outage and the 401 of a wrong token are expected network errors.
    if (msg.type() === 'error' && !/Failed to load resource|net::ERR_|status of 401/.test(text)) problems.push(`console: ${text}`);
    if (/Content Security Policy/i.test(text)) problems.push(`csp: ${text}`);
  });
  return { page, problems, dialogs };
}

async function signIn(page: Page, h: DashboardHarness, token: string): Promise<void> {
  await page.goto(h.url);
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.locator('table[data-testid="tenants"]').waitFor();
}

async function staticChecks(t: Test, h: DashboardHarness): Promise<void> {
  const index = await fetch(`${h.url}/`);
  t.equal(index.status, 200);
  t.equal(index.headers.get('content-security-policy'), DASHBOARD_CSP, 'CSP on the page');
  t.equal(index.headers.get('cache-control'), 'no-cache', 'index.html is revalidated');
  t.match(index.headers.get('content-type'), /^text\/html/);
  t.equal(index.headers.get('x-content-type-options'), 'nosniff');
  const html = await index.text();
  t.notMatch(html, /<script>|<style|\sstyle=|\son[a-z]+=/i, 'no inline script, style or handler');
  for (const id of Object.keys(EXPECTED)) t.notMatch(html, id, 'no tenant data in the page');
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1] as string);
  t.equal(assets.length, 3, `script, stylesheet, icon: ${assets.join(' ')}`);
  for (const a of assets) {
    t.match(a, /-[A-Za-z0-9]{8,}\.(js|css|svg)$/, `${a} has a content hash`);
    const res = await fetch(`${h.url}${a}`);
    t.equal(res.status, 200, a);
    t.equal(res.headers.get('content-security-policy'), DASHBOARD_CSP, `CSP on ${a}`);
    t.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable', `${a} is cached for a year`);
    const etag = res.headers.get('etag') as string;
    // node:http, not fetch: fetch adds Cache-Control: no-cache to conditional requests.
    t.equal(await statusOf(`${h.url}${a}`, { 'If-None-Match': etag }), 304, `${a} revalidates`);
  }
  t.match((await fetch(`${h.url}${assets.find((a) => a.endsWith('.js'))}`)).headers.get('content-type'), /^text\/javascript/);
  const missing = await fetch(`${h.url}/assets/nope-123.js`);
  t.equal(missing.status, 404, 'an unknown asset is a 404');
  t.equal((await fetch(`${h.url}/index.html`)).status, 200);
  const head = await fetch(`${h.url}/`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal((await fetch(`${h.url}/`, { method: 'POST' })).status >= 400, true, 'only GET and HEAD');
  t.equal((await fetch(`${h.url}/api/v1/infrastructure/tenants`)).status, 401, 'the data itself needs a token');
}

/** docs/screenshots/ holds one screenshot of each view for the README; refreshed with TENANTD_UPDATE_SCREENSHOTS=1 (or when missing). */
async function publishScreenshots(t: Test): Promise<void> {
  const docs = path.join(ROOT, 'docs', 'screenshots');
  await fsp.mkdir(docs, { recursive: true });
  for (const [from, to] of [
    ['dashboard-fleet-updating.png', 'fleet.png'],
    ['dashboard-tenant.png', 'tenant.png'],
  ] as const) {
    const target = path.join(docs, to);
    const exists = await fsp.stat(target).then(
      () => true,
      () => false,
    );
    if (!exists || process.env['TENANTD_UPDATE_SCREENSHOTS'] === '1') await fsp.copyFile(path.join(ARTIFACTS, from), target);
    t.ok((await fsp.stat(path.join(ARTIFACTS, from))).size > 10_000, `${from} saved`);
  }
}
