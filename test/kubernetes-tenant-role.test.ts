/**
 * The kubernetes provider with `tenantRole` (the chart's least-privilege RBAC) as a ServiceAccount
 * of its own, on the real control plane: the chart's RBAC rendered for a release of this run, the
 * ServiceAccount's token from the token controller. A bound role the authorizer does not honour
 * is a retryable E_TENANT_ROLE_PENDING (nothing inside the namespace is touched), recovered once
 * it does; a namespace of the tenant's name that tenantd did not create gets no RoleBinding.
 * test/helm-rbac.test.ts runs the whole daemon this way.
 */
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { KubeConfig } from '@kubernetes/client-node';
import { createKubernetesProvider, E_TENANT_ROLE_PENDING, subjectFromUserName } from '../providers/kubernetes/provider.js';
import type { KubeObject } from '../providers/resources/types.js';
import { helmTemplate, parseObjects } from './helpers/helm.js';
import { rejectsWith } from './helpers/kube-harness.js';
import { testCluster, tokenKubeConfig } from './helpers/kube-cluster.js';
import { eventually, startKubeTarget, type KubeTarget } from './helpers/kube-target.js';
import { tenantDoc } from './helpers/tenants.js';
import { renderTenant } from '../providers/resources/renderer.js';
import type { ProviderContext } from '../providers/provider.js';

interface Release {
  target: KubeTarget;
  kubeConfig: KubeConfig;
  tenantRole: string;
  subject: string;
}

/** The chart's ServiceAccount and RBAC for a release of this run, applied as admin; the ServiceAccount's kubeconfig. */
async function release(t: Test): Promise<Release> {
  const target = await startKubeTarget(t);
  const name = `tr${randomBytes(3).toString('hex')}`;
  const namespace = `${name}-system`;
  const objects = parseObjects(await helmTemplate({}, name, namespace)).filter((o) => o.kind === 'ServiceAccount' || o.kind.includes('Role'));
  await target.applyAs({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }, 'test-admin');
  t.teardown(async () => {
    for (const o of objects.filter((x) => x.kind.startsWith('Cluster'))) await target.remove({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name }).catch(() => undefined);
    await target.remove({ apiVersion: 'v1', kind: 'Namespace', name: namespace }).catch(() => undefined);
  });
  for (const o of objects) await target.applyAs(o as unknown as KubeObject, 'test-admin');
  const sa = `${name}-tenantd`;
  const secretName = await eventually('the token Secret', async () => ((await target.get({ apiVersion: 'v1', kind: 'ServiceAccount', name: sa, namespace })) as { secrets?: { name: string }[] } | null)?.secrets?.[0]?.name, 120_000);
  const secret = (await target.get({ apiVersion: 'v1', kind: 'Secret', name: secretName, namespace })) as { data?: { token?: string } } | null;
  const cluster = await testCluster();
  const admin = new KubeConfig();
  admin.loadFromFile(cluster.kubeconfigPath);
  if (cluster.context) admin.setCurrentContext(cluster.context);
  const kubeConfig = tokenKubeConfig(admin.getCurrentCluster()?.server ?? '', Buffer.from(secret?.data?.token ?? '', 'base64').toString('utf8'), name);
  return { target, kubeConfig, tenantRole: `${name}-tenantd-tenant`, subject: `system:serviceaccount:${namespace}:${sa}` };
}

const ctxFor = (id: string): ProviderContext => {
  const doc = tenantDoc(id);
  return { tenantId: id, tenant: doc, desired: renderTenant(doc), operationId: 'op-1', signal: new AbortController().signal, progress: () => undefined };
};

t.test('a tenant role the authorizer does not honour is E_TENANT_ROLE_PENDING, and recovers once it does', async (t) => {
  const r = await release(t);
  const provider = createKubernetesProvider({
    kubeConfig: r.kubeConfig,
    pollIntervalMs: 100,
    tenantRole: { clusterRole: r.tenantRole, subject: subjectFromUserName(r.subject) },
    tenantRoleTimeoutMs: 2000,
  });
  t.teardown(() => provider.close?.());
  const id = r.target.tenantId('pending');
  const ns = `tenant-${id}`;
  // The role loses what tenantd needs first (the inventory ConfigMap): binding it grants nothing useful.
  const roleRef = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', name: r.tenantRole };
  const full = await r.target.get(roleRef);
  const rules = (full as unknown as { rules: { resources: string[] }[] }).rules;
  await r.target.edit(roleRef, { rules: rules.map((rule) => ({ ...rule, resources: rule.resources.filter((x) => x !== 'configmaps') })) });

  const ctx = ctxFor(id);
  const err = await rejectsWith(t, provider.apply(ctx), E_TENANT_ROLE_PENDING, 'retryable');
  t.match(err.message, new RegExp(`RoleBinding ${ns}/${r.tenantRole} is applied but`));
  t.ok(await r.target.get({ apiVersion: 'v1', kind: 'Namespace', name: ns }), 'the namespace was created');
  t.match(await r.target.get({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', name: r.tenantRole, namespace: ns }), { subjects: [subjectFromUserName(r.subject)] }, 'and the role bound there');
  t.same((await r.target.list('v1', 'ConfigMap', ns)).filter((c) => c.metadata.name !== 'kube-root-ca.crt'), [], 'nothing went in before access was confirmed');

  // The role restored: the retry goes through.
  await r.target.edit(roleRef, { rules });
  const applied = await provider.apply(ctx);
  t.match(applied.summary, /^apply: \d+ created/);
  t.ok((await r.target.list('v1', 'Secret', ns)).some((s) => s.metadata.name.startsWith('postgres')), 'the tenant Secret is written');
});

t.test("a namespace of the tenant's name that tenantd did not create: E_NOT_OWNED, no RoleBinding, a deprovision leaves it", async (t) => {
  const r = await release(t);
  const provider = createKubernetesProvider({ kubeConfig: r.kubeConfig, pollIntervalMs: 100, tenantRole: { clusterRole: r.tenantRole, subject: subjectFromUserName(r.subject) } });
  t.teardown(() => provider.close?.());
  const id = r.target.tenantId('foreign');
  const ns = `tenant-${id}`;
  await r.target.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const err = await rejectsWith(t, provider.apply(ctxFor(id)), 'E_NOT_OWNED', 'stalled');
  t.match(err.message, new RegExp(`v1/Namespace/${ns} already exists and was not created by tenantd`));
  await rejectsWith(t, provider.plan(ctxFor(id)), 'E_NOT_OWNED', 'stalled');
  // Its deprovision touches nothing and ends: the namespace is kept.
  const gone = { ...ctxFor(id), desired: null };
  t.match((await provider.destroy(gone)).summary, /was not created by tenantd; nothing to delete/);
  t.match((await provider.verify(gone)).summary, /was not created by tenantd and is kept/);
  t.ok(await r.target.get({ apiVersion: 'v1', kind: 'Namespace', name: ns }), 'the namespace is still there');
  t.equal(await r.target.get({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', name: r.tenantRole, namespace: ns }), null, 'tenantd did not bind itself into it');
});
