import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import cron from 'node-cron';
import { TenantdError } from '../core/errors.js';
import { TIERS, type Tier } from '../core/tenant/types.js';
import type { BackoffPolicy } from '../core/backoff.js';
import type { DeletionLimit } from '../core/deletion/guard.js';
import { JITTER_FACTOR, timingProblems, type ElectionTiming } from '../core/leader/election.js';
import { parseCommand, usageError, type CommandSpec, type FlagValues } from './args.js';

export const PROVIDERS = ['render', 'kubernetes', 'pulumi'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export type PollSchedule = { kind: 'interval'; seconds: number } | { kind: 'cron'; expression: string } | { kind: 'off' };

export interface DaemonConfig {
  /** Path or http(s) URL of the tenants repository; null = the embedded default under the data dir. */
  repo: string | null;
  branch: string;
  statusBranch: string | null;
  dataDir: string;
  provider: ProviderName;
  poll: PollSchedule;
  port: number;
  concurrency: number;
  gitToken: string | null;
  author: { name: string; email: string };
  backoff: BackoffPolicy;
  logFormat: 'human' | 'json';
  host: string;
  auth: { tokensFile: string | null; jwtSecret: string | null; jwksFile: string | null; issuer: string | null; audience: string | null; allowNoExp: boolean; insecureNoAuth: boolean };
  webhookSecrets: string[];
  driftIntervalSeconds: number;
  /** Least seconds between two status commits; status is committed only when a tenant's state changed. */
  statusIntervalSeconds: number;
  /** Seconds between `git gc --auto` runs on the repository; 0 = never. */
  gcIntervalSeconds: number;
  /** Event streams (`GET /api/v1/events`) one API token may hold open at once. */
  sseMaxStreams: number;
  /** Deletions one change may start without a person's approval (the mass-deletion breaker). */
  maxDeletions: DeletionLimit;
  /** Tiers whose every Apply waits for an approved plan (as `spec.approval: manual`). */
  approvalTiers: Tier[];
  kube: {
    kubeconfig: string | null;
    context: string | null;
    clustersFile: string | null;
    /** ClusterRole tenantd binds to itself (`subject`, a user name) in each tenant namespace; null = not done. */
    tenantRole: { clusterRole: string; subject: string } | null;
  };
  pulumi: { backend: string | null; project: string; organization: string; secretsProvider: string | null };
  /** YAML file naming where alerts go (see daemon/notifications-config.ts); null = no alerts. */
  notificationsFile: string | null;
  /** `--leader-elect`: several replicas, one active, by a Lease; null = a single daemon (the default). */
  leaderElection: LeaderElectionConfig | null;
}

export interface LeaderElectionConfig {
  /** null: the pod's namespace (service account), else the kubeconfig context's, else `default`. */
  namespace: string | null;
  name: string;
  identity: string;
  /** Where this replica's API is reached by the others (written into the Lease while it leads). */
  advertiseUrl: string;
  timing: ElectionTiming;
}

/** Each flag, its environment variable and how to read it. One table so help text and parsing agree. */
const FLAGS = {
  repo: { env: 'TENANTD_REPO', help: 'path or http(s) URL of the tenants repository (default: embedded, <data-dir>/tenants)' },
  branch: { env: 'TENANTD_BRANCH', help: 'branch to track (default main)' },
  'status-branch': { env: 'TENANTD_STATUS_BRANCH', help: 'commit status files to this branch instead of the tracked one' },
  'data-dir': { env: 'TENANTD_DATA_DIR', help: 'state, log and rendered output (default ./.tenantd)' },
  provider: { env: 'TENANTD_PROVIDER', help: `one of ${PROVIDERS.join(', ')} (default render)` },
  poll: { env: 'TENANTD_POLL', help: 'seconds between polls, a cron expression, or 0 to disable (default 30)' },
  port: { env: 'PORT', help: 'API port (default 8089)' },
  concurrency: { env: 'TENANTD_CONCURRENCY', help: 'tenants reconciled at once (default 4)' },
  'git-token': { env: 'TENANTD_GIT_TOKEN', help: 'token for an http(s) repository (never logged)' },
  'author-name': { env: 'TENANTD_AUTHOR_NAME', help: 'author of status commits (default tenantd)' },
  'author-email': { env: 'TENANTD_AUTHOR_EMAIL', help: 'author email of status commits (default tenantd@localhost)' },
  'retry-base': { env: 'TENANTD_RETRY_BASE', help: 'first retry delay in seconds (default 5)' },
  'retry-cap': { env: 'TENANTD_RETRY_CAP', help: 'largest retry delay in seconds (default 300)' },
  'log-format': { env: 'TENANTD_LOG_FORMAT', help: 'human (one line per tenant phase) or json (structured event lines) (default human)' },
  'drift-interval': { env: 'TENANTD_DRIFT_INTERVAL', help: 'seconds between drift checks of ACTIVE tenants, 0 = off (default 600)' },
  'status-interval': { env: 'TENANTD_STATUS_INTERVAL', help: 'least seconds between two status commits, which happen only when a tenant changed state (default 10)' },
  'gc-interval': { env: 'TENANTD_GC_INTERVAL', help: 'seconds between `git gc --auto` runs that pack loose objects, 0 = off (default 3600)' },
  'approval-tiers': { env: 'TENANTD_APPROVAL_TIERS', help: `comma-separated tiers (${TIERS.join(', ')}) whose plans wait for approval as if spec.approval were manual` },
  'max-deletions': { env: 'TENANTD_MAX_DELETIONS', help: 'tenants one change may deprovision without approval: a count or a % of the fleet, 0 = always ask (default: 5 or 10%, whichever is larger)' },
  kubeconfig: { env: 'TENANTD_KUBECONFIG', help: 'kubeconfig file (default: KUBECONFIG, ~/.kube/config, then in-cluster)' },
  'kube-context': { env: 'TENANTD_KUBE_CONTEXT', help: 'kubeconfig context (default: the current one)' },
  'clusters-file': { env: 'TENANTD_CLUSTERS_FILE', help: 'YAML mapping cloudProvider + region to a kubeconfig context' },
  'tenant-role': { env: 'TENANTD_TENANT_ROLE', help: 'ClusterRole to bind to --tenant-role-subject in each tenant namespace (least-privilege RBAC, see README)' },
  'tenant-role-subject': { env: 'TENANTD_TENANT_ROLE_SUBJECT', help: "tenantd's own user name on the cluster, e.g. system:serviceaccount:tenantd:tenantd" },
  'pulumi-backend': { env: 'TENANTD_PULUMI_BACKEND', help: 'Pulumi state backend URL (default file://<data-dir>/pulumi-state)' },
  'pulumi-project': { env: 'TENANTD_PULUMI_PROJECT', help: 'Pulumi project name (default tenantd)' },
  'pulumi-org': { env: 'TENANTD_PULUMI_ORG', help: 'Pulumi organization (default organization, the only one file backends accept)' },
  'pulumi-secrets-provider': { env: 'TENANTD_PULUMI_SECRETS_PROVIDER', help: 'passphrase (default; PULUMI_CONFIG_PASSPHRASE) or a KMS URL' },
  host: { env: 'TENANTD_HOST', help: 'address the API listens on (default 0.0.0.0)' },
  'tokens-file': { env: 'TENANTD_TOKENS_FILE', help: 'API tokens file (named, hashed, scoped); default: a generated admin token in <data-dir>' },
  'jwt-secret': { env: 'TENANTD_JWT_SECRET', help: 'accept HS256 JWTs signed with this secret (at least 32 bytes)' },
  'jwks-file': { env: 'TENANTD_JWKS_FILE', help: 'accept RS256/ES256 JWTs signed by these keys' },
  'jwt-issuer': { env: 'TENANTD_JWT_ISSUER', help: 'required JWT iss' },
  'jwt-audience': { env: 'TENANTD_JWT_AUDIENCE', help: 'required JWT aud' },
  'jwt-allow-no-exp': { env: 'TENANTD_JWT_ALLOW_NO_EXP', help: 'accept JWTs without an exp claim (refused by default)', boolean: true },
  'insecure-no-auth': { env: 'TENANTD_INSECURE_NO_AUTH', help: 'serve the API without authentication (never in production)', boolean: true },
  'sse-max-streams': { env: 'TENANTD_SSE_MAX_STREAMS', help: 'event streams one API token may hold open at once; more get 429 (default 16)' },
  'notifications-file': { env: 'TENANTD_NOTIFICATIONS_FILE', help: 'YAML file of alert receivers (webhook, Slack) for Failed, Stalled, Invalid, held deletions and recovery; unset = no alerts' },
  'webhook-secret': { env: 'TENANTD_WEBHOOK_SECRET', help: 'secret for git webhook signatures; comma-separated while rotating; unset = webhooks off' },
  'leader-elect': { env: 'TENANTD_LEADER_ELECT', help: 'run as one of several replicas: only the holder of a Lease reconciles and writes (off by default)', boolean: true },
  'leader-elect-lease-namespace': { env: 'TENANTD_LEADER_ELECT_LEASE_NAMESPACE', help: "namespace of the Lease (default: the pod's, else the kubeconfig context's, else default)" },
  'leader-elect-lease-name': { env: 'TENANTD_LEADER_ELECT_LEASE_NAME', help: 'name of the Lease (default tenantd)' },
  'leader-elect-identity': { env: 'TENANTD_LEADER_ELECT_IDENTITY', help: 'this replica\'s holder identity (default <hostname>_<random uuid>)' },
  'leader-elect-lease-duration': { env: 'TENANTD_LEADER_ELECT_LEASE_DURATION', help: 'seconds a standby waits before taking over an unrenewed lease (default 15)' },
  'leader-elect-renew-deadline': { env: 'TENANTD_LEADER_ELECT_RENEW_DEADLINE', help: 'seconds the leader keeps trying to renew before it stops writing (default 10)' },
  'leader-elect-retry-period': { env: 'TENANTD_LEADER_ELECT_RETRY_PERIOD', help: 'seconds between attempts to acquire or renew (default 2)' },
  'advertise-url': { env: 'TENANTD_ADVERTISE_URL', help: 'URL at which the other replicas reach this one\'s API (default http://<first non-loopback IPv4>:<port>)' },
} as const satisfies Record<string, { env: string; help: string; boolean?: true }>;
type FlagName = keyof typeof FLAGS;

/** `tenantd daemon`'s flags, for the shared argument parser and its help. */
export const DAEMON_COMMAND: CommandSpec = {
  name: 'daemon',
  synopsis: '[flags]',
  summary: 'Watch the tenants repository, reconcile every tenant whose file changed, and serve the API.',
  flags: Object.fromEntries(Object.entries(FLAGS).map(([flag, f]) => [flag, { type: 'boolean' in f ? 'boolean' : 'string', help: f.help, env: f.env }])),
};

const bad = (field: string, value: string, reason: string): TenantdError =>
  new TenantdError('E_CONFIG', 'stalled', `--${field} (${FLAGS[field as FlagName]?.env ?? field}) = ${JSON.stringify(value)}: ${reason}`, { field, value });

function intIn(field: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) throw bad(field, raw, `must be a whole number between ${min} and ${max}`);
  const n = Number(raw);
  if (n < min || n > max) throw bad(field, raw, `must be between ${min} and ${max}`);
  return n;
}

export function parsePoll(raw: string): PollSchedule {
  const v = raw.trim();
  if (/^\d+$/.test(v)) {
    const seconds = Number(v);
    if (seconds === 0) return { kind: 'off' };
    if (seconds > 86_400) throw bad('poll', raw, 'must be at most 86400 seconds');
    return { kind: 'interval', seconds };
  }
  if (/^\d+s$/.test(v)) return parsePoll(v.slice(0, -1));
  if (cron.validate(v)) return { kind: 'cron', expression: v };
  throw bad('poll', raw, 'must be a number of seconds or a valid cron expression (e.g. "*/30 * * * * *")');
}

export function parseApprovalTiers(raw: string | undefined): Tier[] {
  const tiers = (raw ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  for (const tier of tiers) if (!(TIERS as readonly string[]).includes(tier)) throw bad('approval-tiers', raw as string, `unknown tier "${tier}" (tiers: ${TIERS.join(', ')})`);
  return [...new Set(tiers as Tier[])].sort();
}

export function parseMaxDeletions(raw: string | undefined): DeletionLimit {
  if (raw === undefined) return { kind: 'default' };
  const v = raw.trim();
  if (/^\d+%$/.test(v)) {
    const percent = Number(v.slice(0, -1));
    if (percent > 100) throw bad('max-deletions', raw, 'a percentage must be at most 100%');
    return { kind: 'percent', percent };
  }
  return { kind: 'count', n: intIn('max-deletions', v, 0, 1_000_000) };
}

/** Flags win over environment variables, which win over defaults. A bad value is an E_CONFIG error now, not a crash later. */
export function parseDaemonConfig(argv: string[], env: NodeJS.ProcessEnv, cwd: string): DaemonConfig {
  const parsed = parseCommand(DAEMON_COMMAND, argv);
  if (parsed.help) throw usageError(DAEMON_COMMAND, '--help is answered by the command line, not read as configuration');
  return daemonConfigFrom(parsed.values, env, cwd);
}

/** The configuration from parsed flags (see parseCommand) and the environment. */
export function daemonConfigFrom(flags: FlagValues, env: NodeJS.ProcessEnv, cwd: string): DaemonConfig {
  const values = Object.fromEntries(Object.entries(flags).map(([k, v]) => [k, v === true ? 'true' : v === false ? undefined : v]));
  const get = (flag: FlagName): string | undefined => {
    const v = values[flag] ?? env[FLAGS[flag].env];
    return v === undefined || v === '' ? undefined : v;
  };
  const provider = get('provider') ?? 'render';
  if (!(PROVIDERS as readonly string[]).includes(provider)) throw bad('provider', provider, `must be one of ${PROVIDERS.join(', ')}`);
  const branch = get('branch') ?? 'main';
  const refName = /^(?!\/|.*(\.\.|\/\/|@\{|\\))[A-Za-z0-9._/-]+(?<![./])$/;
  if (!refName.test(branch)) throw bad('branch', branch, 'is not a valid branch name');
  const statusBranch = get('status-branch') ?? null;
  if (statusBranch !== null && !refName.test(statusBranch)) throw bad('status-branch', statusBranch, 'is not a valid branch name');
  const repo = get('repo') ?? null;
  if (repo !== null && /^[a-z]+:\/\//i.test(repo) && !/^https?:\/\//i.test(repo)) {
    throw bad('repo', repo, 'only local paths and http(s) URLs are supported');
  }
  const logFormat = get('log-format') ?? 'human';
  if (logFormat !== 'human' && logFormat !== 'json') throw bad('log-format', logFormat, 'must be human or json');
  const retryBase = intIn('retry-base', get('retry-base') ?? '5', 1, 3600);
  const retryCap = intIn('retry-cap', get('retry-cap') ?? '300', 1, 86_400);
  if (retryCap < retryBase) throw bad('retry-cap', String(retryCap), 'must not be smaller than --retry-base');
  const flag = (name: FlagName): boolean => {
    const v = get(name) ?? 'false';
    if (!['true', 'false', '1', '0'].includes(v)) throw bad(name, v, 'must be true or false');
    return v === 'true' || v === '1';
  };
  const tenantRole = get('tenant-role') ?? null;
  const tenantRoleSubject = get('tenant-role-subject') ?? null;
  if ((tenantRole === null) !== (tenantRoleSubject === null)) {
    const [given, missing]: [FlagName, FlagName] = tenantRole === null ? ['tenant-role-subject', 'tenant-role'] : ['tenant-role', 'tenant-role-subject'];
    throw bad(given, get(given) ?? '', `needs --${missing} (${FLAGS[missing].env}) too`);
  }
  if (tenantRole !== null && !/^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/.test(tenantRole)) throw bad('tenant-role', tenantRole, 'is not a ClusterRole name');
  if (tenantRoleSubject !== null && tenantRoleSubject.trim() === '') throw bad('tenant-role-subject', tenantRoleSubject, 'must name a user, e.g. system:serviceaccount:tenantd:tenantd');
  const port = intIn('port', get('port') ?? '8089', 0, 65_535);
  const host = get('host') ?? '0.0.0.0';
  const file = (flag: FlagName): string | null => {
    const v = get(flag);
    return v === undefined ? null : path.resolve(cwd, v);
  };
  return {
    host,
    leaderElection: flag('leader-elect') ? leaderElectionConfig(get, host, port) : null,
    kube: {
      kubeconfig: file('kubeconfig'),
      context: get('kube-context') ?? null,
      clustersFile: file('clusters-file'),
      tenantRole: tenantRole !== null && tenantRoleSubject !== null ? { clusterRole: tenantRole, subject: tenantRoleSubject } : null,
    },
    pulumi: {
      backend: get('pulumi-backend') ?? null,
      project: get('pulumi-project') ?? 'tenantd',
      organization: get('pulumi-org') ?? 'organization',
      secretsProvider: get('pulumi-secrets-provider') ?? null,
    },
    driftIntervalSeconds: intIn('drift-interval', get('drift-interval') ?? '600', 0, 7 * 86_400),
    statusIntervalSeconds: intIn('status-interval', get('status-interval') ?? '10', 0, 86_400),
    gcIntervalSeconds: intIn('gc-interval', get('gc-interval') ?? '3600', 0, 7 * 86_400),
    sseMaxStreams: intIn('sse-max-streams', get('sse-max-streams') ?? '16', 1, 100_000),
    maxDeletions: parseMaxDeletions(get('max-deletions')),
    approvalTiers: parseApprovalTiers(get('approval-tiers')),
    auth: {
      tokensFile: file('tokens-file'),
      jwtSecret: get('jwt-secret') ?? null,
      jwksFile: file('jwks-file'),
      issuer: get('jwt-issuer') ?? null,
      audience: get('jwt-audience') ?? null,
      allowNoExp: flag('jwt-allow-no-exp'),
      insecureNoAuth: flag('insecure-no-auth'),
    },
    notificationsFile: file('notifications-file'),
    webhookSecrets: (get('webhook-secret') ?? '').split(',').map((x) => x.trim()).filter(Boolean),
    repo: repo === null || /^https?:\/\//i.test(repo) ? repo : path.resolve(cwd, repo),
    branch,
    statusBranch,
    dataDir: path.resolve(cwd, get('data-dir') ?? '.tenantd'),
    provider: provider as ProviderName,
    poll: parsePoll(get('poll') ?? '30'),
    port,
    concurrency: intIn('concurrency', get('concurrency') ?? '4', 1, 256),
    gitToken: get('git-token') ?? null,
    author: { name: get('author-name') ?? 'tenantd', email: get('author-email') ?? 'tenantd@localhost' },
    backoff: { baseMs: retryBase * 1000, capMs: retryCap * 1000 },
    logFormat,
  };
}

/** Seconds as a decimal number (`15`, `1.5`, `15s`), in milliseconds. */
function secondsIn(field: FlagName, raw: string): number {
  const v = raw.trim().replace(/s$/, '');
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0 || Number(v) > 3600) throw bad(field, raw, 'must be a number of seconds greater than 0 and at most 3600');
  return Math.round(Number(v) * 1000);
}

function leaderElectionConfig(get: (flag: FlagName) => string | undefined, host: string, port: number): LeaderElectionConfig {
  const timing: ElectionTiming = {
    leaseDurationMs: secondsIn('leader-elect-lease-duration', get('leader-elect-lease-duration') ?? '15'),
    renewDeadlineMs: secondsIn('leader-elect-renew-deadline', get('leader-elect-renew-deadline') ?? '10'),
    retryPeriodMs: secondsIn('leader-elect-retry-period', get('leader-elect-retry-period') ?? '2'),
  };
  // client-go's NewLeaderElector rules (timingProblems), each reported on the flag to change.
  if (timing.leaseDurationMs <= timing.renewDeadlineMs) {
    throw bad('leader-elect-lease-duration', String(timing.leaseDurationMs / 1000), `must be greater than --leader-elect-renew-deadline (${timing.renewDeadlineMs / 1000} s)`);
  }
  if (timing.renewDeadlineMs <= JITTER_FACTOR * timing.retryPeriodMs) {
    throw bad('leader-elect-renew-deadline', String(timing.renewDeadlineMs / 1000), `must be greater than ${JITTER_FACTOR} × --leader-elect-retry-period (${timing.retryPeriodMs / 1000} s)`);
  }
  const problems = timingProblems(timing);
  if (problems.length > 0) throw bad('leader-elect-lease-duration', String(timing.leaseDurationMs / 1000), problems.join('; '));
  const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
  const name = get('leader-elect-lease-name') ?? 'tenantd';
  if (!dns1123.test(name) || name.length > 253) throw bad('leader-elect-lease-name', name, 'must be a DNS-1123 subdomain (a Lease name)');
  const namespace = get('leader-elect-lease-namespace') ?? null;
  if (namespace !== null && (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace) || namespace.length > 63)) {
    throw bad('leader-elect-lease-namespace', namespace, 'must be a DNS-1123 label (a namespace name)');
  }
  const identity = get('leader-elect-identity') ?? `${os.hostname()}_${randomUUID()}`;
  if (identity.length > 253 || /\s/.test(identity)) throw bad('leader-elect-identity', identity, 'must be at most 253 characters without spaces');
  const advertised = get('advertise-url');
  if (advertised !== undefined && !/^https?:\/\/[^/\s]+\/?$/i.test(advertised)) throw bad('advertise-url', advertised, 'must be an http(s) URL with no path, such as http://10.0.0.7:8089');
  return { namespace, name, identity, advertiseUrl: (advertised ?? defaultAdvertiseUrl(host, port)).replace(/\/$/, ''), timing };
}

/** Where the others reach this replica: its listen address, or when that is every address, its first non-loopback IPv4 (a pod's IP). */
function defaultAdvertiseUrl(host: string, port: number): string {
  if (host !== '0.0.0.0' && host !== '::') return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const ipv4 = Object.values(os.networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal);
  return `http://${ipv4?.address ?? '127.0.0.1'}:${port}`;
}
