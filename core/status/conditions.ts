import type { Condition, ConditionType, RetryState, TenantRecord } from '../state/record.js';

type Desired = Omit<Condition, 'lastTransitionTime'>;
type ConditionStatus = Condition['status'];

/**
 * Where a tenant stands, in the terms of Kubernetes' kstatus and Flux: every record is in exactly
 * one situation, and the situation alone decides the three conditions (and whether the reconcile of
 * the current generation has ended, which moves observedGeneration).
 */
export type Situation =
  /** Known, never reconciled yet. */
  | { kind: 'Pending' }
  /** An operation is walking its phases (`retrying`: an earlier attempt of it failed). */
  | { kind: 'Progressing'; retrying: boolean }
  /** A dependency is not ready (a `waiting` error); the step is retried at `retry.nextAttemptAt`. */
  | { kind: 'Waiting'; retry: RetryState }
  /** The last attempt failed (a `retryable` error): FAILED, with a retry scheduled. */
  | { kind: 'RetryScheduled'; retry: RetryState }
  /** ACTIVE: the current spec is applied. */
  | { kind: 'Succeeded' }
  /** DEPROVISIONED: the file is gone and so is everything tenantd made for it. */
  | { kind: 'Deprovisioned' }
  /** SUSPENDED: `spec.suspend` is true, nothing is reconciled. */
  | { kind: 'Suspended' }
  /** The plan is made; Apply waits until a person approves its digest (spec.approval: manual). */
  | { kind: 'AwaitingApproval'; message: string }
  /** A person must act: an invalid file, a hold (deletion protection …), or a `stalled` error. */
  | { kind: 'Stalled'; reason: string; message: string; code?: string };

/** Situations in which the reconcile of the current generation has ended (Ready, or Stalled). */
const ENDED: ReadonlySet<Situation['kind']> = new Set(['Succeeded', 'Deprovisioned', 'Stalled']);

export function situationOf(r: TenantRecord): Situation {
  if (r.status === 'INVALID') return { kind: 'Stalled', reason: 'InvalidSpec', message: r.hold?.message ?? 'The tenant file is invalid' };
  // Waiting for an approval is progress a person completes, not a stall.
  if (r.hold?.reason === 'AwaitingApproval' && r.operation) return { kind: 'AwaitingApproval', message: r.hold.message };
  // Any hold but suspend is a stop a person must lift (its reason names it: DeletionProtected, …).
  if (r.hold && r.hold.reason !== 'Suspended') return { kind: 'Stalled', reason: r.hold.reason, message: r.hold.message, ...(r.hold.code ? { code: r.hold.code } : {}) };
  if (r.status === 'SUSPENDED') return { kind: 'Suspended' };
  if (r.retry && r.retry.nextAttemptAt === null) {
    const e = r.retry.lastError;
    return { kind: 'Stalled', reason: reasonForCode(e.code), message: e.message, code: e.code };
  }
  if (r.status === 'PENDING') return { kind: 'Pending' };
  if (r.retry && r.status === 'FAILED') return { kind: 'RetryScheduled', retry: r.retry };
  if (r.retry && r.retry.lastError.kind === 'waiting') return { kind: 'Waiting', retry: r.retry };
  if (r.operation) return { kind: 'Progressing', retrying: r.retry !== null };
  if (r.status === 'DEPROVISIONED') return { kind: 'Deprovisioned' };
  if (r.status === 'ACTIVE') return { kind: 'Succeeded' };
  return { kind: 'Progressing', retrying: false };
}

/** True when the reconcile of the record's current generation ran to its end: Ready, or Stalled. */
export const reconcileEnded = (r: TenantRecord): boolean => ENDED.has(situationOf(r).kind);

/**
 * The one function that turns a tenant's state into Kubernetes-style conditions (Ready,
 * Reconciling, Stalled, in that order), read as kstatus reads them: Reconciling=True is in
 * progress, Stalled=True is failed (a person must act), neither with Ready=True is current.
 * `lastTransitionTime` moves only when a condition's status flips, as in Kubernetes.
 */
export function computeConditions(record: TenantRecord, now: Date): Condition[] {
  const wanted = conditionsFor(situationOf(record), record);
  const previous = new Map<ConditionType, Condition>(record.conditions.map((c) => [c.type, c]));
  return wanted.map((c) => {
    const prev = previous.get(c.type);
    const lastTransitionTime = prev && prev.status === c.status ? prev.lastTransitionTime : now.toISOString();
    return { ...c, lastTransitionTime };
  });
}

function conditionsFor(s: Situation, r: TenantRecord): [Desired, Desired, Desired] {
  switch (s.kind) {
    case 'Pending':
      return three(['Unknown', 'True', 'False'], 'Progressing', 'Waiting for the first reconcile');
    case 'Progressing': {
      const op = r.operation;
      const message = op ? `${op.kind} of commit ${short(op.target.commit)}: phase ${op.phase}` : `${r.status} in phase ${r.phase ?? '-'}`;
      const [ready, reconciling, stalled] = three(['Unknown', 'True', 'False'], 'Progressing', message);
      return [ready, s.retrying ? { ...reconciling, reason: 'ProgressingWithRetry' } : reconciling, stalled];
    }
    case 'Waiting':
    case 'RetryScheduled': {
      // Ready says what went wrong (Unknown while only waiting on a dependency); Reconciling that it carries on.
      const e = s.retry.lastError;
      const next = `attempt ${s.retry.attempt + 1} at ${s.retry.nextAttemptAt ?? '-'}`;
      const ready: Desired = { type: 'Ready', status: s.kind === 'Waiting' ? 'Unknown' : 'False', reason: reasonForCode(e.code), message: e.message, code: e.code };
      return [
        ready,
        { type: 'Reconciling', status: 'True', reason: 'ProgressingWithRetry', message: `${e.phase ?? 'reconcile'} failed (${e.code}); ${next}` },
        { type: 'Stalled', status: 'False', reason: 'ProgressingWithRetry', message: `retried automatically: ${next}` },
      ];
    }
    case 'Succeeded':
      return three(['True', 'False', 'False'], 'ReconciliationSucceeded', `Applied commit ${short(r.applied?.commit)}`);
    case 'Deprovisioned':
      return three(['False', 'False', 'False'], 'Deprovisioned', 'All resources of the tenant were removed');
    case 'Suspended':
      // What was applied stays up (Ready keeps saying so); nothing new is applied.
      return three([r.applied ? 'True' : 'False', 'False', 'False'], 'Suspended', 'spec.suspend is true: reconciliation is paused');
    case 'AwaitingApproval':
      return three(['Unknown', 'True', 'False'], 'AwaitingApproval', s.message);
    case 'Stalled':
      return three(['False', 'False', 'True'], s.reason, s.message, s.code);
  }
}

function three(statuses: [ConditionStatus, ConditionStatus, ConditionStatus], reason: string, message: string, code?: string): [Desired, Desired, Desired] {
  const [ready, reconciling, stalled] = statuses;
  const extra = code ? { code } : {};
  return [
    { type: 'Ready', status: ready, reason, message, ...extra },
    { type: 'Reconciling', status: reconciling, reason, message, ...extra },
    { type: 'Stalled', status: stalled, reason, message, ...extra },
  ];
}

/** Reasons read better than a few codes' mechanical CamelCase. */
const REASON_OVERRIDES: Readonly<Record<string, string>> = { E_PROVIDER: 'ProviderFailed', E_INTERNAL: 'InternalError' };

/**
 * The CamelCase reason for an error code: `E_CLUSTER_UNREACHABLE` → `ClusterUnreachable`. A code
 * with a suffix after `:` (a wrapped foreign error, `E_PROVIDER:ENOENT`) takes its prefix's reason.
 */
export function reasonForCode(code: string): string {
  const base = code.split(':')[0] ?? code;
  const override = REASON_OVERRIDES[base];
  if (override) return override;
  const words = base.replace(/^E_/, '').split('_').filter(Boolean);
  const reason = words.map((w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase()).join('');
  return /^[A-Z][A-Za-z0-9]*$/.test(reason) ? reason : 'ReconciliationFailed';
}

const short = (sha: string | undefined | null): string => (sha ? sha.slice(0, 12) : '-');
