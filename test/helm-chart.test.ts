/**
 * The Helm chart (deploy/helm/tenantd) as helm renders it, without a cluster: `helm lint`,
 * the committed plain manifests equal to what `helm template` renders now, the Deployment's
 * security settings and probes, Secrets only ever referenced, the optional objects, the RBAC's
 * shape, and the value combinations the chart refuses. test/helm-rbac.test.ts applies it to the
 * real control plane.
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import t from 'tap';
import { CHART, FULL, MANIFESTS, ROOT, helmLint, helmNotes, helmTemplate, only, parseObjects, type RenderedObject } from './helpers/helm.js';

const run = promisify(execFile);

interface Container {
  env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  securityContext: Record<string, unknown>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  startupProbe: { httpGet: { path: string; port: string } };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  serviceAccountName: string;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: { name: string; persistentVolumeClaim?: { claimName: string }; secret?: { secretName: string }; emptyDir?: object }[];
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const podSpec = (objects: RenderedObject[]): PodSpec => (only(objects, 'Deployment').spec as { template: { spec: PodSpec } }).template.spec;
const container = (objects: RenderedObject[]): Container => podSpec(objects).containers[0] as Container;
const envOf = (objects: RenderedObject[], name: string) => container(objects).env.find((e) => e.name === name);
const rulesOf = (o: RenderedObject): Rule[] => (o.rules as Rule[] | undefined) ?? [];


t.test('helm lint passes with the default values and with every option set', async (t) => {
  t.match(await helmLint(), /1 chart\(s\) linted, 0 chart\(s\) failed/);
  t.match(await helmLint(FULL), /1 chart\(s\) linted, 0 chart\(s\) failed/);
  t.match(await helmLint({ provider: 'render', 'persistence.enabled': false }), /0 chart\(s\) failed/);
});

t.test('the committed plain manifests are what helm template renders now', async (t) => {
  const { stdout } = await run('bash', [path.join(ROOT, 'deploy', 'render-manifests.sh'), '-'], { maxBuffer: 16 * 1024 * 1024, timeout: 600_000 });
  const committed = await fsp.readFile(MANIFESTS, 'utf8');
  t.equal(committed, stdout, 'deploy/manifests/tenantd.yaml is stale: run deploy/render-manifests.sh');
  const objects = parseObjects(committed);
  t.same(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    'ClusterRole/tenantd',
    'ClusterRole/tenantd-tenant',
    'ClusterRoleBinding/tenantd',
    'Deployment/tenantd',
    'Namespace/tenantd',
    'PersistentVolumeClaim/tenantd-data',
    'Role/tenantd-leader-election',
    'RoleBinding/tenantd-leader-election',
    'Service/tenantd',
    'ServiceAccount/tenantd',
  ]);
  for (const o of objects) if (o.kind !== 'Namespace' && !o.kind.startsWith('Cluster')) t.equal(o.metadata.namespace, 'tenantd', `${o.kind} in namespace tenantd`);
});

t.test('the Deployment runs as non-root on a read-only root filesystem, probed on /healthz and /readyz', async (t) => {
  const objects = parseObjects(await helmTemplate());
  const pod = podSpec(objects);
  const c = container(objects);
  t.match(pod.securityContext, { runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } });
  t.match(c.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  t.equal(c.livenessProbe.httpGet.path, '/healthz');
  t.equal(c.startupProbe.httpGet.path, '/healthz');
  t.equal(c.readinessProbe.httpGet.path, '/readyz');
  t.equal(pod.serviceAccountName, 'tenantd');
  // The data dir is the PVC; /tmp the only other writable place.
  t.same(c.volumeMounts.map((m) => m.mountPath), ['/var/lib/tenantd', '/tmp']);
  t.same(pod.volumes.find((v) => v.name === 'data')?.persistentVolumeClaim, { claimName: only(objects, 'PersistentVolumeClaim').metadata.name });
  t.equal(envOf(objects, 'TENANTD_DATA_DIR')?.value, '/var/lib/tenantd');
  t.match((only(objects, 'Deployment').spec as Record<string, unknown>).strategy, { type: 'Recreate' }, 'never two daemons on one data dir');
  t.match(only(objects, 'Service').spec, { ports: [{ name: 'http', port: 8089, targetPort: 'http' }] });
  t.notOk(objects.some((o) => o.kind === 'Ingress' || o.kind === 'ServiceMonitor'), 'Ingress and ServiceMonitor are off by default');

  const noPvc = parseObjects(await helmTemplate({ 'persistence.enabled': false }));
  t.notOk(noPvc.some((o) => o.kind === 'PersistentVolumeClaim'));
  t.same(podSpec(noPvc).volumes.find((v) => v.name === 'data')?.emptyDir, {});
  const existing = parseObjects(await helmTemplate({ 'persistence.existingClaim': 'my-data' }));
  t.notOk(existing.some((o) => o.kind === 'PersistentVolumeClaim'));
  t.same(podSpec(existing).volumes.find((v) => v.name === 'data')?.persistentVolumeClaim, { claimName: 'my-data' });
});

t.test('Secrets are referenced by name, never rendered or inlined', async (t) => {
  const text = await helmTemplate(FULL);
  const objects = parseObjects(text);
  t.notOk(objects.some((o) => o.kind === 'Secret'), 'the chart renders no Secret');
  const ref = (name: string) => envOf(objects, name)?.valueFrom?.secretKeyRef;
  t.same(ref('TENANTD_GIT_TOKEN'), { name: 'tenantd-git', key: 'token' });
  t.same(ref('TENANTD_WEBHOOK_SECRET'), { name: 'tenantd-webhook', key: 'secret' });
  t.same(ref('TENANTD_JWT_SECRET'), { name: 'tenantd-jwt', key: 'secret' });
  for (const name of ['TENANTD_GIT_TOKEN', 'TENANTD_WEBHOOK_SECRET', 'TENANTD_JWT_SECRET']) t.equal(envOf(objects, name)?.value, undefined, `${name} has no inline value`);
  // The tokens file is a mounted Secret (a directory, so edits reach the pod).
  t.equal(envOf(objects, 'TENANTD_TOKENS_FILE')?.value, '/etc/tenantd/api-tokens/api-tokens.yaml');
  t.same(podSpec(objects).volumes.find((v) => v.name === 'api-tokens')?.secret, { secretName: 'tenantd-api-tokens', defaultMode: 0o440 });
  t.match(container(objects).volumeMounts.find((m) => m.name === 'api-tokens'), { mountPath: '/etc/tenantd/api-tokens', readOnly: true });
  // The notifications file (receiver URLs are secrets) likewise, read-only.
  t.equal(envOf(objects, 'TENANTD_NOTIFICATIONS_FILE')?.value, '/etc/tenantd/notifications/notifications.yaml');
  t.same(podSpec(objects).volumes.find((v) => v.name === 'notifications')?.secret, { secretName: 'tenantd-notifications', defaultMode: 0o440 });
  t.match(container(objects).volumeMounts.find((m) => m.name === 'notifications'), { mountPath: '/etc/tenantd/notifications', readOnly: true });
  const key = parseObjects(await helmTemplate({ 'notifications.existingSecret': 'alerts', 'notifications.key': 'receivers.yaml' }));
  t.equal(envOf(key, 'TENANTD_NOTIFICATIONS_FILE')?.value, '/etc/tenantd/notifications/receivers.yaml', 'the file is the Secret key named');
  t.same(podSpec(key).volumes.find((v) => v.name === 'notifications')?.secret, { secretName: 'alerts', defaultMode: 0o440 });
  // Nothing secret at all without them.
  const plain = parseObjects(await helmTemplate());
  t.notOk(container(plain).env.some((e) => e.valueFrom), 'no Secret referenced when none is named');
  t.equal(envOf(plain, 'TENANTD_NOTIFICATIONS_FILE'), undefined, 'no notifications file without notifications.existingSecret');
  t.notOk(podSpec(plain).volumes.some((v) => v.name === 'notifications' || v.secret), 'and no Secret volume');
  t.notOk(container(plain).volumeMounts.some((m) => m.name === 'notifications'), 'nor its mount');
});

t.test('the optional Ingress and ServiceMonitor point at the Service', async (t) => {
  const objects = parseObjects(await helmTemplate(FULL));
  const ingress = only(objects, 'Ingress');
  t.match(ingress.spec, {
    ingressClassName: 'nginx',
    tls: [{ secretName: 'tenantd-tls', hosts: ['tenantd.example.com'] }],
    rules: [{ host: 'tenantd.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'tenantd', port: { number: 8089 } } } }] } }],
  });
  const monitor = only(objects, 'ServiceMonitor');
  t.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
  t.match(monitor.metadata.labels, { release: 'prometheus' });
  t.match(monitor.spec, {
    selector: { matchLabels: (only(objects, 'Service').spec as { selector: Record<string, string> }).selector },
    namespaceSelector: { matchNames: ['tenantd'] },
    endpoints: [{ port: 'http', path: '/metrics' }],
  });
  // The test cluster has no Prometheus Operator, so no server validates it: the operator's own CRD
  // schema does (validators generated from monitoring.coreos.com/v1, @kubernetes-models/prometheus-operator).
  const validateMonitor = (o: unknown): void => new ServiceMonitor(o as ConstructorParameters<typeof ServiceMonitor>[0]).validate();
  t.doesNotThrow(() => validateMonitor(monitor), 'valid by the ServiceMonitor CRD schema');
  const broken = { ...monitor, spec: { ...(monitor.spec as Record<string, unknown>), endpoints: [{ port: 8089, scheme: 'ftp' }] } };
  t.throws(() => validateMonitor(broken), /port must be string/, 'and the schema check can fail');
});

t.test('RBAC: namespaces and one bindable role cluster-wide, no wildcard, no Secret outside the tenant role', async (t) => {
  const objects = parseObjects(await helmTemplate());
  for (const o of objects.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
    for (const r of rulesOf(o)) {
      t.notOk([...r.verbs, ...r.resources, ...r.apiGroups].includes('*'), `${o.kind}/${o.metadata.name}: no wildcard`);
      t.notOk(r.verbs.some((v) => ['list', 'watch', 'escalate', 'impersonate'].includes(v)), `${o.kind}/${o.metadata.name}: no list, watch, escalate or impersonate`);
    }
  }
  const cluster = only(objects, 'ClusterRole', 'tenantd');
  t.same(
    rulesOf(cluster).map((r) => `${r.apiGroups.join()}/${r.resources.join()}:${r.verbs.join()}${r.resourceNames ? `@${r.resourceNames.join()}` : ''}`),
    ['/namespaces:get,create,patch,delete', 'rbac.authorization.k8s.io/rolebindings:create,patch@tenantd-tenant', 'rbac.authorization.k8s.io/clusterroles:bind@tenantd-tenant'],
  );
  t.match(only(objects, 'ClusterRoleBinding').subjects, [{ kind: 'ServiceAccount', name: 'tenantd', namespace: 'tenantd' }]);
  // Only the tenant role (bound by tenantd in tenant namespaces only) names Secrets.
  for (const o of objects.filter((x) => x.kind.endsWith('Role') && x.metadata.name !== 'tenantd-tenant')) {
    t.notOk(rulesOf(o).some((r) => r.resources.includes('secrets')), `${o.kind}/${o.metadata.name} grants no Secret`);
  }
  t.equal(only(objects, 'ClusterRole', 'tenantd-tenant').kind, 'ClusterRole');
  t.match(rulesOf(only(objects, 'Role')), [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] }, { resourceNames: ['tenantd'], verbs: ['get', 'update', 'patch'] }]);
  // The daemon is told which role to bind and who it is.
  t.equal(envOf(objects, 'TENANTD_TENANT_ROLE')?.value, 'tenantd-tenant');
  t.equal(envOf(objects, 'TENANTD_TENANT_ROLE_SUBJECT')?.value, 'system:serviceaccount:tenantd:tenantd');

  // Two releases never share a cluster-scoped name.
  const other = parseObjects(await helmTemplate({}, 'staging', 'tenantd-staging'));
  t.same(other.filter((o) => o.kind.startsWith('Cluster')).map((o) => o.metadata.name).sort(), ['staging-tenantd', 'staging-tenantd', 'staging-tenantd-tenant']);
  t.equal(envOf(other, 'TENANTD_TENANT_ROLE_SUBJECT')?.value, 'system:serviceaccount:tenantd-staging:staging-tenantd');

  // The render provider needs no cluster access: no cluster-wide RBAC, no role to bind.
  const render = parseObjects(await helmTemplate({ provider: 'render' }));
  t.notOk(render.some((o) => o.kind.startsWith('Cluster')));
  t.equal(envOf(render, 'TENANTD_TENANT_ROLE'), undefined);
  t.notOk(parseObjects(await helmTemplate({ 'rbac.create': false })).some((o) => o.kind.includes('Role')), 'rbac.create=false: bring your own');
});

t.test('values the daemon cannot run with fail at render time, saying why', async (t) => {
  await t.rejects(helmTemplate({ replicaCount: 2 }), /replicaCount > 1 needs leaderElection.enabled/);
  await t.rejects(helmTemplate({ replicaCount: 2, 'leaderElection.enabled': true }), /ReadWriteMany/, 'two replicas on a ReadWriteOnce volume are refused');
  await t.rejects(helmTemplate({ replicaCount: 2, 'leaderElection.enabled': true, 'persistence.enabled': false }), /persistence.enabled/, 'two replicas need a shared volume');
  await t.rejects(helmTemplate({ provider: 'pulumi-typo' }), /provider/);
  await t.rejects(helmTemplate({ 'serviceAccount.create': false }), /serviceAccount.name is required/);
  await t.rejects(helmTemplate({ 'config.concurrency': 0 }), /concurrency/);
  t.ok((await fsp.stat(path.join(CHART, 'values.schema.json'))).isFile(), 'values are checked by values.schema.json');
});

t.test('the install notes say where to look and what is missing', async (t) => {
  const notes = await helmNotes();
  t.match(notes, /with the kubernetes provider/);
  t.match(notes, /No config.repo is set/);
  t.match(notes, /grep -A2 'created an admin API token'/, 'how to find the generated admin token');
  t.match(notes, /bind ClusterRole tenantd-tenant/);
  const full = await helmNotes(FULL);
  t.match(full, /It reconciles https:\/\/git.example.com\/platform\/tenants.git \(branch main\)/);
  t.notMatch(full, /admin API token/, 'no generated token with a tokens file');
  t.match(full, /Webhooks: point your forge at POST \/api\/v1\/webhooks\//);
});

t.test('two replicas with leader election: each pod a candidate under its name, reached at its pod IP, on a shared volume', async (t) => {
  const objects = parseObjects(await helmTemplate({ replicaCount: 2, 'leaderElection.enabled': true, 'persistence.accessModes': ['ReadWriteMany'] }));
  const deployment = only(objects, 'Deployment');
  t.match(deployment.spec, { replicas: 2, strategy: { type: 'RollingUpdate' } });
  t.equal(envOf(objects, 'TENANTD_LEADER_ELECT')?.value, 'true');
  t.equal(envOf(objects, 'TENANTD_LEADER_ELECT_LEASE_NAME')?.value, 'tenantd', 'the Lease the Role allows');
  t.equal(envOf(objects, 'TENANTD_LEADER_ELECT_LEASE_NAMESPACE')?.value, 'tenantd');
  t.match(envOf(objects, 'TENANTD_LEADER_ELECT_IDENTITY'), { valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
  t.equal(envOf(objects, 'TENANTD_ADVERTISE_URL')?.value, 'http://$(POD_IP):8089');
  t.match(only(objects, 'PersistentVolumeClaim').spec, { accessModes: ['ReadWriteMany'] });
  t.match(rulesOf(only(objects, 'Role')), [{ verbs: ['create'] }, { resourceNames: ['tenantd'] }]);
  // The default stays one daemon that never overlaps another on its volume.
  t.match(only(parseObjects(await helmTemplate()), 'Deployment').spec, { replicas: 1, strategy: { type: 'Recreate' } });
  t.equal(envOf(parseObjects(await helmTemplate()), 'TENANTD_LEADER_ELECT'), undefined);
});
