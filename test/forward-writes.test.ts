import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { ANSWERED_BY, FORWARDED_BY, forwardingHandler } from '../daemon/forward-writes.js';
import { freePort } from './helpers/kube-cluster.js';

async function listen(t: Test, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('a standby answers reads itself and forwards writes and the event stream to the leader', async (t) => {
  // The leader: echoes what reached it; /api/v1/events is a stream that stays open.
  const leaderUrl = await listen(t, (req, res) => {
    if (req.url?.startsWith('/api/v1/events')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: hello\ndata: {}\n\n');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(202, { 'content-type': 'application/json', 'x-request-id': 'r1' });
      res.end(JSON.stringify({ method: req.method, url: req.url, by: req.headers[FORWARDED_BY], auth: req.headers.authorization, body: Buffer.concat(chunks).toString() }));
    });
  });
  let standby = true;
  let leader: { identity: string; url: string | null } | null = { identity: 'tenantd-0', url: leaderUrl };
  const url = await listen(
    t,
    forwardingHandler({ identity: 'tenantd-1', standby: () => standby, leader: () => leader }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"answeredBy":"local"}');
    }),
  );

  t.same(await (await fetch(`${url}/api/v1/infrastructure/tenants`)).json(), { answeredBy: 'local' }, 'reads are answered from the standby’s own view');

  const body = JSON.stringify({ requestedAt: 'x' });
  const res = await fetch(`${url}/api/v1/infrastructure/tenants/t1/reconcile?dryRun=1`, { method: 'POST', headers: { authorization: 'Bearer tdk_abc', 'content-type': 'application/json' }, body });
  t.equal(res.status, 202);
  t.equal(res.headers.get(ANSWERED_BY), 'tenantd-0', 'says which replica answered');
  t.equal(res.headers.get('x-request-id'), 'r1', "the leader's headers come back");
  t.same(await res.json(), { method: 'POST', url: '/api/v1/infrastructure/tenants/t1/reconcile?dryRun=1', by: 'tenantd-1', auth: 'Bearer tdk_abc', body }, 'method, path, query, token and body as sent');

  const stream = await fetch(`${url}/api/v1/events`);
  t.equal(stream.headers.get('content-type'), 'text/event-stream');
  const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
  t.match(new TextDecoder().decode((await reader.read()).value), /event: hello/, 'the event stream comes from the leader, as it happens');
  await reader.cancel();

  // A request another replica forwarded is never forwarded again (no loops between two standbys).
  const loop = await fetch(`${url}/api/v1/infrastructure/tenants/t1/reconcile`, { method: 'POST', headers: { [FORWARDED_BY]: 'tenantd-2' } });
  t.equal(loop.status, 503);
  t.match(await loop.json(), { code: 'E_NO_LEADER', detail: /forwarded here by tenantd-2/ });
  t.equal(loop.headers.get('retry-after'), '2');

  leader = null;
  const none = await fetch(`${url}/api/v1/infrastructure/tenants/t1`, { method: 'DELETE' });
  t.equal(none.status, 503, 'no leader: refused, not accepted');
  t.match(await none.json(), { code: 'E_NO_LEADER', status: 503 });

  leader = { identity: 'tenantd-0', url: `http://127.0.0.1:${await freePort()}` };
  const gone = await fetch(`${url}/api/v1/infrastructure/tenants/t1/reconcile`, { method: 'POST' });
  t.equal(gone.status, 502, 'a leader that does not answer');
  t.match(await gone.json(), { code: 'E_LEADER_UNREACHABLE', detail: /tenantd-0/ });

  standby = false;
  t.same(await (await fetch(`${url}/api/v1/infrastructure/tenants/t1/reconcile`, { method: 'POST' })).json(), { answeredBy: 'local' }, 'the leader answers writes itself');
});
