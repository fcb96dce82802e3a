/**
 * The Automation API engine's pure parts (event summaries, step collection, error mapping with the
 * SDK's own error classes) and its behaviour without a `pulumi` CLI: a clear stalled error, never a
 * download (PATH is emptied for this process, so nothing could be fetched or run).
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import {
  checkPulumiCli,
  checkSecretsConfig,
  createAutomationEngine,
  defaultBackendUrl,
  describeEngineEvent,
  failureDetail,
  formatCounts,
  mapPulumiError,
  redactUrl,
  refFromStep,
  StepCollector,
  toResourceChanges,
  type EngineEventLike,
} from '../providers/pulumi/engine.js';
import { createPulumiProvider } from '../providers/pulumi/provider.js';
import { renderTenant } from '../providers/resources/renderer.js';
import { tenantDoc } from './helpers/tenants.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ctx = { tenantId: 'acme', stack: 'organization/tenantd/tenant-acme' };

/** A CommandResult as the SDK builds it (its toString is the error message). */
const commandResult = (stderr: string, code = 255, err?: unknown) => ({
  stdout: '',
  stderr,
  code,
  err,
  toString: () => `code: ${code}\n stdout: \n stderr: ${stderr}\n err?: ${err ? String(err) : ''}\n`,
});

const meta = (op: string, type: string, name: string, namespace?: string, extra: Record<string, unknown> = {}) => ({
  op,
  urn: `urn:pulumi:tenant-acme::tenantd::${type}::${namespace ? `${namespace}/` : ''}${name}`,
  type,
  new: { inputs: { metadata: { name, ...(namespace ? { namespace } : {}) } } },
  ...extra,
});

t.test('the SDK error classes map to typed errors with stable codes', async (t) => {
  const auto = await import('@pulumi/pulumi/automation/index.js');
  const locked = Reflect.construct(auto.ConcurrentUpdateError, [commandResult('error: [409] Conflict: Another update is currently in progress.')]) as Error;
  t.match(mapPulumiError(locked, 'up', ctx), { code: 'E_STACK_LOCKED', kind: 'waiting', data: { stack: ctx.stack, operation: 'up' } });
  t.match(mapPulumiError(locked, 'destroy', ctx), { code: 'E_STACK_LOCKED', kind: 'waiting' }, 'a locked stack waits whatever the operation');

  const failed = Reflect.construct(auto.CommandError, [commandResult('Updating (tenant-acme)\nerror: the Kubernetes API server rejected Deployment tenant-acme/web: forbidden\nerror: update failed')]) as Error;
  const up = mapPulumiError(failed, 'up', ctx);
  t.match(up, { code: 'E_PULUMI_UPDATE_FAILED', kind: 'retryable' });
  t.match(up.message, /forbidden/);
  t.match(mapPulumiError(failed, 'destroy', ctx), { code: 'E_PULUMI_DESTROY_FAILED', kind: 'retryable' });
  t.match(mapPulumiError(failed, 'preview', ctx), { code: 'E_PULUMI_PREVIEW_FAILED', kind: 'retryable' });
  t.match(mapPulumiError(failed, 'refresh', ctx), { code: 'E_PULUMI_REFRESH_FAILED', kind: 'retryable' });
  t.match(mapPulumiError(failed, 'removeStack', ctx), { code: 'E_PULUMI_STACK_REMOVE_FAILED', kind: 'retryable' });

  const passphrase = Reflect.construct(auto.CommandError, [commandResult('error: getting secrets manager: incorrect passphrase')]) as Error;
  t.match(mapPulumiError(passphrase, 'up', ctx), { code: 'E_PULUMI_SECRETS', kind: 'stalled' });

  const old = new Error('Minimum version requirement failed. The minimum CLI version requirement is 3.2.0, your current CLI version is 3.1.0.');
  t.match(mapPulumiError(old, 'up', ctx), { code: 'E_PULUMI_CLI_VERSION', kind: 'stalled' });
  t.match(mapPulumiError(new Error('destroy with inline programs requires Pulumi version >= 3.181.0'), 'destroy', ctx), { code: 'E_PULUMI_CLI_VERSION' });

  const ac = new AbortController();
  ac.abort(new Error('shutdown'));
  t.match(mapPulumiError(failed, 'up', { ...ctx, signal: ac.signal }), { code: 'E_ABORTED', kind: 'retryable' });
});

t.test('no pulumi CLI on PATH: the SDK error is E_PULUMI_CLI_MISSING, and the real engine fails with it cleanly', async (t) => {
  const savedPath = process.env.PATH;
  process.env.PATH = t.testdir({});
  t.teardown(() => {
    process.env.PATH = savedPath;
  });
  const auto = await import('@pulumi/pulumi/automation/index.js');
  const err = await auto.PulumiCommand.get().then(
    () => null,
    (e: unknown) => e,
  );
  t.match(mapPulumiError(err, 'preview', ctx), { code: 'E_PULUMI_CLI_MISSING', kind: 'stalled', message: /https:\/\/www\.pulumi\.com\/docs\/install\// });

  const dataDir = t.testdir({});
  const engine = createAutomationEngine({ dataDir, passphrase: 'test-only', disablePluginDownload: true });
  t.equal(engine.stackNameFor('acme'), 'organization/tenantd/tenant-acme');
  t.notOk('cancel' in engine, 'the engine offers no cancel');
  const rendered = renderTenant(tenantDoc('acme'));
  await t.rejects(engine.preview('acme', rendered), { code: 'E_PULUMI_CLI_MISSING', kind: 'stalled' });
  await t.rejects(engine.up('acme', rendered), { code: 'E_PULUMI_CLI_MISSING' });
  await t.rejects(engine.destroy('acme'), { code: 'E_PULUMI_CLI_MISSING' });
  await t.rejects(engine.outputs('acme'), { code: 'E_PULUMI_CLI_MISSING' });
  t.equal(await engine.ready?.(), false);

  const provider = createPulumiProvider({ dataDir, passphrase: 'test-only' });
  t.equal(await provider.ready?.(), false, 'the provider reports not ready without a CLI');

  const check = await checkPulumiCli();
  t.equal(check.ok, false);
  if (!check.ok) t.match(check.message, /no `pulumi` CLI on PATH: install it from https:\/\/www\.pulumi\.com\/docs\/install\//);
});

t.test('checkPulumiCli reads `pulumi version` and insists on a new enough CLI', async (t) => {
  const dir = t.testdir({});
  const fake = async (name: string, body: string): Promise<string> => {
    const file = path.join(dir, name);
    await writeFile(file, `#!/bin/sh\n${body}\n`);
    await chmod(file, 0o755);
    return file;
  };
  t.same(await checkPulumiCli({ command: await fake('new', 'echo v3.248.0') }), { ok: true, version: '3.248.0' });
  const old = await checkPulumiCli({ command: await fake('old', 'echo v3.100.0') });
  t.equal(old.ok, false);
  if (!old.ok) t.match(old.message, /too old: tenantd needs 3\.181\.0/);
  const broken = await checkPulumiCli({ command: await fake('broken', 'exit 3') });
  t.equal(broken.ok, false);
  if (!broken.ok) t.match(broken.message, /exit code 3/);
  const silent = await checkPulumiCli({ command: await fake('silent', 'echo hello') });
  t.equal(silent.ok, false);
  const slow = await checkPulumiCli({ command: await fake('slow', 'exec sleep 5'), timeoutMs: 100 });
  t.equal(slow.ok, false);
  if (!slow.ok) t.match(slow.message, /timed out/);
});

t.test('secrets configuration: a passphrase is required on DIY backends, not with a KMS provider or Pulumi Cloud', async (t) => {
  t.same(checkSecretsConfig({ dataDir: '/d', env: {} }).ok, false);
  t.same(checkSecretsConfig({ dataDir: '/d', env: { PULUMI_CONFIG_PASSPHRASE: '' } }), { ok: true }, 'an empty passphrase is a passphrase');
  t.same(checkSecretsConfig({ dataDir: '/d', env: { PULUMI_CONFIG_PASSPHRASE_FILE: '/run/secrets/p' } }), { ok: true });
  t.same(checkSecretsConfig({ dataDir: '/d', env: {}, passphrase: 'x' }), { ok: true });
  t.same(checkSecretsConfig({ dataDir: '/d', env: {}, secretsProvider: 'awskms://alias/tenantd?region=eu-west-1' }), { ok: true });
  t.same(checkSecretsConfig({ dataDir: '/d', env: {}, backendUrl: 'https://api.pulumi.com' }), { ok: true });
  t.same(checkSecretsConfig({ dataDir: '/d', env: {}, backendUrl: 's3://bucket/state' }).ok, false);
  t.throws(() => createAutomationEngine({ dataDir: '/d', env: {} }), { code: 'E_PULUMI_PASSPHRASE_MISSING', kind: 'stalled' });
  t.throws(() => createPulumiProvider({ dataDir: '/d', env: {} }), { code: 'E_PULUMI_PASSPHRASE_MISSING' });
  t.equal(defaultBackendUrl('/var/lib/tenantd'), 'file:///var/lib/tenantd/pulumi-state');
  t.equal(redactUrl('https://user:token@example.com/x'), 'https://***@example.com/x');
});

t.test('engine events become one progress line each; quiet ones none', async (t) => {
  const create = describeEngineEvent({ resourcePreEvent: { metadata: meta('create', 'kubernetes:core/v1:Namespace', 'tenant-acme') } });
  t.equal(create?.message, 'creating v1/Namespace/tenant-acme');
  t.match(create?.data, { op: 'create', ref: 'v1/Namespace/tenant-acme', stage: 'start' });
  const done = describeEngineEvent({ resOutputsEvent: { metadata: meta('create', 'kubernetes:apps/v1:Deployment', 'web', 'tenant-acme') } });
  t.equal(done?.message, 'created apps/v1/Deployment/tenant-acme/web');
  const update = describeEngineEvent({
    resourcePreEvent: { metadata: meta('update', 'kubernetes:apps/v1:Deployment', 'web', 'tenant-acme', { diffs: ['spec'], detailedDiff: { 'spec.replicas': {} } }) },
  });
  t.equal(update?.message, 'updating apps/v1/Deployment/tenant-acme/web (spec.replicas)');
  const planned = describeEngineEvent({ resourcePreEvent: { metadata: meta('create-replacement', 'kubernetes:core/v1:Service', 'db', 'tenant-acme'), planning: true } });
  t.equal(planned?.message, 'would replace v1/Service/tenant-acme/db');
  t.equal(describeEngineEvent({ resourcePreEvent: { metadata: meta('same', 'kubernetes:core/v1:Service', 'db', 'tenant-acme') } }), null);
  t.equal(describeEngineEvent({ resourcePreEvent: { metadata: { op: 'create', urn: 'urn:pulumi:s::p::pulumi:pulumi:Stack::p-s', type: 'pulumi:pulumi:Stack' } } }), null);
  t.equal(describeEngineEvent({ diagnosticEvent: { message: 'info', severity: 'info' } }), null);
  t.equal(describeEngineEvent({ diagnosticEvent: { message: '\u001b[31mquota exceeded\u001b[0m\n', severity: 'error' } })?.message, 'error: quota exceeded');
  t.equal(describeEngineEvent({ diagnosticEvent: { message: 'x', severity: 'warning', ephemeral: true } }), null);
  t.equal(
    describeEngineEvent({ summaryEvent: { resourceChanges: { create: 3, same: 12 }, durationSeconds: 4.2 } })?.message,
    'summary: 3 create, 12 same (4s)',
  );
  t.equal(
    describeEngineEvent({ resOpFailedEvent: { metadata: meta('create', 'kubernetes:apps/v1:StatefulSet', 'postgres', 'tenant-acme') } })?.message,
    'failed to create apps/v1/StatefulSet/tenant-acme/postgres',
  );
  t.equal(describeEngineEvent({}), null);
  t.equal(formatCounts({}), 'no changes');
});

t.test('steps: one per URN, a replacement counts once, refs from inputs or the logical name', async (t) => {
  const steps = new StepCollector();
  const events: EngineEventLike[] = [
    { resourcePreEvent: { metadata: { op: 'same', urn: 'urn:pulumi:s::p::pulumi:pulumi:Stack::p-s', type: 'pulumi:pulumi:Stack' } } },
    { resourcePreEvent: { metadata: meta('create', 'kubernetes:core/v1:Namespace', 'tenant-acme') } },
    { resOutputsEvent: { metadata: meta('create', 'kubernetes:core/v1:Namespace', 'tenant-acme') } },
    { resourcePreEvent: { metadata: meta('create-replacement', 'kubernetes:apps/v1:StatefulSet', 'postgres', 'tenant-acme', { diffs: ['spec'] }) } },
    { resourcePreEvent: { metadata: meta('replace', 'kubernetes:apps/v1:StatefulSet', 'postgres', 'tenant-acme') } },
    { resourcePreEvent: { metadata: meta('delete-replaced', 'kubernetes:apps/v1:StatefulSet', 'postgres', 'tenant-acme') } },
    { resourcePreEvent: { metadata: meta('update', 'kubernetes:apps/v1:Deployment', 'web', 'tenant-acme') } },
    { resOutputsEvent: { metadata: meta('update', 'kubernetes:apps/v1:Deployment', 'web', 'tenant-acme', { detailedDiff: { 'spec.replicas': {} } }) } },
    { resourcePreEvent: { metadata: { op: 'delete', urn: 'urn:pulumi:s::p::kubernetes:networking.k8s.io/v1:Ingress::tenant-acme/tenant-ingress', type: 'kubernetes:networking.k8s.io/v1:Ingress' } } },
    { resourcePreEvent: { metadata: meta('same', 'kubernetes:core/v1:ConfigMap', 'tenant-endpoints', 'tenant-acme') } },
    { diagnosticEvent: { message: 'x', severity: 'info' } },
  ];
  for (const e of events) steps.add(e);
  const list = steps.list();
  t.equal(list.length, 6);
  t.same(list.find((s) => s.type === 'kubernetes:apps/v1:StatefulSet'), {
    op: 'replace',
    urn: 'urn:pulumi:tenant-acme::tenantd::kubernetes:apps/v1:StatefulSet::tenant-acme/postgres',
    type: 'kubernetes:apps/v1:StatefulSet',
    ref: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'postgres', namespace: 'tenant-acme' },
    fields: ['spec'],
  });
  t.same(list.find((s) => s.type === 'kubernetes:apps/v1:Deployment')?.fields, ['spec.replicas'], 'fields from the event that has them');
  const changes = toResourceChanges(list);
  t.same(
    changes.map((c) => `${c.ref.kind}/${c.ref.namespace ?? ''}/${c.ref.name}:${c.action}`).sort(),
    [
      'ConfigMap/tenant-acme/tenant-endpoints:unchanged',
      'Deployment/tenant-acme/web:update',
      'Ingress/tenant-acme/tenant-ingress:delete',
      'Namespace//tenant-acme:create',
      'StatefulSet/tenant-acme/postgres:replace',
    ],
  );
  t.same(changes.find((c) => c.action === 'update')?.fields, ['spec.replicas']);
  t.equal(refFromStep({ type: 'pulumi:providers:kubernetes', urn: 'urn:x::kubernetes' }), null);
  t.same(refFromStep({ type: 'kubernetes:core/v1:Namespace', urn: 'urn:pulumi:s::p::kubernetes:core/v1:Namespace::tenant-acme' }), {
    apiVersion: 'v1',
    kind: 'Namespace',
    name: 'tenant-acme',
  });
});

t.test('failure details keep the error lines, bounded', async (t) => {
  t.equal(failureDetail(new Error('code: 255\n stdout: x\n stderr: warning: a\nerror: first\n  error: second\nerror: update failed\n err?: \n')), 'error: first; error: second');
  t.equal(failureDetail(new Error('code: 1\n stdout: \n stderr: something odd\n err?: \n')), 'something odd');
  t.equal(failureDetail('plain'), 'plain');
  t.ok(failureDetail(new Error(`error: ${'x'.repeat(5000)}`)).length <= 1001);
});

t.test('the engine never cancels an update (no `cancel` call anywhere in the provider)', async (t) => {
  for (const file of ['engine.ts', 'provider.ts', 'program.ts']) {
    const src = await readFile(path.join(here, '..', 'providers', 'pulumi', file), 'utf8');
    t.notMatch(src, /\.cancel\(/, `${file} calls no cancel()`);
  }
});
