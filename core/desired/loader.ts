import { createHash } from 'node:crypto';
import { digestOf } from '../canonical.js';
import { toTenantdError } from '../errors.js';
import type { DesiredInfrastructureState } from '../state/record.js';
import type { TenantInfrastructureDocument, TenantParseResult } from '../tenant/types.js';
import { parseTenantFile } from '../tenant/validate.js';
import { classifyTenantEntries, type EntryKind, type SkippedEntry, type TenantSource } from './layout.js';

export const TENANTS_DIR = 'tenants';

export type { SkippedEntry } from './layout.js';

/** The spec digest of a tenant document (what "changed" means): metadata and spec, canonical JSON. */
export const specDigestOf = (doc: TenantInfrastructureDocument): string => digestOf({ metadata: doc.metadata, spec: doc.spec });

/**
 * Files read as one batch during a cold load (the store reads a batch in pack order). Bounded so
 * memory follows the batch, not the fleet, and the event loop gets a turn between batches.
 */
const READ_BATCH = 1000;

/** One entry of a tree directory, as the git store lists it. */
export interface DirEntry {
  /** The entry's name (one path segment). */
  path: string;
  oid: string;
  /** Git's six-digit mode: 100644/100755 file, 120000 symlink, 040000 directory, 160000 submodule. */
  mode: string;
}

/** The part of the git store the loader needs (so it can be tested and benchmarked alone). */
export interface TreeReader {
  /** Every entry directly under `dir` at `commit`; [] when `dir` is missing. Throws when the commit or a tree cannot be read. */
  listEntries(commit: string, dir: string): Promise<readonly DirEntry[]>;
  readBlob(oid: string): Promise<string>;
  /**
   * Many blobs at once, in the order asked (faster than one by one when the store can batch);
   * a blob that cannot be read is its error, so one corrupt object costs only its own tenant.
   */
  readBlobsSettled?(oids: readonly string[]): Promise<Array<string | Error>>;
}

export interface DesiredChange {
  tenantId: string;
  /** The new desired state, or null when the file is gone. */
  desired: DesiredInfrastructureState | null;
}

type Entry = { name: string; oid: string; kind: EntryKind };

const kindOfMode = (mode: string): EntryKind =>
  mode.startsWith('100') ? 'file' : mode === '120000' ? 'symlink' : mode === '040000' ? 'directory' : mode === '160000' ? 'submodule' : 'other';

/** What a tenant's state was built from; the same key at the next commit means nothing changed. */
const sourceKey = (s: TenantSource<Entry>): string =>
  s.file ? `${s.file.name}\0${s.file.oid}` : `!${s.problem?.paths.join('\0') ?? ''}\0${(s.problem?.message ?? '')}`;

/** A stand-in blob id for a tenant whose state comes from no single blob (a duplicate, a symlink). */
const syntheticOid = (key: string): string => createHash('sha1').update(`tenantd-source\0${key}`).digest('hex');

type Parsed = TenantParseResult & { digest: string | null };

/**
 * Builds DesiredInfrastructureState from the tenants repository. Every commit's `tenants/` listing
 * is compared with the last one by entry name and blob id (the store keeps recent trees parsed),
 * so files whose blob did not change are never read, and parsed files are cached by blob id.
 *
 * Nothing under `tenants/` is ignored silently: entries that are not tenant files are `skipped`
 * with a reason, and an entry that names a tenant but cannot be read as one (a symlink, a
 * directory, `x.yaml` next to `x.yml`) makes that tenant INVALID. A blob that cannot be read (a
 * corrupt or missing object) makes only its tenant `unreadable`; it is read again on every
 * `advance`, so repairing the object (a re-fetch, a rewrite) recovers it. A commit or
 * `tenants/` tree that cannot be read throws, and the loader stays where it was.
 */
export class DesiredStateLoader {
  private readonly parsed = new Map<string, Parsed>();
  private readonly current = new Map<string, DesiredInfrastructureState>();
  /** sourceKey per tenant at head. */
  private readonly sources = new Map<string, string>();
  private skippedEntries: SkippedEntry[] = [];
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

  /** Entries under `tenants/` at head that are not tenant files, with why (sorted by path). */
  get skipped(): readonly SkippedEntry[] {
    return this.skippedEntries;
  }

  /** Tenants whose file could not be read at head (read again by the next `advance`). */
  get unreadable(): number {
    let n = 0;
    for (const d of this.current.values()) if (d.unreadable) n++;
    return n;
  }

  /** Read every tenant file at `commit` (a cold start); the same as `advance`. */
  loadAll(commit: string): Promise<DesiredChange[]> {
    return this.load(commit);
  }

  /**
   * Move to `commit`, reading only tenant files whose blob changed since the current head, and
   * every file that could not be read before. At the same commit with nothing unreadable: no work.
   */
  advance(commit: string): Promise<DesiredChange[]> {
    if (commit === this.head && this.unreadable === 0) return Promise.resolve([]);
    return this.load(commit);
  }

  private async load(commit: string): Promise<DesiredChange[]> {
    const listed = await this.git.listEntries(commit, TENANTS_DIR);
    const { sources, skipped } = classifyTenantEntries(TENANTS_DIR, listed.map((e): Entry => ({ name: e.path, oid: e.oid, kind: kindOfMode(e.mode) })));
    const todo: Array<{ source: TenantSource<Entry>; key: string }> = [];
    const seen = new Set<string>();
    for (const source of sources) {
      seen.add(source.tenantId);
      const key = sourceKey(source);
      if (this.sources.get(source.tenantId) === key && !this.current.get(source.tenantId)?.unreadable) continue;
      todo.push({ source, key });
    }
    const changes: DesiredChange[] = [];
    for (let from = 0; from < todo.length; from += READ_BATCH) {
      const batch = todo.slice(from, from + READ_BATCH);
      const texts = await this.readUnparsed(batch.flatMap(({ source }) => (source.file ? [source.file] : [])));
      for (const { source, key } of batch) {
        const desired = this.build(source, key, commit, texts);
        const before = this.current.get(source.tenantId);
        const sameSource = this.sources.get(source.tenantId) === key;
        this.forget(before);
        this.current.set(source.tenantId, desired);
        this.sources.set(source.tenantId, key);
        // A file read again because it was unreadable, and still failing the same way: no news.
        const same = sameSource && before?.unreadable !== undefined && before.unreadable.message === desired.unreadable?.message;
        if (!same) changes.push({ tenantId: source.tenantId, desired });
      }
      if (from + READ_BATCH < todo.length) await new Promise((r) => setImmediate(r));
    }
    for (const tenantId of [...this.current.keys()]) {
      if (seen.has(tenantId)) continue;
      this.forget(this.current.get(tenantId));
      this.current.delete(tenantId);
      this.sources.delete(tenantId);
      changes.push({ tenantId, desired: null });
    }
    this.skippedEntries = skipped;
    this.head = commit;
    return changes;
  }

  /** Drop a replaced file's parse from the cache so memory follows the fleet, not its history. */
  private forget(d: DesiredInfrastructureState | undefined): void {
    if (d) this.parsed.delete(`${d.file}\0${d.blobOid}`);
  }

  /** The texts (or read errors) of the files in `files` not parsed yet, by blob oid. */
  private async readUnparsed(files: Entry[]): Promise<Map<string, string | Error>> {
    const oids = [...new Set(files.filter((f) => !this.parsed.has(`${TENANTS_DIR}/${f.name}\0${f.oid}`)).map((f) => f.oid))];
    const texts = this.git.readBlobsSettled
      ? await this.git.readBlobsSettled(oids)
      : await Promise.all(oids.map((o) => this.git.readBlob(o).catch((err: unknown) => toTenantdError(err, 'E_GIT_READ'))));
    return new Map(oids.map((o, i) => [o, texts[i] as string | Error]));
  }

  private build(source: TenantSource<Entry>, key: string, commit: string, texts: Map<string, string | Error>): DesiredInfrastructureState {
    const { tenantId, file: entry, problem } = source;
    if (!entry) {
      const paths = problem?.paths ?? [];
      return {
        tenantId,
        file: paths[0] ?? `${TENANTS_DIR}/${tenantId}.yaml`,
        commit,
        blobOid: syntheticOid(key),
        specDigest: null,
        document: null,
        issues: paths.map((file) => ({ file, line: 0, column: 0, path: '', message: problem?.message ?? 'not a tenant file' })),
      };
    }
    const file = `${TENANTS_DIR}/${entry.name}`;
    let parsed = this.parsed.get(`${file}\0${entry.oid}`);
    if (!parsed) {
      const text = texts.get(entry.oid);
      if (typeof text !== 'string') {
        const e = toTenantdError(text ?? new Error(`${file} (${entry.oid}) was not read`), 'E_GIT_READ');
        return {
          tenantId,
          file,
          commit,
          blobOid: entry.oid,
          specDigest: null,
          document: null,
          issues: [],
          unreadable: { code: e.code, message: `${file} (blob ${entry.oid}) cannot be read: ${e.message}` },
        };
      }
      const result = parseTenantFile(file, text);
      parsed = { ...result, digest: result.ok ? specDigestOf(result.tenant) : null };
      this.parsed.set(`${file}\0${entry.oid}`, parsed);
    }
    return {
      tenantId,
      file,
      commit,
      blobOid: entry.oid,
      specDigest: parsed.digest,
      document: parsed.ok ? parsed.tenant : null,
      issues: parsed.ok ? [] : parsed.issues,
      ...(parsed.ok && parsed.warnings.length ? { warnings: parsed.warnings } : {}),
    };
  }
}
