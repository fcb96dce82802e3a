import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeletionHold, HoldReason } from '../core/deletion/guard.js';
import type { ErrorKind } from '../core/errors.js';
import type { ReconciliationEventPublisher } from '../core/events/publisher.js';
import type { TenantStatus } from '../core/phases.js';
import { PHASES, STATUSES } from '../core/phases.js';
import type { Condition, ConditionType } from '../core/state/record.js';

/** What the per-tenant series say about one tenant that exists (a deprovisioned one has none). */
export interface TenantMetricView {
  tenantId: string;
  status: TenantStatus;
  tier: string | null;
  cloud: string | null;
  region: string | null;
  /** Empty before the first reconcile: every type then reads Unknown. */
  conditions: ReadonlyArray<Pick<Condition, 'type' | 'status'>>;
}

export interface MetricsSources {
  publisher: ReconciliationEventPublisher;
  queue: { depth: number; active: number; scheduledRetries: number };
  statuses: () => Iterable<TenantStatus>;
  /** Tenants that exist now, read at every scrape: a tenant gone from here loses its series. */
  tenants?: () => Iterable<TenantMetricView>;
  deletionHold?: () => DeletionHold | null;
  /** True while this replica is the one that reconciles; absent (no election configured): always 1. */
  isLeader?: () => boolean;
  build?: { version: string; node?: string };
}

/** The registry plus what the HTTP layer feeds in. */
export interface DaemonMetrics {
  registry: Registry;
  /** One finished HTTP request, by route template (never the raw path: bounded cardinality). */
  observeRequest(req: { method: string; route: string; code: number; seconds: number }): void;
}

export const CONDITION_TYPES: readonly ConditionType[] = ['Ready', 'Reconciling', 'Stalled'];
export const CONDITION_STATUSES: readonly Condition['status'][] = ['True', 'False', 'Unknown'];
/** Series per existing tenant: every condition type × status, plus one info series. */
export const SERIES_PER_TENANT = CONDITION_TYPES.length * CONDITION_STATUSES.length + 1;
const ERROR_KINDS: readonly ErrorKind[] = ['retryable', 'waiting', 'stalled'];
const FAILING_PHASES = PHASES.filter((p) => p !== 'Complete');
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const HTTP_SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const HOLD_REASONS: HoldReason[] = ['threshold', 'emptyListing', 'nonFastForward'];

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

let processRegistry: Registry | undefined;

/**
 * process_* and nodejs_* describe the process, not a daemon, so they are collected once per process
 * and shared by every daemon's registry: each collection keeps an event-loop delay monitor and a GC
 * observer alive for good, which one per daemon (tests run many) would pile up.
 */
function processMetrics(): Registry {
  if (processRegistry) return processRegistry;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client names three gauges `_total`, which promtool rejects (a counter suffix); each is the
  // sum of its per-type gauge (nodejs_active_handles{type} …), so nothing is lost.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  processRegistry = registry;
  return registry;
}

/**
 * Prometheus metrics, fed by the ReconciliationEventPublisher (so they never disagree with the
 * log) plus gauges read at scrape time. A registry per daemon: tests run many in one process.
 * Counters people alert on start at 0 for every label value known up front, so `increase()` sees
 * the first failure (a series born at 1 reads as no increase).
 */
export function createMetrics(src: MetricsSources): DaemonMetrics {
  // A new registry holding the shared process collectors (merge registers the same objects).
  const registry = Registry.merge([processMetrics()]);
  const reconciles = new Counter({ name: 'tenantd_reconciles_total', help: 'Reconciles that ended, by result', labelNames: ['result'], registers: [registry] });
  const phaseSeconds = new Histogram({ name: 'tenantd_phase_duration_seconds', help: 'Duration of provider phases', labelNames: ['phase'], buckets: SECONDS, registers: [registry] });
  const failures = new Counter({ name: 'tenantd_phase_failures_total', help: 'Failed phases by phase and error code', labelNames: ['phase', 'code'], registers: [registry] });
  const fetchSeconds = new Histogram({ name: 'tenantd_git_fetch_duration_seconds', help: 'Duration of a source poll (fetch and compare)', buckets: SECONDS, registers: [registry] });
  const fetchFailures = new Counter({ name: 'tenantd_git_fetch_failures_total', help: 'Source polls that failed', labelNames: ['code'], registers: [registry] });
  const reconcileFailures = new Counter({
    name: 'tenantd_reconcile_failures_total',
    help: 'Failed phases by phase and error kind (retryable, waiting, stalled); every series starts at 0',
    labelNames: ['phase', 'kind'],
    registers: [registry],
  });
  const polls = new Counter({ name: 'tenantd_source_polls_total', help: 'Source polls by result (ok, failed); both start at 0', labelNames: ['result'], registers: [registry] });
  const http = new Histogram({
    name: 'tenantd_http_request_duration_seconds',
    help: 'HTTP requests by method, route template and status code (until the response headers for event streams)',
    labelNames: ['method', 'route', 'code'],
    buckets: HTTP_SECONDS,
    registers: [registry],
  });
  for (const result of ['converged', 'failed']) reconciles.inc({ result }, 0);
  for (const result of ['ok', 'failed']) polls.inc({ result }, 0);
  for (const phase of FAILING_PHASES) for (const kind of ERROR_KINDS) reconcileFailures.inc({ phase, kind }, 0);
  new Gauge({ name: 'tenantd_build_info', help: 'The running tenantd: version and Node.js (value 1)', labelNames: ['version', 'node'], registers: [registry] }).set(
    { version: src.build?.version ?? 'unknown', node: src.build?.node ?? process.versions.node },
    1,
  );
  new Gauge({
    name: 'tenantd_leader',
    help: '1 while this replica reconciles (leader, or no election configured), 0 on a standby',
    registers: [registry],
    collect() {
      this.set(src.isLeader?.() === false ? 0 : 1);
    },
  });
  const tenants = src.tenants;
  if (tenants) registerTenantSeries(registry, tenants);
  const pushSeconds = new Histogram({ name: 'tenantd_git_push_duration_seconds', help: 'Duration of commits (and pushes) by kind', labelNames: ['kind'], buckets: SECONDS, registers: [registry] });
  new Gauge({
    name: 'tenantd_queue_depth',
    help: 'Tenants waiting to be reconciled',
    registers: [registry],
    collect() {
      this.set(src.queue.depth);
    },
  });
  new Gauge({
    name: 'tenantd_queue_active',
    help: 'Reconciles running now',
    registers: [registry],
    collect() {
      this.set(src.queue.active);
    },
  });
  new Gauge({
    name: 'tenantd_retries_scheduled',
    help: 'Tenants waiting for a retry',
    registers: [registry],
    collect() {
      this.set(src.queue.scheduledRetries);
    },
  });
  new Gauge({
    name: 'tenantd_tenants',
    help: 'Tenants by status',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      const counts = new Map<string, number>(STATUSES.map((s) => [s, 0]));
      for (const s of src.statuses()) counts.set(s, (counts.get(s) ?? 0) + 1);
      for (const [status, n] of counts) this.set({ status }, n);
    },
  });

  new Gauge({
    name: 'tenantd_deletions_held',
    help: 'Tenants the mass-deletion breaker keeps from being deprovisioned, by why the hold was raised',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const hold = src.deletionHold?.() ?? null;
      for (const reason of HOLD_REASONS) this.set({ reason }, hold?.reasons.includes(reason) ? hold.tenants.length : 0);
    },
  });

  src.publisher.subscribe((e) => {
    switch (e.type) {
      case 'PhaseCompleted':
        if (e.phase === 'Complete') reconciles.inc({ result: 'converged' });
        else phaseSeconds.observe({ phase: e.phase }, e.durationMs / 1000);
        break;
      case 'PhaseFailed':
        failures.inc({ phase: e.phase, code: e.code });
        reconcileFailures.inc({ phase: e.phase, kind: e.kind });
        reconciles.inc({ result: 'failed' });
        break;
      case 'SourceFetched':
      case 'SourceUnchanged':
        fetchSeconds.observe(e.durationMs / 1000);
        polls.inc({ result: 'ok' });
        break;
      case 'SourceFailed':
        fetchFailures.inc({ code: e.code });
        polls.inc({ result: 'failed' });
        break;
      case 'StatusCommitted':
        pushSeconds.observe({ kind: 'status' }, e.durationMs / 1000);
        break;
      case 'TenantCommitted':
        pushSeconds.observe({ kind: 'api' }, e.durationMs / 1000);
        break;
      default:
        break;
    }
  });
  return {
    registry,
    observeRequest({ method, route, code, seconds }) {
      http.observe({ method: HTTP_METHODS.has(method) ? method : 'other', route, code: String(code) }, seconds);
    },
  };
}

/**
 * `tenantd_tenant_condition` (as Flux's gotk_reconcile_condition: every status of every type, the
 * current one 1, so the series set per tenant never changes) and `tenantd_tenant_info` (as Argo CD's
 * argocd_app_info). Rebuilt at each scrape, so a deleted tenant's series go with it.
 */
function registerTenantSeries(registry: Registry, tenants: () => Iterable<TenantMetricView>): void {
  new Gauge({
    name: 'tenantd_tenant_condition',
    help: 'The status of each condition of each tenant: 1 for the current status, 0 for the others',
    labelNames: ['tenant', 'type', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of tenants()) {
        for (const type of CONDITION_TYPES) {
          const current = t.conditions.find((c) => c.type === type)?.status ?? 'Unknown';
          for (const status of CONDITION_STATUSES) this.set({ tenant: t.tenantId, type, status }, status === current ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: 'tenantd_tenant_info',
    help: 'One series per tenant (value 1) with its tier, cloud, region and status',
    labelNames: ['tenant', 'tier', 'cloud', 'region', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of tenants()) this.set({ tenant: t.tenantId, tier: t.tier ?? '', cloud: t.cloud ?? '', region: t.region ?? '', status: t.status }, 1);
    },
  });
}
