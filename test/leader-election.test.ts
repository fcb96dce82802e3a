import t from 'tap';
import { TenantdError } from '../core/errors.js';
import {
  DEFAULT_TIMING,
  E_LEASE_CONFLICT,
  E_NOT_LEADER,
  JITTER_FACTOR,
  LeaderElection,
  microTime,
  timingProblems,
  type ElectionEvent,
  type ElectionTiming,
  type LeaseRecord,
  type LeaseStore,
  type ObservedLease,
} from '../core/leader/election.js';

/** A Lease in memory with the API server's rules: resourceVersion bumps on every write, stale updates conflict. */
class MemoryLease implements LeaseStore {
  current: ObservedLease | null = null;
  private rv = 100;
  writes = 0;
  /** Partitioned callers: every call of theirs fails as an unreachable API server would. */
  readonly cut = new Set<string>();

  as(who: string): LeaseStore {
    const check = (): void => {
      if (this.cut.has(who)) throw new Error(`connect ECONNREFUSED (${who} is partitioned)`);
    };
    return {
      get: async () => {
        check();
        return this.current ? structuredClone(this.current) : null;
      },
      create: async (record) => {
        check();
        if (this.current) throw new TenantdError(E_LEASE_CONFLICT, 'retryable', 'leases.coordination.k8s.io "tenantd" already exists');
        return this.write(record);
      },
      update: async (record, version) => {
        check();
        if (!this.current || this.current.version !== version) throw new TenantdError(E_LEASE_CONFLICT, 'retryable', 'the object has been modified; please apply your changes to the latest version');
        return this.write(record);
      },
    };
  }

  get: LeaseStore['get'] = () => this.as('-').get(new AbortController().signal);
  create: LeaseStore['create'] = (r, s) => this.as('-').create(r, s);
  update: LeaseStore['update'] = (r, v, s) => this.as('-').update(r, v, s);

  private write(record: LeaseRecord): ObservedLease {
    this.writes++;
    this.current = { record: structuredClone(record), version: String(++this.rv) };
    return structuredClone(this.current);
  }
}

/** Monotonic and wall clocks the test moves by hand; the wall clock is skewed to show it is never used for expiry. */
class FakeClock {
  ms = 1_000_000;
  now = (): number => this.ms;
  wall = (): Date => new Date(Date.UTC(2026, 0, 1) + this.ms + 3_600_000);
  advance(ms: number): void {
    this.ms += ms;
  }
}

const timing: ElectionTiming = DEFAULT_TIMING; // 15 s lease, 10 s renew deadline, 2 s retry period
const signal = new AbortController().signal;

function candidate(lease: MemoryLease, clock: FakeClock, identity: string, random = () => 0) {
  const events: ElectionEvent[] = [];
  const election = new LeaderElection({ identity, url: `http://${identity}:8089`, timing, store: lease.as(identity), clock, random, onEvent: (e) => events.push(e) });
  return { election, events, types: () => events.map((e) => e.type) };
}

/** A leader `a` and a standby `b` that has read the Lease once. */
async function leaderAndStandby(): Promise<{ lease: MemoryLease; clock: FakeClock; a: ReturnType<typeof candidate>; b: ReturnType<typeof candidate> }> {
  const lease = new MemoryLease();
  const clock = new FakeClock();
  const a = candidate(lease, clock, 'a');
  const b = candidate(lease, clock, 'b');
  await a.election.step(signal);
  await b.election.step(signal);
  return { lease, clock, a, b };
}

t.test('timing is checked as client-go checks it, each problem named', async (t) => {
  t.same(timingProblems(DEFAULT_TIMING), []);
  t.match(timingProblems({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }), [/lease duration must be greater than the renew deadline/]);
  t.match(timingProblems({ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }), [new RegExp(`renew deadline must be greater than ${JITTER_FACTOR}`)]);
  t.equal(timingProblems({ leaseDurationMs: 0, renewDeadlineMs: 0, retryPeriodMs: 0 }).length, 5);
  t.throws(() => new LeaderElection({ identity: 'a', timing: { leaseDurationMs: 5_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, store: new MemoryLease(), clock: new FakeClock() }), { code: 'E_CONFIG' });
});

t.test('the first candidate creates the Lease naming itself; renewals keep acquireTime and leaseTransitions', async (t) => {
  const lease = new MemoryLease();
  const clock = new FakeClock();
  const a = candidate(lease, clock, 'a');
  t.notOk(a.election.holdsLease(), 'no lease before the first attempt');
  t.throws(() => a.election.fence('a commit'), { code: E_NOT_LEADER });
  t.equal(await a.election.step(signal), timing.retryPeriodMs, 'a leader renews every retry period');
  t.same(a.types(), ['NewLeader', 'StartedLeading']);
  const created = lease.current as ObservedLease;
  t.equal(created.record.holderIdentity, 'a');
  t.equal(created.record.leaseDurationSeconds, 15);
  t.equal(created.record.leaseTransitions, 0);
  t.equal(created.record.acquireTime, created.record.renewTime);
  t.match(created.record.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime: six fractional digits');
  t.equal(created.record.holderUrl, 'http://a:8089');
  t.ok(a.election.holdsLease());
  t.doesNotThrow(() => a.election.fence('a commit'));

  clock.advance(timing.retryPeriodMs);
  await a.election.step(signal);
  const renewed = lease.current as ObservedLease;
  t.not(renewed.version, created.version, 'every renewal is a write with a new resourceVersion');
  t.equal(renewed.record.acquireTime, created.record.acquireTime);
  t.not(renewed.record.renewTime, created.record.renewTime);
  t.equal(renewed.record.leaseTransitions, 0);
  t.equal(microTime(new Date('2026-01-01T00:00:00.123Z')), '2026-01-01T00:00:00.123000Z');
});

t.test('a standby waits a full lease duration of an unchanged record, by its own clock, then takes over', async (t) => {
  const lease = new MemoryLease();
  const clock = new FakeClock();
  const a = candidate(lease, clock, 'a');
  const b = candidate(lease, clock, 'b');
  await a.election.step(signal);
  t.notOk(await b.election.tryAcquireOrRenew(signal), 'held by a');
  t.same(b.election.leader(), { identity: 'a', url: 'http://a:8089' }, 'a standby knows the leader and its URL');
  // a keeps renewing: b never takes over however long it waits.
  for (let i = 0; i < 20; i++) {
    clock.advance(timing.retryPeriodMs);
    await a.election.step(signal);
    t.notOk(await b.election.tryAcquireOrRenew(signal));
  }
  // a dies (no more renewals). b saw its last record now.
  const diedAt = clock.ms;
  clock.advance(timing.leaseDurationMs - 1);
  t.notOk(await b.election.tryAcquireOrRenew(signal), 'not before the lease duration has passed');
  t.notOk(b.election.isLeader());
  clock.advance(1);
  t.ok(await b.election.tryAcquireOrRenew(signal), 'taken over exactly a lease duration after the last renewal was seen');
  t.equal(clock.ms - diedAt, timing.leaseDurationMs);
  const taken = lease.current as ObservedLease;
  t.equal(taken.record.holderIdentity, 'b');
  t.equal(taken.record.leaseTransitions, 1, 'a change of holder counts a transition');
  t.equal(taken.record.acquireTime, taken.record.renewTime, 'a new holder has a new acquireTime');
  t.equal(taken.record.holderUrl, 'http://b:8089');
});

t.test('a partitioned leader stops writing at the renew deadline, before anyone may take over, and writes nothing when it returns', async (t) => {
  const { lease, clock, a, b } = await leaderAndStandby();
  const lastRenew = clock.ms;
  lease.cut.add('a');
  let fenceClosedAt: number | null = null;
  let bLeadsAt: number | null = null;
  // Both loops run, a step every retry period, in 100 ms ticks of the clock.
  let nextA = clock.ms + timing.retryPeriodMs;
  let nextB = clock.ms + timing.retryPeriodMs;
  for (let tick = 0; tick < 400 && bLeadsAt === null; tick++) {
    clock.advance(100);
    if (fenceClosedAt === null && !a.election.holdsLease()) fenceClosedAt = clock.ms;
    if (clock.ms >= nextA) nextA = clock.ms + (await a.election.step(signal));
    if (clock.ms >= nextB) {
      nextB = clock.ms + (await b.election.step(signal));
      if (b.election.isLeader()) bLeadsAt = clock.ms;
    }
  }
  t.equal(fenceClosedAt, lastRenew + timing.renewDeadlineMs, 'the fence closes at the renew deadline of the last successful renewal');
  t.ok(bLeadsAt, 'the standby took over');
  t.ok((bLeadsAt as number) >= lastRenew + timing.leaseDurationMs, 'not before the lease duration');
  t.ok((fenceClosedAt as number) + (timing.leaseDurationMs - timing.renewDeadlineMs) <= (bLeadsAt as number), 'the safety margin separates the two');
  t.notOk(a.election.isLeader());
  t.match(a.events, [{ type: 'NewLeader' }, { type: 'StartedLeading' }, { type: 'AttemptFailed' }], 'renewals failed');
  t.ok(a.events.some((e) => e.type === 'StoppedLeading' && e.reason === 'renew-deadline'));
  t.throws(() => a.election.fence('the record of t1'), { code: E_NOT_LEADER, data: { identity: 'a' } });

  // The partition heals: a reads the Lease naming b, stays a candidate, writes nothing.
  lease.cut.delete('a');
  const writes = lease.writes;
  await a.election.step(signal);
  t.equal(lease.writes, writes, 'the returning old leader does not write the Lease');
  t.notOk(a.election.holdsLease());
  t.same(a.election.leader(), { identity: 'b', url: 'http://b:8089' });
});

t.test('a leader that reads the Lease naming another stops at once, whatever its clock says', async (t) => {
  const lease = new MemoryLease();
  const clock = new FakeClock();
  const a = candidate(lease, clock, 'a');
  await a.election.step(signal);
  // Someone overwrote the Lease (an operator, a replica with a skewed view): a's fast-path update conflicts.
  const cur = lease.current as ObservedLease;
  await lease.update({ ...cur.record, holderIdentity: 'intruder', leaseTransitions: cur.record.leaseTransitions + 1 }, cur.version, signal);
  clock.advance(timing.retryPeriodMs);
  await a.election.step(signal);
  t.notOk(a.election.isLeader());
  t.notOk(a.election.holdsLease());
  t.ok(a.events.some((e) => e.type === 'StoppedLeading' && e.reason === 'lost'));
  t.ok(a.events.some((e) => e.type === 'AttemptFailed' && e.code === E_LEASE_CONFLICT), 'the stale update was refused by resourceVersion');
  t.equal((lease.current as ObservedLease).record.holderIdentity, 'intruder', 'and it did not overwrite the new holder');
});

t.test('optimistic concurrency: of two candidates racing for an expired lease, one wins', async (t) => {
  const lease = new MemoryLease();
  const clock = new FakeClock();
  const a = candidate(lease, clock, 'a');
  await a.election.step(signal);
  lease.cut.add('a');
  const b = candidate(lease, clock, 'b');
  const c = candidate(lease, clock, 'c');
  await b.election.tryAcquireOrRenew(signal);
  await c.election.tryAcquireOrRenew(signal);
  clock.advance(timing.leaseDurationMs);
  const [wb, wc] = await Promise.all([b.election.tryAcquireOrRenew(signal), c.election.tryAcquireOrRenew(signal)]);
  t.equal([wb, wc].filter(Boolean).length, 1, 'exactly one holds it');
  const loser = wb ? c : b;
  t.ok(loser.events.some((e) => e.type === 'AttemptFailed' && e.code === E_LEASE_CONFLICT));
  t.equal((lease.current as ObservedLease).record.leaseTransitions, 1);

  // Two candidates creating a missing lease at once: the second create conflicts.
  const fresh = new MemoryLease();
  const d = candidate(fresh, clock, 'd');
  const e = candidate(fresh, clock, 'e');
  const [wd, we] = await Promise.all([d.election.tryAcquireOrRenew(signal), e.election.tryAcquireOrRenew(signal)]);
  t.same([wd, we], [true, false]);
  t.equal((fresh.current as ObservedLease).record.holderIdentity, 'd');
});

t.test('release: the leader stops first, then empties the holder so a standby takes over at its next attempt', async (t) => {
  const { lease, clock, a, b } = await leaderAndStandby();
  t.ok(await a.election.release(signal));
  t.notOk(a.election.holdsLease());
  const released = lease.current as ObservedLease;
  t.equal(released.record.holderIdentity, '');
  t.equal(released.record.leaseDurationSeconds, 1);
  t.equal(b.election.leader()?.identity, 'a', 'b has not read it yet');
  clock.advance(timing.retryPeriodMs);
  await b.election.step(signal);
  t.ok(b.election.isLeader(), 'no lease duration to wait out');
  t.equal((lease.current as ObservedLease).record.leaseTransitions, 1);
});

t.test('a candidate retries after the retry period with client-go jitter, but never later than the observed lease runs out', async (t) => {
  const lease = new MemoryLease();
  const clock = new FakeClock();
  await candidate(lease, clock, 'a').election.step(signal);
  t.equal(await candidate(lease, clock, 'b', () => 0).election.step(signal), timing.retryPeriodMs);
  const c = candidate(lease, clock, 'c', () => 1);
  t.equal(await c.election.step(signal), timing.retryPeriodMs * (1 + JITTER_FACTOR));
  // a is gone; c has seen its record unchanged for all but 1 s of the lease: its next attempt is at expiry.
  clock.advance(timing.leaseDurationMs - 1000);
  t.equal(await c.election.step(signal), 1000, 'the wait is cut to the moment of expiry');
  clock.advance(1000);
  await c.election.step(signal);
  t.ok(c.election.isLeader(), 'and then it takes over');
});

t.test('a standby forgets a leader whose lease ran out (nowhere to forward writes)', async (t) => {
  const lease = new MemoryLease();
  const clock = new FakeClock();
  const a = candidate(lease, clock, 'a');
  const b = candidate(lease, clock, 'b');
  await a.election.step(signal);
  lease.cut.add('b');
  await b.election.step(signal);
  t.same(b.election.leader(), null, 'never read it');
  lease.cut.delete('b');
  await b.election.step(signal);
  t.equal(b.election.leader()?.identity, 'a');
  clock.advance(timing.leaseDurationMs);
  t.equal(b.election.leader(), null);
});
