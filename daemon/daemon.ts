import { promises as fsp } from 'node:fs';
import path from 'node:path';
import cron from 'node-cron';
import { DesiredStateLoader, type DesiredChange } from '../core/desired/loader.js';
import type { DurableFs } from '../core/durable-fs.js';
import { stalled, toTenantdError, TenantdError } from '../core/errors.js';
import { humanLineSubscriber, jsonLineSubscriber, ReconciliationEventPublisher } from '../core/events/publisher.js';
import { gcAuto } from '../core/git/gc.js';
import { GitStore } from '../core/git/store.js';
import { TransitionLog } from '../core/log/transition-log.js';
import type { TenantRecord } from '../core/state/record.js';
import { TenantStateStore } from '../core/state/store.js';
import type { InfrastructureProvider } from '../providers/provider.js';
import type { DaemonConfig } from './config.js';
import { ensureEmbeddedRepo } from './init-repo.js';
import { acquireDataDirLock } from './lock.js';
import { logLine } from './log-line.js';
import { createProvider } from './providers.js';
import { TenantQueue } from './queue.js';
import { DeletionGuard } from './deletion-guard.js';
import { InfrastructureReconciler } from './reconciler.js';
import { StatusWriter, type StatusCommitter } from './status-writer.js';
import { realTimers, type Timers } from './timers.js';
import { fencedCommit, fencedProvider, isFenced, type WriteFence } from './write-fence.js';

export interface DaemonDeps {
  /** Overrides the provider named in the config (tests inject failing or slow providers). */
  provider?: InfrastructureProvider;
  /** The clock and timers of retries and status commits (default: Node's); `now` defaults to this clock. */
  timers?: Timers;
  now?: () => Date;
  random?: () => number;
  /** Where event lines go (default stdout). */
  write?: (line: string) => void;
  /** The file system of the records and the transition log (tests: failing writes, power cuts). */
  fs?: DurableFs;
  /**
   * Leader election (`--leader-elect`): the daemon opens as a standby that only reads the shared
   * data dir, and writes only between `lead()` and `stepDown()`. `fence` is asked before every
   * durable write and throws E_NOT_LEADER to refuse it; `lease` names the Lease in the data-dir lock.
   */
  election?: { fence: WriteFence; holdsLease(): boolean; lease: string; identity: string };
}

/** How often a standby reads what the leader wrote (records, log, branch head) for its read API. */
const FOLLOW_MS = 2000;

export interface PollResult {
  head: string | null;
  changed: string[];
}

/** The composition root: source → desired state → queue → reconciler → provider, status and log. */
export class TenantdDaemon {
  readonly publisher: ReconciliationEventPublisher;
  private pollTimer: { stop(): void } | null = null;
  private driftTimer: NodeJS.Timeout | null = null;
  private gcTimer: NodeJS.Timeout | null = null;
  private packing: Promise<void> | null = null;
  private polling: Promise<PollResult> | null = null;
  private followUp: Promise<PollResult> | null = null;
  private stopping = false;
  private sourceReady = false;
  /** Why the repository cannot be acted on (tracked branch gone, invalid layout): /readyz false, API writes refused. */
  private repoProblem: TenantdError | null = null;
  /** Tenants of a change the deletion guard could not evaluate yet (retried on the next poll). */
  private readonly unevaluated = new Set<string>();
  /** `single` without leader election; else `standby` until lead(), `leader` until stepDown(). */
  private role: 'single' | 'standby' | 'leader';
  private followTimer: NodeJS.Timeout | null = null;
  private following: Promise<void> | null = null;
  /** The next poll queues every tenant with work left, as after a restart (set when taking over). */
  private rescan = false;
  /** Role changes run one at a time, in order. */
  private roleChange: Promise<void> = Promise.resolve();
  private readonly startListeners = new Set<(records: readonly TenantRecord[]) => void>();

  private constructor(
    readonly config: DaemonConfig,
    readonly git: GitStore,
    readonly store: TenantStateStore,
    readonly log: TransitionLog,
    readonly loader: DesiredStateLoader,
    readonly provider: InfrastructureProvider,
    readonly reconciler: InfrastructureReconciler,
    readonly queue: TenantQueue,
    readonly status: StatusWriter,
    readonly deletions: DeletionGuard,
    publisher: ReconciliationEventPublisher,
    private releaseLock: () => Promise<void>,
    private readonly election: DaemonDeps['election'],
  ) {
    this.publisher = publisher;
    this.role = election ? 'standby' : 'single';
  }

  static async open(config: DaemonConfig, deps: DaemonDeps = {}): Promise<TenantdDaemon> {
    await fsp.mkdir(config.dataDir, { recursive: true });
    const election = deps.election;
    const fence = election?.fence;
    // A standby takes the data dir only once it leads (lead()).
    const releaseLock = election ? async () => undefined : await acquireDataDirLock(config.dataDir);
    // What is already open when a later step fails is closed again: a failed open leaks no handle.
    const opened: Array<{ close(): Promise<void> }> = [];
    try {
      const timers = deps.timers ?? realTimers;
      const now = deps.now ?? (() => new Date(timers.now()));
      const write = deps.write ?? ((line: string) => void process.stdout.write(line));
      const publisher = new ReconciliationEventPublisher(now, (err) => write(logLine(config.logFormat, 'error', `event subscriber failed: ${String(err)}`)));
      publisher.subscribe(config.logFormat === 'json' ? jsonLineSubscriber(write) : humanLineSubscriber(write));

      const repo = config.repo ?? (await ensureEmbeddedRepo(path.join(config.dataDir, 'tenants'), config.branch));
      const git = await GitStore.open({
        repo,
        dataDir: config.dataDir,
        branch: config.branch,
        ...(config.gitToken ? { token: config.gitToken } : {}),
        now,
      });
      opened.push(git);
      const store = await TenantStateStore.open(config.dataDir, { ...(deps.fs ? { fs: deps.fs } : {}), ...(fence ? { fence, follow: true } : {}) });
      for (const d of store.discarded) publisher.publish({ type: 'StateRecordDiscarded', ...d });
      const log = await TransitionLog.open({ path: path.join(config.dataDir, 'transitions.jsonl'), ...(deps.fs ? { fs: deps.fs } : {}), ...(fence ? { fence, follow: true } : {}) });
      opened.push(log);
      const chosen = deps.provider ?? (await createProvider(config));
      const provider = fence ? fencedProvider(chosen, fence) : chosen;
      const committer: StatusCommitter = fence
        ? {
            resolve: (ref) => git.resolve(ref),
            listFiles: (commit, dir) => git.listFiles(commit, dir),
            commitFiles: (req) => git.commitFiles(fencedCommit(req, fence, 'a status commit')),
          }
        : git;
      // The queue's worker needs the daemon it belongs to (for shutdown), which needs the queue.
      const self: { daemon?: TenantdDaemon } = {};
      const status = new StatusWriter({
        git: committer,
        store,
        publisher,
        author: config.author,
        ...(config.statusBranch ? { branch: config.statusBranch } : {}),
        intervalMs: config.statusIntervalSeconds * 1000,
        timers,
        busy: (tenantId) => self.daemon?.queue.isRunning(tenantId) ?? false,
      });
      const loader = new DesiredStateLoader(git);
      const deletions = await DeletionGuard.open({
        dataDir: config.dataDir,
        limit: config.maxDeletions,
        store,
        desired: { has: (id) => loader.get(id) !== null, get size() { return loader.size; } },
        git,
        publisher,
        now,
        ...(fence ? { fence } : {}),
      });
      const reconciler = new InfrastructureReconciler({
        provider,
        store,
        log,
        publisher,
        backoff: config.backoff,
        now,
        ...(deps.random ? { random: deps.random } : {}),
        onRecordChanged: (id) => status.markDirty(id),
        deletionGate: (id) => deletions.verdict(id),
        approvalTiers: config.approvalTiers,
      });
      const queue = new TenantQueue(
        config.concurrency,
        async (job, signal) => {
          const d = self.daemon as TenantdDaemon;
          try {
            if (job.kind === 'drift') {
              const drift = await reconciler.checkDrift(job.tenantId, signal);
              return drift.retryAt ? { retryAt: drift.retryAt, retryTrigger: 'retry' } : undefined;
            }
            const outcome = await reconciler.reconcile({
              tenantId: job.tenantId,
              desired: loader.get(job.tenantId),
              commit: loader.commit ?? '',
              trigger: job.trigger,
              force: job.force,
              signal,
              // A replica whose lease ran out stops at the next checkpoint, as on shutdown.
              shouldStop: () => d.stopping || (election !== undefined && !election.holdsLease()),
            });
            return outcome.kind === 'retry' ? { retryAt: outcome.at, retryTrigger: `retry:${outcome.attempt}` } : undefined;
          } catch (err: unknown) {
            // A write refused by the fence: the lease is gone and the next leader redoes this step.
            if (!isFenced(err)) throw err;
            write(logLine(config.logFormat, 'warn', `${job.tenantId}: not written, this replica no longer holds the leader Lease; the next leader resumes it`, { tenantId: job.tenantId, code: 'E_NOT_LEADER' }));
            return undefined;
          }
        },
        timers,
        (err, job) => write(logLine(config.logFormat, 'error', `reconcile of ${job.tenantId} crashed: ${String(err)}`, { tenantId: job.tenantId })),
      );
      const daemon = new TenantdDaemon(config, git, store, log, loader, provider, reconciler, queue, status, deletions, publisher, releaseLock, election);
      self.daemon = daemon;
      queue.onIdle(() => {
        if (daemon.writes) status.requestFlush();
      });
      return daemon;
    } catch (err: unknown) {
      for (const resource of opened.reverse()) await resource.close().catch(() => undefined);
      await releaseLock();
      throw err;
    }
  }

  /**
   * `listener` gets the tenant records each time this daemon starts reconciling: at start(), and
   * each time a replica takes over as leader, after the records were read and before any reconcile
   * (alerting starts from them). Returns a function that removes it.
   */
  onStart(listener: (records: readonly TenantRecord[]) => void): () => void {
    this.startListeners.add(listener);
    return () => void this.startListeners.delete(listener);
  }

  /** Recover, load the desired state, queue every tenant that is not converged, and start polling. */
  async start(): Promise<void> {
    for (const listener of this.startListeners) listener(this.store.all());
    await this.reconciler.recoverLog();
    await this.poll('startup');
    // An unreadable head (see pollOnce) must not stop the start: then every status is rewritten.
    const stale = await this.status.markStale(this.config.branch).catch(() => {
      for (const id of this.store.ids()) this.status.markDirty(id);
      return this.store.size;
    });
    if (stale > 0 && this.queue.isIdle()) await this.status.flush();
    const s = this.config.poll;
    if (s.kind === 'interval') {
      const h = setInterval(() => void this.poll('poll'), s.seconds * 1000);
      this.pollTimer = { stop: () => clearInterval(h) };
    } else if (s.kind === 'cron') {
      const task = cron.schedule(s.expression, () => void this.poll('poll'), { noOverlap: true });
      this.pollTimer = { stop: () => void task.destroy() };
    }
    if (this.config.driftIntervalSeconds > 0) {
      this.driftTimer = setInterval(() => this.checkDrift(), this.config.driftIntervalSeconds * 1000);
      this.driftTimer.unref();
    }
    if (this.config.gcIntervalSeconds > 0) {
      this.gcTimer = setInterval(() => void this.packRepository(), this.config.gcIntervalSeconds * 1000);
      this.gcTimer.unref();
    }
  }

  get ready(): boolean {
    return this.sourceReady;
  }

  /** Why the repository cannot be acted on now, or null (the API refuses writes while it is set). */
  get problem(): TenantdError | null {
    return this.repoProblem;
  }

  /** Whether this daemon may write now: always without leader election, else while it holds the lease. */
  get writes(): boolean {
    return this.role === 'single' || (this.role === 'leader' && (this.election?.holdsLease() ?? false));
  }

  /** `single` (no leader election), `leader` or `standby`: what /readyz and /metrics report. */
  get roleName(): 'single' | 'standby' | 'leader' {
    return this.role;
  }

  /**
   * A standby (leader election): serve reads from what the leader writes to the shared data dir
   * and the repository, read again every couple of seconds; write nothing, and take no lock.
   */
  async startStandby(): Promise<void> {
    await this.follow();
    this.followTimer = setInterval(() => void this.follow(), FOLLOW_MS);
    this.followTimer.unref();
  }

  private follow(): Promise<void> {
    this.following ??= (async () => {
      try {
        await this.store.reload({ repair: false });
        await this.deletions.reload();
        await this.log.catchUp({ repair: false });
        // Read-only even for a remote repository: the leader fetches into the shared clone.
        const head = await this.git.resolve(`refs/heads/${this.config.branch}`);
        this.sourceReady = true;
        if (head && head !== this.loader.commit) await this.loader.advance(head);
      } catch (err: unknown) {
        this.sourceReady = false;
        const e = toTenantdError(err, 'E_FOLLOW');
        this.publisher.publish({ type: 'SourceFailed', code: e.code, message: e.message });
      } finally {
        this.following = null;
      }
    })();
    return this.following;
  }

  /**
   * This replica now holds the lease: take the data dir, read everything the last leader wrote
   * (cutting a log line it tore), and start as a daemon does after a restart — recover the log,
   * queue every tenant with work left, resume each at its checkpoint.
   */
  lead(): Promise<void> {
    return this.changeRole(async () => {
      if (this.role !== 'standby' || this.stopping) return;
      if (this.followTimer) clearInterval(this.followTimer);
      this.followTimer = null;
      if (this.following) await this.following;
      this.releaseLock = await acquireDataDirLock(this.config.dataDir, process.pid, { lease: this.election?.lease ?? '', holder: this.election?.identity ?? '' });
      try {
        await this.store.reload({ repair: true });
        for (const d of this.store.discarded.splice(0)) this.publisher.publish({ type: 'StateRecordDiscarded', ...d });
        await this.deletions.reload();
        await this.log.catchUp({ repair: true });
      } catch (err: unknown) {
        await this.releaseLock();
        this.releaseLock = async () => undefined;
        if (!this.stopping) await this.startStandby();
        throw err;
      }
      this.role = 'leader';
      this.rescan = true;
      this.status.reopen();
      this.queue.resume();
      await this.start();
    });
  }

  /**
   * The lease is lost (or given up): the fence already refuses every write; stop the loop, abort
   * what runs (each stops at its next checkpoint, writing nothing), let the data dir go and follow
   * the next leader as a standby.
   */
  stepDown(): Promise<void> {
    return this.changeRole(async () => {
      if (this.role !== 'leader' || this.stopping) return;
      this.role = 'standby';
      this.stopTimers();
      this.status.close();
      this.queue.pause();
      this.queue.abortAll();
      if (this.polling) await this.polling.catch(() => undefined);
      await this.queue.drain();
      await this.store.flush().catch(() => undefined);
      await this.releaseLock();
      this.releaseLock = async () => undefined;
      this.rescan = true;
      if (!this.stopping) await this.startStandby();
    });
  }

  private changeRole(fn: () => Promise<void>): Promise<void> {
    const next = this.roleChange.then(fn);
    this.roleChange = next.catch(() => undefined);
    return next;
  }

  private stopTimers(): void {
    this.pollTimer?.stop();
    this.pollTimer = null;
    for (const t of [this.driftTimer, this.gcTimer, this.followTimer]) if (t) clearInterval(t);
    this.driftTimer = this.gcTimer = this.followTimer = null;
  }

  /** /readyz: the repository answered the last poll, can be acted on, and the provider's backend can be reached. */
  async isReady(): Promise<boolean> {
    if (!this.sourceReady || this.repoProblem || this.stopping) return false;
    return this.provider.ready ? this.provider.ready().catch(() => false) : true;
  }

  /**
   * Fetch the source; when the head moved, queue exactly the tenants whose files changed.
   * A poll asked for while one runs is run once more after it (its fetch may have missed the
   * commit that prompted the ask); asks made meanwhile share that one follow-up.
   */
  poll(trigger = 'poll'): Promise<PollResult> {
    if (!this.polling) {
      this.polling = this.pollOnce(trigger).finally(() => {
        this.polling = null;
      });
      return this.polling;
    }
    if (!this.followUp) {
      const after = this.polling.catch(() => undefined);
      this.followUp = after.then(() => {
        this.followUp = null;
        return this.poll(trigger);
      });
    }
    return this.followUp;
  }

  private async pollOnce(trigger: string): Promise<PollResult> {
    if (this.stopping || !this.writes) return { head: this.loader.commit, changed: [] };
    let head: string | null;
    const started = Date.now();
    try {
      head = await this.git.sync();
    } catch (err: unknown) {
      this.sourceReady = false;
      const e = toTenantdError(err, 'E_GIT_FETCH');
      this.publisher.publish({ type: 'SourceFailed', code: e.code, message: e.message });
      return { head: this.loader.commit, changed: [] };
    }
    const known = this.loader.commit ?? this.deletions.lastHead;
    if (!head && known) {
      // The branch had history and is gone: nothing is read, nothing deprovisioned, no write accepted.
      return this.repositoryUnusable(
        stalled('E_GIT_BRANCH_MISSING', `the tracked branch ${this.config.branch} is gone (it was at ${known.slice(0, 12)}): nothing is reconciled or deprovisioned until it is restored`, { branch: this.config.branch, lastHead: known }),
      );
    }
    this.sourceReady = true;
    // Tenants whose file could not be read are read again each poll, so a repaired object recovers.
    if (!head || (head === this.loader.commit && !this.rescan && this.unevaluated.size === 0 && this.loader.unreadable === 0)) {
      this.repoProblem = null;
      this.publisher.publish({ type: 'SourceUnchanged', commit: head, durationMs: Date.now() - started });
      return { head, changed: [] };
    }
    // Taking over from another leader counts as a restart: its work left is resumed, and the
    // deletion guard compares against the last head a leader acted on, not the one a standby read.
    const startup = this.loader.commit === null || this.rescan;
    this.rescan = false;
    const previous = startup ? this.deletions.lastHead : known;
    const skippedBefore = this.loader.skipped;
    let changes: DesiredChange[] = [];
    try {
      if (head !== this.loader.commit || this.loader.unreadable > 0) changes = await this.loader.advance(head);
    } catch (err: unknown) {
      // The commit or its tenants/ tree cannot be read (a corrupt or missing object), or tenants/ is
      // not a directory (E_REPO_LAYOUT): the loader stays at the last good commit, nothing changes,
      // and the next poll reads it again.
      const e = toTenantdError(err, 'E_GIT_READ');
      return this.repositoryUnusable(e.code === 'E_REPO_LAYOUT' ? e : new TenantdError(e.code, e.kind, `commit ${head} cannot be read: ${e.message}`, e.data));
    }
    if (JSON.stringify(this.loader.skipped) !== JSON.stringify(skippedBefore)) {
      this.publisher.publish({ type: 'TenantFilesSkipped', commit: head, files: [...this.loader.skipped] });
    }
    const candidates = new Set([...this.unevaluated, ...changes.map((c) => c.tenantId)]);
    // A standby read the head already: every tenant it holds may be new to the records.
    if (startup) for (const d of this.loader.all()) candidates.add(d.tenantId);
    if (startup) {
      // After a restart: tenants whose record says work is unfinished, or whose file is gone.
      for (const id of this.store.ids()) candidates.add(id);
    }
    // The mass-deletion breaker sees the change before any tenant of it is queued; if it cannot
    // decide (its state cannot be written, history cannot be read), nothing of the change is
    // queued and the next poll asks again.
    let guard;
    try {
      guard = await this.deletions.evaluate(head, previous, candidates);
    } catch (err: unknown) {
      for (const id of candidates) this.unevaluated.add(id);
      return this.repositoryUnusable(toTenantdError(err, 'E_DELETION_GUARD'));
    }
    this.unevaluated.clear();
    this.repoProblem = null;
    for (const id of guard.released) candidates.add(id);
    const changed: string[] = [];
    for (const tenantId of [...candidates].sort()) {
      const desired = this.loader.get(tenantId);
      if (!this.reconciler.needsWork(tenantId, desired)) continue;
      changed.push(tenantId);
      const record = this.store.get(tenantId);
      const why = startup && record && (record.operation || record.retry) && record.desired?.blobOid === desired?.blobOid ? 'resume' : `commit:${head}`;
      this.queue.enqueue(tenantId, trigger === 'poll' || trigger === 'startup' ? why : `${trigger}@${head}`, { supersede: true });
    }
    this.publisher.publish({ type: 'SourceFetched', commit: head, previous, changedTenants: changed.length, durationMs: Date.now() - started, trigger });
    return { head, changed };
  }

  private repositoryUnusable(problem: TenantdError): PollResult {
    const repeated = this.repoProblem?.code === problem.code && this.repoProblem.message === problem.message;
    this.repoProblem = problem;
    if (!repeated) this.publisher.publish({ type: 'SourceFailed', code: problem.code, message: problem.message });
    return { head: this.loader.commit, changed: [] };
  }

  /** A person approved the deletion hold at `commit` (API): queue its tenants for deprovisioning. */
  async approveDeletions(commit: string, by: string, trigger: string): Promise<string[]> {
    const decision = await this.deletions.approve(commit, by);
    for (const id of decision.released) this.queue.enqueue(id, trigger);
    return decision.released;
  }

  /** A person approved the plan awaiting approval by its digest (API): reconcile the tenant now to apply it. */
  approvePlan(tenantId: string, planDigest: string, by: string, trigger: string): { operation: string; planDigest: string } {
    const approved = this.reconciler.approvePlan(tenantId, planDigest, by, trigger);
    this.queue.enqueue(tenantId, trigger, { force: true });
    return approved;
  }

  /**
   * Reconcile one tenant now, even if it is waiting for a retry or stalled (like `flux reconcile`).
   * `requestedAt` is noted in the tenant's record first, so the request outlives a restart and the
   * status shows it as `lastHandledReconcileAt` once a reconcile has handled it.
   */
  async requestReconcile(tenantId: string, trigger: string, requestedAt: string): Promise<void> {
    this.election?.fence(`a reconcile request for ${tenantId}`);
    await this.reconciler.requestReconcile(tenantId, requestedAt);
    this.queue.enqueue(tenantId, trigger, { force: true });
  }

  /** Queue a drift check of every ACTIVE tenant (the drift schedule calls this). */
  checkDrift(): number {
    let n = 0;
    for (const r of this.store.all()) {
      if (r.status === 'ACTIVE' && !r.operation) {
        this.queue.enqueue(r.tenantId, 'drift', { kind: 'drift' });
        n++;
      }
    }
    return n;
  }

  /**
   * `git gc --auto` on the repository (the gc schedule calls this): tenantd writes loose objects
   * and packs none itself. Without a git executable it says so once and stops trying.
   */
  packRepository(): Promise<void> {
    if (!this.writes) return Promise.resolve();
    this.packing ??= (async () => {
      try {
        const r = await gcAuto(this.git.gitdir);
        if (r.ran) this.publisher.publish({ type: 'RepositoryPacked', looseBefore: r.looseBefore, looseAfter: r.looseAfter, packs: r.packs, durationMs: r.durationMs });
        else {
          this.publisher.publish({ type: 'RepositoryPackFailed', code: 'E_GIT_NOT_FOUND', message: `${r.reason}: loose objects are never packed; run git gc on ${this.git.gitdir} yourself` });
          if (this.gcTimer) clearInterval(this.gcTimer);
        }
      } catch (err: unknown) {
        const e = toTenantdError(err, 'E_GIT_GC');
        this.publisher.publish({ type: 'RepositoryPackFailed', code: e.code, message: e.message });
      } finally {
        this.packing = null;
      }
    })();
    return this.packing;
  }

  /** Resolves when the queue is empty and status files are committed. */
  async whenIdle(): Promise<void> {
    for (;;) {
      if (this.polling) await this.polling;
      if (this.followUp) await this.followUp;
      await this.queue.whenIdle();
      await this.status.flush();
      if (this.queue.isIdle() && !this.polling && !this.followUp && this.status.pending === 0) return;
    }
  }

  /** Finish the checkpoint in progress, commit status, close the log, release the data dir. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.roleChange;
    this.stopTimers();
    this.status.close();
    if (this.following) await this.following;
    if (this.packing) await this.packing;
    this.queue.pause();
    if (this.polling) await this.polling.catch(() => undefined);
    await this.queue.drain();
    await this.store.flush().catch((err: unknown) => {
      if (!isFenced(err)) throw err;
    });
    if (this.writes) await this.status.flush();
    await this.provider.close?.();
    await this.log.close();
    await this.git.close();
    await this.releaseLock();
  }
}
