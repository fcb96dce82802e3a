/**
 * `tenantd plan` runs inside other processes too (the CLI in tests, a PR-check wrapper): it must
 * close what it opens. A repository's pack files are read through file handles that stay open
 * until the store is closed; one left to the garbage collector is an fd held (and a DEP0137 warning).
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parseCommand } from '../daemon/args.js';
import { PLAN_COMMAND, planArgsFrom, planCommand } from '../daemon/plan-command.js';
import { commitFiles, git, initRepo } from './helpers/git-fixtures.js';
import { openDaemon } from './helpers/daemon.js';
import { tenantYaml } from './helpers/tenants.js';

const openFds = (): number => readdirSync('/proc/self/fd').length;

t.test('tenantd plan leaves no pack file open', async (t) => {
  const repo = path.join(t.testdir(), 'repo');
  await initRepo(repo);
  await commitFiles(repo, { 'tenants/acme.yaml': tenantYaml('acme'), 'tenants/globex.yaml': tenantYaml('globex') }, 'two tenants');
  // Everything in one pack, so every read goes through an open pack file.
  await git(repo, ['gc', '-q', '--prune=now']);
  t.ok(readdirSync(path.join(repo, '.git', 'objects', 'pack')).some((f) => f.endsWith('.pack')), 'the repository is packed');
  const parsed = parseCommand(PLAN_COMMAND, ['--repo', repo]);
  if (parsed.help) throw new Error('--help was not asked for');
  const args = planArgsFrom(parsed.values, {}, '/');
  await planCommand(args); // warm up: module-level handles (none expected) are not counted
  const before = openFds();
  for (let i = 0; i < 3; i++) {
    const report = await planCommand(args);
    t.same(report.tenants.map((x) => x.tenantId).sort(), ['acme', 'globex']);
  }
  t.equal(openFds(), before, 'as many open files after three plans as before');
});

t.test('a daemon whose start fails after the repository was opened closes it again', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  await commitFiles(repo, { 'tenants/acme.yaml': tenantYaml('acme') }, 'one tenant');
  await git(repo, ['gc', '-q', '--prune=now']);
  const dataDir = path.join(dir, 'data');
  // The provider is made after the repository, the records and the log are open: a kubeconfig
  // that is not there fails the open at that step.
  const broken = ['--provider', 'kubernetes', '--kubeconfig', path.join(dir, 'no-such-kubeconfig')];
  await t.rejects(openDaemon(repo, dataDir, broken), { code: 'E_CONFIG' }); // warm up
  const before = openFds();
  for (let i = 0; i < 3; i++) await t.rejects(openDaemon(repo, dataDir, broken), { code: 'E_CONFIG' });
  t.equal(openFds(), before, 'as many open files after three failed starts as before');
  // And the data dir's lock went with them: a good start takes it.
  const { daemon } = await openDaemon(repo, dataDir);
  await daemon.start();
  await daemon.whenIdle();
  t.equal(daemon.store.get('acme')?.status, 'ACTIVE');
  await daemon.stop();
});
