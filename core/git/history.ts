/**
 * Commit ancestry without the index: is one commit an ancestor of another, and which commits are
 * new between them (reachable from `head`, not from `base`, as `git rev-list base..head`).
 *
 * Both questions are answered by one walk, git's "paint down" (commit-reach.c): the two tips are
 * walked newest first, each commit painted with the side(s) that reach it; the walk stops when
 * every commit still queued is reached from `base` (nothing older can be new). The walk is
 * bounded: past `MAX_WALK` commits the answer is "not shown to be a fast-forward", which callers
 * treat as the unsafe case.
 */
import { stalled } from '../errors.js';
import { objectError } from './errors.js';
import type { RepoCtx } from './tree.js';

export interface CommitInfo {
  oid: string;
  parents: string[];
  /** committer time, seconds since the epoch */
  time: number;
  message: string;
}

export interface Comparison {
  /** `base` is `head` or one of its ancestors. */
  fastForward: boolean;
  /** Commits reachable from `head` and not from `base`, newest first (at most `limit`). */
  newCommits: CommitInfo[];
  /** The walk hit its bound: `fastForward` false may only mean "not shown". */
  truncated: boolean;
}

export const MAX_WALK = 20_000;

const HEAD = 1;
const BASE = 2;

export function parseCommit(oid: string, data: Buffer): CommitInfo {
  const text = data.toString('utf8');
  const split = text.indexOf('\n\n');
  const header = split < 0 ? text : text.slice(0, split);
  const parents: string[] = [];
  let time = 0;
  let sawTree = false;
  for (const line of header.split('\n')) {
    if (line.startsWith('tree ')) sawTree = true;
    else if (line.startsWith('parent ')) parents.push(line.slice(7).trim());
    else if (line.startsWith('committer ')) {
      const m = / (\d+) [+-]\d{4}$/.exec(line);
      if (m) time = Number(m[1]);
    }
  }
  if (!sawTree) throw stalled('E_GIT_OBJECT_CORRUPT', `git commit ${oid} has no tree line`, { oid });
  return { oid, parents, time, message: split < 0 ? '' : text.slice(split + 2) };
}

export async function readCommit(ctx: RepoCtx, oid: string): Promise<CommitInfo> {
  let obj;
  try {
    obj = await ctx.odb.read(oid);
  } catch (err: unknown) {
    throw objectError(oid, err);
  }
  if (!obj) throw stalled('E_GIT_OBJECT_NOT_FOUND', `git object not found: ${oid} (commit)`, { what: oid });
  if (obj.type !== 'commit') throw stalled('E_GIT_OBJECT_NOT_FOUND', `git object ${oid} is a ${obj.type}, not a commit`, { what: oid });
  return parseCommit(oid, obj.data);
}

/** Compare `head` with `base`; `limit` bounds the new commits returned (not the walk). */
export async function compareCommits(ctx: RepoCtx, base: string, head: string, opts: { limit?: number; maxWalk?: number } = {}): Promise<Comparison> {
  if (base === head) return { fastForward: true, newCommits: [], truncated: false };
  const limit = opts.limit ?? 1000;
  const maxWalk = opts.maxWalk ?? MAX_WALK;
  const flags = new Map<string, number>();
  const info = new Map<string, CommitInfo>();
  // A small priority queue by committer time, newest first (queues stay short: the frontier).
  const queue: CommitInfo[] = [];
  const push = (c: CommitInfo): void => {
    let i = queue.length;
    while (i > 0 && (queue[i - 1] as CommitInfo).time < c.time) i--;
    queue.splice(i, 0, c);
  };
  const load = async (oid: string): Promise<CommitInfo> => {
    let c = info.get(oid);
    if (!c) {
      c = await readCommit(ctx, oid);
      info.set(oid, c);
    }
    return c;
  };
  flags.set(head, HEAD);
  flags.set(base, BASE);
  push(await load(head));
  // A base that no longer exists (a re-created repository) is nobody's ancestor: walk head alone.
  const baseCommit = await load(base).catch((err: unknown) => {
    if ((err as { code?: unknown }).code === 'E_GIT_OBJECT_NOT_FOUND') return null;
    throw err;
  });
  if (baseCommit) push(baseCommit);
  let walked = 0;
  let truncated = false;
  // Reached from both sides ("stale"): neither it nor anything older can be new.
  while (queue.some((c) => flags.get(c.oid) !== (HEAD | BASE))) {
    if (++walked > maxWalk) {
      truncated = true;
      break;
    }
    const c = queue.shift() as CommitInfo;
    const f = flags.get(c.oid) as number;
    for (const p of c.parents) {
      const pf = flags.get(p) ?? 0;
      if ((pf & f) === f) continue;
      flags.set(p, pf | f);
      let parent: CommitInfo;
      try {
        parent = await load(p);
      } catch (err: unknown) {
        // A shallow or damaged history: the side that needed it cannot be followed further.
        if ((err as { code?: unknown }).code === 'E_GIT_OBJECT_NOT_FOUND') continue;
        throw err;
      }
      const idx = queue.indexOf(parent);
      if (idx >= 0) queue.splice(idx, 1);
      push(parent);
    }
  }
  const fastForward = ((flags.get(base) ?? 0) & HEAD) !== 0;
  const newCommits = [...flags.entries()]
    .filter(([, f]) => f === HEAD)
    .map(([oid]) => info.get(oid))
    .filter((c): c is CommitInfo => c !== undefined)
    .sort((a, b) => b.time - a.time)
    .slice(0, limit);
  return { fastForward, newCommits, truncated };
}
