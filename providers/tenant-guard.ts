import { stalled } from '../core/errors.js';
import { DNS1123_LABEL, MAX_TENANT_ID_LENGTH } from '../core/tenant/types.js';
import type { ProviderContext } from './provider.js';

/**
 * The tenant id a provider step may use in names and paths: a DNS-1123 label that matches the
 * rendered objects. Every provider checks it before touching anything.
 */
export function checkedTenantId(ctx: Pick<ProviderContext, 'tenantId' | 'desired'>): string {
  const id = ctx.tenantId;
  if (!DNS1123_LABEL.test(id) || id.length > MAX_TENANT_ID_LENGTH) {
    throw stalled('E_INVALID_TENANT_ID', `tenant id ${JSON.stringify(id)} is not a DNS-1123 label`, { tenantId: id });
  }
  if (ctx.desired && ctx.desired.tenantId !== id) {
    throw stalled('E_TENANT_MISMATCH', `rendered objects belong to tenant ${ctx.desired.tenantId}, not ${id}`, {
      tenantId: id,
      renderedTenantId: ctx.desired.tenantId,
    });
  }
  return id;
}
