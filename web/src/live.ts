import { API } from './api.js';
import { SseParser } from './sse-parser.js';
import type { ReconciliationEvent } from './types.js';

export type LiveState = 'connecting' | 'open' | 'lost' | 'unauthorized';

export interface LiveHandlers {
  onState(state: LiveState, detail?: string): void;
}

type Listener = (event: ReconciliationEvent) => void;
type OpenListener = () => void;

const STALE_MS = 45_000; // the server sends a keep-alive comment every 15 s
const MAX_DELAY_MS = 15_000;

/**
 * The daemon's event stream (`GET /api/v1/events`) read with fetch(), because EventSource cannot
 * send an Authorization header. On a lost connection it reconnects with `Last-Event-ID`, so the
 * server replays what was missed from its buffer; listeners of `onOpen` refetch their view on
 * every (re)connect in case the gap was longer than the buffer.
 */
export class LiveEvents {
  private readonly listeners = new Set<Listener>();
  private readonly openListeners = new Set<OpenListener>();
  private lastEventId: string | null = null;
  private retryMs = 2000;
  private stopped = false;
  private controller: AbortController | null = null;
  private wake: (() => void) | null = null;
  private readonly onOnline = (): void => this.wake?.();

  constructor(
    private readonly token: string,
    private readonly handlers: LiveHandlers,
  ) {}

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  }

  /** Called on every successful (re)connect. */
  onOpen(fn: OpenListener): () => void {
    this.openListeners.add(fn);
    return () => void this.openListeners.delete(fn);
  }

  start(): void {
    window.addEventListener('online', this.onOnline);
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    this.controller?.abort();
    this.wake?.();
  }

  private async loop(): Promise<void> {
    let delay = this.retryMs;
    let first = true;
    while (!this.stopped) {
      this.handlers.onState(first ? 'connecting' : 'lost');
      first = false;
      const outcome = await this.connect(() => {
        delay = this.retryMs;
      });
      if (this.stopped) return;
      if (outcome === 'unauthorized') {
        this.handlers.onState('unauthorized');
        return;
      }
      this.handlers.onState('lost');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }

  private async connect(opened: () => void): Promise<'closed' | 'unauthorized'> {
    const controller = new AbortController();
    this.controller = controller;
    let watchdog: ReturnType<typeof setTimeout> | null = null;
    const feed = (): void => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), STALE_MS);
    };
    try {
      const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, Accept: 'text/event-stream' };
      if (this.lastEventId !== null) headers['Last-Event-ID'] = this.lastEventId;
      const res = await fetch(`${API}/events`, { headers, cache: 'no-store', signal: controller.signal });
      if (res.status === 401 || res.status === 403) return 'unauthorized';
      if (!res.ok || !res.body) return 'closed';
      opened();
      this.handlers.onState('open');
      for (const fn of this.openListeners) fn();
      const parser = new SseParser();
      parser.lastEventId = this.lastEventId;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      feed();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        feed();
        for (const msg of parser.push(value)) {
          this.lastEventId = msg.id;
          let event: ReconciliationEvent;
          try {
            event = JSON.parse(msg.data) as ReconciliationEvent;
          } catch {
            continue;
          }
          for (const fn of this.listeners) {
            try {
              fn(event);
            } catch (err: unknown) {
              console.error('dashboard: event listener failed', err);
            }
          }
        }
        if (parser.retryMs !== null) this.retryMs = Math.max(500, parser.retryMs);
      }
      return 'closed';
    } catch {
      return 'closed';
    } finally {
      if (watchdog) clearTimeout(watchdog);
      this.controller = null;
    }
  }
}
