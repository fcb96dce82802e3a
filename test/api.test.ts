import t from 'tap';
import { PHASES } from '../core/phases.js';
import { apiHarness } from './helpers/api.js';
import { gitOut } from './helpers/git-fixtures.js';
import { SEED, SEED_BODY, SEED_PATH, UUID } from './helpers/seed.js';

const T = '/api/v1/infrastructure/tenants';

const commitCount = async (repo: string): Promise<number> => Number(await gitOut(repo, ['rev-list', '--count', 'main']));

t.test('POST provision with the seed body, byte for byte, commits the file, answers 202, and the tenant reconciles to ACTIVE', async (t) => {
  const h = await apiHarness(t);
  // The seed's curl: these headers, this path, the body exactly as its -d argument.
  const res = await h.call('POST', SEED_PATH, { raw: SEED_BODY, headers: { 'Content-Type': 'application/json' } });
  t.equal(res.status, 202, JSON.stringify(res.body));
  t.equal(res.headers.get('location'), `${T}/550e8400`);
  t.match(res.body, { commit: /^[0-9a-f]{40}$/, requestId: String, tenant: { tenantId: '550e8400', status: 'PENDING', reconciled: false } });
  const commit = res.body['commit'] as string;
  t.match(await gitOut(h.repo, ['show', `${commit}:tenants/550e8400.yaml`]), /tier: professional/);
  t.equal(await gitOut(h.repo, ['log', '-1', '--format=%an', commit]), 'alice', 'authored as the caller');
  t.match(await gitOut(h.repo, ['log', '-1', '--format=%B', commit]), new RegExp(`Request-Id: ${res.body['requestId'] as string}`));

  await h.daemon.whenIdle();
  const get = await h.call('GET', `${T}/550e8400`);
  t.equal(get.status, 200);
  // Every field of the seed's TenantInfrastructure, with the seed's types.
  t.match(get.body, { tenantId: '550e8400', status: 'ACTIVE', cloudProvider: 'AZURE', region: 'eastus', namespace: 'tenant-550e8400', reconciled: true });
  t.same(get.body['configuration'], SEED.configuration, 'configuration is the JSON sent, nothing added or coerced');
  t.match(get.body['id'], UUID, 'id is a UUID');
  t.type(get.body['terraformStateKey'], 'string');
  t.match(get.body['terraformStateKey'], /550e8400/);
  t.match(get.body['spec'], { tier: 'professional', region: 'eastus', cloudProvider: 'AZURE', configuration: SEED.configuration });
  t.same(get.body['warnings'], [], 'a current Azure flexible server size: no warning');
  t.match(get.headers.get('etag'), /^"[0-9a-f]{40}"$/);
  const tr = await h.call('GET', `${T}/550e8400/transitions`);
  const items = tr.body['items'] as Array<{ toState: string; trigger: string }>;
  t.same(items.map((x) => x.toState.split('/')[1]), [...PHASES]);
  t.match(items[0]?.trigger, /^api:[0-9a-f-]+@[0-9a-f]{40}$/, 'the trigger names the API request');

  const again = await h.call('POST', `${T}/550e8400/provision`, { body: SEED });
  t.equal(again.status, 409);
  t.equal(again.body['code'], 'E_TENANT_EXISTS');
  const desired = await h.call('GET', `${T}/550e8400/desired`);
  t.match(desired.body, { tenantId: '550e8400', file: 'tenants/550e8400.yaml', specDigest: /^sha256:/ });
});

t.test('PUT merges into the spec; a stale ETag is 412, a fresh one commits and the tenant goes UPDATING → ACTIVE', async (t) => {
  const h = await apiHarness(t);
  const first = await h.call('GET', `${T}/globex`);
  const etag = first.headers.get('etag') as string;
  const patch = { configuration: { storageGb: 300 } };
  const ok = await h.call('PUT', `${T}/globex`, { body: patch, headers: { 'If-Match': etag, 'Content-Type': 'application/merge-patch+json' } });
  t.equal(ok.status, 202, JSON.stringify(ok.body));
  t.not(ok.headers.get('etag'), etag);
  const before = await commitCount(h.repo);
  const stale = await h.call('PUT', `${T}/globex`, { body: { configuration: { storageGb: 400 } }, headers: { 'If-Match': etag } });
  t.equal(stale.status, 412);
  t.equal(stale.body['code'], 'E_PRECONDITION_FAILED');
  t.equal(await commitCount(h.repo), before, 'no commit');
  await h.daemon.whenIdle();
  const after = await h.call('GET', `${T}/globex`);
  t.match(after.body, { status: 'ACTIVE', configuration: { storageGb: 300, databaseSize: 'Standard_D2ds_v5' } });
  const states = ((await h.call('GET', `${T}/globex/transitions`)).body['items'] as Array<{ toState: string }>).map((x) => x.toState);
  t.same(states.slice(-7), ['UPDATING/Request', 'UPDATING/Plan', 'UPDATING/Apply', 'UPDATING/Deploy', 'UPDATING/Configure', 'UPDATING/Verify', 'ACTIVE/Complete']);
  const invalid = await h.call('PUT', `${T}/globex`, { body: { configuration: { storageGb: 99999 } } });
  t.equal(invalid.status, 422);
  t.match(invalid.body['errors'], [{ path: 'configuration.storageGb' }], 'the whole merged result is validated');
  const removeField = await h.call('PUT', `${T}/globex`, { body: { ingress: null } });
  t.equal(removeField.status, 202, 'null removes a field (merge patch)');
  t.notMatch(await gitOut(h.repo, ['show', 'main:tenants/globex.yaml']), /ingress/);
});

t.test('DELETE needs ?confirm=<id>, is refused under deletion protection, and deprovisions', async (t) => {
  const h = await apiHarness(t);
  const before = await commitCount(h.repo);
  const noConfirm = await h.call('DELETE', `${T}/globex`);
  t.equal(noConfirm.status, 400);
  t.equal(noConfirm.body['code'], 'E_CONFIRMATION_REQUIRED');
  t.match(noConfirm.body['errors'], [{ path: 'confirm' }], 'names the parameter');
  const wrong = await h.call('DELETE', `${T}/globex?confirm=acme-corp`);
  t.equal(wrong.status, 400);
  const protectedOne = await h.call('DELETE', `${T}/acme-corp?confirm=acme-corp`);
  t.equal(protectedOne.status, 409);
  t.equal(protectedOne.body['code'], 'E_DELETION_PROTECTED');
  t.equal(await commitCount(h.repo), before, 'nothing committed');
  const reader = await h.call('DELETE', `${T}/globex?confirm=globex`, { token: 'writer' });
  t.equal(reader.status, 403, 'deleting needs tenants:delete');
  const ok = await h.call('DELETE', `${T}/globex?confirm=globex`);
  t.equal(ok.status, 202);
  await h.daemon.whenIdle();
  t.equal((await h.call('GET', `${T}/globex`)).body['status'], 'DEPROVISIONED');
  t.equal((await h.call('DELETE', `${T}/globex?confirm=globex`)).status, 404);
});

t.test('50 concurrent writes to different tenants all land as commits', async (t) => {
  const h = await apiHarness(t);
  const before = await commitCount(h.repo);
  const ids = Array.from({ length: 50 }, (_, i) => `burst-${i}`);
  const results = await Promise.all(ids.map((id) => h.call('POST', `${T}/${id}/provision`, { body: SEED })));
  t.same(results.map((r) => r.status), ids.map(() => 202));
  t.equal(new Set(results.map((r) => r.body['commit'])).size, 50, 'each its own commit');
  const files = (await gitOut(h.repo, ['ls-tree', '--name-only', 'main', 'tenants/'])).split('\n');
  for (const id of ids) t.ok(files.includes(`tenants/${id}.yaml`), `${id} landed`);
  t.ok((await commitCount(h.repo)) >= before + 50);
  await h.daemon.whenIdle();
  t.equal((await h.call('GET', `${T}?status=ACTIVE&limit=500`)).body['total'], 53);
});

t.test('hostile input gets its status code and a problem document, and changes nothing', async (t) => {
  const h = await apiHarness(t);
  const before = await commitCount(h.repo);
  const cases: Array<[string, string, Parameters<typeof h.call>[2], number, string]> = [
    ['POST', `${T}/UPPER/provision`, { body: SEED }, 400, 'E_BAD_TENANT_ID'],
    ['POST', `${T}/..%2F..%2Fetc/provision`, { body: SEED }, 400, 'E_BAD_TENANT_ID'],
    ['GET', `${T}/${'a'.repeat(64)}`, {}, 400, 'E_BAD_TENANT_ID'],
    ['POST', `${T}/-bad-/provision`, { body: SEED }, 400, 'E_BAD_TENANT_ID'],
    ['POST', `${T}/big/provision`, { raw: JSON.stringify({ ...SEED, pad: 'x'.repeat(100_000) }), headers: { 'Content-Type': 'application/json' } }, 413, 'E_BODY_TOO_LARGE'],
    ['POST', `${T}/xml/provision`, { raw: '<tenant/>', headers: { 'Content-Type': 'application/xml' } }, 415, 'E_UNSUPPORTED_MEDIA_TYPE'],
    ['POST', `${T}/broken/provision`, { raw: '{"tier":', headers: { 'Content-Type': 'application/json' } }, 400, 'E_BAD_JSON'],
    ['POST', `${T}/invalid/provision`, { body: { ...SEED, tier: 'gold', extra: 1 } }, 422, 'E_VALIDATION'],
    ['POST', `${T}/array/provision`, { body: [1, 2] }, 422, 'E_VALIDATION'],
    ['POST', `${T}/proto/provision`, { raw: '{"__proto__":{"tier":"x"}}', headers: { 'Content-Type': 'application/json' } }, 422, 'E_VALIDATION'],
    ['POST', `${T}/noauth/provision`, { body: SEED, token: null }, 401, 'E_AUTH_MISSING'],
    ['POST', `${T}/badtoken/provision`, { body: SEED, token: 'forged' }, 401, 'E_AUTH_INVALID'],
    ['POST', `${T}/reader/provision`, { body: SEED, token: 'reader' }, 403, 'E_FORBIDDEN_SCOPE'],
    ['GET', `${T}/nobody`, {}, 404, 'E_TENANT_NOT_FOUND'],
    ['GET', `/api/v1/nothing-here`, {}, 404, 'E_NOT_FOUND'],
    ['PATCH', `${T}/globex`, { body: {} }, 405, 'E_METHOD_NOT_ALLOWED'],
    ['GET', `${T}?limit=lots`, {}, 400, 'E_BAD_QUERY'],
    ['GET', `${T}?status=HAPPY`, {}, 400, 'E_BAD_QUERY'],
  ];
  for (const [method, url, opts, status, code] of cases) {
    const res = await h.call(method, url, opts);
    t.equal(res.status, status, `${method} ${url.slice(0, 60)} → ${status}`);
    t.match(res.body, { type: /^https:\/\/tenantd\.io\/problems\//, title: String, status, code, detail: String, requestId: String }, 'a problem document');
    t.match(res.headers.get('content-type'), /^application\/problem\+json/);
    t.notMatch(JSON.stringify(res.body), /at .*\.ts:\d+/, 'no stack trace');
  }
  const invalid = await h.call('POST', `${T}/invalid/provision`, { body: { ...SEED, tier: 'gold', extra: 1 } });
  t.match(invalid.body['errors'], [{ path: String, message: String }]);
  t.ok((invalid.body['errors'] as Array<{ path: string }>).some((e) => e.path === 'tier'), 'field path in body terms');
  t.equal(await commitCount(h.repo), before, 'nothing was committed');
  t.equal((await gitOut(h.repo, ['status', '--porcelain'])), '');
});

t.test('Idempotency-Key: a retried POST returns the first answer and makes no second commit', async (t) => {
  const h = await apiHarness(t);
  const headers = { 'Idempotency-Key': 'create-idem-1' };
  const first = await h.call('POST', `${T}/idem/provision`, { body: SEED, headers });
  const count = await commitCount(h.repo);
  const second = await h.call('POST', `${T}/idem/provision`, { body: SEED, headers });
  t.equal(second.status, 202);
  t.equal(second.body['commit'], first.body['commit']);
  t.equal(second.headers.get('idempotent-replayed'), 'true');
  t.equal(await commitCount(h.repo), count, 'no second commit');
  const other = await h.call('POST', `${T}/idem/provision`, { body: { ...SEED, tier: 'enterprise' }, headers });
  t.equal(other.status, 422);
  t.equal(other.body['code'], 'E_IDEMPOTENCY_MISMATCH');
});

t.test('a tenant whose commit is not reconciled yet says so plainly', async (t) => {
  const h = await apiHarness(t);
  // Stop reconciling: the commit lands but no reconcile picks it up.
  h.daemon.queue.pause();
  const res = await h.call('POST', `${T}/later/provision`, { body: SEED });
  t.equal(res.status, 202);
  const get = await h.call('GET', `${T}/later`);
  t.match(get.body, { status: 'PENDING', reconciled: false, desiredCommit: res.body['commit'], observedCommit: null, id: null });
});

t.test('the SSE stream delivers the phase events of a reconcile as it happens', async (t) => {
  const h = await apiHarness(t);
  const controller = new AbortController();
  const res = await fetch(`${h.api.url}/api/v1/events?tenant=streamed`, { headers: { Authorization: 'Bearer reader' }, signal: controller.signal });
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/event-stream/);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const seen: string[] = [];
  const reading = (async () => {
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += Buffer.from(value).toString();
      for (let i = buf.indexOf('\n\n'); i !== -1; i = buf.indexOf('\n\n')) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (data) {
          const e = JSON.parse(data) as { type: string; tenantId?: string; phase?: string; to?: string };
          t.equal(e.tenantId, 'streamed', 'filtered by tenant');
          seen.push(e.type === 'PhaseStarted' ? `start:${e.phase}` : e.type === 'StatusChanged' ? `status:${e.to}` : e.type);
          if (e.type === 'StatusChanged' && e.to === 'ACTIVE') return;
        }
      }
    }
  })();
  await h.call('POST', `${T}/streamed/provision`, { body: SEED });
  await reading;
  controller.abort();
  t.same(
    seen.filter((s) => s.startsWith('start:')),
    ['start:Request', 'start:Plan', 'start:Apply', 'start:Deploy', 'start:Configure', 'start:Verify'],
  );
  t.ok(seen.includes('status:PROVISIONING') && seen.at(-1) === 'status:ACTIVE');
});

t.test('force a reconcile, list and page, health, readiness, metrics', async (t) => {
  const h = await apiHarness(t);
  const rec = await h.call('POST', `${T}/globex/reconcile`, { token: 'writer' });
  t.equal(rec.status, 202);
  t.match(rec.body['trigger'], /^api:/);
  t.equal((await h.call('POST', `${T}/nobody/reconcile`)).status, 404);
  const page1 = await h.call('GET', `${T}?limit=2`, { token: 'reader' });
  t.same((page1.body['items'] as Array<{ tenantId: string }>).map((x) => x.tenantId), ['acme-corp', 'globex']);
  t.equal(page1.body['total'], 3);
  const page2 = await h.call('GET', page1.body['next'] as string, { token: 'reader' });
  t.same((page2.body['items'] as Array<{ tenantId: string }>).map((x) => x.tenantId), ['initech']);
  t.equal(page2.body['next'], null);
  t.same(page1.body['counts'], { ACTIVE: 3 }, 'counts per status over the whole fleet');
  const byName = await h.call('GET', `${T}?q=GLOBEX%20corp`, { token: 'reader' });
  t.same((byName.body['items'] as Array<{ tenantId: string; name: string }>).map((x) => [x.tenantId, x.name]), [['globex', 'Globex Corporation']], 'q matches names, case-insensitively');
  const byId = await h.call('GET', `${T}?q=tech`, { token: 'reader' });
  t.same((byId.body['items'] as Array<{ tenantId: string }>).map((x) => x.tenantId), ['initech']);
  t.match((byId.body['items'] as Array<Record<string, unknown>>)[0], { labels: Object, lastTransitionTime: /^\d{4}-/ });
  t.equal((await h.call('GET', '/healthz', { token: null })).status, 200);
  t.same((await h.call('GET', '/readyz', { token: null })).body, { ready: true });
  const metrics = await fetch(`${h.api.url}/metrics`).then((r) => r.text());
  t.match(metrics, /tenantd_reconciles_total\{result="converged"\} 3/);
  t.match(metrics, /tenantd_phase_duration_seconds_count\{phase="Apply"\} 3/);
  t.match(metrics, /tenantd_queue_depth \d/);
  t.match(metrics, /tenantd_tenants\{status="ACTIVE"\} 3/);
  t.match(metrics, /tenantd_git_fetch_duration_seconds_count \d/);
  t.match(metrics, /tenantd_git_push_duration_seconds_count\{kind="status"\} 1/);
});

t.test('readyz is false while the repository cannot be reached', async (t) => {
  const h = await apiHarness(t);
  const { promises: fsp } = await import('node:fs');
  await fsp.rename(`${h.repo}/.git`, `${h.repo}/.git-away`);
  await h.daemon.poll();
  const res = await h.call('GET', '/readyz', { token: null });
  t.equal(res.status, 503);
  await fsp.rename(`${h.repo}/.git-away`, `${h.repo}/.git`);
  await h.daemon.poll();
  t.equal((await h.call('GET', '/readyz', { token: null })).status, 200);
});

t.test('every route is in /openapi.json', async (t) => {
  const h = await apiHarness(t, { start: false });
  const doc = (await h.call('GET', '/openapi.json', { token: null })).body as { openapi: string; paths: Record<string, Record<string, unknown>> };
  t.equal(doc.openapi, '3.1.0');
  const routes = h.api.routes;
  t.ok(routes.length >= 12, `${routes.length} routes`);
  for (const r of routes) t.ok(doc.paths[r.path]?.[r.method.toLowerCase()], `${r.method} ${r.path} documented`);
  const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
  t.same(documented.sort(), routes.map((r) => `${r.method} ${r.path}`).sort(), 'and nothing else');
});

t.test('a signed GitHub push webhook triggers a reconcile named after the delivery; a forged one is 401 and triggers nothing', async (t) => {
  const secret = 'webhook-secret-for-tests';
  const h = await apiHarness(t, { api: { webhookSecrets: [secret] } });
  const { createHmac } = await import('node:crypto');
  const { commitFiles } = await import('./helpers/git-fixtures.js');
  const { tenantYaml } = await import('./helpers/tenants.js');
  const send = (body: object, headers: Record<string, string>, sign = secret) => {
    const raw = JSON.stringify(body);
    const sig = `sha256=${createHmac('sha256', sign).update(raw).digest('hex')}`;
    return h.call('POST', '/api/v1/webhooks/github', { token: null, raw, headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': sig, ...headers } });
  };

  const sha = await commitFiles(h.repo, { 'tenants/hooked.yaml': tenantYaml('hooked') }, 'add hooked');
  const forged = await send({ ref: 'refs/heads/main', after: sha }, { 'X-GitHub-Event': 'push', 'X-GitHub-Delivery': 'd-forged' }, 'wrong-secret');
  t.equal(forged.status, 401);
  t.equal(forged.body['code'], 'E_WEBHOOK_SIGNATURE');
  const unsigned = await h.call('POST', '/api/v1/webhooks/github', { token: null, raw: '{}', headers: { 'Content-Type': 'application/json', 'X-GitHub-Event': 'push' } });
  t.equal(unsigned.status, 401);
  t.not(h.daemon.loader.commit, sha, 'nothing was fetched');
  t.equal(h.daemon.store.get('hooked'), undefined);

  const ping = await send({ zen: 'hi' }, { 'X-GitHub-Event': 'ping', 'X-GitHub-Delivery': 'd-ping' });
  t.equal(ping.status, 200);
  const other = await send({ ref: 'refs/heads/feature', after: sha }, { 'X-GitHub-Event': 'push', 'X-GitHub-Delivery': 'd-other' });
  t.equal(other.status, 200);
  t.equal(other.body['status'], 'ignored');

  const ok = await send({ ref: 'refs/heads/main', after: sha }, { 'X-GitHub-Event': 'push', 'X-GitHub-Delivery': 'd-1' });
  t.equal(ok.status, 202);
  await h.daemon.whenIdle();
  t.equal(h.daemon.store.get('hooked')?.status, 'ACTIVE');
  const first = (await h.daemon.log.read('hooked'))[0];
  t.equal(first?.trigger, `webhook:d-1@${sha}`, 'the transitions name the delivery');

  const again = await send({ ref: 'refs/heads/main', after: sha }, { 'X-GitHub-Event': 'push', 'X-GitHub-Delivery': 'd-1' });
  t.equal(again.status, 200);
  t.equal(again.body['status'], 'duplicate', 'a redelivery is acknowledged, not acted on twice');
  t.equal((await h.call('POST', '/api/v1/webhooks/svn', { token: null, raw: '{}', headers: { 'Content-Type': 'application/json' } })).status, 404);
});

t.test('transitions: the newest one shows even in the moment it is only in the record (written before the log)', async (t) => {
  const h = await apiHarness(t);
  const record = h.daemon.store.get('globex');
  if (!record?.lastTransition) throw new Error('globex has no record');
  const before = await h.call('GET', `${T}/globex/transitions`);
  const logged = before.body['total'] as number;
  t.equal(logged, 7);
  // The reconciler's order: the record (with its lastTransition) first, then the log append.
  const pending = { ...record.lastTransition, id: 'pending-transition', fromState: 'ACTIVE/Complete', toState: 'UPDATING/Request', trigger: 'commit:next' };
  await h.daemon.store.put({ ...record, status: 'UPDATING', phase: 'Request', lastTransition: pending });
  const all = await h.call('GET', `${T}/globex/transitions`);
  t.equal(all.body['total'], 8);
  t.same((all.body['items'] as Array<{ id: string }>).map((x) => x.id).slice(-1), ['pending-transition'], 'listed last, after the logged ones');
  const firstPage = await h.call('GET', `${T}/globex/transitions?limit=7`);
  t.notOk((firstPage.body['items'] as Array<{ id: string }>).some((x) => x.id === 'pending-transition'), 'not on a page that ends before it');
  const lastPage = await h.call('GET', `${T}/globex/transitions?offset=7&limit=5`);
  t.same((lastPage.body['items'] as Array<{ id: string }>).map((x) => x.id), ['pending-transition']);
  await h.daemon.log.append(pending);
  const appended = await h.call('GET', `${T}/globex/transitions`);
  t.equal(appended.body['total'], 8, 'once appended it is counted once');
  t.equal((appended.body['items'] as Array<{ id: string }>).filter((x) => x.id === 'pending-transition').length, 1);
});
