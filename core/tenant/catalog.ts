import catalogData from './catalog-data.json' with { type: 'json' };
import { CLOUD_PROVIDERS, type CloudProvider, type Tier } from './types.js';
import { isRecord } from '../is-record.js';

/**
 * The cloud catalogs (regions and managed-database sizes) live in one data file,
 * `catalog-data.json`, with the sources they were taken from and the date they were compiled;
 * this module gives them types and the rules around them. `npm run schema` copies the same data
 * into `schemas/tenant.schema.json` so an editor catches a bad region or size as you type.
 */
export interface SizeData {
  vCpu: number;
  memoryMiB: number;
}
export interface RetiredSizeData extends SizeData {
  /** A current size of the same provider with the same vCPU count (or the nearest larger one). */
  replacement: string;
}
export interface CustomSizeRule {
  /** How the name is written, for messages: `db-custom-<vCPU>-<memory MiB>`. */
  name: string;
  vCpu: { min: number; max: number; /** Counts above this one must be even. */ evenAbove: number };
  memoryMiB: { multipleOf: number; min: number; minPerVCpu: number; maxPerVCpu: number };
}
export interface ProviderCatalogData {
  /** The managed database service the sizes are named after. */
  service: string;
  sources: Array<{ url: string; about: string; asOf?: string }>;
  regions: string[];
  sizes: Record<string, SizeData>;
  /** Sizes the cloud no longer sells: still accepted (existing tenants keep working), with a warning. */
  retiredSizes: Array<{ reason: string; sizes: Record<string, RetiredSizeData> }>;
  customSizes?: CustomSizeRule;
}
export interface CatalogData {
  compiled: string;
  providers: Record<CloudProvider, ProviderCatalogData>;
}

export const CATALOG: CatalogData = checkedCatalog(catalogData);

/**
 * The data file's shape, checked once at load: TypeScript cannot type a JSON module this varied
 * (it widens the size maps of the retired groups), and a hand-edited catalog should fail loudly.
 */
function checkedCatalog(data: unknown): CatalogData {
  const bad = (where: string): never => {
    throw new Error(`core/tenant/catalog-data.json: ${where} is malformed`);
  };
  const checkSizes = (v: unknown, where: string, retired: boolean): void => {
    if (!isRecord(v)) bad(where);
    for (const [name, s] of Object.entries(v as Record<string, unknown>)) {
      const ok = isRecord(s) && typeof s['vCpu'] === 'number' && s['vCpu'] > 0 && Number.isInteger(s['memoryMiB']) && (s['memoryMiB'] as number) > 0;
      if (!ok || (retired && typeof s['replacement'] !== 'string')) bad(`${where}.${name}`);
    }
  };
  if (!isRecord(data) || typeof data['compiled'] !== 'string' || !isRecord(data['providers'])) bad('the document');
  const providers = (data as { providers: Record<string, unknown> }).providers;
  for (const p of CLOUD_PROVIDERS) {
    const c = providers[p];
    if (!isRecord(c) || typeof c['service'] !== 'string' || !Array.isArray(c['sources'])) bad(p);
    const cat = c as Record<string, unknown>;
    if (!Array.isArray(cat['regions']) || !cat['regions'].every((r) => typeof r === 'string')) bad(`${p}.regions`);
    checkSizes(cat['sizes'], `${p}.sizes`, false);
    if (!Array.isArray(cat['retiredSizes'])) bad(`${p}.retiredSizes`);
    (cat['retiredSizes'] as unknown[]).forEach((g, i) => {
      if (!isRecord(g) || typeof g['reason'] !== 'string') bad(`${p}.retiredSizes[${i}]`);
      checkSizes((g as Record<string, unknown>)['sizes'], `${p}.retiredSizes[${i}].sizes`, true);
    });
  }
  return data as CatalogData;
}

/** Regions tenantd knows how to place a tenant in, per cloud provider. */
export const REGIONS: Readonly<Record<CloudProvider, readonly string[]>> = mapProviders((p) => CATALOG.providers[p].regions);

export interface DatabaseSize {
  /** Kubernetes CPU quantity the database pod requests. */
  cpu: string;
  /** Kubernetes memory quantity the database pod requests. */
  memory: string;
  /** Millicores, for quota arithmetic. */
  milliCpu: number;
  /** Mebibytes, for quota arithmetic. */
  memoryMi: number;
}

const size = ({ vCpu, memoryMiB }: SizeData): DatabaseSize => {
  const milliCpu = Math.round(vCpu * 1000);
  return {
    cpu: milliCpu % 1000 === 0 ? String(milliCpu / 1000) : `${milliCpu}m`,
    memory: memoryMiB % 1024 === 0 ? `${memoryMiB / 1024}Gi` : `${memoryMiB}Mi`,
    milliCpu,
    memoryMi: memoryMiB,
  };
};

/** Database sizes each provider sells today, named as the cloud names them, smallest first. */
export const DATABASE_SIZES: Readonly<Record<CloudProvider, Readonly<Record<string, DatabaseSize>>>> = mapProviders((p) =>
  Object.fromEntries(Object.entries(CATALOG.providers[p].sizes).map(([name, s]) => [name, size(s)])),
);

export interface RetiredDatabaseSize {
  size: DatabaseSize;
  replacement: string;
  reason: string;
}

/** Sizes a provider no longer sells, still read from existing tenant files. */
export const RETIRED_DATABASE_SIZES: Readonly<Record<CloudProvider, Readonly<Record<string, RetiredDatabaseSize>>>> = mapProviders((p) =>
  Object.fromEntries(
    CATALOG.providers[p].retiredSizes.flatMap((group) =>
      Object.entries(group.sizes).map(([name, s]) => [name, { size: size(s), replacement: s.replacement, reason: group.reason }]),
    ),
  ),
);

export interface TierPolicy {
  /** Hard cap on `storageGb` for the tier. */
  maxStorageGb: number;
  maxServices: number;
  maxReplicasPerService: number;
  defaultReplicas: number;
  /** Largest database size (by vCPU) the tier may request. */
  maxDatabaseMilliCpu: number;
  /** Largest database size (by memory) the tier may request, so the database fits the namespace quota. */
  maxDatabaseMemoryMi: number;
  haAllowed: boolean;
  /** ResourceQuota for the tenant namespace. */
  quota: { cpu: string; memory: string; pods: number; storage: string };
  /** LimitRange default per container. */
  containerDefaults: { cpu: string; memory: string };
  verifyTimeoutSeconds: number;
}

export const TIER_POLICIES: Readonly<Record<Tier, TierPolicy>> = {
  starter: {
    maxStorageGb: 100,
    maxServices: 2,
    maxReplicasPerService: 2,
    defaultReplicas: 1,
    // Every cloud's smallest dedicated or burstable class has 2 vCPUs (db.t4g.micro, Standard_B2s).
    maxDatabaseMilliCpu: 2000,
    maxDatabaseMemoryMi: 4096,
    haAllowed: false,
    quota: { cpu: '4', memory: '8Gi', pods: 20, storage: '200Gi' },
    containerDefaults: { cpu: '250m', memory: '256Mi' },
    verifyTimeoutSeconds: 300,
  },
  professional: {
    maxStorageGb: 2048,
    maxServices: 10,
    maxReplicasPerService: 10,
    defaultReplicas: 2,
    maxDatabaseMilliCpu: 4000,
    maxDatabaseMemoryMi: 32768,
    haAllowed: true,
    quota: { cpu: '32', memory: '64Gi', pods: 200, storage: '4Ti' },
    containerDefaults: { cpu: '500m', memory: '512Mi' },
    verifyTimeoutSeconds: 600,
  },
  enterprise: {
    maxStorageGb: 16384,
    maxServices: 50,
    maxReplicasPerService: 50,
    defaultReplicas: 3,
    maxDatabaseMilliCpu: 8000,
    maxDatabaseMemoryMi: 131072,
    haAllowed: true,
    quota: { cpu: '256', memory: '512Gi', pods: 2000, storage: '32Ti' },
    containerDefaults: { cpu: '1', memory: '1Gi' },
    verifyTimeoutSeconds: 900,
  },
};

/** The absolute storage bound the schema enforces, whatever the tier. */
export const MAX_STORAGE_GB = 16384;
export const MIN_STORAGE_GB = 1;

/** What a database size name means for a provider. */
export type DatabaseSizeLookup =
  | { kind: 'current'; size: DatabaseSize }
  | { kind: 'custom'; size: DatabaseSize }
  | { kind: 'retired'; size: DatabaseSize; replacement: string; reason: string }
  /** A custom machine type whose numbers break the provider's rules (each rule broken, in words). */
  | { kind: 'invalid-custom'; problems: string[] }
  | { kind: 'unknown' };

const own = <T>(record: Readonly<Record<string, T>>, key: string): T | undefined =>
  Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;

export function lookupDatabaseSize(provider: CloudProvider, name: string): DatabaseSizeLookup {
  const current = own(DATABASE_SIZES[provider], name);
  if (current) return { kind: 'current', size: current };
  const retired = own(RETIRED_DATABASE_SIZES[provider], name);
  if (retired) return { kind: 'retired', ...retired };
  const rule = CATALOG.providers[provider].customSizes;
  const custom = rule ? parseCustomSize(name) : null;
  if (!rule || !custom) return { kind: 'unknown' };
  const problems = customSizeProblems(rule, custom.vCpu, custom.memoryMiB);
  return problems.length ? { kind: 'invalid-custom', problems } : { kind: 'custom', size: size(custom) };
}

/** The size a name stands for (current, custom or retired); undefined when the provider has no such size. */
export function databaseSizeSpec(provider: CloudProvider, name: string): DatabaseSize | undefined {
  const found = lookupDatabaseSize(provider, name);
  return 'size' in found ? found.size : undefined;
}

/**
 * `db-custom-<vCPU>-<MiB>`: the shape of a Cloud SQL custom machine type name. The schema holds a
 * stricter pattern (it also encodes the vCPU rule); the memory rules need arithmetic.
 */
const CUSTOM_NAME = /^db-custom-([1-9][0-9]*)-([1-9][0-9]*)$/;

function parseCustomSize(name: string): SizeData | null {
  const m = CUSTOM_NAME.exec(name);
  return m ? { vCpu: Number(m[1]), memoryMiB: Number(m[2]) } : null;
}

function customSizeProblems(rule: CustomSizeRule, vCpu: number, memoryMiB: number): string[] {
  const problems: string[] = [];
  const { min, max, evenAbove } = rule.vCpu;
  if (vCpu < min || vCpu > max || (vCpu > evenAbove && vCpu % 2 !== 0)) {
    problems.push(`the vCPU count must be ${min} or an even number from ${evenAbove + 1} to ${max} (got ${vCpu})`);
  }
  const mem = rule.memoryMiB;
  if (memoryMiB % mem.multipleOf !== 0) problems.push(`memory must be a multiple of ${mem.multipleOf} MiB (got ${memoryMiB})`);
  if (memoryMiB < mem.min) problems.push(`memory must be at least ${mem.min} MiB (got ${memoryMiB})`);
  const perVCpu = memoryMiB / vCpu;
  if (perVCpu < mem.minPerVCpu || perVCpu > mem.maxPerVCpu) {
    problems.push(
      `memory must be ${gib(mem.minPerVCpu)} to ${gib(mem.maxPerVCpu)} per vCPU, ${Math.ceil((mem.minPerVCpu * vCpu) / mem.multipleOf) * mem.multipleOf}–${mem.maxPerVCpu * vCpu} MiB for ${vCpu} vCPU (got ${memoryMiB})`,
    );
  }
  return problems;
}

/** The schema's pattern for custom machine type names: `db-custom-`, 1 or an even vCPU count up to 96, `-`, MiB. */
export const CUSTOM_SIZE_PATTERN = '^db-custom-(1|[2468]|[1-8][02468]|9[0246])-[1-9][0-9]*$';

/** Why a size is too big for a tier, or null when it fits. */
export function tierSizeProblem(tier: Tier, s: DatabaseSize): string | null {
  const policy = TIER_POLICIES[tier];
  const cpuOver = s.milliCpu > policy.maxDatabaseMilliCpu;
  const memOver = s.memoryMi > policy.maxDatabaseMemoryMi;
  if (!cpuOver && !memOver) return null;
  const limits = [cpuOver ? `${policy.maxDatabaseMilliCpu / 1000} vCPU` : null, memOver ? `${gib(policy.maxDatabaseMemoryMi)} of memory` : null].filter(Boolean);
  return `exceeds the ${tier} tier limit of ${limits.join(' and ')}`;
}

/** Current named sizes that fit a tier, smallest first (what a message suggests). */
export function sizesWithinTier(provider: CloudProvider, tier: Tier): string[] {
  return Object.entries(DATABASE_SIZES[provider])
    .filter(([, s]) => tierSizeProblem(tier, s) === null)
    .map(([name]) => name);
}

/** `2 vCPU, 8 GiB`. */
export const describeSize = (s: DatabaseSize): string => `${s.milliCpu / 1000} vCPU, ${gib(s.memoryMi)}`;

function gib(mib: number): string {
  return `${Number((mib / 1024).toFixed(2))} GiB`;
}

/**
 * The catalog name a near miss most likely meant: another letter case, a missing `Standard_` or
 * `db.` prefix, or the tier-prefixed Azure SKU Terraform and the CLI use (`GP_Standard_D2s_v3`).
 */
export function suggestDatabaseSize(provider: CloudProvider, name: string): string | undefined {
  const key = (n: string): string => {
    let k = n.trim().toLowerCase();
    if (provider === 'AZURE') k = k.replace(/^(b|gp|mo)_(?=standard_)/, '').replace(/^(?!standard_)(?=[bde]\d)/, 'standard_');
    if (provider === 'AWS' && !k.startsWith('db.')) k = `db.${k}`;
    return k;
  };
  const wanted = key(name);
  const names = [...Object.keys(DATABASE_SIZES[provider]), ...Object.keys(RETIRED_DATABASE_SIZES[provider])];
  return names.find((n) => n !== name && key(n) === wanted);
}

/** A region as another cloud or a person would write it (`East US`, `us-east1`) mapped to this provider's name. */
export function suggestRegion(provider: CloudProvider, region: string): { region: string } | { provider: CloudProvider } | undefined {
  const key = (r: string): string => r.toLowerCase().replace(/[^a-z0-9]/g, '');
  const match = REGIONS[provider].find((r) => r !== region && key(r) === key(region));
  if (match) return { region: match };
  const other = CLOUD_PROVIDERS.find((p) => p !== provider && REGIONS[p].includes(region));
  return other ? { provider: other } : undefined;
}

function mapProviders<T>(fn: (p: CloudProvider) => T): Record<CloudProvider, T> {
  return Object.fromEntries(CLOUD_PROVIDERS.map((p) => [p, fn(p)])) as Record<CloudProvider, T>;
}
