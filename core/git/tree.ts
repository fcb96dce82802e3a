/**
 * Reading trees without the index: list a directory at a commit, and diff a directory between
 * two commits by comparing tree oids (identical subtrees are skipped without being read, and
 * blobs are never read).
 */
import type * as nodeFs from 'node:fs';
import * as git from 'isomorphic-git';
import type { TreeEntry } from 'isomorphic-git';
import { stalled } from '../errors.js';
import { objectError } from './errors.js';
import type { ChangedFile, TreeEntryFile } from './types.js';

export interface RepoCtx {
  fs: typeof nodeFs;
  gitdir: string;
  /** isomorphic-git cache object shared by every call on one store */
  cache: object;
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
 * for an oid, and each poll diffs the previous head's `tenants/` tree against the new one: keeping
 * the last few parsed saves re-reading a 10,000-entry tree on every advance. Callers never mutate
 * the entries they get.
 */
const parsedTrees = new WeakMap<object, Map<string, { oid: string; entries: TreeEntry[] }>>();
const PARSED_TREES_KEPT = 16;

/** Entries of a tree object (a commit oid is peeled to its tree). */
export async function readTreeEntries(ctx: RepoCtx, oid: string): Promise<{ oid: string; entries: TreeEntry[] }> {
  let memo = parsedTrees.get(ctx.cache);
  if (!memo) parsedTrees.set(ctx.cache, (memo = new Map()));
  const hit = memo.get(oid);
  if (hit) {
    // Refresh its place: the map's insertion order is the eviction order.
    memo.delete(oid);
    memo.set(oid, hit);
    return hit;
  }
  try {
    const r = await git.readTree({ fs: ctx.fs, gitdir: ctx.gitdir, cache: ctx.cache, oid });
    const result = { oid: r.oid, entries: r.tree };
    memo.set(oid, result);
    if (memo.size > PARSED_TREES_KEPT) memo.delete(memo.keys().next().value as string);
    return result;
  } catch (err: unknown) {
    throw objectError(oid, err);
  }
}

/** The tree oid of a commit. */
export async function commitTree(ctx: RepoCtx, commit: string): Promise<string> {
  try {
    const r = await git.readCommit({ fs: ctx.fs, gitdir: ctx.gitdir, cache: ctx.cache, oid: commit });
    return r.commit.tree;
  } catch (err: unknown) {
    throw objectError(commit, err);
  }
}

/** The oid of the subtree at `segs` below `rootTree`, or null when it is missing or not a tree. */
export async function subtreeAt(ctx: RepoCtx, rootTree: string, segs: string[]): Promise<string | null> {
  let oid = rootTree;
  for (const seg of segs) {
    const { entries } = await readTreeEntries(ctx, oid);
    const e = entries.find((x) => x.path === seg);
    if (!e || e.type !== 'tree') return null;
    oid = e.oid;
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
  const entry = (await readTreeEntries(ctx, dir)).entries.find((e) => e.path === name);
  return entry && entry.type === 'blob' ? entry.oid : null;
}

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** Files (blobs) directly under `dir` at `commit`, sorted by path; [] when `dir` is missing. */
export async function listFilesAt(ctx: RepoCtx, commit: string, dir: string): Promise<TreeEntryFile[]> {
  const segs = dirSegments(dir);
  const root = await readTreeEntries(ctx, commit);
  const tree = await subtreeAt(ctx, root.oid, segs);
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
  const ma = new Map(ea.map((e) => [e.path, e]));
  const mb = new Map(eb.map((e) => [e.path, e]));
  const names = new Set([...ma.keys(), ...mb.keys()]);
  for (const name of names) {
    const x = ma.get(name);
    const y = mb.get(name);
    if (x && y && x.oid === y.oid && x.type === y.type) continue;
    const path = joinPath(prefix, name);
    const xBlob = x?.type === 'blob' ? x.oid : null;
    const yBlob = y?.type === 'blob' ? y.oid : null;
    if (xBlob !== yBlob) out.push({ path, oldOid: xBlob, newOid: yBlob });
    const xTree = x?.type === 'tree' ? x.oid : null;
    const yTree = y?.type === 'tree' ? y.oid : null;
    if (xTree !== yTree) await diffTrees(ctx, xTree, yTree, path, out);
  }
}

/**
 * Files under `dir` (recursively) that differ between `from` and `to`, sorted by path.
 * `from` null means everything under `dir` at `to` is added. A rename is a delete plus an add.
 */
export async function changedFilesBetween(ctx: RepoCtx, from: string | null, to: string, dir: string): Promise<ChangedFile[]> {
  const segs = dirSegments(dir);
  const toRoot = await commitTree(ctx, to);
  const fromRoot = from === null ? null : await commitTree(ctx, from);
  if (fromRoot === toRoot) return [];
  const b = await subtreeAt(ctx, toRoot, segs);
  const a = fromRoot === null ? null : await subtreeAt(ctx, fromRoot, segs);
  const out: ChangedFile[] = [];
  await diffTrees(ctx, a, b, segs.join('/'), out);
  return out.sort(byPath);
}
