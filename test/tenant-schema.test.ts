/**
 * Keeps `schemas/tenant.schema.json` and `core/tenant/types.ts` in step:
 * - a sample typed DeepRequired<TenantInfrastructureDocument> must name every field of the types;
 * - it must validate (so every field of the types is in the schema, additionalProperties: false);
 * - walking the schema, every property must appear in the sample (so nothing extra in the schema);
 * - required lists, enums, consts and bounds match the types and constants.
 */
import t from 'tap';
import schema from '../schemas/tenant.schema.json' with { type: 'json' };
import { MAX_STORAGE_GB, MIN_STORAGE_GB } from '../core/tenant/catalog.js';
import {
  API_VERSION,
  CLOUD_PROVIDERS,
  DNS1123_LABEL,
  MAX_TENANT_ID_LENGTH,
  TENANT_KIND,
  TIERS,
  type DriftPolicy,
  type ServiceEnvVar,
  type TenantConfiguration,
  type TenantInfrastructureDocument,
  type TenantIngress,
  type TenantIngressTls,
  type TenantMetadata,
  type TenantService,
  type TenantSpec,
} from '../core/tenant/types.js';
import { PATTERN_MEANINGS, validateTenantDocument } from '../core/tenant/validate.js';

type DeepRequired<T> = T extends (infer U)[] ? DeepRequired<U>[] : T extends object ? { [K in keyof T]-?: DeepRequired<T[K]> } : T;
type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

// Every field, optional or not: the compiler rejects this object if types.ts gains a field.
const full: DeepRequired<TenantInfrastructureDocument> = {
  apiVersion: 'tenantd.io/v1alpha1',
  kind: 'TenantInfrastructure',
  metadata: { tenantId: 'full', name: 'Full Sample', labels: { 'tenantd.io/team': 'core' } },
  spec: {
    tier: 'enterprise',
    cloudProvider: 'GCP',
    region: 'europe-west1',
    configuration: { databaseSize: 'db-custom-4-15360', storageGb: 500, enableHa: true },
    services: [
      {
        name: 'web',
        image: 'registry.example.com/web:1.0.0',
        replicas: 2,
        port: 8080,
        resources: { cpu: '500m', memory: '512Mi' },
        env: [{ name: 'MODE', value: 'production' }],
      },
    ],
    ingress: { hosts: ['full.example.com'], tls: { enabled: true, secretName: 'full-tls', clusterIssuer: 'letsencrypt' }, service: 'web' },
    suspend: false,
    deletionProtection: true,
    driftPolicy: 'report',
    verifyTimeoutSeconds: 600,
    forceConflicts: false,
    approval: 'manual',
  },
};

// Required fields per object, checked against the types at compile time and the schema at run time.
const docRequired = ['apiVersion', 'kind', 'metadata', 'spec'] as const;
const metadataRequired = ['tenantId', 'name'] as const;
const specRequired = ['tier', 'cloudProvider', 'region', 'configuration'] as const;
const configurationRequired = ['databaseSize', 'storageGb', 'enableHa'] as const;
const serviceRequired = ['name', 'image', 'port'] as const;
const envRequired = ['name', 'value'] as const;
const ingressRequired = ['hosts'] as const;
const tlsRequired = ['enabled'] as const;
const driftPolicies = ['correct', 'report'] as const;
const typeChecks: true[] = [
  true satisfies Equal<RequiredKeys<TenantInfrastructureDocument>, (typeof docRequired)[number]>,
  true satisfies Equal<RequiredKeys<TenantMetadata>, (typeof metadataRequired)[number]>,
  true satisfies Equal<RequiredKeys<TenantSpec>, (typeof specRequired)[number]>,
  true satisfies Equal<RequiredKeys<TenantConfiguration>, (typeof configurationRequired)[number]>,
  true satisfies Equal<RequiredKeys<TenantService>, (typeof serviceRequired)[number]>,
  true satisfies Equal<RequiredKeys<ServiceEnvVar>, (typeof envRequired)[number]>,
  true satisfies Equal<RequiredKeys<TenantIngress>, (typeof ingressRequired)[number]>,
  true satisfies Equal<RequiredKeys<TenantIngressTls>, (typeof tlsRequired)[number]>,
  true satisfies Equal<DriftPolicy, (typeof driftPolicies)[number]>,
];

type SchemaNode = Record<string, unknown>;
const root = schema as unknown as SchemaNode;
const defs = root['$defs'] as Record<string, SchemaNode>;

function resolve(node: SchemaNode): SchemaNode {
  const ref = node['$ref'];
  if (typeof ref !== 'string') return node;
  const def = defs[ref.replace('#/$defs/', '')];
  if (def === undefined) throw new Error(`unresolved $ref ${ref}`);
  return resolve(def);
}

function at(path: string[]): SchemaNode {
  let node = resolve(root);
  for (const segment of path) {
    node = resolve(segment === '[]' ? (node['items'] as SchemaNode) : (node['properties'] as Record<string, SchemaNode>)[segment] as SchemaNode);
  }
  return node;
}

/** Every schema property along the way must exist in the sample. */
function missingFromSample(node: SchemaNode, sample: unknown, path: string): string[] {
  const resolved = resolve(node);
  const missing: string[] = [];
  const properties = resolved['properties'] as Record<string, SchemaNode> | undefined;
  if (properties !== undefined && sample !== null && typeof sample === 'object') {
    for (const [key, child] of Object.entries(properties)) {
      const value = (sample as Record<string, unknown>)[key];
      if (value === undefined) missing.push(`${path}.${key}`);
      else missing.push(...missingFromSample(child, value, `${path}.${key}`));
    }
  }
  const items = resolved['items'] as SchemaNode | undefined;
  if (items !== undefined && Array.isArray(sample)) {
    if (sample.length === 0) missing.push(`${path}[]`);
    sample.forEach((item, i) => missing.push(...missingFromSample(items, item, `${path}[${i}]`)));
  }
  return missing;
}

function collectPatterns(node: unknown, out: Set<string>): Set<string> {
  if (Array.isArray(node)) node.forEach((n) => collectPatterns(n, out));
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'pattern' && typeof value === 'string') out.add(value);
      else collectPatterns(value, out);
    }
  }
  return out;
}

t.test('a fully populated sample typed from types.ts validates against the schema', async (t) => {
  t.equal(typeChecks.length, 9);
  const result = validateTenantDocument(full, 'tenants/full.yaml');
  t.same(result.ok ? [] : result.issues, []);
  t.ok(result.ok);
});

t.test('every schema property appears in the sample (and so in the types)', async (t) => {
  t.same(missingFromSample(root, full, '$'), []);
});

t.test('required fields match the types', async (t) => {
  const sorted = (list: readonly string[]): string[] => [...list].sort();
  t.same(sorted(at([])['required'] as string[]), sorted(docRequired));
  t.same(sorted(at(['metadata'])['required'] as string[]), sorted(metadataRequired));
  t.same(sorted(at(['spec'])['required'] as string[]), sorted(specRequired));
  t.same(sorted(at(['spec', 'configuration'])['required'] as string[]), sorted(configurationRequired));
  t.same(sorted(at(['spec', 'services', '[]'])['required'] as string[]), sorted(serviceRequired));
  t.same(sorted(at(['spec', 'services', '[]', 'env', '[]'])['required'] as string[]), sorted(envRequired));
  t.same(sorted(at(['spec', 'ingress'])['required'] as string[]), sorted(ingressRequired));
  t.same(sorted(at(['spec', 'ingress', 'tls'])['required'] as string[]), sorted(tlsRequired));
  t.equal(at(['spec', 'services', '[]', 'resources'])['required'], undefined);
});

t.test('enums, consts and bounds match the constants in types.ts and catalog.ts', async (t) => {
  t.equal(at(['apiVersion'])['const'], API_VERSION);
  t.equal(at(['kind'])['const'], TENANT_KIND);
  t.same(at(['spec', 'tier'])['enum'], [...TIERS]);
  t.same(at(['spec', 'cloudProvider'])['enum'], [...CLOUD_PROVIDERS]);
  t.same(at(['spec', 'driftPolicy'])['enum'], [...driftPolicies]);
  t.equal(at(['metadata', 'tenantId'])['maxLength'], MAX_TENANT_ID_LENGTH);
  t.equal(at(['metadata', 'tenantId'])['pattern'], DNS1123_LABEL.source);
  t.equal(at(['spec', 'configuration', 'storageGb'])['maximum'], MAX_STORAGE_GB);
  t.equal(at(['spec', 'configuration', 'storageGb'])['minimum'], MIN_STORAGE_GB);
});

t.test('unknown fields are rejected at every object level', async (t) => {
  const objects: string[][] = [
    [],
    ['metadata'],
    ['spec'],
    ['spec', 'configuration'],
    ['spec', 'services', '[]'],
    ['spec', 'services', '[]', 'resources'],
    ['spec', 'services', '[]', 'env', '[]'],
    ['spec', 'ingress'],
    ['spec', 'ingress', 'tls'],
  ];
  for (const path of objects) t.equal(at(path)['additionalProperties'], false, path.join('.') || '(root)');
});

t.test('every pattern in the schema has human wording for its errors', async (t) => {
  const patterns = [...collectPatterns(root, new Set())];
  t.ok(patterns.length > 5);
  t.same(
    patterns.filter((p) => PATTERN_MEANINGS[p] === undefined),
    [],
  );
});
