/**
 * Waits `ms`, or less when `signal` aborts: resolves either way (never rejects), so a loop that
 * sleeps between polls checks its own stop condition after waking. `unref`: the wait alone does
 * not keep the process alive (a retry that may be abandoned at shutdown).
 */
export function abortableSleep(ms: number, signal: AbortSignal, options: { unref?: boolean } = {}): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    if (options.unref) timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}
