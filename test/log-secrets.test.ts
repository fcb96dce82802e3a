/**
 * Secrets stay out of logs in every log format: real daemon processes with a bootstrap admin token
 * (or a JWT secret), a git token for an http remote and a webhook secret, driven through a
 * reconcile with an INVALID tenant, signed and forged webhooks and API calls. No secret may appear
 * in any line of stdout, nor the bootstrap token on stderr; with --log-format json every stdout
 * line is a JSON document with a `level` and a `msg`.
 */
import { createHmac } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { signGeneric } from '../api/webhooks/index.js';
import { exampleFiles } from './helpers/daemon.js';
import { makeBareRemote } from './helpers/git-fixtures.js';
import { startGitHttpServer } from './helpers/git-http-server.js';
import { spawnTenantd, waitFor } from './helpers/process.js';

// Real daemon processes through the TypeScript loader: minutes on a loaded 2-core machine.
t.setTimeout(600_000);

const GIT_TOKEN = 'git-token-0123456789abcdef';
const WEBHOOK_SECRET = 'webhook-secret-0123456789abcdef';
const JWT_SECRET = 'jwt-secret-0123456789abcdef-0123456789';

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
function hs256(payload: Record<string, unknown>): string {
  const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', JWT_SECRET).update(input).digest('base64url')}`;
}

for (const format of ['json', 'human'] as const) {
  for (const auth of ['bootstrap', 'jwt'] as const) {
    t.test(`--log-format ${format}, ${auth === 'bootstrap' ? 'bootstrap admin token' : 'JWT secret'}: no secret on stdout`, async (t) => {
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'tenantd-secrets-'));
      const projects = path.join(dir, 'projects');
      await fsp.mkdir(projects);
      const files = { ...(await exampleFiles()), 'tenants/broken.yaml': 'apiVersion: tenantd.io/v1alpha1\nkind: TenantInfrastructure\nmetadata: { tenantId: broken }\nspec: { tier: gold }\n' };
      await makeBareRemote(projects, 'tenants.git', files);
      const server = await startGitHttpServer(projects, { auth: { token: GIT_TOKEN } });
      const dataDir = path.join(dir, 'data');
      const env: Record<string, string> = { TENANTD_GIT_TOKEN: GIT_TOKEN, TENANTD_WEBHOOK_SECRET: WEBHOOK_SECRET, ...(auth === 'jwt' ? { TENANTD_JWT_SECRET: JWT_SECRET } : {}) };
      const p = spawnTenantd(['daemon', '--repo', `${server.url}/tenants.git`, '--data-dir', dataDir, '--poll', '0', '--host', '127.0.0.1', '--port', '0', '--log-format', format], env);
      t.teardown(async () => {
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
        await server.close();
        await fsp.rm(dir, { recursive: true, force: true });
      });
      await waitFor(() => /API on (http:\/\/127\.0\.0\.1:\d+)/.test(p.stdout()), 180_000, 'the API to listen').catch((err: unknown) => {
        t.comment(p.output());
        throw err;
      });
      const url = /API on (http:\/\/127\.0\.0\.1:\d+)/.exec(p.stdout())?.[1] as string;
      const secrets = [GIT_TOKEN, WEBHOOK_SECRET, JWT_SECRET];
      let credential: string;
      if (auth === 'bootstrap') {
        const tokenFile = path.join(dataDir, 'admin-token');
        t.match(p.stderr(), tokenFile, 'stderr says where the admin token is');
        credential = (await fsp.readFile(tokenFile, 'utf8')).trim();
        t.equal((await fsp.stat(tokenFile)).mode & 0o777, 0o600, 'the token file has mode 0600');
        t.notMatch(p.stderr(), credential, 'the token itself is not on stderr either');
        secrets.push(credential);
      } else {
        credential = hs256({ sub: 'ci', scope: 'admin', exp: Math.floor(Date.now() / 1000) + 3600 });
      }
      const api = (method: string, route: string, opts: { token?: string; body?: string; headers?: Record<string, string> } = {}) =>
        fetch(`${url}/api/v1${route}`, {
          method,
          headers: { 'Content-Type': 'application/json', ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}), ...opts.headers },
          ...(opts.body ? { body: opts.body } : {}),
        });
      await waitFor(async () => ((await (await api('GET', '/infrastructure/tenants/initech', { token: credential })).json()) as { status?: string }).status === 'ACTIVE', 60_000, 'initech ACTIVE');
      t.equal((await api('GET', '/infrastructure/tenants', { token: 'tdk_wrong' })).status, 401, 'a wrong token is refused');
      const push = JSON.stringify({ ref: 'refs/heads/main' });
      t.equal((await api('POST', '/webhooks/generic', { body: push, headers: { 'x-tenantd-signature': signGeneric(push, WEBHOOK_SECRET) } })).status, 202, 'a signed webhook is accepted');
      t.equal((await api('POST', '/webhooks/generic', { body: push, headers: { 'x-tenantd-signature': signGeneric(push, 'forged') } })).status, 401, 'a forged webhook is refused');
      t.equal((await api('POST', '/webhooks/gitlab', { body: push, headers: { 'x-gitlab-token': 'wrong', 'x-gitlab-event': 'Push Hook' } })).status, 401, 'a wrong GitLab token is refused');
      await waitFor(() => /broken/.test(p.stdout()), 30_000, 'the INVALID tenant reported');
      p.child.kill('SIGTERM');
      t.equal((await p.exited).code, 0, 'stopped cleanly');

      const lines = p.stdout().split('\n').filter((l) => l.length > 0);
      t.ok(lines.length > 20, `${lines.length} stdout lines`);
      for (const secret of secrets) t.notOk(p.stdout().includes(secret), `no ${secret.slice(0, 10)}… on stdout`);
      if (format === 'json') {
        const bad = lines.filter((l) => {
          try {
            const v = JSON.parse(l) as { level?: unknown; msg?: unknown };
            return !['error', 'warn', 'info'].includes(v.level as string) || typeof v.msg !== 'string' || v.msg === '';
          } catch {
            return true;
          }
        });
        t.same(bad, [], 'every stdout line is JSON with a level and a msg');
        const parsed = lines.map((l) => JSON.parse(l) as { level: string; type?: string; to?: string; tenantId?: string });
        t.ok(parsed.some((e) => e.level === 'warn' && e.type === 'StatusChanged' && e.to === 'INVALID' && e.tenantId === 'broken'), 'INVALID is a warn line');
        t.ok(parsed.some((e) => e.level === 'info' && e.type === 'PhaseCompleted'), 'phases are info lines');
      }
    });
  }
}
