import type { Phase, TenantStatus, OperationKind, MachineState } from '../phases.js';
import type { CloudProvider, TenantConfiguration, TenantInfrastructureDocument, ValidationIssue } from '../tenant/types.js';
import type { InfrastructureStateTransition } from '../log/transition.js';

/**
 * A record keeps only what it needs of a desired state and of its transitions: at 10,000 tenants,
 * a copy of every document and ten whole transitions per record were a third of the heap.
 */
export type SeenDesired = Omit<DesiredInfrastructureState, 'document'>;
export type TransitionSummary = Pick<InfrastructureStateTransition, 'fromState' | 'toState' | 'trigger' | 'timestamp'>;

export function seenDesired(d: DesiredInfrastructureState): SeenDesired {
  const seen: SeenDesired = { tenantId: d.tenantId, file: d.file, commit: d.commit, blobOid: d.blobOid, specDigest: d.specDigest, issues: d.issues };
  if (d.warnings?.length) seen.warnings = d.warnings;
  if (d.unreadable) seen.unreadable = d.unreadable;
  return seen;
}

/** What a tenant's desired file says at a commit: the seed's DesiredInfrastructureState. */
export interface DesiredInfrastructureState {
  tenantId: string;
  /** Repo-relative path, `tenants/<tenantId>.yaml`. */
  file: string;
  /** Commit the file was read at (the newest commit that changed it, or the head it was first seen at). */
  commit: string;
  blobOid: string;
  /** `sha256:` digest of the canonical document; null when the file is invalid. */
  specDigest: string | null;
  document: TenantInfrastructureDocument | null;
  issues: ValidationIssue[];
  /** Valid but worth acting on (a retired database size); absent when there are none. */
  warnings?: ValidationIssue[];
  /** The file's blob could not be read from git (a corrupt or missing object): not invalid, unknown. */
  unreadable?: { code: string; message: string };
}

export interface OperationTarget {
  commit: string;
  specDigest: string;
}

/** A create, update or delete in flight; checkpointed after every phase. */
export interface Operation {
  id: string;
  kind: OperationKind;
  target: OperationTarget;
  /** The tenant document the operation acts on (for a delete, the last applied one). */
  document: TenantInfrastructureDocument;
  phase: Phase;
  /** Phases whose provider step finished and was checkpointed. */
  completed: Phase[];
  trigger: string;
  startedAt: string;
  /** The plan a person approved for this operation (tenants that need approval; core/approval). */
  approval?: PlanApproval;
}

export interface PlanApproval {
  planDigest: string;
  by: string;
  at: string;
  trigger: string;
}

export interface RetryState {
  attempt: number;
  /** ISO time of the next attempt; null when stalled (a person must act). */
  nextAttemptAt: string | null;
  lastError: { code: string; kind: string; message: string; phase: Phase | null };
}

export type ConditionType = 'Ready' | 'Reconciling' | 'Stalled';
export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  /** CamelCase, as Kubernetes and Flux write reasons. */
  reason: string;
  message: string;
  lastTransitionTime: string;
  /** The stable `E_…` code of the error this condition reports, when an error is its cause. */
  code?: string;
}

/** The generation a reconcile last ran to its end, and the desired file it came from. */
export interface ObservedGeneration {
  generation: number;
  /** The desired commit of that generation; null when the file was removed. */
  commit: string | null;
  /** Its spec digest; null when the file was removed or invalid. */
  specDigest: string | null;
}

export interface AppliedState {
  commit: string;
  specDigest: string;
  document: TenantInfrastructureDocument;
  at: string;
}

export interface PlanSummary {
  operationId: string;
  commit: string;
  summary: string;
  counts: Record<string, number>;
  changes: Array<{ ref: string; action: string; fields?: string[] }>;
  /** `sha256:` of the change list (core/approval/plan-digest.ts): what an approval names. */
  digest?: string;
}

/**
 * The current state of one tenant: the seed's TenantInfrastructure fields (`id`, `tenantId`,
 * `status`, `cloudProvider`, `region`, `namespace`, `configuration`, `terraformStateKey`) plus what
 * the phase machine needs to resume after a crash.
 */
export interface TenantRecord {
  id: string;
  tenantId: string;
  status: TenantStatus;
  phase: Phase | null;
  cloudProvider: CloudProvider | null;
  region: string | null;
  namespace: string | null;
  configuration: TenantConfiguration | null;
  terraformStateKey: string | null;
  /** The desired file last seen, without its document (the loader holds that; `applied` keeps the one acted on). */
  desired: SeenDesired | null;
  applied: AppliedState | null;
  operation: Operation | null;
  retry: RetryState | null;
  conditions: Condition[];
  outputs: Record<string, string>;
  lastPlan: PlanSummary | null;
  /** Why the tenant is held (deletion protection, suspend, invalid file). */
  hold: { reason: string; message: string; code?: string } | null;
  /**
   * tenantd's count of the spec changes of `tenants/<id>.yaml` it has seen (Kubernetes'
   * metadata.generation): it grows by one each time `generationOf` changes and never goes back.
   */
  generation: number;
  /** What the current generation is (see core/status/generation.ts); null before any file was seen. */
  generationOf: string | null;
  /** The generation last reconciled to its end (status.observedGeneration); null until one is. */
  observed: ObservedGeneration | null;
  /** The token of the newest `POST …/reconcile` (Flux's reconcile.fluxcd.io/requestedAt). */
  reconcileRequestedAt: string | null;
  /** The token of the newest reconcile request a finished reconcile handled (Flux's lastHandledReconcileAt). */
  lastHandledReconcileAt: string | null;
  /** The last transition written; re-appended to the log at start if a crash lost it. */
  lastTransition: InfrastructureStateTransition | null;
  /** The last few transitions, newest last, as the status file shows them (the log has them whole). */
  recentTransitions: TransitionSummary[];
  createdAt: string;
  updatedAt: string;
}

export const stateOf = (record: Pick<TenantRecord, 'status' | 'phase'>): MachineState =>
  record.phase ? `${record.status}/${record.phase}` : record.status;
