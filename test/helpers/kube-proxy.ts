/**
 * A recording, fault-injecting HTTP proxy in front of the real API server: for what a real server
 * will not do on demand (answer the next PATCH with a 500, 404 or 409, say 503 for a while) and to
 * count and inspect the requests tenantd makes. It is a proxy, not a second implementation of
 * Kubernetes: every request it does not fault goes to the real server and the real answer comes
 * back.
 *
 * The client talks plain HTTP to 127.0.0.1 (its kubeconfig sets `insecure-skip-tls-verify: true`,
 * which client-node requires for http://); the proxy forwards over HTTPS with the target cluster's
 * own credentials.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import type { Test } from 'tap';
import { requestOptionsFor } from './kube-http.js';
import { createFault, type Fault, type FaultOptions, type InjectedFault, type RecordedRequest, type RequestMatcher } from './kube-traffic.js';

export type { RecordedRequest, RequestMatcher } from './kube-traffic.js';

export interface KubeProxy {
  readonly url: string;
  /** Points at the proxy; carries no credentials (the proxy adds the upstream's). */
  readonly kubeConfig: KubeConfig;
  readonly requests: RecordedRequest[];
  clearRequests(): void;
  /** Answers the next `times` (default 1) matching requests with a Status of `status`. */
  injectError(match: RequestMatcher, status: number, times?: number, options?: FaultOptions): InjectedFault;
  /** 'drop' (default) resets every connection; '503' answers ServiceUnavailable. */
  setUnreachable(unreachable: boolean, mode?: 'drop' | '503'): void;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

function parseBody(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function statusBody(code: number, options: FaultOptions): string {
  const reason = options.reason ?? REASONS[code] ?? 'InternalError';
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: options.message ?? `injected ${code} ${reason}`, reason, code });
}

export async function startKubeProxy(t: Test, upstream: KubeConfig): Promise<KubeProxy> {
  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  let unreachable: false | 'drop' | '503' = false;
  let next = 1;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const raw = Buffer.concat(chunks);
        const url = new URL(req.url ?? '/', 'http://proxy');
        const query = Object.fromEntries(url.searchParams.entries());
        const record: RecordedRequest = {
          id: next++,
          method: (req.method ?? 'GET').toUpperCase(),
          path: url.pathname,
          query,
          contentType: req.headers['content-type'],
          fieldManager: query.fieldManager,
          dryRun: query.dryRun !== undefined,
          body: parseBody(raw),
          status: 0,
          injected: false,
        };
        requests.push(record);
        if (unreachable === 'drop') {
          req.socket.destroy();
          return;
        }
        if (unreachable === '503') {
          record.status = 503;
          record.injected = true;
          res.writeHead(503, { 'content-type': 'application/json' }).end(statusBody(503, {}));
          return;
        }
        const fault = faults.find((f) => f.matches(record));
        if (fault) {
          fault.fire();
          record.injected = true;
          if (fault.options.drop) {
            req.socket.destroy();
            return;
          }
          record.status = fault.status;
          res.writeHead(fault.status, { 'content-type': 'application/json' }).end(statusBody(fault.status, fault.options));
          return;
        }
        const { url: target, options } = await requestOptionsFor(upstream, record.method, `${url.pathname}${url.search}`);
        const headers: http.OutgoingHttpHeaders = { ...(options.headers as http.OutgoingHttpHeaders) };
        for (const name of ['content-type', 'accept', 'user-agent']) {
          const v = req.headers[name];
          if (v !== undefined) headers[name] = v;
        }
        if (raw.length > 0) headers['content-length'] = raw.length;
        const lib = target.protocol === 'http:' ? http : https;
        const up = lib.request(target, { ...options, headers }, (upRes) => {
          record.status = upRes.statusCode ?? 0;
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        });
        up.on('error', () => {
          record.status = 0;
          req.socket.destroy();
        });
        up.end(raw);
      })().catch(() => req.socket.destroy());
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'kube-proxy', server: url, skipTLSVerify: true }],
    users: [{ name: 'kube-proxy-user' }],
    contexts: [{ name: 'kube-proxy', cluster: 'kube-proxy', user: 'kube-proxy-user' }],
    currentContext: 'kube-proxy',
  });

  return {
    url,
    kubeConfig,
    requests,
    clearRequests: () => void (requests.length = 0),
    injectError(match, status, times = 1, options = {}) {
      const fault = createFault(match, status, times, options);
      faults.push(fault);
      return fault;
    },
    setUnreachable(value, mode = 'drop') {
      unreachable = value ? mode : false;
      if (value && mode === 'drop') for (const s of sockets) s.destroy();
    },
  };
}
