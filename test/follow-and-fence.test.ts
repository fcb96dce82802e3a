/**
 * The shared data dir under leader election, at the level of the record store and the transition
 * log: a fence that refuses changes nothing, on disk or in memory; a follower (another process's
 * standby) reads what the writer appended and never repairs what may be a line being written.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { IdempotencyStore } from '../api/idempotency.js';
import { TenantdError } from '../core/errors.js';
import { E_NOT_LEADER } from '../core/leader/election.js';
import { TransitionLog } from '../core/log/transition-log.js';
import type { InfrastructureStateTransition } from '../core/log/transition.js';
import type { TenantRecord } from '../core/state/record.js';
import { TenantStateStore } from '../core/state/store.js';

const record = (tenantId: string, status: string): TenantRecord => ({ tenantId, status, conditions: [], recentTransitions: [] }) as unknown as TenantRecord;
const transition = (tenantId: string, n: number): InfrastructureStateTransition =>
  ({ id: `${tenantId}-${n}`, tenantId, fromState: 'PROVISIONING/Request', toState: 'PROVISIONING/Plan', trigger: 'test', details: {}, timestamp: new Date(0).toISOString() }) as InfrastructureStateTransition;

/** A fence the test opens and closes, as the lease is held or lost. */
function switchableFence(): { open: boolean; fence: (what: string) => void } {
  const f = {
    open: true,
    fence: (what: string): void => {
      if (!f.open) throw new TenantdError(E_NOT_LEADER, 'waiting', `not writing ${what}: lease not held`);
    },
  };
  return f;
}

t.test('a closed fence refuses a record write: nothing on disk, nothing in memory', async (t) => {
  const dir = t.testdir();
  const f = switchableFence();
  const store = await TenantStateStore.open(dir, { fence: f.fence });
  await store.put(record('t1', 'PROVISIONING'));
  f.open = false;
  await t.rejects(store.put(record('t1', 'ACTIVE')), { code: E_NOT_LEADER, message: /the record of t1/ });
  t.equal(store.get('t1')?.status, 'PROVISIONING', 'memory keeps the last record written under the lease');
  const onDisk = JSON.parse(await fsp.readFile(path.join(dir, 'state', 'tenants', 't1.json'), 'utf8')) as { status: string };
  t.equal(onDisk.status, 'PROVISIONING');
  await t.rejects(store.put(record('t2', 'PROVISIONING')), { code: E_NOT_LEADER });
  t.equal(store.get('t2'), undefined);
  t.same(await fsp.readdir(path.join(dir, 'state', 'tenants')), ['t1.json']);
});

t.test('a write queued behind another is asked again when its turn comes (the lease may have run out meanwhile)', async (t) => {
  const dir = t.testdir();
  const f = switchableFence();
  const store = await TenantStateStore.open(dir, { fence: f.fence });
  const first = store.put(record('t1', 'PROVISIONING'));
  const second = store.put(record('t1', 'ACTIVE'));
  f.open = false; // both passed the first check; the second waits behind the first's write
  await first.catch(() => undefined);
  await t.rejects(second, { code: E_NOT_LEADER });
  const onDisk = JSON.parse(await fsp.readFile(path.join(dir, 'state', 'tenants', 't1.json'), 'utf8').catch(() => '{}')) as { status?: string };
  t.not(onDisk.status, 'ACTIVE', 'the refused record never reached the disk');
});

t.test('a closed fence refuses a log append: the file does not grow', async (t) => {
  const file = path.join(t.testdir(), 'transitions.jsonl');
  const f = switchableFence();
  const log = await TransitionLog.open({ path: file, fence: f.fence });
  await log.append(transition('t1', 1));
  const size = (await fsp.stat(file)).size;
  f.open = false;
  await t.rejects(log.append(transition('t1', 2)), { code: E_NOT_LEADER });
  t.equal((await fsp.stat(file)).size, size);
  t.equal(log.countFor('t1'), 1);
  await log.close();
});

t.test('a follower reads what the writer appends, and leaves a torn-looking tail alone until it writes itself', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'transitions.jsonl');
  const writer = await TransitionLog.open({ path: file });
  await writer.append(transition('t1', 1));
  const follower = await TransitionLog.open({ path: file, follow: true });
  t.equal(follower.countFor('t1'), 1);
  await writer.append(transition('t1', 2));
  await writer.append(transition('t2', 1));
  await follower.catchUp({ repair: false });
  t.equal(follower.countFor('t1'), 2, 'appended since: indexed');
  t.equal(follower.lastId('t2'), 't2-1');
  t.same((await follower.read('t1')).map((x) => x.id), ['t1-1', 't1-2']);

  // The writer is killed mid-line: a follower must not cut it (it may still be being written)…
  await fsp.appendFile(file, '{"id":"t1-3","tenantId":"t1"');
  const torn = (await fsp.stat(file)).size;
  await follower.catchUp({ repair: false });
  t.equal((await fsp.stat(file)).size, torn, 'a follower never truncates');
  t.equal(follower.countFor('t1'), 2);
  // …the next leader does, before it appends anything.
  await follower.catchUp({ repair: true });
  t.ok((await fsp.stat(file)).size < torn, 'the new writer cut the torn line');
  await follower.append(transition('t1', 3));
  const lines = (await fsp.readFile(file, 'utf8')).split('\n').filter(Boolean);
  t.same(lines.map((l) => (JSON.parse(l) as { id: string }).id), ['t1-1', 't1-2', 't2-1', 't1-3'], 'every line parses, nothing lost');
  await writer.close();
  await follower.close();
});

t.test("a standby's store reloads what the leader wrote; only the writer moves an unreadable record aside", async (t) => {
  const dir = t.testdir();
  const leader = await TenantStateStore.open(dir);
  await leader.put(record('t1', 'PROVISIONING'));
  const standby = await TenantStateStore.open(dir, { follow: true, fence: () => undefined });
  t.equal(standby.get('t1')?.status, 'PROVISIONING');
  await leader.put(record('t1', 'ACTIVE'));
  await leader.put(record('t2', 'PROVISIONING'));
  await standby.reload({ repair: false });
  t.equal(standby.get('t1')?.status, 'ACTIVE');
  t.equal(standby.get('t2')?.status, 'PROVISIONING');

  await fsp.writeFile(path.join(dir, 'state', 'tenants', 't3.json'), '{"tenantId":');
  await standby.reload({ repair: false });
  t.equal(standby.get('t3'), undefined);
  t.same(standby.discarded, [], 'a follower leaves it where it is');
  t.ok(await fsp.stat(path.join(dir, 'state', 'tenants', 't3.json')));
  await standby.reload({ repair: true });
  t.match(standby.discarded, [{ tenantId: 't3' }], 'the writer moves it aside, as at open');
});

t.test('an Idempotency-Key answered by one leader is replayed by the next (a shared store reads the file again)', async (t) => {
  const dir = t.testdir();
  const first = await IdempotencyStore.open(dir, { shared: true });
  const next = await IdempotencyStore.open(dir, { shared: true });
  const stale = await IdempotencyStore.open(dir);
  const scope = IdempotencyStore.scope('alice', 'POST', '/api/v1/infrastructure/tenants/t1/provision', 'key-1');
  const body = Buffer.from('{"tier":"starter"}');
  let runs = 0;
  const create = async () => {
    runs++;
    return { status: 201, body: { tenantId: 't1' }, headers: { etag: '"1"' } };
  };
  t.match(await first.run(scope, body, create), { status: 201, replayed: false });
  // The first leader dies; the client retries with the same key at the next one.
  t.match(await next.run(scope, body, create), { status: 201, body: { tenantId: 't1' }, replayed: true }, 'replayed, not run again');
  t.equal(runs, 1);
  await t.rejects(next.run(scope, Buffer.from('{"tier":"enterprise"}'), create), { code: 'E_IDEMPOTENCY_MISMATCH' }, 'a different body under that key is still refused');
  t.match(await stale.run(scope, body, create), { replayed: false }, 'without shared, a store opened before never sees it (why replicas need it)');
});
