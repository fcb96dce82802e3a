/**
 * GitStore: the tenants repository, read and written without the index. Objects (commits,
 * trees, blobs) go through ObjectDb (node:zlib; object-db.ts); refs, clone, fetch and push through
 * isomorphic-git.
 *
 * - Local repositories (a path or file:// URL; bare, or with a work tree) are used in place.
 * - http(s) repositories are mirrored into `<dataDir>/repo.git` (bare, one branch at a time).
 *   `sync()` fetches the tracked branch and moves the local `refs/heads/<branch>` to the remote
 *   head; commits are pushed with a compare-and-swap on the remote head and, when the remote
 *   moved, rebuilt on the new head (`build` is called again) — never force-pushed.
 *
 * Commits are made one chain at a time per store (an in-process promise-chain mutex; `sync()`
 * takes it too, so a fetch never moves a ref under a commit in flight): calls that wait behind a
 * commit are built as a chain of commits, one per call, whose objects are written together and
 * whose ref moves (or push happens) once. One store per repository and data directory: two
 * stores (or processes) on the same mirror are not coordinated.
 *
 * Committing to a branch other than the tracked one (e.g. a status branch): if that branch does
 * not exist yet (locally, nor on the remote), it is created from the tracked branch's head —
 * `build` receives the tracked head and the new commit's parent is that head — so the status
 * branch shares history with the desired state; an empty tracked branch gives a root commit.
 *
 * A root commit is made only in a repository that never had history: a tracked branch that
 * vanished is E_GIT_BRANCH_MISSING, never started over (that commit would drop every tenant).
 */
import * as nodeFs from 'node:fs';
import path from 'node:path';
import * as git from 'isomorphic-git';
import httpNode from 'isomorphic-git/http/node';
import { retryable, stalled, type TenantdError } from '../errors.js';
import { atomicWriteFs } from './atomic-fs.js';
import { errCode, objectError, redact } from './errors.js';
import { locateLocalRepo, looksLikeGitdir, parseRepoSpec } from './location.js';
import { encodeCommit } from './commit-object.js';
import { Mutex } from './mutex.js';
import { ObjectDb } from './object-db.js';
import { ensureMirror, fetchBranch, pushCommit, type RemoteCtx } from './remote.js';
import { applyChanges, type WrittenFile } from './tree-write.js';
import { compareCommits, type Comparison } from './history.js';
import { changedFilesBetween, commitTree, directoryAt, dirSegments, fileOidAt, listFilesAt, notOfType, objectNotFound, readTreeEntries, type RepoCtx, type TreeEntry } from './tree.js';
import { isCheckedOut, planPaths, updateWorktree, type WorktreeCtx } from './worktree.js';
import type {
  ChangedFile,
  CommitRequest,
  CommitResult,
  GitAuthor,
  GitLogger,
  GitStoreOptions,
  LogEntry,
  TreeEntryFile,
} from './types.js';

export type {
  ChangedFile,
  CommitRequest,
  CommitResult,
  FileChange,
  GitAuthor,
  GitLogger,
  GitStoreOptions,
  HttpClient,
  LogEntry,
  TreeEntryFile,
} from './types.js';

const DEFAULT_MAX_PUSH_ATTEMPTS = 10;
/** Between rejected pushes: a short, growing, jittered pause so racing writers stop colliding. */
const pushBackoffMs = (attempt: number): number => Math.min(1000, 25 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);

const noopLogger: GitLogger = { debug: () => undefined, warn: () => undefined };

/** Validate a short branch name (a conservative subset of git-check-ref-format). */
export function assertBranchName(branch: string): void {
  const ok =
    typeof branch === 'string' &&
    branch.length > 0 &&
    !branch.startsWith('refs/') &&
    !branch.includes('..') &&
    branch.split('/').every((c) => /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(c) && !c.endsWith('.lock') && !c.endsWith('.'));
  if (!ok) throw stalled('E_GIT_BAD_REF', `invalid branch name ${JSON.stringify(branch)}`, { branch });
}

interface Prepared {
  commit: string;
  parent: string | null;
  written: WrittenFile[];
}

/** A commitFiles call waiting for its turn (see `commitFiles`). */
interface Waiting {
  req: CommitRequest;
  resolve: (r: CommitResult | null) => void;
  reject: (err: unknown) => void;
}

/** What one request came to in a chain: its commit, nothing to commit, or its build's error. */
type Outcome = { kind: 'commit'; p: Prepared } | { kind: 'none' } | { kind: 'error'; err: unknown };

/** Requests committed as one chain at most (one push, one ref update). */
const MAX_CHAIN = 256;

/** Files written by a chain of commits, as one change from the chain's parent (first old oid, last new). */
function combineWritten(chain: Prepared[]): WrittenFile[] {
  const byPath = new Map<string, WrittenFile>();
  for (const p of chain) {
    for (const w of p.written) {
      const first = byPath.get(w.path);
      byPath.set(w.path, first ? { ...w, oldOid: first.oldOid } : w);
    }
  }
  return [...byPath.values()].filter((w) => w.oid !== w.oldOid);
}

export class GitStore {
  /** true when the repository is an http(s) remote mirrored into the data directory */
  readonly remote: boolean;
  /** the tracked branch */
  readonly branch: string;
  /** the git directory read and written */
  readonly gitdir: string;
  /** the work tree of a local non-bare repository, else null */
  readonly workdir: string | null;

  private readonly ctx: RepoCtx;
  private readonly remoteCtx: RemoteCtx | null;
  private readonly mutex = new Mutex();
  private readonly now: () => Date;
  private readonly logger: GitLogger;
  private readonly committer: GitAuthor | undefined;
  private readonly maxPushAttempts: number;
  private readonly waiting = new Map<string, Waiting[]>();
  /** Branches seen at a commit by this store: one of them missing later has vanished, not never existed. */
  private readonly seenBranches = new Set<string>();

  private constructor(
    opts: GitStoreOptions,
    ctx: RepoCtx,
    remoteCtx: RemoteCtx | null,
    workdir: string | null,
    logger: GitLogger,
  ) {
    this.remote = remoteCtx !== null;
    this.branch = opts.branch;
    this.gitdir = ctx.gitdir;
    this.workdir = workdir;
    this.ctx = ctx;
    this.remoteCtx = remoteCtx;
    this.now = opts.now ?? (() => new Date());
    this.logger = logger;
    this.committer = opts.committer;
    this.maxPushAttempts = Math.max(1, opts.maxPushAttempts ?? DEFAULT_MAX_PUSH_ATTEMPTS);
  }

  /**
   * Open the repository: for an http(s) URL, clone it into `<dataDir>/repo.git` unless already
   * cloned; for a local path, check it is a git repository (E_GIT_REPO_NOT_FOUND otherwise).
   */
  static async open(opts: GitStoreOptions): Promise<GitStore> {
    assertBranchName(opts.branch);
    const fs = atomicWriteFs(opts.fs ?? nodeFs);
    const logger = opts.logger ?? noopLogger;
    const cache = {};
    const spec = parseRepoSpec(opts.repo);
    if (spec.kind === 'remote') {
      const gitdir = path.resolve(opts.dataDir, 'repo.git');
      const odb = new ObjectDb(gitdir, fs);
      const remoteCtx: RemoteCtx = { fs, gitdir, cache, odb, http: opts.http ?? httpNode, url: spec.url, token: opts.token, logger };
      await ensureMirror(remoteCtx, opts.branch);
      return new GitStore(opts, { fs, gitdir, cache, odb }, remoteCtx, null, logger);
    }
    const local = await locateLocalRepo(fs, spec.path);
    logger.debug('git: opened local repository', { gitdir: local.gitdir, worktree: local.dir });
    return new GitStore(opts, { fs, gitdir: local.gitdir, cache, odb: new ObjectDb(local.gitdir, fs) }, null, local.dir, logger);
  }

  /**
   * Remote: fetch the tracked branch and move the local branch ref to the remote head; local:
   * resolve the branch. Returns the head, or null when the branch does not exist (yet).
   * Network failures are retryable E_GIT_FETCH; 401/403 stalled E_GIT_AUTH; 404 stalled E_GIT_REPO_NOT_FOUND.
   */
  sync(): Promise<string | null> {
    return this.mutex.run(async () => {
      if (!this.remoteCtx) {
        // A local repository that disappeared (unmounted volume, moved path) is unreachable, not empty.
        if (!(await looksLikeGitdir(this.ctx.fs, this.ctx.gitdir))) {
          throw retryable('E_GIT_REPO_NOT_FOUND', `${this.ctx.gitdir} is no longer a git repository`, { gitdir: this.ctx.gitdir });
        }
        return this.resolveBranch(this.branch);
      }
      const local = await this.resolveBranch(this.branch);
      const head = await fetchBranch(this.remoteCtx, this.branch);
      if (head === null) {
        if (local !== null) this.logger.warn('git: tracked branch is missing on the remote', { branch: this.branch });
        return null;
      }
      if (head !== local) await this.followRemote(this.branch, head, local);
      return head;
    });
  }

  /** Resolve a ref (branch, full ref, HEAD or oid) to a commit id; null when it does not exist. */
  async resolve(ref: string): Promise<string | null> {
    try {
      return await git.resolveRef({ fs: this.ctx.fs, gitdir: this.ctx.gitdir, ref });
    } catch (err: unknown) {
      if (errCode(err) === 'NotFoundError') return null;
      throw objectError(ref, err);
    }
  }

  /** Files directly under `dir` (e.g. 'tenants') at `commit`, sorted by path; [] when `dir` is missing. */
  listFiles(commit: string, dir: string): Promise<TreeEntryFile[]> {
    return listFilesAt(this.ctx, commit, dir);
  }

  /**
   * Every entry directly under `dir` at `commit` — files, symlinks, directories, submodules —
   * with its mode, in git's order; [] when `dir` is missing, E_REPO_LAYOUT when a file, symlink or
   * submodule stands in its place (never read as an empty directory: every tenant removed). The
   * entries are the parsed tree's own (recent trees stay parsed): callers must not change them.
   */
  async listEntries(commit: string, dir: string): Promise<readonly TreeEntry[]> {
    const root = await readTreeEntries(this.ctx, commit);
    const tree = await directoryAt(this.ctx, root.oid, dirSegments(dir));
    return tree === null ? [] : (await readTreeEntries(this.ctx, tree)).entries;
  }

  /**
   * Files under `dir` (recursively) that differ between `from` and `to`, sorted by path, found
   * by comparing tree oids (identical subtrees are not read; blobs are never read). `from` null:
   * every file is added. A rename shows as a delete and an add.
   */
  changedFiles(from: string | null, to: string, dir: string): Promise<ChangedFile[]> {
    return changedFilesBetween(this.ctx, from, to, dir);
  }

  /** One file at a commit (its blob oid and text), or null when the commit has no such file. */
  async fileAt(commit: string, filePath: string): Promise<{ oid: string; text: string } | null> {
    const oid = await fileOidAt(this.ctx, commit, filePath);
    return oid === null ? null : { oid, text: await this.readBlob(oid) };
  }

  /** A blob's content as utf8. */
  async readBlob(oid: string): Promise<string> {
    return (await this.readBlobs([oid]))[0] as string;
  }

  /**
   * Blobs' contents as utf8, in the order asked. Read as one batch: packed objects in pack
   * order through large sequential reads, which is what makes a 10,000-tenant cold load fast.
   * The first blob that cannot be read fails the call (see `readBlobsSettled`).
   */
  async readBlobs(oids: readonly string[]): Promise<string[]> {
    return (await this.readBlobsSettled(oids)).map((r) => {
      if (r instanceof Error) throw r;
      return r;
    });
  }

  /**
   * As `readBlobs`, but a blob that cannot be read — missing (E_GIT_OBJECT_NOT_FOUND), corrupt
   * (E_GIT_OBJECT_CORRUPT), not a blob — is its error in its place, so one damaged object costs
   * only the file that names it.
   */
  async readBlobsSettled(oids: readonly string[]): Promise<Array<string | TenantdError>> {
    let objects;
    try {
      objects = await this.ctx.odb.readManySettled(oids);
    } catch (err: unknown) {
      // an argument that is no object id, or the pack directory cannot be listed
      const e = objectError(oids.length === 1 ? (oids[0] as string) : `${oids.length} blobs`, err);
      return oids.map(() => e);
    }
    return objects.map((o, i) => {
      const oid = oids[i] as string;
      if (o instanceof Error) return o;
      if (!o) return objectNotFound(oid, 'blob');
      if (o.type !== 'blob') return notOfType(oid, o.type, 'blob');
      return o.data.toString('utf8');
    });
  }

  /**
   * How `head` relates to `base`: whether it is a fast-forward of it, and the commits new since
   * (reachable from `head`, not from `base`), newest first. A `base` that no longer exists is not
   * an ancestor (a re-created repository).
   */
  compare(base: string, head: string, opts: { limit?: number } = {}): Promise<Comparison> {
    return compareCommits(this.ctx, base, head, opts);
  }

  /** Release open pack files. The store is unusable afterwards. */
  close(): Promise<void> {
    return this.mutex.run(() => this.ctx.odb.close());
  }

  /**
   * Commit file changes to `req.branch` (default: the tracked branch), one writer at a time.
   * `build(head)` returns the changes against the current head; no changes (or changes that leave
   * the tree identical) → null, never an empty commit. Remote: pushed, and rebuilt on the new
   * head when the remote moved (at most `maxPushAttempts` builds, then E_GIT_PUSH_CONFLICT).
   *
   * Calls that arrive while a commit is in flight are committed together as a chain: each is still
   * its own commit (built on the one before, in call order), but the chain moves the ref — and is
   * pushed — once. A failing `build` fails only its own call.
   */
  commitFiles(req: CommitRequest): Promise<CommitResult | null> {
    const branch = req.branch ?? this.branch;
    assertBranchName(branch);
    return new Promise((resolve, reject) => {
      const queue = this.waiting.get(branch);
      if (queue) {
        queue.push({ req, resolve, reject });
        return;
      }
      this.waiting.set(branch, [{ req, resolve, reject }]);
      void this.mutex.run(() => this.flush(branch));
    });
  }

  /** Commit what waits for `branch` (up to MAX_CHAIN; the rest goes next) and settle each call. */
  private async flush(branch: string): Promise<void> {
    const queue = this.waiting.get(branch) ?? [];
    const batch = queue.splice(0, MAX_CHAIN);
    if (queue.length === 0) this.waiting.delete(branch);
    else void this.mutex.run(() => this.flush(branch));
    try {
      const outcomes = this.remoteCtx ? await this.commitRemote(this.remoteCtx, branch, batch) : await this.commitLocal(branch, batch);
      batch.forEach((w, i) => {
        const o = outcomes[i] as Outcome;
        if (o.kind === 'error') w.reject(o.err);
        else w.resolve(o.kind === 'none' ? null : { commit: o.p.commit, parent: o.p.parent });
      });
    } catch (err: unknown) {
      for (const w of batch) w.reject(err);
    }
  }

  /** Up to `depth` commits reachable from `ref`, newest first; [] when `ref` does not exist. */
  async log(ref: string, depth: number): Promise<LogEntry[]> {
    const oid = await this.resolve(ref);
    if (oid === null) return [];
    try {
      const commits = await git.log({ fs: this.ctx.fs, gitdir: this.ctx.gitdir, cache: this.ctx.cache, ref: oid, depth });
      return commits.map((c) => ({
        oid: c.oid,
        message: c.commit.message.replace(/\n$/, ''),
        author: { name: c.commit.author.name, email: c.commit.author.email, timestamp: c.commit.author.timestamp },
      }));
    } catch (err: unknown) {
      throw objectError(ref, err);
    }
  }

  // ---------------------------------------------------------------------------------------------

  private async resolveBranch(branch: string): Promise<string | null> {
    const oid = await this.resolve(`refs/heads/${branch}`);
    if (oid !== null) this.seenBranches.add(branch);
    return oid;
  }

  /**
   * A commit with no parent is made only in a repository that never had one. A branch that had
   * history and disappeared (`git update-ref -d`, a deleted remote branch) must be restored by a
   * person: a root commit there would hold only the new files, i.e. remove every other tenant.
   */
  private async assertRootAllowed(branch: string): Promise<void> {
    const known = this.seenBranches.has(branch) || this.seenBranches.has(this.branch);
    if (known || (await hasObjects(this.ctx.fs, this.gitdir))) {
      throw stalled(
        'E_GIT_BRANCH_MISSING',
        `branch ${branch} does not exist but the repository has history: refusing to start it over with a root commit; restore the branch (e.g. git update-ref refs/heads/${branch} <commit>)`,
        { branch },
      );
    }
  }

  private async setBranch(branch: string, oid: string): Promise<void> {
    await git.writeRef({ fs: this.ctx.fs, gitdir: this.ctx.gitdir, ref: `refs/heads/${branch}`, value: oid, force: true });
  }

  /** Move the mirror's branch to the remote head, warning when that is not a fast-forward. */
  private async followRemote(branch: string, head: string, local: string | null): Promise<void> {
    if (local !== null) {
      let ff: boolean | null = null;
      try {
        ff = await git.isDescendent({ fs: this.ctx.fs, gitdir: this.ctx.gitdir, cache: this.ctx.cache, oid: head, ancestor: local, depth: 10000 });
      } catch {
        ff = null;
      }
      if (ff === false) this.logger.warn('git: remote branch history was rewritten; following it', { branch, from: local, to: head });
    }
    await this.setBranch(branch, head);
    this.logger.debug('git: branch moved', { branch, from: local, to: head });
  }

  /** Run `build` against `head` and write the blobs, trees and commit (no ref is moved). */
  private async prepare(head: string | null, req: CommitRequest): Promise<Prepared | null> {
    const changes = await req.build(head);
    if (changes.length === 0) return null;
    const baseTree = head === null ? null : await commitTree(this.ctx, head);
    const { tree, written } = await applyChanges(this.ctx, baseTree, changes);
    if (written.length === 0 || tree === baseTree) return null;
    const timestamp = Math.floor(this.now().getTime() / 1000);
    const author = { name: req.author.name, email: req.author.email, timestamp, timezoneOffset: 0 };
    const committer = this.committer ? { ...this.committer, timestamp, timezoneOffset: 0 } : author;
    const data = encodeCommit({ message: req.message, tree, parents: head === null ? [] : [head], author, committer });
    const commit = await this.ctx.odb.write('commit', data, { defer: true });
    return { commit, parent: head, written };
  }

  /**
   * Build one commit per request on `head`, each on the one before, and write their objects
   * (held in memory while building, see ObjectDb `defer`) before any ref can point at them.
   */
  private async prepareChain(head: string | null, batch: Waiting[]): Promise<{ outcomes: Outcome[]; chain: Prepared[]; tip: string | null }> {
    try {
      const built = await this.buildChain(head, batch);
      if (built.chain.length > 0) await this.ctx.odb.flush();
      return built;
    } finally {
      // objects of builds that failed or changed nothing, or of a flush that failed
      this.ctx.odb.discard();
    }
  }

  private async buildChain(head: string | null, batch: Waiting[]): Promise<{ outcomes: Outcome[]; chain: Prepared[]; tip: string | null }> {
    const outcomes: Outcome[] = [];
    const chain: Prepared[] = [];
    let tip = head;
    for (const w of batch) {
      let p: Prepared | null;
      try {
        p = await this.prepare(tip, w.req);
      } catch (err: unknown) {
        outcomes.push({ kind: 'error', err });
        continue;
      }
      if (!p) {
        outcomes.push({ kind: 'none' });
        continue;
      }
      outcomes.push({ kind: 'commit', p });
      chain.push(p);
      tip = p.commit;
    }
    return { outcomes, chain, tip };
  }

  private async commitLocal(branch: string, batch: Waiting[]): Promise<Outcome[]> {
    const wt: WorktreeCtx | null = this.workdir ? { ...this.ctx, dir: this.workdir, logger: this.logger } : null;
    for (let attempt = 1; attempt <= this.maxPushAttempts; attempt++) {
      const expected = await this.resolveBranch(branch);
      const head = expected !== null || branch === this.branch ? expected : await this.resolveBranch(this.branch);
      if (head === null) await this.assertRootAllowed(branch);
      const { outcomes, chain, tip } = await this.prepareChain(head, batch);
      if (chain.length === 0 || tip === null) return outcomes;
      const written = combineWritten(chain);
      const syncWorktree = wt !== null && (await isCheckedOut(wt, branch));
      const plan = wt && syncWorktree ? await planPaths(wt, written) : null;
      // best effort against another writer of the same repository (e.g. the user's own git)
      if ((await this.resolveBranch(branch)) !== expected) {
        this.logger.debug('git: branch moved while committing; rebuilding', { branch, attempt });
        continue;
      }
      await this.setBranch(branch, tip);
      this.seenBranches.add(branch);
      if (wt && plan) await updateWorktree(wt, written, plan);
      this.logger.debug('git: committed', { branch, commit: tip, parent: head, commits: chain.length, files: written.length });
      return outcomes;
    }
    throw retryable('E_GIT_REF_CONFLICT', `branch ${branch} kept moving while committing`, { branch, attempts: this.maxPushAttempts });
  }

  private async commitRemote(rctx: RemoteCtx, branch: string, batch: Waiting[]): Promise<Outcome[]> {
    let expected = await this.resolveBranch(branch);
    if (expected === null && branch !== this.branch) {
      // first use of another branch here: it may already exist on the remote
      expected = await fetchBranch(rctx, branch, this.branch);
      if (expected !== null) await this.setBranch(branch, expected);
    }
    for (let attempt = 1; attempt <= this.maxPushAttempts; attempt++) {
      const head = expected !== null || branch === this.branch ? expected : await this.resolveBranch(this.branch);
      if (head === null) await this.assertRootAllowed(branch);
      const { outcomes, chain, tip } = await this.prepareChain(head, batch);
      if (chain.length === 0 || tip === null) return outcomes;
      const outcome = await pushCommit(rctx, branch, tip, expected);
      if (outcome.ok) {
        await this.setBranch(branch, tip);
        this.seenBranches.add(branch);
        this.logger.debug('git: committed and pushed', { branch, commit: tip, parent: head, commits: chain.length, attempt });
        return outcomes;
      }
      this.logger.debug('git: push rejected, remote moved; fetching and rebuilding', {
        branch,
        attempt,
        reason: outcome.reason,
        advertised: outcome.advertised,
      });
      if (attempt < this.maxPushAttempts) await new Promise((r) => setTimeout(r, pushBackoffMs(attempt)));
      expected = await fetchBranch(rctx, branch, expected === null ? this.branch : branch);
      if (expected !== null) await this.setBranch(branch, expected);
    }
    throw retryable(
      'E_GIT_PUSH_CONFLICT',
      `push to ${redact(rctx.url, rctx.token)} (${branch}) kept being rejected because the remote moved; gave up after ${this.maxPushAttempts} attempts`,
      { branch, attempts: this.maxPushAttempts, url: redact(rctx.url, rctx.token) },
    );
  }
}

/** Whether the object store holds anything (loose objects or a pack): an empty one never had a commit. */
async function hasObjects(fs: typeof nodeFs, gitdir: string): Promise<boolean> {
  const objects = path.join(gitdir, 'objects');
  const names = await fs.promises.readdir(objects).catch(() => [] as string[]);
  if (names.some((n) => /^[0-9a-f]{2}$/.test(n))) return true;
  const packs = await fs.promises.readdir(path.join(objects, 'pack')).catch(() => [] as string[]);
  return packs.some((n) => n.endsWith('.pack'));
}
