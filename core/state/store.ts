import path from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { groupedDirSync, nodeDurableFs, writeDurably, type DurableFs } from '../durable-fs.js';
import { TenantdError } from '../errors.js';
import type { TenantRecord } from './record.js';
import { upgradeRecord, type StoredRecord } from './upgrade.js';

export interface DiscardedRecord {
  tenantId: string;
  file: string;
  movedTo: string;
  message: string;
}

/** Why `data` (read from `<tenantId>.json`) is not that tenant's record; null when it is. */
function recordProblem(data: unknown, tenantId: string): string | null {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return 'not a JSON object';
  const r = data as Partial<TenantRecord>;
  if (r.tenantId !== tenantId) return `its tenantId ${JSON.stringify(r.tenantId)} does not match the file name`;
  if (typeof r.status !== 'string' || !Array.isArray(r.conditions) || !Array.isArray(r.recentTransitions)) return 'not a tenant record (status, conditions or recentTransitions missing)';
  return null;
}

/**
 * A lowdb adapter that survives power loss, not only a kill: the document is written to a temp
 * file, fdatasync'd, renamed over the old one, and the directory fsync'd (grouped with the other
 * tenants' renames) before the write resolves. lowdb's own JSONFile (steno) renames without any
 * fsync, so after a power cut the record could be older than the fdatasync'd transition log.
 */
class DurableJsonFile<T> implements Adapter<T> {
  private readonly tmp: string;

  constructor(
    private readonly fs: DurableFs,
    private readonly file: string,
    private readonly syncDir: () => Promise<void>,
  ) {
    this.tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  }

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = (await this.fs.readFile(this.file)).toString('utf8');
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return JSON.parse(text) as T;
  }

  async write(data: T): Promise<void> {
    const handle = await this.fs.open(this.tmp, 'w', 0o644);
    try {
      await writeDurably(handle, Buffer.from(JSON.stringify(data, null, 2)), 0);
    } finally {
      await handle.close();
    }
    await this.fs.rename(this.tmp, this.file);
    await this.syncDir();
  }
}

/**
 * Current-state documents in lowdb: one small JSON document per tenant under
 * `<dataDir>/state/tenants/<tenantId>.json`, so a checkpoint rewrites ~2 KB, not the whole fleet
 * (lowdb rewrites its whole document on every write). Each write is durable when it resolves
 * (DurableJsonFile), so a kill or a power cut at any moment leaves the old or the new document,
 * never a torn one, and never one older than a transition the log already holds.
 * One store per data dir per process: two lowdb instances on one file lose updates.
 */
export class TenantStateStore {
  private readonly records = new Map<string, TenantRecord>();
  private readonly dbs = new Map<string, Low<TenantRecord | null>>();
  private readonly writes = new Map<string, Promise<void>>();
  /** Tenants whose last write failed: the record in memory is ahead of the one on disk. */
  private readonly unsaved = new Set<string>();
  private readonly syncDir: () => Promise<void>;

  private constructor(
    private readonly dir: string,
    private readonly fs: DurableFs,
    private readonly fence: ((what: string) => void) | undefined,
  ) {
    this.syncDir = groupedDirSync(fs, dir);
  }

  /**
   * Records that could not be read at open (torn by a disk fault, edited by hand): each was moved
   * aside to `movedTo` and its tenant starts without a record, rebuilt from the repository by its
   * next reconcile (every provider step is idempotent). One bad file never stops the daemon.
   */
  readonly discarded: DiscardedRecord[] = [];

  /**
   * `fence` is asked before every write and throws to refuse it (a replica that does not hold the
   * leader lease); a refused put changes nothing, in memory or on disk. `follow`: another process
   * writes this data dir (a standby under leader election), so open only reads — an unreadable
   * record is skipped, not moved aside; the one writer does that (`reload({ repair: true })`).
   */
  static async open(dataDir: string, opts: { fs?: DurableFs; fence?: (what: string) => void; follow?: boolean } = {}): Promise<TenantStateStore> {
    const fs = opts.fs ?? nodeDurableFs;
    const dir = path.join(dataDir, 'state', 'tenants');
    await fs.mkdirp(dir);
    // The directories themselves must survive a power cut, or every record in them is lost.
    await fs.syncDir(path.dirname(dir));
    await fs.syncDir(dataDir);
    const store = new TenantStateStore(dir, fs, opts.fence);
    await store.load(!opts.follow);
    return store;
  }

  /**
   * Read the documents another process wrote since (a standby following its leader, or a new
   * leader taking over from one). Every document is read again: a few hundred small reads, and no
   * reliance on mtimes a shared volume may not keep. With `repair` (only the one writer), an
   * unreadable record is moved aside as at open.
   */
  async reload(opts: { repair: boolean }): Promise<void> {
    await this.flush();
    await this.load(opts.repair);
  }

  private async load(repair: boolean): Promise<void> {
    const names = (await this.fs.readdir(this.dir)).filter((n) => n.endsWith('.json')).sort();
    for (const name of names) {
      const tenantId = name.slice(0, -'.json'.length);
      const db = this.db(tenantId);
      let problem: string | null;
      let record: TenantRecord | null = null;
      try {
        await db.read();
        problem = recordProblem(db.data, tenantId);
        if (problem === null) record = upgradeRecord(db.data as StoredRecord);
      } catch (err: unknown) {
        problem = err instanceof Error ? err.message : String(err);
      }
      if (record) {
        this.records.set(tenantId, record);
        continue;
      }
      db.data = null;
      // A follower leaves it for the writer (it may also be a file the writer is replacing).
      if (!repair) continue;
      this.records.delete(tenantId);
      const file = path.join(this.dir, name);
      const movedTo = `${file}.corrupt-${Date.now()}`;
      await this.fs.rename(file, movedTo);
      this.discarded.push({ tenantId, file, movedTo, message: problem ?? 'unreadable' });
    }
  }

  private db(tenantId: string): Low<TenantRecord | null> {
    let db = this.dbs.get(tenantId);
    if (!db) {
      db = new Low<TenantRecord | null>(new DurableJsonFile<TenantRecord | null>(this.fs, path.join(this.dir, `${tenantId}.json`), this.syncDir), null);
      this.dbs.set(tenantId, db);
    }
    return db;
  }

  get(tenantId: string): TenantRecord | undefined {
    return this.records.get(tenantId);
  }

  all(): TenantRecord[] {
    return [...this.records.values()].sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0));
  }

  ids(): string[] {
    return [...this.records.keys()].sort();
  }

  get size(): number {
    return this.records.size;
  }

  /**
   * Replace a tenant's record and write it; resolves once it is durable. Writes per tenant are
   * ordered. The record in memory is replaced at once, so a failed write (E_STATE_WRITE) leaves
   * memory ahead of the disk until a later put of that tenant succeeds (see `isSaved`).
   */
  put(record: TenantRecord): Promise<void> {
    const id = record.tenantId;
    const what = `the record of ${id}`;
    try {
      this.fence?.(what);
    } catch (err: unknown) {
      return Promise.reject(err);
    }
    this.records.set(id, record);
    const db = this.db(id);
    const prev = this.writes.get(id) ?? Promise.resolve();
    const next = prev.then(async () => {
      // Asked again: this write may have waited behind others past the end of the lease.
      this.fence?.(what);
      db.data = record;
      try {
        await db.write();
      } catch (err: unknown) {
        this.unsaved.add(id);
        const file = path.join(this.dir, `${id}.json`);
        throw new TenantdError('E_STATE_WRITE', 'retryable', `${file}: ${err instanceof Error ? err.message : String(err)}`, { path: file, tenantId: id }, { cause: err });
      }
      this.unsaved.delete(id);
    });
    this.writes.set(id, next.catch(() => undefined));
    return next;
  }

  /** False when the tenant's last write failed and nothing has been written for it since. */
  isSaved(tenantId: string): boolean {
    return !this.unsaved.has(tenantId);
  }

  /** Wait for every pending write. */
  async flush(): Promise<void> {
    await Promise.all([...this.writes.values()]);
  }
}
