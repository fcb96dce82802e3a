import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { planDigestOf } from '../core/approval/plan-digest.js';
import { DesiredStateLoader, type SkippedEntry } from '../core/desired/loader.js';
import { printable } from '../core/printable.js';
import { TenantdError } from '../core/errors.js';
import { GitStore } from '../core/git/store.js';
import type { DesiredInfrastructureState } from '../core/state/record.js';
import { STATUS_DIR } from '../core/status/status-file.js';
import { formatIssue, type TenantInfrastructureDocument, type ValidationIssue } from '../core/tenant/types.js';
import type { InfrastructureProvider } from '../providers/provider.js';
import { diffPaths } from '../providers/resources/diff.js';
import { allObjects, objectRef, refKey, renderTenant } from '../providers/resources/renderer.js';
import type { KubeObject } from '../providers/resources/types.js';
import { stringFlag, usageError, type CommandSpec, type FlagValues } from './args.js';
import { defaultFormat, githubAnnotation, githubGroup, issueFinding, OUTPUT_FORMATS, sarifLog, type Finding, type OutputFormat } from './ci-output.js';
import { parseDaemonConfig, PROVIDERS } from './config.js';
import { createProvider } from './providers.js';

export interface PlanArgs {
  repo: string;
  branch: string;
  /** Base revision; null = compare against what the status files say was applied. */
  from: string | null;
  to: string;
  statusBranch: string | null;
  detailedExitCode: boolean;
  format: OutputFormat;
  /** null: compare rendered objects (no backend needed); else ask that provider (cluster dry run, Pulumi preview). */
  provider: string | null;
  /** Flags passed through to the provider (kubeconfig, context, clusters file, Pulumi settings). */
  providerFlags: string[];
  cwd: string;
}

export interface ObjectChange {
  ref: string;
  action: 'create' | 'update' | 'replace' | 'delete';
  fields?: string[];
}

export interface TenantPlan {
  tenantId: string;
  action: 'create' | 'update' | 'delete' | 'invalid';
  fromCommit: string | null;
  objects: ObjectChange[];
  /** Digest of this change list: what `POST …/tenants/:id/approve` names for a tenant that needs approval. */
  planDigest?: string;
  /** An invalid tenant's problems, formatted `file:line:col: path: message`, and as data. */
  errors?: string[];
  issues?: ValidationIssue[];
}

export interface PlanReport {
  base: string;
  target: string;
  tenants: TenantPlan[];
  changed: number;
  invalid: number;
  /** Entries under tenants/ at the target that are not tenant files, and why. */
  skipped: SkippedEntry[];
}

const PROVIDER_FLAGS = ['kubeconfig', 'kube-context', 'clusters-file', 'pulumi-backend', 'pulumi-project', 'pulumi-org', 'pulumi-secrets-provider'] as const;

export const PLAN_COMMAND: CommandSpec = {
  name: 'plan',
  synopsis: '[--repo <path|url>] [--from <rev>] [--to <rev>] [--provider render|kubernetes|pulumi] [--detailed-exitcode] [--format text|json|github|sarif]',
  summary: 'Per tenant, what would be created, changed or deleted between two revisions, or between a revision and what the status files say is applied. Reads git only.',
  flags: {
    repo: { type: 'string', help: 'path or http(s) URL of the tenants repository (default .)' },
    branch: { type: 'string', help: 'branch to read (default main)' },
    from: { type: 'string', help: 'base revision; default: each tenant as of the commit its status file says was applied' },
    to: { type: 'string', help: 'target revision (default: the branch)' },
    'status-branch': { type: 'string', help: 'read status files from this branch' },
    'detailed-exitcode': { type: 'boolean', help: 'exit 2 when there are changes, 0 when none, 1 on error (as terraform)' },
    format: { type: 'string', values: OUTPUT_FORMATS, help: 'output format (default github when GITHUB_ACTIONS=true, else text)' },
    json: { type: 'boolean', help: 'the same as --format json' },
    provider: { type: 'string', values: PROVIDERS, help: 'ask this backend instead of comparing rendered objects (default render)' },
    ...Object.fromEntries(PROVIDER_FLAGS.map((f) => [f, { type: 'string', help: `as for tenantd daemon --${f}` }])),
  },
  notes: 'Exit codes: 0 no changes (or changes without --detailed-exitcode), 1 an invalid tenant or an error, 2 changes with --detailed-exitcode; a usage error exits 2, or 1 with --detailed-exitcode.',
};

export function planArgsFrom(values: FlagValues, env: NodeJS.ProcessEnv, cwd: string): PlanArgs {
  const format = stringFlag(values, 'format');
  if (values['json'] === true && format !== undefined && format !== 'json') throw usageError(PLAN_COMMAND, `--json contradicts --format ${format}`, { flag: 'json' });
  const repo = stringFlag(values, 'repo') ?? '.';
  const branch = stringFlag(values, 'branch') ?? 'main';
  return {
    repo: /^https?:\/\//i.test(repo) ? repo : path.resolve(cwd, repo),
    branch,
    from: stringFlag(values, 'from') ?? null,
    to: stringFlag(values, 'to') ?? branch,
    statusBranch: stringFlag(values, 'status-branch') ?? null,
    detailedExitCode: values['detailed-exitcode'] === true,
    format: values['json'] === true ? 'json' : ((format as OutputFormat | undefined) ?? defaultFormat(env)),
    provider: stringFlag(values, 'provider') ?? null,
    providerFlags: PROVIDER_FLAGS.flatMap((f) => {
      const v = stringFlag(values, f);
      return v === undefined ? [] : [`--${f}`, v];
    }),
    cwd,
  };
}

/** Objects added, changed (with the field paths) and removed between two rendered sets. */
export function diffObjectSets(before: KubeObject[], after: KubeObject[]): ObjectChange[] {
  const old = new Map(before.map((o) => [refKey(objectRef(o)), o]));
  const changes: ObjectChange[] = [];
  for (const obj of after) {
    const key = refKey(objectRef(obj));
    const prev = old.get(key);
    old.delete(key);
    if (!prev) changes.push({ ref: key, action: 'create' });
    else {
      const fields = diffPaths(prev, obj);
      if (fields.length) changes.push({ ref: key, action: 'update', fields });
    }
  }
  for (const key of old.keys()) changes.push({ ref: key, action: 'delete' });
  return changes.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
}

const objectsOf = (d: DesiredInfrastructureState | null): KubeObject[] => (d?.document ? allObjects(renderTenant(d.document)) : []);

/** `tenantd plan`: per tenant, what would be created, changed or deleted. Reads git only; touches nothing. */
export async function planCommand(args: PlanArgs): Promise<PlanReport> {
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'tenantd-plan-'));
  let git: GitStore | undefined;
  try {
    git = await GitStore.open({ repo: args.repo, dataDir: scratch, branch: args.branch });
    await git.sync();
    const target = await resolveRev(git, args.to);
    const after = new DesiredStateLoader(git);
    await after.loadAll(target);

    const baseline = new Map<string, DesiredInfrastructureState | null>();
    let base: string;
    if (args.from) {
      base = await resolveRev(git, args.from);
      const before = new DesiredStateLoader(git);
      await before.loadAll(base);
      for (const d of before.all()) baseline.set(d.tenantId, d);
    } else {
      // Against the current status: each tenant as of the commit its status file says was applied.
      const statusCommit = args.statusBranch ? await resolveRev(git, args.statusBranch) : target;
      base = `status@${statusCommit.slice(0, 12)}`;
      const cache = new Map<string, DesiredStateLoader>();
      for (const f of await git.listFiles(statusCommit, STATUS_DIR)) {
        const tenantId = path.basename(f.path).replace(/\.ya?ml$/, '');
        const status = parseYaml(await git.readBlob(f.oid)) as { status?: { appliedCommit?: string | null; observedCommit?: string | null } } | null;
        // appliedCommit: what is applied (observedCommit may be a commit that was invalid); older status files only had observedCommit.
        const observed = status?.status && 'appliedCommit' in status.status ? status.status.appliedCommit : status?.status?.observedCommit;
        if (!observed) continue;
        let loader = cache.get(observed);
        if (!loader) {
          loader = new DesiredStateLoader(git);
          await loader.loadAll(observed);
          cache.set(observed, loader);
        }
        baseline.set(tenantId, loader.get(tenantId));
      }
    }

    const provider = args.provider && args.provider !== 'render' ? await openPlanProvider(args, scratch) : null;
    const ids = new Set<string>([...baseline.keys(), ...after.all().map((d) => d.tenantId)]);
    const tenants: TenantPlan[] = [];
    for (const tenantId of [...ids].sort()) {
      const prev = baseline.get(tenantId) ?? null;
      const next = after.get(tenantId);
      if (next && !next.document) {
        tenants.push({ tenantId, action: 'invalid', fromCommit: prev?.commit ?? null, objects: [], errors: next.issues.map(formatIssue), issues: next.issues });
        continue;
      }
      if (prev?.specDigest && next?.specDigest === prev.specDigest) continue;
      if (!prev?.document && !next) continue;
      const objects = provider ? await providerChanges(provider, tenantId, next?.document ?? (prev?.document as TenantInfrastructureDocument), !!next) : diffObjectSets(objectsOf(prev), objectsOf(next));
      const action = !next ? 'delete' : prev?.document ? 'update' : 'create';
      if (action === 'update' && objects.length === 0) continue;
      const planDigest = planDigestOf({ tenantId, operation: action, specDigest: next?.specDigest ?? 'deleted', changes: objects });
      tenants.push({ tenantId, action, fromCommit: prev?.commit ?? null, objects, planDigest });
    }
    await provider?.close?.();
    return {
      base,
      target,
      tenants,
      changed: tenants.filter((t) => t.action !== 'invalid').length,
      invalid: tenants.filter((t) => t.action === 'invalid').length,
      skipped: [...after.skipped],
    };
  } finally {
    // Its pack files stay open until closed (a FileHandle left to the GC is a warning, and an fd).
    await git?.close().catch(() => undefined);
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}

/** The provider `tenantd daemon` would use, configured by the same flags, for a read-only plan. */
async function openPlanProvider(args: PlanArgs, scratch: string): Promise<InfrastructureProvider> {
  const config = parseDaemonConfig(['--provider', args.provider as string, '--data-dir', scratch, ...args.providerFlags], process.env, args.cwd);
  return createProvider(config);
}

/** What the provider's own plan says (a server-side dry run, a Pulumi preview), as object changes. */
async function providerChanges(provider: InfrastructureProvider, tenantId: string, doc: TenantInfrastructureDocument, exists: boolean): Promise<ObjectChange[]> {
  const plan = await provider.plan({
    tenantId,
    tenant: doc,
    desired: exists ? renderTenant(doc) : null,
    operationId: 'plan',
    signal: new AbortController().signal,
    progress: () => undefined,
  });
  return plan.changes
    .filter((c) => c.action !== 'unchanged')
    .map((c) => ({ ref: refKey(c.ref), action: c.action, ...(c.fields?.length ? { fields: c.fields } : {}) }) as ObjectChange)
    .sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
}

async function resolveRev(git: GitStore, rev: string): Promise<string> {
  const oid = await git.resolve(rev);
  if (!oid) throw new TenantdError('E_REV_NOT_FOUND', 'stalled', `revision "${rev}" was not found in the repository`, { rev });
  return oid;
}

const SIGN = { create: '+', update: '~', replace: '-/+', delete: '-' } as const;

export interface PlanOutputContext {
  /** The repository as given (an absolute path, or a URL whose files have no local path). */
  repo: string;
  /** Annotation and SARIF paths are relative to this directory (the checkout). */
  root: string;
  version: string;
}

/** The one place a plan is formatted, in every output format. */
export function formatPlan(plan: PlanReport, format: OutputFormat, ctx: PlanOutputContext): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify({ base: plan.base, target: plan.target, tenants: plan.tenants, skipped: plan.skipped }, null, 2)}\n`;
    case 'sarif':
      return `${JSON.stringify(sarifLog(planFindings(plan, ctx), { root: ctx.root, version: ctx.version, informationUri: 'https://tenantd.io' }), null, 2)}\n`;
    case 'github': {
      const text = planText(plan);
      const summary = text.trimEnd().split('\n').at(-1) ?? '';
      return `${githubGroup(`tenantd plan: ${summary}`, text)}${planFindings(plan, ctx).map((f) => `${githubAnnotation(f, ctx.root)}\n`).join('')}`;
    }
    case 'text':
      return planText(plan);
  }
}

const PLAN_VERB = { create: 'will be created', update: 'will be updated', delete: 'will be deleted' } as const;
const countOf = (objects: ObjectChange[], action: ObjectChange['action']): number => objects.filter((o) => o.action === action).length;

/** Per changed tenant a notice (a warning for a delete), per problem of an invalid tenant an error, each on the tenant's file. */
function planFindings(plan: PlanReport, ctx: PlanOutputContext): Finding[] {
  const local = !/^https?:\/\//i.test(ctx.repo);
  const fileOf = (repoPath: string): string => (local ? path.join(ctx.repo, repoPath) : repoPath);
  return plan.tenants.flatMap((t): Finding[] => {
    if (t.action === 'invalid') return (t.issues ?? []).map((i) => issueFinding(i, fileOf(i.file), 'error'));
    const counts = (['create', 'update', 'replace', 'delete'] as const).filter((a) => countOf(t.objects, a) > 0).map((a) => `${SIGN[a]}${countOf(t.objects, a)} to ${a === 'update' ? 'change' : a}`);
    const fields = [...new Set(t.objects.flatMap((o) => o.fields ?? []))].sort();
    return [
      {
        level: t.action === 'delete' ? 'warning' : 'notice',
        file: fileOf(`tenants/${t.tenantId}.yaml`),
        line: 0,
        column: 0,
        rule: { id: `tenant-plan/${t.action}`, description: `A tenant that ${PLAN_VERB[t.action]}` },
        title: `tenant ${t.tenantId} ${PLAN_VERB[t.action]}`,
        message: `tenant ${t.tenantId} ${PLAN_VERB[t.action]}: ${counts.join(', ') || 'no object changes'}${fields.length ? ` (fields: ${fields.join(', ')})` : ''}`,
      },
    ];
  });
}

function planText(plan: PlanReport): string {
  const lines: string[] = [`Plan: ${plan.base.slice(0, 19)} → ${plan.target.slice(0, 12)}`];
  for (const t of plan.tenants) {
    lines.push('');
    if (t.action === 'invalid') {
      lines.push(`tenant ${t.tenantId}: INVALID (nothing would be applied)`);
      for (const e of t.errors ?? []) lines.push(`  ${e}`);
      continue;
    }
    lines.push(`tenant ${t.tenantId}: ${t.action}`);
    for (const o of t.objects) lines.push(`  ${SIGN[o.action]} ${o.ref}${o.fields ? `  (${o.fields.join(', ')})` : ''}`);
    if (t.planDigest) lines.push(`  plan digest: ${t.planDigest}`);
  }
  if (plan.skipped.length > 0) {
    lines.push('');
    for (const f of plan.skipped) lines.push(`skipped ${printable(f.path)}: ${f.reason}`);
  }
  const count = (a: string): number => plan.tenants.filter((t) => t.action === a).length;
  const objects = (a: ObjectChange['action']): number => plan.tenants.reduce((n, t) => n + t.objects.filter((o) => o.action === a).length, 0);
  lines.push('');
  lines.push(
    plan.tenants.length === 0
      ? 'No changes.'
      : `Tenants: ${count('create')} to create, ${count('update')} to update, ${count('delete')} to delete, ${plan.invalid} invalid. ` +
          `Objects: ${objects('create')} to create, ${objects('update')} to change, ${objects('delete')} to delete.`,
  );
  return `${lines.join('\n')}\n`;
}
