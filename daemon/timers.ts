/**
 * The clock and timers the daemon's scheduling runs on (retries, status commits). Passed in, so a
 * test or a benchmark can run hours of retries in seconds on a simulated clock.
 */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Node's timers, unref'd: a pending retry or status commit never keeps a stopped daemon alive. */
export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const h = setTimeout(fn, ms);
    h.unref?.();
    return h;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
