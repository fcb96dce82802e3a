/**
 * The clusters file: which kubeconfig context serves which cloudProvider + region.
 *
 * ```yaml
 * clusters:
 *   - { cloudProvider: AZURE, region: eastus, context: aks-eastus }
 *   - { cloudProvider: AWS, region: us-east-1, context: eks-use1 }
 * ```
 *
 * Without a clusters file every tenant goes to the one configured context. With one, a tenant whose
 * cloudProvider + region has no entry cannot be placed (E_NO_CLUSTER_FOR_REGION).
 */
import nodeFs from 'node:fs/promises';
import YAML from 'yaml';
import { stalled } from '../../core/errors.js';
import { CLOUD_PROVIDERS, type CloudProvider, type TenantInfrastructureDocument } from '../../core/tenant/types.js';
import { REGIONS } from '../../core/tenant/catalog.js';
import { E_CLUSTERS_FILE, E_NO_CLUSTER_FOR_REGION } from './errors.js';

export interface ClusterEntry {
  cloudProvider: CloudProvider;
  region: string;
  /** The kubeconfig context whose cluster hosts these tenants. */
  context: string;
}

export interface ClusterMap {
  clusters: ClusterEntry[];
}

type ReadFile = (path: string, encoding: 'utf8') => Promise<string>;

function fail(file: string, message: string, data: Record<string, unknown> = {}): never {
  throw stalled(E_CLUSTERS_FILE, `${file}: ${message}`, { file, ...data });
}

/** Validates a parsed clusters document; `file` names it in errors. */
export function parseClusterMap(value: unknown, file = 'clusters file'): ClusterMap {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(file, 'must be a mapping with a `clusters` list');
  const list = (value as { clusters?: unknown }).clusters;
  if (!Array.isArray(list)) fail(file, '`clusters` must be a list of {cloudProvider, region, context}');
  const seen = new Map<string, number>();
  const clusters: ClusterEntry[] = [];
  list.forEach((item: unknown, i: number) => {
    const where = `clusters[${i}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) fail(file, `${where} must be a mapping`, { index: i });
    const { cloudProvider, region, context, ...rest } = item as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length > 0) fail(file, `${where} has unknown field(s): ${extra.sort().join(', ')}`, { index: i });
    if (typeof cloudProvider !== 'string' || !(CLOUD_PROVIDERS as readonly string[]).includes(cloudProvider)) {
      fail(file, `${where}.cloudProvider must be one of: ${CLOUD_PROVIDERS.join(', ')} (got ${JSON.stringify(cloudProvider)})`, { index: i });
    }
    const cp = cloudProvider as CloudProvider;
    if (typeof region !== 'string' || !REGIONS[cp].includes(region)) {
      fail(file, `${where}.region must be one of the ${cp} regions: ${REGIONS[cp].join(', ')} (got ${JSON.stringify(region)})`, { index: i });
    }
    if (typeof context !== 'string' || context.trim() === '') fail(file, `${where}.context must be a non-empty kubeconfig context name`, { index: i });
    const key = `${cp}/${region}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) fail(file, `${where} maps ${key} again (already clusters[${earlier}])`, { index: i });
    seen.set(key, i);
    clusters.push({ cloudProvider: cp, region, context });
  });
  return { clusters };
}

/** Reads and validates a clusters file (YAML or JSON). */
export async function loadClustersFile(path: string, readFile: ReadFile = nodeFs.readFile): Promise<ClusterMap> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err: unknown) {
    const code = (err as { code?: unknown })?.code;
    throw stalled(E_CLUSTERS_FILE, `${path}: cannot read the clusters file (${typeof code === 'string' ? code : String(err)})`, { file: path });
  }
  let parsed: unknown;
  try {
    parsed = YAML.parse(text);
  } catch (err: unknown) {
    throw stalled(E_CLUSTERS_FILE, `${path}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`, { file: path });
  }
  return parseClusterMap(parsed, path);
}

/** The context for a cloudProvider + region, or undefined when the map has no entry. */
export function contextFor(map: ClusterMap, cloudProvider: string, region: string): string | undefined {
  return map.clusters.find((c) => c.cloudProvider === cloudProvider && c.region === region)?.context;
}

/**
 * A placement problem for a tenant, or null when it can be placed. The daemon can run this during
 * validation to make an unplaceable tenant INVALID (nothing touched) instead of FAILED.
 */
export function placementIssue(map: ClusterMap | undefined, doc: TenantInfrastructureDocument): { path: string; message: string } | null {
  if (!map) return null;
  if (contextFor(map, doc.spec.cloudProvider, doc.spec.region)) return null;
  const served = map.clusters.filter((c) => c.cloudProvider === doc.spec.cloudProvider).map((c) => c.region);
  return {
    path: 'spec.region',
    message: `no cluster serves ${doc.spec.cloudProvider} ${doc.spec.region}; the clusters file maps ${
      served.length > 0 ? `${doc.spec.cloudProvider} regions ${served.join(', ')}` : `no ${doc.spec.cloudProvider} region`
    }`,
  };
}

/**
 * A change that would move a tenant to another cluster: its objects on the old one would be left
 * behind (apply and prune only see the new cluster), so it is refused until the tenant is
 * deprovisioned where it is. null when both documents map to the same context (or either maps to
 * none: placementIssue reports the new one; an old region dropped from the file cannot be reached).
 */
export function moveIssue(map: ClusterMap | undefined, current: TenantInfrastructureDocument | null, doc: TenantInfrastructureDocument): { path: string; message: string } | null {
  if (!map || !current) return null;
  const from = contextFor(map, current.spec.cloudProvider, current.spec.region);
  const to = contextFor(map, doc.spec.cloudProvider, doc.spec.region);
  if (!from || !to || from === to) return null;
  const field = current.spec.region !== doc.spec.region ? 'spec.region' : 'spec.cloudProvider';
  return {
    path: field,
    message: `moving the tenant from ${current.spec.cloudProvider} ${current.spec.region} (context ${from}) to ${doc.spec.cloudProvider} ${doc.spec.region} (context ${to}) is not supported: its objects on ${from} would be left behind. Keep ${current.spec.cloudProvider} ${current.spec.region}, or deprovision the tenant first (remove its file and wait for DEPROVISIONED), then add it again in the new region`,
  };
}

/** The context for a tenant, or a stalled E_NO_CLUSTER_FOR_REGION. */
export function requireContext(map: ClusterMap, doc: TenantInfrastructureDocument): string {
  const context = contextFor(map, doc.spec.cloudProvider, doc.spec.region);
  if (context) return context;
  const issue = placementIssue(map, doc);
  throw stalled(E_NO_CLUSTER_FOR_REGION, `tenant ${doc.metadata.tenantId}: ${issue?.message ?? 'no cluster'}`, {
    tenantId: doc.metadata.tenantId,
    cloudProvider: doc.spec.cloudProvider,
    region: doc.spec.region,
  });
}
