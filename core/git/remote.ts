/**
 * The http(s) remote: a bare mirror in `<dataDir>/repo.git` with remote `origin`, fetched one
 * branch at a time and pushed to with a compare-and-swap on the remote branch head (never forced).
 */
import path from 'node:path';
import * as git from 'isomorphic-git';
import type { AuthCallback, HttpClient } from 'isomorphic-git';
import { stalled } from '../errors.js';
import { cloneTmpName, isAbandonedClone } from './clone-leftovers.js';
import { errCode, errData, errMessage, redact, remoteError } from './errors.js';
import { looksLikeGitdir } from './location.js';
import type { RepoCtx } from './tree.js';
import type { GitLogger } from './types.js';

export const ZERO_OID = '0000000000000000000000000000000000000000';

export interface RemoteCtx extends RepoCtx {
  http: HttpClient;
  url: string;
  token?: string;
  logger: GitLogger;
}

/** Credentials are only given when the server asks (401); a fresh headers object each call (isomorphic-git mutates it). */
function authOptions(ctx: RemoteCtx): { onAuth?: AuthCallback; headers: Record<string, string> } {
  const token = ctx.token;
  if (!token) return { headers: {} };
  return { onAuth: () => ({ username: 'x-access-token', password: token }), headers: {} };
}

/**
 * Make sure the mirror exists: create it in a temporary directory (init bare, set `origin`,
 * fetch `branch`) and rename it into place, so a failed or interrupted clone leaves nothing
 * half-made behind. An existing mirror is reused; its origin URL is updated if it changed.
 */
export async function ensureMirror(ctx: RemoteCtx, branch: string): Promise<void> {
  const { fs, gitdir } = ctx;
  if (await looksLikeGitdir(fs, gitdir)) {
    const current = await git.getConfig({ fs, gitdir, path: 'remote.origin.url' });
    if (current !== ctx.url) {
      ctx.logger.warn('git: repository URL changed; updating the mirror origin', {
        from: typeof current === 'string' ? redact(current, ctx.token) : null,
        to: redact(ctx.url, ctx.token),
      });
      await git.setConfig({ fs, gitdir, path: 'remote.origin.url', value: ctx.url });
    }
    return;
  }
  const parent = path.dirname(gitdir);
  await fs.promises.mkdir(parent, { recursive: true });
  // Leftovers of an interrupted clone; another replica's clone in progress is left alone.
  const base = path.basename(gitdir);
  const now = Date.now();
  for (const name of await fs.promises.readdir(parent)) {
    const stat = await fs.promises.stat(path.join(parent, name)).catch(() => null);
    if (stat && isAbandonedClone(base, name, stat.mtimeMs, now)) await fs.promises.rm(path.join(parent, name), { recursive: true, force: true });
  }
  const existing = await fs.promises.readdir(gitdir).catch(() => null);
  if (existing !== null) {
    // Another replica sharing the data dir may have just put its clone in place.
    if (await looksLikeGitdir(fs, gitdir)) return;
    if (existing.length > 0) {
      throw stalled('E_GIT_DATA_DIR', `${gitdir} exists but is not a git repository; remove it to clone again`, { path: gitdir });
    }
    await fs.promises.rmdir(gitdir);
  }
  const tmp = path.join(parent, cloneTmpName(base));
  try {
    await git.init({ fs, dir: tmp, bare: true, defaultBranch: branch });
    await git.setConfig({ fs, gitdir: tmp, path: 'remote.origin.url', value: ctx.url });
    await git.setConfig({ fs, gitdir: tmp, path: 'remote.origin.fetch', value: '+refs/heads/*:refs/remotes/origin/*' });
    const head = await fetchBranch({ ...ctx, gitdir: tmp }, branch);
    if (head) await git.writeRef({ fs, gitdir: tmp, ref: `refs/heads/${branch}`, value: head, force: true });
    try {
      await fs.promises.rename(tmp, gitdir);
    } catch (err: unknown) {
      // Lost a race to another replica's clone (rename onto a non-empty directory fails): use theirs.
      if (!(await looksLikeGitdir(fs, gitdir))) throw err;
      await fs.promises.rm(tmp, { recursive: true, force: true });
      ctx.logger.debug('git: another process cloned first; using its mirror', { gitdir });
      return;
    }
    ctx.logger.debug('git: cloned', { url: redact(ctx.url, ctx.token), branch, head });
  } catch (err: unknown) {
    await fs.promises.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw remoteError('clone', err, ctx.url, ctx.token);
  }
}

/**
 * Fetch `refs/heads/<branch>` from origin. Returns its head, or null when the remote has no such
 * branch (or no branches at all). Objects of `haveBranch` (default: `branch`) are offered as
 * "haves", so a new branch forked from the tracked one does not download all history again.
 * Does not move `refs/heads/<branch>`; the caller does.
 */
export async function fetchBranch(ctx: RemoteCtx, branch: string, haveBranch = branch): Promise<string | null> {
  const remoteRef = `refs/heads/${branch}`;
  try {
    const r = await git.fetch({
      fs: ctx.fs,
      http: ctx.http,
      gitdir: ctx.gitdir,
      cache: ctx.cache,
      remote: 'origin',
      ref: haveBranch,
      remoteRef,
      singleBranch: true,
      tags: false,
      ...authOptions(ctx),
    });
    return r.fetchHead ?? null;
  } catch (err: unknown) {
    if (errCode(err) === 'NotFoundError' && errData(err).what === remoteRef) return null;
    throw remoteError('fetch', err, ctx.url, ctx.token);
  }
}

/** Errors receive-pack reports when the ref moved between our ref discovery and our update. */
const STALE_REF = /fetch first|non-fast-forward|stale info|failed to (update|lock)|cannot lock|expected|reference already exists/i;

function isStaleRefPushError(err: unknown): boolean {
  if (errCode(err) !== 'GitPushError') return false;
  const result = errData(err).result as { refs?: Record<string, { ok: boolean; error?: string }> } | undefined;
  const errors = Object.values(result?.refs ?? {}).filter((r) => !r.ok).map((r) => r.error ?? '');
  return errors.length > 0 && errors.every((e) => STALE_REF.test(e));
}

/** `advertised`: the remote head seen at ref discovery (it may have moved again since). */
export type PushOutcome = { ok: true } | { ok: false; advertised: string | null; reason: string };

/**
 * Push `commit` to `refs/heads/<branch>` only if the remote branch is still at `expected`
 * (null = must not exist). A remote that moved is reported as `{ ok: false }` (the caller
 * fetches and rebuilds); any other failure throws E_GIT_PUSH / E_GIT_AUTH / … . Never forces.
 */
export async function pushCommit(ctx: RemoteCtx, branch: string, commit: string, expected: string | null): Promise<PushOutcome> {
  const localRef = `refs/tenantd/outgoing/${branch}`;
  const seen: { remote?: string } = {};
  await git.writeRef({ fs: ctx.fs, gitdir: ctx.gitdir, ref: localRef, value: commit, force: true });
  try {
    await git.push({
      fs: ctx.fs,
      http: ctx.http,
      gitdir: ctx.gitdir,
      cache: ctx.cache,
      remote: 'origin',
      ref: localRef,
      remoteRef: `refs/heads/${branch}`,
      force: false,
      ...authOptions(ctx),
      // compare before any object is packed: the advertised remote head must be what we built on
      onPrePush: ({ remoteRef }) => {
        seen.remote = remoteRef.oid;
        return remoteRef.oid === (expected ?? ZERO_OID);
      },
    });
    return { ok: true };
  } catch (err: unknown) {
    const advertised = seen.remote === undefined || seen.remote === ZERO_OID ? null : seen.remote;
    if (errCode(err) === 'UserCanceledError' && seen.remote !== undefined && seen.remote !== (expected ?? ZERO_OID)) {
      return { ok: false, advertised, reason: 'remote moved' };
    }
    if (errCode(err) === 'PushRejectedError') return { ok: false, advertised, reason: 'not a fast-forward' };
    if (isStaleRefPushError(err)) return { ok: false, advertised, reason: redact(errMessage(err), ctx.token) };
    throw remoteError('push', err, ctx.url, ctx.token);
  } finally {
    await git.deleteRef({ fs: ctx.fs, gitdir: ctx.gitdir, ref: localRef }).catch(() => undefined);
  }
}
