import type { TenantMetricView } from '../api/metrics.js';
import type { DesiredInfrastructureState, TenantRecord } from '../core/state/record.js';

interface Sources {
  records: () => Iterable<TenantRecord>;
  desired: () => Iterable<DesiredInfrastructureState>;
}

/**
 * The tenants that exist for the per-tenant series: every desired file (reconciled yet or not)
 * and every record still holding something. A tenant whose file is gone and whose resources are
 * deprovisioned no longer exists: it drops out, and its series with it.
 */
export function* tenantMetricViews(src: Sources): Generator<TenantMetricView> {
  const desired = new Map<string, DesiredInfrastructureState>();
  for (const d of src.desired()) desired.set(d.tenantId, d);
  for (const r of src.records()) {
    const d = desired.get(r.tenantId);
    desired.delete(r.tenantId);
    if (!d && r.status === 'DEPROVISIONED' && !r.operation) continue;
    const spec = d?.document?.spec ?? r.applied?.document.spec ?? null;
    yield { tenantId: r.tenantId, status: r.status, tier: spec?.tier ?? null, cloud: r.cloudProvider ?? spec?.cloudProvider ?? null, region: r.region ?? spec?.region ?? null, conditions: r.conditions };
  }
  for (const d of desired.values()) {
    const spec = d.document?.spec ?? null;
    yield { tenantId: d.tenantId, status: d.document ? 'PENDING' : 'INVALID', tier: spec?.tier ?? null, cloud: spec?.cloudProvider ?? null, region: spec?.region ?? null, conditions: [] };
  }
}
