/**
 * The mass-deletion circuit breaker's decisions, free of I/O: given what a change of the tracked
 * branch would deprovision, hold it or let it go. The daemon (daemon/deletion-guard.ts) feeds it
 * the facts (records, the desired listing, ancestry, commit trailers) and persists its state.
 *
 * Rules (README "Deletion safety"):
 * - a change that would start deprovisioning more than the limit, that leaves `tenants/` empty
 *   while tenants are applied, or that is not a fast-forward of the last commit acted on, holds
 *   every deletion it brings; creates and updates are not held;
 * - while a hold exists, every further deletion joins it (deletions are frozen until a person
 *   looks), and the hold's commit moves to the commit that grew it;
 * - a held tenant whose file comes back leaves the hold (nothing happens to it); an empty hold ends;
 * - a hold ends when a person approves its exact commit through the API, or a commit new in the
 *   change carries `Tenantd-Approve-Deletions: <n>` with n equal to the number of tenants the hold
 *   would deprovision (a different number approves nothing: the author counted something else).
 */
import type { TenantRecord } from '../state/record.js';

export type HoldReason = 'threshold' | 'emptyListing' | 'nonFastForward';

/** `--max-deletions`: a count, a share of the fleet, or the default max(5, 10 %). */
export type DeletionLimit = { kind: 'default' } | { kind: 'count'; n: number } | { kind: 'percent'; percent: number };

export const DEFAULT_LIMIT_COUNT = 5;
export const DEFAULT_LIMIT_PERCENT = 10;
export const APPROVE_TRAILER = 'Tenantd-Approve-Deletions';

export interface DeletionHold {
  /** The head the hold was raised at or last grew at: the commit an approval must name. */
  commit: string;
  /** The last commit acted on before the change that raised it. */
  previous: string | null;
  reasons: HoldReason[];
  /** Sorted tenant ids the hold keeps from being deprovisioned. */
  tenants: string[];
  /** Deletions one change may start without approval, at the time of the hold. */
  limit: number;
  /** Tenants applied when the hold was raised. */
  fleet: number;
  since: string;
}

export interface GuardState {
  /** The last head of the tracked branch the daemon acted on (for fast-forward checks and a vanished branch). */
  lastHead: string | null;
  hold: DeletionHold | null;
  /** Tenants cleared for deprovisioning (under the limit, or approved) whose deprovision has not started yet. */
  allowed: string[];
}

export const emptyGuardState = (): GuardState => ({ lastHead: null, hold: null, allowed: [] });

/** What one change brings, as the daemon observed it. */
export interface ChangeFacts {
  head: string;
  previous: string | null;
  /** Tenants whose file is absent at `head` and that a reconcile would start deprovisioning now. */
  pending: readonly string[];
  /** Tenants applied before the change (the fleet the percentage is of). */
  fleet: number;
  /** `tenants/` lists no file at `head`. */
  listingEmpty: boolean;
  /** `previous` is an ancestor of `head` (true when there is no previous). */
  fastForward: boolean;
  /** Numbers of the approval trailers in commits new in the change. */
  trailers: readonly number[];
  now: string;
}

export interface Decision {
  state: GuardState;
  /** Tenants to queue now: newly allowed (approved by trailer, or under the limit). */
  released: string[];
  /** The hold after the change, if any (same as `state.hold`). */
  hold: DeletionHold | null;
  /** What happened to the hold, for one event. */
  event: { kind: 'held'; hold: DeletionHold; added: string[] } | { kind: 'approved'; tenants: string[]; commit: string; by: string } | { kind: 'restored'; commit: string } | null;
}

export function deletionLimit(limit: DeletionLimit, fleet: number): number {
  switch (limit.kind) {
    case 'count':
      return limit.n;
    case 'percent':
      return Math.floor((fleet * limit.percent) / 100);
    default:
      return Math.max(DEFAULT_LIMIT_COUNT, Math.floor((fleet * DEFAULT_LIMIT_PERCENT) / 100));
  }
}

export function describeLimit(limit: DeletionLimit): string {
  if (limit.kind === 'count') return String(limit.n);
  if (limit.kind === 'percent') return `${limit.percent}%`;
  return `max(${DEFAULT_LIMIT_COUNT}, ${DEFAULT_LIMIT_PERCENT}%)`;
}

/**
 * Whether a reconcile of this tenant, with its file absent, would start a deprovision now: it has
 * something applied (or in flight), is not deprovisioned or deprovisioning already, and is not
 * under deletion protection (which holds it anyway). The reconciler's onRemoved agrees with this.
 */
export function startsDeprovision(record: TenantRecord): boolean {
  if (record.status === 'DEPROVISIONED' && !record.operation) return false;
  if (record.operation?.kind === 'delete') return false;
  const doc = record.applied?.document ?? record.operation?.document ?? null;
  return doc !== null && !doc.spec.deletionProtection;
}

/** Applied tenants: what the limit's percentage is of. */
export const isApplied = (record: TenantRecord): boolean => record.status !== 'DEPROVISIONED' && (record.applied !== null || record.operation !== null);

/** `Tenantd-Approve-Deletions: <n>` in a commit message's trailer block (its last paragraph). */
export function approvalTrailers(message: string): number[] {
  const paragraphs = message.replace(/\r/g, '').trim().split(/\n\s*\n/);
  const last = paragraphs.length > 1 ? (paragraphs.at(-1) as string) : '';
  const out: number[] = [];
  const re = new RegExp(`^${APPROVE_TRAILER}:[ \\t]*(\\d{1,9})[ \\t]*$`, 'i');
  for (const line of last.split('\n')) {
    const m = re.exec(line.trim());
    if (m) out.push(Number(m[1]));
  }
  return out;
}

const sorted = (ids: Iterable<string>): string[] => [...new Set(ids)].sort();

/** Apply one change's facts to the guard state. */
export function decide(state: GuardState, facts: ChangeFacts, limit: DeletionLimit): Decision {
  const pending = new Set(facts.pending);
  // Tenants no longer pending were deprovisioned, started deprovisioning, or came back.
  const allowed = state.allowed.filter((id) => pending.has(id));
  const allowedSet = new Set(allowed);
  const stillHeld = (state.hold?.tenants ?? []).filter((id) => pending.has(id) && !allowedSet.has(id));
  const heldSet = new Set(stillHeld);
  const fresh = sorted([...pending].filter((id) => !allowedSet.has(id) && !heldSet.has(id)));
  const base: GuardState = { lastHead: facts.head, hold: null, allowed };

  const approves = (n: number): boolean => n > 0 && facts.trailers.includes(n);

  if (state.hold && stillHeld.length + fresh.length > 0) {
    const grown = fresh.length > 0;
    const tenants = sorted([...stillHeld, ...fresh]);
    if (approves(tenants.length)) {
      return approved(base, tenants, facts.head, `trailer ${APPROVE_TRAILER}: ${tenants.length}`);
    }
    const hold: DeletionHold = grown
      ? { ...state.hold, commit: facts.head, tenants, reasons: mergeReasons(state.hold.reasons, reasonsOf(facts, fresh.length, limit)) }
      : { ...state.hold, tenants };
    return { state: { ...base, hold }, released: [], hold, event: grown ? { kind: 'held', hold, added: fresh } : null };
  }
  const restored = state.hold ? ({ kind: 'restored', commit: facts.head } as const) : null;
  if (fresh.length === 0) return { state: base, released: [], hold: null, event: restored };
  const reasons = reasonsOf(facts, fresh.length, limit);
  if (reasons.length === 0) return { state: { ...base, allowed: sorted([...allowed, ...fresh]) }, released: fresh, hold: null, event: restored };
  if (approves(fresh.length)) return approved(base, fresh, facts.head, `trailer ${APPROVE_TRAILER}: ${fresh.length}`);
  const hold: DeletionHold = {
    commit: facts.head,
    previous: facts.previous,
    reasons,
    tenants: fresh,
    limit: deletionLimit(limit, facts.fleet),
    fleet: facts.fleet,
    since: facts.now,
  };
  return { state: { ...base, hold }, released: [], hold, event: { kind: 'held', hold, added: fresh } };
}

/** A person approved the hold at `commit` (the API): its tenants are allowed. */
export function approveHold(state: GuardState, commit: string, by: string): Decision | { refused: 'none' | 'stale'; hold: DeletionHold | null } {
  if (!state.hold) return { refused: 'none', hold: null };
  if (state.hold.commit !== commit) return { refused: 'stale', hold: state.hold };
  return approved({ ...state, hold: null }, state.hold.tenants, commit, by);
}

function approved(base: GuardState, tenants: string[], commit: string, by: string): Decision {
  return {
    state: { ...base, hold: null, allowed: sorted([...base.allowed, ...tenants]) },
    released: tenants,
    hold: null,
    event: { kind: 'approved', tenants, commit, by },
  };
}

function reasonsOf(facts: ChangeFacts, count: number, limit: DeletionLimit): HoldReason[] {
  const reasons: HoldReason[] = [];
  if (count > deletionLimit(limit, facts.fleet)) reasons.push('threshold');
  if (facts.listingEmpty && facts.fleet > 0) reasons.push('emptyListing');
  if (!facts.fastForward) reasons.push('nonFastForward');
  return reasons;
}

const REASON_ORDER: HoldReason[] = ['threshold', 'emptyListing', 'nonFastForward'];
const mergeReasons = (a: HoldReason[], b: HoldReason[]): HoldReason[] => REASON_ORDER.filter((r) => a.includes(r) || b.includes(r));

/** One sentence per reason, for the held tenants' condition and the event. */
export function explainHold(hold: DeletionHold): string {
  const why = hold.reasons.map((r) =>
    r === 'threshold'
      ? `it would deprovision ${hold.tenants.length} tenant(s), more than --max-deletions allows (${hold.limit} of ${hold.fleet})`
      : r === 'emptyListing'
        ? `tenants/ lists no file while ${hold.fleet} tenant(s) are applied`
        : `the branch moved to a commit that is not a descendant of ${hold.previous ? hold.previous.slice(0, 12) : 'the last commit acted on'}`,
  );
  return (
    `deprovisioning held at ${hold.commit.slice(0, 12)}: ${why.join('; ')}. Nothing is deprovisioned until a person approves ` +
    `(POST /api/v1/deletions/approve {"commit":"${hold.commit}"}, or a commit with "${APPROVE_TRAILER}: ${hold.tenants.length}") or the files come back.`
  );
}
