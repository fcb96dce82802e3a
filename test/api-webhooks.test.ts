import t from 'tap';
import { createHmac } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DeliveryLog, isRelevantPush, signGeneric, verifyWebhook, type WebhookHeaders } from '../api/webhooks/index.js';

const SECRET = 'webhook-secret-1';
const SHA = 'a'.repeat(40);
const SHA2 = 'b'.repeat(40);
const hmac = (body: Buffer | string, secret = SECRET): string => createHmac('sha256', secret).update(body).digest('hex');
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

/** For each provider: how to sign a body, and the event header values it uses. */
interface ProviderCase {
  name: string;
  sigHeader: string;
  sign: (body: Buffer, secret?: string) => WebhookHeaders;
  push: (branch: string, after: string) => { headers: WebhookHeaders; body: Buffer };
  ping: (() => { headers: WebhookHeaders; body: Buffer }) | null;
  deliveryHeader: string;
}

const cases: ProviderCase[] = [
  {
    name: 'github',
    sigHeader: 'x-hub-signature-256',
    sign: (b, s) => ({ 'x-hub-signature-256': `sha256=${hmac(b, s)}` }),
    push: (branch, after) => ({ headers: { 'x-github-event': 'push', 'x-github-delivery': 'gh-1' }, body: json({ ref: `refs/heads/${branch}`, after, before: SHA2 }) }),
    ping: () => ({ headers: { 'x-github-event': 'ping', 'x-github-delivery': 'gh-ping' }, body: json({ zen: 'Keep it logically awesome.', hook_id: 1 }) }),
    deliveryHeader: 'x-github-delivery',
  },
  {
    name: 'gitlab',
    sigHeader: 'x-gitlab-token',
    sign: (_b, s) => ({ 'x-gitlab-token': s ?? SECRET }),
    push: (branch, after) => ({
      headers: { 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': 'gl-1' },
      body: json({ object_kind: 'push', ref: `refs/heads/${branch}`, after, checkout_sha: after }),
    }),
    ping: null,
    deliveryHeader: 'x-gitlab-event-uuid',
  },
  {
    name: 'gitea',
    sigHeader: 'x-gitea-signature',
    sign: (b, s) => ({ 'x-gitea-signature': hmac(b, s) }),
    push: (branch, after) => ({ headers: { 'x-gitea-event': 'push', 'x-gitea-delivery': 'gt-1' }, body: json({ ref: `refs/heads/${branch}`, after }) }),
    ping: () => ({ headers: { 'x-gitea-event': 'ping', 'x-gitea-delivery': 'gt-ping' }, body: json({}) }),
    deliveryHeader: 'x-gitea-delivery',
  },
  {
    name: 'bitbucket',
    sigHeader: 'x-hub-signature',
    sign: (b, s) => ({ 'x-hub-signature': `sha256=${hmac(b, s)}` }),
    push: (branch, after) => ({
      headers: { 'x-event-key': 'repo:push', 'x-request-uuid': 'bb-1' },
      body: json({ push: { changes: [{ new: { type: 'branch', name: branch, target: { hash: after } }, old: { type: 'branch', name: branch } }] } }),
    }),
    ping: () => ({ headers: { 'x-event-key': 'diagnostics:ping', 'x-request-uuid': 'bb-ping' }, body: json({ test: true }) }),
    deliveryHeader: 'x-request-uuid',
  },
  {
    name: 'generic',
    sigHeader: 'x-tenantd-signature',
    sign: (b, s) => ({ 'x-tenantd-signature': signGeneric(b, s ?? SECRET) }),
    push: (branch, after) => ({ headers: { 'x-tenantd-delivery': 'gen-1' }, body: json({ branch, after }) }),
    ping: () => ({ headers: { 'x-tenantd-event': 'ping', 'x-tenantd-delivery': 'gen-ping' }, body: json({}) }),
    deliveryHeader: 'x-tenantd-delivery',
  },
];

for (const c of cases) {
  t.test(`${c.name}`, async (t) => {
    const { headers, body } = c.push('main', SHA);
    const signed = { ...headers, ...c.sign(body), 'content-type': 'application/json' };

    const d = verifyWebhook(c.name, signed, body, SECRET);
    t.match(d, { provider: c.name, event: 'push', branch: 'main', ref: 'refs/heads/main', after: SHA });
    t.equal(d.deliveryId, headers[c.deliveryHeader]);
    t.match(d.bodyDigest, /^sha256:[0-9a-f]{64}$/);
    t.ok(isRelevantPush(d, 'main'));
    t.notOk(isRelevantPush(d, 'production'));

    // secret rotation: any configured secret verifies
    t.equal(verifyWebhook(c.name, signed, body, ['new-secret', SECRET]).event, 'push');

    // forged: signed with another secret, or a body changed after signing
    t.throws(() => verifyWebhook(c.name, { ...headers, ...c.sign(body, 'attacker') }, body, SECRET), { code: 'E_WEBHOOK_SIGNATURE', data: { reason: 'mismatch' } });
    if (c.name !== 'gitlab') {
      const tampered = c.push('main', SHA2).body;
      t.throws(() => verifyWebhook(c.name, signed, tampered, SECRET), { code: 'E_WEBHOOK_SIGNATURE', data: { reason: 'mismatch' } });
      t.throws(() => verifyWebhook(c.name, { ...headers, [c.sigHeader]: 'sha256=xyz' }, body, SECRET), { code: 'E_WEBHOOK_SIGNATURE', data: { reason: 'malformed' } });
    }
    // missing
    t.throws(() => verifyWebhook(c.name, headers, body, SECRET), { code: 'E_WEBHOOK_SIGNATURE', data: { reason: 'missing' } });
    // duplicated signature header
    const sig = c.sign(body)[c.sigHeader] as string;
    t.throws(() => verifyWebhook(c.name, { ...headers, [c.sigHeader]: [sig, sig] }, body, SECRET), { code: 'E_WEBHOOK_SIGNATURE', data: { reason: 'duplicate' } });
    // header names are case-insensitive
    const upper = Object.fromEntries(Object.entries(signed).map(([k, v]) => [k.toUpperCase(), v]));
    t.equal(verifyWebhook(c.name, upper, body, SECRET).branch, 'main');
    t.equal(verifyWebhook(c.name.toUpperCase(), signed, body, SECRET).provider, c.name);

    // push to another branch: verified, reported, not relevant
    const other = c.push('feature/x', SHA2);
    const od = verifyWebhook(c.name, { ...other.headers, [c.deliveryHeader]: 'other-delivery', ...c.sign(other.body) }, other.body, SECRET);
    t.match(od, { event: 'push', branch: 'feature/x', after: SHA2 });
    t.notOk(isRelevantPush(od, 'main'));

    // ping
    if (c.ping) {
      const p = c.ping();
      const pd = verifyWebhook(c.name, { ...p.headers, ...c.sign(p.body) }, p.body, SECRET);
      t.match(pd, { event: 'ping', branch: null, after: null, ref: null });
      t.notOk(isRelevantPush(pd, 'main'));
    }

    // unparsable JSON, correctly signed
    const bad = Buffer.from('{"ref": ');
    t.throws(() => verifyWebhook(c.name, { ...headers, ...c.sign(bad) }, bad, SECRET), { code: 'E_WEBHOOK_PAYLOAD' });
    // but an unsigned bad body is a signature error: nothing unauthenticated is parsed
    t.throws(() => verifyWebhook(c.name, headers, bad, SECRET), { code: 'E_WEBHOOK_SIGNATURE' });

    // no delivery header: the body digest stands in
    const noId = Object.fromEntries(Object.entries(signed).filter(([k]) => k !== c.deliveryHeader));
    t.equal(verifyWebhook(c.name, noId, body, SECRET).deliveryId, d.bodyDigest);

    // replay detection, across a reload from disk
    const file = path.join(t.testdir({}), 'webhook-deliveries.json');
    const log = await DeliveryLog.open({ file });
    t.notOk(log.seenDelivery(d), 'first delivery is new');
    t.ok(log.seenDelivery(d), 'redelivery is seen');
    await log.flush();
    const reloaded = await DeliveryLog.open({ file });
    t.ok(reloaded.seenDelivery(d), 'still seen after a restart');
    t.ok(reloaded.seen(c.name, d.deliveryId));
    const replayedWithNewId = verifyWebhook(c.name, { ...signed, [c.deliveryHeader]: 'forged-new-id' }, body, SECRET);
    t.ok(reloaded.seenDelivery(replayedWithNewId), 'same signed body under a new delivery id is a replay');
    t.notOk(reloaded.seenDelivery(od), 'a different delivery is new');
    // That new delivery is written in the background: let it land before the test dir goes.
    await reloaded.flush();
  });
}

t.test('unknown provider, missing secret', async (t) => {
  const body = json({});
  t.throws(() => verifyWebhook('svn', {}, body, SECRET), { code: 'E_WEBHOOK_PROVIDER', data: { provider: 'svn' } });
  t.throws(() => verifyWebhook('__proto__', {}, body, SECRET), { code: 'E_WEBHOOK_PROVIDER' });
  t.throws(() => verifyWebhook('github', {}, body, ''), { code: 'E_WEBHOOK_CONFIG' });
  t.throws(() => verifyWebhook('github', {}, body, []), { code: 'E_WEBHOOK_CONFIG' });
});

t.test('github details: tags, deletions, other events, form bodies, hostile values', async (t) => {
  const send = (event: string, payload: unknown, extra: WebhookHeaders = {}) => {
    const body = Buffer.isBuffer(payload) ? payload : json(payload);
    return verifyWebhook('github', { 'x-github-event': event, 'x-github-delivery': 'd', 'x-hub-signature-256': `sha256=${hmac(body)}`, ...extra }, body, SECRET);
  };
  const tag = send('push', { ref: 'refs/tags/v1.0.0', after: SHA });
  t.match(tag, { event: 'push', ref: 'refs/tags/v1.0.0', branch: null });
  t.notOk(isRelevantPush(tag, 'main'), 'a tag push is ignored');
  const del = send('push', { ref: 'refs/heads/main', after: '0'.repeat(40), deleted: true });
  t.match(del, { event: 'push', branch: 'main', after: null });
  t.match(send('push', { ref: 'refs/heads/main', after: 'C'.repeat(64) }), { after: 'c'.repeat(64) }, 'sha256 repositories, lower-cased');
  t.match(send('pull_request', { action: 'opened' }), { event: 'other', branch: null, rawEvent: 'pull_request' });
  t.match(send('', { }), { event: 'other', rawEvent: null });

  const form = Buffer.from(`payload=${encodeURIComponent(JSON.stringify({ ref: 'refs/heads/main', after: SHA }))}`);
  t.match(send('push', form, { 'content-type': 'application/x-www-form-urlencoded' }), { branch: 'main', after: SHA });
  t.throws(() => send('push', Buffer.from('a=b'), { 'content-type': 'application/x-www-form-urlencoded' }), { code: 'E_WEBHOOK_PAYLOAD' });

  t.throws(() => send('push', { after: SHA }), { code: 'E_WEBHOOK_PAYLOAD', data: { field: 'ref' } });
  t.throws(() => send('push', [1, 2]), { code: 'E_WEBHOOK_PAYLOAD' });
  t.throws(() => send('push', { ref: 'refs/heads/ma\nin', after: SHA }), { code: 'E_WEBHOOK_PAYLOAD', data: { field: 'ref' } });
  t.throws(() => send('push', { ref: 'refs/heads/../x', after: SHA }), { code: 'E_WEBHOOK_PAYLOAD', data: { field: 'ref' } });
  t.throws(() => send('push', { ref: 'refs/heads/main', after: 'not-a-sha; rm -rf /' }), { code: 'E_WEBHOOK_PAYLOAD', data: { field: 'after' } });
  t.throws(() => send('push', { ref: 42, after: SHA }), { code: 'E_WEBHOOK_PAYLOAD' });

  const weirdId = send('ping', {}, { 'x-github-delivery': 'id with spaces\nand newline' });
  t.match(weirdId.deliveryId, /^sha256:[0-9a-f]{64}$/, 'an unsafe delivery id is replaced by its digest');
  t.equal(send('ping', {}, { 'x-github-delivery': ['only-one'] }).deliveryId, 'only-one');
  t.equal(send('ping', {}, { 'x-github-event': 'pi\u0000ng' }).rawEvent, 'ping', 'control characters are stripped from the event name');
  t.throws(() => send('push', { ref: 'refs/heads/main' }, { 'x-hub-signature-256': `sha1=${'0'.repeat(40)}` }), { code: 'E_WEBHOOK_SIGNATURE', data: { reason: 'malformed' } });
});

t.test('gitlab details: system hooks, tag pushes, idempotency key', async (t) => {
  const send = (headers: WebhookHeaders, payload: unknown) => verifyWebhook('gitlab', { 'x-gitlab-token': SECRET, ...headers }, json(payload), SECRET);
  t.match(send({ 'x-gitlab-event': 'System Hook' }, { object_kind: 'push', ref: 'refs/heads/main', after: SHA }), { event: 'push', branch: 'main' });
  t.match(send({ 'x-gitlab-event': 'System Hook' }, { object_kind: 'merge_request' }), { event: 'other' });
  t.match(send({ 'x-gitlab-event': 'Tag Push Hook' }, { ref: 'refs/tags/v1', after: SHA }), { event: 'other', branch: null });
  t.equal(send({ 'x-gitlab-event': 'Push Hook', 'idempotency-key': 'idem-1' }, { ref: 'refs/heads/main', after: SHA }).deliveryId, 'idem-1');
  t.throws(() => verifyWebhook('gitlab', { 'x-gitlab-token': SECRET.slice(0, -1) }, json({}), SECRET), { code: 'E_WEBHOOK_SIGNATURE', data: { reason: 'mismatch' } });
  t.throws(() => verifyWebhook('gitlab', { 'x-gitlab-token': '' }, json({}), SECRET), { code: 'E_WEBHOOK_SIGNATURE', data: { reason: 'missing' } });
});

t.test('gitea/forgejo headers', async (t) => {
  const body = json({ ref: 'refs/heads/main', after: SHA });
  const d = verifyWebhook('gitea', { 'x-forgejo-signature': hmac(body), 'x-forgejo-event': 'push', 'x-forgejo-delivery': 'fj-1' }, body, SECRET);
  t.match(d, { event: 'push', branch: 'main', deliveryId: 'fj-1' });
  t.throws(() => verifyWebhook('gitea', { 'x-gitea-signature': `sha256=${hmac(body)}` }, body, SECRET), { code: 'E_WEBHOOK_SIGNATURE', data: { reason: 'malformed' } });
});

t.test('bitbucket details: several changes, deletions, tags, Data Center', async (t) => {
  const send = (event: string, payload: unknown, branch?: string) => {
    const body = json(payload);
    return verifyWebhook('bitbucket', { 'x-event-key': event, 'x-hub-signature': `sha256=${hmac(body)}` }, body, SECRET, branch === undefined ? {} : { branch });
  };
  const many = {
    push: {
      changes: [
        { new: { type: 'tag', name: 'v1', target: { hash: SHA2 } } },
        { new: { type: 'branch', name: 'feature', target: { hash: SHA2 } } },
        { new: { type: 'branch', name: 'main', target: { hash: SHA } } },
        'junk',
      ],
    },
  };
  t.match(send('repo:push', many), { branch: 'feature', after: SHA2 }, 'first branch change');
  t.match(send('repo:push', many, 'main'), { branch: 'main', after: SHA }, 'the tracked branch wins when present');
  t.match(send('repo:push', many, 'other'), { branch: 'feature' });
  const tagOnly = send('repo:push', { push: { changes: [{ new: { type: 'tag', name: 'v2', target: { hash: SHA } } }] } }, 'main');
  t.match(tagOnly, { event: 'push', ref: 'refs/tags/v2', branch: null });
  t.notOk(isRelevantPush(tagOnly, 'main'));
  t.match(send('repo:push', { push: { changes: [{ new: null, old: { type: 'branch', name: 'main' } }] } }), { branch: 'main', after: null }, 'branch deleted');
  t.throws(() => send('repo:push', { push: { changes: [] } }), { code: 'E_WEBHOOK_PAYLOAD' });
  t.throws(() => send('repo:push', { nothing: true }), { code: 'E_WEBHOOK_PAYLOAD' });
  t.throws(() => send('repo:push', 'str'), { code: 'E_WEBHOOK_PAYLOAD' });
  t.match(send('pullrequest:created', { pullrequest: {} }), { event: 'other' });

  const dc = {
    changes: [
      { ref: { id: 'refs/heads/main', displayId: 'main', type: 'BRANCH' }, toHash: SHA, type: 'UPDATE' },
      { ref: { id: 'refs/heads/gone', displayId: 'gone', type: 'BRANCH' }, toHash: '0'.repeat(40), type: 'DELETE' },
      { nope: 1 },
    ],
  };
  t.match(send('repo:refs_changed', dc), { event: 'push', branch: 'main', after: SHA });
  t.match(send('repo:refs_changed', dc, 'gone'), { branch: 'gone', after: null });
});

t.test('generic details', async (t) => {
  const send = (payload: unknown, extra: WebhookHeaders = {}) => {
    const body = json(payload);
    return verifyWebhook('generic', { 'x-tenantd-signature': signGeneric(body, SECRET), ...extra }, body, SECRET);
  };
  t.match(send({ ref: 'refs/heads/main', after: SHA }), { event: 'push', branch: 'main' });
  t.match(send({ ref: 'refs/heads/main', branch: 'main' }), { branch: 'main', after: null });
  t.throws(() => send({ ref: 'refs/heads/main', branch: 'dev' }), { code: 'E_WEBHOOK_PAYLOAD', data: { field: 'branch' } });
  const bare = send({});
  t.match(bare, { event: 'push', ref: null, branch: null });
  t.ok(isRelevantPush(bare, 'main'), 'a generic call without a ref means "fetch now"');
  t.throws(() => send(null), { code: 'E_WEBHOOK_PAYLOAD' });
  t.equal(signGeneric('x', 's'), `sha256=${hmac('x', 's')}`);
});

t.test('DeliveryLog shared by replicas: the one that takes over knows what its predecessor acknowledged', async (t) => {
  const file = path.join(t.testdir(), 'webhook-deliveries.json');
  const leader = await DeliveryLog.open({ file });
  const standby = await DeliveryLog.open({ file });
  const d = { provider: 'github' as const, deliveryId: 'delivery-1', bodyDigest: 'sha256:aaa' };
  t.notOk(leader.seenDelivery(d), 'new to the leader');
  await leader.flush();
  t.notOk(standby.seen('github', 'local-only'), 'the standby recorded one of its own');
  await standby.reload();
  t.ok(standby.seenDelivery(d), 'after reading the file again, a redelivery is recognized by its id');
  t.ok(standby.seenDelivery({ ...d, deliveryId: 'delivery-2' }), 'and a replayed body by its digest');
  t.ok(standby.seen('github', 'local-only'), 'what it held in memory is kept');
  await standby.flush();
});

t.test('DeliveryLog.reload reads the shared file only when it changed', async (t) => {
  const file = path.join(t.testdir(), 'webhook-deliveries.json');
  let reads = 0;
  const counting = { ...fsp, readFile: ((...args: Parameters<typeof fsp.readFile>) => (reads++, fsp.readFile(...args))) as typeof fsp.readFile };
  const leader = await DeliveryLog.open({ file });
  t.notOk(leader.seen('github', 'one'));
  await leader.flush();
  const standby = await DeliveryLog.open({ file, fs: counting });
  t.equal(reads, 1, 'read at open');
  for (let i = 0; i < 5; i++) await standby.reload();
  t.equal(reads, 1, 'five reloads of an unchanged file read nothing');
  t.notOk(leader.seen('github', 'two'));
  await leader.flush();
  await standby.reload();
  t.equal(reads, 2, 'a file the other replica rewrote is read again');
  t.ok(standby.seen('github', 'two'), 'and what it recorded is known');
  t.notOk(standby.seen('github', 'own'), 'the standby records one of its own');
  await standby.flush();
  await standby.reload();
  t.equal(reads, 2, 'its own write is not read back');
  t.notOk(leader.seen('github', 'three'));
  await leader.flush();
  await standby.reload();
  t.ok(standby.seen('github', 'three'), 'a write by the other replica after its own is still picked up');
  await standby.flush();
});

t.test('DeliveryLog: capacity, per-provider, in-memory, corrupt files, coalesced writes', async (t) => {
  const mem = new DeliveryLog({ capacity: 3 });
  for (const id of ['a', 'b', 'c']) t.notOk(mem.seen('github', id));
  t.notOk(mem.seen('gitlab', 'a'), 'ids are per provider');
  t.ok(mem.seen('github', 'a'));
  t.notOk(mem.seen('github', 'd'), 'evicts the oldest');
  t.equal(mem.size('github'), 3);
  t.notOk(mem.seen('github', 'a'), 'a was evicted');
  t.equal(mem.size('none'), 0);
  await mem.flush();

  const dir = t.testdir({ 'corrupt.json': '{not json', 'shape.json': '[1,2]', 'ids.json': JSON.stringify({ version: 1, providers: { github: ['x', 1, 'y'], gitlab: 'nope' } }) });
  const corrupt = await DeliveryLog.open({ file: path.join(dir, 'corrupt.json') });
  t.match(corrupt.loadError, { code: 'E_WEBHOOK_LOG' });
  t.notOk(corrupt.seen('github', 'x'));
  await corrupt.flush();
  t.same(JSON.parse(await fsp.readFile(path.join(dir, 'corrupt.json'), 'utf8')), { version: 1, providers: { github: ['x'] } }, 'rewritten whole');
  t.match((await DeliveryLog.open({ file: path.join(dir, 'shape.json') })).loadError, { code: 'E_WEBHOOK_LOG' });
  const ids = await DeliveryLog.open({ file: path.join(dir, 'ids.json') });
  t.equal(ids.loadError, null);
  t.ok(ids.seen('github', 'y'));
  t.notOk(ids.seen('github', '1'));
  const unreadable = await DeliveryLog.open({ file: dir });
  t.match(unreadable.loadError, { code: 'E_WEBHOOK_LOG' }, 'a directory is not a log');

  const file = path.join(dir, 'nested', 'deliveries.json');
  const log = await DeliveryLog.open({ file, capacity: 1000 });
  for (let i = 0; i < 200; i++) log.seen(i % 2 ? 'github' : 'gitea', `id-${i}`);
  await log.flush();
  const back = await DeliveryLog.open({ file, capacity: 50 });
  t.equal(back.size('github'), 50, 'a smaller capacity keeps the newest');
  t.ok(back.seen('github', 'id-199'));
  t.notOk(back.seen('github', 'id-1'));
  // seen() of a new id records it in the background; let that write finish first.
  await back.flush();
  t.same((await fsp.readdir(path.dirname(file))).sort(), ['deliveries.json'], 'no temporary files left');
  const st = await fsp.stat(file);
  t.equal(st.mode & 0o777, 0o600);

  // a failing write rejects flush, and the next write recovers
  let fail = true;
  const flaky = new DeliveryLog({
    file: path.join(dir, 'flaky.json'),
    fs: {
      ...fsp,
      rename: async (a, b) => {
        if (fail) throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
        return fsp.rename(a, b);
      },
    },
  });
  flaky.seen('github', 'one');
  await t.rejects(flaky.flush(), { code: 'ENOSPC' });
  fail = false;
  flaky.seen('github', 'two');
  await flaky.flush();
  t.same(JSON.parse(await fsp.readFile(path.join(dir, 'flaky.json'), 'utf8')).providers.github, ['one', 'two']);
});
