import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren, JSX } from 'preact';
import { ApiError } from './api.js';
import type { ViewProps } from './app.js';
import { conditionTone, TONE_LABEL } from './conditions.js';
import { formatDuration, localTime, relativeTime, shortSha, toYaml } from './format.js';
import { useLatest, useNow, useThrottled } from './hooks.js';
import { reconcilesOf, widths, type Bar, type Reconcile } from './timeline.js';
import type { DesiredInfrastructureState, InfrastructureStateTransition, TenantEntity } from './types.js';

/** Transitions fetched per request (newest first on open; "older" pages back in steps of this). */
const CHUNK = 200;

interface History {
  items: InfrastructureStateTransition[];
  /** Log offset of items[0]. */
  offset: number;
  total: number;
}

const notFound = (err: unknown): boolean => err instanceof ApiError && err.status === 404;

export function TenantView({ api, live, onAuthError, id }: ViewProps & { id: string }): JSX.Element {
  const [entity, setEntity] = useState<TenantEntity | null>(null);
  const [desired, setDesired] = useState<DesiredInfrastructureState | null | 'none'>(null);
  const [history, setHistory] = useState<History | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [missing, setMissing] = useState(false);
  const now = useNow(1000);
  const busy = useRef(false);
  const again = useRef(false);
  const hist = useLatest(history);
  const des = useLatest(desired);

  const fail = (err: unknown): void => {
    if (err instanceof ApiError && err.isAuth) onAuthError(err);
    else setError(err instanceof Error ? err.message : String(err));
  };

  /** Entity, desired file (when its commit moved) and the transitions appended since the last call. */
  const refresh = async (): Promise<void> => {
    if (busy.current) {
      again.current = true;
      return;
    }
    busy.current = true;
    try {
      let ent: TenantEntity | null = null;
      try {
        ent = await api.tenant(id);
      } catch (err: unknown) {
        if (!notFound(err)) throw err;
      }
      if (!ent) {
        setMissing(true);
        return;
      }
      setEntity(ent);
      const d = des.current;
      if (d === null || (d === 'none' ? ent.desiredCommit !== null : d.commit !== ent.desiredCommit)) {
        try {
          setDesired(await api.desired(id));
        } catch (err: unknown) {
          if (!notFound(err)) throw err;
          setDesired('none');
        }
      }
      const h = hist.current;
      try {
        if (!h) {
          const head = await api.transitions(id, 0, 1);
          const offset = Math.max(0, head.total - CHUNK);
          const page = head.total <= 1 ? head : await api.transitions(id, offset, CHUNK);
          setHistory({ items: page.items, offset, total: page.total });
        } else {
          const end = h.offset + h.items.length;
          const page = await api.transitions(id, end, 1000);
          if (page.items.length > 0 || page.total !== h.total) setHistory({ items: [...h.items, ...page.items], offset: h.offset, total: page.total });
        }
      } catch (err: unknown) {
        if (!notFound(err)) throw err;
        setHistory({ items: [], offset: 0, total: 0 });
      }
      setError(null);
    } catch (err: unknown) {
      fail(err);
    } finally {
      busy.current = false;
      if (again.current) {
        again.current = false;
        void refresh();
      }
    }
  };
  const scheduleRefresh = useThrottled(() => void refresh(), 300);

  useEffect(() => {
    void refresh();
    // Only on open; later updates come from the event stream.
  }, []);

  useEffect(() => {
    const offEvent = live.subscribe((ev) => {
      if (!('tenantId' in ev) || ev.tenantId !== id) {
        // A poll or commit elsewhere may have changed this tenant's desired file.
        if (ev.type === 'SourceFetched' || ev.type === 'TenantCommitted') scheduleRefresh();
        return;
      }
      if (ev.type === 'PhaseStarted' || ev.type === 'PhaseCompleted') setEntity((e) => (e ? { ...e, status: ev.status, phase: ev.phase } : e));
      if (ev.type === 'StatusChanged') setEntity((e) => (e ? { ...e, status: ev.to } : e));
      scheduleRefresh();
    });
    const offOpen = live.onOpen(() => scheduleRefresh());
    return () => {
      offEvent();
      offOpen();
    };
  }, [live, id, scheduleRefresh]);

  const loadOlder = async (): Promise<void> => {
    const h = hist.current;
    if (!h || h.offset === 0) return;
    const start = Math.max(0, h.offset - CHUNK);
    try {
      const page = await api.transitions(id, start, h.offset - start);
      setHistory({ items: [...page.items, ...h.items], offset: start, total: page.total });
    } catch (err: unknown) {
      fail(err);
    }
  };

  if (missing) {
    return (
      <section class="tenant">
        <a class="back" href="#/">
          ← Fleet
        </a>
        <h1>{id}</h1>
        <p class="error" role="alert">
          No tenant with this id: neither a file on the branch nor a record in the daemon.
        </p>
      </section>
    );
  }

  const doc = desired && desired !== 'none' ? desired.document : null;
  const name = entity?.name ?? doc?.metadata.name ?? null;
  const labels = entity?.labels ?? doc?.metadata.labels ?? {};
  const reconciles = history ? reconcilesOf(history.items, now, 5) : [];
  return (
    <section class="tenant" aria-labelledby="tenant-title">
      <a class="back" href="#/">
        ← Fleet
      </a>
      <div class="title">
        <h1 id="tenant-title">{id}</h1>
        {entity && (
          <span class={`badge status-${entity.status}`} data-testid="tenant-status">
            {entity.status}
          </span>
        )}
        {entity?.phase && (
          <span class="phase" data-testid="tenant-phase">
            {entity.phase}
          </span>
        )}
      </div>
      {name && (
        <p class="subtitle" data-testid="tenant-name">
          {name}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!entity ? (
        <p class="muted">loading…</p>
      ) : (
        <>
          <dl class="facts">
            <Fact label="Tier">{entity.spec?.tier ?? '—'}</Fact>
            <Fact label="Cloud">
              {entity.cloudProvider ?? '—'} {entity.region ?? ''}
            </Fact>
            <Fact label="Namespace">{entity.namespace}</Fact>
            <Fact label="Desired commit">
              <span class="sha" title={entity.desiredCommit ?? ''}>
                {shortSha(entity.desiredCommit)}
              </span>
            </Fact>
            <Fact label="Observed commit">
              <span class="sha" title={entity.observedCommit ?? ''}>
                {shortSha(entity.observedCommit)}
              </span>
              {entity.desiredCommit && entity.desiredCommit !== entity.observedCommit && <span class="behind">behind</span>}
            </Fact>
            <Fact label="Applied commit">
              <span class="sha" title={entity.appliedCommit ?? ''}>
                {shortSha(entity.appliedCommit)}
              </span>
            </Fact>
            <Fact label="Reconciled">{entity.reconciled ? 'yes' : 'not yet'}</Fact>
            <Fact label="State key">{entity.terraformStateKey ?? '—'}</Fact>
            <Fact label="Updated">
              <span title={localTime(entity.updatedAt)}>{relativeTime(entity.updatedAt, now)}</span>
            </Fact>
          </dl>
          {Object.keys(labels).length > 0 && (
            <ul class="labels" aria-label="Labels">
              {Object.entries(labels).map(([k, v]) => (
                <li key={k}>
                  {k}={v}
                </li>
              ))}
            </ul>
          )}
          {entity.retry && (
            <div class={`notice ${entity.retry.nextAttemptAt ? 'warn' : 'bad'}`} role="status" data-testid="retry">
              <strong>
                {entity.retry.lastError.code} in {entity.retry.lastError.phase ?? 'a phase'}
              </strong>
              : {entity.retry.lastError.message}
              <div class="muted">
                attempt {entity.retry.attempt}
                {entity.retry.nextAttemptAt ? `, next attempt ${localTime(entity.retry.nextAttemptAt)}` : ', stalled until the next commit or a manual reconcile'}
              </div>
            </div>
          )}

          <h2>Conditions</h2>
          <table class="conditions" data-testid="conditions">
            <thead>
              <tr>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col">Reason</th>
                <th scope="col">Message</th>
                <th scope="col">Since</th>
              </tr>
            </thead>
            <tbody>
              {entity.conditions.map((c) => {
                const tone = conditionTone(c);
                return (
                  <tr key={c.type} class={`cond-${c.status}`} data-type={c.type} data-tone={tone}>
                    <td>{c.type}</td>
                    <td class={`cond-status tone-${tone}`} title={`${c.type}=${c.status}: ${TONE_LABEL[tone]}`}>
                      {c.status}
                    </td>
                    <td>{c.reason}</td>
                    <td class="message">{c.message}</td>
                    <td title={localTime(c.lastTransitionTime)}>{relativeTime(c.lastTransitionTime, now)}</td>
                  </tr>
                );
              })}
              {entity.conditions.length === 0 && (
                <tr>
                  <td colSpan={5} class="empty">
                    No conditions yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>

          <h2>Latest reconciles</h2>
          <Timeline reconciles={reconciles} />
          {reconciles.length > 0 && (
            <p class="legend muted">
              <span class="key key-phase" /> phase <span class="key key-failed" /> failed ✕ <span class="key key-backoff" /> backoff before a retry{' '}
              <span class="key key-retry" /> retried ↻ <span class="key key-done" /> complete — hover a bar for its state, duration and error
            </p>
          )}

          <div class="columns">
            <div>
              <h2>Last plan</h2>
              <LastPlan entity={entity} />
            </div>
            <div>
              <h2>Outputs</h2>
              {Object.keys(entity.outputs).length === 0 ? (
                <p class="muted">No outputs.</p>
              ) : (
                <dl class="outputs" data-testid="outputs">
                  {Object.entries(entity.outputs)
                    .sort(([a], [b]) => a.localeCompare(b))
                    .map(([k, v]) => (
                      <Fact key={k} label={k}>
                        <code>{v}</code>
                      </Fact>
                    ))}
                </dl>
              )}
            </div>
          </div>

          <h2>Spec as committed</h2>
          <Spec desired={desired} />
        </>
      )}

      <h2>Transition history</h2>
      <TransitionTable history={history} onOlder={() => void loadOlder()} />
    </section>
  );
}

function Fact({ label, children }: { label: string; children: ComponentChildren }): JSX.Element {
  return (
    <div class="fact">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function Timeline({ reconciles }: { reconciles: Reconcile[] }): JSX.Element {
  if (reconciles.length === 0) return <p class="muted">No reconciles yet.</p>;
  return (
    <ol class="timeline" data-testid="timeline">
      {[...reconciles].reverse().map((r) => {
        const ws = widths(r.bars);
        let x = 0;
        return (
          <li key={r.operationId} class={`reconcile outcome-${r.outcome}`} data-outcome={r.outcome}>
            <div class="reconcile-head">
              <span class="op">{r.operation ?? 'reconcile'}</span>
              <span class="muted">{r.commit ? `commit ${shortSha(r.commit)}` : r.trigger}</span>
              <span class="muted" title={new Date(r.start).toISOString()}>
                {localTime(new Date(r.start).toISOString())}
              </span>
              <span class={`outcome ${r.outcome}`}>
                {r.outcome === 'running' ? 'running' : r.outcome} · {formatDuration(r.end - r.start)}
              </span>
            </div>
            <svg class="bars" width="100%" height="34" role="img" aria-label={`${r.operation ?? 'reconcile'}: ${r.bars.map((b) => `${b.phase} ${label(b)}`).join(', ')}`}>
              {r.bars.map((b, i) => {
                const w = (ws[i] ?? 0) * 100;
                const start = x;
                x += w;
                return (
                  <g key={i} class={barClass(b)} data-phase={b.phase} data-kind={b.kind} data-retry={b.retry ?? undefined}>
                    <title>{`${b.status}/${b.phase} — ${label(b)}${b.retry ? ` (retry ${b.retry})` : ''}${b.error ? `: ${b.error.code} ${b.error.message}` : ''}`}</title>
                    <rect x={`${start}%`} y="2" width={`${Math.max(w - 0.3, 0.2)}%`} height="30" rx="3" />
                    {w > 7 && (
                      <text x={`${start + 0.6}%`} y="15">
                        {b.kind === 'backoff' ? 'backoff' : b.kind === 'done' ? '' : `${b.retry ? '↻ ' : ''}${b.phase}${b.kind === 'failed' ? ' ✕' : ''}`}
                      </text>
                    )}
                    {w > 7 && b.kind !== 'done' && (
                      <text x={`${start + 0.6}%`} y="28" class="dur">
                        {label(b)}
                      </text>
                    )}
                  </g>
                );
              })}
            </svg>
            {r.bars.some((b) => b.kind === 'failed') && (
              <ul class="failures">
                {r.bars
                  .filter((b) => b.kind === 'failed')
                  .map((b, i) => (
                    <li key={i}>
                      <strong>{b.phase} failed</strong>
                      {b.error ? `: ${b.error.code} — ${b.error.message}` : ''}
                    </li>
                  ))}
              </ul>
            )}
          </li>
        );
      })}
    </ol>
  );
}

const label = (b: Bar): string => (b.open ? `${formatDuration(b.end - b.start)}…` : formatDuration(b.end - b.start));
const barClass = (b: Bar): string => ['bar', `bar-${b.kind}`, b.open ? 'open' : '', b.retry ? 'retry' : '', b.resumed ? 'resumed' : ''].filter(Boolean).join(' ');

function LastPlan({ entity }: { entity: TenantEntity }): JSX.Element {
  const plan = entity.lastPlan;
  if (!plan) return <p class="muted">No plan yet.</p>;
  const awaiting = entity.conditions.some((c) => c.type === 'Reconciling' && c.reason === 'AwaitingApproval');
  return (
    <div class="plan" data-testid="plan">
      {awaiting && (
        <p class="notice warn" role="status" data-testid="awaiting-approval">
          <strong>Awaiting approval</strong>: Apply waits until this plan's digest is approved (POST …/tenants/{entity.tenantId}/approve).
        </p>
      )}
      <p>
        {plan.summary} <span class="muted">(commit {shortSha(plan.commit)})</span>
      </p>
      {plan.digest && (
        <p class="muted">
          plan digest <code data-testid="plan-digest">{plan.digest}</code>
        </p>
      )}
      <p class="counts-inline">
        {Object.entries(plan.counts).map(([action, n]) => (
          <span key={action} class={`action action-${action}`}>
            {action} {n}
          </span>
        ))}
      </p>
      {plan.changes.length === 0 ? (
        <p class="muted">Nothing to change.</p>
      ) : (
        <ul class="changes">
          {plan.changes.map((c, i) => (
            <li key={i}>
              <span class={`action action-${c.action}`}>{c.action === 'create' ? '+' : c.action === 'delete' ? '-' : '~'}</span> <code>{c.ref}</code>
              {c.fields && c.fields.length > 0 && <span class="muted"> {c.fields.join(', ')}</span>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Spec({ desired }: { desired: DesiredInfrastructureState | null | 'none' }): JSX.Element {
  if (desired === null) return <p class="muted">loading…</p>;
  if (desired === 'none') return <p class="muted">No file for this tenant on the branch (removed).</p>;
  return (
    <div class="spec">
      <p class="muted">
        {desired.file} at commit <span class="sha">{shortSha(desired.commit)}</span>
        {desired.specDigest ? ` · ${desired.specDigest.slice(0, 19)}…` : ''}
      </p>
      {desired.issues.length > 0 && (
        <ul class="issues" data-testid="issues">
          {desired.issues.map((i, n) => (
            <li key={n}>
              <code>
                {i.file}:{i.line}:{i.column}
              </code>{' '}
              {i.path && <code>{i.path}</code>} {i.message}
            </li>
          ))}
        </ul>
      )}
      {desired.document && <pre data-testid="spec">{toYaml(desired.document)}</pre>}
    </div>
  );
}

function TransitionTable({ history, onOlder }: { history: History | null; onOlder: () => void }): JSX.Element {
  if (!history) return <p class="muted">loading…</p>;
  if (history.items.length === 0) return <p class="muted">No transitions yet.</p>;
  return (
    <>
      <table class="transitions" data-testid="transitions">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">From</th>
            <th scope="col">To</th>
            <th scope="col">Trigger</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {[...history.items].reverse().map((t) => (
            <tr key={t.id} class={t.toState.startsWith('FAILED') ? 'failed' : ''}>
              <td title={t.timestamp}>{localTime(t.timestamp)}</td>
              <td>{t.fromState}</td>
              <td>{t.toState}</td>
              <td class="trigger">{t.trigger}</td>
              <td class="details">
                <code>{JSON.stringify(t.details)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted">
        {history.items.length.toLocaleString()} of {history.total.toLocaleString()} transitions
        {history.offset > 0 && (
          <>
            {' '}
            <button type="button" class="link" onClick={onOlder}>
              Load older
            </button>
          </>
        )}
      </p>
    </>
  );
}
