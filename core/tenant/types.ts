/**
 * The TenantInfrastructure document: one file per tenant at `tenants/<tenantId>.yaml`.
 * `schemas/tenant.schema.json` is the source of truth; these types mirror it and a test keeps
 * the two in step (every property in the schema is named here and the reverse).
 */
import { printable } from '../printable.js';

export const API_VERSION = 'tenantd.io/v1alpha1';
export const TENANT_KIND = 'TenantInfrastructure';

export const TIERS = ['starter', 'professional', 'enterprise'] as const;
export type Tier = (typeof TIERS)[number];

export const CLOUD_PROVIDERS = ['AZURE', 'AWS', 'GCP'] as const;
export type CloudProvider = (typeof CLOUD_PROVIDERS)[number];

export interface ResourceRequirements {
  /** Kubernetes CPU quantity, e.g. "250m" or "2". */
  cpu?: string;
  /** Kubernetes memory quantity, e.g. "256Mi" or "2Gi". */
  memory?: string;
}

export interface ServiceEnvVar {
  name: string;
  /** Plain configuration only; secret values never belong in git. */
  value: string;
}

export interface TenantService {
  name: string;
  image: string;
  replicas?: number;
  port: number;
  resources?: ResourceRequirements;
  env?: ServiceEnvVar[];
}

export interface TenantIngressTls {
  enabled: boolean;
  /** Name of an existing TLS secret or a cert-manager issuer-created one; defaults to `<tenant>-tls`. */
  secretName?: string;
  clusterIssuer?: string;
}

export interface TenantIngress {
  hosts: string[];
  tls?: TenantIngressTls;
  /** Which service receives traffic; defaults to the first service. */
  service?: string;
}

export interface TenantConfiguration {
  databaseSize: string;
  storageGb: number;
  enableHa: boolean;
}

export type DriftPolicy = 'correct' | 'report';

export interface TenantSpec {
  tier: Tier;
  cloudProvider: CloudProvider;
  region: string;
  configuration: TenantConfiguration;
  services?: TenantService[];
  ingress?: TenantIngress;
  suspend?: boolean;
  deletionProtection?: boolean;
  driftPolicy?: DriftPolicy;
  /** Verify phase timeout; defaults from the tier. */
  verifyTimeoutSeconds?: number;
  /** Take ownership of fields another field manager holds (Kubernetes provider). */
  forceConflicts?: boolean;
  /** manual: Apply waits until a person approves the plan's digest (core/approval/plan-digest.ts). */
  approval?: ApprovalPolicy;
}

export type ApprovalPolicy = 'auto' | 'manual';

export interface TenantMetadata {
  tenantId: string;
  name: string;
  labels?: Record<string, string>;
}

export interface TenantInfrastructureDocument {
  apiVersion: typeof API_VERSION;
  kind: typeof TENANT_KIND;
  metadata: TenantMetadata;
  spec: TenantSpec;
}

/** One problem found in a tenant file, with its position in the YAML source when known. */
export interface ValidationIssue {
  file: string;
  /** 1-based; 0 when the problem has no position (e.g. an empty file). */
  line: number;
  /** 1-based; 0 when unknown. */
  column: number;
  /** Dotted field path, e.g. `spec.configuration.storageGb`; empty for the whole document. */
  path: string;
  message: string;
}

export type TenantParseResult =
  /** `warnings`: valid but worth acting on (a retired database size), each with its position. */
  | { ok: true; tenant: TenantInfrastructureDocument; warnings: ValidationIssue[] }
  | { ok: false; issues: ValidationIssue[] };

/** Namespaces are `tenant-<tenantId>`; Kubernetes caps names at 63 characters. */
export const NAMESPACE_PREFIX = 'tenant-';
export const MAX_TENANT_ID_LENGTH = 63 - NAMESPACE_PREFIX.length;
export const namespaceFor = (tenantId: string): string => `${NAMESPACE_PREFIX}${tenantId}`;
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Formats an issue the way `tenantd validate` prints it: `file:line:col: path: message`. */
export function formatIssue(issue: ValidationIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.column}` : issue.file;
  // A file name may hold control characters (a newline): the issue stays one line.
  return printable(issue.path ? `${where}: ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`);
}

/** A warning as `tenantd validate` prints it: `file:line:col: warning: path: message` (the compiler convention). */
export const formatWarning = (issue: ValidationIssue): string => formatIssue({ ...issue, path: issue.path ? `warning: ${issue.path}` : 'warning' });
