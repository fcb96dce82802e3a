import { digestOf } from '../canonical.js';
import type { DesiredInfrastructureState } from '../state/record.js';
import type { TenantInfrastructureDocument, TenantParseResult } from '../tenant/types.js';
import { parseTenantFile, tenantIdFromPath } from '../tenant/validate.js';

export const TENANTS_DIR = 'tenants';

/** The spec digest of a tenant document (what "changed" means): metadata and spec, canonical JSON. */
export const specDigestOf = (doc: TenantInfrastructureDocument): string => digestOf({ metadata: doc.metadata, spec: doc.spec });

/**
 * Files read as one batch during a cold load (the store reads a batch in pack order). Bounded so
 * memory follows the batch, not the fleet, and the event loop gets a turn between batches.
 */
const READ_BATCH = 1000;

/** The part of the git store the loader needs (so it can be tested and benchmarked alone). */
export interface TreeReader {
  listFiles(commit: string, dir: string): Promise<Array<{ path: string; oid: string }>>;
  changedFiles(from: string | null, to: string, dir: string): Promise<Array<{ path: string; oldOid: string | null; newOid: string | null }>>;
  readBlob(oid: string): Promise<string>;
  /** Many blobs at once, in the order asked (faster than one by one when the store can batch). */
  readBlobs?(oids: readonly string[]): Promise<string[]>;
}

export interface DesiredChange {
  tenantId: string;
  /** The new desired state, or null when the file is gone. */
  desired: DesiredInfrastructureState | null;
}

/**
 * Builds DesiredInfrastructureState from the tenants repository. Parsed files are cached by
 * blob id (the same content at another commit is never parsed again), and a new commit is
 * handled by diffing trees: files whose blob did not change are never read.
 */
export class DesiredStateLoader {
  private readonly parsed = new Map<string, TenantParseResult & { digest: string | null }>();
  private readonly current = new Map<string, DesiredInfrastructureState>();
  private head: string | null = null;

  constructor(private readonly git: TreeReader) {}

  get commit(): string | null {
    return this.head;
  }

  get(tenantId: string): DesiredInfrastructureState | null {
    return this.current.get(tenantId) ?? null;
  }

  all(): DesiredInfrastructureState[] {
    return [...this.current.values()].sort((a, b) => (a.tenantId < b.tenantId ? -1 : 1));
  }

  get size(): number {
    return this.current.size;
  }

  /** Read every tenant file at `commit` (a cold start). */
  async loadAll(commit: string): Promise<DesiredChange[]> {
    const files = await this.git.listFiles(commit, TENANTS_DIR);
    const before = new Set(this.current.keys());
    const changes: DesiredChange[] = [];
    const seen = new Set<string>();
    const todo: Array<{ tenantId: string; path: string; oid: string }> = [];
    for (const f of files) {
      const tenantId = tenantIdFromPath(f.path);
      if (!tenantId) continue;
      seen.add(tenantId);
      const prev = this.current.get(tenantId);
      if (prev && prev.blobOid === f.oid) continue;
      todo.push({ tenantId, path: f.path, oid: f.oid });
    }
    const built: DesiredInfrastructureState[] = [];
    for (let from = 0; from < todo.length; from += READ_BATCH) {
      const batch = todo.slice(from, from + READ_BATCH);
      const texts = await this.readUnparsed(batch);
      for (const t of batch) built.push(this.build(t.tenantId, t.path, t.oid, commit, texts.get(t.oid)));
      if (from + READ_BATCH < todo.length) await new Promise((r) => setImmediate(r));
    }
    todo.forEach((t, k) => {
      const desired = built[k] as DesiredInfrastructureState;
      // a .yml/.yaml twin of the same id: the later path wins, as when read one by one
      this.forget(this.current.get(t.tenantId));
      this.current.set(t.tenantId, desired);
      changes.push({ tenantId: t.tenantId, desired });
    });
    for (const tenantId of before) {
      if (!seen.has(tenantId)) {
        this.forget(this.current.get(tenantId));
        this.current.delete(tenantId);
        changes.push({ tenantId, desired: null });
      }
    }
    this.head = commit;
    return changes;
  }

  /** Move to `commit`, reading only tenant files whose blob changed since the current head. */
  async advance(commit: string): Promise<DesiredChange[]> {
    if (this.head === null) return this.loadAll(commit);
    if (commit === this.head) return [];
    const changed = await this.git.changedFiles(this.head, commit, TENANTS_DIR);
    const changes: DesiredChange[] = [];
    for (const c of changed) {
      const tenantId = tenantIdFromPath(c.path);
      if (!tenantId) continue;
      if (c.newOid === null) {
        // A rename shows as delete + add of two ids; a .yml/.yaml twin of the same id keeps it.
        const twin = this.current.get(tenantId);
        if (twin && twin.file !== c.path) continue;
        this.forget(twin);
        this.current.delete(tenantId);
        changes.push({ tenantId, desired: null });
      } else {
        const desired = this.build(tenantId, c.path, c.newOid, commit, (await this.readUnparsed([{ path: c.path, oid: c.newOid }])).get(c.newOid));
        this.forget(this.current.get(tenantId));
        this.current.set(tenantId, desired);
        changes.push({ tenantId, desired });
      }
    }
    this.head = commit;
    return changes;
  }

  /** Drop a replaced file's parse from the cache so memory follows the fleet, not its history. */
  private forget(d: DesiredInfrastructureState | undefined): void {
    if (d) this.parsed.delete(`${d.file}\0${d.blobOid}`);
  }

  /** The texts of the files in `files` not parsed yet, by blob oid. */
  private async readUnparsed(files: Array<{ path: string; oid: string }>): Promise<Map<string, string>> {
    const oids = [...new Set(files.filter((f) => !this.parsed.has(`${f.path}\0${f.oid}`)).map((f) => f.oid))];
    const texts = this.git.readBlobs ? await this.git.readBlobs(oids) : await Promise.all(oids.map((o) => this.git.readBlob(o)));
    return new Map(oids.map((o, i) => [o, texts[i] as string]));
  }

  private build(tenantId: string, file: string, oid: string, commit: string, text: string | undefined): DesiredInfrastructureState {
    let parsed = this.parsed.get(`${file}\0${oid}`);
    if (!parsed) {
      if (text === undefined) throw new Error(`loader: ${file} (${oid}) was not read`);
      const result = parseTenantFile(file, text);
      parsed = { ...result, digest: result.ok ? specDigestOf(result.tenant) : null };
      this.parsed.set(`${file}\0${oid}`, parsed);
    }
    return {
      tenantId,
      file,
      commit,
      blobOid: oid,
      specDigest: parsed.digest,
      document: parsed.ok ? parsed.tenant : null,
      issues: parsed.ok ? [] : parsed.issues,
      ...(parsed.ok && parsed.warnings.length ? { warnings: parsed.warnings } : {}),
    };
  }
}
