import type { Timers } from '../../daemon/timers.js';

/**
 * A simulated clock for the daemon's timers: hours of retries and status commits run in seconds.
 * Time moves only in `advanceTo`, which fires the due timers in time order and, after each, waits
 * for the work it started (`settle`) before looking at the next: real I/O (records, log, git)
 * still happens, it just takes no simulated time.
 */
export class SimulatedClock implements Timers {
  private time: number;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; seq: number; fn: () => void }>();

  constructor(start = Date.UTC(2030, 0, 1)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  readonly date = (): Date => new Date(this.time);

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.time + Math.max(0, ms), seq: id, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  get scheduled(): number {
    return this.pending.size;
  }

  /** Fire every timer due up to `until` (ms since the epoch), in order; then the clock reads `until`. */
  async advanceTo(until: number, settle: () => Promise<void>, maxFirings = 10_000_000): Promise<number> {
    let fired = 0;
    for (;;) {
      let next: { id: number; at: number; seq: number; fn: () => void } | null = null;
      for (const [id, t] of this.pending) {
        if (t.at <= until && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = { id, ...t };
      }
      if (!next) break;
      if (++fired > maxFirings) throw new Error(`more than ${maxFirings} timers fired before ${new Date(until).toISOString()}`);
      this.pending.delete(next.id);
      this.time = Math.max(this.time, next.at);
      next.fn();
      await settle();
    }
    this.time = Math.max(this.time, until);
    return fired;
  }

  advance(ms: number, settle: () => Promise<void>): Promise<number> {
    return this.advanceTo(this.time + ms, settle);
  }
}
