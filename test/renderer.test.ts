import t from 'tap';
import { canonicalJson } from '../core/canonical.js';
import { isTenantdError } from '../core/errors.js';
import { TIER_POLICIES } from '../core/tenant/catalog.js';
import type { TenantInfrastructureDocument, Tier } from '../core/tenant/types.js';
import { diffPaths } from '../providers/resources/diff.js';
import {
  allObjects,
  LABEL_MANAGED_BY,
  LABEL_MESH_POD,
  LABEL_PART_OF,
  LABEL_TENANT_ID,
  objectRef,
  outputsFor,
  refKey,
  renderTenant,
} from '../providers/resources/renderer.js';
import type { KubeObject, RenderedTenant } from '../providers/resources/types.js';

function baseTenant(overrides: Partial<TenantInfrastructureDocument['spec']> = {}, tenantId = 'acme'): TenantInfrastructureDocument {
  return {
    apiVersion: 'tenantd.io/v1alpha1',
    kind: 'TenantInfrastructure',
    metadata: { tenantId, name: 'Acme Corp', labels: { team: 'payments' } },
    spec: {
      tier: 'starter',
      cloudProvider: 'AWS',
      region: 'us-east-1',
      configuration: { databaseSize: 'db.t3.micro', storageGb: 20, enableHa: false },
      ...overrides,
    },
  };
}

function twoServiceTenant(): TenantInfrastructureDocument {
  return baseTenant({
    tier: 'professional',
    cloudProvider: 'AZURE',
    region: 'westeurope',
    configuration: { databaseSize: 'GP_Gen5_2', storageGb: 100, enableHa: false },
    services: [
      { name: 'web', image: 'ghcr.io/acme/web:1.2.3', port: 8080, env: [{ name: 'MODE', value: 'yes' }] },
      { name: 'api', image: 'ghcr.io/acme/api:4.5.6', port: 9000, replicas: 4, resources: { cpu: '750m', memory: '1Gi' } },
    ],
    ingress: { hosts: ['acme.example.com', 'www.acme.example.com'], service: 'api', tls: { enabled: true, clusterIssuer: 'letsencrypt-prod' } },
  });
}

/** Same data, every object's keys in reverse order. */
function reverseKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => reverseKeys(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value as Record<string, unknown>).reverse()) out[key] = reverseKeys((value as Record<string, unknown>)[key]);
    return out as T;
  }
  return value;
}

const summary = (objs: KubeObject[]): string[] => objs.map((o) => `${o.kind}/${o.metadata.name}`);
const find = (r: RenderedTenant, kind: string, name: string): KubeObject => {
  const obj = allObjects(r).find((o) => o.kind === kind && o.metadata.name === name);
  if (!obj) throw new Error(`no ${kind}/${name}`);
  return obj;
};
// Walk a rendered object by path without casts at every step.
const at = (value: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined), value);

const APPLY_BASE = [
  'Namespace/tenant-acme',
  'ResourceQuota/tenant-quota',
  'LimitRange/tenant-limits',
  'NetworkPolicy/default-deny',
  'NetworkPolicy/allow-same-namespace',
  'NetworkPolicy/allow-dns-egress',
  'NetworkPolicy/allow-mesh-control-plane',
];

t.test('rendering is deterministic and independent of input key order', async (t) => {
  const a = renderTenant(twoServiceTenant());
  const b = renderTenant(twoServiceTenant());
  const c = renderTenant(reverseKeys(twoServiceTenant()));
  t.equal(canonicalJson(a), canonicalJson(b));
  t.equal(JSON.stringify(a), JSON.stringify(c), 'byte-identical even with reversed input keys');
  t.equal(a.digest, c.digest);
  t.match(a.digest, /^sha256:[0-9a-f]{64}$/);
  for (const obj of allObjects(a)) t.equal(JSON.stringify(obj), canonicalJson(obj), `${obj.kind}/${obj.metadata.name} has sorted keys`);
  const changed = renderTenant({ ...twoServiceTenant(), spec: { ...twoServiceTenant().spec, region: 'northeurope' } });
  t.not(changed.digest, a.digest, 'digest changes with the spec');
});

t.test('objects per group and order for every tier', async (t) => {
  const dbSize: Record<Tier, string> = { starter: 'db.t3.micro', professional: 'db.t3.medium', enterprise: 'db.m5.xlarge' };
  for (const tier of ['starter', 'professional', 'enterprise'] as const) {
    const r = renderTenant(baseTenant({ tier, configuration: { databaseSize: dbSize[tier], storageGb: 10, enableHa: false } }));
    t.equal(r.namespace, 'tenant-acme');
    t.equal(r.tenantId, 'acme');
    t.same(summary(r.groups.Apply), [
      ...APPLY_BASE,
      'ServiceAccount/tenant',
      'Secret/postgres-credentials',
      'Service/postgres-headless',
      'Service/postgres',
      'PersistentVolumeClaim/data-postgres-0',
      'StatefulSet/postgres',
    ], `${tier}: Apply group`);
    t.same(summary(r.groups.Deploy), [], `${tier}: no services, empty Deploy group`);
    t.same(summary(r.groups.Configure), ['ConfigMap/tenant-endpoints'], `${tier}: Configure group`);

    const quota = find(r, 'ResourceQuota', 'tenant-quota');
    const policy = TIER_POLICIES[tier];
    t.same(at(quota, 'spec', 'hard'), {
      pods: String(policy.quota.pods),
      'requests.cpu': policy.quota.cpu,
      'requests.memory': policy.quota.memory,
      'requests.storage': policy.quota.storage,
    }, `${tier}: quota from the tier`);
    const limits = find(r, 'LimitRange', 'tenant-limits');
    t.same(at(limits, 'spec', 'limits', 0, 'defaultRequest'), { cpu: policy.containerDefaults.cpu, memory: policy.containerDefaults.memory });
    t.same(at(limits, 'spec', 'limits', 0, 'default'), { memory: policy.containerDefaults.memory });
    t.equal(at(find(r, 'Namespace', 'tenant-acme'), 'metadata', 'labels', 'tenantd.io/tier'), tier);
  }
});

t.test('two services with ingress and TLS', async (t) => {
  const r = renderTenant(twoServiceTenant());
  t.same(summary(r.groups.Apply), [
    ...APPLY_BASE,
    'NetworkPolicy/allow-ingress-controller',
    'ServiceAccount/tenant',
    'Secret/postgres-credentials',
    'Service/postgres-headless',
    'Service/postgres',
    'PersistentVolumeClaim/data-postgres-0',
    'StatefulSet/postgres',
  ]);
  t.same(summary(r.groups.Deploy), ['Deployment/web', 'Service/web', 'Deployment/api', 'Service/api']);
  t.same(summary(r.groups.Configure), ['Ingress/tenant-ingress', 'ConfigMap/tenant-endpoints']);

  const web = find(r, 'Deployment', 'web');
  t.equal(at(web, 'spec', 'replicas'), TIER_POLICIES.professional.defaultReplicas, 'replicas default from the tier');
  t.same(at(web, 'spec', 'template', 'spec', 'containers', 0, 'resources'), { limits: { memory: '512Mi' }, requests: { cpu: '500m', memory: '512Mi' } });
  t.same(at(web, 'spec', 'template', 'spec', 'containers', 0, 'readinessProbe', 'tcpSocket'), { port: 8080 });
  t.equal(at(web, 'spec', 'template', 'spec', 'serviceAccountName'), 'tenant');
  t.equal(at(web, 'spec', 'template', 'spec', 'affinity'), undefined, 'no anti-affinity without HA');
  const webEnv = at(web, 'spec', 'template', 'spec', 'containers', 0, 'env') as { name: string; value?: string; valueFrom?: unknown }[];
  t.same(webEnv.find((e) => e.name === 'MODE'), { name: 'MODE', value: 'yes' });
  t.ok(webEnv.find((e) => e.name === 'PGPASSWORD')?.valueFrom, 'database password by secretKeyRef');
  t.equal(webEnv.find((e) => e.name === 'PGHOST')?.value, 'postgres.tenant-acme.svc.cluster.local');

  const api = find(r, 'Deployment', 'api');
  t.equal(at(api, 'spec', 'replicas'), 4);
  t.same(at(api, 'spec', 'template', 'spec', 'containers', 0, 'resources'), { limits: { memory: '1Gi' }, requests: { cpu: '750m', memory: '1Gi' } });
  t.same(at(find(r, 'Service', 'api'), 'spec', 'ports'), [{ name: 'app', port: 9000, protocol: 'TCP', targetPort: 'app' }]);

  const ingress = find(r, 'Ingress', 'tenant-ingress');
  t.equal(at(ingress, 'metadata', 'annotations', 'cert-manager.io/cluster-issuer'), 'letsencrypt-prod');
  t.same(at(ingress, 'spec', 'tls'), [{ hosts: ['acme.example.com', 'www.acme.example.com'], secretName: 'acme-tls' }]);
  t.same(at(ingress, 'spec', 'rules', 1, 'http', 'paths', 0, 'backend'), { service: { name: 'api', port: { number: 9000 } } });

  const np = find(r, 'NetworkPolicy', 'allow-ingress-controller');
  t.same(at(np, 'spec', 'ingress', 0, 'ports'), [{ port: 9000, protocol: 'TCP' }]);
  t.equal(at(np, 'spec', 'podSelector', 'matchLabels', 'app.kubernetes.io/name'), 'api');
  t.same(at(np, 'spec', 'ingress', 0, 'from', 0, 'namespaceSelector', 'matchLabels'), { 'kubernetes.io/metadata.name': 'ingress-nginx' });

  const cm = find(r, 'ConfigMap', 'tenant-endpoints');
  t.same(at(cm, 'data'), {
    'database.credentialsSecret': 'postgres-credentials',
    'database.host': 'postgres.tenant-acme.svc.cluster.local',
    'database.name': 'app',
    'database.port': '5432',
    'ingress.hosts': 'acme.example.com,www.acme.example.com',
    'ingress.url': 'https://acme.example.com',
    'ingress.urls': 'https://acme.example.com,https://www.acme.example.com',
    namespace: 'tenant-acme',
    'service.api.host': 'api.tenant-acme.svc.cluster.local',
    'service.api.url': 'http://api.tenant-acme.svc.cluster.local:9000',
    'service.web.host': 'web.tenant-acme.svc.cluster.local',
    'service.web.url': 'http://web.tenant-acme.svc.cluster.local:8080',
  });

  // Explicit secret name, no issuer; backend defaults to the first service.
  const doc = twoServiceTenant();
  doc.spec.ingress = { hosts: ['a.example.com'], tls: { enabled: true, secretName: 'wildcard-cert' } };
  const r2 = renderTenant(doc);
  const ing2 = find(r2, 'Ingress', 'tenant-ingress');
  t.same(at(ing2, 'spec', 'tls', 0, 'secretName'), 'wildcard-cert');
  t.equal(at(ing2, 'metadata', 'annotations'), undefined);
  t.equal(at(ing2, 'spec', 'rules', 0, 'http', 'paths', 0, 'backend', 'service', 'name'), 'web');
  doc.spec.ingress = { hosts: ['a.example.com'] };
  const r3 = renderTenant(doc);
  t.equal(at(find(r3, 'Ingress', 'tenant-ingress'), 'spec', 'tls'), undefined);
  t.equal(outputsFor(r3)['ingress.url'], 'http://a.example.com');
});

t.test('network policies deny by default and allow DNS and same-namespace traffic', async (t) => {
  const r = renderTenant(baseTenant());
  t.same(at(find(r, 'NetworkPolicy', 'default-deny'), 'spec'), { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  const dns = find(r, 'NetworkPolicy', 'allow-dns-egress');
  t.same(at(dns, 'spec', 'egress', 0, 'ports'), [
    { port: 53, protocol: 'UDP' },
    { port: 53, protocol: 'TCP' },
  ]);
  t.same(at(dns, 'spec', 'egress', 0, 'to', 0, 'namespaceSelector', 'matchLabels'), { 'kubernetes.io/metadata.name': 'kube-system' });
  const same = find(r, 'NetworkPolicy', 'allow-same-namespace');
  t.same(at(same, 'spec', 'ingress'), [{ from: [{ podSelector: {} }] }]);
  t.same(at(same, 'spec', 'egress'), [{ to: [{ podSelector: {} }] }]);
  t.notOk(allObjects(r).some((o) => o.metadata.name === 'allow-ingress-controller'), 'no ingress allowance without ingress');
});

t.test('database: size, storage class, secret references, HA', async (t) => {
  const r = renderTenant(twoServiceTenant());
  const sts = find(r, 'StatefulSet', 'postgres');
  t.equal(at(sts, 'spec', 'replicas'), 1);
  t.same(at(sts, 'spec', 'template', 'spec', 'containers', 0, 'resources'), { limits: { memory: '10Gi' }, requests: { cpu: '2', memory: '10Gi' } });
  t.equal(at(sts, 'spec', 'template', 'spec', 'affinity'), undefined);
  const env = at(sts, 'spec', 'template', 'spec', 'containers', 0, 'env') as { name: string; value?: string; valueFrom?: unknown }[];
  t.same(env.find((e) => e.name === 'POSTGRES_PASSWORD'), {
    name: 'POSTGRES_PASSWORD',
    valueFrom: { secretKeyRef: { key: 'password', name: 'postgres-credentials' } },
  });
  const pvc = find(r, 'PersistentVolumeClaim', 'data-postgres-0');
  t.same(at(pvc, 'spec'), { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '100Gi' } }, storageClassName: 'managed-csi' });
  t.equal(at(sts, 'spec', 'volumeClaimTemplates', 0, 'spec', 'storageClassName'), 'managed-csi');
  t.equal(at(find(renderTenant(baseTenant()), 'PersistentVolumeClaim', 'data-postgres-0'), 'spec', 'storageClassName'), 'gp3');
  const gcp = renderTenant(baseTenant({ cloudProvider: 'GCP', region: 'us-central1', configuration: { databaseSize: 'db-g1-small', storageGb: 5, enableHa: false } }));
  t.equal(at(find(gcp, 'PersistentVolumeClaim', 'data-postgres-0'), 'spec', 'storageClassName'), 'standard-rwo');
  t.same(at(find(gcp, 'StatefulSet', 'postgres'), 'spec', 'template', 'spec', 'containers', 0, 'resources', 'requests'), { cpu: '500m', memory: '1740Mi' });

  t.same(r.generatedSecrets, [{ fixed: { database: 'app', username: 'app' }, generatedKeys: ['password'], name: 'postgres-credentials', namespace: 'tenant-acme' }]);

  const haDoc = twoServiceTenant();
  haDoc.spec.configuration.enableHa = true;
  const ha = renderTenant(haDoc);
  const haSts = find(ha, 'StatefulSet', 'postgres');
  t.equal(at(haSts, 'spec', 'replicas'), 2, 'HA doubles the database replicas');
  t.ok(at(haSts, 'spec', 'template', 'spec', 'affinity', 'podAntiAffinity'), 'database anti-affinity');
  t.ok(at(find(ha, 'Deployment', 'web'), 'spec', 'template', 'spec', 'affinity', 'podAntiAffinity'), 'service anti-affinity');
  t.same(
    summary(ha.groups.Apply).filter((s) => s.startsWith('PersistentVolumeClaim') || s.startsWith('PodDisruptionBudget')),
    ['PersistentVolumeClaim/data-postgres-0', 'PersistentVolumeClaim/data-postgres-1', 'PodDisruptionBudget/postgres'],
  );
  t.same(summary(ha.groups.Deploy), ['Deployment/web', 'Service/web', 'PodDisruptionBudget/web', 'Deployment/api', 'Service/api', 'PodDisruptionBudget/api']);
  // The client service only ever reaches the primary.
  t.equal(at(find(ha, 'Service', 'postgres'), 'spec', 'selector', 'statefulset.kubernetes.io/pod-name'), 'postgres-0');
});

t.test('no Secret carries data; labels on every object; outputs hold no secrets', async (t) => {
  const haDoc = twoServiceTenant();
  haDoc.spec.configuration.enableHa = true;
  for (const r of [renderTenant(baseTenant()), renderTenant(twoServiceTenant()), renderTenant(haDoc)]) {
    for (const obj of allObjects(r)) {
      const name = `${obj.kind}/${obj.metadata.name}`;
      if (obj.kind === 'Secret') {
        t.equal(obj.data, undefined, `${name} has no data`);
        t.equal(obj.stringData, undefined, `${name} has no stringData`);
        t.equal(obj.metadata.annotations?.['tenantd.io/generated-secret'], 'true');
      }
      const labels = obj.metadata.labels ?? {};
      t.equal(labels[LABEL_MANAGED_BY], 'tenantd', `${name} managed-by`);
      t.equal(labels[LABEL_TENANT_ID], 'acme', `${name} tenant-id`);
      t.equal(labels[LABEL_PART_OF], 'acme', `${name} part-of`);
      t.equal(obj.metadata.namespace === undefined, obj.kind === 'Namespace', `${name} namespace`);
      const template = at(obj, 'spec', 'template', 'metadata', 'labels') as Record<string, string> | undefined;
      if (template) {
        t.equal(template[LABEL_MESH_POD], 'true', `${name} pod template mesh label`);
        t.equal(template[LABEL_TENANT_ID], 'acme');
      }
    }
    const ns = find(r, 'Namespace', 'tenant-acme');
    t.equal(ns.metadata.labels?.['istio-injection'], 'enabled');
    t.equal(ns.metadata.labels?.team, 'payments', 'tenant labels on the namespace');
    t.equal(ns.metadata.annotations?.['tenantd.io/tenant-name'], 'Acme Corp');
    // Nothing in the rendering carries a literal password value.
    const json = JSON.stringify(r);
    t.notMatch(json, /"(password|PGPASSWORD|POSTGRES_PASSWORD)","value"/);
    const outputs = outputsFor(r);
    t.equal(outputs.namespace, 'tenant-acme');
    t.equal(outputs['database.host'], 'postgres.tenant-acme.svc.cluster.local');
    t.notOk(Object.keys(outputs).some((k) => /password|token|secretValue/i.test(k)), 'no secret-looking output keys');
    t.same(Object.keys(outputs), [...Object.keys(outputs)].sort());
  }
});

t.test('tenant labels never override tenantd labels', async (t) => {
  const doc = baseTenant();
  doc.metadata.labels = { [LABEL_TENANT_ID]: 'other', [LABEL_MANAGED_BY]: 'someone' };
  const ns = find(renderTenant(doc), 'Namespace', 'tenant-acme');
  t.equal(ns.metadata.labels?.[LABEL_TENANT_ID], 'acme');
  t.equal(ns.metadata.labels?.[LABEL_MANAGED_BY], 'tenantd');
});

t.test('a service env var wins over the injected database variable', async (t) => {
  const doc = twoServiceTenant();
  doc.spec.services![0]!.env = [{ name: 'PGHOST', value: 'external.db' }];
  const env = at(find(renderTenant(doc), 'Deployment', 'web'), 'spec', 'template', 'spec', 'containers', 0, 'env') as { name: string; value?: string }[];
  t.same(env.filter((e) => e.name === 'PGHOST'), [{ name: 'PGHOST', value: 'external.db' }]);
});

t.test('render options', async (t) => {
  const r = renderTenant(twoServiceTenant(), { ingressClassName: 'traefik', ingressControllerNamespace: 'traefik', postgresImage: 'postgres:16.4', clusterDomain: 'corp.local' });
  t.equal(at(find(r, 'Ingress', 'tenant-ingress'), 'spec', 'ingressClassName'), 'traefik');
  t.equal(at(find(r, 'StatefulSet', 'postgres'), 'spec', 'template', 'spec', 'containers', 0, 'image'), 'postgres:16.4');
  t.equal(outputsFor(r)['database.host'], 'postgres.tenant-acme.svc.corp.local');
  t.same(at(find(r, 'NetworkPolicy', 'allow-ingress-controller'), 'spec', 'ingress', 0, 'from', 0, 'namespaceSelector', 'matchLabels'), {
    'kubernetes.io/metadata.name': 'traefik',
  });
});

t.test('rendering errors are stalled with stable codes', async (t) => {
  const codeOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
      return undefined;
    } catch (err: unknown) {
      return isTenantdError(err) && err.kind === 'stalled' ? err.code : 'not-a-stalled-error';
    }
  };
  t.equal(codeOf(() => renderTenant(baseTenant({ configuration: { databaseSize: 'B_Gen5_1', storageGb: 10, enableHa: false } }))), 'E_UNKNOWN_DATABASE_SIZE');
  const noBackend = twoServiceTenant();
  noBackend.spec.ingress = { hosts: ['x.example.com'], service: 'nope' };
  t.equal(codeOf(() => renderTenant(noBackend)), 'E_INGRESS_BACKEND');
  const noServices = baseTenant({ ingress: { hosts: ['x.example.com'] } });
  t.equal(codeOf(() => renderTenant(noServices)), 'E_INGRESS_BACKEND');
  const clash = twoServiceTenant();
  clash.spec.services![0]!.name = 'postgres';
  t.equal(codeOf(() => renderTenant(clash)), 'E_RENDER_CONFLICT');
});

t.test('objectRef and refKey', async (t) => {
  const r = renderTenant(baseTenant());
  t.same(objectRef(find(r, 'Namespace', 'tenant-acme')), { apiVersion: 'v1', kind: 'Namespace', name: 'tenant-acme' });
  t.equal(refKey(objectRef(find(r, 'Secret', 'postgres-credentials'))), 'v1/Secret/tenant-acme/postgres-credentials');
  t.equal(refKey(objectRef(find(r, 'StatefulSet', 'postgres'))), 'apps/v1/StatefulSet/tenant-acme/postgres');
  t.equal(refKey({ apiVersion: 'v1', kind: 'Namespace', name: 'tenant-acme' }), 'v1/Namespace/tenant-acme');
  const keys = allObjects(renderTenant(twoServiceTenant())).map((o) => refKey(objectRef(o)));
  t.equal(new Set(keys).size, keys.length, 'refKeys are unique');
});

t.test('diffPaths names fields, never values', async (t) => {
  t.same(diffPaths({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 3] } }), ['b.c[1]']);
  t.same(diffPaths({ metadata: { labels: { 'x.io/y': 'a' } } }, { metadata: { labels: { 'x.io/y': 'b' } } }), ["metadata.labels['x.io/y']"]);
  t.same(diffPaths({ a: [1] }, { a: [1, 2] }), ['a']);
  t.same(diffPaths({ a: 1 }, { a: 1 }), []);
  t.same(diffPaths({ a: 1 }, {}), ['a']);
  t.same(diffPaths(1, 2), ['.']);
});
