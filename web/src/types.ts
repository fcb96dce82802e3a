/**
 * What the dashboard reads from the REST API. The domain types come from `core/` (type-only
 * imports of dependency-free modules), so the page and the API cannot drift apart silently.
 */
import type { ReconciliationEvent } from '../../core/events/events.js';
import type { InfrastructureStateTransition } from '../../core/log/transition.js';
import type { TenantStatus } from '../../core/phases.js';
import type { Condition, DesiredInfrastructureState, PlanSummary, RetryState } from '../../core/state/record.js';
import type { TenantConfiguration, TenantInfrastructureDocument } from '../../core/tenant/types.js';

export type { Condition, DesiredInfrastructureState, InfrastructureStateTransition, PlanSummary, ReconciliationEvent, TenantStatus };

/** `TenantEntity` as `GET …/tenants/:id` and the list return it (api/service.ts). */
export interface TenantEntity {
  id: string | null;
  tenantId: string;
  status: TenantStatus;
  phase: string | null;
  cloudProvider: string | null;
  region: string | null;
  namespace: string;
  configuration: TenantConfiguration | null;
  terraformStateKey: string | null;
  conditions: Condition[];
  desiredCommit: string | null;
  observedCommit: string | null;
  appliedCommit: string | null;
  reconciled: boolean;
  outputs: Record<string, string>;
  retry: RetryState | null;
  lastPlan: PlanSummary | null;
  spec: TenantInfrastructureDocument['spec'] | null;
  createdAt: string | null;
  updatedAt: string | null;
  /** metadata.name and labels, when the API includes them (proposed); else read from …/desired. */
  name?: string | null;
  labels?: Record<string, string>;
  /** The newest transition's time, when the API includes it (proposed); else updatedAt. */
  lastTransitionTime?: string | null;
}

export interface TenantPage {
  items: TenantEntity[];
  total: number;
  next: string | null;
  /** Tenants per status over the whole fleet, when the API includes it (proposed). */
  counts?: Partial<Record<TenantStatus, number>>;
}

export interface TransitionPage {
  items: InfrastructureStateTransition[];
  total: number;
  offset: number;
  limit: number;
}

export interface Problem {
  status: number;
  title: string;
  detail: string;
  code: string;
  requestId?: string;
}
