/**
 * What the entries directly under `tenants/` are: one place that decides which entry is a tenant
 * file, which one names a tenant but cannot be read as one (a symlink `x.yaml`, a directory, a
 * submodule, or `x.yaml` next to `x.yml`), and which one is skipped and why. The daemon's loader
 * (git tree entries) and `tenantd validate` (a directory on disk) both use it, so they never
 * disagree about what counts, and nothing under `tenants/` is ignored without saying so.
 */
import { tenantIdFromPath } from '../tenant/validate.js';
import { UNPRINTABLE } from '../printable.js';

export type EntryKind = 'file' | 'symlink' | 'directory' | 'submodule' | 'other';

export interface LayoutEntry {
  /** The entry's name (one path segment). */
  name: string;
  kind: EntryKind;
}

/** An entry that is not read as a tenant file, and why. */
export interface SkippedEntry {
  path: string;
  reason: string;
}

/** Every entry that names one tenant id. */
export interface TenantSource<E extends LayoutEntry> {
  tenantId: string;
  /** One regular file: read it. */
  file: E | null;
  /** Otherwise why the tenant is INVALID: the file cannot be read as a tenant file. */
  problem: { paths: string[]; message: string } | null;
}

const KIND_WORDS: Record<Exclude<EntryKind, 'file'>, string> = {
  symlink: 'a symlink',
  directory: 'a directory',
  submodule: 'a submodule',
  other: 'not a regular file',
};

/**
 * Sort the entries of `<dir>/` into tenant sources (by tenant id, sorted) and skipped entries
 * (sorted by path). `dir` is the prefix of the paths reported (`tenants`).
 */
export function classifyTenantEntries<E extends LayoutEntry>(dir: string, entries: readonly E[]): { sources: Array<TenantSource<E>>; skipped: SkippedEntry[] } {
  const byId = new Map<string, E[]>();
  const skipped: SkippedEntry[] = [];
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (UNPRINTABLE.test(e.name)) {
      skipped.push({ path, reason: 'the name contains control characters; tenant ids are DNS labels' });
      continue;
    }
    const tenantId = tenantIdFromPath(`tenants/${e.name}`);
    if (tenantId === null) {
      skipped.push({ path, reason: skipReason(e) });
      continue;
    }
    const list = byId.get(tenantId);
    if (list) list.push(e);
    else byId.set(tenantId, [e]);
  }
  const sources: Array<TenantSource<E>> = [];
  for (const [tenantId, list] of [...byId].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const paths = list.map((e) => `${dir}/${e.name}`).sort();
    if (list.length > 1) {
      sources.push({ tenantId, file: null, problem: { paths, message: `tenant ${tenantId} is defined by ${list.length} files (${paths.join(', ')}); keep exactly one` } });
      continue;
    }
    const only = list[0] as E;
    if (only.kind === 'file') sources.push({ tenantId, file: only, problem: null });
    else {
      const hint = only.kind === 'symlink' ? ' (git stores a symlink as the path it points to; commit the file itself)' : '';
      sources.push({ tenantId, file: null, problem: { paths, message: `${paths[0] as string} is ${KIND_WORDS[only.kind]}, not a regular file${hint}` } });
    }
  }
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { sources, skipped };
}

function skipReason(e: LayoutEntry): string {
  switch (e.kind) {
    case 'directory':
      return 'a directory: tenant files live directly under tenants/';
    case 'submodule':
      return 'a submodule: tenant files live directly under tenants/';
    case 'symlink':
      return 'a symlink, not a tenant file (tenant files are regular files named <tenantId>.yaml)';
    default:
      return /\.ya?ml$/i.test(e.name) ? 'not a tenant file: the name is not <tenantId>.yaml or .yml (lower-case extension)' : 'not a tenant file: only <tenantId>.yaml and .yml are read';
  }
}
