import { abortableSleep } from '../core/abortable-sleep.js';
import { canonicalJson } from '../core/canonical.js';
import { AlertRules, standingAfter, type Alert, type AlertType } from '../core/notify/alert-rules.js';
import { alertSummary, type DeliveredAlert } from '../core/notify/alert-text.js';
import { retryAfterMs } from './retry-after.js';
import type { AlertLedger } from './alert-ledger.js';
import type { TenantdDaemon } from './daemon.js';
import type { NotificationsConfig, ReceiverConfig } from './notifications-config.js';

/** What a receiver answered: its status and, when it sent one, how long it asked us to wait. */
export interface PostResponse {
  status: number;
  /** From `Retry-After` (seconds or an HTTP-date), in milliseconds. */
  retryAfterMs?: number;
}

/** POSTs a JSON body; resolves with the receiver's answer, rejects on a network error or abort. */
export type HttpPost = (url: string, body: string, signal: AbortSignal) => Promise<PostResponse>;

/** A delivery given up on. Names the receiver, never its URL (URLs carry secrets). */
export interface DeliveryFailure {
  receiver: string;
  alert: AlertType;
  tenantId: string | null;
  attempts: number;
  /** `HTTP 400`, `ECONNREFUSED`, … */
  error: string;
}

export interface NotifierDeps {
  post?: HttpPost;
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  now?: () => number;
  /** Waits before the 2nd, 3rd, … attempt (default 1 s, 4 s); a longer `Retry-After` (up to MAX_RETRY_AFTER_MS) wins. */
  retryDelaysMs?: readonly number[];
  requestTimeoutMs?: number;
  onDeliveryFailed?: (failure: DeliveryFailure) => void;
}

const MINUTE = 60_000;
/**
 * The longest a receiver's `Retry-After` may hold its queue before the next attempt. Slack asks
 * for seconds; a receiver asking for an hour would otherwise hold every alert behind it that long.
 */
export const MAX_RETRY_AFTER_MS = MINUTE;

export const fetchPost =
  (timeoutMs: number): HttpPost =>
  async (url, body, signal) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'tenantd' },
      body,
      // A redirect could carry the alert (and the URL's secret) elsewhere: not followed.
      redirect: 'manual',
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    });
    await res.body?.cancel();
    const retryAfter = retryAfterMs(res.headers.get('retry-after'), Date.now());
    return retryAfter === undefined ? { status: res.status } : { status: res.status, retryAfterMs: retryAfter };
  };

const unrefSleep = (ms: number, signal: AbortSignal): Promise<void> => abortableSleep(ms, signal, { unref: true });

const errorName = (err: unknown): string => {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  return err instanceof Error ? err.name : 'Error';
};

const retryable = (status: number): boolean => status === 429 || status >= 500;

interface Queued {
  alert: Alert;
  /** Called once: true when the receiver is done with it (delivered, given up, suppressed), false when abandoned at stop. */
  done: (finished: boolean) => void;
}

/** One receiver's queue: sent in order, one at a time, under its rate limit. */
class ReceiverQueue {
  readonly pending: Queued[] = [];
  running: Promise<void> | null = null;
  /** Alerts the rate limit dropped since the last delivered one, which reports their count. */
  suppressed = 0;
  private readonly sentAt: number[] = [];

  constructor(readonly receiver: ReceiverConfig) {}

  /** Takes a slot in the last minute's budget, or false when the budget is spent. */
  takeSlot(now: number): boolean {
    while (this.sentAt.length > 0 && (this.sentAt[0] as number) <= now - MINUTE) this.sentAt.shift();
    if (this.sentAt.length >= this.receiver.maxPerMinute) return false;
    this.sentAt.push(now);
    return true;
  }

  body(alert: DeliveredAlert): string {
    return this.receiver.format === 'slack' ? JSON.stringify({ text: alertSummary(alert) }) : canonicalJson(alert);
  }
}

/**
 * Delivers alerts to webhook and Slack-compatible receivers: one sequential queue per receiver
 * (order kept), retries on network errors, 5xx and 429, none on other 4xx, and a per-receiver
 * rate limit whose excess is counted into the next delivered alert's `suppressed`.
 */
export class Notifier {
  private readonly queues: ReceiverQueue[];
  private readonly abort = new AbortController();
  private stopped = false;
  private readonly post: HttpPost;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly now: () => number;
  private readonly delays: readonly number[];

  constructor(
    receivers: readonly ReceiverConfig[],
    private readonly deps: NotifierDeps = {},
  ) {
    this.queues = receivers.map((r) => new ReceiverQueue(r));
    this.post = deps.post ?? fetchPost(deps.requestTimeoutMs ?? 10_000);
    this.sleep = deps.sleep ?? unrefSleep;
    this.now = deps.now ?? Date.now;
    this.delays = deps.retryDelaysMs ?? [1000, 4000];
  }

  /**
   * Queues `alert` for every receiver that takes its type. Resolves true once each of them is done
   * with it (delivered, given up on after its retries, or counted as suppressed), false when any
   * receiver's copy was abandoned (stop, or the notifier was already stopped): the alert ledger
   * then keeps the old standing, and the next start sends it again, to every receiver.
   */
  notify(alert: Alert): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    const finishes: Promise<boolean>[] = [];
    for (const q of this.queues) {
      if (!q.receiver.alerts.includes(alert.type)) continue;
      finishes.push(new Promise<boolean>((done) => q.pending.push({ alert, done })));
      q.running ??= this.drain(q).finally(() => {
        q.running = null;
      });
    }
    return Promise.all(finishes).then((all) => all.every(Boolean));
  }

  /** Resolves when every queue is empty (tests, and stop). */
  async idle(): Promise<void> {
    while (this.queues.some((q) => q.running)) await Promise.all(this.queues.map((q) => q.running));
  }

  /** Takes no more alerts; delivers what is queued within `boundMs`, then abandons the rest. Returns how many were abandoned. */
  async stop(boundMs = 5000): Promise<number> {
    this.stopped = true;
    const bound = new AbortController();
    const drained = await Promise.race([this.idle().then(() => true), unrefSleep(boundMs, bound.signal).then(() => false)]);
    bound.abort();
    if (drained) return 0;
    const abandoned = this.queues.reduce((n, q) => n + q.pending.length + (q.running ? 1 : 0), 0);
    for (const q of this.queues) for (const entry of q.pending.splice(0)) entry.done(false);
    this.abort.abort();
    await this.idle();
    return abandoned;
  }

  private async drain(q: ReceiverQueue): Promise<void> {
    for (let entry = q.pending.shift(); entry && !this.abort.signal.aborted; entry = q.pending.shift()) {
      const { alert } = entry;
      if (!q.takeSlot(this.now())) {
        q.suppressed++;
        entry.done(true);
        continue;
      }
      const carried = q.suppressed;
      q.suppressed = 0;
      const failure = await this.deliver(q, carried ? { ...alert, suppressed: carried } : alert);
      // Cut off by stop: not delivered, and not given up on either.
      entry.done(failure === null || !this.abort.signal.aborted);
      if (!failure) continue;
      // The count rides on the next alert that gets through instead.
      q.suppressed += carried;
      this.deps.onDeliveryFailed?.({ receiver: q.receiver.name, alert: alert.type, tenantId: alert.tenantId, ...failure });
    }
  }

  /** Null when delivered, else how it failed. */
  private async deliver(q: ReceiverQueue, alert: DeliveredAlert): Promise<{ attempts: number; error: string } | null> {
    const body = q.body(alert);
    let error = 'aborted';
    for (let attempt = 1; ; attempt++) {
      let asked = 0;
      try {
        const res = await this.post(q.receiver.url, body, this.abort.signal);
        if (res.status >= 200 && res.status < 300) return null;
        error = `HTTP ${res.status}`;
        if (!retryable(res.status)) return { attempts: attempt, error };
        asked = Math.min(res.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS);
      } catch (err: unknown) {
        error = this.abort.signal.aborted ? 'aborted' : errorName(err);
      }
      const delay = this.delays[attempt - 1];
      if (delay === undefined || this.abort.signal.aborted) return { attempts: attempt, error };
      await this.sleep(Math.max(delay, asked), this.abort.signal);
    }
  }
}

/** What alerting needs of the daemon: its events, and its records whenever it starts reconciling. */
export type AlertSource = Pick<TenantdDaemon, 'publisher' | 'onStart'>;

/**
 * Alerts from the daemon's events: rules decide what is worth telling, the notifier tells it.
 * The rules start from the records each time the daemon starts reconciling (at its start and
 * at each takeover as leader), so a restart neither repeats a Failed nor loses a Recovered.
 * With a `ledger`, what the receivers were actually told is kept in the data dir: an alert
 * raised and not delivered before a crash is sent by the next daemon that starts.
 */
export function startAlerting(
  config: NotificationsConfig,
  daemon: AlertSource,
  deps: NotifierDeps = {},
  ledger?: AlertLedger,
): { notifier: Notifier; stop(boundMs?: number): Promise<number> } {
  const rules = new AlertRules({ failedAfterRetries: config.failedAfterRetries });
  const notifier = new Notifier(config.receivers, deps);
  // Ledger updates not made yet: stop waits for them, so what was delivered is recorded as told.
  const recording = new Set<Promise<void>>();
  const send = (alert: Alert): void => {
    const standing = standingAfter(alert);
    const done = notifier.notify(alert).then((told) => {
      if (told && standing && alert.tenantId !== null) ledger?.record(alert.tenantId, standing);
    });
    recording.add(done);
    void done.finally(() => recording.delete(done));
  };
  const unseed = daemon.onStart((records) => {
    const told = ledger?.read() ?? undefined;
    const catchUp = rules.seed(records, told);
    if (ledger) {
      // What stays true of the ledger: its entries for tenants that still have a record; on a first
      // start (no ledger yet) the records themselves, as they were taken as told.
      const ids = new Set(records.map((r) => r.tenantId));
      ledger.reset(told ? new Map([...told].filter(([id]) => ids.has(id))) : rules.standings());
    }
    for (const alert of catchUp) send(alert);
  });
  const unsubscribe = daemon.publisher.subscribe((event) => {
    for (const alert of rules.feed(event)) send(alert);
  });
  return {
    notifier,
    stop: async (boundMs) => {
      unseed();
      unsubscribe();
      const abandoned = await notifier.stop(boundMs);
      await Promise.all(recording);
      await ledger?.flush();
      return abandoned;
    },
  };
}
