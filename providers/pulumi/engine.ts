/**
 * The Pulumi engine behind the `pulumi` provider: one stack per tenant, driven through the
 * Automation API. `PulumiEngine` is the small seam the provider talks to; `createAutomationEngine`
 * is the real implementation (it needs a `pulumi` CLI on PATH), and tests substitute a fake.
 *
 * Layout and naming:
 * - Stack `organization/<project>/tenant-<tenantId>` (`stackNameFor`). DIY backends (file, s3, gs,
 *   azblob) require the organization to be the literal `organization`; set another one only for
 *   Pulumi Cloud.
 * - Backend: `file://<dataDir>/pulumi-state` by default (created on first use), or any backend URL
 *   (`--pulumi-backend`), written to the project settings (`backend.url`).
 * - One workspace directory per tenant, `<dataDir>/pulumi-workspaces/<tenantId>/` (0700): its
 *   `Pulumi.yaml` and `Pulumi.tenant-<id>.yaml`, which keeps the stack's encryption salt and the
 *   generated secret values as encrypted config. If it is lost, the config is restored from the
 *   stack's last deployment (`pulumi config refresh`) before anything runs.
 * - Secrets: a passphrase (`PULUMI_CONFIG_PASSPHRASE` in the workspace environment, or
 *   `PULUMI_CONFIG_PASSPHRASE[_FILE]` inherited from the daemon) or any secrets provider URL
 *   (`awskms://…`, `gcpkms://…`, `azurekeyvault://…`, `hashivault://…`).
 *
 * Generated secrets (why stack config): @pulumi/random is not a dependency, and a value generated
 * inside the program would change on every run. So the engine generates each missing value once
 * with `crypto.randomBytes` and stores it as a *secret* stack config value
 * (`tenantd:generated.<secret>.<key>`), encrypted by the stack's secrets provider, before preview or
 * up; the program reads it with `config.requireSecret`. Existing values are never replaced, so a
 * database keeps its password across updates, and the values never leave Pulumi's encrypted config
 * and state (no result, progress message or error carries one).
 *
 * Errors, typed by what should happen next:
 * - `E_STACK_LOCKED` (waiting): another update holds the stack (HTTP 409 / `ConcurrentUpdateError`,
 *   or a DIY backend lock). Waited for and retried; `pulumi cancel` is never called.
 * - `E_PULUMI_PREVIEW_FAILED`, `E_PULUMI_UPDATE_FAILED`, `E_PULUMI_DESTROY_FAILED`,
 *   `E_PULUMI_REFRESH_FAILED`, `E_PULUMI_STACK_REMOVE_FAILED`, `E_PULUMI_OUTPUTS_FAILED` (retryable).
 * - `E_PULUMI_CLI_MISSING`, `E_PULUMI_CLI_VERSION`, `E_PULUMI_SECRETS` (wrong or missing passphrase),
 *   `E_PULUMI_PASSPHRASE_MISSING` (at construction) (stalled: a person must act).
 * - `E_ABORTED` (retryable): the operation's signal fired (shutdown, superseded).
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type * as Automation from '@pulumi/pulumi/automation/index.js';
import { retryable, stalled, TenantdError, waiting } from '../../core/errors.js';
import { namespaceFor } from '../../core/tenant/types.js';
import type { ChangeAction, ResourceChange } from '../provider.js';
import { refKey } from '../resources/renderer.js';
import type { KubeObjectRef, RenderedTenant } from '../resources/types.js';
import { generatedSecretConfigKey } from './names.js';
import type { TenantProgramOptions } from './program.js';

// ---------------------------------------------------------------------------------------------
// The seam
// ---------------------------------------------------------------------------------------------

export interface EngineCallOptions {
  /** Engine events, summarized one line each (→ ctx.progress). */
  onProgress?: (message: string, data?: Record<string, unknown>) => void;
  signal?: AbortSignal;
}

/** One resource step the engine reported (from engine events). */
export interface EngineStep {
  /** Pulumi's operation, normalized: a replacement's create/delete halves count as `replace`. */
  op: string;
  urn: string;
  type: string;
  /** The Kubernetes object, or null for Pulumi's own resources (the stack, providers). */
  ref: KubeObjectRef | null;
  /** Changed property paths (never values). */
  fields?: string[];
}

export interface EngineResult {
  /** The fully qualified stack name. */
  stack: string;
  /** Pulumi's counts per operation (`create`, `update`, `replace`, `delete`, `same`, …). */
  changeSummary: Record<string, number>;
  steps: EngineStep[];
}

export interface UpResult extends EngineResult {
  /** The stack's non-secret string outputs after the update. */
  outputs: Record<string, string>;
}

export interface ExistingStackResult extends EngineResult {
  /** False when the stack did not exist (nothing was done). */
  existed: boolean;
}

export interface PulumiEngine {
  /** `organization/<project>/tenant-<id>`. */
  stackNameFor(tenantId: string): string;
  /** A preview of `up` for `rendered`, or of `destroy` when `rendered` is null. */
  preview(tenantId: string, rendered: RenderedTenant | null, opts?: EngineCallOptions): Promise<EngineResult>;
  up(tenantId: string, rendered: RenderedTenant, opts?: EngineCallOptions): Promise<UpResult>;
  /** Deletes every resource of the stack; keeps the stack (and its history). */
  destroy(tenantId: string, opts?: EngineCallOptions): Promise<ExistingStackResult>;
  /** Reads the live state of every resource into the stack's state. */
  refresh(tenantId: string, opts?: EngineCallOptions): Promise<ExistingStackResult>;
  /** Removes the (empty) stack; never forced, so a stack that still has resources stays. */
  removeStack(tenantId: string): Promise<{ existed: boolean }>;
  /** The stack's non-secret string outputs; null when the stack does not exist. */
  outputs(tenantId: string): Promise<Record<string, string> | null>;
  /** Whether the engine can run now (CLI present). */
  ready?(): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

export const DEFAULT_PROJECT = 'tenantd';
/** The organization DIY backends require in fully qualified stack names. */
export const DEFAULT_ORGANIZATION = 'organization';
export const STATE_DIR = 'pulumi-state';
export const WORKSPACES_DIR = 'pulumi-workspaces';
/** Inline programs with refresh/destroy need `--client` (CLI 3.181.0). */
export const MIN_PULUMI_VERSION = '3.181.0';

export interface StackNaming {
  project?: string;
  organization?: string;
}

/** The short stack name: the tenant's namespace name (`tenant-<id>`). */
export const shortStackName = (tenantId: string): string => namespaceFor(tenantId);

export function stackNameFor(tenantId: string, naming: StackNaming = {}): string {
  return `${naming.organization ?? DEFAULT_ORGANIZATION}/${naming.project ?? DEFAULT_PROJECT}/${shortStackName(tenantId)}`;
}

export const defaultBackendUrl = (dataDir: string): string => `file://${path.join(path.resolve(dataDir), STATE_DIR)}`;

// ---------------------------------------------------------------------------------------------
// Engine events → progress lines and steps
// ---------------------------------------------------------------------------------------------

/** The parts of an engine event tenantd reads (a structural subset of Automation's EngineEvent). */
export interface EngineEventLike {
  resourcePreEvent?: { metadata: StepMetadataLike; planning?: boolean };
  resOutputsEvent?: { metadata: StepMetadataLike; planning?: boolean };
  resOpFailedEvent?: { metadata: StepMetadataLike };
  diagnosticEvent?: { message: string; severity: string; urn?: string; ephemeral?: boolean };
  summaryEvent?: { resourceChanges: Record<string, number | undefined>; durationSeconds: number };
}

interface StepStateLike {
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

export interface StepMetadataLike {
  op: string;
  urn: string;
  type: string;
  old?: StepStateLike;
  new?: StepStateLike;
  diffs?: string[];
  detailedDiff?: Record<string, unknown>;
}

const REPLACE_OPS = new Set(['replace', 'create-replacement', 'delete-replaced', 'discard-replaced', 'import-replacement', 'read-replacement']);
const QUIET_OPS = new Set(['same', 'refresh', 'read', 'discard']);

const normalizeOp = (op: string): string => (REPLACE_OPS.has(op) ? 'replace' : op);

/** Precedence when several events name one resource (a replacement emits three). */
const OP_RANK: Record<string, number> = { replace: 5, delete: 4, create: 3, update: 2, import: 1 };

function metadataOf(state: StepStateLike | undefined): { name?: unknown; namespace?: unknown } | undefined {
  const m = (state?.inputs?.metadata ?? state?.outputs?.metadata) as { name?: unknown; namespace?: unknown } | undefined;
  return m !== null && typeof m === 'object' ? m : undefined;
}

/** The Kubernetes object a step is about, from its type token and inputs (or its URN's name). */
export function refFromStep(meta: Pick<StepMetadataLike, 'type' | 'urn' | 'old' | 'new'>): KubeObjectRef | null {
  const m = /^kubernetes:([^:]+)\/([^:/]+):([^:]+)$/.exec(meta.type);
  if (!m) return null;
  const [, group, version, kind] = m as unknown as [string, string, string, string];
  const apiVersion = group === 'core' ? version : `${group}/${version}`;
  const md = metadataOf(meta.new) ?? metadataOf(meta.old);
  let name = typeof md?.name === 'string' ? md.name : undefined;
  let namespace = typeof md?.namespace === 'string' && md.namespace !== '' ? md.namespace : undefined;
  if (name === undefined) {
    // The logical name: `<namespace>/<name>` or `<name>` (see program.ts).
    const logical = meta.urn.slice(meta.urn.lastIndexOf('::') + 2);
    const slash = logical.indexOf('/');
    name = slash < 0 ? logical : logical.slice(slash + 1);
    if (slash >= 0) namespace = logical.slice(0, slash);
  }
  const ref: KubeObjectRef = { apiVersion, kind, name };
  if (namespace !== undefined) ref.namespace = namespace;
  return ref;
}

function fieldsOf(meta: StepMetadataLike): string[] | undefined {
  const fields = meta.detailedDiff && Object.keys(meta.detailedDiff).length > 0 ? Object.keys(meta.detailedDiff) : meta.diffs;
  return fields && fields.length > 0 ? [...new Set(fields)].sort() : undefined;
}

const labelOf = (meta: StepMetadataLike): string => {
  const ref = refFromStep(meta);
  return ref ? refKey(ref) : meta.urn.slice(meta.urn.lastIndexOf('::') + 2) || meta.type;
};

const PRE_VERB: Record<string, string> = {
  create: 'creating',
  update: 'updating',
  delete: 'deleting',
  replace: 'replacing',
  'create-replacement': 'creating replacement',
  'delete-replaced': 'deleting replaced',
  import: 'importing',
};
const DONE_VERB: Record<string, string> = {
  create: 'created',
  update: 'updated',
  delete: 'deleted',
  replace: 'replaced',
  'create-replacement': 'created replacement',
  'delete-replaced': 'deleted replaced',
  import: 'imported',
};

/** Counts as one line: `2 create, 1 update, 14 same`. */
export function formatCounts(counts: Record<string, number | undefined>): string {
  const parts = Object.entries(counts)
    .filter(([, n]) => typeof n === 'number' && n > 0)
    .map(([op, n]) => `${n} ${op}`);
  return parts.length > 0 ? parts.join(', ') : 'no changes';
}

/** One progress line for an engine event; null for events not worth a line. No secret ever appears (Pulumi masks them). */
export function describeEngineEvent(e: EngineEventLike): { message: string; data: Record<string, unknown> } | null {
  const step = e.resourcePreEvent ?? e.resOutputsEvent;
  if (step) {
    const meta = step.metadata;
    if (QUIET_OPS.has(meta.op) || meta.type === 'pulumi:pulumi:Stack') return null;
    const label = labelOf(meta);
    const done = e.resOutputsEvent !== undefined;
    const verb = step.planning ? `would ${normalizeOp(meta.op)}` : ((done ? DONE_VERB : PRE_VERB)[meta.op] ?? meta.op);
    const fields = fieldsOf(meta);
    const data: Record<string, unknown> = { op: meta.op, urn: meta.urn, type: meta.type, stage: done ? 'done' : 'start' };
    const ref = refFromStep(meta);
    if (ref) data.ref = refKey(ref);
    if (fields) data.fields = fields;
    return { message: `${verb} ${label}${fields && !done ? ` (${fields.join(', ')})` : ''}`, data };
  }
  if (e.resOpFailedEvent) {
    const meta = e.resOpFailedEvent.metadata;
    return { message: `failed to ${normalizeOp(meta.op)} ${labelOf(meta)}`, data: { op: meta.op, urn: meta.urn, type: meta.type, stage: 'failed' } };
  }
  if (e.diagnosticEvent) {
    const d = e.diagnosticEvent;
    if ((d.severity !== 'error' && d.severity !== 'warning') || d.ephemeral) return null;
    const message = stripAnsi(d.message).trim();
    if (!message) return null;
    return { message: `${d.severity}: ${message}`, data: { severity: d.severity, ...(d.urn ? { urn: d.urn } : {}) } };
  }
  if (e.summaryEvent) {
    const s = e.summaryEvent;
    return {
      message: `summary: ${formatCounts(s.resourceChanges)} (${Math.round(s.durationSeconds)}s)`,
      data: { resourceChanges: s.resourceChanges, durationSeconds: s.durationSeconds },
    };
  }
  return null;
}

/** Collects the resource steps of one operation, one per URN. */
export class StepCollector {
  private readonly steps = new Map<string, EngineStep>();

  add(e: EngineEventLike): void {
    const step = e.resourcePreEvent ?? e.resOutputsEvent;
    if (!step) return;
    const meta = step.metadata;
    const op = normalizeOp(meta.op);
    const prev = this.steps.get(meta.urn);
    if (prev && (OP_RANK[prev.op] ?? 0) >= (OP_RANK[op] ?? 0)) {
      if (!prev.fields) {
        const f = fieldsOf(meta);
        if (f) prev.fields = f;
      }
      return;
    }
    const next: EngineStep = { op, urn: meta.urn, type: meta.type, ref: refFromStep(meta) };
    const fields = fieldsOf(meta) ?? prev?.fields;
    if (fields) next.fields = fields;
    this.steps.set(meta.urn, next);
  }

  list(): EngineStep[] {
    return [...this.steps.values()];
  }
}

const ACTION_OF: Record<string, ChangeAction> = {
  create: 'create',
  update: 'update',
  replace: 'replace',
  delete: 'delete',
  same: 'unchanged',
  read: 'unchanged',
  refresh: 'unchanged',
  import: 'create',
};

/** The Kubernetes objects' changes of an operation (Pulumi's own resources left out). */
export function toResourceChanges(steps: readonly EngineStep[]): ResourceChange[] {
  const out: ResourceChange[] = [];
  for (const s of steps) {
    if (!s.ref) continue;
    const change: ResourceChange = { ref: s.ref, action: ACTION_OF[s.op] ?? 'update' };
    if (s.fields && (change.action === 'update' || change.action === 'replace')) change.fields = s.fields;
    out.push(change);
  }
  return out.sort((a, b) => (refKey(a.ref) < refKey(b.ref) ? -1 : refKey(a.ref) > refKey(b.ref) ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

export type EngineOperation = 'preview' | 'up' | 'destroy' | 'refresh' | 'removeStack' | 'outputs';

const FAILURE_CODES: Record<EngineOperation, string> = {
  preview: 'E_PULUMI_PREVIEW_FAILED',
  up: 'E_PULUMI_UPDATE_FAILED',
  destroy: 'E_PULUMI_DESTROY_FAILED',
  refresh: 'E_PULUMI_REFRESH_FAILED',
  removeStack: 'E_PULUMI_STACK_REMOVE_FAILED',
  outputs: 'E_PULUMI_OUTPUTS_FAILED',
};

const INSTALL_HINT = 'install it from https://www.pulumi.com/docs/install/ (e.g. `curl -fsSL https://get.pulumi.com | sh`); the tenantd Docker image installs it at build time';

function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
}

/** The useful part of a CLI failure: its `error:` lines (or the end of stderr), bounded. */
export function failureDetail(err: unknown): string {
  const raw = stripAnsi(err instanceof Error ? err.message : String(err));
  const stderrAt = raw.indexOf(' stderr: ');
  const stderr = stderrAt >= 0 ? raw.slice(stderrAt + 9, raw.lastIndexOf('\n err?:') > stderrAt ? raw.lastIndexOf('\n err?:') : undefined) : raw;
  const errorLines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^error:/i.test(l) && !/^error: update failed$/i.test(l));
  const text = errorLines.length > 0 ? errorLines.slice(0, 5).join('; ') : stderr.trim().split('\n').slice(-5).join('; ');
  return text.length > 1000 ? `${text.slice(0, 1000)}…` : text || 'no output';
}

const nameOf = (err: unknown): string => (err instanceof Error ? err.name : '');

/** Maps anything the Automation API throws to a TenantdError typed by what should happen next. */
export function mapPulumiError(err: unknown, op: EngineOperation, context: { stack: string; tenantId: string; signal?: AbortSignal }): TenantdError {
  if (err instanceof TenantdError) return err;
  const data = { tenantId: context.tenantId, stack: context.stack, operation: op };
  if (context.signal?.aborted) {
    return retryable('E_ABORTED', `pulumi ${op} of stack ${context.stack} was aborted`, data, err);
  }
  const message = stripAnsi(err instanceof Error ? err.message : String(err));
  const causeCode = (err as { commandResult?: { err?: { code?: unknown } } } | null)?.commandResult?.err?.code;
  if (causeCode === 'ENOENT' || /\bspawn pulumi ENOENT\b|ENOENT[^\n]*\bpulumi\b|\bpulumi\b[^\n]*ENOENT/.test(message)) {
    return stalled('E_PULUMI_CLI_MISSING', `no \`pulumi\` CLI on PATH: ${INSTALL_HINT}`, data, err);
  }
  if (/Minimum version requirement failed|requires Pulumi version >=/.test(message)) {
    return stalled('E_PULUMI_CLI_VERSION', `the \`pulumi\` CLI is too old (tenantd needs ${MIN_PULUMI_VERSION} or later): ${INSTALL_HINT}`, data, err);
  }
  if (nameOf(err) === 'ConcurrentUpdateError' || message.includes('[409] Conflict') || message.includes('currently locked by')) {
    return waiting(
      'E_STACK_LOCKED',
      `stack ${context.stack} is locked by another update; waiting for it to finish (tenantd never cancels it). If no update is running (e.g. a process was killed mid-update), a person must release the lock (\`pulumi cancel\` on Pulumi Cloud, or remove the lock file of a DIY backend) after checking the stack`,
      data,
      err,
    );
  }
  if (/incorrect passphrase|passphrase must be set|PULUMI_CONFIG_PASSPHRASE|failed to decrypt|secrets manager/i.test(message)) {
    return stalled('E_PULUMI_SECRETS', `stack ${context.stack}: its secrets cannot be decrypted or encrypted (${failureDetail(err)}); check the passphrase or secrets provider`, data, err);
  }
  const what: Record<EngineOperation, string> = {
    preview: 'preview',
    up: 'update',
    destroy: 'destroy',
    refresh: 'refresh',
    removeStack: 'stack rm',
    outputs: 'reading outputs',
  };
  return retryable(FAILURE_CODES[op], `pulumi ${what[op]} of stack ${context.stack} failed: ${failureDetail(err)}`, data, err);
}

// ---------------------------------------------------------------------------------------------
// The Automation API engine
// ---------------------------------------------------------------------------------------------

export interface AutomationEngineOptions extends StackNaming {
  /** tenantd's data directory: default backend and per-tenant workspaces live under it. */
  dataDir: string;
  /** Backend URL (`file://…`, `s3://…`, `https://api.pulumi.com`, …). Default `file://<dataDir>/pulumi-state`. */
  backendUrl?: string;
  /** Passphrase of the passphrase secrets provider (else PULUMI_CONFIG_PASSPHRASE[_FILE] from `env`). */
  passphrase?: string;
  /** Secrets provider for new stacks: `passphrase` (default on DIY backends), `awskms://…`, `gcpkms://…`, … */
  secretsProvider?: string;
  /** Settings of the program's Kubernetes provider. */
  kubeconfig?: string;
  kubeContext?: string;
  clusterIdentifier?: string;
  /** Render manifests per tenant to this directory instead of applying them (tests without a cluster). */
  renderYamlDirFor?: (tenantId: string) => string;
  /** PULUMI_HOME (plugins, credentials); default ~/.pulumi. */
  pulumiHome?: string;
  /** Fail instead of downloading a missing plugin at run time (PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION). */
  disablePluginDownload?: boolean;
  /** Extra environment for every pulumi command. */
  envVars?: Record<string, string>;
  /** The daemon's environment (passphrase variables are read from it). Default process.env. */
  env?: Record<string, string | undefined>;
  /** Resource operations in parallel per update. */
  parallel?: number;
  randomBytes?: (n: number) => Buffer;
}

/** Bytes of randomness per generated secret value (32 base64url characters). */
export const GENERATED_SECRET_BYTES = 24;

function needsPassphrase(opts: AutomationEngineOptions): boolean {
  if (opts.secretsProvider !== undefined) return opts.secretsProvider === 'passphrase';
  const backend = opts.backendUrl ?? 'file://';
  // Pulumi Cloud (and self-hosted Pulumi service) backends encrypt with the service by default.
  return !/^https?:\/\//.test(backend);
}

/** Whether the options can encrypt stack secrets; the daemon calls it (through the factory) at start. */
export function checkSecretsConfig(opts: AutomationEngineOptions): { ok: true } | { ok: false; message: string } {
  const env = opts.env ?? process.env;
  if (!needsPassphrase(opts)) return { ok: true };
  if (opts.passphrase !== undefined || env.PULUMI_CONFIG_PASSPHRASE !== undefined || env.PULUMI_CONFIG_PASSPHRASE_FILE !== undefined) return { ok: true };
  return {
    ok: false,
    message:
      'the pulumi provider encrypts stack secrets with a passphrase on this backend: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) in the daemon environment, or choose a secrets provider (e.g. awskms://…, gcpkms://…)',
  };
}

type AutomationModule = typeof Automation;

/** The real engine. Throws E_PULUMI_PASSPHRASE_MISSING (stalled) when stack secrets could not be encrypted. */
export function createAutomationEngine(opts: AutomationEngineOptions): PulumiEngine {
  const secrets = checkSecretsConfig(opts);
  if (!secrets.ok) throw stalled('E_PULUMI_PASSPHRASE_MISSING', secrets.message);
  const naming: StackNaming = { project: opts.project ?? DEFAULT_PROJECT, organization: opts.organization ?? DEFAULT_ORGANIZATION };
  const project = naming.project!;
  const dataDir = path.resolve(opts.dataDir);
  const backendUrl = opts.backendUrl ?? defaultBackendUrl(dataDir);
  const workspacesDir = path.join(dataDir, WORKSPACES_DIR);
  const randomBytes = opts.randomBytes ?? nodeRandomBytes;
  const envVars: Record<string, string> = { PULUMI_SKIP_UPDATE_CHECK: 'true', ...(opts.envVars ?? {}) };
  if (opts.passphrase !== undefined) envVars.PULUMI_CONFIG_PASSPHRASE = opts.passphrase;
  if (opts.disablePluginDownload) envVars.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION = 'true';
  const secretsProvider = opts.secretsProvider ?? (needsPassphrase(opts) ? 'passphrase' : undefined);

  let automation: Promise<AutomationModule> | null = null;
  const load = (): Promise<AutomationModule> => (automation ??= import('@pulumi/pulumi/automation/index.js'));
  let command: Promise<Automation.PulumiCommand> | null = null;
  /** The CLI, looked up once (again after a failure, so installing it later helps). */
  const cli = (): Promise<Automation.PulumiCommand> => {
    if (!command) {
      command = load().then((auto) => auto.PulumiCommand.get());
      command.catch(() => {
        command = null;
      });
    }
    return command;
  };

  const programOptions = (tenantId: string): TenantProgramOptions => {
    const p: TenantProgramOptions = {};
    if (opts.kubeconfig !== undefined) p.kubeconfig = opts.kubeconfig;
    if (opts.kubeContext !== undefined) p.kubeContext = opts.kubeContext;
    if (opts.clusterIdentifier !== undefined) p.clusterIdentifier = opts.clusterIdentifier;
    if (opts.renderYamlDirFor) p.renderYamlToDirectory = opts.renderYamlDirFor(tenantId);
    return p;
  };

  async function programFor(tenantId: string, rendered: RenderedTenant | null): Promise<Automation.PulumiFn> {
    if (!rendered) return async () => ({});
    const { tenantProgram } = await import('./program.js');
    return tenantProgram(rendered, programOptions(tenantId));
  }

  async function ensureBackendDir(): Promise<void> {
    if (backendUrl.startsWith('file://')) {
      const dir = backendUrl.slice('file://'.length);
      if (dir && !dir.startsWith('~')) await fs.mkdir(dir, { recursive: true });
    }
  }

  /**
   * Opens the tenant's stack: `create` creates it when missing, else null is returned for a
   * missing stack. A selected stack whose local config is gone gets it back from its last deployment.
   */
  async function openStack(tenantId: string, program: Automation.PulumiFn, create: boolean, call: EngineCallOptions = {}): Promise<Automation.Stack | null> {
    const auto = await load();
    const pulumiCommand = await cli();
    const stackName = stackNameFor(tenantId, naming);
    await ensureBackendDir();
    const workDir = path.join(workspacesDir, tenantId);
    await fs.mkdir(workDir, { recursive: true, mode: 0o700 });
    const wsOpts: Automation.LocalWorkspaceOptions = {
      workDir,
      program,
      envVars,
      pulumiCommand,
      projectSettings: { name: project, runtime: 'nodejs', backend: { url: backendUrl } },
    };
    if (opts.pulumiHome !== undefined) wsOpts.pulumiHome = opts.pulumiHome;
    if (secretsProvider !== undefined) wsOpts.secretsProvider = secretsProvider;
    const ws = await auto.LocalWorkspace.create(wsOpts);
    const settingsFile = path.join(workDir, `Pulumi.${shortStackName(tenantId)}.yaml`);
    const hadSettings = existsSync(settingsFile);
    try {
      const stack = await auto.Stack.select(stackName, ws);
      if (!hadSettings) {
        // The workspace directory was lost: restore encrypted config (generated secrets) from the stack.
        try {
          await stack.refreshConfig();
          call.onProgress?.(`restored the configuration of stack ${stackName} from its last deployment`, { stack: stackName });
        } catch {
          // A stack that never deployed has nothing to restore.
        }
      }
      return stack;
    } catch (err: unknown) {
      if (nameOf(err) !== 'StackNotFoundError') throw err;
      if (!create) return null;
      const stack = await auto.Stack.create(stackName, ws);
      call.onProgress?.(`created stack ${stackName}`, { stack: stackName, backend: redactUrl(backendUrl) });
      return stack;
    }
  }

  /** Generates missing secret values once, as encrypted stack config. Returns the keys it generated. */
  async function ensureGeneratedSecrets(stack: Automation.Stack, rendered: RenderedTenant, call: EngineCallOptions): Promise<string[]> {
    if (rendered.generatedSecrets.length === 0) return [];
    const config = await stack.getAllConfig();
    const generated: string[] = [];
    for (const gs of rendered.generatedSecrets) {
      for (const key of gs.generatedKeys) {
        const configKey = generatedSecretConfigKey(gs.name, key);
        const existing = config[configKey];
        if (existing && existing.value !== '') continue;
        await stack.setConfig(configKey, { value: randomBytes(GENERATED_SECRET_BYTES).toString('base64url'), secret: true });
        generated.push(`${gs.name}.${key}`);
      }
    }
    if (generated.length > 0) call.onProgress?.(`generated secret values: ${generated.join(', ')} (stored encrypted in the stack configuration)`, { generated });
    return generated;
  }

  function listen(call: EngineCallOptions, steps: StepCollector): (e: Automation.EngineEvent) => void {
    return (e) => {
      const ev = e as unknown as EngineEventLike;
      steps.add(ev);
      const line = describeEngineEvent(ev);
      if (line) call.onProgress?.(line.message, line.data);
    };
  }

  const counts = (m: Record<string, number | undefined> | undefined): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(m ?? {})) if (typeof v === 'number') out[k] = v;
    return out;
  };

  const publicStringOutputs = (outputs: Automation.OutputMap): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const key of Object.keys(outputs).sort()) {
      const o = outputs[key]!;
      if (!o.secret && typeof o.value === 'string') out[key] = o.value;
    }
    return out;
  };

  async function guarded<T>(op: EngineOperation, tenantId: string, call: EngineCallOptions, fn: () => Promise<T>): Promise<T> {
    const stack = stackNameFor(tenantId, naming);
    if (call.signal?.aborted) throw mapPulumiError(call.signal.reason, op, { stack, tenantId, signal: call.signal });
    try {
      return await fn();
    } catch (err: unknown) {
      throw mapPulumiError(err, op, { stack, tenantId, ...(call.signal ? { signal: call.signal } : {}) });
    }
  }

  const common = (call: EngineCallOptions, steps: StepCollector) => ({
    onEvent: listen(call, steps),
    color: 'never' as const,
    ...(call.signal ? { signal: call.signal } : {}),
    ...(opts.parallel ? { parallel: opts.parallel } : {}),
  });

  return {
    stackNameFor: (tenantId) => stackNameFor(tenantId, naming),

    preview: (tenantId, rendered, call = {}) =>
      guarded('preview', tenantId, call, async () => {
        const stackName = stackNameFor(tenantId, naming);
        const steps = new StepCollector();
        const stack = await openStack(tenantId, await programFor(tenantId, rendered), rendered !== null, call);
        if (!stack) return { stack: stackName, changeSummary: {}, steps: [] };
        if (!rendered) {
          const res = await stack.previewDestroy(common(call, steps));
          return { stack: stackName, changeSummary: counts(res.changeSummary), steps: steps.list() };
        }
        await ensureGeneratedSecrets(stack, rendered, call);
        const res = await stack.preview(common(call, steps));
        return { stack: stackName, changeSummary: counts(res.changeSummary), steps: steps.list() };
      }),

    up: (tenantId, rendered, call = {}) =>
      guarded('up', tenantId, call, async () => {
        const stackName = stackNameFor(tenantId, naming);
        const steps = new StepCollector();
        const stack = (await openStack(tenantId, await programFor(tenantId, rendered), true, call))!;
        await ensureGeneratedSecrets(stack, rendered, call);
        const res = await stack.up({ ...common(call, steps), message: `tenantd: ${rendered.digest}` });
        return { stack: stackName, changeSummary: counts(res.summary.resourceChanges), steps: steps.list(), outputs: publicStringOutputs(res.outputs) };
      }),

    destroy: (tenantId, call = {}) =>
      guarded('destroy', tenantId, call, async () => {
        const stackName = stackNameFor(tenantId, naming);
        const steps = new StepCollector();
        const stack = await openStack(tenantId, await programFor(tenantId, null), false, call);
        if (!stack) return { stack: stackName, changeSummary: {}, steps: [], existed: false };
        // runProgram false: destroy works from the state alone (the inline program is a no-op here).
        const res = await stack.destroy({ ...common(call, steps), message: 'tenantd: deprovision', runProgram: false });
        return { stack: stackName, changeSummary: counts(res.summary.resourceChanges), steps: steps.list(), existed: true };
      }),

    refresh: (tenantId, call = {}) =>
      guarded('refresh', tenantId, call, async () => {
        const stackName = stackNameFor(tenantId, naming);
        const steps = new StepCollector();
        const stack = await openStack(tenantId, await programFor(tenantId, null), false, call);
        if (!stack) return { stack: stackName, changeSummary: {}, steps: [], existed: false };
        const res = await stack.refresh({ ...common(call, steps), message: 'tenantd: drift check', runProgram: false });
        return { stack: stackName, changeSummary: counts(res.summary.resourceChanges), steps: steps.list(), existed: true };
      }),

    removeStack: (tenantId) =>
      guarded('removeStack', tenantId, {}, async () => {
        const stack = await openStack(tenantId, await programFor(tenantId, null), false);
        if (!stack) {
          await fs.rm(path.join(workspacesDir, tenantId), { recursive: true, force: true });
          return { existed: false };
        }
        // Never forced: a stack that still holds resources is not removed.
        await stack.workspace.removeStack(stack.name);
        await fs.rm(path.join(workspacesDir, tenantId), { recursive: true, force: true });
        return { existed: true };
      }),

    outputs: (tenantId) =>
      guarded('outputs', tenantId, {}, async () => {
        const stack = await openStack(tenantId, await programFor(tenantId, null), false);
        if (!stack) return null;
        return publicStringOutputs(await stack.outputs());
      }),

    async ready(): Promise<boolean> {
      return (await checkPulumiCli()).ok;
    },
  };
}

/** A backend URL without credentials (for messages). */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//***@');
}

// ---------------------------------------------------------------------------------------------
// The CLI check
// ---------------------------------------------------------------------------------------------

export interface CliCheckOptions {
  /** The command to run; default `pulumi` (looked up on PATH). */
  command?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

const versionAtLeast = (version: string, min: string): boolean => {
  const parse = (v: string): number[] => v.replace(/^v/, '').split(/[.+-]/).slice(0, 3).map((n) => Number.parseInt(n, 10) || 0);
  const a = parse(version);
  const b = parse(min);
  for (let i = 0; i < 3; i++) if (a[i]! !== b[i]!) return a[i]! > b[i]!;
  return true;
};

/**
 * Whether a usable `pulumi` CLI is on PATH (`pulumi version`), so `--provider pulumi` can fail at
 * start with a clear message instead of deep inside a reconcile.
 */
export async function checkPulumiCli(opts: CliCheckOptions = {}): Promise<{ ok: true; version: string } | { ok: false; message: string }> {
  const { spawn } = await import('node:child_process');
  const command = opts.command ?? 'pulumi';
  const env = { ...(opts.env ?? process.env), PULUMI_SKIP_UPDATE_CHECK: 'true' };
  const result = await new Promise<{ code: number | null; stdout: string; error?: NodeJS.ErrnoException }>((resolve) => {
    let stdout = '';
    let settled = false;
    const done = (r: { code: number | null; stdout: string; error?: NodeJS.ErrnoException }): void => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(r);
      }
    };
    const child = spawn(command, ['version'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done({ code: null, stdout, error: Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }) });
    }, opts.timeoutMs ?? 15_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.on('error', (error: NodeJS.ErrnoException) => done({ code: null, stdout, error }));
    child.on('close', (code) => done({ code, stdout }));
  });
  if (result.error?.code === 'ENOENT') return { ok: false, message: `no \`${command}\` CLI on PATH: ${INSTALL_HINT}` };
  if (result.error || result.code !== 0) {
    return { ok: false, message: `\`${command} version\` failed (${result.error?.message ?? `exit code ${result.code}`}): ${INSTALL_HINT}` };
  }
  const version = result.stdout.trim().split('\n')[0]?.trim() ?? '';
  if (!/^v?\d+\.\d+\.\d+/.test(version)) return { ok: false, message: `\`${command} version\` printed no version (${JSON.stringify(version.slice(0, 80))})` };
  if (!versionAtLeast(version, MIN_PULUMI_VERSION)) {
    return { ok: false, message: `pulumi ${version} is too old: tenantd needs ${MIN_PULUMI_VERSION} or later; ${INSTALL_HINT}` };
  }
  return { ok: true, version: version.replace(/^v/, '') };
}
