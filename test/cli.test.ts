import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runCli } from '../daemon/cli.js';
import { commitFiles, gitOut, initRepo } from './helpers/git-fixtures.js';
import { exampleFiles, openDaemon } from './helpers/daemon.js';
import { tenantYaml } from './helpers/tenants.js';

async function cli(argv: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli({ argv, env: {}, cwd, out: (s) => void (out += s), err: (s) => void (err += s), stopSignal: new Promise(() => undefined) });
  return { code, out, err };
}

t.test('tenantd validate: exit 0 on valid files, 1 with file:line:column errors on any invalid one', async (t) => {
  const dir = t.testdir({
    tenants: {
      'good.yaml': tenantYaml('good'),
      'bad.yaml': 'apiVersion: tenantd.io/v1alpha1\nkind: TenantInfrastructure\nmetadata:\n  tenantId: bad\n  name: Bad\nspec:\n  tier: gold\n  cloudProvider: AWS\n  region: us-east-1\n  configuration:\n    databaseSize: db.t3.micro\n    storageGb: 99999\n    enableHa: false\n',
    },
  });
  const ok = await cli(['validate', 'tenants/good.yaml'], dir);
  t.equal(ok.code, 0);
  t.match(ok.out, '1 tenant file(s) valid');

  const bad = await cli(['validate', 'tenants'], dir);
  t.equal(bad.code, 1);
  const lines = bad.err.trim().split('\n');
  t.match(lines, [/^tenants\/bad\.yaml:7:9: spec\.tier: /, /^tenants\/bad\.yaml:12:16: spec\.configuration\.storageGb: must be <= 16384/, /2 error\(s\) in 1 of 2 tenant file\(s\)/]);

  const repoRoot = await cli(['validate', '.'], dir);
  t.equal(repoRoot.code, 1, 'a repository root means its tenants/ directory');
  const missing = await cli(['validate', 'tenants/nope.yaml'], dir);
  t.equal(missing.code, 1);
  t.match(missing.err, /tenants\/nope\.yaml: cannot read file \(ENOENT\)/);
});

t.test('tenantd init creates a repository on main with the example tenants', async (t) => {
  const dir = t.testdir();
  const res = await cli(['init', 'repo'], dir);
  t.equal(res.code, 0, res.err);
  const repo = path.join(dir, 'repo');
  t.equal(await gitOut(repo, ['rev-parse', '--abbrev-ref', 'HEAD']), 'main');
  const files = (await gitOut(repo, ['ls-files'])).split('\n');
  t.same(files.filter((f) => f.startsWith('tenants/')), Object.keys(await exampleFiles()));
  t.equal(await gitOut(repo, ['status', '--porcelain']), '');
  const valid = await cli(['validate', 'repo'], dir);
  t.equal(valid.code, 0, 'the examples validate');
  const again = await cli(['init', 'repo'], dir);
  t.equal(again.code, 1);
  t.match(again.err, 'E_REPO_EXISTS');
});

t.test('tenantd plan between two revisions shows per-tenant object changes', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  const base = await commitFiles(repo, { 'tenants/a.yaml': tenantYaml('a'), 'tenants/b.yaml': tenantYaml('b'), 'tenants/c.yaml': tenantYaml('c') }, 'base');
  await commitFiles(
    repo,
    {
      'tenants/a.yaml': tenantYaml('a', { services: [{ name: 'web', image: 'nginx:1.28', replicas: 3, port: 8080 }] }),
      'tenants/b.yaml': null,
      'tenants/d.yaml': tenantYaml('d'),
    },
    'change a, remove b, add d',
  );
  const res = await cli(['plan', '--repo', repo, '--from', base, '--to', 'main'], dir);
  t.equal(res.code, 0, res.err);
  t.match(res.out, /tenant a: update\n {2}~ apps\/v1\/Deployment\/tenant-a\/web {2}\(.*spec\.replicas.*\)/);
  t.match(res.out, /tenant b: delete\n( {2}- .*\n)+/);
  t.match(res.out, /tenant d: create\n( {2}\+ .*\n)+/);
  t.notMatch(res.out, /tenant c:/, 'unchanged tenants are not listed');
  t.match(res.out, /Tenants: 1 to create, 1 to update, 1 to delete, 0 invalid\./);

  const detailed = await cli(['plan', '--repo', repo, '--from', base, '--detailed-exitcode'], dir);
  t.equal(detailed.code, 2, '--detailed-exitcode: 2 when there are changes');
  const none = await cli(['plan', '--repo', repo, '--from', 'main', '--to', 'main', '--detailed-exitcode'], dir);
  t.equal(none.code, 0);
  t.match(none.out, 'No changes.');

  const json = await cli(['plan', '--repo', repo, '--from', base, '--json'], dir);
  const parsed = JSON.parse(json.out) as { tenants: Array<{ tenantId: string; action: string }> };
  t.same(parsed.tenants.map((x) => [x.tenantId, x.action]), [['a', 'update'], ['b', 'delete'], ['d', 'create']]);

  await commitFiles(repo, { 'tenants/e.yaml': 'kind: nope\n' }, 'broken');
  const invalid = await cli(['plan', '--repo', repo, '--from', base], dir);
  t.equal(invalid.code, 1, 'an invalid tenant fails the plan');
  t.match(invalid.out, /tenant e: INVALID[^\n]*\n {2}tenants\/e\.yaml:/);

  const badRev = await cli(['plan', '--repo', repo, '--from', 'no-such-rev'], dir);
  t.equal(badRev.code, 1);
  t.match(badRev.err, 'E_REV_NOT_FOUND');
});

t.test('tenantd plan without --from compares against what the status files say is applied', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  await commitFiles(repo, await exampleFiles(), 'examples');
  const { daemon } = await openDaemon(repo, path.join(dir, 'data'));
  await daemon.start();
  await daemon.whenIdle();
  await daemon.stop();

  const clean = await cli(['plan', '--repo', repo], dir);
  t.equal(clean.code, 0, clean.err);
  t.match(clean.out, 'No changes.', 'everything in git is applied');

  const text = (await fsp.readFile(path.join(repo, 'tenants/initech.yaml'), 'utf8')).replace('storageGb: 20', 'storageGb: 40');
  await commitFiles(repo, { 'tenants/initech.yaml': text }, 'grow initech');
  const res = await cli(['plan', '--repo', repo], dir);
  t.match(res.out, /tenant initech: update\n( {2}~ .*\n)* {2}~ v1\/PersistentVolumeClaim\/tenant-initech\/data-postgres-0 {2}\(spec\.resources\.requests\.storage\)\n/);
  t.notMatch(res.out, /tenant globex/);
});

t.test('usage errors', async (t) => {
  const dir = t.testdir();
  t.equal((await cli([], dir)).code, 64);
  t.equal((await cli(['frobnicate'], dir)).code, 64);
  t.equal((await cli(['init'], dir)).code, 64);
  t.equal((await cli(['plan', '--nope'], dir)).code, 64);
  const d = await cli(['daemon', '--concurrency', '0'], dir);
  t.equal(d.code, 64);
  t.match(d.err, /E_CONFIG: --concurrency \(TENANTD_CONCURRENCY\) = "0": must be between 1 and 256/);
  t.match((await cli(['daemon', '--help'], dir)).out, 'TENANTD_REPO');
});

t.test('tenantd token create/list/revoke manages hashed, scoped API tokens the authenticator accepts', async (t) => {
  const dir = t.testdir();
  const { createAuthenticator } = await import('../api/auth/index.js');
  const created = await cli(['token', 'create', '--name', 'ci-bot', '--scopes', 'tenants:read,tenants:write', '--data-dir', 'data'], dir);
  t.equal(created.code, 0, created.err);
  const token = /^\s+(tdk_\S+)$/m.exec(created.out)?.[1] as string;
  t.ok(token, 'printed once');
  const file = path.join(dir, 'data', 'api-tokens.yaml');
  const stored = await fsp.readFile(file, 'utf8');
  t.notMatch(stored, token, 'only the hash is stored');
  t.equal((await fsp.stat(file)).mode & 0o777, 0o600);
  const auth = await createAuthenticator({ tokensFile: file });
  t.match(await auth.authenticate(`Bearer ${token}`), { name: 'ci-bot', scopes: ['tenants:read', 'tenants:write'] });
  t.match((await cli(['token', 'list', '--data-dir', 'data'], dir)).out, /ci-bot\s+tenants:read,tenants:write/);
  t.equal((await cli(['token', 'create', '--name', 'ci-bot', '--scopes', 'admin', '--data-dir', 'data'], dir)).code, 64, 'names are unique');
  t.equal((await cli(['token', 'create', '--name', 'x', '--scopes', 'root', '--data-dir', 'data'], dir)).code, 64, 'unknown scope');
  t.equal((await cli(['token', 'revoke', '--name', 'ci-bot', '--data-dir', 'data'], dir)).code, 0);
  const after = await createAuthenticator({ tokensFile: file });
  await t.rejects(after.authenticate(`Bearer ${token}`), { code: 'E_AUTH_INVALID' }, 'revoked');
});
