/**
 * The pulumi provider's behaviour, driven by a real InfrastructureReconciler, over a FAKE engine
 * (`FakePulumiEngine`, a test double of the Automation API seam that keeps stacks in memory).
 * Failures are injected as the raw errors the Automation API throws and mapped with the real
 * engine's `mapPulumiError`, so the codes asserted here are the ones production produces.
 */
import t, { type Test } from 'tap';
import { canonicalJson } from '../core/canonical.js';
import type { TenantdError } from '../core/errors.js';
import type { ReconciliationEvent } from '../core/events/events.js';
import { TransitionLog } from '../core/log/transition-log.js';
import type { ProviderContext } from '../providers/provider.js';
import {
  mapPulumiError,
  stackNameFor,
  type EngineCallOptions,
  type EngineOperation,
  type EngineResult,
  type EngineStep,
  type ExistingStackResult,
  type PulumiEngine,
  type UpResult,
} from '../providers/pulumi/engine.js';
import { DIGEST_OUTPUT, typeTokenFor } from '../providers/pulumi/names.js';
import { createPulumiProvider, stateKeyFor } from '../providers/pulumi/provider.js';
import { allObjects, objectRef, outputsFor, refKey, renderTenant } from '../providers/resources/renderer.js';
import type { KubeObject, RenderedTenant } from '../providers/resources/types.js';
import { reconcilerHarness } from './helpers/reconciler.js';
import { desiredOf, tenantDoc } from './helpers/tenants.js';

interface FakeStack {
  /** refKey → canonical JSON of the object as applied. */
  objects: Map<string, { obj: KubeObject; json: string }>;
  outputs: Record<string, string>;
}

/** A raw error shaped like the Automation API's (name + CommandError message). */
function automationError(name: string, stderr: string): Error {
  const err = new Error(`code: 255\n stdout: \n stderr: ${stderr}\n err?: \n`);
  err.name = name;
  return err;
}

/**
 * FakePulumiEngine: a test double of `PulumiEngine`. Stacks live in a Map; `up` records the rendered
 * objects and outputs as a real update would; failures are queued per operation as raw errors.
 */
class FakePulumiEngine implements PulumiEngine {
  readonly stacks = new Map<string, FakeStack>();
  readonly calls: Array<{ op: EngineOperation; tenantId: string }> = [];
  private readonly failures = new Map<EngineOperation, Error[]>();

  stackNameFor(tenantId: string): string {
    return stackNameFor(tenantId);
  }

  failNext(op: EngineOperation, err: Error, times = 1): void {
    const list = this.failures.get(op) ?? [];
    for (let i = 0; i < times; i++) list.push(err);
    this.failures.set(op, list);
  }

  count(op: EngineOperation): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  private enter(op: EngineOperation, tenantId: string, call: EngineCallOptions = {}): void {
    this.calls.push({ op, tenantId });
    const failure = this.failures.get(op)?.shift();
    if (failure) throw mapPulumiError(failure, op, { tenantId, stack: this.stackNameFor(tenantId), ...(call.signal ? { signal: call.signal } : {}) });
  }

  private step(op: string, obj: KubeObject, tenantId: string): EngineStep {
    const type = typeTokenFor(obj.apiVersion, obj.kind);
    const name = obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
    return { op, urn: `urn:pulumi:tenant-${tenantId}::tenantd::${type}::${name}`, type, ref: objectRef(obj) };
  }

  private diff(tenantId: string, rendered: RenderedTenant | null): EngineStep[] {
    const stack = this.stacks.get(tenantId);
    const steps: EngineStep[] = [{ op: stack ? 'same' : 'create', urn: `urn:pulumi:tenant-${tenantId}::tenantd::pulumi:pulumi:Stack::tenantd-tenant-${tenantId}`, type: 'pulumi:pulumi:Stack', ref: null }];
    const desired = rendered ? allObjects(rendered) : [];
    const keys = new Set<string>();
    for (const obj of desired) {
      const key = refKey(objectRef(obj));
      keys.add(key);
      const have = stack?.objects.get(key);
      if (!have) steps.push(this.step('create', obj, tenantId));
      else if (have.json !== canonicalJson(obj)) steps.push({ ...this.step('update', obj, tenantId), fields: ['spec'] });
      else steps.push(this.step('same', obj, tenantId));
    }
    for (const [key, have] of stack?.objects ?? []) if (!keys.has(key)) steps.push(this.step('delete', have.obj, tenantId));
    return steps;
  }

  private summary(steps: EngineStep[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of steps) out[s.op] = (out[s.op] ?? 0) + 1;
    return out;
  }

  async preview(tenantId: string, rendered: RenderedTenant | null, call?: EngineCallOptions): Promise<EngineResult> {
    this.enter('preview', tenantId, call);
    const steps = this.diff(tenantId, rendered);
    call?.onProgress?.(`preview of ${this.stackNameFor(tenantId)}`, { stack: this.stackNameFor(tenantId) });
    return { stack: this.stackNameFor(tenantId), changeSummary: this.summary(steps), steps };
  }

  async up(tenantId: string, rendered: RenderedTenant, call?: EngineCallOptions): Promise<UpResult> {
    this.enter('up', tenantId, call);
    const steps = this.diff(tenantId, rendered);
    for (const s of steps) if (s.ref && s.op !== 'same') call?.onProgress?.(`${s.op}d ${refKey(s.ref)}`, { op: s.op, ref: refKey(s.ref) });
    const objects = new Map(allObjects(rendered).map((obj) => [refKey(objectRef(obj)), { obj, json: canonicalJson(obj) }]));
    const outputs = { ...outputsFor(rendered), [DIGEST_OUTPUT]: rendered.digest };
    this.stacks.set(tenantId, { objects, outputs });
    return { stack: this.stackNameFor(tenantId), changeSummary: this.summary(steps), steps, outputs };
  }

  async destroy(tenantId: string, call?: EngineCallOptions): Promise<ExistingStackResult> {
    this.enter('destroy', tenantId, call);
    const stack = this.stacks.get(tenantId);
    if (!stack) return { stack: this.stackNameFor(tenantId), changeSummary: {}, steps: [], existed: false };
    const steps = [...stack.objects.values()].map((o) => this.step('delete', o.obj, tenantId));
    stack.objects.clear();
    stack.outputs = {};
    return { stack: this.stackNameFor(tenantId), changeSummary: this.summary(steps), steps, existed: true };
  }

  async refresh(tenantId: string, call?: EngineCallOptions): Promise<ExistingStackResult> {
    this.enter('refresh', tenantId, call);
    const stack = this.stacks.get(tenantId);
    return { stack: this.stackNameFor(tenantId), changeSummary: {}, steps: [], existed: stack !== undefined };
  }

  async removeStack(tenantId: string): Promise<{ existed: boolean }> {
    this.enter('removeStack', tenantId);
    const stack = this.stacks.get(tenantId);
    if (!stack) return { existed: false };
    if (stack.objects.size > 0) {
      throw mapPulumiError(automationError('CommandError', `error: 'tenant-${tenantId}' still has resources; removal rejected`), 'removeStack', {
        tenantId,
        stack: this.stackNameFor(tenantId),
      });
    }
    this.stacks.delete(tenantId);
    return { existed: true };
  }

  async outputs(tenantId: string): Promise<Record<string, string> | null> {
    this.enter('outputs', tenantId);
    const stack = this.stacks.get(tenantId);
    return stack ? { ...stack.outputs } : null;
  }
}

async function setup(t: Test) {
  const engine = new FakePulumiEngine();
  const h = await reconcilerHarness(t, undefined, createPulumiProvider({ engine }), { stateKey: (id) => stateKeyFor(id) });
  return { ...h, engine };
}

const states = async (log: TransitionLog, id: string): Promise<string[]> => (await log.read(id)).map((x) => x.toState);

function ctxFor(rendered: RenderedTenant | null, tenantId = rendered?.tenantId ?? 'acme'): ProviderContext & { lines: string[] } {
  const lines: string[] = [];
  return {
    tenantId,
    tenant: tenantDoc(tenantId),
    desired: rendered,
    operationId: 'op-1',
    signal: new AbortController().signal,
    progress: (m) => lines.push(m),
    lines,
  };
}

t.test('provision: preview, one up for all groups, deploy/configure check outputs, verify; outputs in the record', async (t) => {
  const { engine, reconciler, store, log, events } = await setup(t);
  const doc = tenantDoc('acme');
  const out = await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(doc, 'c1'), commit: 'c1', trigger: 'commit:c1' });
  t.same(out, { kind: 'converged', status: 'ACTIVE' });
  t.same(await states(log, 'acme'), [
    'PROVISIONING/Request',
    'PROVISIONING/Plan',
    'PROVISIONING/Apply',
    'PROVISIONING/Deploy',
    'PROVISIONING/Configure',
    'PROVISIONING/Verify',
    'ACTIVE/Complete',
  ]);
  t.same(engine.calls.map((c) => c.op), ['preview', 'up', 'outputs', 'outputs', 'outputs'], 'one up; deploy, configure and verify only read outputs');
  const rec = store.get('acme')!;
  t.equal(rec.terraformStateKey, 'organization/tenantd/tenant-acme', 'the state key is the stack');
  t.equal(rec.outputs.namespace, 'tenant-acme');
  t.equal(rec.outputs['service.web.url'], 'http://web.tenant-acme.svc.cluster.local:8080');
  t.notOk(DIGEST_OUTPUT in rec.outputs, 'bookkeeping outputs stay out of the status');
  const rendered = renderTenant(doc);
  t.equal(rec.lastPlan?.counts.create, allObjects(rendered).length, 'plan counts every object as a create');
  t.match(rec.lastPlan?.summary, /^plan \(pulumi preview\): \d+ to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged$/);
  const completed = events.filter((e): e is Extract<ReconciliationEvent, { type: 'PhaseCompleted' }> => e.type === 'PhaseCompleted');
  t.match(completed.find((e) => e.phase === 'Apply')?.summary, /^apply \(pulumi up, all groups in one update\): \d+ created/);
  t.match(completed.find((e) => e.phase === 'Deploy')?.summary, /^deploy: nothing left to do: pulumi applied the Deploy group/);
  t.match(completed.find((e) => e.phase === 'Configure')?.summary, /^configure: nothing left to do: pulumi applied the Configure group/);
  const progress = events.filter((e) => e.type === 'PhaseProgress');
  t.ok(progress.some((e) => e.type === 'PhaseProgress' && e.phase === 'Apply' && e.message.startsWith('created')), 'engine events reach the publisher as progress');

  // The same desired state again: nothing runs.
  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(doc, 'c2'), commit: 'c2', trigger: 'commit:c2' });
  t.equal(engine.calls.length, 5);
});

t.test('a stack locked by another update is waited for (waiting, no FAILED), never cancelled, then converges', async (t) => {
  const { clock, engine, reconciler, store, log } = await setup(t);
  engine.failNext('up', automationError('ConcurrentUpdateError', 'error: [409] Conflict: Another update is currently in progress.'));
  const desired = desiredOf(tenantDoc('acme'), 'c1');
  const out = await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'commit:c1' });
  t.equal(out.kind, 'retry');
  const rec = store.get('acme')!;
  t.equal(rec.status, 'PROVISIONING', 'waiting is not a failure: the status stays');
  t.equal(rec.retry?.lastError.code, 'E_STACK_LOCKED');
  t.equal(rec.retry?.lastError.kind, 'waiting');
  t.notOk((await states(log, 'acme')).some((s) => s.startsWith('FAILED')), 'no FAILED transition');
  t.notOk('cancel' in engine, 'the engine seam has no cancel at all');

  if (out.kind === 'retry') clock.ms = out.at.getTime();
  const again = await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'retry:1' });
  t.same(again, { kind: 'converged', status: 'ACTIVE' });
  t.equal(engine.count('up'), 2);
  t.equal(engine.count('preview'), 1, 'the completed Plan is not redone');
});

t.test('a DIY backend lock maps to E_STACK_LOCKED too', async (t) => {
  const err = mapPulumiError(
    automationError('CommandError', 'error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file'),
    'up',
    { tenantId: 'acme', stack: 'organization/tenantd/tenant-acme' },
  );
  t.match(err, { code: 'E_STACK_LOCKED', kind: 'waiting' });
});

t.test('a failed update is retryable: FAILED/Apply with E_PULUMI_UPDATE_FAILED, then retried to ACTIVE', async (t) => {
  const { clock, engine, reconciler, store, log } = await setup(t);
  engine.failNext(
    'up',
    automationError('CommandError', "error: resource \"urn:…::tenant-acme/postgres\" was not successfully created by the Kubernetes API server: quota exceeded\nerror: update failed"),
  );
  const desired = desiredOf(tenantDoc('acme'), 'c1');
  const out = await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'commit:c1' });
  t.equal(out.kind, 'retry');
  const rec = store.get('acme')!;
  t.equal(rec.status, 'FAILED');
  t.equal(rec.retry?.lastError.code, 'E_PULUMI_UPDATE_FAILED');
  t.equal(rec.retry?.lastError.kind, 'retryable');
  t.match(rec.retry?.lastError.message, /quota exceeded/, 'the error line of the CLI output is kept');
  t.notMatch(rec.retry?.lastError.message, /update failed$/);
  const failed = (await log.read('acme')).find((x) => x.toState === 'FAILED/Apply');
  t.equal((failed?.details as { error: { code: string } }).error.code, 'E_PULUMI_UPDATE_FAILED');
  t.ok(rec.retry?.nextAttemptAt, 'a retry is scheduled');

  if (out.kind === 'retry') clock.ms = out.at.getTime();
  const again = await reconciler.reconcile({ tenantId: 'acme', desired, commit: 'c1', trigger: 'retry:1' });
  t.same(again, { kind: 'converged', status: 'ACTIVE' });
});

t.test('a failed destroy leaves the stack (no stack rm) and the tenant FAILED; the retry destroys, then removes', async (t) => {
  const { clock, engine, reconciler, store, log } = await setup(t);
  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  t.equal(store.get('acme')?.status, 'ACTIVE');
  engine.failNext('destroy', automationError('CommandError', 'error: deleting namespace tenant-acme: context deadline exceeded\nerror: destroy failed'));

  const out = await reconciler.reconcile({ tenantId: 'acme', desired: null, commit: 'c2', trigger: 'commit:c2' });
  t.equal(out.kind, 'retry');
  const rec = store.get('acme')!;
  t.equal(rec.status, 'FAILED');
  t.equal(rec.retry?.lastError.code, 'E_PULUMI_DESTROY_FAILED');
  t.equal(rec.retry?.lastError.kind, 'retryable');
  t.equal(engine.count('removeStack'), 0, 'stack rm is never run after a failed destroy');
  t.ok(engine.stacks.has('acme'), 'the stack is still there');
  t.ok(engine.stacks.get('acme')!.objects.size > 0, 'with its resources: nothing orphaned');
  t.ok((await states(log, 'acme')).includes('FAILED/Apply'));

  if (out.kind === 'retry') clock.ms = out.at.getTime();
  const again = await reconciler.reconcile({ tenantId: 'acme', desired: null, commit: 'c2', trigger: 'retry:1' });
  t.same(again, { kind: 'converged', status: 'DEPROVISIONED' });
  t.notOk(engine.stacks.has('acme'), 'removed after the successful destroy');
  t.same(store.get('acme')?.outputs, {});
});

t.test('a successful deprovision previews the destroy, destroys, then removes the stack, and verifies it is gone', async (t) => {
  const { engine, reconciler, log } = await setup(t);
  await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  engine.calls.length = 0;
  const out = await reconciler.reconcile({ tenantId: 'acme', desired: null, commit: 'c2', trigger: 'commit:c2' });
  t.same(out, { kind: 'converged', status: 'DEPROVISIONED' });
  t.same(engine.calls.map((c) => c.op), ['preview', 'destroy', 'removeStack', 'outputs']);
  t.same((await states(log, 'acme')).slice(7), ['DEPROVISIONING/Request', 'DEPROVISIONING/Plan', 'DEPROVISIONING/Apply', 'DEPROVISIONING/Verify', 'DEPROVISIONED/Complete']);
  t.notOk(engine.stacks.has('acme'));
});

t.test('the CLI missing is stalled: FAILED with the Stalled condition naming how to install it', async (t) => {
  const { engine, reconciler, store } = await setup(t);
  const enoent = Object.assign(new Error('code: -2\n stdout: \n stderr: Command failed with ENOENT: pulumi version\nspawn pulumi ENOENT\n err?: Error: spawn pulumi ENOENT\n'), {
    name: 'CommandError',
    commandResult: { err: { code: 'ENOENT' } },
  });
  engine.failNext('preview', enoent);
  const out = await reconciler.reconcile({ tenantId: 'acme', desired: desiredOf(tenantDoc('acme'), 'c1'), commit: 'c1', trigger: 'commit:c1' });
  t.same(out, { kind: 'stalled', code: 'E_PULUMI_CLI_MISSING' });
  const rec = store.get('acme')!;
  t.equal(rec.status, 'FAILED');
  t.equal(rec.conditions.find((c) => c.type === 'Stalled')?.status, 'True');
  t.match(rec.retry?.lastError.message, /https:\/\/www\.pulumi\.com\/docs\/install\//);
});

t.test('deploy and configure re-run pulumi up when the stack is not at this rendering', async (t) => {
  const engine = new FakePulumiEngine();
  const provider = createPulumiProvider({ engine });
  const rendered = renderTenant(tenantDoc('acme'));
  const ctx = ctxFor(rendered);
  const older = renderTenant(tenantDoc('acme', { region: 'us-west-2' }));
  await engine.up('acme', older);
  const deploy = await provider.deploy(ctx);
  t.match(deploy.summary, /^deploy: stack organization\/tenantd\/tenant-acme was not at [0-9a-f]{12} \(at [0-9a-f]{12}\): pulumi up again/);
  t.equal(engine.count('up'), 2);
  t.equal(engine.stacks.get('acme')?.outputs[DIGEST_OUTPUT], rendered.digest);
  const configure = await provider.configure(ctx);
  t.match(configure.summary, /^configure: nothing left to do/);
  t.equal(configure.outputs?.namespace, 'tenant-acme');
  t.equal(engine.count('up'), 2, 'no second re-run: idempotent');
  t.match(await provider.deploy(ctxFor(null, 'acme')), { summary: 'deploy: nothing to do for a deprovision' });
});

t.test('verify: a missing stack, a stale digest, or different outputs are E_VERIFY_MISMATCH', async (t) => {
  const engine = new FakePulumiEngine();
  const provider = createPulumiProvider({ engine });
  const rendered = renderTenant(tenantDoc('acme'));
  await t.rejects(provider.verify(ctxFor(rendered)), { code: 'E_VERIFY_MISMATCH', kind: 'retryable' }, 'no stack');
  await engine.up('acme', renderTenant(tenantDoc('acme', { region: 'us-west-2' })));
  await t.rejects(provider.verify(ctxFor(rendered)), { code: 'E_VERIFY_MISMATCH', message: /stack is at [0-9a-f]{12}, not/ });
  await engine.up('acme', rendered);
  engine.stacks.get('acme')!.outputs.namespace = 'elsewhere';
  await t.rejects(provider.verify(ctxFor(rendered)), { code: 'E_VERIFY_MISMATCH', data: { changed: ['namespace'] } });
  await engine.up('acme', rendered);
  const ok = await provider.verify(ctxFor(rendered));
  t.same(ok.outputs, outputsFor(rendered));
  t.match(ok.details, { readiness: /no Kubernetes readiness check configured/ });
  // A deprovision's verify wants the stack gone.
  await t.rejects(provider.verify(ctxFor(null, 'acme')), { code: 'E_VERIFY_MISMATCH' });
});

t.test('verify runs the readiness hook when one is configured', async (t) => {
  const engine = new FakePulumiEngine();
  const seen: string[] = [];
  const provider = createPulumiProvider({
    engine,
    verifyReadiness: async (ctx) => {
      seen.push(ctx.tenantId);
      return { summary: '3/3 workloads ready', details: { ready: 3 } };
    },
  });
  const rendered = renderTenant(tenantDoc('acme'));
  await engine.up('acme', rendered);
  const res = await provider.verify(ctxFor(rendered));
  t.same(seen, ['acme']);
  t.match(res.summary, /; 3\/3 workloads ready$/);
  t.same((res.details as { readiness: unknown }).readiness, { ready: 3 });
});

t.test('plan of an update lists updates with their fields; plan of a deprovision previews the destroy', async (t) => {
  const engine = new FakePulumiEngine();
  const provider = createPulumiProvider({ engine });
  await engine.up('acme', renderTenant(tenantDoc('acme')));
  const changed = renderTenant(tenantDoc('acme', { configuration: { databaseSize: 'db.t3.medium', storageGb: 80, enableHa: false } }));
  const plan = await provider.plan(ctxFor(changed));
  const updates = plan.changes.filter((c) => c.action === 'update');
  t.ok(updates.length > 0);
  t.ok(updates.every((c) => c.fields?.includes('spec')));
  t.match(plan.summary, /0 to create, \d+ to update, 0 to replace, 0 to delete, \d+ unchanged/);
  t.match(plan.details, { stack: 'organization/tenantd/tenant-acme', digest: changed.digest });
  t.notOk(plan.changes.some((c) => c.ref.kind === 'Stack'), "Pulumi's own resources are not tenant objects");

  const destroyPlan = await provider.plan(ctxFor(null, 'acme'));
  t.match(destroyPlan.summary, /^plan \(pulumi preview of destroy\): 0 to create, 0 to update, 0 to replace, \d+ to delete/);
  t.equal(destroyPlan.outputs, undefined);
});

t.test('refresh: drift is what a preview after the refresh would change; correct runs up', async (t) => {
  const engine = new FakePulumiEngine();
  const provider = createPulumiProvider({ engine });
  const rendered = renderTenant(tenantDoc('acme'));
  await engine.up('acme', rendered);
  let report = await provider.refresh(ctxFor(rendered), false);
  t.same(report, { drifted: false, changes: [], corrected: false });

  // Someone scaled a deployment by hand: the refreshed state differs from the program.
  const stack = engine.stacks.get('acme')!;
  const key = refKey({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'tenant-acme' });
  const live = structuredClone(stack.objects.get(key)!.obj);
  (live.spec as { replicas: number }).replicas = 7;
  stack.objects.set(key, { obj: live, json: canonicalJson(live) });
  report = await provider.refresh(ctxFor(rendered), false);
  t.equal(report.drifted, true);
  t.same(report.changes.map((c) => [refKey(c.ref), c.action]), [[key, 'update']]);
  t.equal(report.corrected, false);
  const ups = engine.count('up');
  report = await provider.refresh(ctxFor(rendered), true);
  t.equal(report.corrected, true);
  t.equal(engine.count('up'), ups + 1);
  t.same((await provider.refresh(ctxFor(rendered), false)).changes, [], 'corrected');

  // A stack that vanished: everything is missing.
  engine.stacks.delete('acme');
  report = await provider.refresh(ctxFor(rendered), false);
  t.equal(report.changes.length, allObjects(rendered).length);
  t.ok(report.changes.every((c) => c.action === 'create'));
});

t.test('guards: a bad tenant id or a rendering of another tenant is stalled; apply without desired destroys', async (t) => {
  const engine = new FakePulumiEngine();
  const provider = createPulumiProvider({ engine });
  t.equal(provider.name, 'pulumi');
  await t.rejects(provider.plan(ctxFor(null, 'Bad_Id')), { code: 'E_INVALID_TENANT_ID', kind: 'stalled' });
  await t.rejects(provider.apply(ctxFor(renderTenant(tenantDoc('other')), 'acme')), { code: 'E_TENANT_MISMATCH', kind: 'stalled' });
  await engine.up('acme', renderTenant(tenantDoc('acme')));
  const res = await provider.apply(ctxFor(null, 'acme'));
  t.match(res.summary, /^destroy \(pulumi destroy, then stack rm\): \d+ objects deleted/);
  t.notOk(engine.stacks.has('acme'));
  const again = await provider.destroy(ctxFor(null, 'acme'));
  t.match(again.summary, /does not exist; nothing to destroy/, 'destroy is idempotent');
  t.equal(await provider.ready?.(), true, 'an engine without ready() is assumed ready');
});

t.test('stateKeyFor and stack names follow project and organization', async (t) => {
  t.equal(stateKeyFor('acme'), 'organization/tenantd/tenant-acme');
  t.equal(stateKeyFor('acme', { project: 'platform', organization: 'globex' }), 'globex/platform/tenant-acme');
  const err: TenantdError = mapPulumiError(new Error('boom'), 'outputs', { tenantId: 'acme', stack: 's' });
  t.match(err, { code: 'E_PULUMI_OUTPUTS_FAILED', kind: 'retryable' });
});
