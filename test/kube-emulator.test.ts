import t from 'tap';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  VersionApi,
  Watch,
  type KubernetesObject,
  type V1Deployment,
} from '@kubernetes/client-node';
import { canonicalQuantity, startKubeEmulator, type KubeEmulator, type KubeObject } from './kube-emulator/index.js';

const MANAGER = 'tenantd';

interface StatusBody {
  kind?: string;
  status?: string;
  reason?: string;
  message?: string;
  code?: number;
  details?: { name?: string; kind?: string; causes?: { type?: string; reason?: string; message?: string; field?: string }[] };
}

/** Runs `fn`, expects an ApiException, and returns its code and parsed Status body. */
async function apiError(fn: () => Promise<unknown>): Promise<{ code: number; body: StatusBody }> {
  try {
    await fn();
  } catch (err: unknown) {
    if (err instanceof ApiException) {
      const raw: unknown = err.body;
      const body = (typeof raw === 'string' ? JSON.parse(raw) : raw) as StatusBody;
      return { code: err.code, body };
    }
    throw err;
  }
  throw new Error('expected an ApiException');
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function deployment(name: string, namespace: string, replicas = 2, image = 'nginx:1.27'): KubernetesObject & Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }] } },
    },
  };
}

function configMap(name: string, namespace: string | undefined, data: Record<string, string>, labels?: Record<string, string>): KubernetesObject & Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, ...(labels ? { labels } : {}) }, data };
}

interface Clients {
  emu: KubeEmulator;
  core: CoreV1Api;
  apps: AppsV1Api;
  objects: KubernetesObjectApi;
}

async function setup(t: { teardown(fn: () => unknown): void }, options: Parameters<typeof startKubeEmulator>[0] = {}): Promise<Clients> {
  // Without system objects (default namespace, kube-root-ca.crt, …) so lists hold only what a test made.
  const emu = await startKubeEmulator({ namespaceFinalization: 'manual', controllerDelayMs: 1, systemObjects: false, ...options });
  t.teardown(() => emu.close());
  const kc = emu.kubeConfig();
  return {
    emu,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    objects: KubernetesObjectApi.makeApiClient(kc),
  };
}

async function withNamespace(c: Clients, name = 't1'): Promise<void> {
  await c.core.createNamespace({ body: { metadata: { name } } });
}

function apply(c: Clients, obj: KubernetesObject, force = false, manager = MANAGER): Promise<KubernetesObject> {
  return c.objects.patch(obj, undefined, undefined, manager, force, PatchStrategy.ServerSideApply);
}

function managers(obj: KubernetesObject | KubeObject | undefined): { manager?: string; operation?: string; fieldsV1?: unknown }[] {
  const meta = obj?.metadata as { managedFields?: { manager?: string; operation?: string; fieldsV1?: unknown }[] } | undefined;
  return meta?.managedFields ?? [];
}

t.test('discovery, version and authentication', async (t) => {
  const c = await setup(t);
  const version = await c.emu.kubeConfig().makeApiClient(VersionApi).getCode();
  t.equal(version.major, '1');

  const res = await fetch(`${c.emu.url}/apis/apps/v1`, { headers: { authorization: `Bearer ${c.emu.token ?? ''}` } });
  const doc = (await res.json()) as { kind: string; resources: { name: string; namespaced: boolean; kind: string; verbs: string[] }[] };
  t.equal(doc.kind, 'APIResourceList');
  t.match(doc.resources.find((r) => r.name === 'deployments'), { namespaced: true, kind: 'Deployment', verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] });
  t.ok(doc.resources.find((r) => r.name === 'deployments/status'));
  const groups = (await (await fetch(`${c.emu.url}/apis`, { headers: { authorization: `Bearer ${c.emu.token ?? ''}` } })).json()) as { groups: { name: string }[] };
  t.same(groups.groups.map((g) => g.name).sort(), ['apps', 'networking.k8s.io', 'policy', 'rbac.authorization.k8s.io']);

  const anonymous = await fetch(`${c.emu.url}/api/v1/namespaces`);
  t.equal(anonymous.status, 401);
  t.match(await anonymous.json(), { kind: 'Status', reason: 'Unauthorized', code: 401 });

  // KubernetesObjectApi resolves kinds through discovery, cluster-scoped ones included.
  await c.objects.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'disc' } });
  t.ok(c.emu.get({ kind: 'Namespace', name: 'disc' }));
  t.ok(c.emu.requests.some((r) => r.method === 'GET' && r.path === '/api/v1'));
});

t.test('create, read, list with selectors, replace, delete', async (t) => {
  const c = await setup(t);
  await withNamespace(c);
  const created = await c.core.createNamespacedConfigMap({ namespace: 't1', body: configMap('a', 't1', { k: 'v' }, { tier: 'web' }) });
  t.match(created.metadata, { name: 'a', namespace: 't1', generation: 1 });
  t.match(created.metadata?.uid, /^[0-9a-f-]{36}$/);
  t.ok(created.metadata?.creationTimestamp instanceof Date);
  await c.core.createNamespacedConfigMap({ namespace: 't1', body: configMap('b', 't1', { k: 'v' }, { tier: 'db' }) });

  const dup = await apiError(() => c.core.createNamespacedConfigMap({ namespace: 't1', body: configMap('a', 't1', {}) }));
  t.equal(dup.code, 409);
  t.match(dup.body, { kind: 'Status', status: 'Failure', reason: 'AlreadyExists', message: 'configmaps "a" already exists', details: { name: 'a', kind: 'configmaps' } });

  const missingNs = await apiError(() => c.core.createNamespacedConfigMap({ namespace: 'nope', body: configMap('a', 'nope', {}) }));
  t.match(missingNs, { code: 404, body: { reason: 'NotFound', message: 'namespaces "nope" not found' } });

  const read = await c.core.readNamespacedConfigMap({ name: 'a', namespace: 't1' });
  t.same(read.data, { k: 'v' });

  t.same((await c.core.listNamespacedConfigMap({ namespace: 't1', labelSelector: 'tier=web' })).items.map((i) => i.metadata?.name), ['a']);
  t.same((await c.core.listNamespacedConfigMap({ namespace: 't1', labelSelector: 'tier in (web,db),tier!=web' })).items.map((i) => i.metadata?.name), ['b']);
  t.same((await c.core.listNamespacedConfigMap({ namespace: 't1', labelSelector: '!tier' })).items, []);
  const page = await c.core.listNamespacedConfigMap({ namespace: 't1', limit: 1 });
  t.equal(page.items.length, 1);
  t.ok(page.metadata?._continue);
  const rest = await c.core.listNamespacedConfigMap({ namespace: 't1', limit: 1, _continue: page.metadata?._continue });
  t.same(rest.items.map((i) => i.metadata?.name), ['b']);
  // Items in a real list carry no apiVersion/kind; the list itself does.
  const raw = (await c.objects.list('v1', 'ConfigMap', 't1')) as { kind?: string; items: KubernetesObject[] };
  t.equal(raw.kind, 'ConfigMapList');
  t.equal(raw.items[0]?.kind, undefined);

  read.data = { k: 'v2' };
  const replaced = await c.core.replaceNamespacedConfigMap({ name: 'a', namespace: 't1', body: read });
  t.equal(replaced.data?.k, 'v2');
  t.ok(Number(replaced.metadata?.resourceVersion) > Number(read.metadata?.resourceVersion));
  t.equal(replaced.metadata?.generation, 2);

  const status = await c.core.deleteNamespacedConfigMap({ name: 'a', namespace: 't1' });
  t.match(status, { status: 'Success', details: { name: 'a', kind: 'configmaps' } });
  t.equal((await apiError(() => c.core.readNamespacedConfigMap({ name: 'a', namespace: 't1' }))).code, 404);
  t.equal((await apiError(() => c.core.deleteNamespacedConfigMap({ name: 'a', namespace: 't1' }))).code, 404);
});

t.test('PUT with a stale resourceVersion is a 409 Conflict', async (t) => {
  const c = await setup(t);
  await withNamespace(c);
  await c.core.createNamespacedConfigMap({ namespace: 't1', body: configMap('cm', 't1', { k: 'v' }) });
  const stale = await c.core.readNamespacedConfigMap({ name: 'cm', namespace: 't1' });
  c.emu.edit({ kind: 'ConfigMap', namespace: 't1', name: 'cm' }, (o) => {
    o.data = { k: 'edited' };
  });
  stale.data = { k: 'mine' };
  const err = await apiError(() => c.core.replaceNamespacedConfigMap({ name: 'cm', namespace: 't1', body: stale }));
  t.equal(err.code, 409);
  t.match(err.body, {
    reason: 'Conflict',
    message: 'Operation cannot be fulfilled on configmaps "cm": the object has been modified; please apply your changes to the latest version and try again',
  });
  t.same(c.emu.get({ kind: 'ConfigMap', namespace: 't1', name: 'cm' })?.data, { k: 'edited' });
});

t.test('server-side apply: create, unchanged re-apply, managedFields', async (t) => {
  const c = await setup(t);
  await withNamespace(c);
  const first = await apply(c, deployment('web', 't1'));
  t.equal(first.metadata?.generation, 1);
  // The deployment controller writes status once it sees the new generation; wait for it.
  const settled = await waitFor('observedGeneration', () => {
    const live = c.emu.get({ kind: 'Deployment', namespace: 't1', name: 'web' });
    return (live?.status as { observedGeneration?: number } | undefined)?.observedGeneration === 1 ? live : undefined;
  });
  const rv = settled.metadata.resourceVersion;
  const entries = managers(first);
  t.equal(entries.length, 1);
  t.match(entries[0], { manager: MANAGER, operation: 'Apply', fieldsV1: { 'f:spec': { 'f:replicas': {}, 'f:selector': {} } } });
  // Server defaults are not owned by the applier.
  t.equal((first as V1Deployment).spec?.revisionHistoryLimit, 10);
  t.notOk(JSON.stringify(entries[0]?.fieldsV1).includes('revisionHistoryLimit'));
  const applyRequest = c.emu.requests.find((r) => r.method === 'PATCH');
  t.match(applyRequest, { contentType: 'application/apply-patch+yaml', fieldManager: MANAGER, status: 201 });

  const again = await apply(c, deployment('web', 't1'));
  t.equal(again.metadata?.resourceVersion, rv, 'an unchanged apply writes nothing');
  t.equal(c.emu.requests.filter((r) => r.method === 'PATCH').at(-1)?.status, 200);

  const scaled = await apply(c, deployment('web', 't1', 3));
  t.not(scaled.metadata?.resourceVersion, rv);
  t.equal(scaled.metadata?.generation, 2);

  const dry = await c.objects.patch(deployment('web', 't1', 7), undefined, 'All', MANAGER, false, PatchStrategy.ServerSideApply);
  t.equal((dry as V1Deployment).spec?.replicas, 7);
  t.equal((c.emu.get({ kind: 'Deployment', namespace: 't1', name: 'web' }) as unknown as V1Deployment).spec?.replicas, 3);

  const noManager = await apiError(() => c.objects.patch(deployment('web', 't1'), undefined, undefined, undefined, false, PatchStrategy.ServerSideApply));
  t.match(noManager, { code: 422, body: { reason: 'Invalid', message: /fieldManager: Required value/ } });
});

t.test('server-side apply conflicts name the field and manager; force takes ownership', async (t) => {
  const c = await setup(t);
  await withNamespace(c);
  await apply(c, deployment('web', 't1', 2));
  c.emu.edit({ kind: 'Deployment', namespace: 't1', name: 'web' }, (o) => {
    (o.spec as { replicas: number }).replicas = 5;
  });

  // Re-applying the same config now changes a field kubectl-edit owns.
  const err = await apiError(() => apply(c, deployment('web', 't1', 2)));
  t.equal(err.code, 409);
  t.equal(err.body.reason, 'Conflict');
  t.match(err.body.message, /^Apply failed with 1 conflict: conflict with "kubectl-edit" using apps\/v1 at .*: \.spec\.replicas$/);
  t.match(err.body.details?.causes, [{ type: 'FieldManagerConflict', field: '.spec.replicas', message: /conflict with "kubectl-edit"/ }]);

  // Applying the value the other manager set is no conflict: the field becomes co-owned.
  const shared = await apply(c, deployment('web', 't1', 5));
  t.equal((shared as V1Deployment).spec?.replicas, 5);

  const forced = await apply(c, deployment('web', 't1', 2), true);
  t.equal((forced as V1Deployment).spec?.replicas, 2);
  const editor = managers(forced).find((m) => m.manager === 'kubectl-edit');
  t.notOk(JSON.stringify(editor?.fieldsV1 ?? {}).includes('f:replicas'), 'the forced field left the other manager');
  t.ok(JSON.stringify(managers(forced).find((m) => m.manager === MANAGER)?.fieldsV1).includes('f:replicas'));

  // Two appliers: the second conflicts on the image, naming the first without "using".
  const other = deployment('web', 't1', 2, 'nginx:9');
  const err2 = await apiError(() => apply(c, other, false, 'helm'));
  t.equal(err2.code, 409);
  t.match(err2.body.message, /conflict with "tenantd": \.spec\.template\.spec\.containers$/);
});

t.test('a manager that stops applying a field it alone owns removes it', async (t) => {
  const c = await setup(t);
  await withNamespace(c);
  await apply(c, configMap('cm', 't1', { a: '1', b: '2' }, { keep: 'yes', drop: 'yes' }));
  // Another manager co-owns data.b by applying the same value.
  await apply(c, configMap('cm', 't1', { b: '2' }), false, 'other');
  const pruned = await apply(c, configMap('cm', 't1', { a: '1' }, { keep: 'yes' }));
  const cm = pruned as KubernetesObject & { data?: Record<string, string> };
  t.same(cm.data, { a: '1', b: '2' }, 'b stays: other still owns it');
  t.same(cm.metadata?.labels, { keep: 'yes' }, 'the dropped label is gone');
  const last = await apply(c, configMap('cm', 't1', {}), false, 'other');
  t.same((last as { data?: Record<string, string> }).data, { a: '1' });
});

t.test('validation failures are 422 Invalid with causes', async (t) => {
  const c = await setup(t);
  await withNamespace(c);
  const badName = await apiError(() => c.core.createNamespacedConfigMap({ namespace: 't1', body: configMap('Bad_Name', 't1', {}) }));
  t.equal(badName.code, 422);
  t.match(badName.body, { reason: 'Invalid', message: /^ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/, details: { kind: 'ConfigMap', causes: [{ field: 'metadata.name', reason: 'FieldValueInvalid' }] } });

  const noName = await apiError(() => c.core.createNamespacedConfigMap({ namespace: 't1', body: { data: {} } }));
  t.match(noName, { code: 422, body: { details: { causes: [{ field: 'metadata.name', reason: 'FieldValueRequired' }] } } });

  const noSelector = deployment('web', 't1');
  delete (noSelector.spec as Record<string, unknown>).selector;
  const e1 = await apiError(() => apply(c, noSelector));
  t.match(e1, { code: 422, body: { message: /^Deployment.apps "web" is invalid: spec.selector: Required value/ } });

  const negative = await apiError(() => apply(c, deployment('web', 't1', -1)));
  t.match(negative.body.details?.causes, [{ field: 'spec.replicas', message: 'Invalid value: -1: must be greater than or equal to 0' }]);

  const badNs = await apiError(() => c.core.createNamespace({ body: { metadata: { name: 'a.b' } } }));
  t.match(badNs.body, { reason: 'Invalid', details: { causes: [{ field: 'metadata.name' }] } });

  // A JSON type error is a decode failure: 400.
  const typed = await apiError(() => apply(c, { ...deployment('web', 't1'), spec: { replicas: 'two' } } as KubernetesObject));
  t.match(typed, { code: 400, body: { reason: 'BadRequest', message: /cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas/ } });

  // Immutable selector.
  await apply(c, deployment('web', 't1'));
  const changed = deployment('web', 't1');
  changed.spec = {
    ...(changed.spec as object),
    selector: { matchLabels: { app: 'other' } },
    template: { metadata: { labels: { app: 'other' } }, spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] } },
  };
  const immutable = await apiError(() => apply(c, changed));
  t.match(immutable, { code: 422, body: { message: /spec.selector: Invalid value: .*field is immutable/ } });
});

t.test('namespace deletion: Terminating, content removed, then the finalizer', async (t) => {
  const c = await setup(t);
  await withNamespace(c, 'gone');
  await apply(c, deployment('web', 'gone'));
  await c.core.createNamespacedConfigMap({ namespace: 'gone', body: { metadata: { name: 'held', finalizers: ['example.com/hold'] }, data: {} } });

  const ns = await c.core.readNamespace({ name: 'gone' });
  t.same(ns.spec?.finalizers, ['kubernetes']);
  t.equal(ns.status?.phase, 'Active');
  t.equal(ns.metadata?.labels?.['kubernetes.io/metadata.name'], 'gone');

  await c.core.deleteNamespace({ name: 'gone' });
  const terminating = await c.core.readNamespace({ name: 'gone' });
  t.equal(terminating.status?.phase, 'Terminating');
  t.ok(terminating.metadata?.deletionTimestamp);
  t.same(terminating.spec?.finalizers, ['kubernetes']);

  const refused = await apiError(() => c.core.createNamespacedConfigMap({ namespace: 'gone', body: configMap('late', 'gone', {}) }));
  t.match(refused, { code: 403, body: { reason: 'Forbidden', message: /unable to create new content in namespace gone because it is being terminated/, details: { causes: [{ type: 'NamespaceTerminating' }] } } });

  t.equal(c.emu.stepNamespaces(), 1);
  t.notOk(c.emu.get({ kind: 'Deployment', namespace: 'gone', name: 'web' }), 'content deleted');
  t.ok(c.emu.get({ kind: 'ConfigMap', namespace: 'gone', name: 'held' })?.metadata.deletionTimestamp, 'finalizer holds the configmap');

  t.equal(c.emu.stepNamespaces(), 1);
  t.equal(c.emu.stepNamespaces(), 1, 'waits while content remains');
  const waiting = await c.core.readNamespace({ name: 'gone' });
  t.same(waiting.spec?.finalizers, ['kubernetes'], 'kubernetes finalizer stays while content remains');
  t.match(waiting.status?.conditions, [{ type: 'NamespaceContentRemaining', status: 'True' }, { type: 'NamespaceFinalizersRemaining', message: /example.com\/hold in 1 resource instances/ }]);

  await c.core.patchNamespacedConfigMap({ name: 'held', namespace: 'gone', body: [{ op: 'remove', path: '/metadata/finalizers' }] });
  t.notOk(c.emu.get({ kind: 'ConfigMap', namespace: 'gone', name: 'held' }), 'finalizer removed: the configmap is gone');
  t.ok(c.emu.get({ kind: 'Namespace', name: 'gone' }), 'the namespace outlives its content by one step');
  t.equal(c.emu.stepNamespaces(), 0);
  t.equal((await apiError(() => c.core.readNamespace({ name: 'gone' }))).code, 404);
});

t.test('namespace deletion completes by itself in auto mode', async (t) => {
  const c = await setup(t, { namespaceFinalization: 'auto', namespaceStepMs: 2 });
  await withNamespace(c, 'auto');
  await c.core.createNamespacedConfigMap({ namespace: 'auto', body: configMap('x', 'auto', {}) });
  const deleted = await c.core.deleteNamespace({ name: 'auto' });
  t.ok(deleted);
  await waitFor('namespace removal', () => !c.emu.get({ kind: 'Namespace', name: 'auto' }));
  t.same(c.emu.list(undefined, 'auto'), []);
});

t.test('readiness controls: setReady, failRollout, autoReady, bindPvc', async (t) => {
  const c = await setup(t);
  await withNamespace(c);
  await apply(c, deployment('web', 't1', 3));
  const observed = await waitFor('observedGeneration', () => {
    const d = c.emu.get({ kind: 'Deployment', namespace: 't1', name: 'web' }) as unknown as V1Deployment | undefined;
    return d?.status?.observedGeneration === 1 ? d : undefined;
  });
  t.equal(observed.status?.readyReplicas, undefined, 'zero counters are omitted, as on a real server');
  t.equal(observed.status?.replicas, 3);

  c.emu.setReady('t1', 'Deployment', 'web', 2);
  let d = await c.apps.readNamespacedDeployment({ name: 'web', namespace: 't1' });
  t.equal(d.status?.readyReplicas, 2);
  t.match(d.status?.conditions?.find((x) => x.type === 'Progressing'), { status: 'True', reason: 'ReplicaSetUpdated' });
  const status = await c.apps.readNamespacedDeploymentStatus({ name: 'web', namespace: 't1' });
  t.equal(status.status?.readyReplicas, 2);
  t.ok(managers(d).some((m) => m.manager === 'kube-controller-manager'));

  c.emu.failRollout('t1', 'web');
  d = await c.apps.readNamespacedDeployment({ name: 'web', namespace: 't1' });
  t.match(d.status?.conditions?.find((x) => x.type === 'Progressing'), { status: 'False', reason: 'ProgressDeadlineExceeded' });

  c.emu.markAllReady();
  d = await c.apps.readNamespacedDeployment({ name: 'web', namespace: 't1' });
  t.match(d.status, { readyReplicas: 3, availableReplicas: 3, observedGeneration: 1 });
  t.match(d.status?.conditions?.find((x) => x.type === 'Progressing'), { status: 'True', reason: 'NewReplicaSetAvailable' });
  t.match(d.status?.conditions?.find((x) => x.type === 'Available'), { status: 'True' });

  const pvc = await c.core.createNamespacedPersistentVolumeClaim({
    namespace: 't1',
    body: { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1024Mi' } } } },
  });
  t.equal(pvc.status?.phase, 'Pending');
  t.equal(pvc.spec?.resources?.requests?.storage, '1Gi', 'quantities are stored canonically');
  c.emu.bindPvc('t1', 'data');
  const bound = await c.core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: 't1' });
  t.match(bound, { status: { phase: 'Bound', capacity: { storage: '1Gi' } }, spec: { volumeName: /^pvc-/ } });

  c.emu.autoReady = true;
  await apply(c, deployment('api', 't1', 2));
  await c.core.createNamespacedPersistentVolumeClaim({
    namespace: 't1',
    body: { metadata: { name: 'auto' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
  });
  await waitFor('auto readiness', () => {
    const api = c.emu.get({ kind: 'Deployment', namespace: 't1', name: 'api' }) as unknown as V1Deployment | undefined;
    return api?.status?.readyReplicas === 2;
  });
  await waitFor('auto binding', () => (c.emu.get({ kind: 'PersistentVolumeClaim', namespace: 't1', name: 'auto' })?.status as { phase?: string } | undefined)?.phase === 'Bound');
  t.pass('workload ready and claim bound without intervention');
});

t.test('unreachable mode makes the client throw', async (t) => {
  const c = await setup(t);
  c.emu.setUnreachable(true);
  const dropped = await c.core.listNamespace().then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(dropped instanceof Error && !(dropped instanceof ApiException), 'a connection error, not an HTTP answer');
  t.match(dropped, { code: 'ECONNRESET' });
  t.equal(c.emu.requests.at(-1)?.status, 0);

  c.emu.setUnreachable(true, '503');
  const unavailable = await apiError(() => c.core.listNamespace());
  t.match(unavailable, { code: 503, body: { reason: 'ServiceUnavailable' } });

  c.emu.setUnreachable(false);
  t.same((await c.core.listNamespace()).items, []);
});

t.test('injected errors fire exactly N times', async (t) => {
  const c = await setup(t);
  await withNamespace(c);
  await c.core.createNamespacedConfigMap({ namespace: 't1', body: configMap('cm', 't1', {}) });
  const fault = c.emu.injectError({ method: 'GET', path: '/api/v1/namespaces/t1/configmaps/cm' }, 500, 2);
  const read = (): Promise<unknown> => c.core.readNamespacedConfigMap({ name: 'cm', namespace: 't1' });
  t.match(await apiError(read), { code: 500, body: { reason: 'InternalError' } });
  t.match(await apiError(read), { code: 500 });
  t.ok(await read());
  t.equal(fault.fired, 2);
  t.equal(fault.remaining, 0);
  t.equal(c.emu.requests.filter((r) => r.injected).length, 2);

  // A one-shot 409 on apply, matched by content type: the retry succeeds.
  c.emu.injectError({ method: 'PATCH', contentType: 'application/apply-patch+yaml' }, 409);
  t.match(await apiError(() => apply(c, configMap('cm2', 't1', {}))), { code: 409, body: { reason: 'Conflict' } });
  t.ok(await apply(c, configMap('cm2', 't1', {})));

  const dropper = c.emu.injectError((r) => r.path.endsWith('/configmaps'), 0, 1, { drop: true });
  await t.rejects(c.core.listNamespacedConfigMap({ namespace: 't1' }));
  t.equal(dropper.fired, 1);
  t.equal((await c.core.listNamespacedConfigMap({ namespace: 't1' })).items.length, 2);
});

t.test('merge and JSON patches, dry-run create, edit ownership', async (t) => {
  const c = await setup(t);
  await withNamespace(c);
  await c.core.createNamespacedConfigMap({ namespace: 't1', body: configMap('cm', 't1', { a: '1', b: '2' }) });
  const merged = await c.objects.patch(
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', namespace: 't1' }, data: { b: null, c: '3' } } as KubernetesObject,
    undefined,
    undefined,
    'patcher',
    undefined,
    PatchStrategy.MergePatch,
  );
  t.same((merged as { data?: unknown }).data, { a: '1', c: '3' });
  t.ok(managers(merged).some((m) => m.manager === 'patcher' && m.operation === 'Update'));

  const jsonPatched = await c.core.patchNamespacedConfigMap({ name: 'cm', namespace: 't1', body: [{ op: 'replace', path: '/data/a', value: 'x' }] });
  t.equal(jsonPatched.data?.a, 'x');
  const failedTest = await apiError(() => c.core.patchNamespacedConfigMap({ name: 'cm', namespace: 't1', body: [{ op: 'test', path: '/data/a', value: 'nope' }] }));
  t.equal(failedTest.code, 422);

  const before = c.emu.resourceVersion();
  const dry = await c.core.createNamespacedConfigMap({ namespace: 't1', body: configMap('dry', 't1', {}), dryRun: 'All' });
  t.equal(dry.metadata?.name, 'dry');
  t.notOk(c.emu.get({ kind: 'ConfigMap', namespace: 't1', name: 'dry' }));
  t.equal(c.emu.resourceVersion(), before);

  const edited = c.emu.edit({ kind: 'ConfigMap', namespace: 't1', name: 'cm' }, (o) => ({ ...o, data: { a: 'x', c: '3', d: '4' } }), { manager: 'someone' });
  t.match(managers(edited).find((m) => m.manager === 'someone'), { operation: 'Update', fieldsV1: { 'f:data': { 'f:d': {} } } });
});

t.test('watch streams changes', async (t) => {
  const c = await setup(t);
  await withNamespace(c);
  const events: string[] = [];
  const watch = new Watch(c.emu.kubeConfig());
  const controller = await watch.watch(
    '/api/v1/namespaces/t1/configmaps',
    {},
    (type: string, obj: KubernetesObject) => events.push(`${type} ${obj.metadata?.name ?? ''}`),
    () => undefined,
  );
  t.teardown(() => controller.abort());
  await waitFor('watch registered', () => c.emu.requests.some((r) => r.query.watch === 'true'));
  await c.core.createNamespacedConfigMap({ namespace: 't1', body: configMap('w', 't1', {}) });
  await c.core.deleteNamespacedConfigMap({ name: 'w', namespace: 't1' });
  await waitFor('events', () => events.length >= 2);
  t.same(events, ['ADDED w', 'DELETED w']);
});

t.test('defaults and normalization are stable across re-applies', async (t) => {
  const c = await setup(t);
  const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tenant-a', labels: { team: 'a' } } };
  const nsApplied = await apply(c, ns);
  t.equal(nsApplied.metadata?.labels?.['kubernetes.io/metadata.name'], 'tenant-a');
  t.equal((await apply(c, ns)).metadata?.resourceVersion, nsApplied.metadata?.resourceVersion);

  const svc = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'tenant-a' },
    spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
  };
  const s1 = (await apply(c, svc)) as KubernetesObject & { spec?: { clusterIP?: string; type?: string; ports?: { targetPort?: unknown; protocol?: string }[] } };
  t.match(s1.spec, { type: 'ClusterIP', clusterIP: /^10\.96\./, ports: [{ targetPort: 80, protocol: 'TCP' }] });
  const s2 = (await apply(c, svc)) as typeof s1;
  t.equal(s2.spec?.clusterIP, s1.spec?.clusterIP, 'the allocated clusterIP survives a re-apply');
  t.equal(s2.metadata?.resourceVersion, s1.metadata?.resourceVersion);

  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'tenant-a' }, stringData: { password: 'hunter2' } };
  const sec1 = (await apply(c, secret)) as KubernetesObject & { data?: Record<string, string>; stringData?: unknown; type?: string };
  t.same(sec1.data, { password: Buffer.from('hunter2').toString('base64') });
  t.equal(sec1.stringData, undefined);
  t.equal(sec1.type, 'Opaque');
  t.equal((await apply(c, secret)).metadata?.resourceVersion, sec1.metadata?.resourceVersion);

  const sts = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'db', namespace: 'tenant-a' },
    spec: {
      serviceName: 'db',
      replicas: 1,
      selector: { matchLabels: { app: 'db' } },
      template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'pg', image: 'postgres:16', resources: { requests: { cpu: 0.5, memory: '1024Mi' } } }] } },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } } }],
    },
  };
  const st1 = (await apply(c, sts)) as KubernetesObject & { spec?: { template?: { spec?: { containers?: { resources?: unknown }[] } } } };
  t.same(st1.spec?.template?.spec?.containers?.[0]?.resources, { requests: { cpu: '500m', memory: '1Gi' } });
  const bigger = structuredClone(sts);
  const claim = bigger.spec.volumeClaimTemplates[0];
  if (claim) claim.spec.resources.requests.storage = '20Gi';
  const forbiddenChange = await apiError(() => apply(c, bigger));
  t.match(forbiddenChange, { code: 422, body: { message: /spec: Forbidden: updates to statefulset spec for fields other than/ } });
  const scaled = structuredClone(sts);
  scaled.spec.replicas = 3;
  t.equal(((await apply(c, scaled)) as { spec?: { replicas?: number } }).spec?.replicas, 3);
});

t.test('system objects: namespaces a cluster starts with, and per-namespace defaults', async (t) => {
  const c = await setup(t, { systemObjects: true });
  const names = (await c.core.listNamespace()).items.map((n) => n.metadata?.name);
  t.same(names, ['default', 'kube-node-lease', 'kube-public', 'kube-system']);
  t.ok(c.emu.get({ kind: 'ConfigMap', namespace: 'default', name: 'kube-root-ca.crt' }));
  t.match(await apiError(() => c.core.deleteNamespace({ name: 'kube-system' })), { code: 403, body: { message: 'namespaces "kube-system" is forbidden: this namespace may not be deleted' } });

  // KubernetesObjectApi puts namespaced objects without a namespace into "default".
  await apply(c, configMap('loose', undefined, { a: '1' }));
  t.ok(c.emu.get({ kind: 'ConfigMap', namespace: 'default', name: 'loose' }));

  await withNamespace(c, 'fresh');
  await waitFor('default service account', () => c.emu.get({ kind: 'ServiceAccount', namespace: 'fresh', name: 'default' }));
  await waitFor('root CA', () => c.emu.get({ kind: 'ConfigMap', namespace: 'fresh', name: 'kube-root-ca.crt' }));
  await c.core.deleteNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace: 'fresh' });
  await waitFor('root CA recreated', () => c.emu.get({ kind: 'ConfigMap', namespace: 'fresh', name: 'kube-root-ca.crt' }));
  t.pass('the root CA configmap comes back after deletion');
});

t.test('quantities are canonicalized like resource.Quantity', async (t) => {
  const cases: [string, string][] = [
    ['1024Mi', '1Gi'],
    ['1536Mi', '1536Mi'],
    ['0.5Gi', '512Mi'],
    ['0.5', '500m'],
    ['1000m', '1'],
    ['1000', '1k'],
    ['1500', '1500'],
    ['100m', '100m'],
    ['2e3', '2e3'],
    ['1.5', '1500m'],
    ['512', '512'],
    ['0', '0'],
  ];
  for (const [input, want] of cases) t.equal(canonicalQuantity(input), want, input);
  t.equal(canonicalQuantity('lots'), undefined);
});
