/**
 * Building a new root tree from a base tree plus file changes, without the index: blobs are
 * written for new contents, and only the subtrees on the changed paths are rewritten
 * (every other entry, including whole unchanged subtrees, is reused by oid).
 */
import * as git from 'isomorphic-git';
import type { TreeEntry } from 'isomorphic-git';
import { stalled } from '../errors.js';
import { joinPath, readTreeEntries, type RepoCtx } from './tree.js';
import type { FileChange } from './types.js';

/** A path actually changed by a commit: `oid` null = deleted. */
export interface WrittenFile {
  path: string;
  oid: string | null;
  /** previous blob oid (null = the file did not exist) */
  oldOid: string | null;
  mode: string;
  content: string | null;
}

interface DirNode {
  files: Map<string, string | null>;
  dirs: Map<string, DirNode>;
}

const newNode = (): DirNode => ({ files: new Map(), dirs: new Map() });

function hasWrites(node: DirNode): boolean {
  for (const c of node.files.values()) if (c !== null) return true;
  for (const d of node.dirs.values()) if (hasWrites(d)) return true;
  return false;
}

/** Validate a repo-relative file path and split it into segments. */
export function fileSegments(p: string): string[] {
  const bad = (why: string) => stalled('E_GIT_BAD_PATH', `invalid file path ${JSON.stringify(p)}: ${why}`, { path: p });
  if (typeof p !== 'string' || p.length === 0) throw bad('empty');
  if (p.startsWith('/')) throw bad('absolute');
  if (p.includes('\\') || p.includes('\0')) throw bad('backslash or NUL');
  const segs = p.split('/');
  for (const s of segs) {
    if (s === '' || s === '.' || s === '..') throw bad('empty, . or .. segment');
    if (s.toLowerCase() === '.git') throw bad('.git segment');
  }
  return segs;
}

/** Group changes into a directory tree; the last change to a path wins. */
function toTree(changes: FileChange[]): DirNode {
  const last = new Map<string, string | null>();
  for (const c of changes) last.set(fileSegments(c.path).join('/'), c.content);
  const root = newNode();
  for (const [p, content] of last) {
    const segs = p.split('/');
    const name = segs.pop() as string;
    let node = root;
    for (const s of segs) {
      let next = node.dirs.get(s);
      if (!next) {
        next = newNode();
        node.dirs.set(s, next);
      }
      node = next;
    }
    node.files.set(name, content);
  }
  // a name cannot be both a file written and a directory written into
  const check = (node: DirNode, prefix: string): void => {
    for (const [name, child] of node.dirs) {
      if (node.files.has(name) && node.files.get(name) !== null) {
        throw stalled('E_GIT_BAD_PATH', `${joinPath(prefix, name)} is written both as a file and as a directory`, {
          path: joinPath(prefix, name),
        });
      }
      check(child, joinPath(prefix, name));
    }
  };
  check(root, '');
  return root;
}

async function rebuild(
  ctx: RepoCtx,
  base: string | null,
  node: DirNode,
  prefix: string,
  written: WrittenFile[],
): Promise<string | null> {
  const entries = base ? (await readTreeEntries(ctx, base)).entries : [];
  const map = new Map<string, TreeEntry>(entries.map((e) => [e.path, e]));
  let changed = false;

  for (const [name, content] of node.files) {
    const existing = map.get(name);
    const path = joinPath(prefix, name);
    const oldBlob = existing?.type === 'blob' ? existing : undefined;
    if (content === null) {
      if (oldBlob) {
        map.delete(name);
        changed = true;
        written.push({ path, oid: null, oldOid: oldBlob.oid, mode: oldBlob.mode, content: null });
      }
      continue;
    }
    const blob = Buffer.from(content, 'utf8');
    const { oid } = await git.hashBlob({ object: blob });
    const mode = oldBlob && oldBlob.mode !== '120000' ? oldBlob.mode : '100644';
    if (oldBlob && oldBlob.oid === oid && oldBlob.mode === mode) continue;
    if (existing && existing.type !== 'blob') {
      throw stalled('E_GIT_BAD_PATH', `${path} is a directory in the repository; cannot write it as a file`, { path });
    }
    if (!oldBlob || oldBlob.oid !== oid) await git.writeBlob({ fs: ctx.fs, gitdir: ctx.gitdir, blob });
    map.set(name, { mode, path: name, oid, type: 'blob' });
    changed = true;
    written.push({ path, oid, oldOid: oldBlob?.oid ?? null, mode, content });
  }

  for (const [name, child] of node.dirs) {
    const existing = map.get(name);
    const path = joinPath(prefix, name);
    const baseSub = existing?.type === 'tree' ? existing.oid : null;
    if (existing && existing.type !== 'tree') {
      // below a path that is a file (or submodule) nothing exists: deletes are no-ops, writes are errors
      if (!hasWrites(child)) continue;
      throw stalled('E_GIT_BAD_PATH', `${path} is a file in the repository; cannot write below it`, { path });
    }
    const sub = await rebuild(ctx, baseSub, child, path, written);
    if (sub === baseSub) continue;
    if (sub === null) map.delete(name);
    else map.set(name, { mode: '040000', path: name, oid: sub, type: 'tree' });
    changed = true;
  }

  if (!changed) return base;
  if (map.size === 0) return null;
  return git.writeTree({ fs: ctx.fs, gitdir: ctx.gitdir, tree: [...map.values()] });
}

/**
 * Apply `changes` to `baseTree` (null = empty). Returns the new root tree oid and the files
 * actually changed (writing identical content or deleting a missing file changes nothing).
 */
export async function applyChanges(
  ctx: RepoCtx,
  baseTree: string | null,
  changes: FileChange[],
): Promise<{ tree: string; written: WrittenFile[] }> {
  const written: WrittenFile[] = [];
  const root = toTree(changes);
  const tree = await rebuild(ctx, baseTree, root, '', written);
  if (tree === null) {
    const empty = await git.writeTree({ fs: ctx.fs, gitdir: ctx.gitdir, tree: [] });
    return { tree: empty, written };
  }
  return { tree, written };
}
