import type { CloudProvider, Tier } from './types.js';

/** Regions tenantd knows how to place a tenant in, per cloud provider. */
export const REGIONS: Readonly<Record<CloudProvider, readonly string[]>> = {
  AWS: ['us-east-1', 'us-east-2', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-southeast-1', 'ap-northeast-1'],
  AZURE: ['eastus', 'eastus2', 'westus2', 'westeurope', 'northeurope', 'southeastasia', 'uksouth'],
  GCP: ['us-central1', 'us-east1', 'us-west1', 'europe-west1', 'europe-west4', 'asia-southeast1', 'asia-northeast1'],
};

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

const size = (milliCpu: number, memoryMi: number): DatabaseSize => ({
  cpu: milliCpu % 1000 === 0 ? String(milliCpu / 1000) : `${milliCpu}m`,
  memory: memoryMi % 1024 === 0 ? `${memoryMi / 1024}Gi` : `${memoryMi}Mi`,
  milliCpu,
  memoryMi,
});

/** Database sizes per provider, named as each cloud names its managed database classes. */
export const DATABASE_SIZES: Readonly<Record<CloudProvider, Readonly<Record<string, DatabaseSize>>>> = {
  AWS: {
    'db.t3.micro': size(500, 1024),
    'db.t3.small': size(1000, 2048),
    'db.t3.medium': size(2000, 4096),
    'db.m5.large': size(2000, 8192),
    'db.m5.xlarge': size(4000, 16384),
    'db.r5.2xlarge': size(8000, 65536),
  },
  AZURE: {
    B_Gen5_1: size(1000, 2048),
    B_Gen5_2: size(2000, 4096),
    GP_Gen5_2: size(2000, 10240),
    GP_Gen5_4: size(4000, 20480),
    MO_Gen5_8: size(8000, 65536),
  },
  GCP: {
    'db-f1-micro': size(500, 614),
    'db-g1-small': size(1000, 1740),
    'db-custom-2-7680': size(2000, 7680),
    'db-custom-4-15360': size(4000, 15360),
    'db-custom-8-53248': size(8000, 53248),
  },
};

export interface TierPolicy {
  /** Hard cap on `storageGb` for the tier. */
  maxStorageGb: number;
  maxServices: number;
  maxReplicasPerService: number;
  defaultReplicas: number;
  /** Largest database size (by CPU) the tier may request. */
  maxDatabaseMilliCpu: number;
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
    maxDatabaseMilliCpu: 1000,
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
    haAllowed: true,
    quota: { cpu: '256', memory: '512Gi', pods: 2000, storage: '32Ti' },
    containerDefaults: { cpu: '1', memory: '1Gi' },
    verifyTimeoutSeconds: 900,
  },
};

/** The absolute storage bound the schema enforces, whatever the tier. */
export const MAX_STORAGE_GB = 16384;
export const MIN_STORAGE_GB = 1;

export function databaseSizeSpec(provider: CloudProvider, name: string): DatabaseSize | undefined {
  return Object.prototype.hasOwnProperty.call(DATABASE_SIZES[provider], name) ? DATABASE_SIZES[provider][name] : undefined;
}
