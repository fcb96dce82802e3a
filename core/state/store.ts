import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
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
 * Current-state documents in lowdb: one small JSON document per tenant under
 * `<dataDir>/state/tenants/<tenantId>.json`, so a checkpoint rewrites ~2 KB, not the whole fleet
 * (lowdb rewrites its whole document on every write). lowdb writes through a temp file and a
 * rename, so a kill at any moment leaves either the old or the new document, never a torn one.
 * One store per data dir per process: two lowdb instances on one file lose updates.
 */
export class TenantStateStore {
  private readonly records = new Map<string, TenantRecord>();
  private readonly dbs = new Map<string, Low<TenantRecord | null>>();
  private readonly writes = new Map<string, Promise<void>>();

  private constructor(private readonly dir: string) {}

  /**
   * Records that could not be read at open (torn by a disk fault, edited by hand): each was moved
   * aside to `movedTo` and its tenant starts without a record, rebuilt from the repository by its
   * next reconcile (every provider step is idempotent). One bad file never stops the daemon.
   */
  readonly discarded: DiscardedRecord[] = [];

  static async open(dataDir: string): Promise<TenantStateStore> {
    const dir = path.join(dataDir, 'state', 'tenants');
    await fsp.mkdir(dir, { recursive: true });
    const store = new TenantStateStore(dir);
    const names = (await fsp.readdir(dir)).filter((n) => n.endsWith('.json')).sort();
    for (const name of names) {
      const tenantId = name.slice(0, -'.json'.length);
      const db = store.db(tenantId);
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
        store.records.set(tenantId, record);
        continue;
      }
      db.data = null;
      const file = path.join(dir, name);
      const movedTo = `${file}.corrupt-${Date.now()}`;
      await fsp.rename(file, movedTo);
      store.discarded.push({ tenantId, file, movedTo, message: problem ?? 'unreadable' });
    }
    return store;
  }

  private db(tenantId: string): Low<TenantRecord | null> {
    let db = this.dbs.get(tenantId);
    if (!db) {
      db = new Low<TenantRecord | null>(new JSONFile<TenantRecord | null>(path.join(this.dir, `${tenantId}.json`)), null);
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

  /** Replace a tenant's record and write it; resolves once it is on disk. Writes per tenant are ordered. */
  put(record: TenantRecord): Promise<void> {
    this.records.set(record.tenantId, record);
    const db = this.db(record.tenantId);
    const prev = this.writes.get(record.tenantId) ?? Promise.resolve();
    const next = prev.then(async () => {
      db.data = record;
      await db.write();
    });
    this.writes.set(record.tenantId, next.catch(() => undefined));
    return next;
  }

  /** Wait for every pending write. */
  async flush(): Promise<void> {
    await Promise.all([...this.writes.values()]);
  }
}
