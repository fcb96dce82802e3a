import { promises as fsp } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { runCli } from '../daemon/cli.js';
import { apiHarness, type ApiHarness } from './helpers/api.js';
import { gitOut } from './helpers/git-fixtures.js';
import { spawnTenantd } from './helpers/process.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

async function tenantd(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runCli({ argv, env, cwd, out: (s) => void (out += s), err: (s) => void (err += s), stopSignal: new Promise(() => undefined) });
  return { code, out, err };
}
/** The CLI pointed at the harness's daemon with a token (admin unless told). */
const against = (h: ApiHarness, token = 'admin'): ((argv: string[]) => Promise<Run>) => (argv) => tenantd(argv, { TENANTD_SERVER: h.api.url, TENANTD_TOKEN: token });

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

t.test('tenantd get: an aligned table of every tenant, one tenant, -o json and -o yaml', async (t) => {
  const h = await apiHarness(t);
  const cli = against(h);
  const all = await cli(['get']);
  t.equal(all.code, 0, all.err);
  const lines = all.out.trimEnd().split('\n');
  t.equal(lines.length, 4, 'a header and three tenants');
  t.match(lines[0], /^TENANT\s+STATUS\s+PHASE\s+READY\s+AGE\s+MESSAGE$/);
  t.match(lines[1], /^acme-corp\s+ACTIVE\s+Complete\s+True\s+\d+s\s+Applied commit [0-9a-f]{12}$/);
  t.match(lines[2], /^globex\s/);
  t.match(lines[3], /^initech\s/);
  for (const column of ['STATUS', 'PHASE', 'READY', 'AGE', 'MESSAGE']) {
    const at = (lines[0] as string).indexOf(column);
    for (const row of lines.slice(1)) t.match(row.slice(at - 2, at), /^ {2}$/, `${column} starts at the same column in every row`);
  }

  const one = await cli(['get', 'globex']);
  t.equal(one.code, 0);
  t.equal(one.out.trimEnd().split('\n').length, 2);
  const json = await cli(['get', 'globex', '-o', 'json']);
  t.equal(json.code, 0);
  t.match(JSON.parse(json.out), { tenantId: 'globex', status: 'ACTIVE', spec: { tier: 'professional' } });
  const list = await cli(['get', '--output', 'yaml']);
  t.equal(list.code, 0);
  const parsed = YAML.parse(list.out) as { items: Array<{ tenantId: string }> };
  t.same(parsed.items.map((i) => i.tenantId), ['acme-corp', 'globex', 'initech']);
  t.equal(await cli(['get', '-o', 'yaml']).then((r) => r.out), list.out, 'deterministic output');
});

t.test('errors map to exit codes: 5 unknown tenant, 4 no/bad token or scope, 3 unreachable, 2 usage', async (t) => {
  const h = await apiHarness(t);
  const missing = await against(h)(['get', 'nobody']);
  t.equal(missing.code, 5);
  t.match(missing.err, /^tenantd: E_TENANT_NOT_FOUND: /);
  t.equal(missing.out, '');

  const noToken = await tenantd(['get'], { TENANTD_SERVER: h.api.url });
  t.equal(noToken.code, 4);
  t.match(noToken.err, /E_AUTH_MISSING: .*--token, --token-file or set TENANTD_TOKEN/);
  const badToken = await against(h, 'not-a-token')(['get']);
  t.equal(badToken.code, 4);
  t.match(badToken.err, /E_AUTH_INVALID/);
  const reader = await against(h, 'reader')(['suspend', 'globex']);
  t.equal(reader.code, 4, 'a read-only token cannot suspend');
  t.match(reader.err, /E_FORBIDDEN_SCOPE: .*tenants:write/);
  t.notMatch(await gitOut(h.repo, ['show', 'main:tenants/globex.yaml']), /suspend: true/, 'nothing committed');

  const port = await closedPort();
  const down = await tenantd(['status', '--server', `http://127.0.0.1:${port}`, '--token', 'admin'], {});
  t.equal(down.code, 3);
  t.match(down.err, new RegExp(`E_SERVER_UNREACHABLE: cannot reach the tenantd API at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));

  const usage = [['get', 'a', 'b'], ['suspend'], ['get', '-o', 'xml'], ['reconcile', 'x', '--nope'], ['status', '--server', 'ftp://x']];
  for (const argv of usage) {
    const r = await against(h)(argv);
    t.equal(r.code, 2, `${argv.join(' ')}: usage error`);
    t.not(r.err, '');
  }
  const help = await tenantd(['get', '--help'], {});
  t.equal(help.code, 0);
  t.match(help.out, /--server <value>\s+TENANTD_SERVER/);
  t.match(help.out, /5 no such tenant/);
});

t.test('suspend and resume commit through the API with If-Match; the daemon follows', async (t) => {
  const h = await apiHarness(t);
  const cli = against(h);
  const s = await cli(['suspend', 'globex']);
  t.equal(s.code, 0, s.err);
  t.match(s.out, /globex suspended \(commit [0-9a-f]{12}\)/);
  t.match(await gitOut(h.repo, ['show', 'main:tenants/globex.yaml']), /suspend: true/);
  t.equal(await gitOut(h.repo, ['log', '-1', '--format=%an', 'main']), 'alice', 'authored as the token');
  await h.daemon.whenIdle();
  const suspended = await cli(['get', 'globex', '-o', 'json']);
  t.equal((JSON.parse(suspended.out) as { status: string }).status, 'SUSPENDED');
  const commits = await gitOut(h.repo, ['rev-list', '--count', 'main']);
  const again = await cli(['suspend', 'globex']);
  t.equal(again.code, 0);
  t.match(again.out, /already suspended/);
  t.equal(await gitOut(h.repo, ['rev-list', '--count', 'main']), commits, 'no empty commit');

  const r = await cli(['resume', 'globex']);
  t.equal(r.code, 0, r.err);
  t.notMatch(await gitOut(h.repo, ['show', 'main:tenants/globex.yaml']), /suspend/, 'the field is removed (merge patch null)');
  await h.daemon.whenIdle();
  t.match((await cli(['get', 'globex'])).out, /\nglobex\s+ACTIVE\s/);
});

t.test('reconcile asks for a reconcile the daemon handles; status summarises the fleet', async (t) => {
  const h = await apiHarness(t);
  const dir = t.testdir({});
  const tokenFile = path.join(dir, 'token');
  await fsp.writeFile(tokenFile, 'admin\n');
  const cli = (argv: string[]): Promise<Run> => tenantd([...argv, '--server', h.api.url, '--token-file', 'token'], {}, dir);

  const r = await cli(['reconcile', 'initech']);
  t.equal(r.code, 0, r.err);
  const requestedAt = /requestedAt (\S+)\)/.exec(r.out)?.[1];
  t.ok(requestedAt, r.out);
  await h.daemon.whenIdle();
  t.equal((await h.call('GET', '/api/v1/infrastructure/tenants/initech')).body['lastHandledReconcileAt'], requestedAt, 'handled by the daemon');
  t.equal((await cli(['reconcile', 'nobody'])).code, 5);

  const s = await cli(['status']);
  t.equal(s.code, 0, s.err);
  t.match(s.out, `Server:     ${h.api.url}\nReady:      yes\nTenants:    3 (ACTIVE 3)\nDeletions:  none held\n`);
  t.match(s.out, /Every tenant is Ready\./);
  const json = JSON.parse((await cli(['status', '-o', 'json'])).out) as Record<string, unknown>;
  t.match(json, { ready: true, total: 3, counts: { ACTIVE: 3 }, deletionHold: null, notReady: [] });

  await against(h)(['suspend', 'globex']);
  await h.daemon.whenIdle();
  const after = await cli(['status']);
  t.match(after.out, /Tenants: {4}3 \(ACTIVE 2, SUSPENDED 1\)/);
});

t.test('as a person runs it: the tenantd process prints the table on stdout and exits with the code', async (t) => {
  const h = await apiHarness(t);
  const env = { TENANTD_SERVER: h.api.url, TENANTD_TOKEN: 'admin' };
  const ok = spawnTenantd(['get', 'globex', '-o', 'json'], env);
  t.match(await ok.exited, { code: 0 }, ok.stderr());
  t.match(JSON.parse(ok.stdout()), { tenantId: 'globex', status: 'ACTIVE' });
  const missing = spawnTenantd(['get', 'no-such-tenant'], env);
  t.match(await missing.exited, { code: 5 }, 'an unknown tenant is exit 5');
  t.equal(missing.stdout(), '', 'nothing on stdout');
  t.match(missing.stderr(), /no-such-tenant/, 'the error names it on stderr');
  const denied = spawnTenantd(['status'], { ...env, TENANTD_TOKEN: 'wrong' });
  t.match(await denied.exited, { code: 4 }, 'a bad token is exit 4');
});
