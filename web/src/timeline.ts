/**
 * Turns a tenant's InfrastructureStateTransitions into reconciles drawn as bars: one bar per phase
 * with its duration, the failed phase marked, the wait before a retry shown as its own bar and the
 * retried phase marked. Pure (no DOM), so it is unit-tested in node.
 */
import type { InfrastructureStateTransition } from './types.js';

export type BarKind = 'phase' | 'failed' | 'backoff' | 'done';

export interface Bar {
  /** The phase (Request, Plan, …) or, for a backoff, the phase that failed. */
  phase: string;
  status: string;
  kind: BarKind;
  start: number;
  end: number;
  /** Still running (the newest reconcile, not finished): `end` is "now". */
  open: boolean;
  /** This phase ran again after a failure (trigger `retry:<n>`). */
  retry: number | null;
  /** Resumed after a restart. */
  resumed: boolean;
  trigger: string;
  /** The error of a failed phase. */
  error: { code: string; message: string } | null;
}

export interface Reconcile {
  operationId: string;
  operation: string | null;
  trigger: string;
  commit: string | null;
  start: number;
  end: number;
  open: boolean;
  outcome: 'succeeded' | 'failed' | 'running';
  bars: Bar[];
}

const TERMINAL = new Set(['ACTIVE/Complete', 'DEPROVISIONED/Complete']);

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function errorOf(details: Record<string, unknown>): { code: string; message: string } | null {
  const e = details['error'];
  if (e === null || typeof e !== 'object') return null;
  const r = e as Record<string, unknown>;
  return { code: str(r['code']) ?? 'E_UNKNOWN', message: str(r['message']) ?? '' };
}

/**
 * The newest `limit` reconciles in `transitions` (oldest first in the input). Transitions
 * without an operation id (INVALID, SUSPENDED, drift notes) are not part of any reconcile.
 */
export function reconcilesOf(transitions: readonly InfrastructureStateTransition[], now: number, limit = 5): Reconcile[] {
  const groups = new Map<string, InfrastructureStateTransition[]>();
  for (const t of transitions) {
    const op = str(t.details['operationId']);
    if (!op) continue;
    const list = groups.get(op);
    if (list) list.push(t);
    else groups.set(op, [t]);
  }
  const all = [...groups.entries()].map(([operationId, list]) => build(operationId, list, now));
  all.sort((a, b) => a.start - b.start);
  // Only the newest reconcile can still be running; an older one that never reached Complete was superseded.
  for (const r of all.slice(0, -1)) {
    if (r.open) {
      r.open = false;
      r.outcome = r.outcome === 'running' ? 'failed' : r.outcome;
      const last = r.bars.at(-1);
      if (last) {
        last.open = false;
        last.end = last.start;
      }
      r.end = last?.end ?? r.start;
    }
  }
  return all.slice(-limit);
}

function build(operationId: string, list: InfrastructureStateTransition[], now: number): Reconcile {
  const sorted = [...list].sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
  const first = sorted[0] as InfrastructureStateTransition;
  const bars: Bar[] = [];
  let terminal = false;
  sorted.forEach((t, i) => {
    const next = sorted[i + 1];
    const start = Date.parse(t.timestamp);
    const [status = '', phase = ''] = t.toState.split('/');
    const retryMatch = /^retry:(\d+)$/.exec(t.trigger);
    const base = {
      phase,
      status,
      start,
      end: next ? Date.parse(next.timestamp) : start,
      open: false,
      // Marked on the phase run again right after a backoff (the rest of the run shares the trigger).
      retry: retryMatch && bars.at(-1)?.kind === 'backoff' ? Number(retryMatch[1]) : null,
      resumed: t.details['resumed'] === true,
      trigger: t.trigger,
      error: null,
    };
    if (TERMINAL.has(t.toState)) {
      terminal = true;
      bars.push({ ...base, kind: 'done', end: start });
      return;
    }
    if (status === 'FAILED') {
      // The phase that was running failed here: mark it; the time until the retry is a backoff bar.
      const failed = [...bars].reverse().find((b) => b.kind === 'phase' && b.phase === phase);
      const error = errorOf(t.details);
      if (failed) {
        failed.kind = 'failed';
        failed.error = error;
      } else {
        bars.push({ ...base, kind: 'failed', end: start, error });
      }
      bars.push({ ...base, kind: 'backoff', error, open: !next, end: next ? base.end : Math.max(start, now) });
      return;
    }
    bars.push({ ...base, kind: 'phase', open: !next, end: next ? base.end : Math.max(start, now) });
  });
  const last = bars.at(-1);
  const open = !terminal && !!last?.open;
  const lastFailed = !terminal && bars.some((b) => b.kind === 'failed') && last?.kind === 'backoff';
  return {
    operationId,
    operation: str(first.details['operation']),
    trigger: first.trigger,
    commit: str(first.details['commit']),
    start: Date.parse(first.timestamp),
    end: last ? last.end : Date.parse(first.timestamp),
    open,
    outcome: terminal ? 'succeeded' : lastFailed ? 'failed' : 'running',
    bars,
  };
}

/** Bar widths as fractions of the reconcile (every bar at least `min`, then normalised to 1). */
export function widths(bars: readonly Bar[], min = 0.04): number[] {
  const total = bars.reduce((s, b) => s + Math.max(0, b.end - b.start), 0);
  const raw = bars.map((b) => (b.kind === 'done' ? min / 2 : Math.max(min, total > 0 ? (b.end - b.start) / total : 1 / bars.length)));
  const sum = raw.reduce((s, w) => s + w, 0);
  return raw.map((w) => w / sum);
}
