/**
 * The `pulumi` provider: each tenant is one Pulumi stack (see engine.ts for naming, backend and
 * secrets), its program declares the objects `renderTenant` produced (program.ts).
 *
 * Phases:
 * - plan = `pulumi preview` (of `destroy` for a deprovision): the resource changes with counts
 *   (create, update, replace, delete, unchanged) in the summary and details.
 * - apply = `pulumi up` of the whole stack. Pulumi applies all three groups (Apply, Deploy,
 *   Configure) in one update, in their order (the program's dependencies), with Pulumi's own
 *   readiness waits for workloads. So deploy and configure have nothing left to do: each is a cheap,
 *   idempotent check that the stack's outputs carry the digest of this rendering, and it says so in
 *   its summary. Should the stack not be at this rendering (another update ran in between, or its
 *   state was lost), the step runs `pulumi up` again, which converges.
 * - verify = the stack's outputs (namespace and endpoints, never secrets) match `outputsFor` of the
 *   rendering and carry its digest; they become the status file's outputs. Readiness through the
 *   Kubernetes API is an optional hook (`verifyReadiness`) the daemon can wire to the kubernetes
 *   provider's readiness check when a cluster is configured; without it, verify relies on the
 *   readiness waits `pulumi up` already did.
 * - destroy = `pulumi destroy`, then `stack rm` (never forced) only after the destroy succeeded: a
 *   failed destroy leaves the stack in place (FAILED, retried), never resources without a stack.
 * - refresh (drift) = `pulumi refresh` (the live state into the stack's state), then a preview of
 *   the desired program: what it would change is the drift, recorded per object; `correct` runs
 *   `pulumi up`.
 */
import { retryable } from '../../core/errors.js';
import type { DriftReport, InfrastructureProvider, PhaseResult, PlanResult, ProviderContext, ResourceChange } from '../provider.js';
import { allObjects, APPLY_GROUPS, objectRef, outputsFor, refKey } from '../resources/renderer.js';
import {
  checkPulumiCli,
  createAutomationEngine,
  formatCounts,
  stackNameFor,
  toResourceChanges,
  type AutomationEngineOptions,
  type EngineCallOptions,
  type EngineStep,
  type PulumiEngine,
  type StackNaming,
} from './engine.js';
import { DIGEST_OUTPUT, publicOutputs } from './names.js';
import { checkedTenantId } from '../tenant-guard.js';

export { checkPulumiCli };

export interface PulumiProviderHooks {
  /**
   * Readiness of the tenant's workloads through the Kubernetes API, run by verify after the stack
   * outputs matched (e.g. the kubernetes provider's readiness check). Throws TenantdError when not ready.
   */
  verifyReadiness?: (ctx: ProviderContext) => Promise<{ summary: string; details?: Record<string, unknown> }>;
}

/** Either an engine (tests, or a custom one) or the options of the Automation API engine. */
export type PulumiProviderOptions = ({ engine: PulumiEngine } | AutomationEngineOptions) & PulumiProviderHooks;

/**
 * The state key of a tenant (the seed's `terraformStateKey`): the fully qualified name of its
 * stack, `organization/<project>/tenant-<id>`, which identifies its state in the backend.
 */
export function stateKeyFor(tenantId: string, opts: StackNaming = {}): string {
  return stackNameFor(tenantId, opts);
}

type Counts = Record<'create' | 'update' | 'replace' | 'delete' | 'unchanged', number>;

function countActions(changes: readonly ResourceChange[]): Counts {
  const n: Counts = { create: 0, update: 0, replace: 0, delete: 0, unchanged: 0 };
  for (const c of changes) n[c.action]++;
  return n;
}

const refsWith = (changes: readonly ResourceChange[], action: ResourceChange['action']): string[] =>
  changes.filter((c) => c.action === action).map((c) => refKey(c.ref));

const shortDigest = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

export function createPulumiProvider(opts: PulumiProviderOptions): InfrastructureProvider {
  const engine: PulumiEngine = 'engine' in opts ? opts.engine : createAutomationEngine(opts);
  const verifyReadiness = opts.verifyReadiness;

  const tenantIdOf = checkedTenantId;

  const callFor = (ctx: ProviderContext): EngineCallOptions => ({
    onProgress: (message, data) => ctx.progress(message, data),
    signal: ctx.signal,
  });

  const k8sChanges = (steps: readonly EngineStep[]): ResourceChange[] => toResourceChanges(steps);

  async function plan(ctx: ProviderContext): Promise<PlanResult> {
    const tenantId = tenantIdOf(ctx);
    const res = await engine.preview(tenantId, ctx.desired, callFor(ctx));
    const changes = k8sChanges(res.steps);
    const n = countActions(changes);
    const result: PlanResult = {
      summary: `plan (pulumi preview${ctx.desired ? '' : ' of destroy'}): ${n.create} to create, ${n.update} to update, ${n.replace} to replace, ${n.delete} to delete, ${n.unchanged} unchanged`,
      details: { stack: res.stack, ...n, changeSummary: res.changeSummary, ...(ctx.desired ? { digest: ctx.desired.digest } : {}) },
      changes,
    };
    if (ctx.desired) result.outputs = outputsFor(ctx.desired);
    return result;
  }

  async function apply(ctx: ProviderContext): Promise<PhaseResult> {
    const tenantId = tenantIdOf(ctx);
    if (!ctx.desired) return destroy(ctx);
    const res = await engine.up(tenantId, ctx.desired, callFor(ctx));
    const changes = k8sChanges(res.steps);
    const n = countActions(changes);
    return {
      summary: `apply (pulumi up, all groups in one update): ${n.create} created, ${n.update} updated, ${n.replace} replaced, ${n.delete} deleted, ${n.unchanged} unchanged`,
      details: {
        stack: res.stack,
        groups: [...APPLY_GROUPS],
        created: refsWith(changes, 'create'),
        updated: refsWith(changes, 'update'),
        replaced: refsWith(changes, 'replace'),
        deleted: refsWith(changes, 'delete'),
        unchanged: n.unchanged,
        changeSummary: res.changeSummary,
        digest: ctx.desired.digest,
      },
      outputs: publicOutputs(res.outputs),
    };
  }

  /**
   * Deploy and Configure: Apply's `pulumi up` already applied their groups. Checks the stack is at
   * this rendering (its digest output); runs `pulumi up` again only when it is not.
   */
  async function appliedByApply(ctx: ProviderContext, phase: 'deploy' | 'configure'): Promise<PhaseResult> {
    const tenantId = tenantIdOf(ctx);
    const group = phase === 'deploy' ? 'Deploy' : 'Configure';
    if (!ctx.desired) return { summary: `${phase}: nothing to do for a deprovision`, details: { group } };
    const stack = engine.stackNameFor(tenantId);
    const want = ctx.desired.digest;
    const outputs = await engine.outputs(tenantId);
    const got = outputs?.[DIGEST_OUTPUT];
    const count = ctx.desired.groups[group].length;
    if (outputs && got === want) {
      const result: PhaseResult = {
        summary: `${phase}: nothing left to do: pulumi applied the ${group} group (${count} objects) with the others in Apply's update; stack ${stack} is at ${shortDigest(want)}`,
        details: { stack, group, objects: count, digest: want, appliedBy: 'Apply' },
      };
      if (phase === 'configure') result.outputs = publicOutputs(outputs);
      return result;
    }
    ctx.progress(`stack ${stack} is at ${got ? shortDigest(got) : 'no rendering'}, not ${shortDigest(want)}: running pulumi up again`, { stack, digest: want, stackDigest: got ?? null });
    const res = await engine.up(tenantId, ctx.desired, callFor(ctx));
    return {
      summary: `${phase}: stack ${stack} was not at ${shortDigest(want)} (${got ? `at ${shortDigest(got)}` : 'no outputs'}): pulumi up again: ${formatCounts(res.changeSummary)}`,
      details: { stack, group, objects: count, digest: want, stackDigest: got ?? null, changeSummary: res.changeSummary, reapplied: true },
      ...(phase === 'configure' ? { outputs: publicOutputs(res.outputs) } : {}),
    };
  }

  async function verify(ctx: ProviderContext): Promise<PhaseResult> {
    const tenantId = tenantIdOf(ctx);
    const stack = engine.stackNameFor(tenantId);
    const outputs = await engine.outputs(tenantId);
    if (!ctx.desired) {
      if (outputs !== null) {
        throw retryable('E_VERIFY_MISMATCH', `stack ${stack} of tenant ${tenantId} still exists after the deprovision`, { tenantId, stack });
      }
      return { summary: `verify: stack ${stack} is removed`, details: { stack } };
    }
    if (outputs === null) {
      throw retryable('E_VERIFY_MISMATCH', `stack ${stack} of tenant ${tenantId} does not exist`, { tenantId, stack, missing: ['stack'] });
    }
    const expected = outputsFor(ctx.desired);
    const missing = Object.keys(expected).filter((k) => !(k in outputs));
    const changed = Object.keys(expected).filter((k) => k in outputs && outputs[k] !== expected[k]);
    const digestOk = outputs[DIGEST_OUTPUT] === ctx.desired.digest;
    if (missing.length + changed.length > 0 || !digestOk) {
      const parts = [
        !digestOk ? `stack is at ${outputs[DIGEST_OUTPUT] ? shortDigest(outputs[DIGEST_OUTPUT]) : 'no rendering'}, not ${shortDigest(ctx.desired.digest)}` : '',
        missing.length > 0 ? `missing outputs ${missing.join(', ')}` : '',
        changed.length > 0 ? `different outputs ${changed.join(', ')}` : '',
      ].filter(Boolean);
      throw retryable('E_VERIFY_MISMATCH', `stack ${stack} of tenant ${tenantId} does not match the desired rendering: ${parts.join('; ')}`, {
        tenantId,
        stack,
        missing,
        changed,
        digest: ctx.desired.digest,
        stackDigest: outputs[DIGEST_OUTPUT] ?? null,
      });
    }
    const details: Record<string, unknown> = { stack, outputs: Object.keys(expected).length, digest: ctx.desired.digest };
    let summary = `verify: stack ${stack} outputs match the rendering (${Object.keys(expected).length} outputs, ${shortDigest(ctx.desired.digest)})`;
    if (verifyReadiness) {
      const ready = await verifyReadiness(ctx);
      summary += `; ${ready.summary}`;
      details.readiness = ready.details ?? { summary: ready.summary };
    } else {
      details.readiness = 'pulumi up waited for the workloads; no Kubernetes readiness check configured';
    }
    return { summary, details, outputs: publicOutputs(outputs) };
  }

  async function destroy(ctx: ProviderContext): Promise<PhaseResult> {
    const tenantId = tenantIdOf(ctx);
    const res = await engine.destroy(tenantId, callFor(ctx));
    // Only after a successful destroy: a stack is never removed while it may still hold resources.
    const removed = await engine.removeStack(tenantId);
    const changes = k8sChanges(res.steps);
    const deleted = refsWith(changes, 'delete');
    if (!res.existed && !removed.existed) {
      return { summary: `destroy: stack ${res.stack} does not exist; nothing to destroy`, details: { stack: res.stack, deleted: [], stackRemoved: false } };
    }
    ctx.progress(`removed stack ${res.stack}`, { stack: res.stack });
    return {
      summary: `destroy (pulumi destroy, then stack rm): ${deleted.length} objects deleted; stack ${res.stack} removed`,
      details: { stack: res.stack, deleted, changeSummary: res.changeSummary, stackRemoved: removed.existed },
    };
  }

  async function refresh(ctx: ProviderContext, correct: boolean): Promise<DriftReport> {
    const tenantId = tenantIdOf(ctx);
    const call = callFor(ctx);
    const refreshed = await engine.refresh(tenantId, call);
    if (!ctx.desired) {
      const changes = k8sChanges(refreshed.steps).filter((c) => c.action !== 'unchanged');
      return { drifted: changes.length > 0, changes, corrected: false };
    }
    let changes: ResourceChange[];
    if (!refreshed.existed) {
      changes = allObjects(ctx.desired).map((o) => ({ ref: objectRef(o), action: 'create' as const }));
    } else {
      const preview = await engine.preview(tenantId, ctx.desired, call);
      changes = k8sChanges(preview.steps).filter((c) => c.action !== 'unchanged');
    }
    const drifted = changes.length > 0;
    if (drifted && correct) await engine.up(tenantId, ctx.desired, call);
    return { drifted, changes, corrected: drifted && correct };
  }

  return {
    name: 'pulumi',
    plan,
    apply,
    deploy: (ctx) => appliedByApply(ctx, 'deploy'),
    configure: (ctx) => appliedByApply(ctx, 'configure'),
    verify,
    destroy,
    refresh,
    async ready(): Promise<boolean> {
      return engine.ready ? engine.ready() : true;
    },
    async close(): Promise<void> {},
  };
}
