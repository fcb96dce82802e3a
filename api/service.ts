import { randomUUID } from 'node:crypto';
import { isTenantdError } from '../core/errors.js';
import { specDigestOf, type DesiredStateLoader } from '../core/desired/loader.js';
import type { DeletionHold } from '../core/deletion/guard.js';
import { explainHold, APPROVE_TRAILER } from '../core/deletion/guard.js';
import type { TenantdError } from '../core/errors.js';
import type { ReconciliationEventPublisher } from '../core/events/publisher.js';
import type { TransitionLog } from '../core/log/transition-log.js';
import type { InfrastructureStateTransition } from '../core/log/transition.js';
import type { TenantStatus } from '../core/phases.js';
import type { DesiredInfrastructureState, TenantRecord } from '../core/state/record.js';
import type { TenantStateStore } from '../core/state/store.js';
import { ABSENT, generationFor, specIdentity } from '../core/status/generation.js';
import { observedFields } from '../core/status/status-file.js';
import { DNS1123_LABEL, MAX_TENANT_ID_LENGTH, namespaceFor, type TenantInfrastructureDocument, type ValidationIssue } from '../core/tenant/types.js';
import { parseTenantFile, serializeTenant } from '../core/tenant/validate.js';
import { apiError } from './problem.js';
import { bodyFromDocument, documentFromBody, mergePatch } from './tenant-body.js';

/** The parts of the git store the API writes and reads through. */
export interface ApiGit {
  resolve(ref: string): Promise<string | null>;
  fileAt(commit: string, path: string): Promise<{ oid: string; text: string } | null>;
  commitFiles(req: {
    message: string;
    author: { name: string; email: string };
    build: (head: string | null) => Promise<Array<{ path: string; content: string | null }>> | Array<{ path: string; content: string | null }>;
  }): Promise<{ commit: string; parent: string | null } | null>;
}

export interface ServiceDeps {
  git: ApiGit;
  branch: string;
  store: TenantStateStore;
  log: TransitionLog;
  loader: DesiredStateLoader;
  publisher: ReconciliationEventPublisher;
  /** Tell the daemon a commit landed (it polls at once, naming `trigger`). */
  nudge(trigger: string): void;
  /** Note the request (its `requestedAt` token) and queue a forced reconcile; resolves once the request is durable. */
  requestReconcile(tenantId: string, trigger: string, requestedAt: string): Promise<void> | void;
  /** A person approves the plan awaiting approval by its digest (the daemon checks it and applies). */
  approvePlan?(tenantId: string, planDigest: string, by: string, trigger: string): { operation: string; planDigest: string };
  /** Why the repository cannot take writes now (tracked branch gone, invalid layout), or null. */
  problem?: () => TenantdError | null;
  /** The mass-deletion breaker: the hold, and a person's approval of it. */
  deletions?: {
    hold(): DeletionHold | null;
    approve(commit: string, by: string, trigger: string): Promise<string[]>;
  };
  now?: () => Date;
}

/** A deletion hold as the API shows it: what is held, why, and the two ways to approve it. */
export interface DeletionHoldView {
  commit: string;
  previous: string | null;
  reasons: DeletionHold['reasons'];
  count: number;
  tenants: string[];
  limit: number;
  fleet: number;
  since: string;
  message: string;
  approve: { commit: string; trailer: string };
}

export interface Caller {
  name: string;
  requestId: string;
}

/** The seed's TenantInfrastructure entity as the API shows it. */
export interface TenantEntity {
  id: string | null;
  tenantId: string;
  /** metadata.name and metadata.labels of the current (or last applied) file. */
  name: string | null;
  labels: Record<string, string>;
  status: TenantStatus;
  phase: string | null;
  cloudProvider: string | null;
  region: string | null;
  namespace: string;
  configuration: TenantInfrastructureDocument['spec']['configuration'] | null;
  terraformStateKey: string | null;
  conditions: TenantRecord['conditions'];
  /**
   * The generation of the current file (Kubernetes' metadata.generation): tenantd's count of its
   * spec changes, one more than the last counted when a commit changed the spec and tenantd has not
   * reconciled it yet.
   */
  generation: number;
  /** The generation last reconciled to its end (Ready, or Stalled); `< generation` means in progress. */
  observedGeneration: number;
  /** Findings in the current file that do not stop it, e.g. a retired database size and its replacement. */
  warnings: ValidationIssue[];
  /** The newest commit of the tracked branch that holds this tenant's current file. */
  desiredCommit: string | null;
  /** The spec digest of the current file; null when it is invalid or removed. */
  desiredSpecDigest: string | null;
  /** The desired commit of observedGeneration (the same value as status/<id>.yaml). */
  observedCommit: string | null;
  observedSpecDigest: string | null;
  /** The commit last applied successfully. */
  appliedCommit: string | null;
  appliedSpecDigest: string | null;
  /** The requestedAt token of the newest `POST …/reconcile` a finished reconcile handled. */
  lastHandledReconcileAt: string | null;
  /** False while the current file has not been picked up by a reconcile yet. */
  reconciled: boolean;
  outputs: Record<string, string>;
  retry: TenantRecord['retry'];
  lastPlan: TenantRecord['lastPlan'];
  spec: TenantInfrastructureDocument['spec'] | null;
  createdAt: string | null;
  updatedAt: string | null;
  /** When the status or phase last changed. */
  lastTransitionTime: string | null;
}

const tenantPath = (id: string): string => `tenants/${id}.yaml`;

export function assertTenantId(id: string): void {
  if (!DNS1123_LABEL.test(id) || id.length > MAX_TENANT_ID_LENGTH) {
    throw apiError(
      'E_BAD_TENANT_ID',
      `tenant id must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit) of at most ${MAX_TENANT_ID_LENGTH} characters`,
      { errors: [{ path: 'tenantId', message: 'not a DNS-1123 label of at most 56 characters' }] },
    );
  }
}

/** The author of a commit made for a caller: the caller's name, an address that says where it came from. */
const authorOf = (caller: Caller): { name: string; email: string } => ({
  name: caller.name,
  email: `${caller.name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'api'}@api.tenantd`,
});

/**
 * The TenantInfrastructureService: every write is one commit to the tenants repository, authored
 * as the caller with the request id in the message; the daemon reconciles it like any other
 * commit. Checks that depend on the current file (exists, ETag, deletion protection) run inside
 * the commit's build step, which the git store runs against the branch head under its lock — and
 * again on the new head if a push is rejected — so two writers can never both pass them.
 */
export class TenantInfrastructureService {
  private readonly now: () => Date;

  constructor(private readonly deps: ServiceDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  private async head(): Promise<string | null> {
    return this.deps.git.resolve(`refs/heads/${this.deps.branch}`);
  }

  private async currentFile(head: string | null, tenantId: string): Promise<{ oid: string; text: string } | null> {
    return head ? this.deps.git.fileAt(head, tenantPath(tenantId)) : null;
  }

  /** The entity and its ETag (the tenant file's blob id), or null when neither a file nor a record exists. */
  async get(tenantId: string): Promise<{ entity: TenantEntity; etag: string | null } | null> {
    assertTenantId(tenantId);
    const head = await this.head();
    // A file whose object is damaged is still this tenant's: show its record (FAILED, naming the object).
    const file = await this.currentFile(head, tenantId).catch((err: unknown) => {
      if (isTenantdError(err) && err.code.startsWith('E_GIT_OBJECT')) return null;
      throw err;
    });
    const record = this.deps.store.get(tenantId);
    if (!file && !record) return null;
    const parsed = file ? parseTenantFile(tenantPath(tenantId), file.text) : null;
    const doc = parsed?.ok ? parsed.tenant : (record?.applied?.document ?? null);
    const seen = record?.desired;
    const specDigest = file && seen?.blobOid === file.oid ? seen.specDigest : parsed?.ok ? specDigestOf(parsed.tenant) : null;
    const warnings = parsed?.ok ? parsed.warnings : [];
    return { entity: this.entity(tenantId, record, file ? { oid: file.oid, commit: head, specDigest } : null, doc, warnings), etag: file ? `"${file.oid}"` : null };
  }

  private entity(
    tenantId: string,
    record: TenantRecord | undefined,
    file: { oid: string; commit: string | null; specDigest: string | null } | null,
    doc: TenantInfrastructureDocument | null,
    warnings: ValidationIssue[],
  ): TenantEntity {
    const seen = record?.desired ?? null;
    const reconciled = file ? seen?.blobOid === file.oid && !record?.operation : !record || record.status === 'DEPROVISIONED';
    const observed = record ? observedFields(record) : null;
    return {
      id: record?.id ?? null,
      tenantId,
      name: doc?.metadata.name ?? null,
      labels: doc?.metadata.labels ?? {},
      status: record?.status ?? 'PENDING',
      phase: record?.phase ?? null,
      cloudProvider: record?.cloudProvider ?? doc?.spec.cloudProvider ?? null,
      region: record?.region ?? doc?.spec.region ?? null,
      namespace: record?.namespace ?? namespaceFor(tenantId),
      configuration: record?.configuration ?? doc?.spec.configuration ?? null,
      terraformStateKey: record?.terraformStateKey ?? null,
      conditions: record?.conditions ?? [],
      // A commit tenantd has not reconciled yet already counts, so a client never reads the old
      // generation as current (the daemon counts it the same way when it gets there).
      generation: generationFor(record, file ? specIdentity({ specDigest: file.specDigest, blobOid: file.oid }) : ABSENT),
      observedGeneration: observed?.observedGeneration ?? 0,
      warnings,
      desiredCommit: seen?.blobOid === file?.oid ? (seen?.commit ?? null) : (file?.commit ?? null),
      desiredSpecDigest: file?.specDigest ?? null,
      observedCommit: observed?.observedCommit ?? null,
      observedSpecDigest: observed?.observedSpecDigest ?? null,
      appliedCommit: observed?.appliedCommit ?? null,
      appliedSpecDigest: observed?.appliedSpecDigest ?? null,
      lastHandledReconcileAt: observed?.lastHandledReconcileAt ?? null,
      reconciled,
      outputs: record?.outputs ?? {},
      retry: record?.retry ?? null,
      lastPlan: record?.lastPlan ?? null,
      spec: doc?.spec ?? null,
      createdAt: record?.createdAt ?? null,
      updatedAt: record?.updatedAt ?? null,
      lastTransitionTime: record?.lastTransition?.timestamp ?? null,
    };
  }

  /**
   * Tenants known to the daemon (records and desired files), sorted by id, filtered by status and
   * by `q` (a case-insensitive substring of the id or name), paged after a tenant id. `counts` are
   * per status over the whole fleet, so a dashboard needs one call.
   */
  list(opts: { status?: string; q?: string; limit: number; after?: string }): { items: TenantEntity[]; next: string | null; total: number; counts: Record<string, number> } {
    const ids = new Set<string>(this.deps.store.ids());
    for (const d of this.deps.loader.all()) ids.add(d.tenantId);
    const q = opts.q?.toLowerCase();
    const items: TenantEntity[] = [];
    const counts: Record<string, number> = {};
    let total = 0;
    let next: string | null = null;
    for (const id of [...ids].sort()) {
      const record = this.deps.store.get(id);
      const desired = this.deps.loader.get(id);
      const status = record?.status ?? 'PENDING';
      counts[status] = (counts[status] ?? 0) + 1;
      if (opts.status && status !== opts.status) continue;
      const doc = desired?.document ?? record?.applied?.document ?? null;
      if (q && !id.includes(q) && !(doc?.metadata.name.toLowerCase().includes(q) ?? false)) continue;
      total++;
      if (opts.after && id <= opts.after) continue;
      if (items.length === opts.limit) {
        next ??= items.at(-1)?.tenantId ?? null;
        continue;
      }
      items.push(this.entity(id, record, desired ? { oid: desired.blobOid, commit: desired.commit, specDigest: desired.specDigest } : null, doc, desired?.warnings ?? []));
    }
    return { items, next, total, counts };
  }

  async transitions(tenantId: string, opts: { offset: number; limit: number }): Promise<{ items: InfrastructureStateTransition[]; total: number }> {
    assertTenantId(tenantId);
    const record = this.deps.store.get(tenantId);
    const logged = this.deps.log.countFor(tenantId);
    // A record is written before its transition is appended to the log (so a crash between the two
    // is repaired from the record at start): for that moment the newest transition is only in the
    // record. Show it, so a status and its history never disagree.
    const last = record?.lastTransition ?? null;
    const pending = last && this.deps.log.lastId(tenantId) !== last.id ? last : null;
    const total = logged + (pending ? 1 : 0);
    if (total === 0 && !record) throw apiError('E_TENANT_NOT_FOUND', `no tenant ${tenantId}`, { tenantId });
    const items = await this.deps.log.read(tenantId, opts);
    if (pending && opts.offset <= logged && logged < opts.offset + opts.limit) items.push(pending);
    return { items, total };
  }

  async desired(tenantId: string): Promise<DesiredInfrastructureState> {
    assertTenantId(tenantId);
    const head = await this.head();
    const file = await this.currentFile(head, tenantId);
    const known = this.deps.loader.get(tenantId);
    if (file && known?.blobOid === file.oid) return known;
    if (!file) throw apiError('E_TENANT_NOT_FOUND', `tenants/${tenantId}.yaml does not exist on ${this.deps.branch}`, { tenantId });
    // Committed but not yet seen by the daemon: parse it here, the same way.
    const parsed = parseTenantFile(tenantPath(tenantId), file.text);
    return {
      tenantId,
      file: tenantPath(tenantId),
      commit: head as string,
      blobOid: file.oid,
      specDigest: parsed.ok ? specDigestOf(parsed.tenant) : null,
      document: parsed.ok ? parsed.tenant : null,
      issues: parsed.ok ? [] : parsed.issues,
      ...(parsed.ok && parsed.warnings.length ? { warnings: parsed.warnings } : {}),
    };
  }

  async provision(tenantId: string, body: unknown, caller: Caller): Promise<{ commit: string; entity: TenantEntity; etag: string }> {
    assertTenantId(tenantId);
    const doc = documentFromBody(tenantId, body);
    const text = serializeTenant(doc);
    const result = await this.commit(caller, `provision ${tenantId}`, async (head) => {
      if (await this.currentFile(head, tenantId)) throw apiError('E_TENANT_EXISTS', `tenant ${tenantId} already exists; use PUT to change it`, { tenantId });
      return [{ path: tenantPath(tenantId), content: text }];
    });
    return this.written(tenantId, result);
  }

  async update(tenantId: string, patch: unknown, ifMatch: string | undefined, caller: Caller): Promise<{ commit: string | null; entity: TenantEntity; etag: string }> {
    assertTenantId(tenantId);
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
      throw apiError('E_VALIDATION', 'the body must be a JSON object (a merge patch of the tenant)', { errors: [{ path: '', message: 'must be an object' }] });
    }
    const result = await this.commit(caller, `update ${tenantId}`, async (head) => {
      const file = await this.currentFile(head, tenantId);
      if (!file) throw apiError('E_TENANT_NOT_FOUND', `tenant ${tenantId} does not exist`, { tenantId });
      checkIfMatch(ifMatch, file.oid);
      const current = parseTenantFile(tenantPath(tenantId), file.text);
      if (!current.ok) {
        // A broken file is fixed by replacing it whole: merge onto nothing but the patch.
        return [{ path: tenantPath(tenantId), content: serializeTenant(documentFromBody(tenantId, patch)) }];
      }
      const merged = mergePatch(bodyFromDocument(current.tenant), patch);
      return [{ path: tenantPath(tenantId), content: serializeTenant(documentFromBody(tenantId, merged)) }];
    });
    return this.written(tenantId, result);
  }

  async remove(tenantId: string, confirm: string | undefined, ifMatch: string | undefined, caller: Caller): Promise<{ commit: string; entity: TenantEntity | null }> {
    assertTenantId(tenantId);
    if (confirm !== tenantId) {
      throw apiError('E_CONFIRMATION_REQUIRED', `deprovisioning is irreversible: repeat the tenant id as ?confirm=${tenantId}`, {
        errors: [{ path: 'confirm', message: `must equal the tenant id "${tenantId}"` }],
      });
    }
    const result = await this.commit(caller, `deprovision ${tenantId}`, async (head) => {
      const file = await this.currentFile(head, tenantId);
      if (!file) throw apiError('E_TENANT_NOT_FOUND', `tenant ${tenantId} does not exist`, { tenantId });
      checkIfMatch(ifMatch, file.oid);
      const current = parseTenantFile(tenantPath(tenantId), file.text);
      if (current.ok && current.tenant.spec.deletionProtection) {
        throw apiError('E_DELETION_PROTECTED', `tenant ${tenantId} has deletionProtection: true; set it to false with PUT first`, { tenantId });
      }
      return [{ path: tenantPath(tenantId), content: null }];
    });
    if (!result) throw apiError('E_TENANT_NOT_FOUND', `tenant ${tenantId} does not exist`, { tenantId });
    const after = await this.get(tenantId);
    return { commit: result.commit, entity: after?.entity ?? null };
  }

  /**
   * `POST …/reconcile`, with Flux's `reconcile.fluxcd.io/requestedAt` semantics: the request carries a
   * token (`{"requestedAt": "…"}`, or the time now); once a reconcile that saw it has ended, the
   * tenant's `lastHandledReconcileAt` is that token.
   */
  async reconcile(tenantId: string, body: unknown, caller: Caller): Promise<{ requestedAt: string }> {
    assertTenantId(tenantId);
    const requestedAt = requestedAtOf(body) ?? this.now().toISOString();
    if (!this.deps.store.get(tenantId) && !this.deps.loader.get(tenantId)) {
      throw apiError('E_TENANT_NOT_FOUND', `no tenant ${tenantId}`, { tenantId });
    }
    await this.deps.requestReconcile(tenantId, `api:${caller.requestId}`, requestedAt);
    return { requestedAt };
  }

  /**
   * Approve the tenant's plan awaiting approval by its digest: 409 E_PLAN_DIGEST_STALE when it is
   * not that plan. Approving a deprovision also needs `tenants:delete` (`mayDelete`).
   */
  approvePlan(tenantId: string, body: unknown, caller: Caller, mayDelete: boolean): { tenantId: string; planDigest: string; operation: string; trigger: string } {
    assertTenantId(tenantId);
    const planDigest = (body as { planDigest?: unknown } | null)?.planDigest;
    if (typeof planDigest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(planDigest) || Object.keys(body as object).some((k) => k !== 'planDigest')) {
      throw apiError('E_VALIDATION', 'the body must be {"planDigest": "sha256:<64 hex digits>"} (lastPlan.digest of the tenant)', {
        errors: [{ path: 'planDigest', message: 'must be a sha256: digest' }],
      });
    }
    const record = this.deps.store.get(tenantId);
    if (!record && !this.deps.loader.get(tenantId)) throw apiError('E_TENANT_NOT_FOUND', `no tenant ${tenantId}`, { tenantId });
    if (record?.operation?.kind === 'delete' && !mayDelete) throw apiError('E_FORBIDDEN_SCOPE', 'approving a deprovision needs the tenants:delete scope', { scope: 'tenants:delete' });
    if (!this.deps.approvePlan) throw apiError('E_NOT_AWAITING_APPROVAL', `tenant ${tenantId} has no plan awaiting approval`, { tenantId });
    const trigger = `approve:${caller.requestId}`;
    const approved = this.deps.approvePlan(tenantId, planDigest, caller.name, trigger);
    return { tenantId, planDigest: approved.planDigest, operation: approved.operation, trigger };
  }

  /** The deletion hold, or null when nothing is held. */
  deletionHold(): DeletionHoldView | null {
    const hold = this.deps.deletions?.hold() ?? null;
    if (!hold) return null;
    return {
      commit: hold.commit,
      previous: hold.previous,
      reasons: hold.reasons,
      count: hold.tenants.length,
      tenants: hold.tenants,
      limit: hold.limit,
      fleet: hold.fleet,
      since: hold.since,
      message: explainHold(hold),
      approve: { commit: hold.commit, trailer: `${APPROVE_TRAILER}: ${hold.tenants.length}` },
    };
  }

  /** Approve the hold at exactly `body.commit`: its tenants are deprovisioned. */
  async approveDeletions(body: unknown, caller: Caller): Promise<{ commit: string; tenants: string[]; trigger: string }> {
    const commit = (body as { commit?: unknown } | null)?.commit;
    if (typeof commit !== 'string' || !/^[0-9a-f]{40}$/.test(commit) || Object.keys(body as object).some((k) => k !== 'commit')) {
      throw apiError('E_VALIDATION', 'the body must be {"commit": "<the held commit, 40 hex digits>"} (see GET /api/v1/deletions)', {
        errors: [{ path: 'commit', message: 'must be the full commit id of the hold' }],
      });
    }
    if (!this.deps.deletions) throw apiError('E_NO_DELETION_HOLD', 'no deletion is held: there is nothing to approve');
    const trigger = `approve:${caller.requestId}`;
    const tenants = await this.deps.deletions.approve(commit, caller.name, trigger);
    return { commit, tenants, trigger };
  }

  private async commit(
    caller: Caller,
    action: string,
    build: (head: string | null) => Promise<Array<{ path: string; content: string | null }>>,
  ): Promise<{ commit: string; parent: string | null } | null> {
    const problem = this.deps.problem?.();
    if (problem) throw problem;
    const started = this.now().getTime();
    const result = await this.deps.git.commitFiles({
      author: authorOf(caller),
      // One line per trailer: a caller's name must never add one (e.g. an approval trailer).
      message: `${action}\n\nRequest-Id: ${caller.requestId}\nRequested-By: ${caller.name.replace(/[\r\n\0]+/g, ' ')}\n`,
      build,
    });
    if (result) {
      this.deps.publisher.publish({ type: 'TenantCommitted', commit: result.commit, action, requestId: caller.requestId, durationMs: this.now().getTime() - started });
      this.deps.nudge(`api:${caller.requestId}`);
    }
    return result;
  }

  private async written(tenantId: string, result: { commit: string } | null): Promise<{ commit: string; entity: TenantEntity; etag: string }> {
    const after = await this.get(tenantId);
    if (!after || !after.etag) throw apiError('E_TENANT_NOT_FOUND', `tenant ${tenantId} vanished after the write`, { tenantId });
    // No commit means the write changed nothing (same content): answer with the current state.
    const head = result?.commit ?? (await this.head()) ?? '';
    return { commit: head, entity: after.entity, etag: after.etag };
  }
}

const REQUESTED_AT = /^[\x21-\x7e]{1,64}$/;

/** The optional body of `POST …/reconcile`: nothing, or `{"requestedAt": "<token>"}`. */
function requestedAtOf(body: unknown): string | null {
  if (body === undefined) return null;
  const bad = (path: string, message: string): never => {
    throw apiError('E_VALIDATION', `the reconcile request body: ${path ? `${path} ` : ''}${message}`, { errors: [{ path, message }] });
  };
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return bad('', 'must be an object such as {"requestedAt": "2026-01-01T00:00:00Z"}');
  const unknown = Object.keys(body).filter((k) => k !== 'requestedAt');
  if (unknown.length > 0) return bad(unknown[0] as string, 'is not a field of a reconcile request (only requestedAt is)');
  const value = (body as { requestedAt?: unknown }).requestedAt;
  if (value === undefined) return null;
  if (typeof value !== 'string' || !REQUESTED_AT.test(value)) return bad('requestedAt', 'must be 1 to 64 printable characters without spaces (an RFC 3339 time is usual)');
  return value;
}

const ENTITY_TAG = /^(W\/)?"[\x21\x23-\x7e]*"$/;

/**
 * RFC 9110 §13.1.1: If-Match is `*` or a list of entity tags, compared strongly — a weak tag
 * (`W/"…"`) never matches, since a weak tag only claims "about the same". An empty or malformed
 * value is a client error (400), not a wildcard.
 */
export function checkIfMatch(ifMatch: string | undefined, oid: string): void {
  if (ifMatch === undefined) return;
  const value = ifMatch.trim();
  if (value === '*') return;
  const tags = value.split(',').map((s) => s.trim());
  if (value === '' || !tags.every((tag) => ENTITY_TAG.test(tag))) {
    throw apiError('E_BAD_REQUEST', 'If-Match must be "*" or a list of entity tags such as "<etag>" (as sent in ETag)', {
      errors: [{ path: 'If-Match', message: value === '' ? 'empty' : 'not a list of entity tags' }],
    });
  }
  if (!tags.includes(`"${oid}"`)) {
    const weak = tags.includes(`W/"${oid}"`) ? ' (a weak tag W/"…" never matches: If-Match compares strongly)' : '';
    throw apiError('E_PRECONDITION_FAILED', `If-Match does not match the current ETag: the tenant changed since you read it${weak}`, { etag: `"${oid}"` });
  }
}

export const newRequestId = (): string => randomUUID();
