import t, { type Test } from 'tap';
import { createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  ANONYMOUS_PRINCIPAL,
  SCOPES,
  TokenVerifier,
  createAuthenticator,
  ensureBootstrapToken,
  generateToken,
  hashToken,
  hasScope,
  loadTokenFile,
  parseBearer,
  parseJwks,
  parseTokenHash,
  requireScope,
  sanitizePrincipalName,
  type Principal,
} from '../api/auth/index.js';

const b64url = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function signJwt(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: { hs: string | Buffer } | { rs: KeyObject } | { es: KeyObject } | { none: true },
): string {
  // Tokens expire unless a test says otherwise (`exp: undefined` leaves the claim out).
  const claims = 'exp' in payload ? payload : { exp: nowSec + 3600, ...payload };
  const input = `${b64url(header)}.${b64url(claims)}`;
  let sig: Buffer;
  if ('hs' in key) sig = createHmac('sha256', key.hs).update(input).digest();
  else if ('rs' in key) sig = cryptoSign('sha256', Buffer.from(input), key.rs);
  else if ('es' in key) sig = cryptoSign('sha256', Buffer.from(input), { key: key.es, dsaEncoding: 'ieee-p1363' });
  else sig = Buffer.alloc(0);
  return `${input}.${sig.toString('base64url')}`;
}

const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';
const NOW = new Date('2030-01-01T00:00:00Z');
const nowSec = Math.floor(NOW.getTime() / 1000);
const now = (): Date => NOW;
const bearer = (tok: string): string => `Bearer ${tok}`;

t.test('generateToken and hashToken', async (t) => {
  const a = generateToken();
  const b = generateToken();
  t.match(a, /^tdk_[A-Za-z0-9_-]{43}$/);
  t.not(a, b);
  const sha = await hashToken(a);
  t.match(sha, /^sha256:[0-9a-f]{64}$/);
  t.equal(sha, await hashToken(a), 'sha256 is deterministic');
  const scrypt = await hashToken(a, 'scrypt');
  t.match(scrypt, /^scrypt:[0-9a-f]{32}:[0-9a-f]{64}$/);
  t.not(scrypt, await hashToken(a, 'scrypt'), 'scrypt is salted');
  t.ok(parseTokenHash(sha));
  t.ok(parseTokenHash(scrypt));
  t.equal(parseTokenHash(a), null, 'a plaintext token is not a hash');
  t.equal(parseTokenHash('sha256:abcd'), null);
  t.equal(parseTokenHash('md5:' + 'a'.repeat(32)), null);
  t.equal(parseTokenHash('scrypt:zz:' + 'a'.repeat(64)), null);
});

t.test('parseBearer: missing, malformed, wrong scheme', async (t) => {
  t.equal(parseBearer('Bearer abc.def'), 'abc.def');
  t.equal(parseBearer('bearer   tdk_x  '), 'tdk_x', 'scheme is case-insensitive, extra spaces tolerated');
  t.throws(() => parseBearer(undefined), { code: 'E_AUTH_MISSING', data: { reason: 'missing' } });
  t.throws(() => parseBearer('  '), { code: 'E_AUTH_MISSING' });
  t.throws(() => parseBearer('Bearer'), { code: 'E_AUTH_MISSING', data: { reason: 'malformed' } });
  t.throws(() => parseBearer('Bearer a b'), { code: 'E_AUTH_MISSING', data: { reason: 'malformed' } });
  t.throws(() => parseBearer('Bearer a"b'), { code: 'E_AUTH_MISSING', data: { reason: 'malformed' } });
  t.throws(() => parseBearer('Bearer ' + 'a'.repeat(9000)), { code: 'E_AUTH_MISSING' });
  t.throws(() => parseBearer('Basic dXNlcjpwYXNz'), { code: 'E_AUTH_MISSING', data: { reason: 'scheme' } });
  t.throws(() => parseBearer('Token abc'), { code: 'E_AUTH_MISSING', data: { reason: 'scheme' } });
});

t.test('scopes', async (t) => {
  const reader: Principal = { name: 'r', scopes: ['tenants:read'], kind: 'token' };
  const admin: Principal = { name: 'a', scopes: ['admin'], kind: 'token' };
  t.same([...SCOPES], ['tenants:read', 'tenants:write', 'tenants:delete', 'admin']);
  t.ok(hasScope(reader, 'tenants:read'));
  t.notOk(hasScope(reader, 'tenants:write'));
  t.notOk(hasScope(reader, 'admin'));
  for (const s of SCOPES) t.ok(hasScope(admin, s), `admin implies ${s}`);
  t.doesNotThrow(() => requireScope(reader, 'tenants:read'));
  t.throws(() => requireScope(reader, 'tenants:delete'), { code: 'E_FORBIDDEN_SCOPE', data: { required: 'tenants:delete', granted: ['tenants:read'] } });
});

t.test('principal names are sanitized', async (t) => {
  t.equal(sanitizePrincipalName('ci\nAuthor: evil <x@y>'), 'ci Author: evil x@y');
  t.equal(sanitizePrincipalName('  a\u0000b\u202ec\u2028d\t '), 'a b c d');
  t.equal(sanitizePrincipalName('\u0001\u0002'), '');
  t.equal([...sanitizePrincipalName('é'.repeat(200))].length, 64, 'capped at 64 code points');
  t.equal(sanitizePrincipalName('Jane Doe (platform)'), 'Jane Doe (platform)');
});

async function tokensFixture(t: Test): Promise<{ dir: string; file: string; admin: string; reader: string; scrypted: string }> {
  const admin = generateToken();
  const reader = generateToken();
  const scrypted = generateToken();
  const dir = t.testdir({});
  const file = path.join(dir, 'tokens.yaml');
  await fsp.writeFile(
    file,
    [
      'tokens:',
      '  - name: ops-admin',
      `    hash: ${await hashToken(admin)}`,
      '    scopes: [admin]',
      '  - name: "dashboard\\nInjected: yes"',
      `    hash: ${await hashToken(reader)}`,
      '    scopes: [tenants:read, tenants:read]',
      '  - name: deployer',
      `    hash: ${await hashToken(scrypted, 'scrypt')}`,
      '    scopes: [tenants:read, tenants:write]',
      '',
    ].join('\n'),
  );
  return { dir, file, admin, reader, scrypted };
}

t.test('tokens file: sha256 and scrypt tokens, wrong tokens', async (t) => {
  const { file, admin, reader, scrypted } = await tokensFixture(t);
  const auth = await createAuthenticator({ tokensFile: file });
  t.same(auth.methods, ['token']);
  t.same(await auth.authenticate(bearer(admin)), { name: 'ops-admin', scopes: ['admin'], kind: 'token' });
  const r = await auth.authenticate(bearer(reader));
  t.equal(r.name, 'dashboard Injected: yes', 'token names are sanitized at load');
  t.same(r.scopes, ['tenants:read'], 'duplicate scopes collapse');
  t.same(await auth.authenticate(bearer(scrypted)), { name: 'deployer', scopes: ['tenants:read', 'tenants:write'], kind: 'token' });
  t.same(await auth.authenticate(bearer(scrypted)), { name: 'deployer', scopes: ['tenants:read', 'tenants:write'], kind: 'token' }, 'cached');
  await t.rejects(auth.authenticate(bearer(generateToken())), { code: 'E_AUTH_INVALID' });
  await t.rejects(auth.authenticate(bearer(admin.slice(0, -1))), { code: 'E_AUTH_INVALID' });
  await t.rejects(auth.authenticate(bearer('a.b.c')), { code: 'E_AUTH_INVALID' }, 'JWT-shaped, no JWT configured');
  await t.rejects(auth.authenticate(undefined), { code: 'E_AUTH_MISSING' });
  await t.rejects(auth.authenticate('Basic ' + Buffer.from(`x:${admin}`).toString('base64')), { code: 'E_AUTH_MISSING' });
  await t.rejects(auth.authenticate(`Bearer ${admin} extra`), { code: 'E_AUTH_MISSING' });
});

t.test('tokens file as JSON; scrypt verification cache is bounded', async (t) => {
  const tok = generateToken();
  const other = generateToken();
  const dir = t.testdir({});
  const file = path.join(dir, 'tokens.json');
  await fsp.writeFile(
    file,
    JSON.stringify({
      tokens: [
        { name: 'json-a', hash: await hashToken(tok, 'scrypt'), scopes: ['tenants:read'] },
        { name: 'json-b', hash: await hashToken(other, 'scrypt'), scopes: ['tenants:delete'] },
      ],
    }),
  );
  const verifier = new TokenVerifier(await loadTokenFile(file), 1);
  t.equal((await verifier.verify(tok))?.name, 'json-a');
  t.equal((await verifier.verify(other))?.name, 'json-b');
  t.equal((await verifier.verify(tok))?.name, 'json-a');
  t.equal(await verifier.verify('nope'), null);
});

t.test('tokens file validation is E_AUTH_CONFIG', async (t) => {
  const dir = t.testdir({
    'plain.yaml': 'tokens:\n  - { name: a, hash: tdk_plaintext, scopes: [admin] }\n',
    'scope.yaml': `tokens:\n  - { name: a, hash: "sha256:${'0'.repeat(64)}", scopes: [root] }\n`,
    'noscope.yaml': `tokens:\n  - { name: a, hash: "sha256:${'0'.repeat(64)}", scopes: [] }\n`,
    'dup.yaml': `tokens:\n  - { name: a, hash: "sha256:${'0'.repeat(64)}", scopes: [admin] }\n  - { name: a, hash: "sha256:${'1'.repeat(64)}", scopes: [admin] }\n`,
    'noname.yaml': `tokens:\n  - { name: "\\n", hash: "sha256:${'0'.repeat(64)}", scopes: [admin] }\n`,
    'numname.yaml': `tokens:\n  - { name: 3, hash: "sha256:${'0'.repeat(64)}", scopes: [admin] }\n`,
    'notobj.yaml': 'tokens:\n  - just-a-string\n',
    'shape.yaml': 'users: []\n',
    'bad.yaml': 'tokens: [\n',
  });
  for (const [name, p] of [
    ['plain.yaml', 'tokens[0].hash'],
    ['scope.yaml', 'tokens[0].scopes'],
    ['noscope.yaml', 'tokens[0].scopes'],
    ['dup.yaml', 'tokens[1].name'],
    ['noname.yaml', 'tokens[0].name'],
    ['numname.yaml', 'tokens[0].name'],
    ['notobj.yaml', 'tokens[0]'],
  ] as const) {
    await t.rejects(loadTokenFile(path.join(dir, name)), { code: 'E_AUTH_CONFIG', data: { path: p } }, name);
  }
  await t.rejects(loadTokenFile(path.join(dir, 'shape.yaml')), { code: 'E_AUTH_CONFIG' });
  await t.rejects(loadTokenFile(path.join(dir, 'bad.yaml')), { code: 'E_AUTH_CONFIG' });
  await t.rejects(loadTokenFile(path.join(dir, 'missing.yaml')), { code: 'E_AUTH_CONFIG' });
  await t.rejects(createAuthenticator({ tokensFile: path.join(dir, 'missing.yaml') }), { code: 'E_AUTH_CONFIG' });
  await t.rejects(createAuthenticator({ tokensFile: path.join(dir, 'plain.yaml') }), { code: 'E_AUTH_CONFIG' });
});

t.test('the tokens file is reloaded when it changes; a broken edit keeps the old tokens', async (t) => {
  const { file, admin } = await tokensFixture(t);
  const errors: string[] = [];
  const auth = await createAuthenticator({ tokensFile: file, onReloadError: (e) => errors.push(e.code) });
  t.equal((await auth.authenticate(bearer(admin))).name, 'ops-admin');
  const fresh = generateToken();
  await fsp.writeFile(file, `tokens:\n  - name: rotated\n    hash: ${await hashToken(fresh)}\n    scopes: [tenants:read]\n`);
  t.equal((await auth.authenticate(bearer(fresh))).name, 'rotated');
  await t.rejects(auth.authenticate(bearer(admin)), { code: 'E_AUTH_INVALID' }, 'the removed token stops working');
  await fsp.writeFile(file, 'tokens: [broken\n');
  t.equal((await auth.authenticate(bearer(fresh))).name, 'rotated', 'previous tokens stay in force');
  t.same(errors, ['E_AUTH_CONFIG']);
  await fsp.rm(file);
  t.equal((await auth.authenticate(bearer(fresh))).name, 'rotated', 'a vanished file keeps the previous tokens');
  t.equal(errors.length, 2);
});

t.test('configuration errors and insecureNoAuth', async (t) => {
  await t.rejects(createAuthenticator({}), { code: 'E_AUTH_CONFIG' });
  await t.rejects(createAuthenticator({ jwtSecret: 'short' }), { code: 'E_AUTH_CONFIG', data: { field: 'jwtSecret' } });
  const open = await createAuthenticator({ insecureNoAuth: true, jwtSecret: 'short' });
  t.same(open.methods, ['insecure-no-auth']);
  const p = await open.authenticate(undefined);
  t.same(p, { name: 'anonymous', scopes: ['admin'], kind: 'anonymous' });
  t.equal(p, ANONYMOUS_PRINCIPAL);
  t.ok(hasScope(p, 'tenants:delete'));
  t.throws(() => {
    (ANONYMOUS_PRINCIPAL.scopes as string[]).push('x');
  }, 'the anonymous principal is frozen');
});

t.test('HS256', async (t) => {
  const auth = await createAuthenticator({ jwtSecret: SECRET, now });
  t.same(auth.methods, ['hs256']);
  const hdr = { alg: 'HS256', typ: 'JWT' };
  const good = signJwt(hdr, { sub: 'alice', scope: 'tenants:read tenants:write openid', exp: nowSec + 60 }, { hs: SECRET });
  t.same(await auth.authenticate(bearer(good)), { name: 'alice', scopes: ['tenants:read', 'tenants:write'], kind: 'jwt' });

  const arr = signJwt(hdr, { sub: 'bob', scopes: ['tenants:delete', 42, 'admin'], exp: nowSec + 60 }, { hs: SECRET });
  t.same((await auth.authenticate(bearer(arr))).scopes, ['tenants:delete', 'admin'], 'scopes array claim');
  const scp = signJwt(hdr, { sub: 'carol', scp: ['tenants:read'], exp: nowSec + 60 }, { hs: SECRET });
  t.same((await auth.authenticate(bearer(scp))).scopes, ['tenants:read'], 'scp claim (Okta/Azure style)');
  const forever = signJwt(hdr, { sub: 'erin', scope: 'admin', exp: undefined }, { hs: SECRET });
  await t.rejects(auth.authenticate(bearer(forever)), { code: 'E_AUTH_INVALID', data: { reason: 'no_exp' } }, 'a token without exp is refused');
  const lenient = await createAuthenticator({ jwtSecret: SECRET, now, allowNoExp: true });
  t.same((await lenient.authenticate(bearer(forever))).scopes, ['admin'], '... unless allowNoExp (--jwt-allow-no-exp) says so');
  const none = signJwt(hdr, { sub: 'dave', exp: nowSec + 60 }, { hs: SECRET });
  t.same((await auth.authenticate(bearer(none))).scopes, [], 'no scopes: authenticated, forbidden everywhere');

  const expired = signJwt(hdr, { sub: 'alice', exp: nowSec - 31 }, { hs: SECRET });
  await t.rejects(auth.authenticate(bearer(expired)), { code: 'E_AUTH_INVALID', data: { reason: 'expired' } });
  const skewed = signJwt(hdr, { sub: 'alice', exp: nowSec - 10 }, { hs: SECRET });
  t.equal((await auth.authenticate(bearer(skewed))).name, 'alice', 'within the 30 s clock skew');
  const early = signJwt(hdr, { sub: 'alice', nbf: nowSec + 120 }, { hs: SECRET });
  await t.rejects(auth.authenticate(bearer(early)), { code: 'E_AUTH_INVALID', data: { reason: 'not_yet_valid' } });
  const almost = signJwt(hdr, { sub: 'alice', nbf: nowSec + 20 }, { hs: SECRET });
  t.equal((await auth.authenticate(bearer(almost))).name, 'alice', 'nbf within skew');
  const badExp = signJwt(hdr, { sub: 'alice', exp: 'tomorrow' }, { hs: SECRET });
  await t.rejects(auth.authenticate(bearer(badExp)), { code: 'E_AUTH_INVALID', data: { reason: 'malformed' } });

  const wrong = signJwt(hdr, { sub: 'alice' }, { hs: SECRET + 'x' });
  await t.rejects(auth.authenticate(bearer(wrong)), { code: 'E_AUTH_INVALID', data: { reason: 'signature' } });
  const [h, , s] = good.split('.');
  const tampered = `${h}.${b64url({ sub: 'alice', scope: 'admin', exp: nowSec + 60 })}.${s}`;
  await t.rejects(auth.authenticate(bearer(tampered)), { code: 'E_AUTH_INVALID', data: { reason: 'signature' } });

  const algNone = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'alice', scope: 'admin' })}.`;
  await t.rejects(auth.authenticate(bearer(algNone)), { code: 'E_AUTH_INVALID' }, 'alg none with an empty signature');
  const algNone2 = signJwt({ alg: 'none' }, { sub: 'alice' }, { hs: SECRET });
  await t.rejects(auth.authenticate(bearer(algNone2)), { code: 'E_AUTH_INVALID', data: { reason: 'alg' } });
  const hs512 = signJwt({ alg: 'HS512' }, { sub: 'alice' }, { hs: SECRET });
  await t.rejects(auth.authenticate(bearer(hs512)), { code: 'E_AUTH_INVALID', data: { reason: 'alg' } });
  const rs = signJwt({ alg: 'RS256' }, { sub: 'alice' }, { hs: SECRET });
  await t.rejects(auth.authenticate(bearer(rs)), { code: 'E_AUTH_INVALID', data: { reason: 'alg' } }, 'RS256 without JWKS');
  const crit = signJwt({ alg: 'HS256', crit: ['b64'], b64: false }, { sub: 'alice' }, { hs: SECRET });
  await t.rejects(auth.authenticate(bearer(crit)), { code: 'E_AUTH_INVALID', data: { reason: 'malformed' } });

  const noSub = signJwt(hdr, { scope: 'admin' }, { hs: SECRET });
  await t.rejects(auth.authenticate(bearer(noSub)), { code: 'E_AUTH_INVALID', data: { reason: 'subject' } });
  const blankSub = signJwt(hdr, { sub: '\n\r' }, { hs: SECRET });
  await t.rejects(auth.authenticate(bearer(blankSub)), { code: 'E_AUTH_INVALID', data: { reason: 'subject' } });
  const evilSub = signJwt(hdr, { sub: 'mallory\nCommitter: root <root@x>' + 'x'.repeat(100) }, { hs: SECRET });
  const evil = await auth.authenticate(bearer(evilSub));
  t.notMatch(evil.name, /[\n<>]/);
  t.equal(evil.name.length, 64);

  const notJson = `${b64url('not json')}.${b64url({ sub: 'a' })}.${b64url('sig')}`;
  await t.rejects(auth.authenticate(bearer(notJson)), { code: 'E_AUTH_INVALID', data: { reason: 'malformed' } });
  const arrHeader = `${b64url([1])}.${b64url({ sub: 'a' })}.${b64url('sig')}`;
  await t.rejects(auth.authenticate(bearer(arrHeader)), { code: 'E_AUTH_INVALID', data: { reason: 'malformed' } });
  await t.rejects(auth.authenticate(bearer(generateToken())), { code: 'E_AUTH_INVALID', data: { reason: 'unknown_token' } }, 'no tokens file');
});

t.test('HS256 issuer and audience', async (t) => {
  const auth = await createAuthenticator({ jwtSecret: SECRET, issuer: 'https://idp.example', audience: 'tenantd', now });
  const mk = (claims: Record<string, unknown>) => bearer(signJwt({ alg: 'HS256' }, { sub: 'svc', ...claims }, { hs: SECRET }));
  t.equal((await auth.authenticate(mk({ iss: 'https://idp.example', aud: 'tenantd' }))).name, 'svc');
  t.equal((await auth.authenticate(mk({ iss: 'https://idp.example', aud: ['other', 'tenantd'] }))).name, 'svc');
  await t.rejects(auth.authenticate(mk({ iss: 'https://evil.example', aud: 'tenantd' })), { code: 'E_AUTH_INVALID', data: { reason: 'issuer' } });
  await t.rejects(auth.authenticate(mk({ aud: 'tenantd' })), { code: 'E_AUTH_INVALID', data: { reason: 'issuer' } });
  await t.rejects(auth.authenticate(mk({ iss: 'https://idp.example', aud: 'other' })), { code: 'E_AUTH_INVALID', data: { reason: 'audience' } });
  await t.rejects(auth.authenticate(mk({ iss: 'https://idp.example' })), { code: 'E_AUTH_INVALID', data: { reason: 'audience' } });
});

function keys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsa2 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { rsa, ec, rsa2 };
}

t.test('RS256 and ES256 against a JWKS file, with kid', async (t) => {
  const { rsa, ec, rsa2 } = keys();
  const dir = t.testdir({});
  const jwksFile = path.join(dir, 'jwks.json');
  const jwks = {
    keys: [
      { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', use: 'sig', alg: 'RS256' },
      { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1' },
      { kty: 'oct', k: Buffer.from(SECRET).toString('base64url'), kid: 'oct-1' },
      { ...rsa2.publicKey.export({ format: 'jwk' }), kid: 'enc-1', use: 'enc' },
    ],
  };
  await fsp.writeFile(jwksFile, JSON.stringify(jwks));
  const auth = await createAuthenticator({ jwksFile, now, audience: 'tenantd' });
  t.same(auth.methods, ['jwks']);
  const claims = { sub: 'svc-a', scope: 'tenants:read', aud: 'tenantd', exp: nowSec + 300 };

  const rs = signJwt({ alg: 'RS256', kid: 'rsa-1' }, claims, { rs: rsa.privateKey });
  t.same(await auth.authenticate(bearer(rs)), { name: 'svc-a', scopes: ['tenants:read'], kind: 'jwt' });
  const es = signJwt({ alg: 'ES256', kid: 'ec-1' }, claims, { es: ec.privateKey });
  t.same(await auth.authenticate(bearer(es)), { name: 'svc-a', scopes: ['tenants:read'], kind: 'jwt' });
  const esNoKid = signJwt({ alg: 'ES256' }, claims, { es: ec.privateKey });
  t.equal((await auth.authenticate(bearer(esNoKid))).name, 'svc-a', 'no kid, exactly one ES256 key');

  const unknownKid = signJwt({ alg: 'RS256', kid: 'rsa-9' }, claims, { rs: rsa.privateKey });
  await t.rejects(auth.authenticate(bearer(unknownKid)), { code: 'E_AUTH_INVALID', data: { reason: 'kid' } });
  const numKid = signJwt({ alg: 'RS256', kid: 7 }, claims, { rs: rsa.privateKey });
  await t.rejects(auth.authenticate(bearer(numKid)), { code: 'E_AUTH_INVALID', data: { reason: 'kid' } });
  const otherKey = signJwt({ alg: 'RS256', kid: 'rsa-1' }, claims, { rs: rsa2.privateKey });
  await t.rejects(auth.authenticate(bearer(otherKey)), { code: 'E_AUTH_INVALID', data: { reason: 'signature' } });
  const encKey = signJwt({ alg: 'RS256', kid: 'enc-1' }, claims, { rs: rsa2.privateKey });
  await t.rejects(auth.authenticate(bearer(encKey)), { code: 'E_AUTH_INVALID', data: { reason: 'kid' } }, 'use=enc keys are skipped');
  const crossAlg = signJwt({ alg: 'ES256', kid: 'rsa-1' }, claims, { es: ec.privateKey });
  await t.rejects(auth.authenticate(bearer(crossAlg)), { code: 'E_AUTH_INVALID', data: { reason: 'kid' } }, 'an RSA key never checks ES256');
  const badEsSig = `${es.split('.').slice(0, 2).join('.')}.${Buffer.alloc(70).toString('base64url')}`;
  await t.rejects(auth.authenticate(bearer(badEsSig)), { code: 'E_AUTH_INVALID', data: { reason: 'signature' } });
  const expired = signJwt({ alg: 'ES256', kid: 'ec-1' }, { ...claims, exp: nowSec - 3600 }, { es: ec.privateKey });
  await t.rejects(auth.authenticate(bearer(expired)), { code: 'E_AUTH_INVALID', data: { reason: 'expired' } });
  const rsNoKid = signJwt({ alg: 'RS256' }, claims, { rs: rsa.privateKey });
  t.equal((await auth.authenticate(bearer(rsNoKid))).name, 'svc-a', 'one usable RS256 key (enc key skipped)');

  // alg confusion: the JWKS's oct key and the RSA public key PEM must never verify an HS256 token
  const viaOct = signJwt({ alg: 'HS256', kid: 'oct-1' }, claims, { hs: SECRET });
  await t.rejects(auth.authenticate(bearer(viaOct)), { code: 'E_AUTH_INVALID', data: { reason: 'alg' } });
  const pem = rsa.publicKey.export({ format: 'pem', type: 'spki' });
  const viaPem = signJwt({ alg: 'HS256', kid: 'rsa-1' }, claims, { hs: pem });
  await t.rejects(auth.authenticate(bearer(viaPem)), { code: 'E_AUTH_INVALID', data: { reason: 'alg' } });

  // with a shared secret configured as well, HS256 uses only the secret — still not the PEM
  const both = await createAuthenticator({ jwksFile, jwtSecret: SECRET, now });
  t.same(both.methods, ['hs256', 'jwks']);
  await t.rejects(both.authenticate(bearer(viaPem)), { code: 'E_AUTH_INVALID', data: { reason: 'signature' } });
  t.equal((await both.authenticate(bearer(viaOct))).name, 'svc-a', 'HS256 with the configured secret');
  t.equal((await both.authenticate(bearer(rs))).name, 'svc-a');
});

t.test('JWKS rotation and validation', async (t) => {
  const { rsa, ec, rsa2 } = keys();
  const dir = t.testdir({});
  const jwksFile = path.join(dir, 'jwks.json');
  await fsp.writeFile(jwksFile, JSON.stringify({ keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k1' }] }));
  const errors: string[] = [];
  const auth = await createAuthenticator({ jwksFile, now, onReloadError: (e) => errors.push(e.code) });
  const tok1 = signJwt({ alg: 'RS256', kid: 'k1' }, { sub: 's' }, { rs: rsa.privateKey });
  const tok2 = signJwt({ alg: 'RS256', kid: 'k2' }, { sub: 's' }, { rs: rsa2.privateKey });
  t.equal((await auth.authenticate(bearer(tok1))).name, 's');
  await t.rejects(auth.authenticate(bearer(tok2)), { code: 'E_AUTH_INVALID' });
  await fsp.writeFile(
    jwksFile,
    JSON.stringify({ keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k1' }, { ...rsa2.publicKey.export({ format: 'jwk' }), kid: 'k2' }] }),
  );
  t.equal((await auth.authenticate(bearer(tok2))).name, 's', 'a rotated-in key is picked up');
  const noKid = signJwt({ alg: 'RS256' }, { sub: 's' }, { rs: rsa.privateKey });
  await t.rejects(auth.authenticate(bearer(noKid)), { code: 'E_AUTH_INVALID', data: { reason: 'kid' } }, 'no kid with two RSA keys');
  await fsp.writeFile(jwksFile, '{"keys": []}');
  t.equal((await auth.authenticate(bearer(tok2))).name, 's', 'an empty JWKS edit keeps the old keys');
  t.same(errors, ['E_AUTH_CONFIG']);

  t.throws(() => parseJwks('nope', 'f'), { code: 'E_AUTH_CONFIG' });
  t.throws(() => parseJwks('[]', 'f'), { code: 'E_AUTH_CONFIG' });
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const res = parseJwks(
    JSON.stringify({
      keys: [
        { ...small.publicKey.export({ format: 'jwk' }), kid: 'small' },
        { ...p384.publicKey.export({ format: 'jwk' }), kid: 'p384' },
        { ...ec.publicKey.export({ format: 'jwk' }), kid: 'alg-mismatch', alg: 'ES384' },
        { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ops', key_ops: ['encrypt'] },
        { kty: 'RSA', kid: 'garbage', n: 'AA', e: 'AQAB' },
        'not-a-key',
        { ...ec.privateKey.export({ format: 'jwk' }), kid: 'private-ok' },
      ],
    }),
    'f',
  );
  t.same(res.skipped, ['small', 'p384', 'alg-mismatch', 'ops', 'garbage', 'keys[5]']);
  t.same(
    res.keys.map((k) => k.kid),
    ['private-ok'],
  );
  t.equal(res.keys[0]?.key.type, 'public', 'only the public part is kept');
  await t.rejects(createAuthenticator({ jwksFile: path.join(dir, 'missing.json') }), { code: 'E_AUTH_CONFIG' });
});

t.test('bootstrap token: created once with mode 0600, plaintext returned only the first time', async (t) => {
  const dataDir = path.join(t.testdir({}), 'data');
  const first = await ensureBootstrapToken(dataDir);
  t.equal(first.file, path.join(dataDir, 'api-tokens.yaml'));
  t.match(first.token, /^tdk_/);
  const st = await fsp.stat(first.file);
  t.equal(st.mode & 0o777, 0o600);
  const text = await fsp.readFile(first.file, 'utf8');
  t.notOk(text.includes(first.token as string), 'the plaintext is never stored');
  t.same((await fsp.readdir(dataDir)).sort(), ['admin-token', 'api-tokens.yaml'], 'no temporary file left');
  t.equal(first.tokenFile, path.join(dataDir, 'admin-token'));
  t.equal(await fsp.readFile(first.tokenFile, 'utf8'), `${first.token as string}\n`, 'the plaintext is in the token file');
  t.equal((await fsp.stat(first.tokenFile)).mode & 0o777, 0o600, 'readable by the daemon user only');

  const auth = await createAuthenticator({ tokensFile: first.file });
  t.same(await auth.authenticate(bearer(first.token as string)), { name: 'admin', scopes: ['admin'], kind: 'token' });

  const second = await ensureBootstrapToken(dataDir);
  t.same(second, { token: null, file: first.file, tokenFile: first.tokenFile });
  t.equal(await fsp.readFile(first.file, 'utf8'), text, 'unchanged');

  // racing starts: exactly one learns a token
  const raceDir = path.join(t.testdir({}), 'race');
  const results = await Promise.all([ensureBootstrapToken(raceDir), ensureBootstrapToken(raceDir), ensureBootstrapToken(raceDir)]);
  t.equal(results.filter((r) => r.token !== null).length, 1);
  const winner = results.find((r) => r.token !== null);
  const raceAuth = await createAuthenticator({ tokensFile: path.join(raceDir, 'api-tokens.yaml') });
  t.equal((await raceAuth.authenticate(bearer(winner?.token as string))).name, 'admin', 'the file holds the returned token');
  t.equal(await fsp.readFile(path.join(raceDir, 'admin-token'), 'utf8'), `${winner?.token as string}\n`, 'the token file holds the winner');
  t.same((await fsp.readdir(raceDir)).sort(), ['admin-token', 'api-tokens.yaml'], 'the losers left no temporary file');
});
