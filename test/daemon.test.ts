import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { PHASES } from '../core/phases.js';
import { commitFiles, git, gitOut, initRepo } from './helpers/git-fixtures.js';
import { exampleFiles, openDaemon, statusAt } from './helpers/daemon.js';
import { tenantYaml } from './helpers/tenants.js';

const EXAMPLES = ['acme-corp', 'globex', 'initech'];

/** t.testdir() recreates its directory on every call: call it once per test. */
async function exampleRepo(t: Test): Promise<{ repo: string; dataDir: string }> {
  const dir = t.testdir();
  const repo = path.join(dir, 'tenants');
  await initRepo(repo);
  await commitFiles(repo, await exampleFiles(), 'add example tenants');
  return { repo, dataDir: path.join(dir, 'data') };
}

t.test('the example repository reconciles every tenant to ACTIVE with status committed back', async (t) => {
  const { repo, dataDir } = await exampleRepo(t);
  const { daemon } = await openDaemon(repo, dataDir);
  t.teardown(() => daemon.stop());
  await daemon.start();
  await daemon.whenIdle();

  for (const id of EXAMPLES) {
    t.equal(daemon.store.get(id)?.status, 'ACTIVE', `${id} is ACTIVE`);
    const phases = (await daemon.log.read(id)).map((x) => x.toState.split('/')[1]);
    t.same(phases, [...PHASES], `${id}: the seven phases in order`);
    const status = await statusAt(repo, 'main', id);
    t.equal(status.status.status, 'ACTIVE');
    t.equal(status.status.phase, 'Complete');
    t.equal(status.status.namespace, `tenant-${id}`);
    t.match(status.status.observedCommit, /^[0-9a-f]{40}$/);
    t.match(status.status.conditions, [{ type: 'Ready', status: 'True' }, { type: 'Reconciling', status: 'False' }, { type: 'Stalled', status: 'False' }]);
    t.ok(await fsp.stat(path.join(dataDir, 'rendered', id)), `${id} rendered`);
  }
  // One status commit for the whole pass, authored by tenantd, and the work tree is clean.
  const log = await gitOut(repo, ['log', '--format=%an|%s', 'main']);
  t.match(log.split('\n')[0], /^tenantd\|tenantd: status of 3 tenant\(s\)/);
  t.equal(log.split('\n').filter((l) => l.startsWith('tenantd|')).length, 1, 'batched: one status commit per pass');
  t.equal(await gitOut(repo, ['status', '--porcelain']), '', 'the user work tree stays clean');

  // tenantd's own commit is not a reason to reconcile.
  const again = await daemon.poll();
  t.same(again.changed, []);
  t.equal(daemon.queue.depth + daemon.queue.active, 0);
  // No new commit: no per-tenant work at all.
  const noop = await daemon.poll();
  t.same(noop.changed, []);
});

t.test('a commit that edits one tenant of many reconciles that tenant alone', async (t) => {
  const { repo, dataDir } = await exampleRepo(t);
  const files: Record<string, string> = {};
  for (let i = 0; i < 12; i++) files[`tenants/t${i}.yaml`] = tenantYaml(`t${i}`);
  await commitFiles(repo, files, 'twelve more tenants');
  const { daemon } = await openDaemon(repo, dataDir);
  t.teardown(() => daemon.stop());
  await daemon.start();
  await daemon.whenIdle();
  const before = daemon.log.total;

  await commitFiles(repo, { 'tenants/t7.yaml': tenantYaml('t7', { region: 'eu-west-1' }) }, 'move t7 to Europe');
  const poll = await daemon.poll();
  t.same(poll.changed, ['t7']);
  await daemon.whenIdle();
  const t7 = await daemon.log.read('t7');
  t.same(t7.slice(7).map((x) => x.toState), [
    'UPDATING/Request',
    'UPDATING/Plan',
    'UPDATING/Apply',
    'UPDATING/Deploy',
    'UPDATING/Configure',
    'UPDATING/Verify',
    'ACTIVE/Complete',
  ]);
  t.match(t7[7]?.trigger, /^commit:[0-9a-f]{40}$/);
  t.equal(daemon.log.total - before, 7, 'no other tenant has a new transition');
  t.equal(daemon.store.get('t7')?.region, 'eu-west-1');
  t.equal((await statusAt(repo, 'main', 't7')).status.status, 'ACTIVE');
});

t.test('deleting a tenant file deprovisions it, unless deletion protection holds it', async (t) => {
  const { repo, dataDir } = await exampleRepo(t);
  const { daemon } = await openDaemon(repo, dataDir);
  t.teardown(() => daemon.stop());
  await daemon.start();
  await daemon.whenIdle();
  t.equal(daemon.store.get('acme-corp')?.applied?.document.spec.deletionProtection, true, 'the example has protection');

  await commitFiles(repo, { 'tenants/globex.yaml': null, 'tenants/acme-corp.yaml': null }, 'remove two tenants');
  await daemon.poll();
  await daemon.whenIdle();
  t.equal(daemon.store.get('globex')?.status, 'DEPROVISIONED');
  t.same((await daemon.log.read('globex')).slice(-5).map((x) => x.toState), [
    'DEPROVISIONING/Request',
    'DEPROVISIONING/Plan',
    'DEPROVISIONING/Apply',
    'DEPROVISIONING/Verify',
    'DEPROVISIONED/Complete',
  ]);
  await t.rejects(fsp.stat(path.join(dataDir, 'rendered', 'globex')), { code: 'ENOENT' }, 'its rendered objects are gone');

  t.equal(daemon.store.get('acme-corp')?.status, 'ACTIVE', 'protected tenant stays');
  const acme = await statusAt(repo, 'main', 'acme-corp');
  t.match(acme.status.conditions, [{ type: 'Ready' }, { type: 'Reconciling' }, { type: 'Stalled', status: 'True', reason: 'DeletionProtected', message: /deletionProtection/ }]);
  t.ok(await fsp.stat(path.join(dataDir, 'rendered', 'acme-corp')), 'nothing of it was removed');
  t.equal((await statusAt(repo, 'main', 'globex')).status.status, 'DEPROVISIONED');
});

t.test('a broken file marks that tenant INVALID with the error, and every other tenant still reconciles', async (t) => {
  const { repo, dataDir } = await exampleRepo(t);
  await commitFiles(
    repo,
    {
      'tenants/bad-yaml.yaml': 'apiVersion: tenantd.io/v1alpha1\nkind: [unclosed\n',
      'tenants/bad-schema.yaml': tenantYaml('bad-schema', { tier: 'gold' as never }),
      'tenants/mismatch.yaml': tenantYaml('other-id'),
    },
    'three broken tenants',
  );
  const { daemon } = await openDaemon(repo, dataDir);
  t.teardown(() => daemon.stop());
  await daemon.start();
  await daemon.whenIdle();
  for (const id of EXAMPLES) t.equal(daemon.store.get(id)?.status, 'ACTIVE', `${id} unaffected`);
  for (const id of ['bad-yaml', 'bad-schema', 'mismatch']) {
    t.equal(daemon.store.get(id)?.status, 'INVALID', `${id} INVALID`);
    const status = await statusAt(repo, 'main', id);
    t.equal(status.status.status, 'INVALID');
    t.ok((status.status.errors as unknown[]).length > 0, `${id} has its errors in the status file`);
    t.match(status.status.conditions, [{ type: 'Ready', status: 'False', reason: 'InvalidSpec' }, {}, { type: 'Stalled', status: 'True' }]);
  }
  const schemaErr = (await statusAt(repo, 'main', 'bad-schema')).status.errors as Array<{ path: string; line: number; file: string }>;
  t.match(schemaErr, [{ file: 'tenants/bad-schema.yaml', path: 'spec.tier' }]);
  t.ok(schemaErr[0]!.line > 0, 'with a line number');
  t.match((await statusAt(repo, 'main', 'mismatch')).status.errors, [{ path: 'metadata.tenantId' }]);

  // Fixing the file converges it.
  await commitFiles(repo, { 'tenants/bad-schema.yaml': tenantYaml('bad-schema') }, 'fix tier');
  await daemon.poll();
  await daemon.whenIdle();
  t.equal(daemon.store.get('bad-schema')?.status, 'ACTIVE');
});

t.test('status can go to a separate branch for repositories with a protected main', async (t) => {
  const { repo, dataDir } = await exampleRepo(t);
  const head = await gitOut(repo, ['rev-parse', 'main']);
  const { daemon } = await openDaemon(repo, dataDir, ['--status-branch', 'tenantd-status']);
  t.teardown(() => daemon.stop());
  await daemon.start();
  await daemon.whenIdle();
  t.equal(await gitOut(repo, ['rev-parse', 'main']), head, 'main is untouched');
  t.equal((await statusAt(repo, 'tenantd-status', 'globex')).status.status, 'ACTIVE');
});

t.test('a second daemon on the same data dir is refused', async (t) => {
  const { repo, dataDir } = await exampleRepo(t);
  const { daemon } = await openDaemon(repo, dataDir);
  t.teardown(() => daemon.stop());
  await t.rejects(openDaemon(repo, dataDir), { code: 'E_DATA_DIR_LOCKED' });
  await git(repo, ['status']);
});

t.test('drift: an edited object is recorded as a drift transition and corrected, or only reported under driftPolicy: report', async (t) => {
  const { repo, dataDir } = await exampleRepo(t);
  const { daemon } = await openDaemon(repo, dataDir);
  t.teardown(() => daemon.stop());
  await daemon.start();
  await daemon.whenIdle();
  t.equal(daemon.store.get('globex')?.applied?.document.spec.driftPolicy, 'report', 'globex only reports drift');

  const edit = async (id: string): Promise<string> => {
    const dir = path.join(dataDir, 'rendered', id, '2-deploy');
    const file = path.join(dir, (await fsp.readdir(dir)).find((n) => n.includes('deployment')) as string);
    const text = await fsp.readFile(file, 'utf8');
    await fsp.writeFile(file, text.replace(/replicas: \d+/, 'replicas: 42'));
    return file;
  };
  const initechFile = await edit('initech');
  const globexFile = await edit('globex');
  t.equal(daemon.checkDrift(), 3, 'every ACTIVE tenant is checked');
  await daemon.whenIdle();

  const last = async (id: string) => (await daemon.log.read(id)).at(-1);
  const initech = await last('initech');
  t.match(initech, { trigger: 'drift', fromState: 'ACTIVE/Complete', toState: 'ACTIVE/Complete', details: { corrected: true, driftPolicy: 'correct' } });
  t.match(JSON.stringify(initech?.details), /Deployment.*spec\.replicas/, 'names the differing field');
  t.notMatch(await fsp.readFile(initechFile, 'utf8'), /replicas: 42/, 'corrected');

  t.match(await last('globex'), { trigger: 'drift', details: { corrected: false, driftPolicy: 'report' } });
  t.match(await fsp.readFile(globexFile, 'utf8'), /replicas: 42/, 'only reported');
  t.not((await last('acme-corp'))?.trigger, 'drift', 'no drift, no transition');
});
