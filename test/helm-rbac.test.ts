/**
 * The chart's plain manifests (deploy/manifests/tenantd.yaml) applied to the real control plane,
 * and tenantd run as the chart's ServiceAccount, with that ServiceAccount's own token (the
 * cluster's serviceaccount-token controller issues it):
 *   - every rendered object, every option on, passes the API server's validation (dry run);
 *   - `kubectl auth can-i` as the ServiceAccount: what a reconcile needs is allowed; Secrets outside
 *     tenant namespaces, cluster-scoped objects other than namespaces, and cluster-admin are not;
 *   - a `tenantd daemon` with the Deployment's own environment and that token reconciles an
 *     example tenant to ACTIVE (the test acting as kubelet), binding its role in the tenant
 *     namespace only, and deprovisions it until the namespace is gone.
 * The ServiceMonitor is not validated by the server (the test cluster has no Prometheus Operator
 * CRDs); test/helm-chart.test.ts checks it against the operator's CRD schema.
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { KubeConfig } from '@kubernetes/client-node';
import { exampleFiles } from './helpers/daemon.js';
import { commitFiles, initRepo } from './helpers/git-fixtures.js';
import { FULL, MANIFESTS, helmTemplate, only, parseObjects } from './helpers/helm.js';
import { freePort, testCluster, tokenKubeConfig } from './helpers/kube-cluster.js';
import { eventually, startKubeTarget, type KubeTarget } from './helpers/kube-target.js';
import { spawnTenantd } from './helpers/process.js';

const run = promisify(execFile);
const SA_USER = 'system:serviceaccount:tenantd:tenantd';
const TENANT_ROLE = 'tenantd-tenant';

/** The kubectl of the cluster's release (up.sh's binaries), else TENANTD_KUBECTL or the one on PATH. */
async function kubectlBinary(): Promise<string> {
  if (process.env.TENANTD_KUBECTL) return process.env.TENANTD_KUBECTL;
  const c = await testCluster();
  if (!c.dir) return 'kubectl';
  return path.join((await fsp.readFile(path.join(c.dir, 'bin.path'), 'utf8')).trim(), 'kubectl');
}

type Kubectl = (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

async function kubectlFor(kubeconfigPath: string, context?: string): Promise<Kubectl> {
  const bin = await kubectlBinary();
  return async (args) => {
    try {
      const { stdout, stderr } = await run(bin, ['--kubeconfig', kubeconfigPath, ...(context ? ['--context', context] : []), ...args], { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 });
      return { code: 0, stdout, stderr };
    } catch (err: unknown) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
    }
  };
}

/** kubectl that must succeed. */
const ok = async (t: Test, kubectl: Kubectl, args: string[]): Promise<string> => {
  const r = await kubectl(args);
  if (r.code !== 0) t.fail(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
};

/** The ServiceAccount's token, once the token controller has issued it. */
async function serviceAccountToken(target: KubeTarget): Promise<string> {
  const secretName = await eventually(
    'the ServiceAccount token Secret',
    async () => {
      const sa = (await target.get({ apiVersion: 'v1', kind: 'ServiceAccount', name: 'tenantd', namespace: 'tenantd' })) as { secrets?: { name: string }[] } | null;
      return sa?.secrets?.find((s) => s.name.startsWith('tenantd-token-'))?.name;
    },
    120_000,
  );
  const secret = (await target.get({ apiVersion: 'v1', kind: 'Secret', name: secretName, namespace: 'tenantd' })) as { data?: { token?: string } } | null;
  const token = secret?.data?.token;
  if (!token) throw new Error(`Secret tenantd/${secretName} has no token`);
  return Buffer.from(token, 'base64').toString('utf8');
}

t.test('the chart on a real cluster: valid objects, least RBAC for the ServiceAccount, and a reconcile as that ServiceAccount', async (t) => {
  const target = await startKubeTarget(t);
  const cluster = await testCluster();
  const admin = await kubectlFor(cluster.kubeconfigPath, cluster.context);
  const dir = t.testdir();

  // An earlier run's namespace may still be terminating.
  await eventually('namespace tenantd not terminating', async () => !(await target.get({ apiVersion: 'v1', kind: 'Namespace', name: 'tenantd' }))?.metadata.deletionTimestamp, 180_000);
  t.teardown(async () => void (await admin(['delete', '-f', MANIFESTS, '--ignore-not-found', '--wait=false'])));

  // kubectl apply of the committed manifests, as a user would.
  const applied = await ok(t, admin, ['apply', '-f', MANIFESTS]);
  for (const o of parseObjects(await fsp.readFile(MANIFESTS, 'utf8'))) {
    t.match(applied, new RegExp(`^${o.kind.toLowerCase()}[./][^ ]*${o.metadata.name} (created|configured|unchanged)$`, 'm'), `applied ${o.kind}/${o.metadata.name}`);
  }

  // Every object with every option on passes the server's validation (second release, same namespace).
  const full = parseObjects(await helmTemplate(FULL, 'full', 'tenantd'));
  t.ok(full.some((o) => o.kind === 'ServiceMonitor'), 'the ServiceMonitor renders');
  const fullFile = path.join(dir, 'full.yaml');
  await fsp.writeFile(fullFile, full.filter((o) => o.kind !== 'ServiceMonitor').map((o) => `---\n${JSON.stringify(o)}\n`).join(''));
  const dry = await admin(['apply', '--dry-run=server', '--validate=true', '-f', fullFile]);
  t.equal(dry.code, 0, `server dry run of every object: ${dry.stderr}`);
  t.equal(dry.stdout.trim().split('\n').length, full.length - 1, 'one line per object');

  // As the ServiceAccount, with its own token.
  const token = await serviceAccountToken(target);
  const server = new KubeConfig();
  server.loadFromFile(cluster.kubeconfigPath);
  if (cluster.context) server.setCurrentContext(cluster.context);
  const saKubeconfig = path.join(dir, 'tenantd-sa.kubeconfig');
  await fsp.writeFile(saKubeconfig, tokenKubeConfig(server.getCurrentCluster()?.server ?? '', token, 'tenantd-sa').exportConfig(), { mode: 0o600 });
  const sa = await kubectlFor(saKubeconfig);
  const canI = async (...args: string[]): Promise<boolean> => {
    const r = await sa(['auth', 'can-i', ...args]);
    if (r.code !== 0 && r.code !== 1) throw new Error(`kubectl auth can-i ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim() === 'yes';
  };
  const allowed = async (label: string, ...args: string[]) => t.equal(await canI(...args), true, `CAN ${label}`);
  const denied = async (label: string, ...args: string[]) => t.equal(await canI(...args), false, `cannot ${label}`);

  // It is who the Deployment says it is.
  const deployment = only(parseObjects(await fsp.readFile(MANIFESTS, 'utf8')), 'Deployment');
  const env = (deployment.spec as { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } }).template.spec.containers[0]?.env ?? [];
  t.equal(env.find((e) => e.name === 'TENANTD_TENANT_ROLE_SUBJECT')?.value, SA_USER);

  const probeNs = 'tenant-not-created-yet';
  for (const verb of ['get', 'create', 'patch', 'delete']) await allowed(`${verb} namespaces`, verb, 'namespaces');
  await allowed('bind its tenant role in a tenant namespace', 'create', `rolebindings.rbac.authorization.k8s.io/${TENANT_ROLE}`, '-n', probeNs);
  await allowed('bind the tenant ClusterRole', 'bind', `clusterroles.rbac.authorization.k8s.io/${TENANT_ROLE}`);
  await allowed('create its Lease', 'create', 'leases.coordination.k8s.io', '-n', 'tenantd');
  await allowed('renew its Lease', 'update', 'leases.coordination.k8s.io/tenantd', '-n', 'tenantd');
  await allowed('review its own access', 'create', 'selfsubjectaccessreviews.authorization.k8s.io');

  // Before tenantd has bound its role there, not even a tenant namespace is open to it.
  await denied('read Secrets in a tenant namespace it has not bound its role in', 'get', 'secrets', '-n', probeNs);
  for (const ns of ['kube-system', 'default', 'tenantd']) {
    await denied(`read Secrets in ${ns}`, 'get', 'secrets', '-n', ns);
    await denied(`list Secrets in ${ns}`, 'list', 'secrets', '-n', ns);
    await denied(`create Deployments in ${ns}`, 'create', 'deployments.apps', '-n', ns);
    await denied(`read ConfigMaps in ${ns}`, 'get', 'configmaps', '-n', ns);
  }
  await denied('list Secrets in all namespaces', 'list', 'secrets', '--all-namespaces');
  await denied('do everything (cluster-admin)', '*', '*', '--all-namespaces');
  await denied('list namespaces', 'list', 'namespaces');
  for (const resource of ['clusterroles.rbac.authorization.k8s.io', 'clusterrolebindings.rbac.authorization.k8s.io', 'persistentvolumes', 'nodes', 'customresourcedefinitions.apiextensions.k8s.io', 'storageclasses.storage.k8s.io', 'validatingwebhookconfigurations.admissionregistration.k8s.io']) {
    await denied(`create ${resource}`, 'create', resource);
  }
  await denied('bind cluster-admin', 'bind', 'clusterroles.rbac.authorization.k8s.io/cluster-admin');
  await denied('escalate its tenant role', 'escalate', `clusterroles.rbac.authorization.k8s.io/${TENANT_ROLE}`);
  await denied('edit its tenant role', 'patch', `clusterroles.rbac.authorization.k8s.io/${TENANT_ROLE}`);
  await denied('create other RoleBindings', 'create', 'rolebindings.rbac.authorization.k8s.io/admin', '-n', probeNs);
  await denied('impersonate users', 'impersonate', 'users');
  await denied('touch another Lease', 'update', 'leases.coordination.k8s.io/kube-controller-manager', '-n', 'tenantd');
  await denied('create Leases elsewhere', 'create', 'leases.coordination.k8s.io', '-n', 'kube-system');
  // What RBAC cannot close (README "RBAC"): the RoleBinding's name is allowed in every namespace.
  t.equal(await canI('create', `rolebindings.rbac.authorization.k8s.io/${TENANT_ROLE}`, '-n', 'kube-system'), true, 'known: RBAC cannot limit the tenant RoleBinding to tenant namespaces');

  // tenantd as the Deployment runs it: its environment, the ServiceAccount's token.
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  const examples = await exampleFiles();
  // The example globex under an id of this run: test/kubernetes-daemon.test.ts reconciles the
  // examples under their own ids on the same cluster, maybe at the same time.
  const tenant = target.tenantId('globex');
  const globex = (examples['tenants/globex.yaml'] as string).replace('tenantId: globex', `tenantId: ${tenant}`);
  t.not(globex, examples['tenants/globex.yaml'], 'the example renamed');
  await commitFiles(repo, { [`tenants/${tenant}.yaml`]: globex }, 'one example tenant');
  const kubelet = target.kubelet();
  const port = await freePort();
  const deploymentEnv = Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
  const daemon = spawnTenantd(['daemon', '--insecure-no-auth', '--retry-base', '1'], {
    ...deploymentEnv,
    // Where a pod would have its volume, address and in-cluster credentials.
    TENANTD_DATA_DIR: path.join(dir, 'data'),
    TENANTD_HOST: '127.0.0.1',
    PORT: String(port),
    TENANTD_REPO: repo,
    TENANTD_POLL: '1',
    TENANTD_DRIFT_INTERVAL: '2',
    TENANTD_KUBECONFIG: saKubeconfig,
  });
  t.teardown(() => {
    if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
  });
  const api = `http://127.0.0.1:${port}/api/v1/infrastructure/tenants/${tenant}`;
  const status = async (): Promise<string | undefined> => {
    const res = await fetch(api).catch(() => undefined);
    return res?.ok ? ((await res.json()) as { status: string }).status : undefined;
  };
  const until = async (want: string): Promise<void> => {
    let last: string | undefined;
    try {
      await eventually(`${tenant} ${want}`, async () => (last = await status()) === want, 180_000);
    } catch (err: unknown) {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; last seen ${last}; daemon output ends: ${daemon.output().slice(-3000)}`);
    }
  };
  await until('ACTIVE');
  // The Deployment's probes, answered with nothing but the ServiceAccount's rights.
  for (const probe of ['/healthz', '/readyz']) t.equal((await fetch(`http://127.0.0.1:${port}${probe}`)).status, 200, `${probe} answers 200`);
  const ns = `tenant-${tenant}`;
  const binding = await target.get({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', name: TENANT_ROLE, namespace: ns });
  t.match(binding, { roleRef: { kind: 'ClusterRole', name: TENANT_ROLE }, subjects: [{ kind: 'ServiceAccount', name: 'tenantd', namespace: 'tenantd' }] }, 'tenantd bound its role in the tenant namespace');
  t.ok((await target.list('v1', 'Secret', ns)).some((s) => s.metadata.name.startsWith('postgres')), 'it wrote the tenant database Secret');
  t.ok((await target.list('apps/v1', 'Deployment', ns)).length > 0, 'and its workloads');
  t.ok((await target.list('policy/v1beta1', 'PodDisruptionBudget', ns)).length > 0, 'and its PodDisruptionBudgets (HA)');
  await allowed(`read Secrets in ${ns} now`, 'get', 'secrets', '-n', ns);
  await denied('read Secrets in kube-system, still', 'get', 'secrets', '-n', 'kube-system');
  await denied('read Secrets in tenantd, still', 'get', 'secrets', '-n', 'tenantd');
  t.notMatch(daemon.output(), /E_FORBIDDEN/, 'no request was forbidden');

  // Someone deletes tenantd's RoleBinding: the next drift check (every 2 s) is refused, and tenantd
  // binds it again and goes on. Only that path re-applies it: access granted once is not re-checked.
  const bindingRef = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', name: TENANT_ROLE, namespace: ns };
  const uid = binding?.metadata.uid;
  await target.remove(bindingRef);
  await eventually('the RoleBinding bound again', async () => {
    const again = await target.get(bindingRef);
    return again !== null && again.metadata.uid !== uid;
  }, 120_000);
  t.equal(await status(), 'ACTIVE', 'still ACTIVE');
  t.notMatch(daemon.output(), /E_FORBIDDEN/, 'no Forbidden reached the tenant');

  // A removed tenant is deprovisioned with the same rights, until its namespace is gone. It is the
  // only tenant, so tenants/ ends up empty: the mass-deletion breaker holds that unless the commit
  // approves it (see Deletion safety in the README).
  await commitFiles(repo, { [`tenants/${tenant}.yaml`]: null }, `remove ${tenant}\n\nTenantd-Approve-Deletions: 1`);
  await until('DEPROVISIONED');
  t.equal(await target.get({ apiVersion: 'v1', kind: 'Namespace', name: ns }), null, 'its namespace is gone');
  t.notMatch(daemon.output(), /E_FORBIDDEN/, 'no request was forbidden');

  await kubelet.stop();
  daemon.child.kill('SIGTERM');
  t.match(await daemon.exited, { code: 0 }, 'a clean stop');
});
