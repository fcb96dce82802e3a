import type { TenantInfrastructureDocument } from '../core/tenant/types.js';
import type { RenderedTenant, KubeObjectRef } from './resources/types.js';

/** What a provider's phase step receives. */
export interface ProviderContext {
  tenantId: string;
  /** The tenant document acted on: the desired one, or for a deprovision the last applied one. */
  tenant: TenantInfrastructureDocument;
  /** The tenant's rendered objects; `null` when the tenant is being deprovisioned. */
  desired: RenderedTenant | null;
  /** Unique per operation (one create/update/delete attempt chain); stable across resume. */
  operationId: string;
  /** Aborted when a newer commit supersedes the operation or the daemon shuts down. */
  signal: AbortSignal;
  /** Progress inside a phase (replicas coming up, engine events); becomes a published event. */
  progress(message: string, data?: Record<string, unknown>): void;
}

export type ChangeAction = 'create' | 'update' | 'delete' | 'replace' | 'unchanged';

export interface ResourceChange {
  ref: KubeObjectRef;
  action: ChangeAction;
  /** Field paths that differ, for updates (never values of secrets). */
  fields?: string[];
}

export interface PhaseResult {
  /** One line for logs and the transition's details. */
  summary: string;
  details?: Record<string, unknown>;
  /** Non-secret outputs (endpoints, namespace) that flow into the status file. */
  outputs?: Record<string, string>;
}

export interface PlanResult extends PhaseResult {
  changes: ResourceChange[];
}

export interface DriftReport {
  drifted: boolean;
  changes: ResourceChange[];
  corrected: boolean;
}

/**
 * One interface, three implementations (render, kubernetes, pulumi). Every step must be idempotent:
 * a daemon killed mid-step re-runs it on restart, and running it again must change nothing more.
 * Steps throw TenantdError typed by what should happen next (stalled / waiting / retryable).
 */
export interface InfrastructureProvider {
  readonly name: string;
  plan(ctx: ProviderContext): Promise<PlanResult>;
  apply(ctx: ProviderContext): Promise<PhaseResult>;
  deploy(ctx: ProviderContext): Promise<PhaseResult>;
  configure(ctx: ProviderContext): Promise<PhaseResult>;
  verify(ctx: ProviderContext): Promise<PhaseResult>;
  destroy(ctx: ProviderContext): Promise<PhaseResult>;
  /** Compare what exists with `ctx.desired`; correct it when `correct` is true. */
  refresh(ctx: ProviderContext, correct: boolean): Promise<DriftReport>;
  /**
   * Problems with a valid tenant that only this provider can see (e.g. no cluster serves its
   * region, or the change would move it to another cluster). A tenant with any is INVALID,
   * exactly like a schema error: nothing is touched. `current` is the document whose objects may
   * exist now (the operation in flight, else the one applied), null when none do.
   */
  admit?(
    tenant: TenantInfrastructureDocument,
    current: TenantInfrastructureDocument | null,
  ): Array<{ path: string; message: string }> | Promise<Array<{ path: string; message: string }>>;
  /** The state key of a tenant (the seed's terraformStateKey). */
  stateKey?(tenantId: string): string;
  /** Whether the provider's backend can be reached now (feeds /readyz). */
  ready?(): Promise<boolean>;
  close?(): Promise<void>;
}
