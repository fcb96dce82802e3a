/**
 * The kubernetes provider over a tenant's life on the real control plane: storage that grows (and a
 * shrink Kubernetes refuses), Verify's timeouts and failed rollouts, deprovisioning until the
 * namespace controller has really removed the namespace, and generated credentials.
 */
import t from 'tap';
import { TenantdError } from '../core/errors.js';
import { createKubernetesProvider } from '../providers/kubernetes/provider.js';
import { DATABASE_SECRET_NAME, refKey } from '../providers/resources/renderer.js';
import type { KubeObjectRef } from '../providers/resources/types.js';
import { applyAll, dep, harness, ns, rejectsWith, sts } from './helpers/kube-harness.js';
import type { KubeProxy } from './helpers/kube-proxy.js';
import { eventually } from './helpers/kube-target.js';
import { tenantDoc } from './helpers/tenants.js';

t.test('storage: a bound claim grows in place and its StatefulSet is replaced (orphan); a shrink is refused by the API server', async (t) => {
  const h = await harness(t, {}, { proxy: true });
  const proxy = h.proxy as KubeProxy;
  const id = h.target.tenantId('grow');
  const small = tenantDoc(id);
  await applyAll(h.provider, h.ctx(small));
  // Only a bound claim of an expandable storage class may grow: bind it as a provisioner would.
  await h.target.markAllReady(ns(id));
  const pvc: KubeObjectRef = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data-postgres-0', namespace: ns(id) };
  const uid = (await h.target.get(sts(id)))?.metadata.uid;
  const pvcUid = (await h.target.get(pvc))?.metadata.uid;

  const big = tenantDoc(id, { configuration: { databaseSize: 'db.t3.medium', storageGb: 80, enableHa: false } });
  const plan = await h.provider.plan(h.ctx(big));
  t.match(plan.changes.find((c) => refKey(c.ref) === refKey(sts(id))), { action: 'replace', fields: ['spec.volumeClaimTemplates[0].spec.resources.requests.storage'] });
  t.match(plan.changes.find((c) => refKey(c.ref) === refKey(pvc)), { action: 'update', fields: ['spec.resources.requests.storage'] });

  proxy.clearRequests();
  const applied = await h.provider.apply(h.ctx(big));
  t.same(applied.details?.replaced, [refKey(sts(id))]);
  const after = await h.target.get(sts(id));
  t.not(after?.metadata.uid, uid, 'a new StatefulSet');
  t.match(after?.spec, { volumeClaimTemplates: [{ spec: { resources: { requests: { storage: '80Gi' } } } }] });
  const claim = await h.target.get(pvc);
  t.equal(claim?.metadata.uid, pvcUid, 'the claim is the same object');
  t.match(claim?.spec, { resources: { requests: { storage: '80Gi' } } });
  const deletes = proxy.requests.filter((r) => r.method === 'DELETE');
  t.equal(deletes.length, 1);
  t.match(deletes[0], { path: `/apis/apps/v1/namespaces/${ns(id)}/statefulsets/postgres`, query: { propagationPolicy: 'Orphan' } });
  t.match((await h.provider.apply(h.ctx(big))).summary, /up to date/);

  // Kubernetes never shrinks a claim: the server refuses it, tenantd stalls before touching the StatefulSet.
  const shrunk = tenantDoc(id, { configuration: { databaseSize: 'db.t3.medium', storageGb: 40, enableHa: false } });
  const refused = await rejectsWith(t, h.provider.apply(h.ctx(shrunk)), 'E_INVALID_OBJECT', 'stalled');
  t.match(refused.message, /PersistentVolumeClaim/);
  t.match(refused.message, /less than previous value/);
  t.equal((await h.target.get(sts(id)))?.metadata.uid, after?.metadata.uid, 'the StatefulSet is left alone');
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
  const id = h.target.tenantId('slow');
  const doc = tenantDoc(id, { verifyTimeoutSeconds: 60 });
  const ctx = h.ctx(doc);
  await applyAll(h.provider, ctx);
  // The controllers have observed both workloads; nothing runs.
  await h.target.setReady(ns(id), 'Deployment', 'web', 0);
  await h.target.setReady(ns(id), 'StatefulSet', 'postgres', 0);

  const timeout = await rejectsWith(t, h.provider.verify(ctx), 'E_VERIFY_TIMEOUT', 'retryable');
  t.equal(timeout.message, `tenant ${id} not ready after 60 s: claim data-postgres-0 Pending, postgres 0/1 ready, web 0/2 ready`);
  t.match(timeout.data, {
    timeoutMs: 60_000,
    pending: [
      { ref: `v1/PersistentVolumeClaim/${ns(id)}/data-postgres-0`, summary: 'claim data-postgres-0 Pending' },
      { ref: refKey(sts(id)), summary: 'postgres 0/1 ready' },
      { ref: refKey(dep(id, 'web')), summary: 'web 0/2 ready' },
    ],
  });
  t.same(sleeps, [10_000, 10_000, 10_000, 10_000, 10_000, 10_000], 'polled on the injected clock');

  // Without spec.verifyTimeoutSeconds the tier decides (professional: 600 s).
  sleeps.length = 0;
  const tier = await rejectsWith(t, h.provider.verify(h.ctx(tenantDoc(id))), 'E_VERIFY_TIMEOUT');
  t.match(tier.data, { timeoutMs: 600_000 });

  await h.target.failRollout(ns(id), 'web');
  const failed = await rejectsWith(t, h.provider.verify(ctx), 'E_ROLLOUT_FAILED', 'retryable');
  t.match(failed.message, new RegExp(`rollout of apps/v1/Deployment/${ns(id)}/web failed: ProgressDeadlineExceeded`));
  t.match(failed.data, { ref: refKey(dep(id, 'web')), reason: 'ProgressDeadlineExceeded' });

  await h.target.markAllReady(ns(id));
  t.match((await h.provider.verify(ctx)).summary, /ready/);
});

t.test('deprovision: destroy deletes only tenantd objects, Verify waits until the namespace is really gone', async (t) => {
  const h = await harness(t);
  const id = h.target.tenantId('bye');
  const doc = tenantDoc(id);
  await applyAll(h.provider, h.ctx(doc));
  // Something with a finalizer holds the namespace until its finalizer is removed.
  const held: KubeObjectRef = { apiVersion: 'v1', kind: 'ConfigMap', name: 'held', namespace: ns(id) };
  await h.target.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'held', namespace: ns(id), finalizers: ['example.com/hold'] } });
  const gone = h.ctx(doc, { desired: null });

  const plan = await h.provider.plan(gone);
  t.ok(plan.changes.length > 5 && plan.changes.every((c) => c.action === 'delete'));
  t.equal(refKey(plan.changes.at(-1)?.ref as KubeObjectRef), `v1/Namespace/${ns(id)}`);

  const destroyed = await h.provider.destroy(gone);
  t.match(destroyed.details, { namespace: 'deleting' });
  t.ok((destroyed.details?.deleted as string[]).includes(refKey(dep(id, 'web'))));
  t.notOk((destroyed.details?.deleted as string[]).some((k) => k.endsWith('/held')), 'tenantd deleted only its own objects');
  t.ok((await h.target.get({ apiVersion: 'v1', kind: 'Namespace', name: ns(id) }))?.metadata.deletionTimestamp, 'terminating');

  let settled = false;
  const verifying = h.provider.verify(gone).finally(() => {
    settled = true;
  });
  await eventually('the namespace controller reports the finalizer', () => h.progress.some((p) => p.message.includes('example.com/hold')), 60_000);
  t.notOk(settled, 'not before the namespace is gone');
  await h.target.edit(held, { metadata: { finalizers: null } });
  const verified = await verifying;
  t.match(verified.summary, /is gone/);
  t.equal(await h.target.get({ apiVersion: 'v1', kind: 'Namespace', name: ns(id) }), null);
  t.ok(await h.target.get({ apiVersion: 'v1', kind: 'Namespace', name: 'kube-system' }));

  // Idempotent: a second destroy and verify find nothing to do.
  t.match((await h.provider.destroy(gone)).summary, /does not exist/);
  t.match((await h.provider.verify(gone)).summary, /is gone/);
});

t.test('deprovision: a namespace that does not go away ends in E_NAMESPACE_TERMINATING', async (t) => {
  const clock = { ms: 0 };
  const h = await harness(t, {
    now: () => new Date(clock.ms),
    sleep: async (ms) => {
      clock.ms += ms;
      await new Promise((r) => setImmediate(r));
    },
    pollIntervalMs: 1000,
    namespaceDeleteTimeoutMs: 5000,
  });
  const id = h.target.tenantId('stuck');
  const doc = tenantDoc(id);
  await h.provider.apply(h.ctx(doc));
  const held: KubeObjectRef = { apiVersion: 'v1', kind: 'ConfigMap', name: 'held', namespace: ns(id) };
  await h.target.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'held', namespace: ns(id), finalizers: ['example.com/hold'] } });
  t.teardown(() => h.target.edit(held, { metadata: { finalizers: null } }).catch(() => undefined));
  const gone = h.ctx(doc, { desired: null });
  await h.provider.destroy(gone);
  // Wait for the namespace controller to say what holds it (real time), then time out on the fake clock.
  await eventually(
    'NamespaceFinalizersRemaining',
    async () => JSON.stringify((await h.target.get({ apiVersion: 'v1', kind: 'Namespace', name: ns(id) }))?.status ?? {}).includes('example.com/hold'),
    60_000,
  );
  const err = await rejectsWith(t, h.provider.verify(gone), 'E_NAMESPACE_TERMINATING', 'retryable');
  t.match(err.message, /example\.com\/hold/);
  t.match(err.data, { namespace: ns(id), finalizers: ['kubernetes'] });
});

t.test('generated credentials: created once, kept across providers, never outside the Secret', async (t) => {
  const calls: number[] = [];
  const randomBytes = (n: number): Buffer => {
    calls.push(n);
    return Buffer.alloc(n, 0x5a + calls.length);
  };
  const h = await harness(t, { randomBytes }, { proxy: true });
  const proxy = h.proxy as KubeProxy;
  const kubelet = h.target.kubelet();
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
  await capture(h.provider.plan(ctx));
  await capture(h.provider.apply(ctx));
  await capture(h.provider.deploy(ctx));
  await capture(h.provider.configure(ctx));
  t.ok(await capture(h.provider.verify(ctx)), 'verified with the test acting as kubelet');
  await kubelet.stop();
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
  const again = createKubernetesProvider({ kubeConfig: h.target.kubeConfig, randomBytes, pollIntervalMs: 100 });
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
  await h.target.edit(secretRef, { data: { password: null } });
  proxy.injectError({ method: 'PATCH', fieldManager: 'tenantd-secrets' }, 422, 1, { message: `Secret is invalid: data[password]: value ${Buffer.alloc(24, 0x5d).toString('base64url')} rejected` });
  await capture(h.provider.apply(ctx));
  t.equal((recorded.at(-1) as { code?: string }).code, 'E_INVALID_OBJECT');
  const third = Buffer.alloc(24, 0x5d).toString('base64url');

  const isValueWrite = (r: (typeof proxy.requests)[number]): boolean => r.method === 'PATCH' && r.fieldManager === 'tenantd-secrets';
  t.ok(proxy.requests.some(isValueWrite));
  const texts = [JSON.stringify(recorded), JSON.stringify(h.progress), JSON.stringify(proxy.requests.filter((r) => !isValueWrite(r)))];
  for (const v of [value, second, third]) {
    for (const form of [v, Buffer.from(v).toString('base64')]) {
      t.notOk(texts.some((text) => text.includes(form)), `no trace of ${form.slice(0, 6)}…`);
    }
  }
});
