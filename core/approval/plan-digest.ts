/**
 * Plans approved by digest: a tenant with `spec.approval: manual` (or of a tier the daemon was told
 * to gate, `--approval-tiers`) waits before Apply until a person approves the digest of the plan
 * they saw. The digest covers what would change and nothing else, so the same change list gives
 * the same digest in `tenantd plan`, the API and the dashboard.
 */
import { digestOf } from '../canonical.js';
import type { OperationKind } from '../phases.js';
import type { TenantInfrastructureDocument } from '../tenant/types.js';

export interface PlannedChange {
  ref: string;
  action: string;
  fields?: readonly string[];
}

/**
 * `sha256:` of the tenant, the kind of operation, the spec it targets (`deleted` for a
 * deprovision) and its changes (sorted, unchanged objects left out, field lists sorted).
 */
export function planDigestOf(plan: { tenantId: string; operation: OperationKind; specDigest: string; changes: readonly PlannedChange[] }): string {
  const changes = plan.changes
    .filter((c) => c.action !== 'unchanged')
    .map((c) => ({ ref: c.ref, action: c.action, ...(c.fields && c.fields.length > 0 ? { fields: [...c.fields].sort() } : {}) }))
    .sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : a.action < b.action ? -1 : a.action > b.action ? 1 : 0));
  return digestOf({ tenantId: plan.tenantId, operation: plan.operation, specDigest: plan.specDigest, changes });
}

/** Whether Apply of this tenant waits for an approved plan: `spec.approval: manual`, or its tier is gated. */
export function requiresApproval(doc: TenantInfrastructureDocument, gatedTiers: readonly string[]): boolean {
  return doc.spec.approval === 'manual' || gatedTiers.includes(doc.spec.tier);
}
