import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { PHASES } from '../core/phases.js';
import { runCli } from '../daemon/cli.js';
import { startKubeEmulator } from './kube-emulator/index.js';
import { commitFiles, initRepo } from './helpers/git-fixtures.js';
import { exampleFiles, openDaemon, statusAt } from './helpers/daemon.js';

t.test('tenantd daemon --provider kubernetes reconciles the examples against an API server (the test emulator)', async (t) => {
  const dir = t.testdir();
  const emu = await startKubeEmulator({ autoReady: true, controllerDelayMs: 1, namespaceStepMs: 2 });
  t.teardown(() => emu.close());
  const kubeconfig = path.join(dir, 'kubeconfig');
  await fsp.writeFile(kubeconfig, emu.kubeConfig().exportConfig());
  const clusters = path.join(dir, 'clusters.yaml');
  // initech (GCP us-central1) has no cluster: INVALID, nothing touched.
  const ctx = emu.kubeConfig().getCurrentContext();
  await fsp.writeFile(clusters, `clusters:\n  - { cloudProvider: AWS, region: us-east-1, context: ${ctx} }\n  - { cloudProvider: AZURE, region: westeurope, context: ${ctx} }\n`);
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  await commitFiles(repo, await exampleFiles(), 'examples');
  const { daemon } = await openDaemon(repo, path.join(dir, 'data'), ['--provider', 'kubernetes', '--kubeconfig', kubeconfig, '--clusters-file', clusters]);
  t.teardown(() => daemon.stop());
  await daemon.start();
  await daemon.whenIdle();

  for (const id of ['acme-corp', 'globex']) {
    t.equal(daemon.store.get(id)?.status, 'ACTIVE', `${id} ACTIVE`);
    t.same((await daemon.log.read(id)).map((x) => x.toState.split('/')[1]), [...PHASES]);
    t.ok(emu.get({ kind: 'Namespace', name: `tenant-${id}` }), `namespace of ${id} exists in the cluster`);
  }
  t.equal(daemon.store.get('initech')?.status, 'INVALID');
  const initech = await statusAt(repo, 'main', 'initech');
  t.match(initech.status.errors, [{ path: 'spec.region', message: /no cluster serves GCP us-central1/ }]);
  t.notOk(emu.get({ kind: 'Namespace', name: 'tenant-initech' }), 'nothing applied for initech');
  t.equal(await daemon.isReady(), true);
});

t.test('--provider pulumi without a pulumi CLI is a clear error at start', async (t) => {
  const dir = t.testdir();
  let err = '';
  const code = await runCli({
    argv: ['daemon', '--provider', 'pulumi', '--data-dir', path.join(dir, 'data'), '--poll', '0', '--port', '0', '--host', '127.0.0.1'],
    env: {},
    cwd: dir,
    out: () => undefined,
    err: (s) => void (err += s),
    stopSignal: new Promise(() => undefined),
  });
  if (process.env.PATH?.split(':').some((p) => p && existsSync(path.join(p, 'pulumi')))) {
    t.comment('a pulumi CLI is on PATH: the missing-CLI error cannot be shown here');
    return;
  }
  t.equal(code, 1);
  t.match(err, /E_PULUMI_CLI_MISSING/);
  t.match(err, /pulumi\.com\/docs\/install/i, 'names how to install it');
});

t.test('tenantd plan --provider kubernetes shows what the cluster would see (server-side dry run)', async (t) => {
  const dir = t.testdir();
  const emu = await startKubeEmulator({ autoReady: true, controllerDelayMs: 1, namespaceStepMs: 2 });
  t.teardown(() => emu.close());
  const kubeconfig = path.join(dir, 'kubeconfig');
  await fsp.writeFile(kubeconfig, emu.kubeConfig().exportConfig());
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  const files = await exampleFiles();
  await commitFiles(repo, { 'tenants/initech.yaml': files['tenants/initech.yaml'] as string }, 'initech');
  const { daemon } = await openDaemon(repo, path.join(dir, 'data'), ['--provider', 'kubernetes', '--kubeconfig', kubeconfig]);
  await daemon.start();
  await daemon.whenIdle();
  await daemon.stop();
  t.equal(daemon.store.get('initech')?.status, 'ACTIVE');

  // Someone scales a Deployment behind tenantd's back; the file grows storage.
  emu.edit({ kind: 'Deployment', namespace: 'tenant-initech', name: 'tps-reports' }, (d) => {
    (d['spec'] as { replicas: number }).replicas = 7;
  });
  const text = (files['tenants/initech.yaml'] as string).replace('storageGb: 20', 'storageGb: 30');
  await commitFiles(repo, { 'tenants/initech.yaml': text }, 'grow initech');
  let out = '';
  let err = '';
  const code = await runCli({
    argv: ['plan', '--repo', repo, '--provider', 'kubernetes', '--kubeconfig', kubeconfig],
    env: {},
    cwd: dir,
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    stopSignal: new Promise(() => undefined),
  });
  t.equal(code, 0, err);
  t.match(out, /tenant initech: update/);
  t.match(out, /v1\/PersistentVolumeClaim\/tenant-initech\/data-postgres-0 .*spec\.resources\.requests\.storage/);
  t.match(out, /apps\/v1\/Deployment\/tenant-initech\/tps-reports .*spec\.replicas/, 'the cluster-side drift shows too');
});

t.test('Pulumi Verify can wait for workloads through the kubernetes provider (readinessVia)', async (t) => {
  const { createKubernetesProvider } = await import('../providers/kubernetes/provider.js');
  const { renderTenant } = await import('../providers/resources/renderer.js');
  const { readinessVia } = await import('../daemon/providers.js');
  const { tenantDoc } = await import('./helpers/tenants.js');
  const emu = await startKubeEmulator({ controllerDelayMs: 1, namespaceStepMs: 2 });
  t.teardown(() => emu.close());
  const k8s = createKubernetesProvider({ kubeConfig: emu.kubeConfig(), pollIntervalMs: 10, verifyTimeoutMs: 10_000 });
  t.teardown(() => k8s.close?.());
  const doc = tenantDoc('ready');
  const progress: string[] = [];
  const ctx = { tenantId: 'ready', tenant: doc, desired: renderTenant(doc), operationId: 'op', signal: new AbortController().signal, progress: (m: string) => void progress.push(m) };
  // What `pulumi up` would have created, applied here with the kubernetes provider.
  await k8s.apply(ctx);
  await k8s.deploy(ctx);
  await k8s.configure(ctx);
  let settled = false;
  const waiting = readinessVia(k8s)(ctx).then((r) => {
    settled = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 100));
  t.equal(settled, false, 'waits while the workloads are not ready');
  emu.markAllReady();
  const result = await waiting;
  t.match(result.summary, /ready/i);
  t.ok(progress.length > 0, 'progress reported while waiting');
});
