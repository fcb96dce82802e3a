import { randomUUID } from 'node:crypto';
import { backoffDelay, type BackoffPolicy } from '../core/backoff.js';
import { planDigestOf, requiresApproval } from '../core/approval/plan-digest.js';
import { stalled, TenantdError, toTenantdError } from '../core/errors.js';
import type { ReconciliationEventPublisher } from '../core/events/publisher.js';
import type { TransitionLog } from '../core/log/transition-log.js';
import type { InfrastructureStateTransition } from '../core/log/transition.js';
import { machineState, phasesFor, statusForOperation, type OperationKind, type Phase, type TenantStatus } from '../core/phases.js';
import type { DesiredInfrastructureState, Operation, PlanApproval, TenantRecord } from '../core/state/record.js';
import { seenDesired, stateOf } from '../core/state/record.js';
import type { TenantStateStore } from '../core/state/store.js';
import { computeConditions } from '../core/status/conditions.js';
import { countGeneration, noteObserved } from '../core/status/generation.js';
import { STATUS_TRANSITIONS } from '../core/status/status-file.js';
import { formatIssue, namespaceFor, type TenantInfrastructureDocument } from '../core/tenant/types.js';
import type { InfrastructureProvider, PhaseResult, ProviderContext } from '../providers/provider.js';
import { outputsFor, renderTenant, refKey } from '../providers/resources/renderer.js';
import type { RenderedTenant } from '../providers/resources/types.js';
import type { DeletionVerdict } from './deletion-guard.js';


/** Hold reason of a tenant whose file cannot be read from git. */
export const SOURCE_UNREADABLE = 'SourceUnreadable';

export interface ReconcilerDeps {
  provider: InfrastructureProvider;
  store: TenantStateStore;
  log: TransitionLog;
  publisher: ReconciliationEventPublisher;
  backoff: BackoffPolicy;
  now?: () => Date;
  random?: () => number;
  newId?: () => string;
  /** The provider's state key for a tenant (the seed's terraformStateKey). */
  stateKey?: (tenantId: string) => string;
  /** Called whenever a record changed, so its status file is rewritten in the next batch. */
  onRecordChanged?: (tenantId: string) => void;
  /** The mass-deletion breaker: asked before a deprovision starts (absent: always allowed). */
  deletionGate?: (tenantId: string) => DeletionVerdict;
  /** Tiers whose every Apply waits for an approved plan, as if their spec said `approval: manual`. */
  approvalTiers?: readonly string[];
}

export interface ReconcileRequest {
  tenantId: string;
  /** The tenant's desired file at `commit`, or null when the file is absent there. */
  desired: DesiredInfrastructureState | null;
  /** The commit the daemon was at when it asked (for deletions, the commit that removed the file). */
  commit: string;
  trigger: string;
  /** Run now even if a retry is scheduled later or the tenant is stalled (API "reconcile now"). */
  force?: boolean;
  signal?: AbortSignal;
  /** Checked between phases: true stops at the last checkpoint (shutdown). */
  shouldStop?: () => boolean;
}

export type ReconcileOutcome =
  | { kind: 'converged'; status: TenantStatus }
  | { kind: 'held'; status: TenantStatus; reason: string }
  | { kind: 'retry'; at: Date; attempt: number }
  | { kind: 'stalled'; code: string }
  | { kind: 'interrupted' };

/**
 * The InfrastructureReconciler: walks one tenant through Request → Plan → Apply → Deploy →
 * Configure → Verify → Complete. Each phase's completion is checkpointed in the tenant's record
 * before the next phase starts; a record is always written before its transition is appended to
 * the log, and `recoverLog` re-appends a transition a crash cut off, so none is lost or doubled.
 */
export class InfrastructureReconciler {
  private readonly now: () => Date;
  private readonly random: () => number;
  private readonly newId: () => string;
  private readonly stateKey: (tenantId: string) => string;
  /** Approvals offered through the API, taken up by the tenant's next reconcile (see approvePlan). */
  private readonly offered = new Map<string, PlanApproval & { operationId: string }>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.random = deps.random ?? Math.random;
    this.newId = deps.newId ?? randomUUID;
    this.stateKey = deps.stateKey ?? deps.provider.stateKey?.bind(deps.provider) ?? ((id) => `${deps.provider.name}/${id}`);
  }

  /** After a crash: append each record's last transition if the log does not have it yet. */
  async recoverLog(): Promise<number> {
    let repaired = 0;
    for (const record of this.deps.store.all()) {
      const t = record.lastTransition;
      if (t && this.deps.log.lastId(record.tenantId) !== t.id) {
        await this.deps.log.append(t);
        repaired++;
      }
    }
    return repaired;
  }

  /** Whether a tenant needs a reconcile given its desired file (a cheap check, no I/O). */
  needsWork(tenantId: string, desired: DesiredInfrastructureState | null): boolean {
    const r = this.deps.store.get(tenantId);
    if (!r) return desired !== null;
    if (r.operation || r.retry || unhandledRequest(r)) return true;
    if (!desired) return r.status !== 'DEPROVISIONED' && !(r.hold?.reason === 'DeletionProtected');
    return r.desired?.blobOid !== desired.blobOid || (r.status !== 'ACTIVE' && r.status !== 'INVALID' && r.status !== 'SUSPENDED');
  }

  /**
   * Note a reconcile request (`POST …/reconcile`) in the tenant's record before it is queued: it
   * survives a restart, forces the next reconcile, and that reconcile, once it ends, marks it handled.
   */
  async requestReconcile(tenantId: string, requestedAt: string): Promise<void> {
    const existing = this.deps.store.get(tenantId);
    const record = existing ? structuredClone(existing) : this.newRecord(tenantId);
    record.reconcileRequestedAt = requestedAt;
    if (existing) {
      // Only the request changed: nothing the status file shows.
      await this.deps.store.put(record);
    } else {
      await this.save(record);
    }
  }

  /**
   * Reconcile one tenant. Nothing thrown outside a provider step is dropped: a failed record write
   * (E_STATE_WRITE), log append (E_LOG_APPEND) or any other error is recorded on the tenant as its
   * retry (the API and status show the code) and retried with the same backoff as a failed phase;
   * the retry first makes durable what the failure left only in memory.
   */
  async reconcile(req: ReconcileRequest): Promise<ReconcileOutcome> {
    try {
      await this.repairBookkeeping(req.tenantId);
      const asked = unhandledRequest(this.deps.store.get(req.tenantId));
      const outcome = await this.reconcileDesired(asked ? { ...req, force: true } : req);
      if (asked && outcome.kind !== 'interrupted') await this.markHandled(req.tenantId, asked);
      return outcome;
    } catch (err: unknown) {
      return this.bookkeepingFailed(req.tenantId, toTenantdError(err, 'E_RECONCILE'));
    }
  }

  /** A record whose write failed is written again, and its last transition appended if the log lacks it. */
  private async repairBookkeeping(tenantId: string): Promise<void> {
    const record = this.deps.store.get(tenantId);
    if (!record) return;
    if (!this.deps.store.isSaved(tenantId)) await this.deps.store.put(record);
    const t = record.lastTransition;
    if (t && this.deps.log.lastId(tenantId) !== t.id) await this.deps.log.append(t);
  }

  private async bookkeepingFailed(tenantId: string, err: TenantdError): Promise<ReconcileOutcome> {
    const existing = this.deps.store.get(tenantId);
    const record = existing ? structuredClone(existing) : this.newRecord(tenantId);
    const attempt = (record.retry?.attempt ?? 0) + 1;
    const at = err.kind === 'stalled' ? null : new Date(this.now().getTime() + backoffDelay(this.deps.backoff, attempt, this.random));
    record.retry = { attempt, nextAttemptAt: at ? at.toISOString() : null, lastError: { code: err.code, kind: err.kind === 'stalled' ? 'stalled' : 'retryable', message: err.message, phase: record.phase } };
    this.deps.publisher.publish({ type: 'BookkeepingFailed', tenantId, code: err.code, message: err.message, attempt, nextAttemptAt: record.retry.nextAttemptAt });
    // In memory at once (the API shows it); on disk if the disk takes it now, else by the retry.
    await this.save(record).catch(() => undefined);
    return at ? { kind: 'retry', at, attempt } : { kind: 'stalled', code: err.code };
  }

  private async markHandled(tenantId: string, requestedAt: string): Promise<void> {
    const current = this.deps.store.get(tenantId);
    if (!current || current.lastHandledReconcileAt === requestedAt) return;
    await this.save({ ...structuredClone(current), lastHandledReconcileAt: requestedAt });
  }

  private async reconcileDesired(req: ReconcileRequest): Promise<ReconcileOutcome> {
    const { tenantId, desired } = req;
    const existing = this.deps.store.get(tenantId);
    if (!existing && !desired) return { kind: 'converged', status: 'DEPROVISIONED' };
    const record: TenantRecord = existing ? structuredClone(existing) : this.newRecord(tenantId);
    if (desired) record.desired = seenDesired(desired);
    countGeneration(record, desired);

    if (!desired) return this.onRemoved(record, req);
    if (desired.unreadable) return this.onUnreadable(record, desired, req);
    // The file is readable again (the object was repaired): resume as from any other hold.
    const wasUnreadable = record.hold?.reason === SOURCE_UNREADABLE;
    if (wasUnreadable) record.hold = null;
    if (!desired.document || !desired.specDigest) return this.onInvalid(record, desired, req);
    const refused = (await this.deps.provider.admit?.(desired.document, record.operation?.document ?? record.applied?.document ?? null)) ?? [];
    if (refused.length > 0) {
      const issues = refused.map((r) => ({ file: desired.file, line: 0, column: 0, path: r.path, message: r.message }));
      return this.onInvalid(record, { ...desired, issues }, req);
    }
    const doc = desired.document;
    this.describe(record, doc);

    if (doc.spec.suspend) {
      if (record.status !== 'SUSPENDED') {
        record.hold = { reason: 'Suspended', message: 'spec.suspend is true: reconciliation is paused' };
        await this.transition(record, 'SUSPENDED', record.phase, req.trigger, { commit: desired.commit });
      } else {
        await this.save(record);
      }
      return { kind: 'held', status: 'SUSPENDED', reason: 'Suspended' };
    }

    let op = record.operation;
    if (op && (op.kind === 'delete' || op.target.specDigest !== desired.specDigest)) {
      // A newer commit supersedes the operation in flight and resets its backoff.
      op = null;
      record.retry = null;
    }
    if (!op) {
      if (record.applied && record.applied.specDigest === desired.specDigest && record.status !== 'DEPROVISIONED') {
        record.operation = null;
        record.retry = null;
        record.hold = null;
        if (record.status !== 'ACTIVE') {
          await this.transition(record, 'ACTIVE', 'Complete', req.trigger, { commit: desired.commit, reason: 'already applied' });
        } else {
          await this.save(record);
        }
        return { kind: 'converged', status: 'ACTIVE' };
      }
      const kind: OperationKind = record.applied && record.status !== 'DEPROVISIONED' ? 'update' : 'create';
      record.retry = null;
      record.hold = null;
      op = this.startOperation(record, kind, { commit: desired.commit, specDigest: desired.specDigest }, doc, req.trigger);
      await this.transition(record, statusForOperation(kind), 'Request', req.trigger, this.opDetails(op));
    } else if (record.retry && !req.force) {
      if (!record.retry.nextAttemptAt) return { kind: 'stalled', code: record.retry.lastError.code };
      const at = new Date(record.retry.nextAttemptAt);
      if (at.getTime() > this.now().getTime()) return { kind: 'retry', at, attempt: record.retry.attempt };
    }
    if (record.status === 'SUSPENDED' || record.status === 'INVALID' || wasUnreadable) {
      record.hold = null;
      await this.transition(record, statusForOperation(op.kind), op.phase, req.trigger, { resumed: true, commit: op.target.commit });
    }
    return this.run(record, op, req);
  }

  /**
   * A person approves the plan awaiting approval, naming its digest. Checked against the tenant's
   * state now (a digest that is not the one awaiting is E_PLAN_DIGEST_STALE), then taken up by the
   * next reconcile of the tenant, which plans once more and applies only if the plan is still the
   * same: an approval never applies a plan nobody saw. The caller queues that reconcile.
   */
  approvePlan(tenantId: string, planDigest: string, by: string, trigger: string): { operation: Operation['kind']; planDigest: string } {
    const record = this.deps.store.get(tenantId);
    const op = record?.operation;
    const plan = record?.lastPlan;
    if (!record || !op || record.hold?.reason !== 'AwaitingApproval' || plan?.operationId !== op.id || !plan.digest) {
      throw stalled('E_NOT_AWAITING_APPROVAL', `tenant ${tenantId} has no plan awaiting approval`, { tenantId });
    }
    if (plan.digest !== planDigest) {
      throw stalled('E_PLAN_DIGEST_STALE', `${planDigest} is not the plan awaiting approval (${plan.digest}): a new commit or drift changed it; review the current plan and approve that`, {
        tenantId,
        planDigest: plan.digest,
      });
    }
    this.offered.set(tenantId, { operationId: op.id, planDigest, by, trigger, at: this.now().toISOString() });
    return { operation: op.kind, planDigest };
  }

  /**
   * A drift check of an ACTIVE tenant: the provider compares what exists with what was applied and,
   * unless the tenant's `driftPolicy` is `report`, corrects it. A tenant whose plans need approval
   * is only reported: a correction would apply changes nobody approved. Drift found is recorded as a
   * transition (ACTIVE/Complete → ACTIVE/Complete, trigger `drift`) naming the differing fields.
   */
  async checkDrift(tenantId: string, signal?: AbortSignal): Promise<{ kind: 'skipped' | 'clean' | 'drifted' | 'failed'; corrected?: boolean; retryAt?: Date }> {
    const existing = this.deps.store.get(tenantId);
    if (!existing || existing.status !== 'ACTIVE' || existing.operation || !existing.applied) return { kind: 'skipped' };
    const record = structuredClone(existing);
    const doc = (record.applied as NonNullable<TenantRecord['applied']>).document;
    const policy = requiresApproval(doc, this.deps.approvalTiers ?? []) ? 'report' : (doc.spec.driftPolicy ?? 'correct');
    const operationId = this.newId();
    const ctx: ProviderContext = {
      tenantId,
      tenant: doc,
      desired: renderTenant(doc),
      operationId,
      signal: signal ?? new AbortController().signal,
      progress: (message, data) => this.deps.publisher.publish({ type: 'PhaseProgress', tenantId, operationId, phase: 'Verify', message, ...(data ? { data } : {}) }),
    };
    let report;
    try {
      report = await this.deps.provider.refresh(ctx, policy === 'correct');
    } catch (err: unknown) {
      const e = toTenantdError(err, 'E_PROVIDER');
      this.deps.publisher.publish({ type: 'DriftCheckFailed', tenantId, code: e.code, message: e.message });
      return { kind: 'failed' };
    }
    if (!report.drifted) return { kind: 'clean' };
    const changes = report.changes
      .filter((c) => c.action !== 'unchanged')
      .map((c) => ({ ref: refKey(c.ref), action: c.action, ...(c.fields ? { fields: c.fields } : {}) }));
    this.deps.publisher.publish({ type: 'DriftDetected', tenantId, corrected: report.corrected, policy, changes });
    try {
      await this.transition(record, 'ACTIVE', 'Complete', 'drift', { drift: changes, corrected: report.corrected, driftPolicy: policy });
    } catch (err: unknown) {
      const out = await this.bookkeepingFailed(tenantId, toTenantdError(err, 'E_RECONCILE'));
      return { kind: 'failed', ...(out.kind === 'retry' ? { retryAt: out.at } : {}) };
    }
    return { kind: 'drifted', corrected: report.corrected };
  }

  private async onRemoved(record: TenantRecord, req: ReconcileRequest): Promise<ReconcileOutcome> {
    record.desired = null;
    if (record.status === 'DEPROVISIONED' && !record.operation) {
      await this.save(record);
      return { kind: 'converged', status: 'DEPROVISIONED' };
    }
    const doc = record.operation?.kind === 'delete' ? record.operation.document : (record.applied?.document ?? record.operation?.document ?? null);
    if (doc?.spec.deletionProtection) {
      record.hold = {
        reason: 'DeletionProtected',
        message: `tenants/${record.tenantId}.yaml was removed in ${req.commit.slice(0, 12)} but spec.deletionProtection is true: nothing was deprovisioned. Restore the file, or commit it with deletionProtection: false first, then remove it.`,
      };
      await this.save(record);
      return { kind: 'held', status: record.status, reason: 'DeletionProtected' };
    }
    if (!doc) {
      // Nothing was ever applied (e.g. the file was only ever invalid): nothing to tear down.
      record.operation = null;
      record.retry = null;
      record.hold = null;
      await this.transition(record, 'DEPROVISIONED', 'Complete', req.trigger, { commit: req.commit, reason: 'nothing was applied' });
      return { kind: 'converged', status: 'DEPROVISIONED' };
    }
    let op = record.operation;
    if (!op || op.kind !== 'delete') {
      const gate = this.deps.deletionGate?.(record.tenantId) ?? { kind: 'allowed' };
      if (gate.kind === 'unevaluated') return { kind: 'held', status: record.status, reason: 'DeletionPending' };
      if (gate.kind === 'held') {
        // The tenant keeps running; its conditions say why and how the hold ends.
        const unchanged = existingHold(record, 'DeletionHeld', gate.message) && this.deps.store.get(record.tenantId)?.desired === null;
        record.hold = { reason: 'DeletionHeld', message: gate.message };
        if (!unchanged) await this.save(record);
        return { kind: 'held', status: record.status, reason: 'DeletionHeld' };
      }
      record.retry = null;
      record.hold = null;
      op = this.startOperation(record, 'delete', { commit: req.commit, specDigest: 'deleted' }, doc, req.trigger);
      await this.transition(record, 'DEPROVISIONING', 'Request', req.trigger, this.opDetails(op));
    } else if (record.retry && !req.force) {
      if (!record.retry.nextAttemptAt) return { kind: 'stalled', code: record.retry.lastError.code };
      const at = new Date(record.retry.nextAttemptAt);
      if (at.getTime() > this.now().getTime()) return { kind: 'retry', at, attempt: record.retry.attempt };
    }
    return this.run(record, op, req);
  }

  private async onInvalid(record: TenantRecord, desired: DesiredInfrastructureState, req: ReconcileRequest): Promise<ReconcileOutcome> {
    const message = desired.issues.map(formatIssue).join('\n');
    // The operation in flight targeted an older valid commit: keep it so a fix to that same
    // spec resumes it, but do no work while the file is broken. Nothing is touched.
    record.desired = seenDesired(desired);
    record.hold = { reason: 'InvalidSpec', message };
    record.retry = null;
    if (record.status !== 'INVALID') {
      // INVALID is no phase of any operation: the state is plain `INVALID` (a held operation keeps its phase in `operation`).
      await this.transition(record, 'INVALID', null, req.trigger, {
        commit: desired.commit,
        errors: desired.issues.map(formatIssue),
      });
    } else {
      await this.save(record);
    }
    return { kind: 'held', status: 'INVALID', reason: 'InvalidSpec' };
  }

  /**
   * The tenant's file cannot be read from git (a corrupt or missing object): FAILED and stalled
   * until the object is repaired — retrying the provider would not help, and nothing is touched.
   * An operation in flight is kept, so the same spec resumes it once the file reads again.
   */
  private async onUnreadable(record: TenantRecord, desired: DesiredInfrastructureState, req: ReconcileRequest): Promise<ReconcileOutcome> {
    const { code, message } = desired.unreadable as { code: string; message: string };
    const changed = record.hold?.reason !== SOURCE_UNREADABLE || record.hold.message !== message;
    record.hold = { reason: SOURCE_UNREADABLE, message, code };
    if (record.status !== 'FAILED' || changed) {
      // No phase was attempted: the state is plain `FAILED` (an operation in flight keeps its phase in `operation`).
      await this.transition(record, 'FAILED', null, req.trigger, { commit: desired.commit, file: desired.file, blobOid: desired.blobOid, error: { code, kind: 'stalled', message } });
    } else {
      await this.save(record);
    }
    return { kind: 'stalled', code };
  }

  private startOperation(
    record: TenantRecord,
    kind: OperationKind,
    target: Operation['target'],
    document: TenantInfrastructureDocument,
    trigger: string,
  ): Operation {
    const op: Operation = { id: this.newId(), kind, target, document, phase: 'Request', completed: [], trigger, startedAt: this.now().toISOString() };
    record.operation = op;
    return op;
  }

  private async run(record: TenantRecord, op: Operation, req: ReconcileRequest): Promise<ReconcileOutcome> {
    const phases = phasesFor(op.kind);
    const opStatus = statusForOperation(op.kind);
    const retrying = record.retry;
    const trigger = retrying ? `retry:${retrying.attempt}` : req.trigger;
    if (retrying && record.status === 'FAILED') {
      await this.transition(record, opStatus, op.phase, trigger, { operationId: op.id, attempt: retrying.attempt + 1 });
    }
    const rendered: RenderedTenant | null = op.kind === 'delete' ? null : renderTenant(op.document);
    this.deps.publisher.publish({
      type: 'ReconcileStarted',
      tenantId: record.tenantId,
      operationId: op.id,
      operation: op.kind,
      trigger,
      commit: op.target.commit,
    });

    // A completed phase is saved with the next phase's transition, which follows at once: one
    // record write per phase instead of two (the write is most of a render reconcile's cost).
    let unsaved = false;
    for (const phase of phases) {
      if (op.completed.includes(phase)) continue;
      if (phase === 'Apply' && op.phase !== 'Apply' && requiresApproval(op.document, this.deps.approvalTiers ?? [])) {
        const waiting = await this.awaitApproval(record, op, rendered, req, trigger, unsaved);
        if (waiting) return waiting;
      }
      if (op.phase !== phase) {
        if (req.shouldStop?.() || req.signal?.aborted) {
          if (unsaved) await this.save(record);
          return { kind: 'interrupted' };
        }
        op.phase = phase;
        const final = phase === 'Complete';
        const status: TenantStatus = final ? (op.kind === 'delete' ? 'DEPROVISIONED' : 'ACTIVE') : opStatus;
        if (final) this.complete(record, op, rendered);
        const approved = phase === 'Apply' && op.approval ? { approvedPlan: op.approval.planDigest, approvedBy: op.approval.by } : {};
        await this.transition(record, status, phase, trigger, { operationId: op.id, commit: op.target.commit, ...approved });
        unsaved = false;
        if (final) {
          this.deps.publisher.publish({
            type: 'PhaseCompleted',
            tenantId: record.tenantId,
            operationId: op.id,
            phase,
            status,
            summary: `${op.kind} complete`,
            durationMs: 0,
          });
          return { kind: 'converged', status };
        }
      }
      const started = this.now().getTime();
      this.deps.publisher.publish({ type: 'PhaseStarted', tenantId: record.tenantId, operationId: op.id, phase, status: opStatus });
      let result: PhaseResult;
      try {
        result = await this.step(phase, record, op, rendered, req.signal ?? new AbortController().signal);
      } catch (err: unknown) {
        if (req.signal?.aborted) return { kind: 'interrupted' };
        return this.fail(record, op, phase, toTenantdError(err, 'E_PROVIDER'), trigger);
      }
      op.completed.push(phase);
      record.retry = null;
      if (result.outputs) record.outputs = { ...record.outputs, ...result.outputs };
      unsaved = true;
      this.deps.publisher.publish({
        type: 'PhaseCompleted',
        tenantId: record.tenantId,
        operationId: op.id,
        phase,
        status: opStatus,
        summary: result.summary,
        durationMs: this.now().getTime() - started,
      });
    }
    /* c8 ignore next */
    throw new TenantdError('E_PHASES', 'stalled', `operation ${op.id} ended without Complete`);
  }

  /**
   * Before Apply of a tenant that needs approval: go on only with an approval of exactly the plan
   * Apply would carry out now (planned again here, so drift since the approval voids it); else
   * wait (Reconciling=True, AwaitingApproval) with the digest to approve. Null: go on.
   */
  private async awaitApproval(
    record: TenantRecord,
    op: Operation,
    rendered: RenderedTenant | null,
    req: ReconcileRequest,
    trigger: string,
    unsaved: boolean,
  ): Promise<ReconcileOutcome | null> {
    const offered = this.offered.get(record.tenantId);
    const approval = offered?.operationId === op.id ? offered : null;
    if (approval) this.offered.delete(record.tenantId);
    let voided = '';
    if (approval) {
      try {
        await this.step('Plan', record, op, rendered, req.signal ?? new AbortController().signal);
      } catch (err: unknown) {
        if (req.signal?.aborted) return { kind: 'interrupted' };
        return this.fail(record, op, 'Plan', toTenantdError(err, 'E_PROVIDER'), trigger);
      }
      if (record.lastPlan?.digest === approval.planDigest) {
        op.approval = { planDigest: approval.planDigest, by: approval.by, at: approval.at, trigger: approval.trigger };
        record.hold = null;
        this.deps.publisher.publish({ type: 'PlanApproved', tenantId: record.tenantId, operationId: op.id, planDigest: approval.planDigest, by: approval.by });
        return null;
      }
      voided = `The plan changed since ${approval.planDigest} was approved (drift); that approval is void. `;
    }
    const digest = record.lastPlan?.digest ?? '-';
    const message = `${voided}${op.kind} plan ${digest} awaits approval: POST /api/v1/infrastructure/tenants/${record.tenantId}/approve {"planDigest":"${digest}"}`;
    const unchanged = !unsaved && !approval && existingHold(record, 'AwaitingApproval', message);
    record.hold = { reason: 'AwaitingApproval', message };
    if (!unchanged) {
      await this.save(record);
      this.deps.publisher.publish({ type: 'ApprovalRequired', tenantId: record.tenantId, operationId: op.id, planDigest: digest, reason: voided ? 'plan changed since approval' : 'plan needs approval' });
    }
    return { kind: 'held', status: record.status, reason: 'AwaitingApproval' };
  }

  private async step(phase: Phase, record: TenantRecord, op: Operation, rendered: RenderedTenant | null, signal: AbortSignal): Promise<PhaseResult> {
    const p = this.deps.provider;
    const ctx: ProviderContext = {
      tenantId: record.tenantId,
      tenant: op.document,
      desired: rendered,
      operationId: op.id,
      signal,
      progress: (message, data) =>
        this.deps.publisher.publish({ type: 'PhaseProgress', tenantId: record.tenantId, operationId: op.id, phase, message, ...(data ? { data } : {}) }),
    };
    switch (phase) {
      case 'Request':
        return { summary: op.kind === 'delete' ? 'deprovision requested' : `rendered ${rendered ? Object.values(rendered.groups).flat().length : 0} objects` };
      case 'Plan': {
        const plan = await p.plan(ctx);
        const counts: Record<string, number> = {};
        for (const c of plan.changes) counts[c.action] = (counts[c.action] ?? 0) + 1;
        const changes = plan.changes
          .filter((c) => c.action !== 'unchanged')
          .map((c) => ({ ref: refKey(c.ref), action: c.action, ...(c.fields ? { fields: c.fields } : {}) }));
        record.lastPlan = {
          operationId: op.id,
          commit: op.target.commit,
          summary: plan.summary,
          counts,
          changes,
          digest: planDigestOf({ tenantId: record.tenantId, operation: op.kind, specDigest: op.target.specDigest, changes }),
        };
        return plan;
      }
      case 'Apply':
        return op.kind === 'delete' ? p.destroy(ctx) : p.apply(ctx);
      case 'Deploy':
        return p.deploy(ctx);
      case 'Configure':
        return p.configure(ctx);
      case 'Verify':
        return p.verify(ctx);
      /* c8 ignore next 2 */
      default:
        throw new TenantdError('E_PHASE_UNKNOWN', 'stalled', `no step for phase ${phase}`);
    }
  }

  private complete(record: TenantRecord, op: Operation, rendered: RenderedTenant | null): void {
    if (op.kind === 'delete') {
      record.applied = null;
      record.outputs = {};
    } else {
      record.applied = { commit: op.target.commit, specDigest: op.target.specDigest, document: op.document, at: this.now().toISOString() };
      if (rendered) record.outputs = { ...outputsFor(rendered), ...record.outputs };
    }
    record.operation = null;
    record.retry = null;
    record.hold = null;
  }

  private async fail(record: TenantRecord, op: Operation, phase: Phase, err: TenantdError, trigger: string): Promise<ReconcileOutcome> {
    const attempt = (record.retry?.attempt ?? 0) + 1;
    const lastError = { code: err.code, kind: err.kind, message: err.message, phase };
    const at = err.kind === 'stalled' ? null : new Date(this.now().getTime() + backoffDelay(this.deps.backoff, attempt, this.random));
    record.retry = { attempt, nextAttemptAt: at ? at.toISOString() : null, lastError };
    this.deps.publisher.publish({
      type: 'PhaseFailed',
      tenantId: record.tenantId,
      operationId: op.id,
      phase,
      code: err.code,
      kind: err.kind,
      message: err.message,
      attempt,
      nextAttemptAt: record.retry.nextAttemptAt,
    });
    const details = { operationId: op.id, error: { code: err.code, kind: err.kind, message: err.message }, attempt, nextAttemptAt: record.retry.nextAttemptAt };
    if (err.kind === 'waiting') {
      // Waiting on a dependency is not a failure: the status stays, the retry is recorded.
      await this.save(record);
    } else {
      await this.transition(record, 'FAILED', phase, trigger, details);
    }
    return at ? { kind: 'retry', at, attempt } : { kind: 'stalled', code: err.code };
  }

  private describe(record: TenantRecord, doc: TenantInfrastructureDocument): void {
    record.cloudProvider = doc.spec.cloudProvider;
    record.region = doc.spec.region;
    record.namespace = namespaceFor(doc.metadata.tenantId);
    record.configuration = doc.spec.configuration;
    record.terraformStateKey = this.stateKey(record.tenantId);
  }

  private opDetails(op: Operation): Record<string, unknown> {
    return { operationId: op.id, operation: op.kind, commit: op.target.commit, specDigest: op.target.specDigest };
  }

  private newRecord(tenantId: string): TenantRecord {
    const now = this.now().toISOString();
    return {
      id: this.newId(),
      tenantId,
      status: 'PENDING',
      phase: null,
      cloudProvider: null,
      region: null,
      namespace: null,
      configuration: null,
      terraformStateKey: null,
      desired: null,
      applied: null,
      operation: null,
      retry: null,
      conditions: [],
      outputs: {},
      lastPlan: null,
      hold: null,
      generation: 0,
      generationOf: null,
      observed: null,
      reconcileRequestedAt: null,
      lastHandledReconcileAt: null,
      lastTransition: null,
      recentTransitions: [],
      createdAt: now,
      updatedAt: now,
    };
  }

  /** Record first, then the log (see class comment). */
  private async transition(record: TenantRecord, status: TenantStatus, phase: Phase | null, trigger: string, details: Record<string, unknown>): Promise<void> {
    const from = record.lastTransition ? record.lastTransition.toState : stateOf(record);
    const fromStatus = record.status;
    const t: InfrastructureStateTransition = {
      id: this.newId(),
      tenantId: record.tenantId,
      fromState: from,
      toState: machineState(status, phase),
      trigger,
      details,
      timestamp: this.now().toISOString(),
    };
    record.status = status;
    record.phase = phase;
    record.lastTransition = t;
    record.recentTransitions = [...record.recentTransitions, { fromState: t.fromState, toState: t.toState, trigger: t.trigger, timestamp: t.timestamp }].slice(
      -STATUS_TRANSITIONS,
    );
    await this.save(record);
    await this.deps.log.append(t);
    if (fromStatus !== status) {
      this.deps.publisher.publish({ type: 'StatusChanged', tenantId: record.tenantId, from: fromStatus, to: status, reason: trigger });
    }
  }

  private async save(record: TenantRecord): Promise<void> {
    const now = this.now();
    // A reconcile request may have been noted since this reconcile read the record: keep it.
    record.reconcileRequestedAt = this.deps.store.get(record.tenantId)?.reconcileRequestedAt ?? record.reconcileRequestedAt;
    record.updatedAt = now.toISOString();
    record.conditions = computeConditions(record, now);
    noteObserved(record);
    await this.deps.store.put(structuredClone(record));
    this.deps.onRecordChanged?.(record.tenantId);
  }
}

/** The token of a reconcile request no finished reconcile has handled yet, if any. */
const unhandledRequest = (r: TenantRecord | undefined): string | null =>
  r?.reconcileRequestedAt && r.reconcileRequestedAt !== r.lastHandledReconcileAt ? r.reconcileRequestedAt : null;

const existingHold = (record: TenantRecord, reason: string, message: string): boolean => record.hold?.reason === reason && record.hold.message === message;
