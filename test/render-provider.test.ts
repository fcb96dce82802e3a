import t from 'tap';
import * as fsp from 'node:fs/promises';
import type { PathLike } from 'node:fs';
import path from 'node:path';
import { isTenantdError, type TenantdError } from '../core/errors.js';
import type { TenantInfrastructureDocument } from '../core/tenant/types.js';
import type { InfrastructureProvider, PhaseResult, ProviderContext } from '../providers/provider.js';
import { createRenderProvider } from '../providers/render/provider.js';
import { renderTenant } from '../providers/resources/renderer.js';
import type { RenderedTenant } from '../providers/resources/types.js';

const SECRET_BYTE = 0xab;
const SECRET_VALUE = Buffer.alloc(24, SECRET_BYTE).toString('base64url');

function tenantDoc(): TenantInfrastructureDocument {
  return {
    apiVersion: 'tenantd.io/v1alpha1',
    kind: 'TenantInfrastructure',
    metadata: { tenantId: 'acme', name: 'Acme' },
    spec: {
      tier: 'professional',
      cloudProvider: 'GCP',
      region: 'europe-west1',
      configuration: { databaseSize: 'db-custom-2-7680', storageGb: 50, enableHa: false },
      services: [
        { name: 'web', image: 'ghcr.io/acme/web:1', port: 8080 },
        { name: 'api', image: 'ghcr.io/acme/api:1', port: 9000, replicas: 2 },
      ],
      ingress: { hosts: ['acme.example.com'], service: 'web', tls: { enabled: true, clusterIssuer: 'letsencrypt' } },
    },
  };
}

/** The parts of a tap test the helpers use (structural, so subtests fit). */
type TestLike = Pick<typeof t, 'testdir' | 'ok' | 'equal' | 'fail'>;

interface Harness {
  dataDir: string;
  provider: InfrastructureProvider;
  counts: { renames: number; removals: number; random: number };
  progress: string[];
  ctx(doc: TenantInfrastructureDocument, desired?: RenderedTenant | null, signal?: AbortSignal): ProviderContext;
  /** All relative file paths under rendered/acme. */
  files(): Promise<string[]>;
  read(rel: string): Promise<string>;
}

async function harness(t: TestLike): Promise<Harness> {
  const dataDir = t.testdir({});
  const counts = { renames: 0, removals: 0, random: 0 };
  const fs = {
    ...fsp,
    rename: async (from: PathLike, to: PathLike): Promise<void> => {
      counts.renames++;
      return fsp.rename(from, to);
    },
    rm: async (p: PathLike, o?: Parameters<typeof fsp.rm>[1]): Promise<void> => {
      counts.removals++;
      return fsp.rm(p, o);
    },
  } as typeof fsp;
  const progress: string[] = [];
  const provider = createRenderProvider({
    dataDir,
    fs,
    randomBytes: (n) => {
      counts.random++;
      return Buffer.alloc(n, SECRET_BYTE);
    },
  });
  const root = path.join(dataDir, 'rendered', 'acme');
  return {
    dataDir,
    provider,
    counts,
    progress,
    ctx: (doc, desired, signal) => ({
      tenantId: doc.metadata.tenantId,
      tenant: doc,
      desired: desired === undefined ? renderTenant(doc) : desired,
      operationId: 'op-1',
      signal: signal ?? new AbortController().signal,
      progress: (message, data) => progress.push(`${message} ${JSON.stringify(data ?? {})}`),
    }),
    async files() {
      const out: string[] = [];
      for (const group of await fsp.readdir(root).catch(() => [] as string[])) {
        for (const f of await fsp.readdir(path.join(root, group))) out.push(`${group}/${f}`);
      }
      return out.sort();
    },
    read: (rel) => fsp.readFile(path.join(root, rel), 'utf8'),
  };
}


async function fullCycle(h: Harness, doc: TenantInfrastructureDocument): Promise<PhaseResult[]> {
  const ctx = h.ctx(doc);
  return [await h.provider.apply(ctx), await h.provider.deploy(ctx), await h.provider.configure(ctx), await h.provider.verify(ctx)];
}

async function mtimes(h: Harness): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const rel of await h.files()) out[rel] = (await fsp.stat(path.join(h.dataDir, 'rendered', 'acme', rel))).mtimeMs;
  return out;
}

async function rejectsCode(t: TestLike, p: Promise<unknown>, code: string): Promise<TenantdError | undefined> {
  try {
    await p;
    t.fail(`expected ${code}`);
    return undefined;
  } catch (err: unknown) {
    t.ok(isTenantdError(err), 'a TenantdError');
    if (!isTenantdError(err)) return undefined;
    t.equal(err.code, code);
    return err;
  }
}

const EXPECTED_FILES = [
  '1-apply/00-namespace-tenant-acme.yaml',
  '1-apply/01-resourcequota-tenant-quota.yaml',
  '1-apply/02-limitrange-tenant-limits.yaml',
  '1-apply/03-networkpolicy-allow-dns-egress.yaml',
  '1-apply/03-networkpolicy-allow-ingress-controller.yaml',
  '1-apply/03-networkpolicy-allow-mesh-control-plane.yaml',
  '1-apply/03-networkpolicy-allow-same-namespace.yaml',
  '1-apply/03-networkpolicy-default-deny.yaml',
  '1-apply/04-serviceaccount-tenant.yaml',
  '1-apply/05-secret-postgres-credentials.yaml',
  '1-apply/07-service-postgres-headless.yaml',
  '1-apply/07-service-postgres.yaml',
  '1-apply/08-persistentvolumeclaim-data-postgres-0.yaml',
  '1-apply/09-statefulset-postgres.yaml',
  '2-deploy/07-service-api.yaml',
  '2-deploy/07-service-web.yaml',
  '2-deploy/10-deployment-api.yaml',
  '2-deploy/10-deployment-web.yaml',
  '3-configure/06-configmap-tenant-endpoints.yaml',
  '3-configure/12-ingress-tenant-ingress.yaml',
];

t.test('full create cycle writes each group in its phase', async (t) => {
  const h = await harness(t);
  const doc = tenantDoc();
  const ctx = h.ctx(doc);

  const plan = await h.provider.plan(ctx);
  t.equal(plan.changes.length, EXPECTED_FILES.length);
  t.ok(plan.changes.every((c) => c.action === 'create'), 'everything to create');
  t.same(plan.details?.secretsToGenerate, ['postgres-credentials']);
  t.equal(h.provider.name, 'render');

  const apply = await h.provider.apply(ctx);
  t.ok((await h.files()).every((f) => f.startsWith('1-apply/')), 'apply writes only the Apply group');
  t.equal((apply.details?.created as string[]).length, 14);
  t.match(apply.summary, /14 created/);
  t.equal(h.progress.filter((p) => p.startsWith('created ')).length, 14, 'progress for each object written');
  t.ok(h.progress.some((p) => p.startsWith('generated secret postgres-credentials')));

  await h.provider.deploy(ctx);
  t.notOk((await h.files()).some((f) => f.startsWith('3-configure/')), 'deploy does not write Configure');
  const configure = await h.provider.configure(ctx);
  t.equal(configure.outputs?.['service.web.url'], 'http://web.tenant-acme.svc.cluster.local:8080');
  t.same(await h.files(), EXPECTED_FILES);

  const verify = await h.provider.verify(ctx);
  t.equal(verify.outputs?.namespace, 'tenant-acme');
  t.equal(verify.outputs?.['ingress.url'], 'https://acme.example.com');

  // Manifests are YAML with sorted keys and no secret value.
  const sts = await h.read('1-apply/09-statefulset-postgres.yaml');
  t.match(sts, /^# Rendered by tenantd/);
  t.match(sts, /storageClassName: standard-rwo/);
  const secretManifest = await h.read('1-apply/05-secret-postgres-credentials.yaml');
  t.match(secretManifest, /tenantd.io\/secret-file: secrets\/acme\/postgres-credentials.json/);
  t.notMatch(secretManifest, /^data:|^stringData:/m);

  // The secret file: 0600 in a 0700 directory, with every key.
  const secretFile = path.join(h.dataDir, 'secrets', 'acme', 'postgres-credentials.json');
  t.equal((await fsp.stat(secretFile)).mode & 0o777, 0o600);
  t.equal((await fsp.stat(path.dirname(secretFile))).mode & 0o777, 0o700);
  t.same(JSON.parse(await fsp.readFile(secretFile, 'utf8')), { database: 'app', password: SECRET_VALUE, username: 'app' });
  for (const rel of await h.files()) t.notOk((await h.read(rel)).includes(SECRET_VALUE), `${rel} holds no secret value`);
});

t.test('re-running every phase writes nothing', async (t) => {
  const h = await harness(t);
  const doc = tenantDoc();
  await fullCycle(h, doc);
  const before = await mtimes(h);
  h.counts.renames = 0;
  h.counts.removals = 0;
  h.progress.length = 0;
  const results = await fullCycle(h, doc);
  t.equal(h.counts.renames, 0, 'no file written');
  t.equal(h.counts.removals, 0, 'no file removed');
  t.equal(h.counts.random, 1, 'secret generated once and reused');
  t.same(await mtimes(h), before, 'mtimes unchanged');
  t.same(h.progress, [], 'no progress: nothing written');
  t.match(results[0]!.summary, /up to date/);
  const plan = await h.provider.plan(h.ctx(doc));
  t.ok(plan.changes.every((c) => c.action === 'unchanged'));
  t.same(plan.details?.secretsToGenerate, []);
  t.match(plan.summary, /0 to create, 0 to update, 0 to delete/);
});

t.test('plan after editing a tenant shows exactly the changed objects', async (t) => {
  const h = await harness(t);
  await fullCycle(h, tenantDoc());
  const edited = tenantDoc();
  edited.spec.services![1]!.replicas = 5;
  edited.spec.services![1]!.image = 'ghcr.io/acme/api:2';
  const plan = await h.provider.plan(h.ctx(edited));
  const changed = plan.changes.filter((c) => c.action !== 'unchanged');
  t.same(changed, [
    {
      ref: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api', namespace: 'tenant-acme' },
      action: 'update',
      fields: ['spec.replicas', 'spec.template.spec.containers[0].image'],
    },
  ]);
  t.match(plan.summary, /0 to create, 1 to update, 0 to delete, 19 unchanged/);

  // Applying the edit writes only that file.
  h.counts.renames = 0;
  const ctx = h.ctx(edited);
  await h.provider.apply(ctx);
  await h.provider.deploy(ctx);
  await h.provider.configure(ctx);
  t.equal(h.counts.renames, 1);
  t.match(await h.read('2-deploy/10-deployment-api.yaml'), /replicas: 5/);
});

t.test('removing a service prunes its Deployment and Service files only', async (t) => {
  const h = await harness(t);
  await fullCycle(h, tenantDoc());
  const before = await mtimes(h);
  const edited = tenantDoc();
  edited.spec.services = edited.spec.services!.filter((s) => s.name !== 'api');
  const plan = await h.provider.plan(h.ctx(edited));
  t.same(
    plan.changes.filter((c) => c.action === 'delete').map((c) => `${c.ref.kind}/${c.ref.name}`),
    ['Service/api', 'Deployment/api'],
  );
  const deploy = await h.provider.deploy(h.ctx(edited));
  t.same(deploy.details?.removed, ['v1/Service/tenant-acme/api', 'apps/v1/Deployment/tenant-acme/api']);
  t.same(deploy.details?.created, []);
  t.same(deploy.details?.updated, []);
  const after = await mtimes(h);
  t.same(
    Object.keys(before).filter((f) => !(f in after)),
    ['2-deploy/07-service-api.yaml', '2-deploy/10-deployment-api.yaml'],
  );
  for (const f of Object.keys(after)) t.equal(after[f], before[f], `${f} untouched`);
});

t.test('verify fails with E_VERIFY_MISMATCH after a file is deleted by hand', async (t) => {
  const h = await harness(t);
  const doc = tenantDoc();
  await fullCycle(h, doc);
  await fsp.rm(path.join(h.dataDir, 'rendered', 'acme', '2-deploy', '10-deployment-web.yaml'));
  const err = await rejectsCode(t, h.provider.verify(h.ctx(doc)), 'E_VERIFY_MISMATCH');
  t.equal(err?.kind, 'retryable');
  t.match(err?.message, /apps\/v1\/Deployment\/tenant-acme\/web/);
  t.same(err?.data.missing, ['apps/v1/Deployment/tenant-acme/web']);

  // An extra file and an edited file are mismatches too.
  await h.provider.deploy(h.ctx(doc));
  await fsp.writeFile(path.join(h.dataDir, 'rendered', 'acme', '3-configure', '06-configmap-extra.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: tenant-acme\n');
  const err2 = await rejectsCode(t, h.provider.verify(h.ctx(doc)), 'E_VERIFY_MISMATCH');
  t.same(err2?.data.unexpected, ['v1/ConfigMap/tenant-acme/extra']);
  await h.provider.configure(h.ctx(doc));
  t.ok(await h.provider.verify(h.ctx(doc)), 'pruned: verify passes again');

  // A missing secret value is a mismatch.
  await fsp.rm(path.join(h.dataDir, 'secrets', 'acme', 'postgres-credentials.json'));
  const err3 = await rejectsCode(t, h.provider.verify(h.ctx(doc)), 'E_VERIFY_MISMATCH');
  t.same(err3?.data.secretsMissing, ['v1/Secret/tenant-acme/postgres-credentials']);
});

t.test('destroy removes everything; a deprovision plans deletes and verifies absence', async (t) => {
  const h = await harness(t);
  const doc = tenantDoc();
  await fullCycle(h, doc);
  const gone = h.ctx(doc, null);
  const plan = await h.provider.plan(gone);
  t.equal(plan.changes.length, EXPECTED_FILES.length);
  t.ok(plan.changes.every((c) => c.action === 'delete'), 'everything to delete');
  t.ok(plan.changes.some((c) => c.ref.kind === 'Namespace' && c.ref.name === 'tenant-acme'));
  await rejectsCode(t, h.provider.verify(gone), 'E_VERIFY_MISMATCH');

  const res = await h.provider.destroy(gone);
  t.match(res.summary, /removed 20 rendered objects and 1 secrets/);
  await t.rejects(fsp.stat(path.join(h.dataDir, 'rendered', 'acme')), { code: 'ENOENT' });
  await t.rejects(fsp.stat(path.join(h.dataDir, 'secrets', 'acme')), { code: 'ENOENT' });
  const verified = await h.provider.verify(gone);
  t.match(verified.summary, /no rendered objects/);
  // Idempotent.
  const again = await h.provider.destroy(gone);
  t.match(again.summary, /removed 0 rendered objects and 0 secrets/);
});

t.test('refresh detects an edited file and corrects it when asked', async (t) => {
  const h = await harness(t);
  const doc = tenantDoc();
  await fullCycle(h, doc);
  const file = path.join(h.dataDir, 'rendered', 'acme', '2-deploy', '10-deployment-web.yaml');
  const original = await fsp.readFile(file, 'utf8');
  await fsp.writeFile(file, original.replace('replicas: 2', 'replicas: 7'));

  const report = await h.provider.refresh(h.ctx(doc), false);
  t.equal(report.drifted, true);
  t.equal(report.corrected, false);
  t.same(report.changes, [
    { ref: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'tenant-acme' }, action: 'update', fields: ['spec.replicas'] },
  ]);
  t.match(await fsp.readFile(file, 'utf8'), /replicas: 7/, 'report-only leaves the file');

  const fixed = await h.provider.refresh(h.ctx(doc), true);
  t.equal(fixed.drifted, true);
  t.equal(fixed.corrected, true);
  t.equal(await fsp.readFile(file, 'utf8'), original);
  const clean = await h.provider.refresh(h.ctx(doc), true);
  t.same(clean, { drifted: false, changes: [], corrected: false });

  // A deleted secret value is drift on the Secret, and correcting regenerates it.
  await fsp.rm(path.join(h.dataDir, 'secrets', 'acme', 'postgres-credentials.json'));
  const secretDrift = await h.provider.refresh(h.ctx(doc), true);
  t.same(secretDrift.changes.map((c) => [c.ref.kind, c.action, c.fields]), [['Secret', 'update', ['data']]]);
  await h.provider.verify(h.ctx(doc));
});

t.test('crash leftovers and unparsable files are handled', async (t) => {
  const h = await harness(t);
  const doc = tenantDoc();
  await fullCycle(h, doc);
  const dir = path.join(h.dataDir, 'rendered', 'acme', '1-apply');
  await fsp.writeFile(path.join(dir, '.09-statefulset-postgres.yaml.tmp'), 'half a fil');
  await fsp.writeFile(path.join(dir, '01-resourcequota-tenant-quota.yaml'), ': : not yaml [');
  const plan = await h.provider.plan(h.ctx(doc));
  t.same(plan.changes.filter((c) => c.action !== 'unchanged').map((c) => [c.ref.kind, c.action]), [['ResourceQuota', 'update']]);
  await h.provider.apply(h.ctx(doc));
  t.notOk((await fsp.readdir(dir)).some((f) => f.endsWith('.tmp')), 'temp file pruned');
  await h.provider.verify(h.ctx(doc));
});

t.test('an aborted operation writes nothing', async (t) => {
  const h = await harness(t);
  const ac = new AbortController();
  ac.abort(new Error('superseded'));
  await rejectsCode(t, h.provider.apply(h.ctx(tenantDoc(), undefined, ac.signal)), 'E_ABORTED');
  t.same(await h.files(), []);
  t.equal(h.counts.renames, 0);
});

t.test('secret values never reach results, progress or errors', async (t) => {
  const h = await harness(t);
  const doc = tenantDoc();
  const texts: string[] = [];
  const ctx = h.ctx(doc);
  texts.push(JSON.stringify(await h.provider.plan(ctx)));
  for (const r of await fullCycle(h, doc)) texts.push(JSON.stringify(r));
  texts.push(JSON.stringify(await h.provider.refresh(ctx, true)));
  await fsp.rm(path.join(h.dataDir, 'rendered', 'acme', '1-apply', '05-secret-postgres-credentials.yaml'));
  try {
    await h.provider.verify(ctx);
  } catch (err: unknown) {
    texts.push(String(err), JSON.stringify(isTenantdError(err) ? err.data : {}));
  }
  texts.push(JSON.stringify(await h.provider.destroy(h.ctx(doc, null))));
  texts.push(...h.progress);
  for (const text of texts) t.notOk(text.includes(SECRET_VALUE), 'no secret value');
  t.ok(texts.length > 5);

  // A corrupt secret file fails without quoting its content.
  const h2 = await harness(t);
  await fsp.mkdir(path.join(h2.dataDir, 'secrets', 'acme'), { recursive: true });
  await fsp.writeFile(path.join(h2.dataDir, 'secrets', 'acme', 'postgres-credentials.json'), 'hunter2-not-json');
  const err = await rejectsCode(t, h2.provider.apply(h2.ctx(doc)), 'E_SECRET_STORE_CORRUPT');
  t.notOk(String(err?.message).includes('hunter2'));
  t.equal(err?.cause, undefined);
});

t.test('guards: tenant id and mismatched rendering', async (t) => {
  const h = await harness(t);
  const doc = tenantDoc();
  const bad = { ...h.ctx(doc), tenantId: '../etc' };
  await rejectsCode(t, h.provider.apply(bad), 'E_INVALID_TENANT_ID');
  const other = tenantDoc();
  other.metadata.tenantId = 'other';
  await rejectsCode(t, h.provider.apply({ ...h.ctx(doc), desired: renderTenant(other) }), 'E_TENANT_MISMATCH');
  t.equal(await h.provider.ready?.(), true);
  await h.provider.close?.();
});

t.test('existing secrets are reused and their permissions repaired', async (t) => {
  const h = await harness(t);
  const doc = tenantDoc();
  await h.provider.apply(h.ctx(doc));
  const secretFile = path.join(h.dataDir, 'secrets', 'acme', 'postgres-credentials.json');
  await fsp.chmod(secretFile, 0o644);
  await fsp.chmod(path.dirname(secretFile), 0o755);
  await h.provider.apply(h.ctx(doc));
  t.equal(h.counts.random, 1);
  t.equal((await fsp.stat(secretFile)).mode & 0o777, 0o600);
  t.equal((await fsp.stat(path.dirname(secretFile))).mode & 0o777, 0o700);
});
