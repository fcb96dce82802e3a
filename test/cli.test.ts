import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Log, Run } from 'sarif';
import t from 'tap';
import { escapeData, escapeProperty } from '../daemon/ci-output.js';
import { runCli } from '../daemon/cli.js';
import { commitFiles, gitOut, initRepo } from './helpers/git-fixtures.js';
import { exampleFiles, openDaemon } from './helpers/daemon.js';
import { tenantYaml } from './helpers/tenants.js';

async function runCliWith(argv: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli({ argv, env, cwd, out: (s) => void (out += s), err: (s) => void (err += s), stopSignal: new Promise(() => undefined) });
  return { code, out, err };
}
const cli = (argv: string[], cwd: string): Promise<{ code: number; out: string; err: string }> => runCliWith(argv, cwd, {});

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

t.test('usage errors exit 2', async (t) => {
  const dir = t.testdir();
  const none = await cli([], dir);
  t.equal(none.code, 2);
  t.match(none.err, /^Usage: tenantd <command>/);
  t.equal((await cli(['frobnicate'], dir)).code, 2);
  t.equal((await cli(['init'], dir)).code, 2);
  t.equal((await cli(['plan', '--nope'], dir)).code, 2);
  const d = await cli(['daemon', '--concurrency', '0'], dir);
  t.equal(d.code, 2);
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
  const twice = await cli(['token', 'create', '--name', 'ci-bot', '--scopes', 'admin', '--data-dir', 'data'], dir);
  t.equal(twice.code, 1, 'names are unique');
  t.match(twice.err, 'E_TOKEN_EXISTS');
  t.equal((await cli(['token', 'create', '--name', 'x', '--scopes', 'root', '--data-dir', 'data'], dir)).code, 2, 'unknown scope');
  t.match((await cli(['token', 'revoke', '--name', 'nobody', '--data-dir', 'data'], dir)).err, 'E_TOKEN_NOT_FOUND');
  t.equal((await cli(['token', 'revoke', '--name', 'ci-bot', '--data-dir', 'data'], dir)).code, 0);
  const after = await createAuthenticator({ tokensFile: file });
  await t.rejects(after.authenticate(`Bearer ${token}`), { code: 'E_AUTH_INVALID' }, 'revoked');
});

/** Reads `::level k=v,…::message` lines back, undoing GitHub's escaping, as the runner does. */
function parseAnnotations(out: string): Array<{ level: string; props: Record<string, string>; message: string }> {
  const unescape = (s: string): string => s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%3A/g, ':').replace(/%2C/g, ',').replace(/%25/g, '%');
  return out
    .split('\n')
    .filter((l) => /^::(error|warning|notice) /.test(l))
    .map((l) => {
      const m = /^::(\w+) ([^:]*)::(.*)$/.exec(l) as RegExpExecArray;
      const props = Object.fromEntries((m[2] as string).split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), unescape(kv.slice(kv.indexOf('=') + 1))]));
      return { level: m[1] as string, props, message: unescape(m[3] as string) };
    });
}

async function sarifValidator(): Promise<(log: unknown) => boolean> {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const schemaFile = path.join(path.dirname(require.resolve('@microsoft/jest-sarif/package.json')), 'lib/schemas/sarif-2.1.0-rtm.5.json');
  // CommonJS under NodeNext: the class is the module's `default` export's `default`.
  const { default: draft04 } = await import('ajv-draft-04');
  const { default: formats } = await import('ajv-formats');
  // unicodeRegExp off: one of the schema's patterns is not valid with the u flag.
  const ajv = new draft04.default({ allErrors: true, strict: false, unicodeRegExp: false });
  formats.default(ajv);
  const validate = ajv.compile(JSON.parse(await fsp.readFile(schemaFile, 'utf8')) as object);
  return (log) => {
    const ok = validate(log) as boolean;
    if (!ok) console.error(JSON.stringify(validate.errors?.slice(0, 5)));
    return ok;
  };
}

t.test('every command answers --help and -h on stdout with exit 0; --version prints the package version', async (t) => {
  const dir = t.testdir();
  const { default: pkg } = await import('../package.json', { with: { type: 'json' } });
  const commands = [['daemon'], ['validate'], ['plan'], ['init'], ['token'], ['token', 'create'], ['token', 'list'], ['token', 'revoke']];
  for (const cmd of commands) {
    for (const flag of ['--help', '-h']) {
      const res = await cli([...cmd, flag], dir);
      t.equal(res.code, 0, `tenantd ${cmd.join(' ')} ${flag}`);
      t.match(res.out, new RegExp(`^Usage: tenantd ${cmd.join(' ')}\\b`), `${cmd.join(' ')} ${flag}: usage on stdout`);
      t.match(res.out, /--help/);
      t.equal(res.err, '');
    }
  }
  t.match((await cli(['validate', '--nope', '--help'], dir)).out, /^Usage: tenantd validate/, '--help wins over a mistake elsewhere');
  t.match((await cli(['help', 'plan'], dir)).out, /^Usage: tenantd plan/);
  const top = await cli(['--help'], dir);
  t.equal(top.code, 0);
  for (const c of ['daemon', 'validate', 'plan', 'init', 'token']) t.match(top.out, new RegExp(`\\n  ${c}\\b`), `the overview names ${c}`);
  const version = await cli(['--version'], dir);
  t.equal(version.code, 0);
  t.equal(version.out, `tenantd ${pkg.version}\n`);
});

t.test('unknown flags are usage errors everywhere (exit 2, the flag named, usage on stderr), never read as file names', async (t) => {
  const dir = t.testdir({ tenants: { 'good.yaml': tenantYaml('good') } });
  const commands = [['daemon'], ['validate'], ['plan'], ['init', 'x'], ['token', 'create'], ['token', 'list'], ['token', 'revoke']];
  for (const cmd of commands) {
    const res = await cli([...cmd, '--frobnicate'], dir);
    t.equal(res.code, 2, `tenantd ${cmd.join(' ')} --frobnicate`);
    t.match(res.err, /--frobnicate/, 'names the flag');
    t.match(res.err, /Usage: tenantd /);
    t.equal(res.out, '');
  }
  const asPath = await cli(['validate', '--fromat', 'github', 'tenants'], dir);
  t.equal(asPath.code, 2);
  t.notMatch(asPath.err, /cannot read file/, 'the flag was not read as a path');
  const badValue = await cli(['validate', '--format', 'xml'], dir);
  t.equal(badValue.code, 2);
  t.match(badValue.err, /--format must be one of text, json, github, sarif/);
  t.equal((await cli(['validate', '--format'], dir)).code, 2, 'a flag without its value');
  t.equal((await cli(['validate', '--', '--odd-name.yaml'], dir)).code, 1, 'after --, a name starting with - is a path');
  t.equal((await cli(['plan', 'stray'], dir)).code, 2, 'plan takes no positional argument');
  t.equal((await cli(['plan', '--nope', '--detailed-exitcode'], dir)).code, 1, 'with --detailed-exitcode, 2 only ever means changes');
  t.equal((await cli(['plan', '--json', '--format', 'text'], dir)).code, 2, '--json contradicts another --format');
  t.equal((await cli(['--frobnicate'], dir)).code, 2);
  t.equal((await cli(['init', 'a', 'b'], dir)).code, 2);
  t.equal((await cli(['token', 'frob'], dir)).code, 2, 'unknown token action');
});

t.test('tenantd validate --format github: annotations GitHub reads, escaped, on by default under GITHUB_ACTIONS', async (t) => {
  // A file name and a label key with the characters workflow commands reserve (% , :).
  const dir = t.testdir({
    repo: {
      tenants: {
        'good.yaml': tenantYaml('good'),
        'bad.yaml': 'apiVersion: tenantd.io/v1alpha1\nkind: TenantInfrastructure\nmetadata:\n  tenantId: bad\n  name: Bad\n  labels:\n    "a,b:c%d": x\nspec:\n  tier: gold\n  cloudProvider: AWS\n  region: us-east-1\n  configuration:\n    databaseSize: db.t3.micro\n    storageGb: 99999\n    enableHa: false\n',
        'odd,name:50%.yaml': 'apiVersion: tenantd.io/v1alpha1\nkind: TenantInfrastructure\nmetadata: [\n',
      },
    },
  });
  const cwd = path.join(dir, 'repo');
  const json = await cli(['validate', '--format', 'json', 'tenants'], cwd);
  t.equal(json.code, 1);
  const report = JSON.parse(json.out) as { valid: boolean; files: number; invalidFiles: number; errors: Array<{ file: string; line: number; column: number; path: string; message: string }> };
  t.match(report, { valid: false, files: 3, invalidFiles: 2 });
  t.ok(report.errors.length >= 4);

  const gh = await cli(['validate', '--format', 'github', 'tenants'], cwd);
  t.equal(gh.code, 1);
  t.equal(gh.err, '', 'annotations go to stdout');
  const annotations = parseAnnotations(gh.out);
  t.equal(annotations.length, report.errors.length, 'one annotation per error');
  for (const [i, e] of report.errors.entries()) {
    const a = annotations[i];
    t.match(a, { level: 'error', props: { file: e.file, title: e.path || 'tenant file' }, message: e.message }, `${e.file}:${e.line}:${e.column} round-trips`);
    if (e.line > 0) t.same([a?.props['line'], a?.props['col']], [String(e.line), String(e.column)]);
  }
  t.match(gh.out, /^::error file=tenants\/odd%2Cname%3A50%25\.yaml,/m, 'reserved characters in a property are escaped');
  t.match(gh.out, /title=metadata\.labels\["a%2Cb%3Ac%25d"\]/, 'and in a title');
  t.match(gh.out.trimEnd().split('\n').at(-1), /error\(s\) in 2 of 3 tenant file\(s\)$/, 'a plain summary line closes it');

  const byDefault = await runCliWith(['validate', 'tenants/bad.yaml'], cwd, { GITHUB_ACTIONS: 'true' });
  t.match(byDefault.out, /^::error file=tenants\/bad\.yaml,line=9,col=9,title=spec\.tier::/m, 'GITHUB_ACTIONS=true turns annotations on');
  const fromSub = await runCliWith(['validate', '../tenants/bad.yaml'], path.join(cwd, 'tenants'), { GITHUB_ACTIONS: 'true', GITHUB_WORKSPACE: cwd });
  t.match(fromSub.out, /^::error file=tenants\/bad\.yaml,/m, 'paths are relative to GITHUB_WORKSPACE, where GitHub resolves them');
  t.equal((await runCliWith(['validate', '--format', 'text', 'tenants/good.yaml'], cwd, { GITHUB_ACTIONS: 'true' })).out, '1 tenant file(s) valid\n', '--format overrides the default');

  t.equal(escapeData('50%\r\nnext'), '50%25%0D%0Anext');
  t.equal(escapeProperty('a,b:c%\n'), 'a%2Cb%3Ac%25%0A');
});

t.test('tenantd validate --format sarif writes a SARIF 2.1.0 log that validates against the SARIF schema', async (t) => {
  const dir = t.testdir({
    tenants: {
      'good.yaml': tenantYaml('good'),
      'bad.yaml': tenantYaml('bad', { tier: 'gold' as never, services: [{ name: 'web', image: 'nginx', port: 0 }, { name: 'api', image: 'nginx', port: 99999 }] }),
    },
  });
  const validSarif = await sarifValidator();
  const res = await cli(['validate', '--format', 'sarif', 'tenants'], dir);
  t.equal(res.code, 1);
  const log = JSON.parse(res.out) as Log;
  t.ok(validSarif(log), 'valid against sarif-2.1.0-rtm.5.json');
  const run = log.runs[0] as Run;
  t.equal(run.tool.driver.name, 'tenantd');
  const rules = (run.tool.driver.rules ?? []).map((r) => r.id);
  t.same(rules, [...rules].sort(), 'rules sorted');
  t.ok(rules.includes('tenant-field/spec.tier'));
  t.ok(rules.includes('tenant-field/spec.services[].port'), 'array indices fold into one rule');
  const json = JSON.parse((await cli(['validate', '--format', 'json', 'tenants'], dir)).out) as { errors: Array<{ file: string; line: number; column: number; message: string }> };
  t.equal(run.results?.length, json.errors.length);
  for (const [i, r] of (run.results ?? []).entries()) {
    const e = json.errors[i] as { file: string; line: number; column: number; message: string };
    t.equal(rules[r.ruleIndex as number], r.ruleId, 'ruleIndex points at its rule');
    t.match(r, { level: 'error', message: { text: e.message }, locations: [{ physicalLocation: { artifactLocation: { uri: e.file, uriBaseId: 'SRCROOT' }, region: { startLine: e.line, startColumn: e.column } } }] });
  }
  t.equal(run.originalUriBaseIds?.['SRCROOT']?.uri, pathToFileURL(`${dir}/`).href);
  const clean = JSON.parse((await cli(['validate', '--format', 'sarif', 'tenants/good.yaml'], dir)).out) as Log;
  t.ok(validSarif(clean));
  t.same(clean.runs[0]?.results, []);
});

t.test('tenantd plan --format github|sarif: a notice per changed tenant, a warning per delete, errors at the invalid file\'s lines', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  const base = await commitFiles(repo, { 'tenants/a.yaml': tenantYaml('a'), 'tenants/b.yaml': tenantYaml('b') }, 'base');
  await commitFiles(
    repo,
    { 'tenants/a.yaml': tenantYaml('a', { services: [{ name: 'web', image: 'nginx:1.28', replicas: 3, port: 8080 }] }), 'tenants/b.yaml': null, 'tenants/c.yaml': tenantYaml('c'), 'tenants/e.yaml': tenantYaml('e', { tier: 'gold' as never }) },
    'change a, remove b, add c, break e',
  );
  const gh = await cli(['plan', '--repo', 'repo', '--from', base, '--format', 'github'], dir);
  t.equal(gh.code, 1, 'an invalid tenant fails the plan');
  t.match(gh.out, /^::group::tenantd plan: Tenants: 1 to create, 1 to update, 1 to delete, 1 invalid\./m, 'the text plan, folded');
  t.match(gh.out, /^::endgroup::$/m);
  const annotations = parseAnnotations(gh.out);
  t.match(annotations, [
    { level: 'notice', props: { file: 'repo/tenants/a.yaml', title: 'tenant a will be updated' }, message: /~1 to change \(fields: spec\.replicas/ },
    { level: 'warning', props: { file: 'repo/tenants/b.yaml', title: 'tenant b will be deleted' }, message: /: -\d+ to delete$/ },
    { level: 'notice', props: { file: 'repo/tenants/c.yaml', title: 'tenant c will be created' }, message: /\+\d+ to create/ },
    { level: 'error', props: { file: 'repo/tenants/e.yaml', line: '12', col: '13', title: 'spec.tier' }, message: /^must be one of/ },
  ]);
  t.equal(annotations.length, 4);
  const byDefault = await runCliWith(['plan', '--repo', repo, '--from', base, '--to', base], dir, { GITHUB_ACTIONS: 'true' });
  t.match(byDefault.out, /^::group::tenantd plan: No changes\./m, 'github by default under GITHUB_ACTIONS');

  const sarif = await cli(['plan', '--repo', 'repo', '--from', base, '--format', 'sarif'], dir);
  const log = JSON.parse(sarif.out) as Log;
  t.ok((await sarifValidator())(log), 'a valid SARIF log');
  t.same(log.runs[0]?.results?.map((r) => [r.ruleId, r.level]), [['tenant-plan/update', 'note'], ['tenant-plan/delete', 'warning'], ['tenant-plan/create', 'note'], ['tenant-field/spec.tier', 'error']]);
  const legacy = JSON.parse((await cli(['plan', '--repo', 'repo', '--from', base, '--json'], dir)).out) as { tenants: Array<{ tenantId: string; issues?: unknown[] }> };
  t.equal(legacy.tenants.length, 4, '--json still means --format json');
  t.equal(legacy.tenants.find((x) => x.tenantId === 'e')?.issues?.length, 1, 'an invalid tenant\'s issues as data');
});
