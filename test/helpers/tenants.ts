import { digestOf } from '../../core/canonical.js';
import { specDigestOf } from '../../core/desired/loader.js';
import type { DesiredInfrastructureState } from '../../core/state/record.js';
import type { TenantInfrastructureDocument } from '../../core/tenant/types.js';

/** A valid tenant document for tests; `patch` edits the spec. */
export function tenantDoc(tenantId: string, patch: Partial<TenantInfrastructureDocument['spec']> = {}): TenantInfrastructureDocument {
  return {
    apiVersion: 'tenantd.io/v1alpha1',
    kind: 'TenantInfrastructure',
    metadata: { tenantId, name: `Tenant ${tenantId}`, labels: { team: 'test' } },
    spec: {
      tier: 'professional',
      cloudProvider: 'AWS',
      region: 'us-east-1',
      configuration: { databaseSize: 'db.t3.medium', storageGb: 50, enableHa: false },
      services: [{ name: 'web', image: 'nginx:1.27', replicas: 2, port: 8080 }],
      ...patch,
    },
  };
}

/** The YAML text of a tenant file (what a person would commit). */
export function tenantYaml(tenantId: string, patch: Partial<TenantInfrastructureDocument['spec']> = {}): string {
  return `${JSON.stringify(tenantDoc(tenantId, patch), null, 2)}\n`;
}

export function desiredOf(doc: TenantInfrastructureDocument, commit: string, blobOid = digestOf(doc).slice(7, 47)): DesiredInfrastructureState {
  return {
    tenantId: doc.metadata.tenantId,
    file: `tenants/${doc.metadata.tenantId}.yaml`,
    commit,
    blobOid,
    specDigest: specDigestOf(doc),
    document: doc,
    issues: [],
  };
}
