import { useEffect, useRef, useState } from 'preact/hooks';
import type { TenantStatus } from './types.js';
import { STATUSES } from '../../core/phases.js';

/** Date.now(), re-read every `ms` so relative times and running bars move. */
export function useNow(ms: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** A ref that always holds the latest value (for callbacks registered once). */
export function useLatest<T>(value: T): { readonly current: T } {
  const ref = useRef(value);
  ref.current = value;
  return ref;
}

/**
 * Calls `fn` at most once per `ms` (trailing): bursts of events during a reconcile become one
 * refetch, so a busy fleet does not turn into a request per event.
 */
export function useThrottled(fn: () => void, ms: number): () => void {
  const latest = useLatest(fn);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  const schedule = useRef(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      latest.current();
    }, ms);
  });
  return schedule.current;
}

export type Route = { view: 'fleet'; status: TenantStatus | null; q: string } | { view: 'tenant'; id: string };

export const isStatus = (s: string | null): s is TenantStatus => s !== null && (STATUSES as readonly string[]).includes(s);

export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#/, '');
  const m = /^\/tenants\/([^/?]+)/.exec(h);
  if (m) {
    let id = m[1] as string;
    try {
      id = decodeURIComponent(id);
    } catch {
      /* keep it as it is */
    }
    return { view: 'tenant', id };
  }
  const query = new URLSearchParams(h.includes('?') ? h.slice(h.indexOf('?') + 1) : '');
  const status = query.get('status');
  return { view: 'fleet', status: isStatus(status) ? status : null, q: query.get('q') ?? '' };
}

export function fleetHash(status: TenantStatus | null, q: string): string {
  const p = new URLSearchParams();
  if (status) p.set('status', status);
  if (q) p.set('q', q);
  const s = p.toString();
  return s ? `#/?${s}` : '#/';
}

export const tenantHash = (id: string): string => `#/tenants/${encodeURIComponent(id)}`;

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = (): void => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
