/**
 * The product description's own example, end to end, as a new user meets it: `tenantd daemon`
 * with nothing configured (what `npm start` runs: the embedded repository made from the examples,
 * the render provider, a generated admin token), a real process, and the seed's curl request sent
 * over real HTTP with its body byte for byte.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { PHASES } from '../core/phases.js';
import { runCli } from '../daemon/cli.js';
import { gitOut } from './helpers/git-fixtures.js';
import { spawnTenantd, waitFor } from './helpers/process.js';
import { SEED, SEED_BODY, SEED_PATH, SEED_TENANT, UUID } from './helpers/seed.js';

const run = promisify(execFile);

/** The seed's curl, argument for argument; plain fetch where no curl is installed. */
async function seedCurl(url: string, token: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const curl = ['/usr/bin/curl', '/bin/curl'].find((p) => existsSync(p));
  if (curl) {
    const { stdout } = await run(curl, ['-sS', '-w', '\n%{http_code}', '-X', 'POST', `${url}${SEED_PATH}`, '-H', 'Content-Type: application/json', '-H', `Authorization: Bearer ${token}`, '-d', SEED_BODY]);
    const cut = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(cut + 1)), body: JSON.parse(stdout.slice(0, cut)) as Record<string, unknown> };
  }
  const res = await fetch(`${url}${SEED_PATH}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: SEED_BODY });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

t.test('npm start, then the seed curl: 202, a commit, ACTIVE through the seven phases, every seed field back', async (t) => {
  const cwd = t.testdir();
  const p = spawnTenantd(['daemon', '--host', '127.0.0.1', '--port', '0'], {}, cwd);
  t.teardown(() => {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  await waitFor(() => /API on (http:\/\/127\.0\.0\.1:\d+)/.test(p.output()), 90_000, 'the API to listen').catch((err: unknown) => {
    t.comment(p.output());
    throw err;
  });
  const url = /API on (http:\/\/127\.0\.0\.1:\d+)/.exec(p.output())?.[1] as string;
  const tokenFile = path.join(cwd, '.tenantd', 'admin-token');
  const token = (await fsp.readFile(tokenFile, 'utf8')).trim();
  t.match(token, /^tdk_[A-Za-z0-9_-]+$/, 'the generated admin token is in .tenantd/admin-token');
  t.match(p.output(), tokenFile, 'the output says where the token is');
  t.notOk(p.output().includes(token), 'and never prints the token itself');
  const repo = path.join(cwd, '.tenantd', 'tenants');
  t.match(p.output(), `embedded repository: edit ${path.join(repo, 'tenants')}/*.yaml`, 'the embedded default, under ./.tenantd');
  const get = async (route: string): Promise<Record<string, unknown>> =>
    (await (await fetch(`${url}${route}`, { headers: { Authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;

  const res = await seedCurl(url, token);
  t.equal(res.status, 202, JSON.stringify(res.body));
  const commit = res.body['commit'] as string;
  t.match(commit, /^[0-9a-f]{40}$/);
  t.match(parseYaml(await gitOut(repo, ['show', `${commit}:tenants/550e8400.yaml`])), { spec: SEED }, 'the commit holds the seed spec');

  let tenant: Record<string, unknown> = {};
  await waitFor(async () => (tenant = await get(`/api/v1/infrastructure/tenants/${SEED_TENANT}`))['status'] === 'ACTIVE', 60_000, '550e8400 ACTIVE');
  t.match(tenant, { tenantId: SEED_TENANT, status: 'ACTIVE', cloudProvider: 'AZURE', region: 'eastus', namespace: `tenant-${SEED_TENANT}` });
  t.match(tenant['id'], UUID, 'id is a UUID');
  t.same(tenant['configuration'], SEED.configuration, 'configuration is the JSON sent');
  t.type(tenant['terraformStateKey'], 'string');
  t.same(tenant['warnings'], []);
  let transitions: Array<{ toState: string }> = [];
  await waitFor(async () => (transitions = (await get(`/api/v1/infrastructure/tenants/${SEED_TENANT}/transitions`))['items'] as typeof transitions).length >= PHASES.length, 10_000, 'seven transitions');
  t.same(transitions.map((x) => x.toState.split('/')[1]), ['Request', 'Plan', 'Apply', 'Deploy', 'Configure', 'Verify', 'Complete']);

  // What the user finds in the repository: the status file, and the schema the examples name.
  await waitFor(async () => {
    try {
      return (parseYaml(await gitOut(repo, ['show', `main:status/${SEED_TENANT}.yaml`])) as { status: { status: string } }).status.status === 'ACTIVE';
    } catch {
      return false;
    }
  }, 30_000, 'the status commit');
  const schemaInRepo = await gitOut(repo, ['show', 'main:schemas/tenant.schema.json']);
  t.equal(`${schemaInRepo}\n`, await fsp.readFile(new URL('../schemas/tenant.schema.json', import.meta.url), 'utf8'), 'the embedded repository carries the schema the examples point at');

  const served = await fetch(`${url}/schemas/tenant.schema.json`);
  t.equal(served.status, 200, 'the daemon serves it too, without a token');
  t.same(await served.json(), JSON.parse(schemaInRepo), 'the same schema');

  p.child.kill('SIGTERM');
  t.equal((await p.exited).code, 0, 'stops cleanly');
});

t.test('tenantd validate prints a retired size as a warning at its line and column, and exits 0', async (t) => {
  const dir = t.testdir({
    tenants: {
      'legacy.yaml': [
        'apiVersion: tenantd.io/v1alpha1',
        'kind: TenantInfrastructure',
        'metadata:',
        '  tenantId: legacy',
        '  name: Legacy',
        'spec:',
        '  tier: professional',
        '  cloudProvider: AZURE',
        '  region: eastus',
        '  configuration:',
        '    databaseSize: GP_Gen5_2',
        '    storageGb: 100',
        '    enableHa: false',
        '',
      ].join('\n'),
    },
  });
  // In process (a second real process would only repeat the TypeScript start-up of the first).
  let out = '';
  const code = await runCli({ argv: ['validate', 'tenants'], env: {}, cwd: dir, out: (s) => void (out += s), err: (s) => void (out += s), stopSignal: new Promise(() => undefined) });
  t.equal(code, 0, 'a warning does not fail the check');
  t.match(out, /^tenants\/legacy\.yaml:11:19: warning: spec\.configuration\.databaseSize: database size "GP_Gen5_2" is retired .*use "Standard_D2ds_v5"/m);
  t.match(out, /1 tenant file\(s\) valid, 1 warning\(s\)/);
});

t.test("the README's curl examples are the seed's request, word for word", async (t) => {
  const readme = await fsp.readFile(new URL('../README.md', import.meta.url), 'utf8');
  const seedCurl = [
    'curl -X POST http://localhost:8089/api/v1/infrastructure/tenants/550e8400/provision \\',
    '-H "Content-Type: application/json" -H "Authorization: Bearer ${TOKEN}" \\',
    `-d '${SEED_BODY}'`,
  ].join('\n');
  t.equal(readme.split(seedCurl).length - 1, 2, 'in the quick start and in the REST API section');
  t.notMatch(readme.split(seedCurl).join(''), /-d '\{"tier"/, 'no other provision body that could drift from it');
});
