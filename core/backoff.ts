/** Exponential backoff with "equal jitter": the n-th delay lies in [d/2, d] for d = min(cap, base·2^(n-1)),
 *  so delays never shrink from one attempt to the next while retries of many tenants still spread out. */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 5_000, capMs: 300_000 };

export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number): number {
  const exp = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
