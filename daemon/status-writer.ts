import { createHash } from 'node:crypto';
import type { ReconciliationEventPublisher } from '../core/events/publisher.js';
import { toTenantdError } from '../core/errors.js';
import type { TenantStateStore } from '../core/state/store.js';
import { renderStatusFile, STATUS_DIR, statusPath } from '../core/status/status-file.js';

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
 * Collects tenants whose record changed and commits all their status files in one commit per
 * reconcile pass, with tenantd's own author. A failed commit keeps the tenants dirty for the
 * next flush; nothing is lost.
 */
export class StatusWriter {
  private dirty = new Set<string>();
  private flushing: Promise<string | null> | null = null;

  constructor(
    private readonly deps: {
      git: StatusCommitter;
      store: TenantStateStore;
      publisher: ReconciliationEventPublisher;
      author: { name: string; email: string };
      branch?: string;
    },
  ) {}

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
      if (committed.get(statusPath(record.tenantId)) !== gitBlobOid(renderStatusFile(record))) {
        this.dirty.add(record.tenantId);
        stale++;
      }
    }
    return stale;
  }

  markDirty(tenantId: string): void {
    this.dirty.add(tenantId);
  }

  get pending(): number {
    return this.dirty.size;
  }

  /** Commit the status of every dirty tenant; returns the commit, or null if nothing changed. */
  flush(): Promise<string | null> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.dirty.size === 0) return Promise.resolve(null);
    const batch = [...this.dirty].sort();
    this.dirty = new Set();
    this.flushing = this.commit(batch).finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async commit(batch: string[]): Promise<string | null> {
    const started = Date.now();
    try {
      const result = await this.deps.git.commitFiles({
        ...(this.deps.branch ? { branch: this.deps.branch } : {}),
        author: this.deps.author,
        message: `tenantd: status of ${batch.length} tenant(s)\n\n${batch.map((id) => `${id}: ${this.deps.store.get(id)?.status ?? '-'}`).join('\n')}\n`,
        // Rendered from the records at commit time (and again if a rejected push is redone).
        build: () =>
          batch.flatMap((id) => {
            const record = this.deps.store.get(id);
            return record ? [{ path: statusPath(id), content: renderStatusFile(record) }] : [];
          }),
      });
      if (result) this.deps.publisher.publish({ type: 'StatusCommitted', commit: result.commit, tenants: batch.length, durationMs: Date.now() - started });
      return result?.commit ?? null;
    } catch (err: unknown) {
      for (const id of batch) this.dirty.add(id);
      const e = toTenantdError(err, 'E_STATUS_COMMIT');
      this.deps.publisher.publish({ type: 'StatusCommitFailed', code: e.code, message: e.message });
      return null;
    }
  }
}
