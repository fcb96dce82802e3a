/**
 * The kubernetes provider, phase by phase, against a real control plane (kube-apiserver, etcd and
 * kube-controller-manager 1.20.2: test/helpers/kube-cluster.ts): apply from nothing, readiness,
 * re-applies that change nothing, served versions, pruning, drift and plans. There is no kubelet:
 * the tests write workload status themselves (test/helpers/kube-target.ts).
 */
import t from 'tap';
import { INVENTORY_NAME, planAgainstCluster } from '../providers/kubernetes/provider.js';
import { allObjects, DATABASE_SECRET_NAME, objectRef, refKey, renderTenant } from '../providers/resources/renderer.js';
import type { KubeObject, KubeObjectRef } from '../providers/resources/types.js';
import { applyAll, dep, harness, ns, objectsIn, rejectsWith, svc } from './helpers/kube-harness.js';
import { type KubeProxy } from './helpers/kube-proxy.js';
import { eventually } from './helpers/kube-target.js';
import { tenantDoc } from './helpers/tenants.js';

t.test('a tenant applied from nothing: plan, apply, deploy, configure, then Verify waits for readiness', async (t) => {
  const h = await harness(t);
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
  for (const obj of rendered.groups.Apply.concat(rendered.groups.Deploy, rendered.groups.Configure)) {
    const live = await h.target.get(objectRef(obj));
    t.match(live?.metadata.labels, { 'app.kubernetes.io/managed-by': 'tenantd', 'tenantd.io/tenant-id': id }, refKey(objectRef(obj)));
  }
  const limits = await h.target.get({ apiVersion: 'v1', kind: 'LimitRange', name: 'tenant-limits', namespace: ns(id) });
  t.match(limits?.spec, { limits: [{ default: { memory: '512Mi' } }] });
  const inventory = await h.target.get({ apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace: ns(id) });
  const inv = (inventory?.data ?? {}) as Record<string, string>;
  t.same((JSON.parse(inv.Deploy ?? '[]') as KubeObjectRef[]).map(refKey), [refKey(dep(id, 'web')), refKey(svc(id, 'web'))].sort());

  // Verify: nothing is ready until the cluster says so. The test plays the workload controllers
  // (they have observed the objects, no replica runs yet), then the kubelet.
  await h.target.setReady(ns(id), 'Deployment', 'web', 0);
  await h.target.setReady(ns(id), 'StatefulSet', 'postgres', 0);
  h.progress.length = 0;
  let settled = false;
  const verifying = h.provider.verify(ctx).finally(() => {
    settled = true;
  });
  await eventually('first progress', () => h.progress.some((p) => p.message === 'web 0/2 ready'));
  t.ok(h.progress.some((p) => p.message === 'claim data-postgres-0 Pending'));
  t.notOk(settled, 'verify waits while workloads are not ready');
  await h.target.setReady(ns(id), 'Deployment', 'web', 1);
  await eventually('web 1/2', () => h.progress.some((p) => p.message === 'web 1/2 ready'));
  t.notOk(settled);
  await h.target.markAllReady(ns(id));
  const verified = await verifying;
  t.match(verified.summary, /ready/);
  t.match(verified.outputs, { namespace: ns(id), 'kubernetes.context': h.target.context, 'service.web.url': `http://web.${ns(id)}.svc.cluster.local:8080` });
  t.same(
    h.progress.filter((p) => p.message.startsWith('web ')).map((p) => p.message),
    ['web 0/2 ready', 'web 1/2 ready', 'web 2/2 ready'],
    'progress as replicas come up, each state once',
  );
  t.match(h.progress.find((p) => p.message === 'web 1/2 ready')?.data, { ref: refKey(dep(id, 'web')), readyReplicas: 1, desiredReplicas: 2 });

  // The Ingress address, once the ingress controller reports one, is an output.
  await h.target.patchStatus({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', name: 'tenant-ingress', namespace: ns(id) }, { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } }, 'ingress-nginx');
  t.equal((await h.provider.verify(ctx)).outputs?.['ingress.address'], '203.0.113.7');
});

t.test('a converged tenant re-applies as unchanged, whatever the controllers wrote to its objects', async (t) => {
  const h = await harness(t, {}, { proxy: true });
  const proxy = h.proxy as KubeProxy;
  const id = h.target.tenantId('steady');
  const doc = tenantDoc(id);
  const ctx = h.ctx(doc);
  await applyAll(h.provider, ctx);
  // What a live cluster does to the objects after tenantd applied them: the workload controllers
  // write status, the PV binder binds the claim (volumeName, annotations, status).
  await h.target.markAllReady(ns(id));
  const claim = await h.target.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data-postgres-0', namespace: ns(id) });
  t.match(claim, { spec: { volumeName: `pv-${ns(id)}-data-postgres-0` }, status: { phase: 'Bound' } }, 'the real binder bound the claim');

  proxy.clearRequests();
  for (const [phase, result] of [
    ['apply', await h.provider.apply(ctx)],
    ['deploy', await h.provider.deploy(ctx)],
    ['configure', await h.provider.configure(ctx)],
  ] as const) {
    t.match(result.summary, /up to date/, `${phase}: ${result.summary}`);
    t.same(result.details?.configured, [], `${phase}: nothing configured`);
  }
  // The inventory's fingerprints of the last apply stand in for reading each object first: one
  // request per object, plus the namespace and the inventory.
  const objects = allObjects(renderTenant(doc)).length;
  const reads = proxy.requests.filter((r) => r.method === 'GET').map((r) => r.path);
  t.same(
    reads.filter((p) => p !== `/api/v1/namespaces/${ns(id)}` && p !== `/api/v1/namespaces/${ns(id)}/configmaps/${INVENTORY_NAME}`),
    [],
    'no object is read before its apply',
  );
  t.equal(proxy.requests.filter((r) => r.method === 'PATCH').length, objects, 'one apply per object, no inventory write');
  t.ok(proxy.requests.length <= objects + 4, `${proxy.requests.length} requests for ${objects} objects`);
  const plan = await h.provider.plan(ctx);
  t.same(plan.changes.filter((c) => c.action !== 'unchanged'), [], 'a converged tenant plans no change');
  t.same(await h.provider.refresh(ctx, false), { drifted: false, changes: [], corrected: false }, 'and shows no drift');

  // A real change is still one.
  const more = tenantDoc(id, { services: [{ name: 'web', image: 'nginx:1.28', replicas: 2, port: 8080 }] });
  const changed = await h.provider.deploy(h.ctx(more));
  t.same(changed.details?.configured, [refKey(dep(id, 'web'))]);
});

t.test('an HA enterprise tenant gets its PodDisruptionBudgets in the version the cluster serves (policy/v1beta1 before 1.21)', async (t) => {
  const h = await harness(t);
  const kubelet = h.target.kubelet();
  const id = h.target.tenantId('big');
  const doc = tenantDoc(id, {
    tier: 'enterprise',
    configuration: { databaseSize: 'db.m5.large', storageGb: 500, enableHa: true },
    services: [{ name: 'web', image: 'nginx:1.27', replicas: 3, port: 8080, resources: { cpu: '0.5', memory: '1024Mi' } }],
    ingress: { hosts: ['big.example.com'], tls: { enabled: true, clusterIssuer: 'letsencrypt' } },
  });
  const rendered = renderTenant(doc);
  t.ok(
    rendered.groups.Apply.concat(rendered.groups.Deploy).some((o) => o.kind === 'PodDisruptionBudget' && o.apiVersion === 'policy/v1'),
    'the renderer writes policy/v1',
  );
  t.same(await h.provider.admit?.(doc, null), [], 'admitted: the cluster serves an older version');
  const ctx = h.ctx(doc);
  const results = await applyAll(h.provider, ctx);
  t.ok(results.every((r) => !/\b0 created/.test(r.summary)));
  const pdb = (name: string, apiVersion: string): KubeObjectRef => ({ apiVersion, kind: 'PodDisruptionBudget', name, namespace: ns(id) });
  t.ok(await h.target.get(pdb('web', 'policy/v1beta1')), 'web PDB as policy/v1beta1');
  t.ok(await h.target.get(pdb('postgres', 'policy/v1beta1')), 'database PDB as policy/v1beta1');
  await t.rejects(h.target.get(pdb('web', 'policy/v1')), { name: 'UnsupportedKindError' }, 'Kubernetes 1.20 does not serve policy/v1');
  const inv = ((await h.target.get({ apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace: ns(id) }))?.data ?? {}) as Record<string, string>;
  t.ok((JSON.parse(inv.Deploy ?? '[]') as KubeObjectRef[]).some((r) => r.kind === 'PodDisruptionBudget' && r.apiVersion === 'policy/v1beta1'), 'inventoried as sent');
  t.ok(await h.target.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data-postgres-1', namespace: ns(id) }));
  // Quantities the server canonicalizes (0.5 → 500m, 1024Mi → 1Gi) are no drift; nothing is pruned.
  t.same(await h.provider.refresh(ctx, false), { drifted: false, changes: [], corrected: false });
  const again = await h.provider.deploy(ctx);
  t.match(again.summary, /up to date/);
  t.same(again.details?.pruned, []);
  t.match((await h.provider.verify(ctx)).summary, /4 workloads and claims ready/);
  await kubelet.stop();
});

t.test('removing a service prunes exactly its Deployment and Service', async (t) => {
  const h = await harness(t, {}, { proxy: true });
  const proxy = h.proxy as KubeProxy;
  const id = h.target.tenantId('prune');
  const two = tenantDoc(id, {
    services: [
      { name: 'web', image: 'nginx:1.27', replicas: 2, port: 8080 },
      { name: 'api', image: 'ghcr.io/example/api:1.0', replicas: 1, port: 9090 },
    ],
  });
  await applyAll(h.provider, h.ctx(two));
  // Someone else's object in the tenant namespace.
  await h.target.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'team-notes', namespace: ns(id) }, data: { a: '1' } });
  // Including the token Secret the controller manager makes for each ServiceAccount (Kubernetes
  // before 1.24), which would otherwise appear between the two listings below.
  await eventually('the cluster’s own objects in the namespace', async () => {
    const names = await objectsIn(h.target, ns(id));
    const accounts = names.filter((n) => n.startsWith('ServiceAccount/')).map((n) => n.slice('ServiceAccount/'.length));
    const tokened = accounts.every((a) => names.some((n) => n.startsWith(`Secret/${a}-token-`)));
    return names.includes('ServiceAccount/default') && names.includes('ConfigMap/kube-root-ca.crt') && tokened;
  });
  const before = await objectsIn(h.target, ns(id));

  proxy.clearRequests();
  const one = tenantDoc(id, { services: [{ name: 'web', image: 'nginx:1.27', replicas: 2, port: 8080 }] });
  const plan = await h.provider.plan(h.ctx(one));
  t.same(plan.changes.filter((c) => c.action === 'delete').map((c) => refKey(c.ref)), [refKey(dep(id, 'api')), refKey(svc(id, 'api'))]);
  const result = await h.provider.deploy(h.ctx(one));
  t.same(result.details?.pruned, [refKey(dep(id, 'api')), refKey(svc(id, 'api'))]);
  t.equal(await h.target.get(dep(id, 'api')), null);
  t.equal(await h.target.get(svc(id, 'api')), null);
  t.ok(await h.target.get(dep(id, 'web')));
  t.same(
    proxy.requests.filter((r) => r.method === 'DELETE').map((r) => r.path),
    [`/apis/apps/v1/namespaces/${ns(id)}/deployments/api`, `/api/v1/namespaces/${ns(id)}/services/api`],
    'exactly two deletions',
  );
  const after = await objectsIn(h.target, ns(id));
  t.same(after, before.filter((k) => k !== 'Deployment/api' && k !== 'Service/api'), 'everything else stays, system objects and foreign ones included');
  t.ok(after.includes('ServiceAccount/default') && after.includes('ConfigMap/kube-root-ca.crt') && after.includes('ConfigMap/team-notes'));

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

  // A second field manager's server-side apply of the same field is a conflict too.
  const theirs: KubeObject = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: ns(id) }, spec: { replicas: 4 } };
  await h.target.applyAs(theirs, 'autoscaler', true);
  const second = await rejectsWith(t, h.provider.deploy(ctx), 'E_FIELD_CONFLICT');
  t.match(second.data, { managers: ['autoscaler'] });

  // spec.forceConflicts takes the field over on a normal apply.
  const forcedDoc = tenantDoc(id, { forceConflicts: true });
  const forced = await h.provider.deploy(h.ctx(forcedDoc));
  t.match((await h.target.get(dep(id, 'web')))?.spec, { replicas: 2 });
  t.same(forced.details?.configured, [refKey(dep(id, 'web'))], 'taking a field back is a change, though the object was not read first');
  const again = await h.provider.deploy(h.ctx(forcedDoc));
  t.same(again.details?.configured, [], 'and the next pass is up to date');
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
