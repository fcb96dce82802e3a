/**
 * Reading trees without the index: list a directory at a commit, and diff a directory between
 * two commits by comparing tree oids (identical subtrees are skipped without being read, and
 * blobs are never read).
 */
import type * as nodeFs from 'node:fs';
import { stalled, type TenantdError } from '../errors.js';
import { objectError } from './errors.js';
import type { GitObject, ObjectDb } from './object-db.js';
import { diffEntries, findEntry, parseTreeImage, type TreeEntry, type TreeImage } from './tree-codec.js';
import type { ChangedFile, TreeEntryFile } from './types.js';

export type { TreeEntry } from './tree-codec.js';

export interface RepoCtx {
  fs: typeof nodeFs;
  gitdir: string;
  /** isomorphic-git cache object shared by every call on one store */
  cache: object;
  /** objects read and written with native zlib (see object-db.ts) */
  odb: ObjectDb;
}

export const EMPTY_TREE_OID = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

/** Split and validate a directory argument: '' or '.' is the root. */
export function dirSegments(dir: string): string[] {
  const trimmed = dir.replace(/^\/+|\/+$/g, '');
  if (trimmed === '' || trimmed === '.') return [];
  const segs = trimmed.split('/');
  for (const s of segs) {
    if (s === '' || s === '.' || s === '..') {
      throw stalled('E_GIT_BAD_PATH', `invalid directory ${JSON.stringify(dir)}`, { path: dir });
    }
  }
  return segs;
}

export function joinPath(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}/${name}`;
}

/**
 * Parsed trees by oid, per store (keyed by its isomorphic-git cache object). Objects never change
 * for an oid; each poll diffs the previous head's `tenants/` tree against the new one, and each
 * commit rewrites the tree the last one wrote: keeping the last few parsed (written ones too)
 * saves re-reading a 10,000-entry tree every time. Callers never mutate the entries they get.
 */
type ParsedTree = { oid: string; entries: TreeEntry[]; image: TreeImage };
const parsedTrees = new WeakMap<object, Map<string, ParsedTree>>();
const PARSED_TREES_KEPT = 16;

function memoOf(ctx: RepoCtx): Map<string, ParsedTree> {
  let memo = parsedTrees.get(ctx.cache);
  if (!memo) parsedTrees.set(ctx.cache, (memo = new Map()));
  return memo;
}

/** Put `tree` under `key` as the most recent entry (insertion order is eviction order) and evict past the limit. */
function keep(memo: Map<string, ParsedTree>, key: string, tree: ParsedTree): void {
  memo.delete(key);
  memo.set(key, tree);
  while (memo.size > PARSED_TREES_KEPT) memo.delete(memo.keys().next().value as string);
}

/** Remember a tree by oid (one just written, so the next commit need not read it back). */
export function rememberTree(ctx: RepoCtx, oid: string, image: TreeImage): void {
  keep(memoOf(ctx), oid, { oid, entries: image.entries, image });
}

export const objectNotFound = (oid: string, want: string): TenantdError =>
  stalled('E_GIT_OBJECT_NOT_FOUND', `git object not found: ${oid}${want ? ` (${want})` : ''}`, { what: oid });

export const notOfType = (oid: string, got: string, want: string): TenantdError =>
  stalled('E_GIT_OBJECT_NOT_FOUND', `git object ${oid} is a ${got}, not a ${want}`, { what: oid });

async function readObject(ctx: RepoCtx, oid: string, want: string): Promise<GitObject> {
  let obj: GitObject | null;
  try {
    obj = await ctx.odb.read(oid);
  } catch (err: unknown) {
    throw objectError(oid, err);
  }
  if (!obj) throw objectNotFound(oid, want);
  return obj;
}

/** The oid after `<field> ` on the first header line that has it (commit `tree`, tag `object`). */
function headerOid(data: Buffer, field: string, oid: string): string {
  const m = new RegExp(`^${field} ([0-9a-f]{40})$`, 'm').exec(data.toString('latin1', 0, Math.min(data.length, 1024)));
  if (!m) throw stalled('E_GIT_OBJECT_CORRUPT', `git object ${oid} has no ${field} line`, { oid });
  return m[1] as string;
}

/** Entries of a tree object (a commit or an annotated tag is peeled to its tree). */
export async function readTreeEntries(ctx: RepoCtx, oid: string): Promise<ParsedTree> {
  const memo = memoOf(ctx);
  const hit = memo.get(oid);
  if (hit) {
    keep(memo, oid, hit);
    return hit;
  }
  let current = oid;
  for (let hops = 0; hops < 8; hops++) {
    const obj = await readObject(ctx, current, 'tree');
    if (obj.type === 'commit') current = headerOid(obj.data, 'tree', current);
    else if (obj.type === 'tag') current = headerOid(obj.data, 'object', current);
    else if (obj.type === 'tree') {
      let image: TreeImage;
      try {
        image = parseTreeImage(obj.data);
      } catch (err: unknown) {
        throw stalled('E_GIT_OBJECT_CORRUPT', `git tree ${current} is malformed: ${err instanceof Error ? err.message : String(err)}`, { oid: current }, err);
      }
      const result = { oid: current, entries: image.entries, image };
      if (current !== oid) keep(memo, current, result);
      keep(memo, oid, result);
      return result;
    } else throw notOfType(current, obj.type, 'tree');
  }
  throw stalled('E_GIT_OBJECT_CORRUPT', `git object ${oid}: too many tags to peel`, { oid });
}

/** The tree oid of a commit. */
export async function commitTree(ctx: RepoCtx, commit: string): Promise<string> {
  const obj = await readObject(ctx, commit, 'commit');
  if (obj.type !== 'commit') throw notOfType(commit, obj.type, 'commit');
  return headerOid(obj.data, 'tree', commit);
}

/** The oid of the subtree at `segs` below `rootTree`, or null when it is missing or not a tree. */
export async function subtreeAt(ctx: RepoCtx, rootTree: string, segs: string[]): Promise<string | null> {
  let oid = rootTree;
  for (const seg of segs) {
    const { entries } = await readTreeEntries(ctx, oid);
    const at = findEntry(entries, seg, 'tree');
    if (at < 0) return null;
    oid = (entries[at] as TreeEntry).oid;
  }
  return oid;
}

/**
 * The tree of the directory `segs` below `rootTree` for listing it: null when it is missing, an
 * E_REPO_LAYOUT error when something else (a file, a symlink, a submodule) stands in its place — a
 * directory replaced by a file must not read as an empty directory (every tenant removed).
 */
export async function directoryAt(ctx: RepoCtx, rootTree: string, segs: string[]): Promise<string | null> {
  let oid = rootTree;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as string;
    const { entries } = await readTreeEntries(ctx, oid);
    const at = findEntry(entries, seg, 'tree');
    if (at < 0) {
      const other = entries[findEntry(entries, seg, 'blob')];
      if (other) {
        const where = segs.slice(0, i + 1).join('/');
        const what = other.type === 'commit' ? 'a submodule' : other.mode === '120000' ? 'a symlink' : 'a file';
        throw stalled('E_REPO_LAYOUT', `${where} is ${what} (${other.oid.slice(0, 12)}), not a directory: the repository layout is invalid and nothing is read from it`, {
          path: where,
          oid: other.oid,
          mode: other.mode,
        });
      }
      return null;
    }
    oid = (entries[at] as TreeEntry).oid;
  }
  return oid;
}

/** The blob oid of the file at `filePath` in `commit`, or null when there is none. */
export async function fileOidAt(ctx: RepoCtx, commit: string, filePath: string): Promise<string | null> {
  const segs = dirSegments(filePath);
  const name = segs.pop();
  if (name === undefined) return null;
  const root = await readTreeEntries(ctx, commit);
  const dir = await subtreeAt(ctx, root.oid, segs);
  if (dir === null) return null;
  const { entries } = await readTreeEntries(ctx, dir);
  const at = findEntry(entries, name, 'blob');
  const entry = at < 0 ? undefined : entries[at];
  return entry && entry.type === 'blob' ? entry.oid : null;
}

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** Files (blobs) directly under `dir` at `commit`, sorted by path; [] when `dir` is missing (E_REPO_LAYOUT when it is not a directory). */
export async function listFilesAt(ctx: RepoCtx, commit: string, dir: string): Promise<TreeEntryFile[]> {
  const segs = dirSegments(dir);
  const root = await readTreeEntries(ctx, commit);
  const tree = await directoryAt(ctx, root.oid, segs);
  if (tree === null) return [];
  const { entries } = await readTreeEntries(ctx, tree);
  const prefix = segs.join('/');
  return entries
    .filter((e) => e.type === 'blob')
    .map((e) => ({ path: joinPath(prefix, e.path), oid: e.oid }))
    .sort(byPath);
}

async function diffTrees(ctx: RepoCtx, a: string | null, b: string | null, prefix: string, out: ChangedFile[]): Promise<void> {
  if (a === b) return;
  const ea = a ? (await readTreeEntries(ctx, a)).entries : [];
  const eb = b ? (await readTreeEntries(ctx, b)).entries : [];
  const subtrees: Array<[string, string | null, string | null]> = [];
  diffEntries(ea, eb, (x, y) => {
    const name = (x ?? y)?.path as string;
    const path = joinPath(prefix, name);
    const xBlob = x?.type === 'blob' ? x.oid : null;
    const yBlob = y?.type === 'blob' ? y.oid : null;
    if (xBlob !== yBlob) out.push({ path, oldOid: xBlob, newOid: yBlob });
    const xTree = x?.type === 'tree' ? x.oid : null;
    const yTree = y?.type === 'tree' ? y.oid : null;
    if (xTree !== yTree) subtrees.push([path, xTree, yTree]);
  });
  for (const [path, xTree, yTree] of subtrees) await diffTrees(ctx, xTree, yTree, path, out);
}

/**
 * Files under `dir` (recursively) that differ between `from` and `to`, sorted by path.
 * `from` null means everything under `dir` at `to` is added. A rename is a delete plus an add.
 * E_REPO_LAYOUT when `dir` at `to` is not a directory.
 */
export async function changedFilesBetween(ctx: RepoCtx, from: string | null, to: string, dir: string): Promise<ChangedFile[]> {
  const segs = dirSegments(dir);
  const toRoot = await commitTree(ctx, to);
  const fromRoot = from === null ? null : await commitTree(ctx, from);
  if (fromRoot === toRoot) return [];
  const b = await directoryAt(ctx, toRoot, segs);
  const a = fromRoot === null ? null : await subtreeAt(ctx, fromRoot, segs);
  const out: ChangedFile[] = [];
  await diffTrees(ctx, a, b, segs.join('/'), out);
  return out.sort(byPath);
}
