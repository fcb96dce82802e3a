import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import type { TenantRecord } from './record.js';
import { upgradeRecord, type StoredRecord } from './upgrade.js';

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

  static async open(dataDir: string): Promise<TenantStateStore> {
    const dir = path.join(dataDir, 'state', 'tenants');
    await fsp.mkdir(dir, { recursive: true });
    const store = new TenantStateStore(dir);
    const names = (await fsp.readdir(dir)).filter((n) => n.endsWith('.json')).sort();
    for (const name of names) {
      const db = store.db(name.slice(0, -'.json'.length));
      await db.read();
      if (db.data) store.records.set(db.data.tenantId, upgradeRecord(db.data as StoredRecord));
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
