import { realTimers, type Timers } from './timers.js';

/**
 * A work queue keyed by tenant: at most one job per tenant runs at a time, at most
 * `concurrency` across tenants. Enqueuing a tenant that is already waiting merges the two
 * (the newest trigger wins); enqueuing one that is running queues exactly one re-run after it,
 * and with `supersede` aborts the running job's signal so it stops at its next checkpoint.
 */
export interface QueueJob {
  tenantId: string;
  trigger: string;
  force: boolean;
  /** A drift check yields to a reconcile of the same tenant: a reconcile re-checks everything anyway. */
  kind: 'reconcile' | 'drift';
}

export type QueueWorker = (job: QueueJob, signal: AbortSignal) => Promise<{ retryAt?: Date; retryTrigger?: string } | void>;

export class TenantQueue {
  private readonly waiting = new Map<string, QueueJob>();
  private readonly order: string[] = [];
  private readonly running = new Map<string, AbortController>();
  private readonly retries = new Map<string, unknown>();
  private idleWaiters: Array<() => void> = [];
  private idleListeners: Array<() => void> = [];
  private paused = false;

  constructor(
    private readonly concurrency: number,
    private readonly worker: QueueWorker,
    private readonly timers: Timers = realTimers,
    private readonly onError: (err: unknown, job: QueueJob) => void = () => undefined,
  ) {}

  get depth(): number {
    return this.waiting.size;
  }

  get active(): number {
    return this.running.size;
  }

  get scheduledRetries(): number {
    return this.retries.size;
  }

  isRunning(tenantId: string): boolean {
    return this.running.has(tenantId);
  }

  isIdle(): boolean {
    return this.waiting.size === 0 && this.running.size === 0;
  }

  enqueue(tenantId: string, trigger: string, opts: { supersede?: boolean; force?: boolean; kind?: QueueJob['kind'] } = {}): void {
    const kind = opts.kind ?? 'reconcile';
    const prev = this.waiting.get(tenantId);
    if (kind === 'drift' && (prev || this.retries.has(tenantId))) return;
    const retry = this.retries.get(tenantId);
    if (retry !== undefined) {
      this.timers.clearTimeout(retry);
      this.retries.delete(tenantId);
    }
    if (prev) {
      this.waiting.set(tenantId, { tenantId, trigger, force: prev.force || !!opts.force, kind });
    } else {
      this.waiting.set(tenantId, { tenantId, trigger, force: !!opts.force, kind });
      this.order.push(tenantId);
    }
    if (opts.supersede) this.running.get(tenantId)?.abort();
    this.pump();
  }

  /** Called after each job whose outcome is a retry. */
  private scheduleRetry(tenantId: string, at: Date, trigger: string): void {
    const delay = Math.max(0, at.getTime() - this.timers.now());
    const handle = this.timers.setTimeout(() => {
      this.retries.delete(tenantId);
      this.enqueue(tenantId, trigger);
    }, delay);
    this.retries.set(tenantId, handle);
  }

  onIdle(fn: () => void): void {
    this.idleListeners.push(fn);
  }

  /** Resolves when nothing is waiting or running (scheduled retries do not count). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop starting jobs; running ones finish (their workers see the stop via shouldStop). */
  pause(): void {
    this.paused = true;
    for (const h of this.retries.values()) this.timers.clearTimeout(h);
    this.retries.clear();
  }

  /** Start jobs again after pause() (a replica that leads again). */
  resume(): void {
    this.paused = false;
    this.pump();
  }

  /** Resolves when running jobs are done. */
  async drain(): Promise<void> {
    while (this.running.size > 0) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  abortAll(): void {
    for (const c of this.running.values()) c.abort();
  }

  private pump(): void {
    if (this.paused) return;
    for (let i = 0; i < this.order.length && this.running.size < this.concurrency; ) {
      const tenantId = this.order[i] as string;
      if (this.running.has(tenantId)) {
        i++;
        continue;
      }
      this.order.splice(i, 1);
      const job = this.waiting.get(tenantId);
      this.waiting.delete(tenantId);
      if (job) this.start(job);
    }
  }

  private start(job: QueueJob): void {
    const controller = new AbortController();
    this.running.set(job.tenantId, controller);
    void this.worker(job, controller.signal)
      .then((outcome) => {
        if (outcome?.retryAt && !this.waiting.has(job.tenantId) && !this.paused) {
          this.scheduleRetry(job.tenantId, outcome.retryAt, outcome.retryTrigger ?? 'retry');
        }
      })
      .catch((err: unknown) => this.onError(err, job))
      .finally(() => {
        this.running.delete(job.tenantId);
        this.pump();
        if (this.running.size === 0 && (this.waiting.size === 0 || this.paused)) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
          if (this.waiting.size === 0) for (const l of this.idleListeners) l();
        }
      });
  }
}
