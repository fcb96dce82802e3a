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
