/**
 * The Pulumi program, run under Pulumi's own mocks (`pulumi.runtime.setMocks`): no CLI, no engine,
 * no plugin download. The mock monitor records every resource registration with its type, logical
 * name, inputs and provider reference.
 *
 * Pulumi's runtime state is process-global: this file keeps all mock tests (tap runs each file in
 * its own process), and imports the program only after `setMocks`.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import * as pulumi from '@pulumi/pulumi';
import type { TenantInfrastructureDocument, Tier } from '../core/tenant/types.js';
import {
  allObjects,
  LABEL_APPLY_GROUP,
  LABEL_MANAGED_BY,
  LABEL_TENANT_ID,
  outputsFor,
  renderTenant,
} from '../providers/resources/renderer.js';
import type { KubeObject, RenderedTenant } from '../providers/resources/types.js';

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  provider: string | undefined;
}

// An empty PULUMI_HOME for this process: it must still be empty at the end (no plugin was fetched).
const pulumiHome = mkdtempSync(path.join(os.tmpdir(), 'tenantd-pulumi-home-'));
process.env.PULUMI_HOME = pulumiHome;
t.teardown(() => rmSync(pulumiHome, { recursive: true, force: true }));

const registered: Registered[] = [];
const MOCK_PASSWORD = 'mock-generated-password-0123456789';

await pulumi.runtime.setMocks(
  {
    newResource(args) {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown>, provider: args.provider });
      const metadata = (args.inputs as { metadata?: { name?: string; namespace?: string } }).metadata;
      const id = metadata?.name ? (metadata.namespace ? `${metadata.namespace}/${metadata.name}` : metadata.name) : `${args.name}-id`;
      return { id, state: args.inputs as Record<string, unknown> };
    },
    call(args) {
      return args.inputs as Record<string, unknown>;
    },
  },
  'tenantd',
  'tenant-test',
  false,
);
// Generated values through the same path a real stack uses: secret stack configuration.
pulumi.runtime.setAllConfig(
  { 'tenantd:generated.postgres-credentials.password': MOCK_PASSWORD },
  ['tenantd:generated.postgres-credentials.password'],
);

const program = await import('../providers/pulumi/program.js');

function tenant(tier: Tier, patch: Partial<TenantInfrastructureDocument['spec']> = {}, tenantId = `t-${tier}`): TenantInfrastructureDocument {
  const base: Record<Tier, TenantInfrastructureDocument['spec']> = {
    starter: {
      tier: 'starter',
      cloudProvider: 'AWS',
      region: 'us-east-1',
      configuration: { databaseSize: 'db.t3.small', storageGb: 20, enableHa: false },
      services: [{ name: 'web', image: 'ghcr.io/acme/web:1.0.0', port: 8080 }],
    },
    professional: {
      tier: 'professional',
      cloudProvider: 'AZURE',
      region: 'westeurope',
      configuration: { databaseSize: 'GP_Gen5_2', storageGb: 250, enableHa: true },
      services: [
        { name: 'api', image: 'ghcr.io/globex/api:1.4.0', replicas: 3, port: 8080 },
        { name: 'worker', image: 'ghcr.io/globex/worker:1.4.0', replicas: 1, port: 9090 },
      ],
      ingress: { hosts: ['api.globex.example.com'], tls: { enabled: true, clusterIssuer: 'letsencrypt' } },
    },
    enterprise: {
      tier: 'enterprise',
      cloudProvider: 'GCP',
      region: 'europe-west1',
      configuration: { databaseSize: 'db-custom-8-53248', storageGb: 4096, enableHa: true },
    },
  };
  return {
    apiVersion: 'tenantd.io/v1alpha1',
    kind: 'TenantInfrastructure',
    metadata: { tenantId, name: `Tenant ${tenantId}`, labels: { 'cost-center': 'cc-1001' } },
    spec: { ...base[tier], ...patch },
  };
}

/** Resolves once no registration arrived for a while (for programs whose resources are not awaited). */
async function settle(): Promise<void> {
  let last = -1;
  while (last !== registered.length) {
    last = registered.length;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A value as the mock monitor received it: secrets arrive wrapped in Pulumi's secret envelope. */
function unwrapSecret(value: unknown): { secret: boolean; value: unknown } {
  if (value !== null && typeof value === 'object' && (value as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig) {
    return { secret: true, value: (value as { value: unknown }).value };
  }
  return { secret: false, value };
}

/** Runs the program under the mocks; resolves once every resource is registered. */
async function run(rendered: RenderedTenant, opts: Parameters<typeof program.declareTenant>[1] = {}) {
  registered.length = 0;
  const declared = program.declareTenant(rendered, opts);
  await new Promise<void>((resolve) => pulumi.all([...declared.resources.values()].map((r) => r.urn)).apply(() => resolve()));
  await new Promise<void>((resolve) => declared.provider.urn.apply(() => resolve()));
  return { declared, resources: registered.filter((r) => r.type !== 'pulumi:providers:kubernetes'), providers: registered.filter((r) => r.type === 'pulumi:providers:kubernetes') };
}

const typeOf = (o: KubeObject): string => program.typeTokenFor(o.apiVersion, o.kind);
const metaOf = (r: Registered): KubeObject['metadata'] => r.inputs.metadata as KubeObject['metadata'];
const find = (rs: Registered[], type: string, name: string): Registered | undefined => rs.find((r) => r.type === type && metaOf(r).name === name);

const TIERS: Tier[] = ['starter', 'professional', 'enterprise'];

for (const tier of TIERS) {
  t.test(`${tier}: every rendered object is declared with its type, name, namespace and labels`, async (t) => {
    const rendered = renderTenant(tenant(tier));
    const { resources, providers } = await run(rendered);
    const objects = allObjects(rendered);
    t.equal(resources.length, objects.length, 'one resource per rendered object');
    t.equal(providers.length, 1, 'one explicit kubernetes provider');
    for (const obj of objects) {
      const r = find(resources, typeOf(obj), obj.metadata.name);
      if (!r) {
        t.fail(`missing ${typeOf(obj)} ${obj.metadata.name}`);
        continue;
      }
      t.equal(r.name, obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name, 'logical name');
      t.equal(metaOf(r).namespace, obj.metadata.namespace, `${obj.kind}/${obj.metadata.name} namespace`);
      t.same(metaOf(r).labels, obj.metadata.labels, `${obj.kind}/${obj.metadata.name} labels match the renderer exactly`);
      t.equal(r.inputs.apiVersion, obj.apiVersion);
      t.equal(r.inputs.kind, obj.kind);
      t.match(r.provider ?? '', /pulumi:providers:kubernetes::kubernetes::/, 'managed by the explicit provider');
      t.equal(metaOf(r).labels?.[LABEL_MANAGED_BY], 'tenantd');
      t.equal(metaOf(r).labels?.[LABEL_TENANT_ID], rendered.tenantId);
    }
    // Declared in apply order: the namespace first, then Apply, Deploy, Configure.
    t.equal(resources[0]?.type, 'kubernetes:core/v1:Namespace');
    t.equal(metaOf(resources[0]!).name, `tenant-t-${tier}`);
    const groups = resources.map((r) => metaOf(r).labels?.[LABEL_APPLY_GROUP]);
    const order = ['Apply', 'Deploy', 'Configure'];
    t.same([...groups].sort((a, b) => order.indexOf(a!) - order.indexOf(b!)), groups, 'groups keep apply order');
  });
}

t.test('key properties: replicas, storage size, images, resources', async (t) => {
  const rendered = renderTenant(tenant('professional'));
  const { resources } = await run(rendered);
  const ns = 'tenant-t-professional';

  const sts = find(resources, 'kubernetes:apps/v1:StatefulSet', 'postgres');
  const stsSpec = sts?.inputs.spec as { replicas: number; volumeClaimTemplates: { spec: { resources: { requests: { storage: string } }; storageClassName: string } }[] };
  t.equal(stsSpec.replicas, 2, 'HA database: two replicas');
  t.equal(stsSpec.volumeClaimTemplates[0]?.spec.resources.requests.storage, '250Gi');
  t.equal(stsSpec.volumeClaimTemplates[0]?.spec.storageClassName, 'managed-csi');
  t.equal(metaOf(sts!).annotations?.['pulumi.com/deletionPropagationPolicy'], 'orphan', 'a replacement orphans the pods');

  for (const i of [0, 1]) {
    const pvc = find(resources, 'kubernetes:core/v1:PersistentVolumeClaim', `data-postgres-${i}`);
    t.equal(metaOf(pvc!).namespace, ns);
    t.equal((pvc?.inputs.spec as { resources: { requests: { storage: string } } }).resources.requests.storage, '250Gi');
  }

  const api = find(resources, 'kubernetes:apps/v1:Deployment', 'api');
  const apiSpec = api?.inputs.spec as { replicas: number; template: { spec: { containers: { image: string; env: { name: string; value?: string }[] }[] } } };
  t.equal(apiSpec.replicas, 3);
  t.equal(apiSpec.template.spec.containers[0]?.image, 'ghcr.io/globex/api:1.4.0');
  t.notOk(JSON.stringify(apiSpec).includes(MOCK_PASSWORD), 'workloads reference the password, never hold it');
  const worker = find(resources, 'kubernetes:apps/v1:Deployment', 'worker');
  t.equal((worker?.inputs.spec as { replicas: number }).replicas, 1);

  const ingress = find(resources, 'kubernetes:networking.k8s.io/v1:Ingress', 'tenant-ingress');
  const ingressSpec = ingress?.inputs.spec as { rules: { host: string; http: { paths: { backend: { service: { name: string; port: { number: number } } } }[] } }[]; tls: { hosts: string[]; secretName: string }[] };
  t.equal(ingressSpec.rules[0]?.host, 'api.globex.example.com');
  t.same(ingressSpec.rules[0]?.http.paths[0]?.backend.service, { name: 'api', port: { number: 8080 } });
  t.same(ingressSpec.tls[0]?.hosts, ['api.globex.example.com']);
  t.equal(metaOf(ingress!).annotations?.['cert-manager.io/cluster-issuer'], 'letsencrypt');

  const quota = find(resources, 'kubernetes:core/v1:ResourceQuota', 'tenant-quota');
  t.same((quota?.inputs.spec as { hard: Record<string, string> }).hard, { pods: '200', 'requests.cpu': '32', 'requests.memory': '64Gi', 'requests.storage': '4Ti' });

  t.ok(find(resources, 'kubernetes:policy/v1:PodDisruptionBudget', 'api'), 'HA service with replicas > 1 gets a PDB');
  t.ok(find(resources, 'kubernetes:networking.k8s.io/v1:NetworkPolicy', 'allow-ingress-controller'));
  t.ok(find(resources, 'kubernetes:core/v1:Service', 'worker'));
  t.ok(find(resources, 'kubernetes:core/v1:ConfigMap', 'tenant-endpoints'));
});

t.test('the generated Secret carries its values as a Pulumi secret; nothing else does', async (t) => {
  const rendered = renderTenant(tenant('starter'));
  const { declared, resources } = await run(rendered);
  const secret = find(resources, 'kubernetes:core/v1:Secret', 'postgres-credentials');
  t.ok(secret, 'secret declared');
  const stringData = unwrapSecret(secret?.inputs.stringData);
  t.equal(stringData.secret, true, 'stringData reaches the engine as a secret');
  t.same(stringData.value, { database: 'app', password: MOCK_PASSWORD, username: 'app' }, 'fixed keys plus the value from secret config');
  const res = declared.resources.get('kubernetes:core/v1:Secret::tenant-t-starter/postgres-credentials') as unknown as { stringData: pulumi.Output<unknown> };
  t.equal(await pulumi.isSecret(res.stringData), true, 'stringData is a Pulumi secret (encrypted in state)');
  for (const r of resources) {
    t.equal(unwrapSecret(r.inputs).secret, false);
    if (r !== secret) t.notOk(JSON.stringify(r.inputs).includes(MOCK_PASSWORD), `${r.type} ${r.name} holds no secret value`);
  }
});

t.test('secretValue overrides where generated values come from', async (t) => {
  const rendered = renderTenant(tenant('starter'));
  const { resources } = await run(rendered, { secretValue: (name, key) => pulumi.secret(`${name}:${key}:override`) });
  const secret = find(resources, 'kubernetes:core/v1:Secret', 'postgres-credentials');
  t.equal((unwrapSecret(secret?.inputs.stringData).value as Record<string, string>).password, 'postgres-credentials:password:override');
});

t.test('stack outputs are outputsFor(rendered) plus the digest, and never a secret', async (t) => {
  const rendered = renderTenant(tenant('professional'));
  const outputs = await program.tenantProgram(rendered)();
  await settle();
  t.same(program.publicOutputs(outputs), outputsFor(rendered));
  t.equal(outputs[program.DIGEST_OUTPUT], rendered.digest);
  t.equal(outputs.namespace, 'tenant-t-professional');
  t.equal(outputs['ingress.url'], 'https://api.globex.example.com');
  t.equal(outputs['database.credentialsSecret'], 'postgres-credentials', 'names the secret, not its value');
  for (const [k, v] of Object.entries(outputs)) {
    t.equal(typeof v, 'string', `${k} is a plain string`);
    t.notOk(v.includes(MOCK_PASSWORD), `${k} holds no secret`);
  }
  t.notOk(pulumi.Output.isInstance(outputs.namespace));
});

t.test('provider settings: kubeconfig and context when configured; render mode drops them', async (t) => {
  const rendered = renderTenant(tenant('starter'));
  let { providers } = await run(rendered, { kubeconfig: '/etc/tenantd/kubeconfig', kubeContext: 'prod' });
  t.match(providers[0]?.inputs, {
    kubeconfig: '/etc/tenantd/kubeconfig',
    context: 'prod',
    clusterIdentifier: 'prod',
  });
  const flags = providers[0]?.inputs as Record<string, unknown>;
  // Provider inputs are strings on the wire (JSON-encoded booleans).
  for (const k of ['enableServerSideApply', 'enableConfigMapMutable', 'enableSecretMutable', 'upsertExistingObjects']) t.equal(String(flags[k]), 'true', k);

  ({ providers } = await run(rendered));
  t.notOk('kubeconfig' in (providers[0]?.inputs ?? {}), 'ambient kubeconfig when none is configured');
  t.equal((providers[0]?.inputs as Record<string, unknown>).clusterIdentifier, 'default');

  ({ providers } = await run(rendered, { kubeContext: 'prod', renderYamlToDirectory: '/tmp/out' }));
  t.equal((providers[0]?.inputs as Record<string, unknown>).renderYamlToDirectory, '/tmp/out');
  t.notOk('context' in (providers[0]?.inputs ?? {}));
});

t.test('planDeclarations: namespace first, later groups depend on earlier ones, workloads on what they consume', async (t) => {
  const rendered = renderTenant(tenant('professional'));
  const decls = program.planDeclarations(rendered);
  const nsKey = 'kubernetes:core/v1:Namespace::tenant-t-professional';
  t.equal(decls[0]?.key, nsKey);
  t.same(decls[0]?.dependsOn, []);
  const byKey = new Map(decls.map((d) => [d.key, d]));
  const index = new Map(decls.map((d, i) => [d.key, i]));
  for (const d of decls.slice(1)) {
    t.ok(d.dependsOn.includes(nsKey), `${d.key} depends on the namespace`);
    for (const dep of d.dependsOn) t.ok(index.get(dep)! < index.get(d.key)!, `${d.key}: dependency ${dep} is declared before it`);
  }
  const applyKeys = decls.filter((d) => d.group === 'Apply').map((d) => d.key);
  const deployKeys = decls.filter((d) => d.group === 'Deploy').map((d) => d.key);
  for (const d of decls.filter((x) => x.group === 'Deploy')) for (const k of applyKeys) t.ok(d.dependsOn.includes(k));
  for (const d of decls.filter((x) => x.group === 'Configure')) for (const k of [...applyKeys, ...deployKeys]) t.ok(d.dependsOn.includes(k));
  const sts = byKey.get('kubernetes:apps/v1:StatefulSet::tenant-t-professional/postgres')!;
  for (const dep of [
    'kubernetes:core/v1:Secret::tenant-t-professional/postgres-credentials',
    'kubernetes:core/v1:PersistentVolumeClaim::tenant-t-professional/data-postgres-0',
    'kubernetes:core/v1:LimitRange::tenant-t-professional/tenant-limits',
    'kubernetes:core/v1:ResourceQuota::tenant-t-professional/tenant-quota',
  ]) {
    t.ok(sts.dependsOn.includes(dep), `the database StatefulSet waits for ${dep}`);
  }
  const headless = byKey.get('kubernetes:core/v1:Service::tenant-t-professional/postgres-headless')!;
  t.same(headless.dependsOn, [nsKey], 'a non-workload of the Apply group needs only the namespace');
  t.same(decls.filter((d) => d.retainOnDelete).map((d) => d.object.kind), ['PersistentVolumeClaim', 'PersistentVolumeClaim'], 'claims are retained');
  t.same(decls.filter((d) => d.generatedSecret).map((d) => d.object.metadata.name), ['postgres-credentials']);
});

t.test('unknown kinds fall back to a CustomResource with the same apiVersion/kind', async (t) => {
  const rendered = renderTenant(tenant('starter'));
  const extra: KubeObject = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name: 'web', namespace: rendered.namespace, labels: { [LABEL_MANAGED_BY]: 'tenantd' } },
    spec: { endpoints: [{ port: 'app' }] },
  };
  const withExtra: RenderedTenant = { ...rendered, groups: { ...rendered.groups, Configure: [...rendered.groups.Configure, extra] } };
  t.notOk(program.isTypedKind(extra));
  t.ok(program.isTypedKind({ apiVersion: 'apps/v1', kind: 'Deployment' }));
  const { resources } = await run(withExtra);
  const r = find(resources, 'kubernetes:monitoring.coreos.com/v1:ServiceMonitor', 'web');
  t.ok(r, 'declared with the generic resource');
  t.same(r?.inputs.spec, { endpoints: [{ port: 'app' }] });
});

t.test('a rendering without its namespace, or with two objects of one name, is a stalled program error', async (t) => {
  const rendered = renderTenant(tenant('starter'));
  const noNs: RenderedTenant = { ...rendered, groups: { ...rendered.groups, Apply: rendered.groups.Apply.slice(1) } };
  t.throws(() => program.planDeclarations(noNs), { code: 'E_PULUMI_PROGRAM', kind: 'stalled' });
  const dup: RenderedTenant = { ...rendered, groups: { ...rendered.groups, Deploy: [...rendered.groups.Deploy, rendered.groups.Deploy[0]!] } };
  t.throws(() => program.planDeclarations(dup), { code: 'E_PULUMI_PROGRAM', kind: 'stalled' });
});

t.test('type tokens follow @pulumi/kubernetes', async (t) => {
  t.equal(program.typeTokenFor('v1', 'Namespace'), 'kubernetes:core/v1:Namespace');
  t.equal(program.typeTokenFor('apps/v1', 'Deployment'), 'kubernetes:apps/v1:Deployment');
  t.equal(program.typeTokenFor('networking.k8s.io/v1', 'Ingress'), 'kubernetes:networking.k8s.io/v1:Ingress');
  t.equal(program.generatedSecretConfigKey('postgres-credentials', 'password'), 'tenantd:generated.postgres-credentials.password');
});

t.test('mocks needed no plugin: PULUMI_HOME is untouched', async (t) => {
  t.same(readdirSync(pulumiHome), []);
});
