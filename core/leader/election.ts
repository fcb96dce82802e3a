/**
 * Leader election on a lease, with client-go's semantics (k8s.io/client-go/tools/leaderelection),
 * as a state machine whose I/O (the lease store) and clock are passed in.
 *
 * - A candidate reads the lease. Absent: it creates it naming itself. Held by another holder whose
 *   record this candidate has seen unchanged for `leaseDurationSeconds` (measured on its own
 *   monotonic clock from when it first saw that record, never from the record's timestamps, so
 *   clock skew between machines does not matter): it takes it over, `leaseTransitions + 1`.
 *   Released (no holder): it takes it at once.
 * - Every write is optimistic: an update carries the resourceVersion last read, and a conflict
 *   (HTTP 409) means someone else wrote first — this candidate lost that round.
 * - The leader renews every `retryPeriod` (first straight from what it wrote last; on a conflict it
 *   reads again). A leader that has not renewed successfully within `renewDeadline` of the start of
 *   its last successful renew stops leading, and so does one that reads the lease naming another.
 *
 * Fencing: `holdsLease()` is what every durable write asks first. It is true only while this
 * process leads and less than `renewDeadline` has passed since the start of the last successful
 * renew (by the monotonic clock, at the moment of asking, so a late timer cannot stretch it). Any
 * other candidate waits at least `leaseDuration` after it saw that renew before taking over, so a
 * write that starts while `holdsLease()` is true has `leaseDuration − renewDeadline` (the safety
 * margin, 5 s by default) to finish before anyone else may lead.
 */
import { TenantdError } from '../errors.js';

/** The lease's spec fields, plus where the holder serves its API (an annotation on the Lease). */
export interface LeaseRecord {
  /** Empty when released. */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string | null;
  renewTime: string | null;
  leaseTransitions: number;
  /** The holder's API base URL, for standbys to forward writes to; null when unknown. */
  holderUrl: string | null;
}

export interface ObservedLease {
  record: LeaseRecord;
  /** The lease object's resourceVersion: an update must carry it (optimistic concurrency). */
  version: string;
}

/** `E_LEASE_CONFLICT`: someone else created or updated the lease first (HTTP 409). */
export const E_LEASE_CONFLICT = 'E_LEASE_CONFLICT';
/** `E_NOT_LEADER`: a durable write refused because this process does not hold the lease. */
export const E_NOT_LEADER = 'E_NOT_LEADER';

/** Where the lease lives (a `coordination.k8s.io/v1` Lease in production; a fake in tests). */
export interface LeaseStore {
  /** The lease, or null when it does not exist. */
  get(signal: AbortSignal): Promise<ObservedLease | null>;
  /** Creates it; throws E_LEASE_CONFLICT when it exists already. */
  create(record: LeaseRecord, signal: AbortSignal): Promise<ObservedLease>;
  /** Replaces it if its resourceVersion is still `version`; throws E_LEASE_CONFLICT otherwise. */
  update(record: LeaseRecord, version: string, signal: AbortSignal): Promise<ObservedLease>;
}

export interface ElectionClock {
  /** Monotonic milliseconds: all lease arithmetic. */
  now(): number;
  /** Wall-clock time, only for the record's acquireTime/renewTime. */
  wall(): Date;
}

export interface ElectionTiming {
  /** How long a non-leader waits after it last saw the record change before taking over (client-go default 15 s). */
  leaseDurationMs: number;
  /** How long a leader keeps trying to renew before it stops leading (default 10 s). */
  renewDeadlineMs: number;
  /** Between attempts (default 2 s). */
  retryPeriodMs: number;
}

export const DEFAULT_TIMING: ElectionTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** client-go's JitterFactor: a candidate retries after retryPeriod × (1 + up to 1.2). */
export const JITTER_FACTOR = 1.2;

/** The problems of a timing (client-go's NewLeaderElector checks), each naming the setting; empty when fine. */
export function timingProblems(t: ElectionTiming): string[] {
  const problems: string[] = [];
  if (!(t.leaseDurationMs > 0)) problems.push('lease duration must be greater than zero');
  if (!(t.renewDeadlineMs > 0)) problems.push('renew deadline must be greater than zero');
  if (!(t.retryPeriodMs > 0)) problems.push('retry period must be greater than zero');
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) problems.push('lease duration must be greater than the renew deadline');
  if (!(t.renewDeadlineMs > JITTER_FACTOR * t.retryPeriodMs)) problems.push(`renew deadline must be greater than ${JITTER_FACTOR} × the retry period`);
  return problems;
}

export type ElectionEvent =
  | { type: 'StartedLeading'; identity: string; leaseTransitions: number }
  | { type: 'StoppedLeading'; identity: string; reason: 'renew-deadline' | 'lost' | 'released' }
  /** The holder this candidate sees changed (null: none, or released). */
  | { type: 'NewLeader'; identity: string | null }
  | { type: 'AttemptFailed'; code: string; message: string };

export interface ElectionOptions {
  identity: string;
  /** This candidate's API base URL, written into the lease while it leads. */
  url?: string | null;
  timing?: ElectionTiming;
  store: LeaseStore;
  clock: ElectionClock;
  random?: () => number;
  onEvent?: (event: ElectionEvent) => void;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const sameRecord = (a: LeaseRecord, b: LeaseRecord): boolean =>
  a.holderIdentity === b.holderIdentity &&
  a.leaseDurationSeconds === b.leaseDurationSeconds &&
  a.acquireTime === b.acquireTime &&
  a.renewTime === b.renewTime &&
  a.leaseTransitions === b.leaseTransitions;

const errorOf = (err: unknown): { code: string; message: string } => ({
  code: err instanceof TenantdError ? err.code : 'E_LEASE_IO',
  message: err instanceof Error ? err.message : String(err),
});

export class LeaderElection {
  readonly identity: string;
  readonly timing: ElectionTiming;
  private readonly url: string | null;
  private readonly store: LeaseStore;
  private readonly clock: ElectionClock;
  private readonly random: () => number;
  private readonly onEvent: (event: ElectionEvent) => void;
  private observed: ObservedLease | null = null;
  /** Monotonic time this candidate first saw the observed record (or wrote it). */
  private observedAt = Number.NEGATIVE_INFINITY;
  private leading = false;
  /** Monotonic time the last successful acquire or renew was started. */
  private renewedAt = Number.NEGATIVE_INFINITY;
  private reportedLeader: string | null = null;

  constructor(opts: ElectionOptions) {
    this.identity = opts.identity;
    this.url = opts.url ?? null;
    this.timing = opts.timing ?? DEFAULT_TIMING;
    const problems = timingProblems(this.timing);
    if (problems.length > 0) throw new TenantdError('E_CONFIG', 'stalled', `leader election: ${problems.join('; ')}`, { problems });
    this.store = opts.store;
    this.clock = opts.clock;
    this.random = opts.random ?? Math.random;
    this.onEvent = opts.onEvent ?? (() => undefined);
  }

  /** client-go's IsLeader: this candidate leads (it may still have to stop at the renew deadline). */
  isLeader(): boolean {
    return this.leading;
  }

  /** The fence: true only while leading and within the renew deadline of the last successful renew's start. */
  holdsLease(): boolean {
    return this.leading && this.clock.now() < this.renewedAt + this.timing.renewDeadlineMs;
  }

  /** Throws E_NOT_LEADER unless `holdsLease()`; `what` names the refused write. */
  fence(what: string): void {
    if (this.holdsLease()) return;
    throw new TenantdError(E_NOT_LEADER, 'waiting', `not writing ${what}: this replica (${this.identity}) does not hold the leader lease`, {
      identity: this.identity,
      leader: this.leader()?.identity ?? null,
    });
  }

  /** The holder as last seen, while its lease has not expired by this candidate's clock; null when none. */
  leader(): { identity: string; url: string | null } | null {
    if (this.leading) return { identity: this.identity, url: this.url };
    const o = this.observed;
    if (!o || o.record.holderIdentity === '' || !this.observedValid(this.clock.now())) return null;
    return { identity: o.record.holderIdentity, url: o.record.holderUrl };
  }

  private observedValid(now: number): boolean {
    return this.observed !== null && this.observedAt + this.observed.record.leaseDurationSeconds * 1000 > now;
  }

  private observe(lease: ObservedLease, now: number): void {
    if (!this.observed || !sameRecord(this.observed.record, lease.record)) this.observedAt = now;
    this.observed = lease;
    const holder = lease.record.holderIdentity || null;
    if (holder !== this.reportedLeader) {
      this.reportedLeader = holder;
      this.onEvent({ type: 'NewLeader', identity: holder });
    }
  }

  private wrote(lease: ObservedLease, now: number): void {
    this.observe(lease, now);
    // What we wrote ourselves counts as seen now, whatever it looked like before.
    this.observedAt = now;
  }

  /**
   * One attempt to acquire or renew (client-go's tryAcquireOrRenew); true when this candidate holds
   * the lease afterwards. Never throws: failures are reported as AttemptFailed events.
   */
  async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const now = this.clock.now();
    const stamp = microTime(this.clock.wall());
    const mine: LeaseRecord = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.timing.leaseDurationMs / 1000),
      acquireTime: stamp,
      renewTime: stamp,
      leaseTransitions: 0,
      holderUrl: this.url,
    };
    // 1. The leader's fast path: update from what it wrote last, assuming nobody else wrote since.
    if (this.leading && this.observed && this.observed.record.holderIdentity === this.identity && this.observedValid(now)) {
      try {
        const prev = this.observed.record;
        this.wrote(await this.store.update({ ...mine, acquireTime: prev.acquireTime, leaseTransitions: prev.leaseTransitions }, this.observed.version, signal), now);
        this.renewedAt = now;
        return true;
      } catch (err: unknown) {
        this.onEvent({ type: 'AttemptFailed', ...errorOf(err) });
        if (signal.aborted) return false;
        // Fall back to reading the lease.
      }
    }
    // 2. Read it, or create it.
    let current: ObservedLease | null;
    try {
      current = await this.store.get(signal);
    } catch (err: unknown) {
      this.onEvent({ type: 'AttemptFailed', ...errorOf(err) });
      return false;
    }
    if (!current) {
      try {
        this.wrote(await this.store.create(mine, signal), now);
        this.renewedAt = now;
        return true;
      } catch (err: unknown) {
        this.onEvent({ type: 'AttemptFailed', ...errorOf(err) });
        return false;
      }
    }
    this.observe(current, now);
    const holder = current.record.holderIdentity;
    if (holder !== this.identity) {
      if (this.leading) {
        // Someone else holds it now: whatever our clock says, we lost it.
        this.stop('lost');
      }
      if (holder !== '' && this.observedValid(now)) return false;
    }
    // 3. Take it over (expired or released) or renew it (ours).
    const record = holder === this.identity ? { ...mine, acquireTime: current.record.acquireTime, leaseTransitions: current.record.leaseTransitions } : { ...mine, leaseTransitions: current.record.leaseTransitions + 1 };
    try {
      this.wrote(await this.store.update(record, current.version, signal), now);
      this.renewedAt = now;
      return true;
    } catch (err: unknown) {
      this.onEvent({ type: 'AttemptFailed', ...errorOf(err) });
      return false;
    }
  }

  private stop(reason: 'renew-deadline' | 'lost' | 'released'): void {
    if (!this.leading) return;
    this.leading = false;
    this.onEvent({ type: 'StoppedLeading', identity: this.identity, reason });
  }

  /**
   * One round of the election loop: an acquire attempt (candidate) or a renew attempt (leader),
   * the state changes it leads to (events), and the milliseconds to wait before the next round.
   * A leader whose renew deadline passes stops leading here, before any I/O.
   */
  async step(signal: AbortSignal): Promise<number> {
    const { renewDeadlineMs, retryPeriodMs } = this.timing;
    if (this.leading) {
      if (this.clock.now() >= this.renewedAt + renewDeadlineMs) {
        this.stop('renew-deadline');
        return 0;
      }
      // A renew attempt never outlives the deadline: past it, the answer cannot help.
      const attempt = boundedSignal(signal, this.renewedAt + renewDeadlineMs - this.clock.now());
      try {
        if (await this.tryAcquireOrRenew(attempt.signal)) return retryPeriodMs;
      } finally {
        attempt.dispose();
      }
      if (!this.leading) return 0;
      const left = this.renewedAt + renewDeadlineMs - this.clock.now();
      if (left <= 0) {
        this.stop('renew-deadline');
        return 0;
      }
      return Math.min(retryPeriodMs, left);
    }
    const attempt = boundedSignal(signal, renewDeadlineMs);
    let won: boolean;
    try {
      won = await this.tryAcquireOrRenew(attempt.signal);
    } finally {
      attempt.dispose();
    }
    if (won) {
      this.leading = true;
      this.onEvent({ type: 'StartedLeading', identity: this.identity, leaseTransitions: this.observed?.record.leaseTransitions ?? 0 });
      return retryPeriodMs;
    }
    const jittered = retryPeriodMs * (1 + this.random() * JITTER_FACTOR);
    // Not waiting past the moment the observed lease runs out: a crashed leader is replaced at
    // expiry, not up to a jittered retry period later (the check itself is client-go's).
    const o = this.observed;
    if (o && o.record.holderIdentity !== '' && this.observedValid(this.clock.now())) {
      return Math.min(jittered, this.observedAt + o.record.leaseDurationSeconds * 1000 - this.clock.now());
    }
    return jittered;
  }

  /**
   * Give the lease up (client-go's ReleaseOnCancel): holder emptied, duration 1 s, so a standby
   * takes over at its next attempt instead of waiting out the lease. Stops leading first, so the
   * fence is closed before the release is written. True when released (or there was nothing to release).
   */
  async release(signal: AbortSignal): Promise<boolean> {
    if (!this.leading) return true;
    this.stop('released');
    const o = this.observed;
    if (!o || o.record.holderIdentity !== this.identity) return true;
    const stamp = microTime(this.clock.wall());
    try {
      const released = await this.store.update(
        { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: stamp, renewTime: stamp, leaseTransitions: o.record.leaseTransitions, holderUrl: null },
        o.version,
        signal,
      );
      this.wrote(released, this.clock.now());
      return true;
    } catch (err: unknown) {
      this.onEvent({ type: 'AttemptFailed', ...errorOf(err) });
      return false;
    }
  }
}

/** A signal that aborts with `parent` or after `ms`; dispose() clears the timer. */
function boundedSignal(parent: AbortSignal, ms: number): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${Math.round(ms)} ms`)), Math.max(0, ms));
  timer.unref?.();
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onAbort);
    },
  };
}
