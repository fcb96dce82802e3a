/**
 * Alerts: the rules that turn events into one alert per change of a tenant's standing, their
 * delivery to a real receiver on 127.0.0.1 (retries, rate limit), the notifications file, and a
 * real daemon whose failing, stalled and invalid tenants reach the receiver exactly once each.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { SimulatedClock } from '../bench/lib/sim-clock.js';
import { TenantdError } from '../core/errors.js';
import type { ReconciliationEvent, ReconciliationEventInput } from '../core/events/events.js';
import { AlertRules, standingAfter, type Alert, type Standing, type StandingRecord } from '../core/notify/alert-rules.js';
import type { TenantStatus } from '../core/phases.js';
import { ALERT_LEDGER_FILE, AlertLedger } from '../daemon/alert-ledger.js';
import { runCli } from '../daemon/cli.js';
import type { TenantdDaemon } from '../daemon/daemon.js';
import { loadNotificationsConfig, type ReceiverConfig } from '../daemon/notifications-config.js';
import { MAX_RETRY_AFTER_MS, Notifier, startAlerting, type DeliveryFailure, type NotifierDeps, type PostResponse } from '../daemon/notifier.js';
import { retryAfterMs } from '../daemon/retry-after.js';
import { startReceiver } from './helpers/alert-receiver.js';
import { openDaemon } from './helpers/daemon.js';
import { ScriptedProvider } from './helpers/fake-provider.js';
import { commitFiles, initRepo } from './helpers/git-fixtures.js';
import { waitFor } from './helpers/process.js';
import { prng } from './helpers/prng.js';
import { tenantYaml } from './helpers/tenants.js';

// ---- rules ----------------------------------------------------------------------------------

let tick = 0;
const ev = (e: ReconciliationEventInput): ReconciliationEvent => ({ ...e, time: new Date(Date.UTC(2030, 0, 1) + tick++ * 1000).toISOString() }) as ReconciliationEvent;
const phaseFailed = (tenantId: string, attempt: number, nextAttemptAt: string | null = '2030-01-01T01:00:00.000Z', kind = 'retryable'): ReconciliationEvent =>
  ev({ type: 'PhaseFailed', tenantId, operationId: 'op', phase: 'Apply', code: 'E_PROVIDER', kind, message: 'apply failed on purpose', attempt, nextAttemptAt });
const statusTo = (tenantId: string, to: TenantStatus, from: TenantStatus | null = null): ReconciliationEvent =>
  ev({ type: 'StatusChanged', tenantId, from, to, reason: 'commit:abc' });
/** A failed attempt as the reconciler publishes it: PhaseFailed, then the status going to FAILED. */
const failedAttempt = (tenantId: string, attempt: number, next?: string | null): ReconciliationEvent[] => [phaseFailed(tenantId, attempt, next), statusTo(tenantId, 'FAILED', 'PROVISIONING'), statusTo(tenantId, 'PROVISIONING', 'FAILED')];
const run = (rules: AlertRules, events: ReconciliationEvent[]): Alert[] => events.flatMap((e) => rules.feed(e));
const names = (alerts: Array<{ type: string; tenantId: string | null }>): string[] => alerts.map((a) => `${a.type} ${a.tenantId ?? 'fleet'}`);

t.test('rules: Failed once from the Nth retried failure, Recovered once when healthy again', async (t) => {
  const rules = new AlertRules();
  const start = ev({ type: 'ReconcileStarted', tenantId: 'acme', operationId: 'op', operation: 'create', trigger: 'commit:c1', commit: 'c1'.padEnd(40, '0') });
  const alerts = run(rules, [start, ...failedAttempt('acme', 1), ...failedAttempt('acme', 2)]);
  t.same(alerts, [], 'attempts below failedAfterRetries (3) are routine');
  const third = run(rules, [...failedAttempt('acme', 3), ...failedAttempt('acme', 4), ...failedAttempt('acme', 5)]);
  t.same(names(third), ['Failed acme'], 'one alert for the standing, none for the failures after it');
  t.same(Object.keys(third[0] as Alert), ['attempt', 'code', 'commit', 'message', 'reason', 'tenantId', 'time', 'type'], 'sorted keys');
  t.match(third[0], { attempt: 3, code: 'E_PROVIDER', reason: 'ProviderFailed', commit: 'c1'.padEnd(40, '0'), message: /Apply failed: apply failed on purpose \(attempt 3, next at 2030-/ });
  const back = run(rules, [statusTo('acme', 'ACTIVE', 'PROVISIONING'), statusTo('acme', 'UPDATING', 'ACTIVE'), statusTo('acme', 'ACTIVE', 'UPDATING')]);
  t.same(names(back), ['Recovered acme'], 'recovered once; a healthy tenant changing status is no news');
  t.match(back[0], { reason: 'ACTIVE', message: /after being failing/ });

  const quiet = new AlertRules();
  t.same(run(quiet, [...failedAttempt('globex', 1), ...failedAttempt('globex', 2), statusTo('globex', 'ACTIVE')]), [], 'failures below N then success: nothing to recover from');
  t.same(names(run(new AlertRules({ failedAfterRetries: 1 }), failedAttempt('x', 1))), ['Failed x'], 'failedAfterRetries: 1 alerts on the first failure');
  t.same(run(new AlertRules({ failedAfterRetries: 1 }), [phaseFailed('w', 5, '2030-01-01T00:10:00.000Z', 'waiting')]), [], 'waiting on a dependency is no failure');
});

t.test('rules: Stalled when no retry is left or the file cannot be read; Invalid; each once per standing', async (t) => {
  const rules = new AlertRules();
  const stalled = run(rules, [...failedAttempt('acme', 1, null), ...failedAttempt('acme', 2, null)]);
  t.same(names(stalled), ['Stalled acme']);
  t.match(stalled[0], { reason: 'ProviderFailed', code: 'E_PROVIDER', attempt: 1, message: /not retried/ });
  t.same(names(run(rules, [...failedAttempt('b', 3), ...failedAttempt('b', 4, null)])), ['Failed b', 'Stalled b'], 'failing, then stalled: two standings');
  t.same(names(run(rules, [statusTo('u', 'FAILED', 'ACTIVE'), statusTo('u', 'FAILED', 'FAILED')])), ['Stalled u'], 'FAILED with no phase failed: the source is unreadable');
  t.same(
    names(run(rules, [statusTo('i', 'INVALID', 'ACTIVE'), statusTo('i', 'INVALID', 'INVALID'), statusTo('i', 'SUSPENDED', 'INVALID'), statusTo('j', 'INVALID'), statusTo('j', 'DEPROVISIONED', 'INVALID')])),
    ['Invalid i', 'Recovered i', 'Invalid j', 'Recovered j'],
    'SUSPENDED and DEPROVISIONED are healthy too',
  );
  const book = ev({ type: 'BookkeepingFailed', tenantId: 'k', code: 'E_STATE_WRITE', message: 'ENOSPC', attempt: 3, nextAttemptAt: '2030-01-01T01:00:00.000Z' });
  t.same(names(run(rules, [book])), ['Failed k'], 'a bookkeeping failure retried N times is a failure too');
});

t.test('rules: seed() starts from the records, sends nothing, and forgets what was held before', async (t) => {
  const retry = (attempt: number, nextAttemptAt: string | null, kind = 'retryable'): StandingRecord['retry'] => ({ attempt, nextAttemptAt, lastError: { code: 'E_PROVIDER', kind, message: 'no', phase: 'Apply' } });
  const next = '2030-01-01T01:00:00.000Z';
  const rules = new AlertRules();
  t.same(names(run(rules, failedAttempt('old', 3))), ['Failed old'], 'failing before the seed');
  rules.seed([
    { tenantId: 'failing', status: 'FAILED', retry: retry(3, next) },
    { tenantId: 'early', status: 'FAILED', retry: retry(2, next) },
    { tenantId: 'stalled', status: 'FAILED', retry: retry(1, null) },
    { tenantId: 'unreadable', status: 'FAILED', retry: null },
    { tenantId: 'invalid', status: 'INVALID', retry: null },
    { tenantId: 'book', status: 'ACTIVE', retry: retry(4, next) },
    { tenantId: 'waiting', status: 'PROVISIONING', retry: retry(5, next, 'waiting') },
    { tenantId: 'fine', status: 'ACTIVE', retry: null },
  ]);
  const again = run(rules, [...failedAttempt('failing', 4), ...failedAttempt('stalled', 2, null), statusTo('unreadable', 'FAILED', 'FAILED'), statusTo('invalid', 'INVALID', 'INVALID'), ...failedAttempt('early', 3)]);
  t.same(names(again), ['Failed early'], 'the same standing again is no news; below N the Nth attempt still alerts');
  const healthy = ['failing', 'stalled', 'unreadable', 'invalid', 'book', 'waiting', 'fine', 'old'].map((id) => statusTo(id, 'ACTIVE', 'PROVISIONING'));
  t.same(names(run(rules, healthy)), ['Recovered failing', 'Recovered stalled', 'Recovered unreadable', 'Recovered invalid', 'Recovered book'], 'each seeded trouble recovers once; a tenant failing before the seed and absent from it is forgotten');
  const strict = new AlertRules({ failedAfterRetries: 5 });
  strict.seed([{ tenantId: 'failing', status: 'FAILED', retry: retry(3, next) }]);
  t.same(names(run(strict, [...failedAttempt('failing', 5)])), ['Failed failing'], 'attempts count against the configured failedAfterRetries');
});

t.test('rules: seed() with what the receivers were told catches up on alerts lost in a crash', async (t) => {
  const retry = (attempt: number, nextAttemptAt: string | null, kind = 'retryable'): StandingRecord['retry'] => ({ attempt, nextAttemptAt, lastError: { code: 'E_PROVIDER', kind, message: 'no', phase: 'Apply' } });
  const next = '2030-01-01T01:00:00.000Z';
  const at = '2030-01-01T00:30:00.000Z';
  const records: StandingRecord[] = [
    { tenantId: 'lost-failed', status: 'FAILED', retry: retry(3, next), updatedAt: at },
    { tenantId: 'lost-stalled', status: 'FAILED', retry: retry(1, null), updatedAt: at },
    { tenantId: 'lost-invalid', status: 'INVALID', retry: null, hold: { reason: 'InvalidSpec', message: 'tenants/lost-invalid.yaml: spec.tier: must be one of …' }, updatedAt: at },
    { tenantId: 'lost-recovered', status: 'ACTIVE', retry: null, updatedAt: at },
    { tenantId: 'told-failing', status: 'FAILED', retry: retry(4, next), updatedAt: at },
    { tenantId: 'worse', status: 'FAILED', retry: retry(2, null), updatedAt: at },
    { tenantId: 'waiting', status: 'PROVISIONING', retry: retry(6, next, 'waiting'), updatedAt: at },
    { tenantId: 'fine', status: 'ACTIVE', retry: null, updatedAt: at },
  ];
  const told = new Map<string, Standing>([
    ['lost-recovered', 'failing'],
    ['told-failing', 'failing'],
    ['worse', 'failing'],
    ['waiting', 'failing'],
  ]);
  const rules = new AlertRules();
  const caught = rules.seed(records, told);
  t.same(names(caught), ['Failed lost-failed', 'Stalled lost-stalled', 'Invalid lost-invalid', 'Recovered lost-recovered', 'Stalled worse'], 'one alert for each tenant that stands elsewhere than it was told');
  t.match(caught[0], { code: 'E_PROVIDER', reason: 'ProviderFailed', attempt: 3, time: at, message: /^Apply failed: no \(attempt 3, next at 2030-01-01T01:00:00\.000Z\)$/ });
  t.match(caught[1], { message: /not retried: a person must act/ });
  t.match(caught[2], { reason: 'InvalidSpec', message: /spec\.tier/ }, 'the hold says why it is invalid');
  t.match(caught[3], { reason: 'ACTIVE', message: /after being failing/ });
  t.same(rules.standings(), new Map([['lost-failed', 'failing'], ['lost-stalled', 'stalled'], ['lost-invalid', 'invalid'], ['told-failing', 'failing'], ['worse', 'stalled'], ['waiting', 'failing']]), 'waiting on a dependency stays where it was told');
  t.same(names(run(rules, failedAttempt('lost-failed', 4))), [], 'and from there on, no second Failed');
  t.same(names(run(rules, [statusTo('waiting', 'ACTIVE', 'PROVISIONING')])), ['Recovered waiting'], 'the one that waited gets its Recovered when healthy');
  t.same(new AlertRules().seed(records), [], 'without a ledger the records are taken as told');
  t.same(standingAfter({ type: 'DeletionHeld' }), null, 'fleet alerts leave no tenant standing');
});

t.test('rules: one alert per deletion hold and one when it ends, for the fleet', async (t) => {
  const rules = new AlertRules();
  const held = ev({ type: 'DeletionHeld', commit: 'd'.repeat(40), previous: null, reasons: ['threshold'], tenants: 20, added: 20, limit: 10, fleet: 100, message: '20 deletions held' });
  const ended = ev({ type: 'DeletionHoldEnded', commit: 'd'.repeat(40), how: 'approved', by: 'alice', tenants: 20 });
  const alerts = run(rules, [held, { ...held }, ended]);
  t.same(names(alerts), ['DeletionHeld fleet', 'DeletionHoldEnded fleet']);
  t.match(alerts, [
    { tenantId: null, reason: 'threshold', commit: 'd'.repeat(40), message: '20 deletions held' },
    { reason: 'approved', message: /approved by alice \(20 tenant/ },
  ]);
});

// ---- delivery to a receiver on 127.0.0.1 ----------------------------------------------------

const receiver = (url: string, patch: Partial<ReceiverConfig> = {}): ReceiverConfig => ({ name: 'ops', url, format: 'webhook', alerts: ['Failed', 'Stalled', 'Invalid', 'Recovered', 'DeletionHeld', 'DeletionHoldEnded'], maxPerMinute: 30, ...patch });
const alert = (tenantId: string, type: Alert['type'] = 'Failed'): Alert => ({ type, tenantId, time: '2030-01-01T00:00:00.000Z', reason: 'ProviderFailed', code: 'E_PROVIDER', message: 'Apply failed', attempt: 3 });

function notifierFor(receivers: ReceiverConfig[], deps: NotifierDeps = {}): { notifier: Notifier; failures: DeliveryFailure[] } {
  const failures: DeliveryFailure[] = [];
  const notifier = new Notifier(receivers, { retryDelaysMs: [5, 10], onDeliveryFailed: (f) => failures.push(f), ...deps });
  return { notifier, failures };
}

/** A port that was just free and has nobody listening on it now. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

t.test('delivery: the webhook gets the alert as JSON, Slack a one-line text', async (t) => {
  const hook = await startReceiver(t);
  const slack = await startReceiver(t);
  const { notifier, failures } = notifierFor([receiver(hook.url), receiver(slack.url, { name: 'chat', format: 'slack', alerts: ['Failed'] })]);
  notifier.notify(alert('acme'));
  notifier.notify(alert('acme', 'Recovered'));
  await notifier.idle();
  t.same(failures, []);
  t.same(hook.received.map((r) => r.body), [alert('acme'), alert('acme', 'Recovered')], 'every alert, in order');
  t.match(hook.received[0], { path: '/hooks/secret-token', contentType: 'application/json' });
  t.equal(slack.received.length, 1, 'the Slack receiver takes only Failed');
  t.same(Object.keys(slack.received[0]?.body ?? {}), ['text']);
  t.match(slack.received[0]?.body.text, /^:warning: tenantd Failed acme: Apply failed \[E_PROVIDER\]$/);
});

t.test('delivery: retried after a 500 and a 429, not after a 400; a failure names the receiver, never the URL', async (t) => {
  const hook = await startReceiver(t, [500, 429, 200, 400, 500, 500, 500]);
  const { notifier, failures } = notifierFor([receiver(hook.url)]);
  for (const id of ['a', 'b', 'c']) notifier.notify(alert(id));
  await notifier.idle();
  t.same(hook.received.map((r) => r.body.tenantId), ['a', 'a', 'a', 'b', 'c', 'c', 'c'], 'a: 500, 429, 200; b: 400 once; c: 500 three times');
  t.same(failures, [
    { receiver: 'ops', alert: 'Failed', tenantId: 'b', attempts: 1, error: 'HTTP 400' },
    { receiver: 'ops', alert: 'Failed', tenantId: 'c', attempts: 3, error: 'HTTP 500' },
  ]);

  const dead = notifierFor([receiver(`http://127.0.0.1:${await closedPort()}/hooks/secret-token`)]);
  dead.notifier.notify(alert('d'));
  await dead.notifier.idle();
  t.match(dead.failures, [{ receiver: 'ops', attempts: 3, error: 'ECONNREFUSED' }]);
  t.notMatch(JSON.stringify(dead.failures), /secret-token|127\.0\.0\.1/);
});

t.test("delivery: a receiver's Retry-After is waited for when longer than the backoff, never past 60 s", async (t) => {
  const soon = new Date(Date.now() + 30_000).toUTCString();
  const hook = await startReceiver(t, [
    { status: 429, headers: { 'Retry-After': '2' } },
    { status: 503, headers: { 'Retry-After': soon } },
    200,
    { status: 429, headers: { 'Retry-After': '86400' } },
    { status: 429, headers: { 'Retry-After': 'soon-ish' } },
    200,
  ]);
  const waits: number[] = [];
  const { notifier, failures } = notifierFor([receiver(hook.url)], { sleep: async (ms) => void waits.push(ms) });
  notifier.notify(alert('a'));
  notifier.notify(alert('b'));
  await notifier.idle();
  t.same(failures, []);
  t.same(hook.received.map((r) => r.body.tenantId), ['a', 'a', 'a', 'b', 'b', 'b']);
  t.equal(waits[0], 2000, 'Retry-After: 2 (seconds) beats the 5 ms backoff');
  t.ok((waits[1] ?? 0) > 20_000 && (waits[1] ?? 0) <= 30_000, `an HTTP-date is waited for until then (${waits[1]} ms)`);
  t.equal(waits[2], MAX_RETRY_AFTER_MS, 'a day is cut to the 60 s bound');
  t.equal(waits[3], 10, 'an unreadable value keeps the backoff');
});

t.test('Retry-After: seconds, HTTP-dates, and what is not one', async (t) => {
  const now = Date.UTC(2030, 0, 1, 12, 0, 0);
  t.equal(retryAfterMs('120', now), 120_000);
  t.equal(retryAfterMs(' 0 ', now), 0);
  t.equal(retryAfterMs('Tue, 01 Jan 2030 12:00:30 GMT', now), 30_000);
  t.equal(retryAfterMs('Tue, 01 Jan 2030 11:00:00 GMT', now), 0, 'a date in the past: at once');
  for (const bad of [null, undefined, '', '-5', '1.5', 'soon', '12:00:30']) t.equal(retryAfterMs(bad, now), undefined, `${JSON.stringify(bad)}: not a Retry-After`);
});

t.test('delivery: over maxPerMinute, alerts are counted into the next one delivered', async (t) => {
  const hook = await startReceiver(t);
  let now = Date.UTC(2030, 0, 1);
  const { notifier, failures } = notifierFor([receiver(hook.url, { maxPerMinute: 2 })], { now: () => now });
  for (const id of ['a', 'b', 'c', 'd', 'e']) notifier.notify(alert(id));
  await notifier.idle();
  t.same(hook.received.map((r) => r.body.tenantId), ['a', 'b'], 'two in the minute');
  now += 60_000;
  notifier.notify(alert('f'));
  await notifier.idle();
  t.same(hook.received.map((r) => [r.body.tenantId, r.body.suppressed]), [['a', undefined], ['b', undefined], ['f', 3]], 'the next alert says 3 were suppressed');
  t.same(failures, []);
});

t.test('delivery: stop() abandons what it cannot deliver within its bound', async (t) => {
  const hook = await startReceiver(t);
  const hang = (_url: string, _body: string, signal: AbortSignal): Promise<PostResponse> => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
  const { notifier, failures } = notifierFor([receiver(hook.url)], { post: hang });
  notifier.notify(alert('a'));
  notifier.notify(alert('b'));
  t.equal(await notifier.stop(20), 2, 'the one in flight and the one queued');
  t.match(failures, [{ tenantId: 'a', error: 'aborted' }]);
  notifier.notify(alert('c'));
  await notifier.idle();
  t.equal(hook.received.length, 0, 'nothing is taken after stop');
});

// ---- the notifications file ------------------------------------------------------------------

async function loadText(t: Test, text: string, env: NodeJS.ProcessEnv = {}): Promise<{ file: string; result: Promise<unknown> }> {
  const file = path.join(t.testdir(), 'notifications.yaml');
  await fsp.writeFile(file, text);
  return { file, result: loadNotificationsConfig(file, env) };
}

t.test('the notifications file: defaults, urlFromEnv, and E_CONFIG errors naming file and field', async (t) => {
  const good = await loadText(t, 'receivers:\n  - name: ops\n    urlFromEnv: OPS_HOOK\n  - name: chat\n    url: https://hooks.slack.test/T/B/x\n    format: slack\n    alerts: [Stalled, Invalid]\n    maxPerMinute: 5\n', { OPS_HOOK: 'http://127.0.0.1:9/h' });
  t.same(await good.result, {
    failedAfterRetries: 3,
    receivers: [
      { name: 'ops', url: 'http://127.0.0.1:9/h', format: 'webhook', alerts: ['Failed', 'Stalled', 'Invalid', 'Recovered', 'DeletionHeld', 'DeletionHoldEnded'], maxPerMinute: 30 },
      { name: 'chat', url: 'https://hooks.slack.test/T/B/x', format: 'slack', alerts: ['Stalled', 'Invalid'], maxPerMinute: 5 },
    ],
  });
  const r = (extra: string): string => `receivers:\n  - name: ops\n${extra}`;
  const cases: Array<[string, string | null]> = [
    ['receivers: [\n', null],
    ['- just a list\n', null],
    ['receivers: []\n', 'receivers'],
    ['failedAfterRetries: 0\nreceivers: []\n', 'failedAfterRetries'],
    ['recievers: []\n', 'recievers'],
    [r('    url: ftp://x/secret-token\n'), 'receivers[0].url'],
    [r('    url: http://x/a\n    urlFromEnv: X\n'), 'receivers[0].url'],
    [r('    urlFromEnv: MISSING_HOOK\n'), 'receivers[0].urlFromEnv'],
    [r('    url: http://x/a\n    format: teams\n'), 'receivers[0].format'],
    [r('    url: http://x/a\n    alerts: [Failed, Exploded]\n'), 'receivers[0].alerts'],
    [r('    url: http://x/a\n    maxPerMinute: 1.5\n'), 'receivers[0].maxPerMinute'],
    [r('    url: http://x/a\n    color: red\n'), 'receivers[0].color'],
    [`${r('    url: http://x/a\n')}  - name: ops\n    url: http://x/b\n`, 'receivers[1].name'],
  ];
  for (const [text, field] of cases) {
    const { file, result } = await loadText(t, text);
    const err = await result.then(() => null, (e: unknown) => e);
    t.ok(err instanceof TenantdError, `${JSON.stringify(text)} is refused`);
    t.match(err, { code: 'E_CONFIG', data: { file, field, reason: String } }, `field ${field}`);
    t.notMatch((err as Error).message, /secret-token/, 'the reason never quotes a URL');
  }
  const missing = path.join(t.testdir(), 'nope.yaml');
  await t.rejects(loadNotificationsConfig(missing, {}), { code: 'E_CONFIG', data: { file: missing, field: null, reason: /ENOENT/ } });
});

t.test('tenantd daemon exits 2 on a bad notifications file, before opening anything', async (t) => {
  const dir = t.testdir({ 'alerts.yaml': 'receivers:\n  - name: ops\n    format: webhook\n' });
  let err = '';
  const code = await runCli({
    argv: ['daemon', '--notifications-file', 'alerts.yaml', '--data-dir', 'data', '--poll', '0', '--port', '0', '--host', '127.0.0.1'],
    env: {},
    cwd: dir,
    out: () => undefined,
    err: (s) => void (err += s),
    stopSignal: new Promise(() => undefined),
  });
  t.equal(code, 2);
  t.match(err, /E_CONFIG: --notifications-file .*alerts\.yaml: receivers\[0\]\.url: give exactly one of url and urlFromEnv/);
  await t.rejects(fsp.stat(path.join(dir, 'data')), { code: 'ENOENT' }, 'no data dir was made');
});

// ---- end to end ------------------------------------------------------------------------------

const BROKEN = tenantYaml('broken').replace('"professional"', '"gold"');

t.test('a real daemon: each failing, stalled or invalid tenant reaches the receiver once per state change', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  await commitFiles(repo, { 'tenants/flaky.yaml': tenantYaml('flaky'), 'tenants/stuck.yaml': tenantYaml('stuck'), 'tenants/broken.yaml': BROKEN, 'tenants/fine.yaml': tenantYaml('fine') }, 'four tenants');
  const provider = new ScriptedProvider();
  let flakyFailures = 4;
  provider.hook = async (step, ctx) => {
    if (step !== 'apply') return;
    if (ctx.tenantId === 'flaky' && flakyFailures-- > 0) throw new TenantdError('E_PROVIDER', 'retryable', 'the cloud said no');
    if (ctx.tenantId === 'stuck') throw new TenantdError('E_QUOTA_EXCEEDED', 'stalled', 'quota exceeded');
  };
  const clock = new SimulatedClock();
  const { daemon } = await openDaemon(repo, path.join(dir, 'data'), ['--drift-interval', '0', '--gc-interval', '0', '--max-deletions', '0'], { provider, timers: clock, random: prng(7) });
  const hook = await startReceiver(t);
  const alerting = startAlerting({ failedAfterRetries: 3, receivers: [receiver(hook.url)] }, daemon, { retryDelaysMs: [5, 10] });
  t.teardown(async () => {
    await daemon.stop();
    await alerting.stop();
  });
  const settle = async (): Promise<void> => {
    await daemon.queue.whenIdle();
    await daemon.status.settled();
  };
  await daemon.start();
  await settle();
  await clock.advance(60 * 60_000, settle);
  await alerting.notifier.idle();

  t.equal(daemon.store.get('flaky')?.status, 'ACTIVE', 'flaky converged after 4 failures');
  t.equal(provider.count('apply', 'flaky'), 5);
  const got = hook.received.map((r) => `${r.body.type as string} ${r.body.tenantId as string}`);
  const of = (id: string): string[] => got.filter((x) => x.endsWith(` ${id}`));
  t.same(of('flaky'), ['Failed flaky', 'Recovered flaky'], 'one Failed (at attempt 3, not 4), one Recovered');
  t.same(of('stuck'), ['Stalled stuck']);
  t.same(of('broken'), ['Invalid broken']);
  t.same(of('fine'), [], 'a healthy tenant is no news');
  t.equal(got.length, 4, 'nothing else');
  t.match(hook.received.find((r) => r.body.type === 'Failed')?.body, { attempt: 3, code: 'E_PROVIDER', commit: /^[0-9a-f]{40}$/ });

  // Fixed: the broken file recovers; the stuck tenant stays stalled with no new alert.
  await commitFiles(repo, { 'tenants/broken.yaml': tenantYaml('broken') }, 'fix broken');
  await daemon.poll();
  await settle();
  await alerting.notifier.idle();
  t.same(hook.received.slice(4).map((r) => `${r.body.type as string} ${r.body.tenantId as string}`), ['Recovered broken']);

  // --max-deletions 0: removing a file is held (one fleet alert), restoring it ends the hold.
  const removed = await commitFiles(repo, { 'tenants/fine.yaml': null }, 'remove fine');
  await daemon.poll();
  await settle();
  await commitFiles(repo, { 'tenants/fine.yaml': tenantYaml('fine') }, 'restore fine');
  await daemon.poll();
  await settle();
  await alerting.notifier.idle();
  t.match(hook.received.slice(5).map((r) => r.body), [
    { type: 'DeletionHeld', tenantId: null, commit: removed },
    { type: 'DeletionHoldEnded', tenantId: null, reason: 'restored' },
  ]);
  t.equal(hook.received.length, 7, 'and nothing else');
});

for (const [how, withLedger] of [['restart', false], ['takeover', false], ['restart', true], ['takeover', true]] as const) {
  t.test(`a ${how}${withLedger ? ' (alert ledger)' : ''}: a tenant failing before it gets its Recovered from the next daemon, and no second Failed`, async (t) => {
    const dir = t.testdir();
    const repo = path.join(dir, 'repo');
    const data = path.join(dir, 'data');
    await initRepo(repo);
    await commitFiles(repo, { 'tenants/flaky.yaml': tenantYaml('flaky'), 'tenants/stuck.yaml': tenantYaml('stuck'), 'tenants/broken.yaml': BROKEN }, 'three tenants');
    const hook = await startReceiver(t);
    const config = { failedAfterRetries: 3, receivers: [receiver(hook.url)] };
    const flags = ['--drift-interval', '0', '--gc-interval', '0'];
    const clock = new SimulatedClock();
    let failApplies = Infinity;
    const provider = new ScriptedProvider();
    provider.hook = async (step, ctx) => {
      if (step !== 'apply') return;
      if (ctx.tenantId === 'flaky' && failApplies-- > 0) throw new TenantdError('E_PROVIDER', 'retryable', 'the cloud said no');
      if (ctx.tenantId === 'stuck') throw new TenantdError('E_QUOTA_EXCEEDED', 'stalled', 'quota exceeded');
    };
    const got = (): string[] => hook.received.map((r) => `${r.body.type as string} ${r.body.tenantId as string}`);
    // Each daemon its own ledger object on the shared data dir, as two processes would have.
    const ledger = (): AlertLedger | undefined => (withLedger ? new AlertLedger({ file: path.join(data, ALERT_LEDGER_FILE) }) : undefined);
    const openSecond = async (): Promise<{ daemon: TenantdDaemon; alerting: ReturnType<typeof startAlerting> }> => {
      const election = { fence: () => undefined, holdsLease: () => true, lease: 'tenantd/test', identity: 'second' };
      const { daemon } = await openDaemon(repo, data, flags, { provider, timers: clock, random: prng(8), ...(how === 'takeover' ? { election } : {}) });
      const alerting = startAlerting(config, daemon, { retryDelaysMs: [5, 10] }, ledger());
      t.teardown(async () => {
        await daemon.stop();
        await alerting.stop();
      });
      return { daemon, alerting };
    };
    // A standby is there from before the first daemon's failures: it must read them when it leads, not when it opened.
    const standby = how === 'takeover' ? await openSecond() : null;
    if (standby) await standby.daemon.startStandby();

    const first = (await openDaemon(repo, data, flags, { provider, timers: clock, random: prng(7) })).daemon;
    const firstAlerting = startAlerting(config, first, { retryDelaysMs: [5, 10] }, ledger());
    const settleFirst = async (): Promise<void> => {
      await first.queue.whenIdle();
      await first.status.settled();
    };
    await first.start();
    await settleFirst();
    while ((first.store.get('flaky')?.retry?.attempt ?? 0) < 4) await clock.advance(60_000, settleFirst);
    await first.stop();
    await firstAlerting.stop();
    t.same([...got()].sort(), ['Failed flaky', 'Invalid broken', 'Stalled stuck'], 'the first daemon: one alert per tenant in trouble');
    t.match(first.store.get('flaky'), { status: 'FAILED', retry: { attempt: 4, nextAttemptAt: /^2030-/ } }, 'still being retried when it stops');

    // While no daemon runs, the broken file is fixed. The next daemon fails flaky once more, then succeeds.
    await commitFiles(repo, { 'tenants/broken.yaml': tenantYaml('broken') }, 'fix broken');
    failApplies = 1;
    const { daemon: second, alerting: secondAlerting } = standby ?? (await openSecond());
    const settle = async (): Promise<void> => {
      await second.queue.whenIdle();
      await second.status.settled();
    };
    await (standby ? second.lead() : second.start());
    await settle();
    await clock.advance(60 * 60_000, settle);
    await secondAlerting.notifier.idle();

    t.equal(second.store.get('flaky')?.status, 'ACTIVE', 'flaky converged under the second daemon');
    t.equal(provider.count('apply', 'flaky'), 6, 'after a fifth failure (attempt 5), which sent nothing');
    t.same([...got().slice(3)].sort(), ['Recovered broken', 'Recovered flaky'], 'the second daemon: one Recovered each, no second Failed, stuck still stalled and silent');
  });
}

t.test('the alert ledger: what was told survives a restart; a missing or broken file means "take the records as told"', async (t) => {
  const dir = t.testdir({ 'broken.json': '{"told": [1]}' });
  const file = path.join(dir, ALERT_LEDGER_FILE);
  const errors: unknown[] = [];
  const ledger = new AlertLedger({ file, onError: (e) => errors.push(e) });
  t.equal(ledger.read(), null, 'no file yet');
  ledger.reset(new Map<string, Standing>([['a', 'failing'], ['b', 'ok']]));
  ledger.record('c', 'invalid');
  ledger.record('a', 'ok');
  ledger.record('d', 'stalled');
  await ledger.flush();
  t.same(JSON.parse(await fsp.readFile(file, 'utf8')), { version: 1, told: { c: 'invalid', d: 'stalled' } }, 'only tenants in trouble, sorted');
  t.same(new AlertLedger({ file }).read(), new Map([['c', 'invalid'], ['d', 'stalled']]), 'read back by the next daemon');
  t.equal(new AlertLedger({ file: path.join(dir, 'broken.json'), onError: (e) => errors.push(e) }).read(), null, 'a broken file starts over from the records');
  t.equal(errors.length, 1, 'and says so');
  t.same(await fsp.readdir(dir), ['alerts-told.json', 'broken.json'], 'no temporary file left');

  const refused: unknown[] = [];
  const fenced = new AlertLedger({ file, fence: () => { throw new TenantdError('E_NOT_LEADER', 'waiting', 'not the leader'); }, onError: (e) => refused.push(e) });
  fenced.record('e', 'failing');
  await fenced.flush();
  t.match(refused, [{ code: 'E_NOT_LEADER' }], 'a replica that does not lead writes nothing');
  t.same(new AlertLedger({ file }).read(), new Map([['c', 'invalid'], ['d', 'stalled']]));
});

t.test('an alert raised and not delivered before the daemon stopped is sent by the next one (the ledger), once', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  const data = path.join(dir, 'data');
  await initRepo(repo);
  await commitFiles(repo, { 'tenants/stuck.yaml': tenantYaml('stuck'), 'tenants/broken.yaml': BROKEN, 'tenants/fine.yaml': tenantYaml('fine') }, 'three tenants');
  const provider = new ScriptedProvider();
  provider.hook = async (step, ctx) => {
    if (step === 'apply' && ctx.tenantId === 'stuck') throw new TenantdError('E_QUOTA_EXCEEDED', 'stalled', 'quota exceeded');
  };
  const flags = ['--drift-interval', '0', '--gc-interval', '0'];
  const hook = await startReceiver(t);
  const config = { failedAfterRetries: 3, receivers: [receiver(hook.url)] };
  const ledger = (): AlertLedger => new AlertLedger({ file: path.join(data, ALERT_LEDGER_FILE) });
  const run = async (deps: NotifierDeps, boundMs?: number): Promise<number> => {
    const clock = new SimulatedClock();
    const { daemon } = await openDaemon(repo, data, flags, { provider, timers: clock, random: prng(3) });
    const alerting = startAlerting(config, daemon, { retryDelaysMs: [5, 10], ...deps }, ledger());
    await daemon.start();
    await daemon.queue.whenIdle();
    await daemon.status.settled();
    await daemon.stop();
    return alerting.stop(boundMs);
  };
  // The first daemon's receiver never answers: both alerts are raised, neither is delivered.
  let tried = 0;
  const hang = (_url: string, _body: string, signal: AbortSignal): Promise<PostResponse> =>
    new Promise((_resolve, reject) => {
      tried++;
      signal.addEventListener('abort', () => reject(new Error('aborted')));
    });
  t.equal(await run({ post: hang }, 20), 2, 'two alerts abandoned at stop');
  t.equal(tried, 1, 'the first was in flight');
  t.same(hook.received, []);

  // The next daemon: nothing new happens to these tenants, yet the receiver learns of both.
  t.equal(await run({}), 0);
  t.same(hook.received.map((r) => `${r.body.type as string} ${r.body.tenantId as string}`).sort(), ['Invalid broken', 'Stalled stuck'], 'each lost alert sent once, at start');
  t.match(hook.received.find((r) => r.body.type === 'Stalled')?.body, { code: 'E_QUOTA_EXCEEDED', message: /quota exceeded/ });
  // And the one after: told, so quiet.
  t.equal(await run({}), 0);
  t.equal(hook.received.length, 2, 'not sent a second time');
});

t.test('tenantd daemon --notifications-file: alerts go out, and a receiver that refuses them is a warn line without its URL', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  await commitFiles(repo, { 'tenants/broken.yaml': BROKEN }, 'one broken tenant');
  const ok = await startReceiver(t);
  const refusing = await startReceiver(t, [403]);
  await fsp.writeFile(path.join(dir, 'alerts.yaml'), `receivers:\n  - name: ops\n    urlFromEnv: OPS_HOOK\n  - name: chat\n    format: slack\n    url: ${refusing.url}\n`);
  let out = '';
  let stop: (signal: string) => void = () => undefined;
  const exited = runCli({
    argv: ['daemon', '--repo', repo, '--data-dir', path.join(dir, 'data'), '--poll', '0', '--port', '0', '--host', '127.0.0.1', '--insecure-no-auth', '--log-format', 'json'],
    env: { TENANTD_NOTIFICATIONS_FILE: 'alerts.yaml', OPS_HOOK: ok.url },
    cwd: dir,
    out: (s) => void (out += s),
    err: () => undefined,
    stopSignal: new Promise((resolve) => (stop = resolve)),
  });
  await waitFor(() => out.includes('not delivered to receiver chat') && ok.received.length > 0, 20_000, 'the alert and the warn line');
  stop('SIGTERM');
  t.equal(await exited, 0);
  t.match(ok.received.map((r) => r.body), [{ type: 'Invalid', tenantId: 'broken', reason: 'InvalidSpec' }]);
  t.match(refusing.received.map((r) => r.body.text), [/Invalid broken/]);
  const warn = out.split('\n').find((l) => l.includes('not delivered'));
  t.match(JSON.parse(warn ?? '{}'), { level: 'warn', receiver: 'chat', alert: 'Invalid', error: 'HTTP 403' });
  t.notMatch(out, /secret-token/, 'no receiver URL in the log');
  t.match(out, /alerts to ops \(webhook\), chat \(slack\)/);
});
