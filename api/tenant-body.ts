import { API_VERSION, TENANT_KIND, type TenantInfrastructureDocument, type ValidationIssue } from '../core/tenant/types.js';
import { validateTenantDocument } from '../core/tenant/validate.js';
import { apiError, type FieldError } from './problem.js';
import { isRecord } from '../core/is-record.js';

/**
 * The API's request body is the seed's flat shape — the tenant spec's fields at the top level
 * (`tier`, `region`, `cloudProvider`, `configuration`, …) plus `name` and `labels` from metadata.
 * It is turned into a tenant document and validated by the same schema as files, so the API can
 * never accept what a file could not hold.
 */
export type TenantBody = Record<string, unknown>;

export function documentFromBody(tenantId: string, body: unknown): TenantInfrastructureDocument {
  if (!isRecord(body)) throw apiError('E_VALIDATION', 'the body must be a JSON object', { errors: [{ path: '', message: 'must be an object' }] });
  const { name, labels, ...spec } = body;
  const doc = {
    apiVersion: API_VERSION,
    kind: TENANT_KIND,
    metadata: { tenantId, name: name === undefined ? tenantId : name, ...(labels === undefined ? {} : { labels }) },
    spec,
  };
  const result = validateTenantDocument(doc, `tenants/${tenantId}.yaml`);
  if (!result.ok) {
    throw apiError('E_VALIDATION', `the tenant is invalid: ${result.issues.length} error(s)`, { errors: result.issues.map(toFieldError) });
  }
  return result.tenant;
}

/** The body shape of an existing document (what a PUT merge-patch applies to). */
export function bodyFromDocument(doc: TenantInfrastructureDocument): TenantBody {
  return { name: doc.metadata.name, ...(doc.metadata.labels ? { labels: doc.metadata.labels } : {}), ...doc.spec };
}

/** Field paths in the caller's terms: `spec.x` → `x`, `metadata.name` → `name`. */
function toFieldError(issue: ValidationIssue): FieldError {
  const path = issue.path.replace(/^spec\.?/, '').replace(/^metadata\.(name|labels)/, '$1');
  return { path, message: issue.message };
}

/** RFC 7386 JSON merge patch: objects merge recursively, `null` removes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return patch;
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
      throw apiError('E_VALIDATION', `field name "${key}" is not allowed`, { errors: [{ path: key, message: 'not allowed' }] });
    }
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}
