import { sortKeysDeep } from '../canonical.js';
import type { ReconciliationEvent } from '../events/events.js';
import type { TenantStatus } from '../phases.js';
import type { TenantRecord } from '../state/record.js';
import { reasonForCode } from '../status/conditions.js';

export const ALERT_TYPES = ['Failed', 'Stalled', 'Invalid', 'Recovered', 'DeletionHeld', 'DeletionHoldEnded'] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

/** What a receiver is told. `tenantId` is null for fleet-level alerts (held deletions). */
export interface Alert {
  type: AlertType;
  tenantId: string | null;
  time: string;
  /** CamelCase, as a condition's reason (ProviderFailed, InvalidSpec, threshold, …). */
  reason: string;
  /** The error code, when an error caused the alert. */
  code?: string;
  message: string;
  attempt?: number;
  commit?: string;
}

/** Where a tenant stands as far as a person is concerned; an alert is sent only when it changes. */
export type Standing = 'ok' | 'failing' | 'stalled' | 'invalid';

/** Where a receiver of `alert` believes its tenant stands; null for the fleet's alerts. */
export function standingAfter(alert: Pick<Alert, 'type'>): Standing | null {
  switch (alert.type) {
    case 'Failed':
      return 'failing';
    case 'Stalled':
      return 'stalled';
    case 'Invalid':
      return 'invalid';
    case 'Recovered':
      return 'ok';
    default:
      return null;
  }
}

/** Statuses in which the tenant is where its file says: a tenant in trouble that reaches one has recovered. */
const HEALTHY: ReadonlySet<TenantStatus> = new Set(['ACTIVE', 'DEPROVISIONED', 'SUSPENDED']);

export interface AlertRulesOptions {
  /** A failure that will be retried alerts from this attempt on (earlier ones are routine). */
  failedAfterRetries: number;
}

export const DEFAULT_FAILED_AFTER_RETRIES = 3;

/** What seeding reads of a tenant's record: its status and the retry its last error left. */
export type StandingRecord = Pick<TenantRecord, 'tenantId' | 'status' | 'retry'> & Partial<Pick<TenantRecord, 'hold' | 'updatedAt'>>;

/**
 * Turns reconciliation events into alerts, one per change of a tenant's standing (ok, failing,
 * stalled, invalid) and one per deletion hold and its end. Pure: no I/O, no clock (times come
 * from the events), so the same events always give the same alerts.
 */
export class AlertRules {
  private readonly standing = new Map<string, Standing>();
  /** Tenants whose PhaseFailed was just seen: the StatusChanged to FAILED that follows is the same failure. */
  private readonly phaseFailed = new Set<string>();
  /** The commit each tenant's last reconcile acted on, named in its alerts. */
  private readonly commits = new Map<string, string>();
  private heldCommit: string | null = null;

  constructor(private readonly options: AlertRulesOptions = { failedAfterRetries: DEFAULT_FAILED_AFTER_RETRIES }) {}

  /**
   * Where each tenant stands by its record, read when reconciling starts (a start, a takeover as
   * leader): a tenant that failed before then gets its Recovered, and one still failing is not
   * told again. What was held before is forgotten (another leader may have moved on).
   *
   * `told` is where the receivers were last left believing each tenant stands (absent: ok), as
   * the alert ledger kept it. Where a record stands elsewhere, an alert was lost (raised and not
   * delivered before a crash) or never raised: the alerts returned say so now. Without `told`
   * (no ledger yet) the records are taken as told and nothing is returned.
   */
  seed(records: Iterable<StandingRecord>, told?: ReadonlyMap<string, Standing>): Alert[] {
    this.standing.clear();
    this.phaseFailed.clear();
    const catchUp: Alert[] = [];
    for (const r of records) {
      const was = told ? (told.get(r.tenantId) ?? 'ok') : undefined;
      // Waiting on a dependency says nothing new: the tenant stands where it was last told.
      const now = was !== undefined && r.retry?.lastError.kind === 'waiting' ? was : this.standingOf(r);
      if (now !== 'ok') this.standing.set(r.tenantId, now);
      if (was !== undefined && was !== now) catchUp.push(sortKeysDeep(this.catchUpAlert(r, was, now)));
    }
    return catchUp;
  }

  /** Where each tenant stands now, as far as these rules know (ok ones are absent). */
  standings(): Map<string, Standing> {
    return new Map(this.standing);
  }

  /** The alert `feed` would have sent for the move from `was` to `now`, built from the record. */
  private catchUpAlert(r: StandingRecord, was: Standing, now: Standing): Alert {
    const { tenantId } = r;
    // The record's last change is when the tenant came to stand there.
    const time = r.updatedAt ?? new Date(0).toISOString();
    if (now === 'ok') return { type: 'Recovered', tenantId, time, reason: r.status, message: `${r.status} again after being ${was} (seen at start)` };
    if (now === 'invalid') return r.hold ? { ...invalidAlert(tenantId, time), message: r.hold.message } : invalidAlert(tenantId, time);
    const retry = r.retry;
    if (!retry) return unreadableAlert(tenantId, time, '');
    const { phase, code, message } = retry.lastError;
    return failureAlert(tenantId, time, code, `${phase ?? 'reconcile'} failed: ${message}`, retry.attempt, now === 'stalled' ? null : (retry.nextAttemptAt ?? 'unknown'));
  }

  /** The standing `feed` would have reached from the events that left this record. */
  private standingOf(r: StandingRecord): Standing {
    if (r.status === 'INVALID') return 'invalid';
    // A retried failure leaves the status FAILED too: the retry says which kind it is.
    if (r.retry && r.retry.lastError.kind !== 'waiting') {
      if (r.retry.nextAttemptAt === null) return 'stalled';
      return r.retry.attempt >= this.options.failedAfterRetries ? 'failing' : 'ok';
    }
    // FAILED with nothing to retry: the tenant's file cannot be read from git.
    return r.status === 'FAILED' ? 'stalled' : 'ok';
  }

  feed(event: ReconciliationEvent): Alert[] {
    const alert = this.alertFor(event);
    return alert ? [sortKeysDeep(alert)] : [];
  }

  private alertFor(e: ReconciliationEvent): Alert | null {
    switch (e.type) {
      case 'PhaseFailed':
        // Waiting on a dependency is not a failure: the status stays and nothing is shown as failed.
        if (e.kind === 'waiting') return null;
        this.phaseFailed.add(e.tenantId);
        return this.failure(e.tenantId, e.time, e.code, `${e.phase} failed: ${e.message}`, e.attempt, e.nextAttemptAt);
      case 'BookkeepingFailed':
        return this.failure(e.tenantId, e.time, e.code, `bookkeeping failed: ${e.message}`, e.attempt, e.nextAttemptAt);
      case 'StatusChanged':
        return this.statusChanged(e);
      case 'DeletionHeld':
        if (e.commit === this.heldCommit) return null;
        this.heldCommit = e.commit;
        return { type: 'DeletionHeld', tenantId: null, time: e.time, reason: e.reasons.join(','), message: e.message, commit: e.commit };
      case 'DeletionHoldEnded':
        this.heldCommit = null;
        return {
          type: 'DeletionHoldEnded',
          tenantId: null,
          time: e.time,
          reason: e.how,
          message: `the deletion hold ended: ${e.how}${e.by ? ` by ${e.by}` : ''} (${e.tenants} tenant(s))`,
          commit: e.commit,
        };
      case 'ReconcileStarted':
        if (e.commit) this.commits.set(e.tenantId, e.commit);
        this.phaseFailed.delete(e.tenantId);
        return null;
      default:
        if ('tenantId' in e) this.phaseFailed.delete(e.tenantId);
        return null;
    }
  }

  private failure(tenantId: string, time: string, code: string, message: string, attempt: number, nextAttemptAt: string | null): Alert | null {
    if (nextAttemptAt === null) return this.move(tenantId, 'stalled', failureAlert(tenantId, time, code, message, attempt, null));
    if (attempt < this.options.failedAfterRetries) return null;
    return this.move(tenantId, 'failing', failureAlert(tenantId, time, code, message, attempt, nextAttemptAt));
  }

  private statusChanged(e: Extract<ReconciliationEvent, { type: 'StatusChanged' }>): Alert | null {
    const { tenantId, time } = e;
    const followsPhaseFailure = this.phaseFailed.delete(tenantId);
    if (e.to === 'INVALID') return this.move(tenantId, 'invalid', invalidAlert(tenantId, time));
    // FAILED with no phase failure before it: the tenant's file cannot be read from git (stalled until repaired).
    if (e.to === 'FAILED' && !followsPhaseFailure) return this.move(tenantId, 'stalled', unreadableAlert(tenantId, time, ` (${e.reason})`));
    if (!HEALTHY.has(e.to)) return null;
    const was = this.standing.get(tenantId) ?? 'ok';
    if (was === 'ok') return null;
    this.standing.delete(tenantId);
    return this.withCommit({ type: 'Recovered', tenantId, time, reason: e.to, message: `${e.to} again after being ${was} (${e.reason})` });
  }

  private move(tenantId: string, to: Standing, alert: Alert): Alert | null {
    if (this.standing.get(tenantId) === to) return null;
    this.standing.set(tenantId, to);
    return this.withCommit(alert);
  }

  private withCommit(alert: Alert): Alert {
    const commit = alert.tenantId === null ? undefined : this.commits.get(alert.tenantId);
    return commit ? { ...alert, commit } : alert;
  }
}

/** Failed while it is retried (`nextAttemptAt` set), Stalled when it is not. */
function failureAlert(tenantId: string, time: string, code: string, message: string, attempt: number, nextAttemptAt: string | null): Alert {
  const fields = { tenantId, time, reason: reasonForCode(code), code, attempt };
  if (nextAttemptAt === null) return { ...fields, type: 'Stalled', message: `${message} (not retried: a person must act)` };
  return { ...fields, type: 'Failed', message: `${message} (attempt ${attempt}, next at ${nextAttemptAt})` };
}

function invalidAlert(tenantId: string, time: string): Alert {
  return { type: 'Invalid', tenantId, time, reason: 'InvalidSpec', message: `tenants/${tenantId}.yaml is invalid: nothing is applied until it is fixed` };
}

/** The tenant's file cannot be read from git; `detail` says why when known. */
function unreadableAlert(tenantId: string, time: string, detail: string): Alert {
  return { type: 'Stalled', tenantId, time, reason: 'SourceUnreadable', message: `tenants/${tenantId}.yaml cannot be read from the repository${detail}` };
}
