/**
 * Git tree objects, parsed and written here rather than through isomorphic-git: a tenants/
 * directory of 10,000 files is one 450 KB tree, and it is read on every poll and rewritten on
 * every commit. A tree is a sequence of `<mode> <name>\0<20-byte oid>` entries in git's order
 * (bytes of the name, a directory's name compared as if it ended in '/').
 */

export type TreeEntryType = 'blob' | 'tree' | 'commit';

export interface TreeEntry {
  /** six digits: 100644, 100755, 120000, 040000, 160000 */
  mode: string;
  /** the entry's name (one path segment) */
  path: string;
  oid: string;
  type: TreeEntryType;
}

const SPACE = 0x20;
const NUL = 0;

export function typeOfMode(mode: string): TreeEntryType {
  if (mode === '040000') return 'tree';
  if (mode === '160000') return 'commit';
  return 'blob';
}

/** Git writes a directory's mode as `40000`; every other mode already has six digits. */
const normalMode = (raw: string): string => (raw.length === 5 ? `0${raw}` : raw);

/** The entries of a tree object, in the object's (git's) order. Throws on malformed data. */
export function parseTree(buf: Buffer): TreeEntry[] {
  const entries: TreeEntry[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const sp = buf.indexOf(SPACE, pos);
    const nul = sp < 0 ? -1 : buf.indexOf(NUL, sp + 1);
    if (sp < 0 || nul < 0 || nul + 21 > buf.length) throw new Error(`malformed tree entry at byte ${pos}`);
    const mode = normalMode(buf.toString('latin1', pos, sp));
    entries.push({ mode, path: buf.toString('utf8', sp + 1, nul), oid: buf.toString('hex', nul + 1, nul + 21), type: typeOfMode(mode) });
    pos = nul + 21;
  }
  return entries;
}

/** True when a string has no UTF-16 surrogates: then `<` on it agrees with UTF-8 byte order. */
const bmpOnly = (s: string): boolean => !/[\uD800-\uDFFF]/.test(s);

function compareNames(a: string, b: string): number {
  if (bmpOnly(a) && bmpOnly(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The key git sorts tree entries by. */
export const sortKey = (e: { path: string; type: TreeEntryType }): string => (e.type === 'tree' ? `${e.path}/` : e.path);

/** Git's tree order. */
export const compareEntries = (a: TreeEntry, b: TreeEntry): number => compareNames(sortKey(a), sortKey(b));

/**
 * The bytes of a tree object holding `entries`, sorted into git's order unless they already are
 * (`sorted`: the caller kept them in order, so the check is skipped).
 */
export function serializeTree(entries: readonly TreeEntry[], sorted_ = false): Buffer {
  let sorted = entries;
  for (let i = 1; !sorted_ && i < entries.length; i++) {
    if (compareEntries(entries[i - 1] as TreeEntry, entries[i] as TreeEntry) >= 0) {
      sorted = [...entries].sort(compareEntries);
      break;
    }
  }
  let size = 0;
  for (const e of sorted) size += treeMode(e).length + 1 + Buffer.byteLength(e.path, 'utf8') + 1 + 20;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const e of sorted) {
    pos += out.write(treeMode(e), pos, 'latin1');
    out[pos++] = SPACE;
    pos += out.write(e.path, pos, 'utf8');
    out[pos++] = NUL;
    if (out.write(e.oid, pos, 'hex') !== 20) throw new Error(`invalid oid ${JSON.stringify(e.oid)} for ${e.path}`);
    pos += 20;
  }
  return out;
}

const treeMode = (e: TreeEntry): string => (e.mode === '040000' ? '40000' : e.mode);

/** A sorted-merge walk of two trees' entries: `visit` sees every key present in either with a different entry. */
export function diffEntries(a: readonly TreeEntry[], b: readonly TreeEntry[], visit: (x: TreeEntry | undefined, y: TreeEntry | undefined) => void): void {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x && y) {
      // Most entries are equal in place: test that before any ordering.
      if (x.path === y.path && x.type === y.type) {
        if (x.oid !== y.oid || x.mode !== y.mode) visit(x, y);
        i++;
        j++;
        continue;
      }
      const c = compareEntries(x, y);
      if (c === 0) {
        // same name, blob ↔ submodule
        visit(x, y);
        i++;
        j++;
      } else if (c < 0) {
        visit(x, undefined);
        i++;
      } else {
        visit(undefined, y);
        j++;
      }
    } else if (x) {
      visit(x, undefined);
      i++;
    } else {
      visit(undefined, y);
      j++;
    }
  }
}

/** Index of `key`'s entry in sorted `entries`, or `-(insertion point) - 1` when absent. */
export function findEntry(entries: readonly TreeEntry[], name: string, type: TreeEntryType): number {
  const key = sortKey({ path: name, type });
  let lo = 0;
  let hi = entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareNames(sortKey(entries[mid] as TreeEntry), key);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}
