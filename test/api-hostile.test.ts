/**
 * Hostile API clients: event streams that never read, too many streams, bad query parameters,
 * weak or empty If-Match, `__proto__` deep in a body.
 */
import net from 'node:net';
import t from 'tap';
import { apiHarness, type ApiHarness } from './helpers/api.js';
import { waitFor } from './helpers/process.js';

const T = '/api/v1/infrastructure/tenants';
const SEED = { tier: 'professional', region: 'eastus', cloudProvider: 'AZURE', configuration: { databaseSize: 'GP_Gen5_2', storageGb: 100, enableHa: true } };

/** An event-stream client over a raw socket that never reads what it is sent. */
function deafClient(h: ApiHarness, token: string): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const { port } = new URL(h.api.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      socket.write(`GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`);
      // Read nothing, ever: the kernel's buffers fill, then the server's.
      socket.pause();
      resolve({ socket, closed: new Promise((r) => socket.once('close', () => r())) });
    });
    socket.once('error', reject);
  });
}

/** A client that reads and counts the events it is sent. */
async function readingClient(h: ApiHarness, token: string, headers: Record<string, string> = {}): Promise<{ ids: number[]; stop: () => void; done: Promise<void> }> {
  const controller = new AbortController();
  const res = await fetch(`${h.api.url}/api/v1/events`, { headers: { Authorization: `Bearer ${token}`, ...headers }, signal: controller.signal });
  if (res.status !== 200) throw new Error(`events answered ${res.status}`);
  const ids: number[] = [];
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const done = (async () => {
    let buf = '';
    for (;;) {
      const r = await reader.read().catch(() => ({ done: true as const, value: undefined }));
      if (r.done) return;
      buf += Buffer.from(r.value).toString();
      for (let i = buf.indexOf('\n\n'); i !== -1; i = buf.indexOf('\n\n')) {
        const id = /^id: (\d+)$/m.exec(buf.slice(0, i))?.[1];
        if (id) ids.push(Number(id));
        buf = buf.slice(i + 2);
      }
    }
  })();
  return { ids, stop: () => controller.abort(), done };
}

const bigEvent = (h: ApiHarness, i: number): void =>
  void h.daemon.publisher.publish({ type: 'PhaseProgress', tenantId: 'acme-corp', operationId: `flood-${i}`, phase: 'Verify', message: 'x'.repeat(64 * 1024) });

t.test('a client that never reads is dropped; one that reads gets everything and can resume', async (t) => {
  const h = await apiHarness(t);
  const deaf = await deafClient(h, 'reader');
  const reading = await readingClient(h, 'admin');
  await waitFor(() => h.api.events.clients === 2, 10_000, 'both event streams to be registered');
  t.equal(h.api.events.clients, 2, 'both connected');
  const before = reading.ids.length;
  let published = 0;
  // Bounded: 400 events of 64 KiB (25 MiB) is far more than any socket buffers hold.
  while (h.api.events.dropped === 0 && published < 400) {
    bigEvent(h, published++);
    await new Promise((r) => setTimeout(r, 2));
  }
  t.equal(h.api.events.dropped, 1, `the deaf client was dropped after ${published} events of 64 KiB`);
  // Reading now drains what the kernel still holds, then the end the server sent.
  deaf.socket.resume();
  await deaf.closed;
  t.pass('its connection was closed by the server');
  t.equal(h.api.events.clients, 1, 'the reading client is still connected');
  const deadline = Date.now() + 10_000;
  while (reading.ids.length < before + published && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const flood = reading.ids.slice(before);
  const firstId = flood[0] ?? 0;
  t.same(flood, Array.from({ length: published }, (_, i) => firstId + i), 'the reader got every event, in order');
  reading.stop();

  // A dropped client resumes: the buffer (1,000 events, here ~9 MiB) is replayed as fast as it reads.
  const resumed = await readingClient(h, 'reader', { 'Last-Event-ID': String(firstId - 1) });
  const until = Date.now() + 10_000;
  while (resumed.ids.length < published && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.same(resumed.ids.slice(0, published), Array.from({ length: published }, (_, i) => firstId + i), 'Last-Event-ID replays what the dropped client missed');
  t.equal(h.api.events.dropped, 1, 'a replay larger than the per-client bound does not drop a client that reads');
  resumed.stop();
});

t.test('event streams per token are capped (429), other tokens are not affected; ?tenant= is validated', async (t) => {
  const h = await apiHarness(t, { api: { events: { maxStreamsPerPrincipal: 2 } } });
  const a = await readingClient(h, 'reader');
  const b = await readingClient(h, 'reader');
  const third = await h.call('GET', '/api/v1/events', { token: 'reader' });
  t.equal(third.status, 429);
  t.match(third.body, { code: 'E_TOO_MANY_STREAMS', status: 429 });
  t.match(third.headers.get('content-type'), /application\/problem\+json/);
  const other = await readingClient(h, 'admin');
  t.pass('another token still gets a stream');
  a.stop();
  await a.done;
  await new Promise((r) => setTimeout(r, 100));
  const again = await readingClient(h, 'reader');
  t.pass('after one closes, the token may open another');
  for (const c of [b, other, again]) c.stop();

  for (const bad of ['..%2Fetc', 'UPPER', 'a'.repeat(80), '-x']) {
    const res = await h.call('GET', `/api/v1/events?tenant=${bad}`, { token: 'reader' });
    t.equal(res.status, 400, `?tenant=${bad.slice(0, 12)}: 400`);
    t.equal(res.body['code'], 'E_BAD_TENANT_ID');
  }
});

t.test('If-Match compares strongly: a weak tag is 412, an empty or malformed value is 400', async (t) => {
  const h = await apiHarness(t);
  const get = await h.call('GET', `${T}/globex`);
  const etag = get.headers.get('etag') as string;
  t.match(etag, /^"[0-9a-f]{40}"$/);
  const put = (ifMatch: string) => h.call('PUT', `${T}/globex`, { body: { configuration: { storageGb: 300 } }, headers: { 'If-Match': ifMatch } });
  const weak = await put(`W/${etag}`);
  t.equal(weak.status, 412, 'W/ tag never matches');
  t.match(weak.body['detail'], /weak tag/);
  t.equal((await put('')).status, 400, 'empty If-Match');
  t.equal((await put('   ')).status, 400, 'blank If-Match');
  t.equal((await put('not-a-tag')).status, 400, 'malformed If-Match');
  t.equal((await put(`"nope", W/${etag}`)).status, 412, 'a list of non-matching and weak tags');
  const del = await h.call('DELETE', `${T}/globex?confirm=globex`, { headers: { 'If-Match': `W/${etag}` } });
  t.equal(del.status, 412, 'DELETE compares strongly too');
  t.equal((await put(`"nope", ${etag}`)).status, 202, 'a list holding the strong tag matches');
});

t.test('__proto__ anywhere in a body is a 422, like at the top level', async (t) => {
  const h = await apiHarness(t);
  const raw = (configuration: string) =>
    h.call('POST', `${T}/protoid/provision`, { raw: `{"tier":"professional","region":"eastus","cloudProvider":"AZURE","configuration":${configuration}}`, headers: { 'Content-Type': 'application/json' } });
  const nested = await raw('{"databaseSize":"GP_Gen5_2","storageGb":100,"enableHa":true,"__proto__":{"polluted":true}}');
  t.equal(nested.status, 422);
  t.match(nested.body['errors'], [{ path: 'configuration.__proto__', message: /not allowed/ }]);
  const top = await h.call('POST', `${T}/protoid/provision`, { raw: `{"__proto__":{"x":1},${JSON.stringify(SEED).slice(1)}`, headers: { 'Content-Type': 'application/json' } });
  t.equal(top.status, 422, 'top level');
  const patch = await h.call('PUT', `${T}/globex`, { raw: '{"configuration":{"__proto__":{"storageGb":1}}}', headers: { 'Content-Type': 'application/merge-patch+json' } });
  t.equal(patch.status, 422, 'nested in a merge patch');
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'no prototype was touched');
});
