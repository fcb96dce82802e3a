/**
 * The kubernetes provider when the cluster says no, against the real control plane: kinds it does
 * not serve, kubeconfigs that cannot work, an API server process that is stopped, real 401/403/422,
 * and (through the recording proxy in front of the real server, test/helpers/kube-proxy.ts) the
 * 5xx, 404 and 409 answers a real server will not give on demand.
 */
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { TenantdError } from '../core/errors.js';
import { createKubernetesProvider } from '../providers/kubernetes/provider.js';
import type { ProviderContext } from '../providers/provider.js';
import { refKey, renderTenant } from '../providers/resources/renderer.js';
import type { KubeObject } from '../providers/resources/types.js';
import { applyAll, dep, harness, ns, rejectsWith, svc } from './helpers/kube-harness.js';
import { startApiServer, tokenKubeConfig, unprivilegedKubeConfig } from './helpers/kube-cluster.js';
import { startKubeProxy, type KubeProxy } from './helpers/kube-proxy.js';
import { eventually, startKubeTarget } from './helpers/kube-target.js';
import { tenantDoc } from './helpers/tenants.js';

t.test('a kind the cluster serves in no version tenantd can send makes the tenant INVALID, naming the kind and the cluster version', async (t) => {
  const target = await startKubeTarget(t);
  // A real API server with both PodDisruptionBudget versions turned off.
  const server = await startApiServer(t, { runtimeConfig: 'policy/v1beta1=false' });
  if (!server) return;
  const provider = createKubernetesProvider({ kubeConfig: server.kubeConfig, pollIntervalMs: 100 });
  t.teardown(() => provider.close?.());
  const id = target.tenantId('nopdb');
  const ha = tenantDoc(id, { configuration: { databaseSize: 'db.t3.medium', storageGb: 50, enableHa: true } });
  const issues = await provider.admit?.(ha, null);
  t.equal(issues?.length, 1);
  t.match(issues?.[0]?.message, /PodDisruptionBudget/);
  t.match(issues?.[0]?.message, /Kubernetes v1\.20\.2/);
  t.match(issues?.[0]?.message, /policy\/v1, policy\/v1beta1/);
  // One replica and no HA needs no PDB: admitted.
  const single = tenantDoc(id, { services: [{ name: 'web', image: 'nginx:1.27', replicas: 1, port: 8080 }] });
  t.same(await provider.admit?.(single, null), []);
  // An apply that gets there anyway stalls (no retry loop).
  await rejectsWith(
    t,
    (async () => {
      const ctx: ProviderContext = { tenantId: id, tenant: ha, desired: renderTenant(ha), operationId: 'op', signal: new AbortController().signal, progress: () => undefined };
      await provider.apply(ctx);
      await provider.deploy(ctx);
    })(),
    'E_UNSUPPORTED_KIND',
    'stalled',
  );
});

t.test('a kubeconfig that cannot work is refused when the provider starts, saying what to set', async (t) => {
  const kc = tokenKubeConfig('http://127.0.0.1:1', 'token', 'plain');
  kc.clusters = [{ name: 'plain', server: 'http://127.0.0.1:1', skipTLSVerify: false }];
  let err: unknown;
  try {
    createKubernetesProvider({ kubeConfig: kc });
  } catch (e: unknown) {
    err = e;
  }
  t.ok(err instanceof TenantdError);
  t.equal((err as TenantdError).code, 'E_KUBECONFIG');
  t.equal((err as TenantdError).kind, 'stalled');
  t.match((err as TenantdError).message, /insecure-skip-tls-verify: true/);
  // With it set, plain HTTP is allowed (the recording proxy is such a server).
  const ok = tokenKubeConfig('http://127.0.0.1:1', 'token', 'plain');
  t.doesNotThrow(() => createKubernetesProvider({ kubeConfig: ok }));
  const missing = new KubeConfig();
  missing.loadFromOptions({ clusters: [], users: [], contexts: [{ name: 'x', cluster: 'nowhere', user: 'nobody' }], currentContext: 'x' });
  t.throws(() => createKubernetesProvider({ kubeConfig: missing }), { code: 'E_KUBECONFIG', message: /cluster "nowhere"/ });
});

t.test('an API server that is stopped makes every step wait with E_CLUSTER_UNREACHABLE; 503 and 500 wait too', async (t) => {
  const target = await startKubeTarget(t);
  const server = await startApiServer(t);
  if (!server) return;
  const provider = createKubernetesProvider({ kubeConfig: server.kubeConfig, pollIntervalMs: 100, requestTimeoutMs: 2000 });
  t.teardown(() => provider.close?.());
  const id = target.tenantId('down');
  const ctx: ProviderContext = { tenantId: id, tenant: tenantDoc(id), desired: renderTenant(tenantDoc(id)), operationId: 'op', signal: new AbortController().signal, progress: () => undefined };
  t.equal(await provider.ready?.(), true);

  await server.stop();
  const refused = await rejectsWith(t, provider.apply(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
  t.match(refused.data, { cluster: new RegExp(server.url.replace(/[.:/]/g, '.')), errno: 'ECONNREFUSED' });
  await rejectsWith(t, provider.plan(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
  await rejectsWith(t, provider.verify(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
  t.equal(await provider.ready?.(), false);
  await server.start();
  t.equal(await provider.ready?.(), true, 'ready again once the API server is back');
  await provider.apply(ctx);

  // A server answering 503, or a 500 on a write: through the proxy, in front of the real one.
  const proxy = await startKubeProxy(t, target.kubeConfig);
  const viaProxy = createKubernetesProvider({ kubeConfig: proxy.kubeConfig, pollIntervalMs: 100, requestTimeoutMs: 2000 });
  t.teardown(() => viaProxy.close?.());
  proxy.setUnreachable(true, '503');
  const unavailable = await rejectsWith(t, viaProxy.apply(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
  t.match(unavailable.data, { status: 503 });
  proxy.setUnreachable(false);
  proxy.injectError({ method: 'PATCH' }, 500);
  await rejectsWith(t, viaProxy.apply(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
  t.equal(await viaProxy.ready?.(), true);
  await viaProxy.apply(ctx);

  // A server that never answers: the request timeout.
  const silent = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const p = createKubernetesProvider({ kubeConfig: tokenKubeConfig(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`, 'x', 'silent'), requestTimeoutMs: 200 });
  const timedOut = await rejectsWith(t, p.apply(ctx), 'E_CLUSTER_UNREACHABLE', 'waiting');
  t.match(timedOut.data, { reason: 'Timeout' });
  t.equal(await p.ready?.(), false);
});

t.test('API errors: 422 names the object and causes, 401 and 403 stall, 404 and 409 retry, a foreign object is never adopted', async (t) => {
  const h = await harness(t, {}, { proxy: true });
  const proxy = h.proxy as KubeProxy;
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

  // Real 401 and 403: a token the server does not know, and a user no role is bound to.
  const server = h.target.kubeConfig.getCurrentCluster()?.server ?? '';
  const stranger = createKubernetesProvider({ kubeConfig: tokenKubeConfig(server, 'not-a-token', 'stranger') });
  const unauthorized = await rejectsWith(t, stranger.deploy(ctx), 'E_UNAUTHORIZED', 'stalled');
  t.match(unauthorized.data, { status: 401 });
  const nobodyConfig = await unprivilegedKubeConfig(t);
  if (nobodyConfig) {
    const nobody = createKubernetesProvider({ kubeConfig: nobodyConfig });
    const forbidden = await rejectsWith(t, nobody.deploy(ctx), 'E_FORBIDDEN', 'stalled');
    t.match(forbidden.data, { status: 403 });
    t.match(forbidden.message, /forbidden/i);
  }
  // Faults a real server does not make on demand, through the proxy.
  proxy.injectError({ method: 'PATCH', path: /\/services\/web$/ }, 404);
  await rejectsWith(t, h.provider.deploy(ctx), 'E_NOT_FOUND', 'retryable');
  proxy.injectError({ method: 'PATCH', path: /\/deployments\/web$/ }, 409);
  await rejectsWith(t, h.provider.deploy(ctx), 'E_KUBE_CONFLICT', 'retryable');

  // A Service of the same name that someone else made: stalled, untouched, nothing pruned.
  await h.target.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: ns(id), labels: { owner: 'someone' } }, spec: { ports: [{ port: 80 }], selector: { app: 'x' } } });
  const notOwned = await rejectsWith(t, h.provider.deploy(ctx), 'E_NOT_OWNED', 'stalled');
  t.match(notOwned.data, { ref: refKey(svc(id, 'web')) });
  t.same((await h.target.get(svc(id, 'web')))?.metadata.labels, { owner: 'someone' });
});

t.test('Verify stops promptly when the operation is aborted', async (t) => {
  const h = await harness(t, { pollIntervalMs: 60_000 }, { proxy: true });
  const proxy = h.proxy as KubeProxy;
  const id = h.target.tenantId('abort');
  const doc = tenantDoc(id);
  await applyAll(h.provider, h.ctx(doc));
  await h.target.setReady(ns(id), 'Deployment', 'web', 0);
  const controller = new AbortController();
  const verifying = h.provider.verify(h.ctx(doc, { signal: controller.signal }));
  await eventually('first poll', () => h.progress.some((p) => p.message === 'web 0/2 ready'));
  const started = Date.now();
  controller.abort(new Error('a newer commit'));
  await rejectsWith(t, verifying, 'E_ABORTED');
  // The next poll is a minute away: stopping within seconds means the abort, not the poll, ended it.
  t.ok(Date.now() - started < 10_000, `stopped in ${Date.now() - started} ms, long before the next poll`);
  // An already aborted signal does no work at all.
  proxy.clearRequests();
  await rejectsWith(t, h.provider.apply(h.ctx(doc, { signal: controller.signal })), 'E_ABORTED');
  t.equal(proxy.requests.length, 0);
});
