/**
 * Connection and placement: kubeconfig loading and contexts, the clusters file mapping
 * cloudProvider + region to a context (two emulators stand in for two clusters).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import t from 'tap';
import { TenantdError } from '../core/errors.js';
import { ReconciliationEventPublisher } from '../core/events/publisher.js';
import { TransitionLog } from '../core/log/transition-log.js';
import { TenantStateStore } from '../core/state/store.js';
import { InfrastructureReconciler } from '../daemon/reconciler.js';
import { contextFor, createKubernetesProvider, loadClustersFile, parseClusterMap, placementIssue } from '../providers/kubernetes/provider.js';
import type { ProviderContext } from '../providers/provider.js';
import { renderTenant } from '../providers/resources/renderer.js';
import type { TenantInfrastructureDocument } from '../core/tenant/types.js';
import { startKubeEmulator, type KubeEmulator } from './kube-emulator/index.js';
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

/** One kubeconfig, one context per emulator. */
function twoClusterConfig(a: KubeEmulator, b: KubeEmulator): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'east', server: a.url, skipTLSVerify: true },
      { name: 'west', server: b.url, skipTLSVerify: true },
    ],
    users: [{ name: 'emu', token: a.token }],
    contexts: [
      { name: 'eks-use1', cluster: 'east', user: 'emu' },
      { name: 'aks-eastus', cluster: 'west', user: 'emu' },
    ],
    currentContext: 'eks-use1',
  });
  return kc;
}

t.test('the clusters file maps cloudProvider + region to a context; a tenant lands on its cluster only', async (t) => {
  const a = await startKubeEmulator({ controllerDelayMs: 1 });
  const b = await startKubeEmulator({ controllerDelayMs: 1 });
  t.teardown(() => Promise.all([a.close(), b.close()]));
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
  const provider = createKubernetesProvider({ kubeConfig: twoClusterConfig(a, b), clusters });
  t.teardown(() => provider.close?.());
  t.equal(await provider.ready?.(), true);

  const aws = tenantDoc('on-aws');
  const azure = tenantDoc('on-azure', { cloudProvider: 'AZURE', region: 'eastus', configuration: { databaseSize: 'GP_Gen5_2', storageGb: 50, enableHa: false } });
  const applied = await provider.apply(ctxOf(aws));
  t.match(applied.details, { cluster: 'eks-use1' });
  t.match((await provider.apply(ctxOf(azure))).details, { cluster: 'aks-eastus' });
  t.ok(a.get({ kind: 'Namespace', name: 'tenant-on-aws' }));
  t.notOk(a.get({ kind: 'Namespace', name: 'tenant-on-azure' }));
  t.ok(b.get({ kind: 'Namespace', name: 'tenant-on-azure' }));
  t.notOk(b.get({ kind: 'Namespace', name: 'tenant-on-aws' }));

  // A region without a cluster: stalled, nothing sent anywhere.
  a.clearRequests();
  b.clearRequests();
  const gcp = tenantDoc('on-gcp', { cloudProvider: 'GCP', region: 'europe-west1', configuration: { databaseSize: 'db-g1-small', storageGb: 50, enableHa: false } });
  await t.rejects(provider.apply(ctxOf(gcp)), { code: 'E_NO_CLUSTER_FOR_REGION', kind: 'stalled', data: { cloudProvider: 'GCP', region: 'europe-west1' } });
  const westus = tenantDoc('on-westus', { cloudProvider: 'AZURE', region: 'westus2', configuration: { databaseSize: 'GP_Gen5_2', storageGb: 50, enableHa: false } });
  await t.rejects(provider.plan(ctxOf(westus)), { code: 'E_NO_CLUSTER_FOR_REGION', message: /AZURE westus2; the clusters file maps AZURE regions eastus/ });
  t.equal(a.requests.length + b.requests.length, 0);
  t.same(placementIssue(clusters, gcp), { path: 'spec.region', message: 'no cluster serves GCP europe-west1; the clusters file maps no GCP region' });
  t.equal(placementIssue(clusters, aws), null);
  t.equal(placementIssue(undefined, gcp), null);

  // One cluster down: the provider is not ready.
  b.setUnreachable(true);
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
  const emu = await startKubeEmulator({ controllerDelayMs: 1 });
  t.teardown(() => emu.close());
  const dir = t.testdir();
  const file = path.join(dir, 'kubeconfig');
  await fs.writeFile(file, emu.kubeConfig().exportConfig());

  const provider = createKubernetesProvider({ kubeconfigPath: file, context: 'kube-emulator' });
  t.equal(await provider.ready?.(), true);
  await provider.apply(ctxOf(tenantDoc('from-file')));
  t.ok(emu.get({ kind: 'Namespace', name: 'tenant-from-file' }));
  await provider.close?.();
  t.equal(await provider.ready?.(), false, 'closed');
  await t.rejects(provider.apply(ctxOf(tenantDoc('from-file'))), { code: 'E_ABORTED' });

  t.equal(codeOf(() => createKubernetesProvider({ kubeconfigPath: file, context: 'nope' })), 'E_KUBE_CONTEXT_NOT_FOUND');
  t.equal(
    codeOf(() => createKubernetesProvider({ kubeConfig: emu.kubeConfig(), clusters: { clusters: [{ cloudProvider: 'AWS', region: 'us-east-1', context: 'missing' }] } })),
    'E_KUBE_CONTEXT_NOT_FOUND',
  );
  await fs.writeFile(path.join(dir, 'garbage'), 'clusters: [');
  t.equal(codeOf(() => createKubernetesProvider({ kubeconfigPath: path.join(dir, 'garbage') })), 'E_KUBECONFIG');
});

t.test('a change that would move an applied tenant to another cluster is INVALID; nothing moves until it is deprovisioned', async (t) => {
  const a = await startKubeEmulator({ controllerDelayMs: 1, autoReady: true });
  const b = await startKubeEmulator({ controllerDelayMs: 1, autoReady: true });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const clusters = parseClusterMap({
    clusters: [
      { cloudProvider: 'AWS', region: 'us-east-1', context: 'eks-use1' },
      { cloudProvider: 'AZURE', region: 'eastus', context: 'aks-eastus' },
    ],
  });
  const provider = createKubernetesProvider({ kubeConfig: twoClusterConfig(a, b), clusters, pollIntervalMs: 5, requestTimeoutMs: 2000 });
  t.teardown(() => provider.close?.());
  const dir = t.testdir();
  const now = (): Date => new Date(Date.UTC(2026, 10, 28, 12, 0, 0));
  const store = await TenantStateStore.open(dir);
  const log = await TransitionLog.open({ path: path.join(dir, 'transitions.jsonl') });
  t.teardown(() => log.close());
  const reconciler = new InfrastructureReconciler({ provider, store, log, publisher: new ReconciliationEventPublisher(now), backoff: { baseMs: 1000, capMs: 8000 }, now, random: () => 0.5 });

  const onAws = tenantDoc('mover');
  const onAzure = tenantDoc('mover', { cloudProvider: 'AZURE', region: 'eastus', configuration: { databaseSize: 'GP_Gen5_2', storageGb: 50, enableHa: false } });
  const run = (doc: TenantInfrastructureDocument | null, commit: string) =>
    reconciler.reconcile({ tenantId: 'mover', desired: doc ? desiredOf(doc, commit) : null, commit, trigger: `commit:${commit}` });

  t.same(await run(onAws, 'c1'), { kind: 'converged', status: 'ACTIVE' });
  t.ok(a.get({ kind: 'Namespace', name: 'tenant-mover' }), 'created on the AWS cluster');

  b.clearRequests();
  t.same(await run(onAzure, 'c2'), { kind: 'held', status: 'INVALID', reason: 'InvalidSpec' });
  t.match(store.get('mover')?.hold?.message, /moving the tenant from AWS us-east-1 \(context eks-use1\) to AZURE eastus \(context aks-eastus\) is not supported/);
  t.match(store.get('mover')?.desired?.issues, [{ path: 'spec.region' }]);
  t.equal(b.requests.length, 0, 'nothing sent to the other cluster');
  t.ok(a.get({ kind: 'Namespace', name: 'tenant-mover' }), 'and nothing removed from the first');
  t.same(provider.admit?.(onAzure, null), [], 'a tenant with nothing applied may go anywhere');
  t.same(provider.admit?.(tenantDoc('mover', { services: [{ name: 'web', image: 'nginx:1.27', replicas: 3, port: 8080 }] }), onAws), [], 'a change on the same cluster is admitted');

  // back to its region: ACTIVE again, nothing redone
  t.same(await run(onAws, 'c3'), { kind: 'converged', status: 'ACTIVE' });
  // deprovision where it is, then add it in the new region
  t.same(await run(null, 'c4'), { kind: 'converged', status: 'DEPROVISIONED' });
  t.notOk(a.get({ kind: 'Namespace', name: 'tenant-mover' }), 'gone from the AWS cluster');
  t.same(await run(onAzure, 'c5'), { kind: 'converged', status: 'ACTIVE' });
  t.ok(b.get({ kind: 'Namespace', name: 'tenant-mover' }), 'created on the Azure cluster');
});
