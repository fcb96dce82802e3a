import { createHash } from 'node:crypto';
import path from 'node:path';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import { apiError } from './problem.js';

export interface StoredResponse {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

interface Entry extends StoredResponse {
  fingerprint: string;
  at: number;
}

interface Doc {
  entries: Record<string, Entry>;
}

/**
 * `Idempotency-Key` support: the first answer to a key is kept (in `<dataDir>/api-idempotency.json`,
 * so a retry after a daemon restart still gets it) and returned for every retry of the same
 * request, without a second commit. The same key with a different request is 422; a retry while
 * the first is still running is 409. Keys are scoped by caller, method and path, and expire.
 */
export class IdempotencyStore {
  private readonly inFlight = new Set<string>();

  private constructor(
    private readonly db: Low<Doc>,
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number,
    private readonly shared: boolean,
  ) {}

  /**
   * `shared`: other processes write the file too (replicas under leader election, each leading in
   * turn), so it is read again before each lookup: a retry that reaches the next leader is still
   * answered with what the first one did.
   */
  static async open(dataDir: string, opts: { ttlMs?: number; maxEntries?: number; now?: () => number; shared?: boolean } = {}): Promise<IdempotencyStore> {
    const db = new Low<Doc>(new JSONFile<Doc>(path.join(dataDir, 'api-idempotency.json')), { entries: {} });
    await db.read();
    return new IdempotencyStore(db, opts.ttlMs ?? 24 * 3600_000, opts.maxEntries ?? 1000, opts.now ?? Date.now, opts.shared ?? false);
  }

  static scope(caller: string, method: string, path: string, key: string): string {
    return createHash('sha256').update(`${caller}\0${method}\0${path}\0${key}`).digest('hex');
  }

  /** Runs `fn` once per key; a repeat gets the stored answer. */
  async run(scope: string, body: Buffer, fn: () => Promise<StoredResponse>): Promise<StoredResponse & { replayed: boolean }> {
    const fingerprint = createHash('sha256').update(body).digest('hex');
    if (this.shared) {
      // Merged, not replaced: an answer this process is saving right now must not be dropped.
      const mine = this.db.data.entries;
      await this.db.read();
      this.db.data.entries = { ...this.db.data.entries, ...mine };
    }
    const known = this.db.data.entries[scope];
    if (known && this.now() - known.at < this.ttlMs) {
      if (known.fingerprint !== fingerprint) {
        throw apiError('E_IDEMPOTENCY_MISMATCH', 'this Idempotency-Key was used with a different request body', {});
      }
      return { status: known.status, body: known.body, headers: known.headers, replayed: true };
    }
    if (this.inFlight.has(scope)) throw apiError('E_IDEMPOTENCY_IN_PROGRESS', 'a request with this Idempotency-Key is still being processed', {});
    this.inFlight.add(scope);
    try {
      const response = await fn();
      // Only answers that did something are kept; an error may be retried with the same key.
      if (response.status < 300) await this.save(scope, { ...response, fingerprint, at: this.now() });
      return { ...response, replayed: false };
    } finally {
      this.inFlight.delete(scope);
    }
  }

  private async save(scope: string, entry: Entry): Promise<void> {
    const entries = this.db.data.entries;
    entries[scope] = entry;
    const cutoff = this.now() - this.ttlMs;
    const keys = Object.keys(entries);
    for (const k of keys) if ((entries[k]?.at ?? 0) < cutoff) delete entries[k];
    const live = Object.entries(entries).sort((a, b) => a[1].at - b[1].at);
    for (let i = 0; i < live.length - this.maxEntries; i++) delete entries[live[i]![0]];
    await this.db.write();
  }
}
