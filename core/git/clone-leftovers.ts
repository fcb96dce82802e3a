/**
 * Names of the temporary directories a clone is made in (`repo.git.tmp-<pid>-<hex>@<host>`), and
 * which of them are abandoned. Replicas under leader election share one data dir (a ReadWriteMany
 * volume) and may clone at the same moment on a fresh one: a leftover is removed only when its
 * owner is gone — a pid no longer alive on this host — or when it is older than any clone runs,
 * never because another replica's clone is still being made.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { processAlive } from '../process-alive.js';

/** Past this age a temporary clone is abandoned whoever made it (another host's pid cannot be checked). */
export const ABANDONED_AFTER_MS = 60 * 60 * 1000;

export function cloneTmpName(base: string): string {
  return `${base}.tmp-${process.pid}-${randomBytes(4).toString('hex')}@${hostname()}`;
}

/** Whether `name` (an entry next to the mirror) is a temporary clone nobody is making any more. */
export function isAbandonedClone(base: string, name: string, mtimeMs: number, nowMs: number): boolean {
  const prefix = `${base}.tmp-`;
  const m = name.startsWith(prefix) ? /^(\d+)-[0-9a-f]+(?:@(.+))?$/.exec(name.slice(prefix.length)) : null;
  if (!m) return false;
  if (nowMs - mtimeMs > ABANDONED_AFTER_MS) return true;
  // Without a host (made before names carried one) it was this host's: one daemon per data dir then.
  const host = m[2] ?? hostname();
  return host === hostname() && !processAlive(Number(m[1]));
}
