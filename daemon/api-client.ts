import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TenantdError } from '../core/errors.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:8089';

/**
 * Exit codes of the commands that talk to a daemon, from the problem document's `code` (or the
 * client's own): one place, so every command answers a script the same way. Anything else is 1.
 */
const EXIT_CODES: Readonly<Record<string, number>> = {
  E_SERVER_UNREACHABLE: 3,
  E_AUTH_MISSING: 4,
  E_AUTH_INVALID: 4,
  E_FORBIDDEN_SCOPE: 4,
  E_TENANT_NOT_FOUND: 5,
};
export const exitCodeForRemote = (code: string): number | undefined => EXIT_CODES[code];

/** What a person should do about a problem, added to the server's own words. */
const HINTS: Readonly<Record<string, string>> = {
  E_AUTH_MISSING: 'pass --token, --token-file or set TENANTD_TOKEN',
  E_AUTH_INVALID: 'the token was refused: check --token, --token-file or TENANTD_TOKEN',
  E_FORBIDDEN_SCOPE: 'the token lacks the scope this command needs',
};

export interface ApiClientOptions {
  server: string;
  token: string | null;
}

export interface ApiResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** Reads the server URL and token the way every remote command does: flag, then environment. */
export async function clientOptionsFrom(values: { server?: string; token?: string; tokenFile?: string }, env: NodeJS.ProcessEnv, cwd: string): Promise<ApiClientOptions> {
  const server = (values.server ?? env['TENANTD_SERVER'] ?? DEFAULT_SERVER).replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new TenantdError('E_CONFIG', 'stalled', `--server (TENANTD_SERVER) = ${JSON.stringify(server)}: not a URL such as ${DEFAULT_SERVER}`, { field: 'server' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TenantdError('E_CONFIG', 'stalled', `--server (TENANTD_SERVER) = ${JSON.stringify(server)}: must be http:// or https://`, { field: 'server' });
  }
  const file = values.tokenFile ?? (values.token === undefined ? env['TENANTD_TOKEN_FILE'] : undefined);
  let token = values.token ?? null;
  if (token === null && file !== undefined) {
    const abs = path.resolve(cwd, file);
    try {
      token = (await fsp.readFile(abs, 'utf8')).trim();
    } catch (err: unknown) {
      throw new TenantdError('E_CONFIG', 'stalled', `--token-file ${abs}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { field: 'token-file' });
    }
  }
  token ??= env['TENANTD_TOKEN'] ?? null;
  return { server, token: token === '' ? null : token };
}

/** A small client of the REST API: JSON in and out, problem documents turned into coded errors. */
export class ApiClient {
  constructor(private readonly opts: ApiClientOptions) {}

  get server(): string {
    return this.opts.server;
  }

  async request<T>(method: string, route: string, o: { body?: unknown; headers?: Record<string, string>; accept?: number[] } = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { Accept: 'application/json', ...(o.headers ?? {}) };
    if (this.opts.token) headers['Authorization'] = `Bearer ${this.opts.token}`;
    if (o.body !== undefined) headers['Content-Type'] ??= 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.opts.server}${route}`, { method, headers, ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}), signal: AbortSignal.timeout(30_000) });
    } catch (err: unknown) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err instanceof Error ? err.name : String(err));
      throw new TenantdError('E_SERVER_UNREACHABLE', 'retryable', `cannot reach the tenantd API at ${this.opts.server} (${cause}): is the daemon running? Set --server or TENANTD_SERVER`, { server: this.opts.server });
    }
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text ? (JSON.parse(text) as unknown) : null;
    } catch {
      body = text;
    }
    if (res.ok || o.accept?.includes(res.status)) return { status: res.status, headers: res.headers, body: body as T };
    throw problemError(res.status, body, `${method} ${route}`);
  }
}

function problemError(status: number, body: unknown, what: string): TenantdError {
  const p = (typeof body === 'object' && body !== null ? body : {}) as { code?: unknown; detail?: unknown; title?: unknown; errors?: unknown };
  const code = typeof p.code === 'string' ? p.code : `E_HTTP_${status}`;
  const detail = typeof p.detail === 'string' ? p.detail : typeof p.title === 'string' ? p.title : `${what} answered ${status}`;
  const hint = HINTS[code];
  return new TenantdError(code, 'stalled', `${detail}${hint ? ` (${hint})` : ''}`, { status, ...(Array.isArray(p.errors) ? { errors: p.errors } : {}) });
}
