import { createHash } from 'node:crypto';
import type { ReconciliationEventPublisher } from '../core/events/publisher.js';
import { toTenantdError } from '../core/errors.js';
import type { TenantRecord } from '../core/state/record.js';
import type { TenantStateStore } from '../core/state/store.js';
import { renderStatusFile, STATUS_DIR, statusPath } from '../core/status/status-file.js';
import { realTimers, type Timers } from './timers.js';

export interface StatusCommitter {
  commitFiles(req: {
    branch?: string;
    message: string;
    author: { name: string; email: string };
    build: (head: string | null) => Promise<Array<{ path: string; content: string | null }>> | Array<{ path: string; content: string | null }>;
  }): Promise<{ commit: string; parent: string | null } | null>;
  resolve(ref: string): Promise<string | null>;
  listFiles(commit: string, dir: string): Promise<Array<{ path: string; oid: string }>>;
}

/** The id git gives a blob with this content: lets us compare without reading the blob. */
export function gitBlobOid(content: string): string {
  const body = Buffer.from(content, 'utf8');
  return createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex');
}

/**
 * What a reader of a status file acts on: status, phase, the conditions' status and reason, the
 * commits and digests observed, the operation, the error's code, holds, outputs, validation errors.
 * Left out on purpose: retry counters and times, messages that carry them, timestamps and the
 * transition list — a tenant retrying the same failure changes only those, and must not make a
 * commit per attempt. The record (and so the API) has them all, always.
 */
export function statusNewsDigest(record: TenantRecord): string {
  const op = record.operation;
  const err = record.retry?.lastError;
  const view = [
    record.status,
    record.phase,
    record.conditions.map((c) => [c.type, c.status, c.reason]),
    record.desired ? [record.desired.commit, record.desired.specDigest, record.desired.issues.map((i) => [i.path, i.message])] : null,
    record.applied ? [record.applied.commit, record.applied.specDigest] : null,
    op ? [op.id, op.kind, op.phase, op.target.commit] : null,
    record.retry && err ? [err.code, err.kind, err.phase, record.retry.nextAttemptAt === null] : null,
    record.hold ? [record.hold.reason, record.hold.message] : null,
    Object.entries(record.outputs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    record.namespace,
    record.terraformStateKey,
  ];
  return createHash('sha1').update(JSON.stringify(view)).digest('base64');
}

export interface StatusWriterDeps {
  git: StatusCommitter;
  store: TenantStateStore;
  publisher: ReconciliationEventPublisher;
  author: { name: string; email: string };
  branch?: string;
  /** The least time between two status commits, ms (`--status-interval`); 0 = no spacing. */
  intervalMs?: number;
  timers?: Timers;
  /** Whether the tenant's reconcile is running now: a retry attempt in flight is committed when it ends. */
  busy?: (tenantId: string) => boolean;
}

/**
 * Commits the status files of tenants whose record changed, many tenants per commit, with
 * tenantd's own author — but only when something a reader acts on changed (`statusNewsDigest`),
 * and at most once per `intervalMs`: a fleet retrying against an unreachable cluster for a day
 * makes a commit when its state changes, not one per retry. `flush()` (shutdown, `whenIdle`)
 * commits every changed record, news or not, so git matches the records when the daemon stops.
 * A failed commit keeps the tenants dirty and is tried again an interval later; nothing is lost.
 */
export class StatusWriter {
  private dirty = new Set<string>();
  /** News digest of the status each tenant has in git, as this process committed it (absent: unknown). */
  private readonly committed = new Map<string, string>();
  private flushing: Promise<string | null> | null = null;
  private lastCommitAt: number | null = null;
  private timer: unknown = null;
  private timerAt = Infinity;
  private closed = false;
  private readonly intervalMs: number;
  private readonly timers: Timers;

  constructor(private readonly deps: StatusWriterDeps) {
    this.intervalMs = deps.intervalMs ?? 0;
    this.timers = deps.timers ?? realTimers;
  }

  /**
   * After a restart the in-memory dirty set is gone: find every tenant whose committed status
   * file differs from its record (by blob id, nothing is read) so a kill never leaves status stale.
   */
  async markStale(trackedBranch: string): Promise<number> {
    const head = await this.deps.git.resolve(this.deps.branch ?? trackedBranch);
    const committed = new Map<string, string>();
    if (head) for (const f of await this.deps.git.listFiles(head, STATUS_DIR)) committed.set(f.path, f.oid);
    let stale = 0;
    for (const record of this.deps.store.all()) {
      const oid = committed.get(statusPath(record.tenantId));
      if (oid === gitBlobOid(renderStatusFile(record))) {
        this.committed.set(record.tenantId, statusNewsDigest(record));
      } else {
        this.dirty.add(record.tenantId);
        stale++;
      }
    }
    return stale;
  }

  /** A tenant's record changed: its status is committed with the next batch that has news. */
  markDirty(tenantId: string): void {
    this.dirty.add(tenantId);
    // A long pass still gets its progress committed, an interval after its first change.
    this.schedule(this.timers.now() + this.intervalMs);
  }

  /** The daemon has nothing left to do: commit the news now, or as soon as the interval allows. */
  requestFlush(): void {
    if (this.dirty.size > 0) this.schedule(this.earliestNext());
  }

  /** Tenants whose record changed since their status was last committed (news or not). */
  get pending(): number {
    return this.dirty.size;
  }

  /** Resolves when no commit is in progress (it starts none). */
  async settled(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** Commit the status of every changed tenant now; returns the commit, or null if nothing changed. */
  flush(): Promise<string | null> {
    return this.run(() => [...this.dirty]);
  }

  /** Stop scheduling commits (shutdown: the daemon flushes once more itself; a leader stepping down). */
  close(): void {
    this.closed = true;
    this.cancelTimer();
  }

  /** Schedule commits again after close() (a replica that leads again). */
  reopen(): void {
    this.closed = false;
    if (this.dirty.size > 0) this.schedule(this.earliestNext());
  }

  private earliestNext(): number {
    return this.lastCommitAt === null ? this.timers.now() : this.lastCommitAt + this.intervalMs;
  }

  private schedule(at: number): void {
    if (this.closed || (this.timer !== null && this.timerAt <= at)) return;
    this.cancelTimer();
    this.timerAt = at;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      void this.flushNews();
    }, Math.max(0, at - this.timers.now()));
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private async flushNews(): Promise<void> {
    let deferred = false;
    await this.run(() =>
      [...this.dirty].filter((id) => {
        const record = this.deps.store.get(id);
        if (!record) return true;
        if (record.retry && this.deps.busy?.(id)) {
          deferred = true;
          return false;
        }
        return this.committed.get(id) !== statusNewsDigest(record);
      }),
    );
    // News that arrived during the commit, or an attempt still in flight, waits for the next slot.
    if (deferred || this.hasNews()) this.schedule(this.earliestNext());
  }

  private hasNews(): boolean {
    for (const id of this.dirty) {
      const record = this.deps.store.get(id);
      if (!record || this.committed.get(id) !== statusNewsDigest(record)) return true;
    }
    return false;
  }

  private run(select: () => string[]): Promise<string | null> {
    if (this.flushing) return this.flushing.then(() => this.run(select));
    const batch = select().sort();
    if (batch.length === 0) return Promise.resolve(null);
    for (const id of batch) this.dirty.delete(id);
    this.lastCommitAt = this.timers.now();
    this.flushing = this.commit(batch).finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async commit(batch: string[]): Promise<string | null> {
    const started = Date.now();
    const digests = new Map<string, string>();
    try {
      const result = await this.deps.git.commitFiles({
        ...(this.deps.branch ? { branch: this.deps.branch } : {}),
        author: this.deps.author,
        message: `tenantd: status of ${batch.length} tenant(s)\n\n${batch.map((id) => `${id}: ${this.deps.store.get(id)?.status ?? '-'}`).join('\n')}\n`,
        // Rendered from the records at commit time (and again if a rejected push is redone).
        build: () =>
          batch.flatMap((id) => {
            const record = this.deps.store.get(id);
            if (!record) return [];
            digests.set(id, statusNewsDigest(record));
            return [{ path: statusPath(id), content: renderStatusFile(record) }];
          }),
      });
      for (const [id, digest] of digests) this.committed.set(id, digest);
      if (result) this.deps.publisher.publish({ type: 'StatusCommitted', commit: result.commit, tenants: batch.length, durationMs: Date.now() - started });
      return result?.commit ?? null;
    } catch (err: unknown) {
      for (const id of batch) this.dirty.add(id);
      const e = toTenantdError(err, 'E_STATUS_COMMIT');
      this.deps.publisher.publish({ type: 'StatusCommitFailed', code: e.code, message: e.message });
      this.schedule(this.earliestNext());
      return null;
    }
  }
}
