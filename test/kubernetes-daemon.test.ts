/**
 * `tenantd daemon --provider kubernetes`, a real process, against the real control plane, with the
 * example tenants: they reach ACTIVE (the test acting as kubelet), a converged fleet's drift checks
 * find nothing, an edit by another field manager is found and corrected, a dropped service is
 * pruned, a storage shrink is refused by the API server and stalls (never loops), and a removed
 * tenant's namespace is really gone. A kubeconfig that cannot work stops the daemon at start.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { PHASES } from '../core/phases.js';
import { freePort } from './helpers/kube-cluster.js';
import { eventually, startKubeTarget } from './helpers/kube-target.js';
import { exampleFiles } from './helpers/daemon.js';
import { commitFiles, initRepo } from './helpers/git-fixtures.js';
import { spawnTenantd } from './helpers/process.js';
import { SEED_BODY, SEED_PATH, SEED_TENANT } from './helpers/seed.js';

interface TenantView {
  status: string;
  phase?: string;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
}

t.test('tenantd daemon --provider kubernetes drives the example tenants through their lives on a real cluster', async (t) => {
  const target = await startKubeTarget(t);
  const ids = ['acme-corp', 'globex', 'initech'];
  for (const id of [...ids, SEED_TENANT]) target.track(id);
  const kubelet = target.kubelet();
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  const dataDir = path.join(dir, 'data');
  await initRepo(repo);
  const files = await exampleFiles();
  await commitFiles(repo, files, 'examples');
  const port = await freePort();
  const daemon = spawnTenantd([
    'daemon', '--repo', repo, '--data-dir', dataDir, '--provider', 'kubernetes', '--kubeconfig', target.kubeconfigPath,
    '--poll', '1', '--drift-interval', '2', '--retry-base', '1', '--port', String(port), '--host', '127.0.0.1', '--insecure-no-auth', '--log-format', 'json',
  ]);
  t.teardown(() => {
    if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
  });
  const api = `http://127.0.0.1:${port}/api/v1/infrastructure/tenants`;
  const view = async (id: string): Promise<TenantView | undefined> => {
    const res = await fetch(`${api}/${id}`).catch(() => undefined);
    return res?.ok ? ((await res.json()) as TenantView) : undefined;
  };
  const transitions = async (id: string): Promise<{ toState: string; trigger: string }[]> => {
    const res = await fetch(`${api}/${id}/transitions?limit=1000`);
    return ((await res.json()) as { items: { toState: string; trigger: string }[] }).items;
  };
  const until = async (what: string, id: string, ok: (v: TenantView) => boolean, ms = 120_000): Promise<TenantView> => {
    let last: TenantView | undefined;
    try {
      return await eventually(`${id} ${what}`, async () => {
        last = await view(id);
        return last && ok(last) ? last : undefined;
      }, ms);
    } catch (err: unknown) {
      // Say where it was instead, and what the daemon printed last.
      throw new Error(`${err instanceof Error ? err.message : String(err)}; last seen ${JSON.stringify(last)}; daemon output ends: ${daemon.output().slice(-3000)}`);
    }
  };
  const nsRef = (id: string) => ({ apiVersion: 'v1', kind: 'Namespace', name: `tenant-${id}` });

  for (const id of ids) {
    await until('ACTIVE', id, (v) => v.status === 'ACTIVE');
    t.ok(await target.get(nsRef(id)), `namespace of ${id} exists on the cluster`);
    t.same((await transitions(id)).map((x) => x.toState.split('/')[1]), [...PHASES], `${id}: the seven phases`);
  }
  // acme-corp is HA: its PodDisruptionBudgets went out as the version Kubernetes 1.20 serves.
  t.ok(await target.get({ apiVersion: 'policy/v1beta1', kind: 'PodDisruptionBudget', name: 'postgres', namespace: 'tenant-acme-corp' }));

  // The product description's own request, byte for byte, provisions a tenant on the cluster.
  const posted = await fetch(`http://127.0.0.1:${port}${SEED_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: SEED_BODY });
  t.equal(posted.status, 202, 'the seed request is accepted');
  await until('ACTIVE', SEED_TENANT, (v) => v.status === 'ACTIVE' && v.phase === 'Complete');
  t.same((await transitions(SEED_TENANT)).map((x) => x.toState.split('/')[1]), [...PHASES], 'the seed tenant: the seven phases');
  t.ok(await target.get(nsRef(SEED_TENANT)), 'its namespace exists on the cluster');
  const seedDb = await target.get({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'postgres', namespace: `tenant-${SEED_TENANT}` });
  t.match(seedDb?.spec, { volumeClaimTemplates: [{ spec: { resources: { requests: { storage: '100Gi' } } } }] }, 'storageGb: 100 is the claim size');
  t.equal(await target.get({ apiVersion: 'policy/v1beta1', kind: 'PodDisruptionBudget', name: 'postgres', namespace: `tenant-${SEED_TENANT}` }), null, 'enableHa: false: no disruption budget');

  // Drift checks of the converged fleet find nothing: no drift transition appears.
  await new Promise((r) => setTimeout(r, 5000));
  for (const id of ids) t.notOk((await transitions(id)).some((x) => x.trigger === 'drift'), `${id}: no drift on a converged tenant`);

  // Someone scales Deployments behind tenantd's back (as `kubectl edit` would): acme-corp
  // (driftPolicy: correct) is corrected, globex (driftPolicy: report) only reported.
  const replicas = async (ref: { apiVersion: string; kind: string; name: string; namespace: string }): Promise<number | undefined> =>
    ((await target.get(ref))?.spec as { replicas?: number } | undefined)?.replicas;
  const acmeApi = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api', namespace: 'tenant-acme-corp' };
  const globexApi = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api', namespace: 'tenant-globex' };
  await target.edit(acmeApi, { spec: { replicas: 9 } });
  await target.edit(globexApi, { spec: { replicas: 9 } });
  await eventually('acme-corp drift found', async () => (await transitions('acme-corp')).some((x) => x.trigger === 'drift'), 60_000);
  await eventually('acme-corp api back to 3 replicas', async () => (await replicas(acmeApi)) === 3, 30_000);
  await eventually('globex drift reported', async () => (await transitions('globex')).some((x) => x.trigger === 'drift'), 60_000);
  t.equal(await replicas(globexApi), 9, 'report only: globex keeps the edit');

  // A dropped service is pruned.
  const acme = files['tenants/acme-corp.yaml'] as string;
  const withoutWorker = acme.replace(/\n {4}- name: worker\n(?: {6}.*\n)+/, '\n');
  t.not(withoutWorker, acme, 'the worker service was cut from the file');
  await commitFiles(repo, { 'tenants/acme-corp.yaml': withoutWorker }, 'acme: drop the worker');
  const worker = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'worker', namespace: 'tenant-acme-corp' };
  await eventually('worker pruned', async () => (await target.get(worker)) === null, 120_000);
  await until('ACTIVE after the change', 'acme-corp', (v) => v.status === 'ACTIVE' && v.phase === 'Complete');
  t.ok(await target.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'tenant-acme-corp' }), 'the other services stay');

  // A storage shrink: the API server refuses it; the tenant stalls with that reason and is not retried.
  const globex = files['tenants/globex.yaml'] as string;
  await commitFiles(repo, { 'tenants/globex.yaml': globex.replace('storageGb: 256', 'storageGb: 128') }, 'globex: shrink storage');
  const failed = await until('FAILED', 'globex', (v) => v.status === 'FAILED');
  const stalled = failed.conditions?.find((c) => c.type === 'Stalled');
  t.equal(stalled?.status, 'True', 'Stalled: a person must act');
  t.match(JSON.stringify(failed.conditions), /less than previous value/);
  const count = (await transitions('globex')).length;
  await new Promise((r) => setTimeout(r, 4000));
  t.equal((await transitions('globex')).length, count, 'no retry loop');
  const claim = await target.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data-postgres-0', namespace: 'tenant-globex' });
  t.match(claim?.spec, { resources: { requests: { storage: '256Gi' } } }, 'the claim keeps its size');

  // A removed tenant is deprovisioned until its namespace is really gone.
  await commitFiles(repo, { 'tenants/initech.yaml': null }, 'remove initech');
  await until('DEPROVISIONED', 'initech', (v) => v.status === 'DEPROVISIONED');
  t.equal(await target.get(nsRef('initech')), null, 'initech’s namespace is gone from the cluster');

  await kubelet.stop();
  daemon.child.kill('SIGTERM');
  t.match(await daemon.exited, { code: 0 }, 'a clean stop');
});

t.test('a kubeconfig with a plain-HTTP server and no insecure-skip-tls-verify stops the daemon at start with E_CONFIG', async (t) => {
  const dir = t.testdir();
  const kubeconfig = path.join(dir, 'kubeconfig');
  await fsp.writeFile(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{ name: plain, cluster: { server: "http://127.0.0.1:8080" } }]',
      'users: [{ name: u, user: { token: abc } }]',
      'contexts: [{ name: plain, context: { cluster: plain, user: u } }]',
      'current-context: plain',
      '',
    ].join('\n'),
  );
  const p = spawnTenantd(['daemon', '--data-dir', path.join(dir, 'data'), '--provider', 'kubernetes', '--kubeconfig', kubeconfig, '--poll', '0', '--port', '0', '--host', '127.0.0.1']);
  const exit = await p.exited;
  t.equal(exit.code, 2, 'a configuration error exits 2, as every usage error');
  t.match(p.output(), /E_CONFIG/);
  t.match(p.output(), /insecure-skip-tls-verify: true/, 'says what to set');
});
