import type { Phase, TenantStatus } from '../phases.js';

interface Base {
  /** ISO-8601. */
  time: string;
}

export type ReconciliationEvent =
  | (Base & { type: 'SourceFetched'; commit: string; previous: string | null; changedTenants: number; durationMs: number; trigger: string })
  | (Base & { type: 'SourceUnchanged'; commit: string | null; durationMs: number })
  | (Base & { type: 'SourceFailed'; code: string; message: string })
  | (Base & { type: 'StateRecordDiscarded'; tenantId: string; file: string; movedTo: string; message: string })
  | (Base & { type: 'TenantFilesSkipped'; commit: string; files: Array<{ path: string; reason: string }> })
  | (Base & { type: 'ReconcileStarted'; tenantId: string; operationId: string; operation: string; trigger: string; commit: string | null })
  | (Base & { type: 'PhaseStarted'; tenantId: string; operationId: string; phase: Phase; status: TenantStatus })
  | (Base & { type: 'PhaseCompleted'; tenantId: string; operationId: string; phase: Phase; status: TenantStatus; summary: string; durationMs: number })
  | (Base & { type: 'PhaseFailed'; tenantId: string; operationId: string; phase: Phase; code: string; kind: string; message: string; attempt: number; nextAttemptAt: string | null })
  | (Base & { type: 'PhaseProgress'; tenantId: string; operationId: string; phase: Phase; message: string; data?: Record<string, unknown> })
  | (Base & { type: 'DriftDetected'; tenantId: string; corrected: boolean; policy: string; changes: Array<{ ref: string; action: string; fields?: string[] }> })
  | (Base & { type: 'DriftCheckFailed'; tenantId: string; code: string; message: string })
  /** A record write, log append or other step outside the provider failed; retried with backoff. */
  | (Base & { type: 'BookkeepingFailed'; tenantId: string; code: string; message: string; attempt: number; nextAttemptAt: string | null })
  | (Base & { type: 'StatusChanged'; tenantId: string; from: TenantStatus | null; to: TenantStatus; reason: string })
  | (Base & { type: 'StatusCommitted'; commit: string; tenants: number; durationMs: number })
  | (Base & { type: 'TenantCommitted'; commit: string; action: string; requestId: string; durationMs: number })
  | (Base & { type: 'StatusCommitFailed'; code: string; message: string })
  | (Base & { type: 'RepositoryPacked'; looseBefore: number; looseAfter: number; packs: number; durationMs: number })
  | (Base & { type: 'RepositoryPackFailed'; code: string; message: string })
  | (Base & { type: 'DeletionHeld'; commit: string; previous: string | null; reasons: string[]; tenants: number; added: number; limit: number; fleet: number; message: string })
  | (Base & { type: 'DeletionHoldEnded'; commit: string; how: 'approved' | 'restored'; by: string | null; tenants: number })
  | (Base & { type: 'ApprovalRequired'; tenantId: string; operationId: string; planDigest: string; reason: string })
  | (Base & { type: 'PlanApproved'; tenantId: string; operationId: string; planDigest: string; by: string });

export type ReconciliationEventType = ReconciliationEvent['type'];
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type ReconciliationEventInput = DistributiveOmit<ReconciliationEvent, 'time'>;
