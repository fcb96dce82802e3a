/**
 * Git tree objects, parsed and written here rather than through isomorphic-git: a tenants/
 * directory of 10,000 files is one 450 KB tree, and it is read on every poll and rewritten on
 * every commit. A tree is a sequence of `<mode> <name>\0<20-byte oid>` entries in git's order
 * (bytes of the name, a directory's name compared as if it ended in '/').
 */

import type { DeltaPiece } from './pack-write.js';

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

/**
 * A tree object parsed: its entries, its bytes, and where each entry starts (`offsets[i]`, with
 * `offsets[n]` the length), so a tree that differs from it in a few entries is written by copying
 * the unchanged runs of bytes instead of re-encoding 10,000 entries.
 */
export interface TreeImage {
  entries: TreeEntry[];
  raw: Buffer;
  offsets: Uint32Array;
}

/** A tree object's entries, in the object's (git's) order. Throws on malformed data. */
export function parseTreeImage(buf: Buffer): TreeImage {
  const entries: TreeEntry[] = [];
  const starts: number[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const sp = buf.indexOf(SPACE, pos);
    const nul = sp < 0 ? -1 : buf.indexOf(NUL, sp + 1);
    if (sp < 0 || nul < 0 || nul + 21 > buf.length) throw new Error(`malformed tree entry at byte ${pos}`);
    const mode = normalMode(buf.toString('latin1', pos, sp));
    entries.push({ mode, path: buf.toString('utf8', sp + 1, nul), oid: buf.toString('hex', nul + 1, nul + 21), type: typeOfMode(mode) });
    starts.push(pos);
    pos = nul + 21;
  }
  starts.push(pos);
  return { entries, raw: buf, offsets: Uint32Array.from(starts) };
}

export const parseTree = (buf: Buffer): TreeEntry[] => parseTreeImage(buf).entries;

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
export function serializeTree(entries: readonly TreeEntry[], sorted = false): Buffer {
  return encodeTree(sorted ? entries : inGitOrder(entries), null).raw;
}

function inGitOrder(entries: readonly TreeEntry[]): readonly TreeEntry[] {
  for (let i = 1; i < entries.length; i++) {
    if (compareEntries(entries[i - 1] as TreeEntry, entries[i] as TreeEntry) >= 0) return [...entries].sort(compareEntries);
  }
  return entries;
}

const entrySize = (e: TreeEntry): number => treeMode(e).length + 1 + Buffer.byteLength(e.path, 'utf8') + 1 + 20;

function writeEntry(out: Buffer, pos: number, e: TreeEntry): number {
  pos += out.write(treeMode(e), pos, 'latin1');
  out[pos++] = SPACE;
  pos += out.write(e.path, pos, 'utf8');
  out[pos++] = NUL;
  if (e.oid.length !== 40 || out.write(e.oid, pos, 'hex') !== 20) throw new Error(`invalid oid ${JSON.stringify(e.oid)} for ${e.path}`);
  return pos + 20;
}

/**
 * Encode sorted `entries`. With `base` (the tree they were derived from, sharing its unchanged
 * entry objects), runs of unchanged entries are copied from the base's bytes.
 */
export function encodeTree(entries: readonly TreeEntry[], base: TreeImage | null): { raw: Buffer; offsets: Uint32Array; delta: DeltaPiece[] | null } {
  const n = entries.length;
  const offsets = new Uint32Array(n + 1);
  if (!base) {
    let size = 0;
    for (const e of entries) size += entrySize(e);
    const raw = Buffer.allocUnsafe(size);
    let pos = 0;
    entries.forEach((e, i) => {
      offsets[i] = pos;
      pos = writeEntry(raw, pos, e);
    });
    offsets[n] = pos;
    return { raw, offsets, delta: null };
  }
  const be = base.entries;
  const bo = base.offsets;
  // first pass: the pieces (base byte ranges or new entries) and the total size
  const pieces: Array<[number, number] | TreeEntry> = [];
  let size = 0;
  let i = 0;
  let j = 0;
  while (i < n) {
    const e = entries[i] as TreeEntry;
    if (j < be.length && e === be[j]) {
      const j0 = j;
      while (i < n && j < be.length && entries[i] === be[j]) {
        i++;
        j++;
      }
      pieces.push([j0, j]);
      size += (bo[j] as number) - (bo[j0] as number);
      continue;
    }
    const c = j < be.length ? compareEntries(be[j] as TreeEntry, e) : 1;
    if (c < 0) {
      j++; // a base entry that is gone
      continue;
    }
    if (c === 0) j++; // replaced
    pieces.push(e);
    size += entrySize(e);
    i++;
  }
  const raw = Buffer.allocUnsafe(size);
  const delta: DeltaPiece[] = [];
  let pos = 0;
  let k = 0;
  for (const p of pieces) {
    if (Array.isArray(p)) {
      const [j0, j1] = p;
      const start = bo[j0] as number;
      for (let x = j0; x < j1; x++) offsets[k++] = pos + (bo[x] as number) - start;
      pos += base.raw.copy(raw, pos, start, bo[j1] as number);
      delta.push({ copy: [start, bo[j1] as number] });
    } else {
      offsets[k++] = pos;
      const from = pos;
      pos = writeEntry(raw, pos, p);
      const last = delta[delta.length - 1];
      // consecutive new entries: one literal run
      if (last && 'insert' in last) last.insert = raw.subarray(from - last.insert.length, pos);
      else delta.push({ insert: raw.subarray(from, pos) });
    }
  }
  offsets[n] = pos;
  return { raw, offsets, delta };
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
