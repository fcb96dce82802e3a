import type { Condition, ConditionType, TenantRecord } from '../state/record.js';

type Desired = Omit<Condition, 'lastTransitionTime'>;

/**
 * The one function that turns a tenant's state into Kubernetes-style conditions.
 * `lastTransitionTime` moves only when a condition's status flips, as in Kubernetes.
 */
export function computeConditions(record: TenantRecord, now: Date): Condition[] {
  const wanted: Desired[] = [ready(record), reconciling(record), stalled(record)];
  const previous = new Map<ConditionType, Condition>(record.conditions.map((c) => [c.type, c]));
  return wanted.map((c) => {
    const prev = previous.get(c.type);
    const lastTransitionTime = prev && prev.status === c.status ? prev.lastTransitionTime : now.toISOString();
    return { ...c, lastTransitionTime };
  });
}

function ready(r: TenantRecord): Desired {
  switch (r.status) {
    case 'ACTIVE':
      return r.hold
        ? { type: 'Ready', status: 'True', reason: r.hold.reason, message: r.hold.message }
        : { type: 'Ready', status: 'True', reason: 'ReconciliationSucceeded', message: `Applied commit ${short(r.applied?.commit)}` };
    case 'DEPROVISIONED':
      return { type: 'Ready', status: 'False', reason: 'Deprovisioned', message: 'All resources of the tenant were removed' };
    case 'FAILED':
      return { type: 'Ready', status: 'False', reason: r.retry?.lastError.code ?? 'Failed', message: r.retry?.lastError.message ?? 'Reconcile failed' };
    case 'INVALID':
      return { type: 'Ready', status: 'False', reason: 'InvalidSpec', message: r.hold?.message ?? 'The tenant file is invalid' };
    case 'SUSPENDED':
      return { type: 'Ready', status: r.applied ? 'True' : 'False', reason: 'Suspended', message: 'spec.suspend is true: reconciliation is paused' };
    case 'PENDING':
      return { type: 'Ready', status: 'Unknown', reason: 'Pending', message: 'Waiting for the first reconcile' };
    default:
      return { type: 'Ready', status: 'False', reason: 'Progressing', message: `${r.status} in phase ${r.phase ?? '-'}` };
  }
}

function reconciling(r: TenantRecord): Desired {
  if (r.operation && r.status !== 'INVALID' && r.status !== 'SUSPENDED') {
    const waitingOn = r.retry?.nextAttemptAt ? ` (attempt ${r.retry.attempt + 1} at ${r.retry.nextAttemptAt})` : '';
    return {
      type: 'Reconciling',
      status: r.retry && !r.retry.nextAttemptAt ? 'False' : 'True',
      reason: r.retry?.lastError.kind === 'waiting' ? 'Waiting' : r.retry ? 'RetryScheduled' : 'Progressing',
      message: `${r.operation.kind} of commit ${short(r.operation.target.commit)}: phase ${r.operation.phase}${waitingOn}`,
    };
  }
  return { type: 'Reconciling', status: 'False', reason: 'Idle', message: 'No reconcile in progress' };
}

function stalled(r: TenantRecord): Desired {
  if (r.status === 'INVALID') return { type: 'Stalled', status: 'True', reason: 'InvalidSpec', message: r.hold?.message ?? 'The tenant file is invalid' };
  if (r.hold && r.hold.reason !== 'Suspended') return { type: 'Stalled', status: 'True', reason: r.hold.reason, message: r.hold.message };
  if (r.retry && !r.retry.nextAttemptAt) {
    return { type: 'Stalled', status: 'True', reason: r.retry.lastError.code, message: r.retry.lastError.message };
  }
  return { type: 'Stalled', status: 'False', reason: 'NotStalled', message: '' };
}

const short = (sha: string | undefined | null): string => (sha ? sha.slice(0, 12) : '-');
