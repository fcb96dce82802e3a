import { existsSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runCli } from '../daemon/cli.js';
import { startKubeTarget } from './helpers/kube-target.js';
import { commitFiles, initRepo } from './helpers/git-fixtures.js';
import { exampleFiles, openDaemon } from './helpers/daemon.js';

// The kubernetes provider's daemon end to end is test/kubernetes-daemon.test.ts.

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
  const target = await startKubeTarget(t);
  const kubelet = target.kubelet();
  const kubeconfig = target.kubeconfigPath;
  // The example initech under an id of this run (the daemon test has the examples' own ids).
  const id = target.tenantId('initech');
  const file = `tenants/${id}.yaml`;
  const initech = ((await exampleFiles())['tenants/initech.yaml'] as string).replace('tenantId: initech', `tenantId: ${id}`);
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  await commitFiles(repo, { [file]: initech }, 'initech');
  const { daemon } = await openDaemon(repo, path.join(dir, 'data'), ['--provider', 'kubernetes', '--kubeconfig', kubeconfig]);
  await daemon.start();
  await daemon.whenIdle();
  await daemon.stop();
  await kubelet.stop();
  t.equal(daemon.store.get(id)?.status, 'ACTIVE');

  // Someone scales a Deployment behind tenantd's back; the file grows storage.
  await target.edit({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: `tenant-${id}`, name: 'tps-reports' }, { spec: { replicas: 7 } });
  await commitFiles(repo, { [file]: initech.replace('storageGb: 20', 'storageGb: 30') }, 'grow initech');
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
  t.match(out, new RegExp(`tenant ${id}: update`));
  t.match(out, new RegExp(`v1/PersistentVolumeClaim/tenant-${id}/data-postgres-0 .*spec\\.resources\\.requests\\.storage`));
  t.match(out, new RegExp(`apps/v1/Deployment/tenant-${id}/tps-reports .*spec\\.replicas`), 'the cluster-side drift shows too');
});

t.test('Pulumi Verify can wait for workloads through the kubernetes provider (readinessVia)', async (t) => {
  const { createKubernetesProvider } = await import('../providers/kubernetes/provider.js');
  const { renderTenant } = await import('../providers/resources/renderer.js');
  const { readinessVia } = await import('../daemon/providers.js');
  const { tenantDoc } = await import('./helpers/tenants.js');
  const target = await startKubeTarget(t);
  const k8s = createKubernetesProvider({ kubeConfig: target.kubeConfig, pollIntervalMs: 100, verifyTimeoutMs: 60_000 });
  t.teardown(() => k8s.close?.());
  const id = target.tenantId('ready');
  const doc = tenantDoc(id);
  const progress: string[] = [];
  const ctx = { tenantId: id, tenant: doc, desired: renderTenant(doc), operationId: 'op', signal: new AbortController().signal, progress: (m: string) => void progress.push(m) };
  // What `pulumi up` would have created, applied here with the kubernetes provider.
  await k8s.apply(ctx);
  await k8s.deploy(ctx);
  await k8s.configure(ctx);
  let settled = false;
  const waiting = readinessVia(k8s)(ctx).then((r) => {
    settled = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 500));
  t.equal(settled, false, 'waits while the workloads are not ready');
  await target.markAllReady(`tenant-${id}`);
  const result = await waiting;
  t.match(result.summary, /ready/i);
  t.ok(progress.length > 0, 'progress reported while waiting');
});
