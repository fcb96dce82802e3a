/**
 * A small smart-HTTP git server for tests: Node's http server in front of the real
 * `git http-backend` CGI program, listening on 127.0.0.1 with an ephemeral port.
 *
 * Serves clone, fetch and push (receive-pack is enabled by setting REMOTE_USER) for every
 * repository under `projectRoot`, to isomorphic-git and to native git alike.
 *
 * The CGI child is always spawned asynchronously: a synchronous git child process in the same
 * process as this server would deadlock.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export const GIT_HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';

export interface GitHttpRequestInfo {
  method: string;
  /** path below the server root, e.g. `/tenants.git/info/refs` */
  path: string;
  query: string;
  /** `git-upload-pack` or `git-receive-pack` (from the path or the `service` query) */
  service: string | null;
}

export interface GitHttpServerOptions {
  /**
   * Require credentials: `Authorization: Bearer <token>` or Basic auth whose password is the
   * token (any user name). Requests without them get 401 with a Basic challenge.
   */
  auth?: { token: string };
  /**
   * Called before each request is handed to git-http-backend; may delay it (return a promise),
   * or return a number to answer with that HTTP status instead (simulate a failing server).
   */
  intercept?: (req: GitHttpRequestInfo) => void | number | Promise<void | number>;
}

export interface GitHttpServer {
  url: string;
  /** every request seen, in order (for assertions such as "no request was made") */
  requests: GitHttpRequestInfo[];
  close(): Promise<void>;
}

function serviceOf(pathname: string, query: string): string | null {
  const m = /\/(git-upload-pack|git-receive-pack)$/.exec(pathname);
  if (m?.[1]) return m[1];
  const q = new URLSearchParams(query).get('service');
  return q ?? null;
}

function authorized(header: string | undefined, token: string): boolean {
  if (!header) return false;
  const [scheme, value] = header.split(/\s+/, 2);
  if (!scheme || !value) return false;
  if (scheme.toLowerCase() === 'bearer') return value === token;
  if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const idx = decoded.indexOf(':');
    return idx >= 0 && decoded.slice(idx + 1) === token;
  }
  return false;
}

/** Split a CGI response into status, headers and body. */
function parseCgi(out: Buffer): { status: number; statusText: string; headers: Record<string, string[]>; body: Buffer } {
  let sep = out.indexOf('\r\n\r\n');
  let sepLen = 4;
  const lf = out.indexOf('\n\n');
  if (sep < 0 || (lf >= 0 && lf < sep)) {
    sep = lf;
    sepLen = 2;
  }
  if (sep < 0) return { status: 502, statusText: 'Bad Gateway', headers: {}, body: out };
  const head = out.subarray(0, sep).toString('latin1');
  const body = out.subarray(sep + sepLen);
  let status = 200;
  let statusText = 'OK';
  const headers: Record<string, string[]> = {};
  for (const line of head.split(/\r?\n/)) {
    const idx = line.indexOf(':');
    if (idx <= 0) continue;
    const name = line.slice(0, idx).trim();
    const value = line.slice(idx + 1).trim();
    if (name.toLowerCase() === 'status') {
      const m = /^(\d{3})\s*(.*)$/.exec(value);
      if (m?.[1]) {
        status = Number(m[1]);
        statusText = m[2] ?? '';
      }
    } else {
      (headers[name] ??= []).push(value);
    }
  }
  return { status, statusText, headers, body };
}

export async function startGitHttpServer(projectRoot: string, opts: GitHttpServerOptions = {}): Promise<GitHttpServer> {
  const requests: GitHttpRequestInfo[] = [];
  const children = new Set<ReturnType<typeof spawn>>();

  const server = http.createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const query = u.search.startsWith('?') ? u.search.slice(1) : u.search;
      const info: GitHttpRequestInfo = {
        method: req.method ?? 'GET',
        path: decodeURIComponent(u.pathname),
        query,
        service: serviceOf(u.pathname, query),
      };
      requests.push(info);

      if (opts.auth && !authorized(req.headers.authorization, opts.auth.token)) {
        req.resume();
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"', 'Content-Type': 'text/plain' });
        res.end('authentication required\n');
        return;
      }
      if (opts.intercept) {
        const r = await opts.intercept(info);
        if (typeof r === 'number') {
          req.resume();
          res.writeHead(r, { 'Content-Type': 'text/plain' });
          res.end(`intercepted with ${r}\n`);
          return;
        }
      }

      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: '1',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_COUNT: '1',
        GIT_CONFIG_KEY_0: 'gc.auto',
        GIT_CONFIG_VALUE_0: '0',
        PATH_INFO: info.path,
        QUERY_STRING: query,
        REQUEST_METHOD: info.method,
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_USER: 'tenantd-test',
        REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
        SERVER_PROTOCOL: 'HTTP/1.1',
      };
      if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
      if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
      if (req.headers['git-protocol']) env.GIT_PROTOCOL = String(req.headers['git-protocol']);

      const child = spawn(GIT_HTTP_BACKEND, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      children.add(child);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.stdin.on('error', () => undefined); // backend may exit before reading everything
      req.pipe(child.stdin);
      let done = false;
      child.on('error', (e) => {
        children.delete(child);
        if (done) return;
        done = true;
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`spawn failed: ${e.message}\n`);
      });
      child.on('close', () => {
        children.delete(child);
        if (done) return;
        done = true;
        const parsed = parseCgi(Buffer.concat(out));
        if (parsed.status >= 500 && err.length > 0) parsed.body = Buffer.concat([parsed.body, ...err]);
        res.writeHead(parsed.status, parsed.statusText, parsed.headers);
        res.end(parsed.body);
      });
    })().catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(String(e));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of children) c.kill();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
