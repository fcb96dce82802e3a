/**
 * Raw requests to an API server with a KubeConfig's credentials, for what the tests do that tenantd
 * never does: write a workload's `status` subresource (the kubelet's and controllers' job; there is
 * no kubelet here), create PersistentVolumes, forward requests through the recording proxy.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export interface KubeResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON, or the text when it is not JSON. */
  body: unknown;
  raw: Buffer;
}

export interface KubeRequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string>;
  timeoutMs?: number;
}

/** The request options (URL, agent settings, auth headers) for `path` on the context's server. */
export async function requestOptionsFor(kc: KubeConfig, method: string, path: string): Promise<{ url: URL; options: https.RequestOptions }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(path, cluster.server);
  const options: https.RequestOptions = { method, headers: {} };
  await kc.applyToHTTPSOptions(options);
  return { url, options };
}

export async function kubeRequest(kc: KubeConfig, method: string, path: string, opts: KubeRequestOptions = {}): Promise<KubeResponse> {
  const { url, options } = await requestOptionsFor(kc, method, path);
  for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
  const payload = opts.body === undefined ? undefined : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
  const headers: http.OutgoingHttpHeaders = { ...(options.headers as http.OutgoingHttpHeaders), accept: 'application/json' };
  if (payload) {
    headers['content-type'] = opts.contentType ?? 'application/json';
    headers['content-length'] = payload.length;
  }
  const lib = url.protocol === 'http:' ? http : https;
  return new Promise<KubeResponse>((resolve, reject) => {
    const req = lib.request(url, { ...options, headers, timeout: opts.timeoutMs ?? 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        let body: unknown = raw.toString('utf8');
        try {
          body = JSON.parse(body as string) as unknown;
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, raw });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${opts.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Like kubeRequest, but a non-2xx answer is an error naming the request and the server's message. */
export async function kubeOk(kc: KubeConfig, method: string, path: string, opts: KubeRequestOptions = {}): Promise<Record<string, unknown>> {
  const res = await kubeRequest(kc, method, path, opts);
  if (res.status < 200 || res.status > 299) {
    const message = typeof res.body === 'object' && res.body !== null ? String((res.body as { message?: unknown }).message) : String(res.body);
    throw new Error(`${method} ${path}: HTTP ${res.status}: ${message}`);
  }
  return (typeof res.body === 'object' && res.body !== null ? res.body : {}) as Record<string, unknown>;
}
