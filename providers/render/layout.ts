/**
 * Where the render provider keeps a tenant on disk:
 *
 * ```
 * <dataDir>/rendered/<tenantId>/1-apply/00-namespace-tenant-<id>.yaml
 *                               1-apply/09-statefulset-postgres.yaml
 *                               2-deploy/10-deployment-web.yaml
 *                               3-configure/12-ingress-tenant-ingress.yaml
 * <dataDir>/secrets/<tenantId>/postgres-credentials.json        (0600, directory 0700)
 * ```
 *
 * File names depend only on an object's kind and name (never on its position), so adding or
 * removing one object never renames another; the kind rank keeps `ls` in a sensible apply order.
 */
import path from 'node:path';
import YAML from 'yaml';
import { sortKeysDeep } from '../../core/canonical.js';
import { stringifyYaml } from '../../core/status/yaml-emit.js';
import type { ApplyGroup, KubeObject } from '../resources/types.js';

export const RENDERED_DIR = 'rendered';
export const SECRETS_DIR = 'secrets';

export const GROUP_DIRS: Readonly<Record<ApplyGroup, string>> = {
  Apply: '1-apply',
  Deploy: '2-deploy',
  Configure: '3-configure',
};

const KIND_RANK: Readonly<Record<string, number>> = {
  Namespace: 0,
  ResourceQuota: 1,
  LimitRange: 2,
  NetworkPolicy: 3,
  ServiceAccount: 4,
  Secret: 5,
  ConfigMap: 6,
  Service: 7,
  PersistentVolumeClaim: 8,
  StatefulSet: 9,
  Deployment: 10,
  PodDisruptionBudget: 11,
  Ingress: 12,
};

export function kindRank(kind: string): number {
  return Object.prototype.hasOwnProperty.call(KIND_RANK, kind) ? (KIND_RANK[kind] as number) : 99;
}

/** `<NN>-<kind>-<name>.yaml`, e.g. `10-deployment-web.yaml`. */
export function fileNameFor(obj: KubeObject): string {
  return `${String(kindRank(obj.kind)).padStart(2, '0')}-${obj.kind.toLowerCase()}-${obj.metadata.name}.yaml`;
}

export const renderedTenantDir = (dataDir: string, tenantId: string): string => path.join(dataDir, RENDERED_DIR, tenantId);
export const secretsTenantDir = (dataDir: string, tenantId: string): string => path.join(dataDir, SECRETS_DIR, tenantId);
export const secretFileName = (secretName: string): string => `${secretName}.json`;
/** Relative to the data directory, as referenced from a rendered Secret's annotation. */
export const secretRelPath = (tenantId: string, secretName: string): string => `${SECRETS_DIR}/${tenantId}/${secretFileName(secretName)}`;

/** A rendered manifest file is named like this; anything else in a group directory is pruned. */
export const isManifestFile = (name: string): boolean => name.endsWith('.yaml') && !name.startsWith('.');

const HEADER = '# Rendered by tenantd. Do not edit: changes are reverted on the next reconcile.\n';

/**
 * YAML with sorted keys. YAML 1.1 scalars are quoted (`"yes"`, `"on"`), because Kubernetes tooling
 * reads manifests with YAML 1.1 rules.
 */
export function toManifestYaml(obj: KubeObject): string {
  // = YAML.stringify(…, { version: '1.1', lineWidth: 0, aliasDuplicateObjects: false, sortMapEntries: true }),
  // byte for byte, without building a node tree per manifest (the hot path of a full reconcile)
  return HEADER + stringifyYaml(sortKeysDeep(obj), { version: '1.1', sortMapEntries: true });
}

export function parseManifestYaml(text: string): unknown {
  return YAML.parse(text, { version: '1.1' });
}
