/** The kinds the emulator serves, and the discovery documents built from them. */
import type { JsonObject } from './json.js';

export type Subresource = 'status' | 'finalize';

export interface KindInfo {
  /** '' for the core group. */
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  verbs: string[];
  subresources: Subresource[];
  /**
   * Top-level fields a write to the main resource cannot change: they belong to a subresource
   * (status) or, for a Namespace, to the finalize subresource and the namespace controller (spec).
   */
  serverOwned: string[];
  /** The rule the object's name must follow: a DNS name, or (RBAC) any valid URL path segment. */
  nameRule: 'subdomain' | 'label' | 'dns1035' | 'path';
}

const CRUD = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function kind(
  group: string,
  version: string,
  kindName: string,
  plural: string,
  extra: Partial<Omit<KindInfo, 'group' | 'version' | 'kind' | 'plural'>> = {},
): KindInfo {
  const subresources = extra.subresources ?? [];
  return {
    group,
    version,
    kind: kindName,
    plural,
    singular: extra.singular ?? kindName.toLowerCase(),
    namespaced: extra.namespaced ?? true,
    shortNames: extra.shortNames ?? [],
    verbs: extra.verbs ?? CRUD,
    subresources,
    serverOwned: extra.serverOwned ?? (subresources.includes('status') ? ['status'] : []),
    nameRule: extra.nameRule ?? 'subdomain',
  };
}

export const KINDS: readonly KindInfo[] = [
  kind('', 'v1', 'Namespace', 'namespaces', {
    namespaced: false,
    shortNames: ['ns'],
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: ['status', 'finalize'],
    serverOwned: ['spec', 'status'],
    nameRule: 'label',
  }),
  kind('', 'v1', 'ConfigMap', 'configmaps', { shortNames: ['cm'] }),
  kind('', 'v1', 'Secret', 'secrets'),
  kind('', 'v1', 'ServiceAccount', 'serviceaccounts', { shortNames: ['sa'] }),
  kind('', 'v1', 'Service', 'services', { shortNames: ['svc'], subresources: ['status'], nameRule: 'dns1035' }),
  kind('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', { shortNames: ['pvc'], subresources: ['status'] }),
  kind('', 'v1', 'ResourceQuota', 'resourcequotas', { shortNames: ['quota'], subresources: ['status'] }),
  kind('', 'v1', 'LimitRange', 'limitranges', { shortNames: ['limits'] }),
  kind('apps', 'v1', 'Deployment', 'deployments', { shortNames: ['deploy'], subresources: ['status'] }),
  kind('apps', 'v1', 'StatefulSet', 'statefulsets', { shortNames: ['sts'], subresources: ['status'] }),
  kind('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', { shortNames: ['netpol'] }),
  kind('networking.k8s.io', 'v1', 'Ingress', 'ingresses', { shortNames: ['ing'], subresources: ['status'] }),
  kind('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', { shortNames: ['pdb'], subresources: ['status'] }),
  kind('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', { nameRule: 'path' }),
  kind('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', { nameRule: 'path' }),
];

export function apiVersionOf(info: KindInfo): string {
  return info.group ? `${info.group}/${info.version}` : info.version;
}

/** `deployments.apps`, `configmaps`: how error messages name a resource. */
export function qualifiedResource(info: KindInfo): string {
  return info.group ? `${info.plural}.${info.group}` : info.plural;
}

/** `Deployment.apps`, `ConfigMap`: how Invalid errors name a kind. */
export function qualifiedKind(info: KindInfo): string {
  return info.group ? `${info.kind}.${info.group}` : info.kind;
}

export function findByResource(group: string, version: string, plural: string): KindInfo | undefined {
  return KINDS.find((k) => k.group === group && k.version === version && k.plural === plural);
}

export function findByKind(apiVersion: string, kindName: string): KindInfo | undefined {
  return KINDS.find((k) => apiVersionOf(k) === apiVersion && k.kind === kindName);
}

/** Looks a kind up by name alone (`Deployment`), by plural or short name, as test helpers do. */
export function findLoosely(name: string): KindInfo | undefined {
  const n = name.toLowerCase();
  return KINDS.find(
    (k) => k.kind.toLowerCase() === n || k.plural === n || k.singular === n || k.shortNames.includes(n),
  );
}

function groupVersions(): Map<string, KindInfo[]> {
  const byGv = new Map<string, KindInfo[]>();
  for (const k of KINDS) {
    const gv = apiVersionOf(k);
    byGv.set(gv, [...(byGv.get(gv) ?? []), k]);
  }
  return byGv;
}

export function hasGroupVersion(group: string, version: string): boolean {
  return KINDS.some((k) => k.group === group && k.version === version);
}

/** GET /api */
export function apiVersionsDocument(serverAddress: string): JsonObject {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

/** GET /apis */
export function apiGroupListDocument(): JsonObject {
  const groups = new Map<string, string[]>();
  for (const k of KINDS) {
    if (!k.group) continue;
    const versions = groups.get(k.group) ?? [];
    if (!versions.includes(k.version)) versions.push(k.version);
    groups.set(k.group, versions);
  }
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [...groups].map(([name, versions]) => ({
      name,
      versions: versions.map((version) => ({ groupVersion: `${name}/${version}`, version })),
      preferredVersion: { groupVersion: `${name}/${versions[0] ?? 'v1'}`, version: versions[0] ?? 'v1' },
    })),
  };
}

/** GET /apis/<group> */
export function apiGroupDocument(group: string): JsonObject | undefined {
  const versions = [...new Set(KINDS.filter((k) => k.group === group).map((k) => k.version))];
  const first = versions[0];
  if (first === undefined) return undefined;
  return {
    kind: 'APIGroup',
    apiVersion: 'v1',
    name: group,
    versions: versions.map((version) => ({ groupVersion: `${group}/${version}`, version })),
    preferredVersion: { groupVersion: `${group}/${first}`, version: first },
  };
}

/** GET /api/v1, /apis/<group>/<version>: the APIResourceList KubernetesObjectApi discovers kinds from. */
export function apiResourceListDocument(group: string, version: string): JsonObject | undefined {
  const gv = group ? `${group}/${version}` : version;
  const kinds = groupVersions().get(gv);
  if (!kinds) return undefined;
  const resources: JsonObject[] = [];
  for (const k of kinds) {
    resources.push({
      name: k.plural,
      singularName: k.singular,
      namespaced: k.namespaced,
      kind: k.kind,
      verbs: k.verbs,
      ...(k.shortNames.length > 0 ? { shortNames: k.shortNames } : {}),
    });
    for (const sub of k.subresources) {
      resources.push({
        name: `${k.plural}/${sub}`,
        singularName: '',
        namespaced: k.namespaced,
        kind: k.kind,
        verbs: sub === 'finalize' ? ['update'] : ['get', 'patch', 'update'],
      });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources };
}
