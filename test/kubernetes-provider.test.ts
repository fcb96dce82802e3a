/**
 * The kubernetes provider, driven phase by phase against the Kubernetes API emulator (or a real
 * cluster: see test/helpers/kube-target.ts). Tests that need the emulator's controls skip on a
 * real cluster.
 */
import t, { type Test } from 'tap';
import { TenantdError } from '../core/errors.js';
import type { TenantInfrastructureDocument } from '../core/tenant/types.js';
import { createKubernetesProvider, INVENTORY_NAME, planAgainstCluster, type KubernetesProviderOptions } from '../providers/kubernetes/provider.js';
import type { InfrastructureProvider, PhaseResult, ProviderContext } from '../providers/provider.js';
import { DATABASE_SECRET_NAME, objectRef, refKey, renderTenant } from '../providers/resources/renderer.js';
import type { KubeObject, KubeObjectRef, RenderedTenant } from '../providers/resources/types.js';
import { eventually, startKubeTarget, type KubeTarget } from './helpers/kube-target.js';
import { tenantDoc } from './helpers/tenants.js';

interface Progress {
  message: string;
  data?: Record<string, unknown>;
}

interface Harness {
  target: KubeTarget;
  provider: InfrastructureProvider;
  progress: Progress[];
  ctx(doc: TenantInfrastructureDocument, options?: { desired?: RenderedTenant | null; signal?: AbortSignal }): ProviderContext;
}

async function harness(t: Test, providerOptions: KubernetesProviderOptions = {}, emulatorOptions: Parameters<typeof startKubeTarget>[1] = {}): Promise<Harness> {
  const target = await startKubeTarget(t, emulatorOptions);
  // Poll fast against the emulator, politely against a real API server.
  const pollIntervalMs = target.kind === 'emulator' ? 5 : 500;
  const provider = createKubernetesProvider({ kubeConfig: target.kubeConfig, pollIntervalMs, ...providerOptions });
  t.teardown(() => provider.close?.());
  const progress: Progress[] = [];
  return {
    target,
    provider,
    progress,
    ctx(doc, options = {}) {
      return {
        tenantId: doc.metadata.tenantId,
        tenant: doc,
        desired: options.desired === undefined ? renderTenant(doc) : options.desired,
        operationId: 'op-1',
        signal: options.signal ?? new AbortController().signal,
        progress: (message, data) => progress.push({ message, ...(data ? { data } : {}) }),
      };
    },
  };
}

/** Apply, Deploy and Configure in order, as the reconciler runs them. */
async function applyAll(p: InfrastructureProvider, ctx: ProviderContext): Promise<PhaseResult[]> {
  return [await p.apply(ctx), await p.deploy(ctx), await p.configure(ctx)];
}

async function rejectsWith(t: Test, promise: Promise<unknown>, code: string, kind?: string): Promise<TenantdError> {
  try {
    await promise;
  } catch (err: unknown) {
    t.ok(err instanceof TenantdError, `a TenantdError (got ${String(err)})`);
    const e = err as TenantdError;
    t.equal(e.code, code, `code ${code}: ${e.message}`);
    if (kind) t.equal(e.kind, kind, `kind ${kind}`);
    return e;
  }
  t.fail(`expected ${code}`);
  throw new Error(`expected ${code}`);
}

const ns = (id: string): string => `tenant-${id}`;
const dep = (id: string, name: string): KubeObjectRef => ({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: ns(id) });
const svc = (id: string, name: string): KubeObjectRef => ({ apiVersion: 'v1', kind: 'Service', name, namespace: ns(id) });

t.test('a tenant applied from nothing: plan, apply, deploy, configure, then Verify waits for readiness', async (t) => {
  const h = await harness(t);
  const emu = h.target.emulator(t);
  const id = h.target.tenantId('acme');
  const doc = tenantDoc(id, { ingress: { hosts: ['acme.example.com'] } });
  const ctx = h.ctx(doc);
  const rendered = renderTenant(doc);

  const plan = await h.provider.plan(ctx);
  t.ok(plan.changes.length > 10);
  t.ok(plan.changes.every((c) => c.action === 'create'), 'everything is created');
  t.match(plan.details, { namespaceExists: false, secretsToGenerate: [DATABASE_SECRET_NAME] });

  const [applied, deployed, configured] = await applyAll(h.provider, ctx);
  t.match(applied?.details, { group: 'Apply', created: rendered.groups.Apply.map((o) => refKey(objectRef(o))), secretsGenerated: [DATABASE_SECRET_NAME] });
  t.match(deployed?.details, { group: 'Deploy', created: [refKey(dep(id, 'web')), refKey(svc(id, 'web'))] });
  t.match(configured?.outputs, { namespace: ns(id), 'ingress.url': 'http://acme.example.com' });
  t.ok(h.progress.some((p) => p.message === `created ${refKey(dep(id, 'web'))}`));

  // Every object carries tenantd's labels; the LimitRange keeps its `default` (client-node's
  // serializer would drop it); the inventory lists each group.
  for (const obj of [...rendered.groups.Apply, ...rendered.groups.Deploy, ...rendered.groups.Configure]) {
    const live = await h.target.get(objectRef(obj));
    t.match(live?.metadata.labels, { 'app.kubernetes.io/managed-by': 'tenantd', 'tenantd.io/tenant-id': id }, refKey(objectRef(obj)));
  }
  const limits = await h.target.get({ apiVersion: 'v1', kind: 'LimitRange', name: 'tenant-limits', namespace: ns(id) });
  t.match(limits?.spec, { limits: [{ default: { memory: '512Mi' } }] });
  const inventory = await h.target.get({ apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace: ns(id) });
  const inv = (inventory?.data ?? {}) as Record<string, string>;
  t.same(
    (JSON.parse(inv.Deploy ?? '[]') as KubeObjectRef[]).map(refKey),
    [refKey(dep(id, 'web')), refKey(svc(id, 'web'))].sort(),
  );

  // Nothing changes the second time, and the dry-run plan says so.
  const again = await h.provider.apply(ctx);
  t.match(again.summary, /up to date/);
  const plan2 = await h.provider.plan(ctx);
  t.same(plan2.changes.filter((c) => c.action !== 'unchanged'), [], 'a converged tenant plans no change');

  if (!emu) return;
  // Verify: nothing is ready until the cluster says so.
  h.progress.length = 0;
  let settled = false;
  const verifying = h.provider.verify(ctx).finally(() => {
    settled = true;
  });
  await eventually('first progress', () => h.progress.some((p) => p.message === 'web 0/2 ready'));
  t.ok(h.progress.some((p) => p.message === 'claim data-postgres-0 Pending'));
  t.notOk(settled, 'verify waits while workloads are not ready');
  emu.setReady(ns(id), 'Deployment', 'web', 1);
  await eventually('web 1/2', () => h.progress.some((p) => p.message === 'web 1/2 ready'));
  t.notOk(settled);
  emu.markAllReady();
  const verified = await verifying;
  t.match(verified.summary, /ready/);
  t.match(verified.outputs, { namespace: ns(id), 'kubernetes.context': 'kube-emulator', 'service.web.url': `http://web.${ns(id)}.svc.cluster.local:8080` });
  t.same(
    h.progress.filter((p) => p.message.startsWith('web ')).map((p) => p.message),
    ['web 0/2 ready', 'web 1/2 ready', 'web 2/2 ready'],
    'progress as replicas come up, each state once',
  );
  t.match(h.progress.find((p) => p.message === 'web 1/2 ready')?.data, { ref: refKey(dep(id, 'web')), readyReplicas: 1, desiredReplicas: 2 });

  // The Ingress address, once the controller reports one, is an output.
  emu.edit({ kind: 'Ingress', namespace: ns(id), name: 'tenant-ingress' }, (o) => {
    o.status = { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } };
  }, { manager: 'ingress-nginx', subresource: 'status' });
  t.equal((await h.provider.verify(ctx)).outputs?.['ingress.address'], '203.0.113.7');
});

t.test('an HA enterprise tenant (two database replicas, PodDisruptionBudgets) applies, verifies and shows no drift', async (t) => {
  const h = await harness(t, {}, { autoReady: true });
  const id = h.target.tenantId('big');
  const doc = tenantDoc(id, {
    tier: 'enterprise',
    configuration: { databaseSize: 'db.m5.large', storageGb: 500, enableHa: true },
    services: [{ name: 'web', image: 'nginx:1.27', replicas: 3, port: 8080, resources: { cpu: '0.5', memory: '1024Mi' } }],
    ingress: { hosts: ['big.example.com'], tls: { enabled: true, clusterIssuer: 'letsencrypt' } },
  });
  const ctx = h.ctx(doc);
  const results = await applyAll(h.provider, ctx);
  t.ok(results.every((r) => !/\b0 created/.test(r.summary)));
  t.ok(await h.target.get({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', name: 'web', namespace: ns(id) }));
  t.ok(await h.target.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data-postgres-1', namespace: ns(id) }));
  // Quantities the server canonicalizes (0.5 → 500m, 1024Mi → 1Gi) are no drift.
  t.same(await h.provider.refresh(ctx, false), { drifted: false, changes: [], corrected: false });
  if (!h.target.emulator(t)) return;
  t.match((await h.provider.verify(ctx)).summary, /4 workloads and claims ready/);
});

t.test('removing a service prunes exactly its Deployment and Service', async (t) => {
  const h = await harness(t);
  const emu = h.target.emulator(t);
  const id = h.target.tenantId('prune');
  const two = tenantDoc(id, {
    services: [
      { name: 'web', image: 'nginx:1.27', replicas: 2, port: 8080 },
      { name: 'api', image: 'ghcr.io/example/api:1.0', replicas: 1, port: 9090 },
    ],
  });
  await applyAll(h.provider, h.ctx(two));
  // Someone else's objects in the tenant namespace, one of them named like a tenantd object would be.
  const foreign: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'team-notes', namespace: ns(id) }, data: { a: '1' } };
  if (emu) emu.seed(foreign);
  const before = emu ? emu.list(undefined, ns(id)).map((o) => `${o.kind}/${o.metadata.name}`).sort() : [];

  emu?.clearRequests();
  const one = tenantDoc(id, { services: [{ name: 'web', image: 'nginx:1.27', replicas: 2, port: 8080 }] });
  const plan = await h.provider.plan(h.ctx(one));
  t.same(plan.changes.filter((c) => c.action === 'delete').map((c) => refKey(c.ref)), [refKey(dep(id, 'api')), refKey(svc(id, 'api'))]);
  const result = await h.provider.deploy(h.ctx(one));
  t.same(result.details?.pruned, [refKey(dep(id, 'api')), refKey(svc(id, 'api'))]);
  t.equal(await h.target.get(dep(id, 'api')), null);
  t.equal(await h.target.get(svc(id, 'api')), null);
  t.ok(await h.target.get(dep(id, 'web')));
  if (!emu) return;
  t.same(
    emu.requests.filter((r) => r.method === 'DELETE').map((r) => r.path),
    [`/apis/apps/v1/namespaces/${ns(id)}/deployments/api`, `/api/v1/namespaces/${ns(id)}/services/api`],
    'exactly two deletions',
  );
  const after = emu.list(undefined, ns(id)).map((o) => `${o.kind}/${o.metadata.name}`).sort();
  t.same(after, before.filter((k) => k !== 'Deployment/api' && k !== 'Service/api'), 'everything else stays, system objects and foreign ones included');
  t.ok(after.includes('ServiceAccount/default') && after.includes('ConfigMap/kube-root-ca.crt') && after.includes('ConfigMap/team-notes'));
  t.ok(emu.get({ kind: 'Namespace', name: 'kube-system' }));

  // An inventoried object whose tenantd labels someone removed is never deleted.
  await h.target.edit(svc(id, 'web'), { metadata: { labels: { 'app.kubernetes.io/managed-by': null } } });
  const none = tenantDoc(id, { services: [] });
  const pruned = await h.provider.deploy(h.ctx(none));
  t.same(pruned.details?.pruned, [refKey(dep(id, 'web'))]);
  t.match(pruned.details?.skipped, [{ ref: refKey(svc(id, 'web')) }]);
  t.ok(await h.target.get(svc(id, 'web')), 'the unlabelled service stays');
});

t.test('drift: an edit by another manager is reported, then corrected; a conflict stalls unless forced', async (t) => {
  const h = await harness(t);
  const id = h.target.tenantId('drift');
  const doc = tenantDoc(id);
  const ctx = h.ctx(doc);
  await applyAll(h.provider, ctx);
  t.same(await h.provider.refresh(ctx, false), { drifted: false, changes: [], corrected: false });

  await h.target.edit(dep(id, 'web'), { spec: { replicas: 5 } });
  await h.target.edit({ apiVersion: 'v1', kind: 'ConfigMap', name: 'tenant-endpoints', namespace: ns(id) }, { data: { namespace: 'elsewhere', extra: 'kept' } });

  const reported = await h.provider.refresh(ctx, false);
  t.equal(reported.drifted, true);
  t.equal(reported.corrected, false);
  t.same(
    reported.changes.map((c) => [refKey(c.ref), c.action, c.fields]),
    [
      [refKey(dep(id, 'web')), 'update', ['spec.replicas']],
      [`v1/ConfigMap/${ns(id)}/tenant-endpoints`, 'update', ['data.namespace']],
    ],
    'the differing fields of tenantd’s own, not the key another manager added',
  );
  t.match((await h.target.get(dep(id, 'web')))?.spec, { replicas: 5 }, 'report only: nothing changed');

  // A normal apply does not overwrite another manager's field: it stalls and names both.
  const conflict = await rejectsWith(t, h.provider.deploy(ctx), 'E_FIELD_CONFLICT', 'stalled');
  t.match(conflict.data, { managers: ['kubectl-edit'], conflicts: [{ manager: 'kubectl-edit', field: '.spec.replicas' }] });
  t.match(conflict.message, /\.spec\.replicas \(owned by "kubectl-edit"\).*forceConflicts/);

  // The plan shows the conflict as an update of that field.
  const plan = await h.provider.plan(ctx);
  t.match(plan.changes.find((c) => refKey(c.ref) === refKey(dep(id, 'web'))), { action: 'update', fields: ['spec.replicas'] });
  t.match(plan.details, { conflicts: [{ manager: 'kubectl-edit', field: '.spec.replicas' }] });

  const corrected = await h.provider.refresh(ctx, true);
  t.equal(corrected.corrected, true);
  t.match((await h.target.get(dep(id, 'web')))?.spec, { replicas: 2 });
  const cm = await h.target.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'tenant-endpoints', namespace: ns(id) });
  t.match(cm?.data, { namespace: ns(id), extra: 'kept' });
  t.same(await h.provider.refresh(ctx, false), { drifted: false, changes: [], corrected: false });

  // A deleted object is drift too, and correcting re-creates it.
  await h.target.remove(svc(id, 'web'));
  const missing = await h.provider.refresh(ctx, false);
  t.same(missing.changes.map((c) => [refKey(c.ref), c.action]), [[refKey(svc(id, 'web')), 'create']]);
  await h.provider.refresh(ctx, true);
  t.ok(await h.target.get(svc(id, 'web')));

  // spec.forceConflicts takes the field over on a normal apply.
  await h.target.edit(dep(id, 'web'), { spec: { replicas: 7 } });
  await rejectsWith(t, h.provider.deploy(ctx), 'E_FIELD_CONFLICT');
  const forcedDoc = tenantDoc(id, { forceConflicts: true });
  await h.provider.deploy(h.ctx(forcedDoc));
  t.match((await h.target.get(dep(id, 'web')))?.spec, { replicas: 2 });
});

t.test('an unreachable API server makes every step wait with E_CLUSTER_UNREACHABLE', async (t) => {
  const h = await harness(t, { requestTimeoutMs: 200 });
  const emu = h.target.emulator(t);
  if (!emu) return;
  const ctx = h.ctx(tenantDoc('down'));
  t.equal(await h.provider.ready?.(), true);

  emu.setUnreachable(true);
  const dropped = await rejectsWith(t, h.provider.apply(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
  t.match(dropped.data, { cluster: /kube-emulator/ });
  await rejectsWith(t, h.provider.plan(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
  await rejectsWith(t, h.provider.verify(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
  t.equal(await h.provider.ready?.(), false);

  emu.setUnreachable(true, '503');
  const unavailable = await rejectsWith(t, h.provider.apply(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
  t.match(unavailable.data, { status: 503 });
  emu.setUnreachable(false);
  emu.injectError({ method: 'PATCH' }, 500);
  await rejectsWith(t, h.provider.apply(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
  t.equal(await h.provider.ready?.(), true);
  await h.provider.apply(ctx);

  // Connection refused, and a server that never answers (request timeout).
  const { createServer } = await import('node:http');
  const silent = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const silentPort = (silent.address() as { port: number }).port;
  const refused = createServer();
  await new Promise<void>((r) => refused.listen(0, '127.0.0.1', () => r()));
  const refusedPort = (refused.address() as { port: number }).port;
  await new Promise<void>((r) => refused.close(() => r()));
  for (const [port, errno] of [
    [refusedPort, 'ECONNREFUSED'],
    [silentPort, null],
  ] as const) {
    const kc = emu.kubeConfig();
    kc.clusters = [{ name: 'kube-emulator', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }];
    const p = createKubernetesProvider({ kubeConfig: kc, requestTimeoutMs: 100 });
    const err = await rejectsWith(t, p.apply(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
    if (errno) t.match(err.data, { errno });
    else t.match(err.data, { reason: 'Timeout' });
    t.equal(await p.ready?.(), false);
  }
});

t.test('API errors: 422 names the object and causes, 403 stalls, 404 retries, a foreign object is never adopted', async (t) => {
  const h = await harness(t);
  const emu = h.target.emulator(t);
  const id = h.target.tenantId('errs');
  const doc = tenantDoc(id);
  const ctx = h.ctx(doc);
  await h.provider.apply(ctx);

  const broken = structuredClone(renderTenant(doc));
  const web = broken.groups.Deploy.find((o) => o.kind === 'Deployment') as KubeObject;
  ((web.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0] as { image: string }).image = '';
  const invalid = await rejectsWith(t, h.provider.deploy(h.ctx(doc, { desired: broken })), 'E_INVALID_OBJECT', 'stalled');
  t.match(invalid.message, new RegExp(`apps/v1/Deployment/${ns(id)}/web`));
  t.match(invalid.data, { ref: refKey(dep(id, 'web')), status: 422, causes: [{ field: 'spec.template.spec.containers[0].image' }] });
  await rejectsWith(t, h.provider.plan(h.ctx(doc, { desired: broken })), 'E_INVALID_OBJECT', 'stalled');
  t.equal(await h.target.get(dep(id, 'web')), null, 'nothing of the invalid object was written');

  if (emu) {
    emu.injectError({ method: 'PATCH', path: /\/deployments\/web$/ }, 403);
    const forbidden = await rejectsWith(t, h.provider.deploy(ctx), 'E_FORBIDDEN', 'stalled');
    t.match(forbidden.data, { ref: refKey(dep(id, 'web')), status: 403 });
    emu.injectError({ method: 'PATCH', path: /\/services\/web$/ }, 404);
    await rejectsWith(t, h.provider.deploy(ctx), 'E_NOT_FOUND', 'retryable');
    emu.injectError({ method: 'PATCH', path: /\/deployments\/web$/ }, 401);
    await rejectsWith(t, h.provider.deploy(ctx), 'E_UNAUTHORIZED', 'stalled');
    emu.injectError({ method: 'PATCH', path: /\/deployments\/web$/ }, 409);
    await rejectsWith(t, h.provider.deploy(ctx), 'E_KUBE_CONFLICT', 'retryable');
  }

  // A Service of the same name that someone else made: stalled, untouched, nothing pruned.
  const foreign: KubeObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: ns(id), labels: { owner: 'someone' } },
    spec: { ports: [{ port: 80 }], selector: { app: 'x' } },
  };
  if (emu) emu.seed(foreign);
  else return;
  const notOwned = await rejectsWith(t, h.provider.deploy(ctx), 'E_NOT_OWNED', 'stalled');
  t.match(notOwned.data, { ref: refKey(svc(id, 'web')) });
  t.same((await h.target.get(svc(id, 'web')))?.metadata.labels, { owner: 'someone' });
});

t.test('a storage change replaces the StatefulSet (orphan) and grows its claims in place', async (t) => {
  const h = await harness(t);
  // A real cluster resizes only bound claims of an expandable storage class named per cloud (gp3).
  const emu = h.target.emulator(t, 'needs claims that bind and expand');
  if (!emu) return;
  const id = h.target.tenantId('grow');
  const small = tenantDoc(id);
  await applyAll(h.provider, h.ctx(small));
  const sts: KubeObjectRef = { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'postgres', namespace: ns(id) };
  const pvc: KubeObjectRef = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data-postgres-0', namespace: ns(id) };
  const uid = (await h.target.get(sts))?.metadata.uid;
  const pvcUid = (await h.target.get(pvc))?.metadata.uid;

  const big = tenantDoc(id, { configuration: { databaseSize: 'db.t3.medium', storageGb: 80, enableHa: false } });
  const plan = await h.provider.plan(h.ctx(big));
  t.match(plan.changes.find((c) => refKey(c.ref) === refKey(sts)), { action: 'replace', fields: ['spec.volumeClaimTemplates[0].spec.resources.requests.storage'] });
  t.match(plan.changes.find((c) => refKey(c.ref) === refKey(pvc)), { action: 'update', fields: ['spec.resources.requests.storage'] });

  emu.clearRequests();
  const applied = await h.provider.apply(h.ctx(big));
  t.same(applied.details?.replaced, [refKey(sts)]);
  const after = await h.target.get(sts);
  t.not(after?.metadata.uid, uid, 'a new StatefulSet');
  t.match(after?.spec, { volumeClaimTemplates: [{ spec: { resources: { requests: { storage: '80Gi' } } } }] });
  const claim = await h.target.get(pvc);
  t.equal(claim?.metadata.uid, pvcUid, 'the claim is the same object');
  t.match(claim?.spec, { resources: { requests: { storage: '80Gi' } } });
  const deletes = emu.requests.filter((r) => r.method === 'DELETE');
  t.equal(deletes.length, 1);
  t.match(deletes[0], { path: `/apis/apps/v1/namespaces/${ns(id)}/statefulsets/postgres`, query: { propagationPolicy: 'Orphan' } });
  t.match((await h.provider.apply(h.ctx(big))).summary, /up to date/);
});

t.test('Verify: a failed rollout and a timeout end in retryable errors naming what is not ready', async (t) => {
  const clock = { ms: Date.UTC(2026, 0, 1) };
  const sleeps: number[] = [];
  const h = await harness(t, {
    now: () => new Date(clock.ms),
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.ms += ms;
      await new Promise((r) => setImmediate(r));
    },
    pollIntervalMs: 10_000,
  });
  const emu = h.target.emulator(t);
  if (!emu) return;
  const doc = tenantDoc('slow', { verifyTimeoutSeconds: 60 });
  const ctx = h.ctx(doc);
  await applyAll(h.provider, ctx);
  await eventually('controller observed web', () => (emu.get({ kind: 'Deployment', namespace: ns('slow'), name: 'web' })?.status as { observedGeneration?: number } | undefined)?.observedGeneration === 1);

  const timeout = await rejectsWith(t, h.provider.verify(ctx), 'E_VERIFY_TIMEOUT', 'retryable');
  t.equal(timeout.message, 'tenant slow not ready after 60 s: claim data-postgres-0 Pending, postgres 0/1 ready, web 0/2 ready');
  t.match(timeout.data, {
    timeoutMs: 60_000,
    pending: [
      { ref: `v1/PersistentVolumeClaim/${ns('slow')}/data-postgres-0`, summary: 'claim data-postgres-0 Pending' },
      { ref: `apps/v1/StatefulSet/${ns('slow')}/postgres`, summary: 'postgres 0/1 ready' },
      { ref: refKey(dep('slow', 'web')), summary: 'web 0/2 ready' },
    ],
  });
  t.same(sleeps, [10_000, 10_000, 10_000, 10_000, 10_000, 10_000], 'polled on the injected clock');

  // Without spec.verifyTimeoutSeconds the tier decides (professional: 600 s).
  sleeps.length = 0;
  const tier = await rejectsWith(t, h.provider.verify(h.ctx(tenantDoc('slow'))), 'E_VERIFY_TIMEOUT');
  t.match(tier.data, { timeoutMs: 600_000 });

  emu.failRollout(ns('slow'), 'web');
  const failed = await rejectsWith(t, h.provider.verify(ctx), 'E_ROLLOUT_FAILED', 'retryable');
  t.match(failed.message, new RegExp(`rollout of apps/v1/Deployment/${ns('slow')}/web failed: ProgressDeadlineExceeded`));
  t.match(failed.data, { ref: refKey(dep('slow', 'web')), reason: 'ProgressDeadlineExceeded' });

  emu.markAllReady();
  t.match((await h.provider.verify(ctx)).summary, /ready/);
});

t.test('Verify stops promptly when the operation is aborted', async (t) => {
  const h = await harness(t, { pollIntervalMs: 60_000 });
  const emu = h.target.emulator(t);
  if (!emu) return;
  const doc = tenantDoc('abort');
  await applyAll(h.provider, h.ctx(doc));
  const controller = new AbortController();
  const verifying = h.provider.verify(h.ctx(doc, { signal: controller.signal }));
  await eventually('first poll', () => h.progress.some((p) => p.message === 'web 0/2 ready'));
  const started = Date.now();
  controller.abort(new Error('a newer commit'));
  await rejectsWith(t, verifying, 'E_ABORTED');
  t.ok(Date.now() - started < 1000, `stopped in ${Date.now() - started} ms`);
  // An already aborted signal does no work at all.
  emu.clearRequests();
  await rejectsWith(t, h.provider.apply(h.ctx(doc, { signal: controller.signal })), 'E_ABORTED');
  t.equal(emu.requests.length, 0);
});

t.test('deprovision: destroy deletes only tenantd objects, Verify waits until the namespace is gone', async (t) => {
  const h = await harness(t, {}, { namespaceFinalization: 'manual' });
  const emu = h.target.emulator(t);
  const id = h.target.tenantId('bye');
  const doc = tenantDoc(id);
  await applyAll(h.provider, h.ctx(doc));
  const gone = h.ctx(doc, { desired: null });

  const plan = await h.provider.plan(gone);
  t.ok(plan.changes.length > 5 && plan.changes.every((c) => c.action === 'delete'));
  t.equal(refKey(plan.changes.at(-1)?.ref as KubeObjectRef), `v1/Namespace/${ns(id)}`);

  const destroyed = await h.provider.destroy(gone);
  t.match(destroyed.details, { namespace: 'deleting' });
  t.ok((destroyed.details?.deleted as string[]).includes(refKey(dep(id, 'web'))));

  if (!emu) {
    await h.provider.verify(gone);
    t.equal(await h.target.get({ apiVersion: 'v1', kind: 'Namespace', name: ns(id) }), null);
    return;
  }
  // Something with a finalizer holds the namespace until its finalizer is removed.
  emu.seed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'held', namespace: 'default', finalizers: ['example.com/hold'] } });
  t.ok(emu.get({ kind: 'Namespace', name: ns(id) })?.metadata.deletionTimestamp, 'terminating');
  let settled = false;
  const verifying = h.provider.verify(gone).finally(() => {
    settled = true;
  });
  await eventually('terminating progress', () => h.progress.some((p) => p.message.startsWith(`namespace ${ns(id)} terminating`)));
  t.notOk(settled);
  while (emu.stepNamespaces() > 0) {
    await new Promise((r) => setTimeout(r, 10));
    t.notOk(settled, 'not before the namespace is gone');
  }
  const verified = await verifying;
  t.match(verified.summary, /is gone/);
  t.notOk(emu.get({ kind: 'Namespace', name: ns(id) }));
  t.ok(emu.get({ kind: 'Namespace', name: 'default' }) && emu.get({ kind: 'Namespace', name: 'kube-system' }));

  // Idempotent: a second destroy and verify find nothing to do.
  t.match((await h.provider.destroy(gone)).summary, /does not exist/);
  t.match((await h.provider.verify(gone)).summary, /is gone/);
});

t.test('deprovision: a namespace that does not go away ends in E_NAMESPACE_TERMINATING', async (t) => {
  const clock = { ms: 0 };
  const h = await harness(
    t,
    {
      now: () => new Date(clock.ms),
      sleep: async (ms) => {
        clock.ms += ms;
        await new Promise((r) => setImmediate(r));
      },
      pollIntervalMs: 1000,
      namespaceDeleteTimeoutMs: 5000,
    },
    { namespaceFinalization: 'manual' },
  );
  const emu = h.target.emulator(t);
  if (!emu) return;
  const doc = tenantDoc('stuck');
  await h.provider.apply(h.ctx(doc));
  emu.seed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'held', namespace: ns('stuck'), finalizers: ['example.com/hold'] } });
  const gone = h.ctx(doc, { desired: null });
  await h.provider.destroy(gone);
  emu.stepNamespaces();
  emu.stepNamespaces();
  const err = await rejectsWith(t, h.provider.verify(gone), 'E_NAMESPACE_TERMINATING', 'retryable');
  t.match(err.message, /example\.com\/hold/);
  t.match(err.data, { namespace: ns('stuck'), finalizers: ['kubernetes'] });
});

t.test('generated credentials: created once, kept across providers, never outside the Secret', async (t) => {
  const calls: number[] = [];
  const randomBytes = (n: number): Buffer => {
    calls.push(n);
    return Buffer.alloc(n, 0x5a + calls.length);
  };
  const h = await harness(t, { randomBytes });
  const emu = h.target.emulator(t);
  const id = h.target.tenantId('secret');
  const doc = tenantDoc(id);
  const ctx = h.ctx(doc);
  const recorded: unknown[] = [];
  const capture = async <T>(p: Promise<T>): Promise<T | undefined> => {
    try {
      const v = await p;
      recorded.push(v);
      return v;
    } catch (err: unknown) {
      recorded.push(err instanceof TenantdError ? { message: err.message, data: err.data, code: err.code } : String(err));
      return undefined;
    }
  };
  if (emu) emu.autoReady = true;
  await capture(h.provider.plan(ctx));
  await capture(h.provider.apply(ctx));
  await capture(h.provider.deploy(ctx));
  await capture(h.provider.configure(ctx));
  if (emu) await capture(h.provider.verify(ctx));
  await capture(h.provider.refresh(ctx, false));
  await capture(h.provider.plan(ctx));
  t.same(calls, [24], 'one value generated');
  const value = Buffer.alloc(24, 0x5b).toString('base64url');
  const secretRef: KubeObjectRef = { apiVersion: 'v1', kind: 'Secret', name: DATABASE_SECRET_NAME, namespace: ns(id) };
  const secret = await h.target.get(secretRef);
  const data = (secret?.data ?? {}) as Record<string, string>;
  t.equal(Buffer.from(data.password ?? '', 'base64').toString('utf8'), value, 'the Secret holds the value');
  t.equal(Buffer.from(data.username ?? '', 'base64').toString('utf8'), 'app');
  t.match(secret?.metadata.annotations, { 'tenantd.io/generated-secret': 'true' });

  // A fresh provider (the daemon's data dir lost) keeps the value the cluster has.
  const again = createKubernetesProvider({ kubeConfig: h.target.kubeConfig, randomBytes, pollIntervalMs: 5 });
  await capture(again.apply(ctx));
  t.same(calls, [24], 'not regenerated');

  // A wiped key is drift; correcting generates the missing key only.
  await h.target.edit(secretRef, { data: { password: null } });
  const drift = await capture(h.provider.refresh(ctx, false));
  t.match(drift?.changes, [{ ref: secretRef, action: 'update', fields: ['data.password'] }]);
  await capture(h.provider.refresh(ctx, true));
  t.equal(calls.length, 2);
  const second = Buffer.alloc(24, 0x5c).toString('base64url');

  // An error while writing the values never quotes them.
  if (emu) {
    await h.target.edit(secretRef, { data: { password: null } });
    emu.injectError({ method: 'PATCH', fieldManager: 'tenantd-secrets' }, 422, 1, { message: `Secret is invalid: data[password]: value ${Buffer.alloc(24, 0x5d).toString('base64url')} rejected` });
    await capture(h.provider.apply(ctx));
    t.equal((recorded.at(-1) as { code?: string }).code, 'E_INVALID_OBJECT');
  }
  const third = Buffer.alloc(24, 0x5d).toString('base64url');

  const texts = [JSON.stringify(recorded), JSON.stringify(h.progress)];
  if (emu) {
    const isValueWrite = (r: (typeof emu.requests)[number]): boolean => r.method === 'PATCH' && r.fieldManager === 'tenantd-secrets';
    t.ok(emu.requests.some(isValueWrite));
    texts.push(JSON.stringify(emu.requests.filter((r) => !isValueWrite(r))));
  }
  for (const v of [value, second, third]) {
    for (const form of [v, Buffer.from(v).toString('base64')]) {
      t.notOk(texts.some((text) => text.includes(form)), `no trace of ${form.slice(0, 6)}…`);
    }
  }
});

t.test('plan works standalone (tenantd plan --provider kubernetes) and shows per-object dry-run diffs', async (t) => {
  const h = await harness(t);
  const id = h.target.tenantId('pr');
  const doc = tenantDoc(id);
  await applyAll(h.provider, h.ctx(doc));
  const changed = tenantDoc(id, { services: [{ name: 'web', image: 'nginx:1.28', replicas: 3, port: 8080 }] });
  const plan = await planAgainstCluster(h.provider, changed, renderTenant(changed));
  t.same(
    plan.changes.filter((c) => c.action !== 'unchanged').map((c) => [refKey(c.ref), c.action, c.fields]),
    [[refKey(dep(id, 'web')), 'update', ['spec.replicas', 'spec.template.spec.containers[0].image']]],
  );
  t.match(plan.summary, /0 to create, 1 to update, 0 to replace, 0 to delete/);
  t.match((await h.target.get(dep(id, 'web')))?.spec, { replicas: 2 }, 'a dry run changes nothing');
});
