/**
 * A standby's API under leader election: reads are answered from what it follows of the shared
 * data dir; writes (and the live event stream, which only the leader produces) are forwarded to
 * the leader's advertised URL, so a client behind one Service over both replicas never sees the
 * difference. Forwarding, not redirecting: a redirect would send the client to a pod address it
 * may not reach and make it resend its token to another host (curl drops it on a redirect).
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { problemOf } from '../api/problem.js';
import { TenantdError } from '../core/errors.js';

/** Marks a forwarded request, so a replica that is not the leader either never forwards it twice. */
export const FORWARDED_BY = 'x-tenantd-forwarded-by';
/** On a forwarded response: the replica that answered it. */
export const ANSWERED_BY = 'x-tenantd-leader';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, never the forwarded message. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

const endToEnd = (headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders => Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_BY_HOP.has(k)));

export interface ForwardingOptions {
  /** This replica's holder identity. */
  identity: string;
  /** Whether this replica stands by now (false: it leads, or there is no election). */
  standby: () => boolean;
  /** The leader as last seen in the Lease: identity and advertised URL, null when none. */
  leader: () => { identity: string; url: string | null } | null;
}

/** What a standby does not answer itself: every write, and the event stream. */
export function mustForward(req: http.IncomingMessage): boolean {
  const url = req.url ?? '/';
  return !READ_METHODS.has(req.method ?? 'GET') || url === '/api/v1/events' || url.startsWith('/api/v1/events?');
}

/** Wraps an HTTP handler: on a standby, requests that `mustForward` go to the leader instead. */
export function forwardingHandler(opts: ForwardingOptions, local: http.RequestListener): http.RequestListener {
  return (req, res) => {
    if (!opts.standby() || !mustForward(req)) return void local(req, res);
    const leader = opts.leader();
    if (req.headers[FORWARDED_BY] !== undefined || !leader?.url || leader.identity === opts.identity) {
      const why = req.headers[FORWARDED_BY] !== undefined ? `it was forwarded here by ${String(req.headers[FORWARDED_BY])}, and this replica does not lead either` : 'no replica holds the leader Lease now';
      return refuse(res, new TenantdError('E_NO_LEADER', 'waiting', `${req.method} ${req.url} needs the leader: ${why}; try again in a few seconds`));
    }
    forward(req, res, leader as { identity: string; url: string }, opts.identity);
  };
}

function forward(req: http.IncomingMessage, res: http.ServerResponse, leader: { identity: string; url: string }, identity: string): void {
  const target = new URL(req.url ?? '/', leader.url);
  const headers: http.OutgoingHttpHeaders = { ...endToEnd(req.headers), host: target.host, [FORWARDED_BY]: identity };
  const streaming = mustForward(req) && READ_METHODS.has(req.method ?? 'GET');
  const upstream = http.request(target, { method: req.method, headers, ...(streaming ? {} : { timeout: 30_000 }) }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, { ...endToEnd(answer.headers), [ANSWERED_BY]: leader.identity });
    answer.pipe(res);
  });
  upstream.on('timeout', () => upstream.destroy(new Error('no answer within 30 s')));
  upstream.on('error', (err) => {
    if (res.headersSent) return void res.destroy(err);
    refuse(res, new TenantdError('E_LEADER_UNREACHABLE', 'retryable', `the leader ${leader.identity} at ${leader.url} cannot be reached: ${err.message}`));
  });
  // A client that goes away (an event stream closed) closes the forwarded request too.
  res.on('close', () => upstream.destroy());
  req.pipe(upstream);
}

function refuse(res: http.ServerResponse, err: TenantdError): void {
  const problem = problemOf(err, randomUUID());
  res.writeHead(problem.status, { 'content-type': 'application/problem+json', 'retry-after': '2' });
  res.end(JSON.stringify(problem));
}
