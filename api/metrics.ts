import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeletionHold, HoldReason } from '../core/deletion/guard.js';
import type { ReconciliationEventPublisher } from '../core/events/publisher.js';
import type { TenantStatus } from '../core/phases.js';
import { STATUSES } from '../core/phases.js';

export interface MetricsSources {
  publisher: ReconciliationEventPublisher;
  queue: { depth: number; active: number; scheduledRetries: number };
  statuses: () => Iterable<TenantStatus>;
  deletionHold?: () => DeletionHold | null;
}

const HOLD_REASONS: HoldReason[] = ['threshold', 'emptyListing', 'nonFastForward'];

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * Prometheus metrics, fed by the ReconciliationEventPublisher (so they never disagree with the
 * log) plus gauges read at scrape time. A registry per daemon: tests run many in one process.
 */
export function createMetrics(src: MetricsSources): Registry {
  const registry = new Registry();
  const reconciles = new Counter({ name: 'tenantd_reconciles_total', help: 'Reconciles that ended, by result', labelNames: ['result'], registers: [registry] });
  const phaseSeconds = new Histogram({ name: 'tenantd_phase_duration_seconds', help: 'Duration of provider phases', labelNames: ['phase'], buckets: SECONDS, registers: [registry] });
  const failures = new Counter({ name: 'tenantd_phase_failures_total', help: 'Failed phases by phase and error code', labelNames: ['phase', 'code'], registers: [registry] });
  const fetchSeconds = new Histogram({ name: 'tenantd_git_fetch_duration_seconds', help: 'Duration of a source poll (fetch and compare)', buckets: SECONDS, registers: [registry] });
  const fetchFailures = new Counter({ name: 'tenantd_git_fetch_failures_total', help: 'Source polls that failed', labelNames: ['code'], registers: [registry] });
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
        reconciles.inc({ result: 'failed' });
        break;
      case 'SourceFetched':
      case 'SourceUnchanged':
        fetchSeconds.observe(e.durationMs / 1000);
        break;
      case 'SourceFailed':
        fetchFailures.inc({ code: e.code });
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
  return registry;
}
