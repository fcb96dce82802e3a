/**
 * Integration: the whole preview / up / destroy cycle through the real Automation API against a
 * local file backend in a temp directory. It needs a `pulumi` CLI on PATH (3.181.0+) and the
 * Kubernetes resource plugin already installed (the Docker image has both); without them it is
 * skipped, saying why. Plugin downloads are disabled (PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION),
 * so the test never fetches anything.
 *
 * No cluster is needed: the program's Kubernetes provider renders the manifests to a directory
 * (`renderYamlToDirectory`) instead of applying them; everything else (stack creation, encrypted
 * secret config, engine events, outputs, destroy, stack rm) is the production path.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import type { ProviderContext } from '../providers/provider.js';
import { checkPulumiCli } from '../providers/pulumi/engine.js';
import { createPulumiProvider } from '../providers/pulumi/provider.js';
import { allObjects, renderTenant } from '../providers/resources/renderer.js';
import type { RenderedTenant } from '../providers/resources/types.js';
import { tenantDoc } from './helpers/tenants.js';

async function kubernetesPluginInstalled(): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('pulumi', ['plugin', 'ls', '--json'], { env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: 'true' }, timeout: 30_000 }, (err, stdout) => {
      if (err) return resolve(false);
      try {
        const plugins = JSON.parse(stdout) as Array<{ name?: string; kind?: string }>;
        resolve(plugins.some((p) => p.name === 'kubernetes' && p.kind === 'resource'));
      } catch {
        resolve(false);
      }
    });
  });
}

const cli = await checkPulumiCli();
const skip = !cli.ok
  ? `no pulumi CLI on PATH (${cli.message}); the Automation API path is covered by the Docker image and machines with the CLI`
  : !(await kubernetesPluginInstalled())
    ? 'the pulumi Kubernetes resource plugin is not installed (`pulumi plugin install resource kubernetes`); this test never downloads plugins'
    : false;

t.test('preview, up, up again, verify, destroy and stack rm against a local file backend', { skip, timeout: 600_000 }, async (t) => {
  const dataDir = t.testdir({});
  const renderDir = path.join(dataDir, 'rendered-by-pulumi');
  const provider = createPulumiProvider({
    dataDir,
    passphrase: 'integration-test-passphrase',
    disablePluginDownload: true,
    renderYamlDirFor: (tenantId) => path.join(renderDir, tenantId),
  });
  t.ok(await provider.ready?.(), 'ready with a CLI');
  const rendered = renderTenant(tenantDoc('itest'));
  const lines: string[] = [];
  const ctx = (desired: RenderedTenant | null): ProviderContext => ({
    tenantId: 'itest',
    tenant: tenantDoc('itest'),
    desired,
    operationId: 'op-itest',
    signal: new AbortController().signal,
    progress: (m) => lines.push(m),
  });
  const objects = allObjects(rendered).length;

  const plan = await provider.plan(ctx(rendered));
  t.equal(plan.changes.filter((c) => c.action === 'create').length, objects, 'every object to create');
  t.ok(existsSync(path.join(dataDir, 'pulumi-state', '.pulumi')), 'state in the default file backend');

  const applied = await provider.apply(ctx(rendered));
  t.match(applied.summary, new RegExp(`^apply \\(pulumi up, all groups in one update\\): ${objects} created`));
  t.equal(applied.outputs?.namespace, 'tenant-itest');
  t.ok(lines.some((l) => l.startsWith('created ')), 'engine events streamed as progress');
  const manifests = await readdir(path.join(renderDir, 'itest'), { recursive: true });
  t.ok(manifests.length > 0, 'the Kubernetes provider rendered the manifests');

  // The generated password lives only as an encrypted stack config value.
  const stackConfig = await readFile(path.join(dataDir, 'pulumi-workspaces', 'itest', 'Pulumi.tenant-itest.yaml'), 'utf8');
  t.match(stackConfig, /tenantd:generated\.postgres-credentials\.password:\s*\n\s*secure:/);

  const again = await provider.plan(ctx(rendered));
  t.equal(again.changes.filter((c) => c.action !== 'unchanged').length, 0, 'a second preview finds nothing to change');
  t.match((await provider.deploy(ctx(rendered))).summary, /^deploy: nothing left to do/);
  t.match((await provider.configure(ctx(rendered))).summary, /^configure: nothing left to do/);
  const verified = await provider.verify(ctx(rendered));
  t.equal(verified.outputs?.namespace, 'tenant-itest');

  const destroyed = await provider.destroy(ctx(null));
  t.match(destroyed.summary, /stack organization\/tenantd\/tenant-itest removed/);
  t.match(await provider.verify(ctx(null)), { summary: /is removed/ });
  t.notOk(existsSync(path.join(dataDir, 'pulumi-workspaces', 'itest')), 'the workspace (encrypted config) goes with the stack');
});
