/**
 * Keeping a local non-bare repository's work tree and index in step with commits the store
 * makes to the checked-out branch, for exactly the paths it wrote: so `git status` in the
 * user's clone stays clean for tenantd-owned files. Paths the user has modified (in the work
 * tree or the index) are left alone, with a warning; no other path is ever touched.
 */
import path from 'node:path';
import * as git from 'isomorphic-git';
import { errMessage } from './errors.js';
import type { RepoCtx } from './tree.js';
import type { WrittenFile } from './tree-write.js';
import type { GitLogger } from './types.js';

export interface WorktreeCtx extends RepoCtx {
  dir: string;
  logger: GitLogger;
}

/** Is `branch` (short name) the branch checked out in the work tree? */
export async function isCheckedOut(ctx: WorktreeCtx, branch: string): Promise<boolean> {
  try {
    const current = await git.currentBranch({ fs: ctx.fs, gitdir: ctx.gitdir, fullname: true });
    return current === `refs/heads/${branch}`;
  } catch {
    return false;
  }
}

/** What may be updated for a written path: the work tree file and its index entry, or only the index entry. */
export type PathPlan = 'all' | 'index';

/** Blob oids of the index entries for `paths` (one read of the index; other directories are pruned). */
async function stageOids(ctx: WorktreeCtx, paths: string[]): Promise<Map<string, string>> {
  const want = new Set(paths);
  const dirs = new Set<string>();
  for (const p of paths) {
    const segs = p.split('/');
    for (let i = 1; i < segs.length; i++) dirs.add(segs.slice(0, i).join('/'));
  }
  const rows = (await git.walk({
    fs: ctx.fs,
    dir: ctx.dir,
    gitdir: ctx.gitdir,
    cache: ctx.cache,
    trees: [git.STAGE()],
    map: async (filepath, [entry]) => {
      if (filepath === '.' || dirs.has(filepath)) return undefined; // descend
      if (!want.has(filepath) || !entry) return null; // prune
      return (await entry.type()) === 'blob' ? [filepath, await entry.oid()] : null;
    },
  })) as Array<[string, string]>;
  return new Map(rows);
}

/** The blob oid of a work-tree file, null when absent, 'dirty' when it is not a regular file. */
async function workdirOid(ctx: WorktreeCtx, filepath: string): Promise<string | null> {
  try {
    const content = await ctx.fs.promises.readFile(path.join(ctx.dir, ...filepath.split('/')));
    return (await git.hashBlob({ object: content })).oid;
  } catch (err: unknown) {
    const code = (err as { code?: unknown }).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? null : 'dirty';
  }
}

/**
 * Call BEFORE moving the branch ref. For each written path: if its index entry equals the
 * previous commit (or is absent in both), the index entry is updated ('index'); if the
 * work-tree file equals it too, the file is rewritten as well ('all'). Paths whose index entry
 * the user changed (staged edits) are left alone entirely. A locally edited file therefore
 * shows as modified against the new HEAD afterwards, as after `git pull` of someone else's change.
 */
export async function planPaths(ctx: WorktreeCtx, written: WrittenFile[]): Promise<Map<string, PathPlan>> {
  const plan = new Map<string, PathPlan>();
  if (written.length === 0) return plan;
  try {
    const staged = await stageOids(ctx, written.map((w) => w.path));
    for (const w of written) {
      const indexClean = (staged.get(w.path) ?? null) === w.oldOid;
      const workdirClean = (await workdirOid(ctx, w.path)) === w.oldOid;
      if (indexClean && workdirClean) plan.set(w.path, 'all');
      else if (indexClean) {
        plan.set(w.path, 'index');
        ctx.logger.warn('git: work tree file has local changes; leaving the file alone', { path: w.path });
      } else {
        ctx.logger.warn('git: path has staged changes; leaving the file and index entry alone', { path: w.path });
      }
    }
  } catch (err: unknown) {
    ctx.logger.warn('git: could not read the index; work tree not updated', { error: errMessage(err) });
    plan.clear();
  }
  return plan;
}

async function pruneEmptyDirs(ctx: WorktreeCtx, abs: string): Promise<void> {
  let parent = path.dirname(abs);
  while (parent.startsWith(ctx.dir + path.sep) && parent !== ctx.dir) {
    try {
      await ctx.fs.promises.rmdir(parent);
    } catch {
      return; // not empty (or gone): stop
    }
    parent = path.dirname(parent);
  }
}

/**
 * Call AFTER moving the branch ref: apply the plan. Files are written/deleted, then the index
 * is updated in one `add` (stats taken from the files just written, so `git status` needs no
 * re-hash) and one `remove`; index-only paths get their entry set to the committed blob.
 */
export async function updateWorktree(ctx: WorktreeCtx, written: WrittenFile[], plan: Map<string, PathPlan>): Promise<void> {
  const add: string[] = [];
  const remove: string[] = [];
  const base = { fs: ctx.fs, dir: ctx.dir, gitdir: ctx.gitdir, cache: ctx.cache };
  for (const w of written) {
    const what = plan.get(w.path);
    if (!what) continue;
    const abs = path.join(ctx.dir, ...w.path.split('/'));
    try {
      if (what === 'index') {
        if (w.oid === null) await git.updateIndex({ ...base, filepath: w.path, remove: true, force: true });
        else await git.updateIndex({ ...base, filepath: w.path, oid: w.oid, mode: parseInt(w.mode, 8), add: true });
      } else if (w.content === null) {
        await ctx.fs.promises.rm(abs, { force: true });
        await pruneEmptyDirs(ctx, abs);
        remove.push(w.path);
      } else {
        await ctx.fs.promises.mkdir(path.dirname(abs), { recursive: true });
        await ctx.fs.promises.writeFile(abs, w.content, 'utf8');
        if (w.mode === '100755') await ctx.fs.promises.chmod(abs, 0o755);
        add.push(w.path);
      }
    } catch (err: unknown) {
      ctx.logger.warn('git: could not update work tree file', { path: w.path, error: errMessage(err) });
    }
  }
  try {
    if (add.length > 0) await git.add({ ...base, filepath: add, force: true });
    if (remove.length > 0) await git.remove({ ...base, filepath: remove });
  } catch (err: unknown) {
    ctx.logger.warn('git: could not update the index', { paths: [...add, ...remove], error: errMessage(err) });
  }
}
