/**
 * Connection and placement: kubeconfig loading and contexts, the clusters file mapping
 * cloudProvider + region to a context. Two real clusters: the test control plane, and a second,
 * independent one (its own kube-apiserver on its own etcd prefix, with its own controller manager);
 * each behind a recording proxy so a test can see that nothing was sent to the wrong one.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { TenantdError } from '../core/errors.js';
import { ReconciliationEventPublisher } from '../core/events/publisher.js';
import { TransitionLog } from '../core/log/transition-log.js';
import { TenantStateStore } from '../core/state/store.js';
import { InfrastructureReconciler } from '../daemon/reconciler.js';
import { contextFor, createKubernetesProvider, loadClustersFile, parseClusterMap, placementIssue } from '../providers/kubernetes/provider.js';
import type { ProviderContext } from '../providers/provider.js';
import { renderTenant } from '../providers/resources/renderer.js';
import type { TenantInfrastructureDocument } from '../core/tenant/types.js';
import { startApiServer } from './helpers/kube-cluster.js';
import { startKubeProxy, type KubeProxy } from './helpers/kube-proxy.js';
import { startKubeTarget, type KubeTarget } from './helpers/kube-target.js';
import { desiredOf, tenantDoc } from './helpers/tenants.js';

function ctxOf(doc: TenantInfrastructureDocument): ProviderContext {
  return {
    tenantId: doc.metadata.tenantId,
    tenant: doc,
    desired: renderTenant(doc),
    operationId: 'op',
    signal: new AbortController().signal,
    progress: () => undefined,
  };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err: unknown) {
    return err instanceof TenantdError ? err.code : `not a TenantdError: ${String(err)}`;
  }
  return undefined;
}

interface TwoClusters {
  /** The test control plane ("AWS us-east-1") and an independent second cluster ("AZURE eastus"). */
  a: KubeTarget;
  b: KubeTarget;
  proxyA: KubeProxy;
  proxyB: KubeProxy;
  /** One kubeconfig, one context per cluster (through its proxy). */
  kubeConfig: KubeConfig;
}

async function twoClusters(t: Test): Promise<TwoClusters | undefined> {
  const second = await startApiServer(t, { etcdPrefix: `/registry-${Math.random().toString(16).slice(2, 8)}`, controllerManager: true });
  if (!second) return undefined;
  const a = await startKubeTarget(t);
  const b = await startKubeTarget(t, second);
  const proxyA = await startKubeProxy(t, a.kubeConfig);
  const proxyB = await startKubeProxy(t, b.kubeConfig);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [
      { name: 'east', server: proxyA.url, skipTLSVerify: true },
      { name: 'west', server: proxyB.url, skipTLSVerify: true },
    ],
    users: [{ name: 'proxy' }],
    contexts: [
      { name: 'eks-use1', cluster: 'east', user: 'proxy' },
      { name: 'aks-eastus', cluster: 'west', user: 'proxy' },
    ],
    currentContext: 'eks-use1',
  });
  return { a, b, proxyA, proxyB, kubeConfig };
}

const namespaceRef = (id: string) => ({ apiVersion: 'v1', kind: 'Namespace', name: `tenant-${id}` });

t.test('the clusters file maps cloudProvider + region to a context; a tenant lands on its cluster only', async (t) => {
  const two = await twoClusters(t);
  if (!two) return;
  const { a, b, proxyA, proxyB } = two;
  const dir = t.testdir({
    'clusters.yaml': [
      '# which cluster serves which region',
      'clusters:',
      '  - { cloudProvider: AWS, region: us-east-1, context: eks-use1 }',
      '  - cloudProvider: AZURE',
      '    region: eastus',
      '    context: aks-eastus',
      '',
    ].join('\n'),
  });
  const clusters = await loadClustersFile(path.join(dir, 'clusters.yaml'));
  t.same(clusters.clusters.map((c) => contextFor(clusters, c.cloudProvider, c.region)), ['eks-use1', 'aks-eastus']);
  const provider = createKubernetesProvider({ kubeConfig: two.kubeConfig, clusters });
  t.teardown(() => provider.close?.());
  t.equal(await provider.ready?.(), true);

  const awsId = a.tenantId('on-aws');
  const azureId = b.tenantId('on-azure');
  a.track(azureId);
  b.track(awsId);
  const aws = tenantDoc(awsId);
  const azure = tenantDoc(azureId, { cloudProvider: 'AZURE', region: 'eastus', configuration: { databaseSize: 'GP_Gen5_2', storageGb: 50, enableHa: false } });
  const applied = await provider.apply(ctxOf(aws));
  t.match(applied.details, { cluster: 'eks-use1' });
  t.match((await provider.apply(ctxOf(azure))).details, { cluster: 'aks-eastus' });
  t.ok(await a.get(namespaceRef(awsId)));
  t.notOk(await a.get(namespaceRef(azureId)));
  t.ok(await b.get(namespaceRef(azureId)));
  t.notOk(await b.get(namespaceRef(awsId)));

  // A region without a cluster: stalled, nothing sent anywhere.
  proxyA.clearRequests();
  proxyB.clearRequests();
  const gcp = tenantDoc('on-gcp', { cloudProvider: 'GCP', region: 'europe-west1', configuration: { databaseSize: 'db-g1-small', storageGb: 50, enableHa: false } });
  await t.rejects(provider.apply(ctxOf(gcp)), { code: 'E_NO_CLUSTER_FOR_REGION', kind: 'stalled', data: { cloudProvider: 'GCP', region: 'europe-west1' } });
  const westus = tenantDoc('on-westus', { cloudProvider: 'AZURE', region: 'westus2', configuration: { databaseSize: 'GP_Gen5_2', storageGb: 50, enableHa: false } });
  await t.rejects(provider.plan(ctxOf(westus)), { code: 'E_NO_CLUSTER_FOR_REGION', message: /AZURE westus2; the clusters file maps AZURE regions eastus/ });
  t.equal(proxyA.requests.length + proxyB.requests.length, 0);
  t.same(placementIssue(clusters, gcp), { path: 'spec.region', message: 'no cluster serves GCP europe-west1; the clusters file maps no GCP region' });
  t.equal(placementIssue(clusters, aws), null);
  t.equal(placementIssue(undefined, gcp), null);

  // One cluster down: the provider is not ready.
  proxyB.setUnreachable(true);
  t.equal(await provider.ready?.(), false);
});

t.test('clusters file errors name the file and the entry', async (t) => {
  const dir = t.testdir({
    'bad-region.yaml': 'clusters:\n  - { cloudProvider: AZURE, region: mars, context: x }\n',
    'dup.yaml': 'clusters:\n  - { cloudProvider: AWS, region: us-east-1, context: a }\n  - { cloudProvider: AWS, region: us-east-1, context: b }\n',
    'no-context.yaml': 'clusters:\n  - { cloudProvider: AWS, region: us-east-1 }\n',
    'extra.yaml': 'clusters:\n  - { cloudProvider: AWS, region: us-east-1, context: a, kubeconfig: /x }\n',
    'not-a-list.yaml': 'clusters: 3\n',
    'broken.yaml': 'clusters: [\n',
  });
  const cases: [string, RegExp][] = [
    ['bad-region.yaml', /clusters\[0\]\.region must be one of the AZURE regions: .*\(got "mars"\)/],
    ['dup.yaml', /clusters\[1\] maps AWS\/us-east-1 again \(already clusters\[0\]\)/],
    ['no-context.yaml', /clusters\[0\]\.context must be a non-empty kubeconfig context name/],
    ['extra.yaml', /clusters\[0\] has unknown field\(s\): kubeconfig/],
    ['not-a-list.yaml', /`clusters` must be a list/],
    ['broken.yaml', /not valid YAML/],
    ['missing.yaml', /cannot read the clusters file \(ENOENT\)/],
  ];
  for (const [file, message] of cases) {
    await t.rejects(loadClustersFile(path.join(dir, file)), { code: 'E_CLUSTERS_FILE', kind: 'stalled', message }, file);
  }
  t.equal(codeOf(() => parseClusterMap(null)), 'E_CLUSTERS_FILE');
  t.equal(codeOf(() => parseClusterMap({ clusters: [{ cloudProvider: 'IBM', region: 'x', context: 'y' }] })), 'E_CLUSTERS_FILE');
});

t.test('kubeconfig: a file and a context; unknown contexts fail at start', async (t) => {
  const target = await startKubeTarget(t);
  const dir = t.testdir();
  const file = target.kubeconfigPath;

  const provider = createKubernetesProvider({ kubeconfigPath: file, context: target.context });
  t.equal(await provider.ready?.(), true);
  const id = target.tenantId('from-file');
  await provider.apply(ctxOf(tenantDoc(id)));
  t.ok(await target.get(namespaceRef(id)));
  await provider.close?.();
  t.equal(await provider.ready?.(), false, 'closed');
  await t.rejects(provider.apply(ctxOf(tenantDoc(id))), { code: 'E_ABORTED' });

  t.equal(codeOf(() => createKubernetesProvider({ kubeconfigPath: file, context: 'nope' })), 'E_KUBE_CONTEXT_NOT_FOUND');
  t.equal(
    codeOf(() => createKubernetesProvider({ kubeConfig: target.kubeConfig, clusters: { clusters: [{ cloudProvider: 'AWS', region: 'us-east-1', context: 'missing' }] } })),
    'E_KUBE_CONTEXT_NOT_FOUND',
  );
  await fs.writeFile(path.join(dir, 'garbage'), 'clusters: [');
  t.equal(codeOf(() => createKubernetesProvider({ kubeconfigPath: path.join(dir, 'garbage') })), 'E_KUBECONFIG');
});

t.test('a change that would move an applied tenant to another cluster is INVALID; nothing moves until it is deprovisioned', async (t) => {
  const two = await twoClusters(t);
  if (!two) return;
  const { a, b, proxyB } = two;
  const id = a.tenantId('mover');
  b.track(id);
  const kubelets = [a.kubelet(), b.kubelet()];
  const clusters = parseClusterMap({
    clusters: [
      { cloudProvider: 'AWS', region: 'us-east-1', context: 'eks-use1' },
      { cloudProvider: 'AZURE', region: 'eastus', context: 'aks-eastus' },
    ],
  });
  const provider = createKubernetesProvider({ kubeConfig: two.kubeConfig, clusters, pollIntervalMs: 100, requestTimeoutMs: 5000 });
  t.teardown(() => provider.close?.());
  const dir = t.testdir();
  const now = (): Date => new Date(Date.UTC(2026, 10, 28, 12, 0, 0));
  const store = await TenantStateStore.open(dir);
  const log = await TransitionLog.open({ path: path.join(dir, 'transitions.jsonl') });
  t.teardown(() => log.close());
  const reconciler = new InfrastructureReconciler({ provider, store, log, publisher: new ReconciliationEventPublisher(now), backoff: { baseMs: 1000, capMs: 8000 }, now, random: () => 0.5 });

  const onAws = tenantDoc(id);
  const onAzure = tenantDoc(id, { cloudProvider: 'AZURE', region: 'eastus', configuration: { databaseSize: 'GP_Gen5_2', storageGb: 50, enableHa: false } });
  const run = (doc: TenantInfrastructureDocument | null, commit: string) =>
    reconciler.reconcile({ tenantId: id, desired: doc ? desiredOf(doc, commit) : null, commit, trigger: `commit:${commit}` });

  t.same(await run(onAws, 'c1'), { kind: 'converged', status: 'ACTIVE' });
  t.ok(await a.get(namespaceRef(id)), 'created on the AWS cluster');

  proxyB.clearRequests();
  t.same(await run(onAzure, 'c2'), { kind: 'held', status: 'INVALID', reason: 'InvalidSpec' });
  t.match(store.get(id)?.hold?.message, /moving the tenant from AWS us-east-1 \(context eks-use1\) to AZURE eastus \(context aks-eastus\) is not supported/);
  t.match(store.get(id)?.desired?.issues, [{ path: 'spec.region' }]);
  t.equal(proxyB.requests.length, 0, 'nothing sent to the other cluster');
  t.ok(await a.get(namespaceRef(id)), 'and nothing removed from the first');
  t.same(await provider.admit?.(onAzure, null), [], 'a tenant with nothing applied may go anywhere');
  t.same(await provider.admit?.(tenantDoc(id, { services: [{ name: 'web', image: 'nginx:1.27', replicas: 3, port: 8080 }] }), onAws), [], 'a change on the same cluster is admitted');

  // back to its region: ACTIVE again, nothing redone
  t.same(await run(onAws, 'c3'), { kind: 'converged', status: 'ACTIVE' });
  // deprovision where it is, then add it in the new region
  t.same(await run(null, 'c4'), { kind: 'converged', status: 'DEPROVISIONED' });
  t.notOk(await a.get(namespaceRef(id)), 'gone from the AWS cluster');
  t.same(await run(onAzure, 'c5'), { kind: 'converged', status: 'ACTIVE' });
  t.ok(await b.get(namespaceRef(id)), 'created on the Azure cluster');
  for (const k of kubelets) await k.stop();
});
