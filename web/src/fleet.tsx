import { useEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { STATUSES } from '../../core/phases.js';
import { ApiError, mapLimit, type ApiClient } from './api.js';
import type { ViewProps } from './app.js';
import { localTime, relativeTime, shortSha } from './format.js';
import { fleetHash, tenantHash, useLatest, useNow, useThrottled } from './hooks.js';
import type { ReconciliationEvent, TenantEntity, TenantPage, TenantStatus } from './types.js';

export const PAGE_SIZE = 50;
/** Page size while searching without server-side search: scan in large pages. */
const SCAN_SIZE = 500;
/** At most this many list calls per search page (20,000 tenants). */
const MAX_SCAN_CALLS = 40;

type Counts = Partial<Record<TenantStatus, number>> & { total: number };

interface Loaded {
  items: TenantEntity[];
  /** Cursor of the next page, or null on the last one. */
  next: string | null;
  /** Tenants matching the filter over the whole fleet, when known. */
  total: number | null;
  /** The API ignored `q`: the search ran here, over pages scanned from the API. */
  searchedHere: boolean;
}

const afterOf = (link: string | null): string | null => {
  if (!link) return null;
  try {
    return new URL(link, window.location.origin).searchParams.get('after');
  } catch {
    return null;
  }
};

const matches = (api: ApiClient, e: TenantEntity, q: string): boolean => {
  const needle = q.toLowerCase();
  const name = api.nameOf(e) ?? '';
  return e.tenantId.toLowerCase().includes(needle) || name.toLowerCase().includes(needle);
};

/**
 * One page of the fleet. The API pages by tenant id (`after`); with a search it is asked to filter
 * (`q`), and if it does not, the page is filled by scanning further pages here, so a search still
 * finds tenants anywhere in the fleet and never puts more than a page of rows into the DOM.
 */
async function loadPage(api: ApiClient, opts: { status: TenantStatus | null; q: string; after: string | null }, signal: AbortSignal): Promise<Loaded> {
  const { status, q } = opts;
  if (!q) {
    const page = await api.list({ status, limit: PAGE_SIZE, after: opts.after }, signal);
    return { items: page.items, next: afterOf(page.next), total: page.total, searchedHere: false };
  }
  const out: TenantEntity[] = [];
  let cursor = opts.after;
  let serverFiltered = true;
  let total: number | null = null;
  for (let calls = 0; calls < MAX_SCAN_CALLS; calls++) {
    const page: TenantPage = await api.list({ status, q, limit: serverFiltered ? PAGE_SIZE : SCAN_SIZE, after: cursor }, signal);
    const kept = page.items.filter((e) => matches(api, e, q));
    if (kept.length < page.items.length) serverFiltered = false;
    else if (serverFiltered) total = page.total;
    for (const item of kept) {
      if (out.length === PAGE_SIZE) return { items: out, next: out.at(-1)?.tenantId ?? null, total: serverFiltered ? total : null, searchedHere: !serverFiltered };
      out.push(item);
    }
    cursor = afterOf(page.next);
    if (!cursor) return { items: out, next: null, total: serverFiltered ? total : null, searchedHere: !serverFiltered };
    if (out.length === PAGE_SIZE) return { items: out, next: out.at(-1)?.tenantId ?? null, total: serverFiltered ? total : null, searchedHere: !serverFiltered };
  }
  return { items: out, next: cursor, total: null, searchedHere: true };
}

/** Tenants per status: from the list answer when the API gives `counts`, else one `limit=1` call per status. */
async function loadCounts(api: ApiClient, signal: AbortSignal): Promise<Counts> {
  const first = await api.list({ limit: 1 }, signal);
  if (first.counts) return { ...first.counts, total: first.total };
  const totals = await mapLimit(STATUSES, 3, async (s) => [s, (await api.list({ status: s, limit: 1 }, signal)).total] as const);
  return { ...Object.fromEntries(totals), total: first.total };
}

const TENANT_EVENTS = new Set<ReconciliationEvent['type']>(['ReconcileStarted', 'PhaseStarted', 'PhaseCompleted', 'PhaseFailed', 'StatusChanged', 'DriftDetected']);

/** The status and phase an event says a tenant is in now, applied to the row at once (the refetch follows). */
function applyEvent(e: TenantEntity, ev: ReconciliationEvent): TenantEntity {
  switch (ev.type) {
    case 'PhaseStarted':
    case 'PhaseCompleted':
      return { ...e, status: ev.status, phase: ev.phase };
    case 'StatusChanged':
      return { ...e, status: ev.to };
    default:
      return e;
  }
}

export function FleetView({ api, live, onAuthError, status: initialStatus, q: initialQ }: ViewProps & { status: TenantStatus | null; q: string }): JSX.Element {
  const [status, setStatus] = useState<TenantStatus | null>(initialStatus);
  const [q, setQ] = useState(initialQ);
  const [input, setInput] = useState(initialQ);
  /** Cursors of the pages before this one, for "Previous". */
  const [history, setHistory] = useState<Array<string | null>>([]);
  const [after, setAfter] = useState<string | null>(null);
  const [page, setPage] = useState<Loaded | null>(null);
  const [counts, setCounts] = useState<Counts | null>(null);
  const [error, setError] = useState<string | null>(null);
  /** Bumped when names arrive (they live in the ApiClient). */
  const [, setNamesVersion] = useState(0);
  const now = useNow(5000);
  const seq = useRef(0);
  const abort = useRef<AbortController | null>(null);

  const fail = (err: unknown): void => {
    if (err instanceof DOMException && err.name === 'AbortError') return;
    if (err instanceof ApiError && err.isAuth) onAuthError(err);
    else setError(err instanceof Error ? err.message : String(err));
  };

  const state = useLatest({ status, q, after });
  const refresh = async (): Promise<void> => {
    const mine = ++seq.current;
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    try {
      const s = state.current;
      const [loaded, c] = await Promise.all([loadPage(api, s, controller.signal), loadCounts(api, controller.signal)]);
      if (mine !== seq.current) return;
      setPage(loaded);
      setCounts(c);
      setError(null);
    } catch (err: unknown) {
      if (mine === seq.current) fail(err);
    }
  };
  const scheduleRefresh = useThrottled(() => void refresh(), 600);

  useEffect(() => {
    window.history.replaceState(null, '', fleetHash(status, q));
    void refresh();
    return () => abort.current?.abort();
    // refresh reads the latest state through a ref
  }, [status, q, after]);

  // Debounce typing into the search.
  useEffect(() => {
    if (input.trim() === q) return;
    const timer = setTimeout(() => {
      setHistory([]);
      setAfter(null);
      setQ(input.trim());
    }, 250);
    return () => clearTimeout(timer);
  }, [input, q]);

  // Live: patch visible rows from the event at once, refetch the page and counts shortly after.
  useEffect(() => {
    const offEvent = live.subscribe((ev) => {
      if (ev.type === 'StatusChanged') {
        setCounts((c) => {
          if (!c) return c;
          const next: Counts = { ...c, [ev.to]: (c[ev.to] ?? 0) + 1 };
          if (ev.from) next[ev.from] = Math.max(0, (c[ev.from] ?? 0) - 1);
          else next.total = c.total + 1;
          return next;
        });
      }
      if ('tenantId' in ev && TENANT_EVENTS.has(ev.type)) {
        setPage((p) => (p && p.items.some((e) => e.tenantId === ev.tenantId) ? { ...p, items: p.items.map((e) => (e.tenantId === ev.tenantId ? applyEvent(e, ev) : e)) } : p));
      }
      if (ev.type !== 'SourceUnchanged') scheduleRefresh();
    });
    const offOpen = live.onOpen(() => scheduleRefresh());
    return () => {
      offEvent();
      offOpen();
    };
  }, [live, scheduleRefresh]);

  // Names: from the entity when the API includes them, else from each visible tenant's desired file.
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );
  useEffect(() => {
    if (!page) return;
    void api.resolveNames(page.items).then((learnt) => {
      if (learnt && mounted.current) setNamesVersion((v) => v + 1);
    });
  }, [page, api]);

  const chooseStatus = (s: TenantStatus | null): void => {
    setHistory([]);
    setAfter(null);
    setStatus(s);
  };

  const pageStart = history.length * PAGE_SIZE;
  const items = page?.items ?? [];
  return (
    <section class="fleet" aria-labelledby="fleet-title">
      <h1 id="fleet-title">Fleet</h1>
      <div class="counts" role="group" aria-label="Tenants per status">
        <button type="button" class={`count ${status === null ? 'selected' : ''}`} data-status="ALL" onClick={() => chooseStatus(null)}>
          <span class="n">{counts ? counts.total.toLocaleString() : '…'}</span>
          <span class="label">all</span>
        </button>
        {STATUSES.map((s) => (
          <button
            type="button"
            key={s}
            class={`count status-${s} ${status === s ? 'selected' : ''} ${(counts?.[s] ?? 0) === 0 ? 'zero' : ''}`}
            data-status={s}
            onClick={() => chooseStatus(status === s ? null : s)}
          >
            <span class="n">{counts ? (counts[s] ?? 0).toLocaleString() : '…'}</span>
            <span class="label">{s.toLowerCase()}</span>
          </button>
        ))}
      </div>
      <div class="filters">
        <label>
          Status{' '}
          <select
            data-testid="status-filter"
            value={status ?? ''}
            onChange={(e) => {
              const v = (e.target as HTMLSelectElement).value;
              chooseStatus(v ? (v as TenantStatus) : null);
            }}
          >
            <option value="">all</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Search{' '}
          <input type="search" data-testid="search" placeholder="id or name" value={input} onInput={(e) => setInput((e.target as HTMLInputElement).value)} />
        </label>
        {page?.searchedHere && <span class="note">searching here: the API does not filter by name</span>}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <table class="tenants" data-testid="tenants">
        <thead>
          <tr>
            <th scope="col">Tenant</th>
            <th scope="col">Name</th>
            <th scope="col">Tier</th>
            <th scope="col">Cloud</th>
            <th scope="col">Status</th>
            <th scope="col">Phase</th>
            <th scope="col">Desired</th>
            <th scope="col">Observed</th>
            <th scope="col">Last transition</th>
          </tr>
        </thead>
        <tbody>
          {items.map((e) => {
            const behind = !!e.desiredCommit && e.desiredCommit !== e.observedCommit;
            const name = api.nameOf(e);
            const when = e.lastTransitionTime ?? e.updatedAt;
            return (
              <tr key={e.tenantId} data-tenant={e.tenantId}>
                <td class="id">
                  <a href={tenantHash(e.tenantId)}>{e.tenantId}</a>
                </td>
                <td class="name" data-testid="name">
                  {name ?? <span class="muted">—</span>}
                </td>
                <td>{e.spec?.tier ?? '—'}</td>
                <td>
                  {e.cloudProvider ?? '—'}
                  {e.region && <span class="muted"> {e.region}</span>}
                </td>
                <td>
                  <span class={`badge status-${e.status}`} data-testid="status">
                    {e.status}
                  </span>
                </td>
                <td data-testid="phase">{e.phase ?? '—'}</td>
                <td class="sha" title={e.desiredCommit ?? ''}>
                  {shortSha(e.desiredCommit)}
                </td>
                <td class="sha" title={e.observedCommit ?? ''}>
                  {shortSha(e.observedCommit)}
                  {behind && (
                    <span class="behind" data-testid="behind" title="the daemon has not acted on the desired commit yet">
                      behind
                    </span>
                  )}
                </td>
                <td title={localTime(when)}>{relativeTime(when, now)}</td>
              </tr>
            );
          })}
          {page && items.length === 0 && (
            <tr>
              <td colSpan={9} class="empty">
                No tenants match.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <div class="pager">
        <button
          type="button"
          disabled={history.length === 0}
          onClick={() => {
            setAfter(history.at(-1) ?? null);
            setHistory(history.slice(0, -1));
          }}
        >
          ← Previous
        </button>
        <span data-testid="range">
          {page
            ? items.length === 0
              ? 'none'
              : `${(pageStart + 1).toLocaleString()}–${(pageStart + items.length).toLocaleString()}${page.total !== null ? ` of ${page.total.toLocaleString()}` : ''}`
            : 'loading…'}
        </span>
        <button
          type="button"
          disabled={!page?.next}
          onClick={() => {
            if (!page?.next) return;
            setHistory([...history, after]);
            setAfter(page.next);
          }}
        >
          Next →
        </button>
      </div>
    </section>
  );
}
