import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import type { ApiAuthenticator, ApiPrincipal } from '../../api/app.js';
import { TenantdError } from '../../core/errors.js';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../daemon/api-server.js';
import type { DaemonDeps, TenantdDaemon } from '../../daemon/daemon.js';
import { commitFiles, initRepo } from './git-fixtures.js';
import { exampleFiles, openDaemon } from './daemon.js';

/**
 * A fixed set of bearer tokens for API-behaviour tests (a test double of the authenticator; the
 * real one is tested on its own and end to end).
 */
export const TOKENS: Record<string, ApiPrincipal> = {
  admin: { name: 'alice', scopes: ['admin'] },
  reader: { name: 'rita', scopes: ['tenants:read'] },
  writer: { name: 'walt', scopes: ['tenants:read', 'tenants:write'] },
};
export const fixedTokens: ApiAuthenticator = {
  async authenticate(header) {
    if (!header) throw new TenantdError('E_AUTH_MISSING', 'stalled', 'no Authorization header');
    const m = /^Bearer (\S+)$/.exec(header);
    const p = m ? TOKENS[m[1] as string] : undefined;
    if (!p) throw new TenantdError('E_AUTH_INVALID', 'stalled', 'unknown token');
    return p;
  },
};

export interface ApiHarness {
  repo: string;
  daemon: TenantdDaemon;
  api: ApiServer;
  call(method: string, url: string, opts?: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; headers: Headers; body: Record<string, unknown> & { errors?: Array<{ path: string }> } }>;
}

/** A daemon on a fresh repository with the example tenants, its API on 127.0.0.1, both stopped at teardown. */
export async function apiHarness(
  t: Test,
  opts: { start?: boolean; api?: Partial<ApiServerOptions>; files?: Record<string, string>; flags?: string[]; deps?: DaemonDeps } = {},
): Promise<ApiHarness> {
  // Not t.testdir(): its cleanup would run before the daemon stops writing into it.
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'tenantd-api-'));
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  await commitFiles(repo, opts.files ?? (await exampleFiles()), 'examples');
  const { daemon } = await openDaemon(repo, path.join(dir, 'data'), opts.flags, opts.deps);
  const api = await startApiServer(daemon, { host: '127.0.0.1', port: 0, auth: fixedTokens, ...opts.api });
  t.teardown(async () => {
    await api.close();
    await daemon.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });
  if (opts.start !== false) {
    await daemon.start();
    await daemon.whenIdle();
  }
  return {
    repo,
    daemon,
    api,
    async call(method, url, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      const token = o.token === undefined ? 'admin' : o.token;
      if (token) headers['Authorization'] = `Bearer ${token}`;
      let body: string | undefined = o.raw;
      if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers['Content-Type'] ??= 'application/json';
      }
      const res = await fetch(`${api.url}${url}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let parsed: Record<string, unknown> = {};
      try {
        parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        parsed = { text };
      }
      return { status: res.status, headers: res.headers, body: parsed };
    },
  };
}
