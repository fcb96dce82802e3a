import { createHmac, createPublicKey, timingSafeEqual, verify as cryptoVerify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { stalled, type TenantdError } from '../../core/errors.js';
import { AUTH_ERROR_CODES, knownScopes, sanitizePrincipalName, type Principal } from './principal.js';
import { isRecord } from '../../core/is-record.js';

/**
 * JWT (JWS compact) verification with node:crypto only.
 *
 * Algorithms are bound to key sources, so no token can choose how it is checked:
 * HS256 only with the shared secret; RS256 and ES256 only with keys from the JWKS file (never an
 * `oct` key, never the secret). `none` and every other algorithm are refused. A JWK is used only
 * for the algorithm its type allows (RSA ≥ 2048 bits for RS256, EC P-256 for ES256) and only if
 * its own `alg`/`use`/`key_ops`, when present, agree.
 */

export type JwtAlgorithm = 'HS256' | 'RS256' | 'ES256';

export interface JwksKey {
  readonly kid: string | undefined;
  readonly alg: 'RS256' | 'ES256';
  readonly key: KeyObject;
}

export interface JwtVerifyOptions {
  /** HS256 shared secret (at least 32 bytes). */
  readonly secret?: Buffer;
  /** RS256/ES256 keys from a JWKS file. */
  readonly jwks?: readonly JwksKey[];
  readonly issuer?: string;
  readonly audience?: string;
  readonly now: Date;
  readonly clockSkewSeconds: number;
  /** Accept tokens without `exp` (refused by default: a leaked token that never expires is forever). */
  readonly allowNoExp?: boolean;
}

export type JwtClaims = Record<string, unknown>;

const B64URL = /^[A-Za-z0-9_-]*$/;
export const MAX_JWT_LENGTH = 8192;

const invalid = (reason: string, message: string, data: Record<string, unknown> = {}): TenantdError =>
  stalled(AUTH_ERROR_CODES.invalid, message, { reason, ...data });

/** Three base64url segments separated by dots (a JWS compact serialization). */
export const looksLikeJwt = (token: string): boolean => {
  const parts = token.split('.');
  return parts.length === 3 && parts.every((p) => p.length > 0 && B64URL.test(p));
};

function decodeJson(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw invalid('malformed', `token ${what} is not base64url JSON`);
  }
  if (!isRecord(value)) throw invalid('malformed', `token ${what} is not a JSON object`);
  return value;
}

function selectJwk(header: Record<string, unknown>, alg: 'RS256' | 'ES256', keys: readonly JwksKey[]): KeyObject {
  const candidates = keys.filter((k) => k.alg === alg);
  if (header.kid !== undefined) {
    if (typeof header.kid !== 'string') throw invalid('kid', 'token kid is not a string');
    const found = candidates.find((k) => k.kid === header.kid);
    if (!found) throw invalid('kid', 'no key in the JWKS matches the token kid and algorithm', { kid: header.kid.slice(0, 128), alg });
    return found.key;
  }
  // no kid: acceptable only when exactly one key could have signed it
  if (candidates.length !== 1 || !candidates[0]) throw invalid('kid', `token has no kid and the JWKS has ${candidates.length} ${alg} keys`, { alg });
  return candidates[0].key;
}

/** Verify signature and registered claims; returns the claims. Throws E_AUTH_INVALID with data.reason. */
export function verifyJwt(token: string, options: JwtVerifyOptions): JwtClaims {
  if (token.length > MAX_JWT_LENGTH) throw invalid('malformed', 'token too long');
  if (!looksLikeJwt(token)) throw invalid('malformed', 'token is not a JWT');
  const [h, p, s] = token.split('.') as [string, string, string];
  const header = decodeJson(h, 'header');
  const alg = header.alg;
  if (header.crit !== undefined) throw invalid('malformed', 'token header has unsupported critical extensions');

  const signingInput = Buffer.from(`${h}.${p}`, 'ascii');
  const signature = Buffer.from(s, 'base64url');
  let ok: boolean;
  if (alg === 'HS256') {
    if (!options.secret) throw invalid('alg', 'HS256 tokens are not accepted (no shared secret configured)', { alg });
    const expected = createHmac('sha256', options.secret).update(signingInput).digest();
    ok = signature.length === expected.length && timingSafeEqual(signature, expected);
  } else if (alg === 'RS256' || alg === 'ES256') {
    if (!options.jwks || options.jwks.length === 0) throw invalid('alg', `${alg} tokens are not accepted (no JWKS configured)`, { alg });
    const key = selectJwk(header, alg, options.jwks);
    if (alg === 'RS256') {
      ok = cryptoVerify('sha256', signingInput, key, signature);
    } else {
      ok = signature.length === 64 && cryptoVerify('sha256', signingInput, { key, dsaEncoding: 'ieee-p1363' }, signature);
    }
  } else {
    throw invalid('alg', `token algorithm ${JSON.stringify(alg)} is not accepted`, { alg: typeof alg === 'string' ? alg.slice(0, 32) : null });
  }
  if (!ok) throw invalid('signature', 'token signature does not verify');

  const claims = decodeJson(p, 'payload');
  const now = options.now.getTime() / 1000;
  const skew = options.clockSkewSeconds;
  for (const name of ['exp', 'nbf', 'iat'] as const) {
    if (claims[name] !== undefined && (typeof claims[name] !== 'number' || !Number.isFinite(claims[name]))) {
      throw invalid('malformed', `token claim ${name} is not a number`);
    }
  }
  if (claims.exp === undefined && !options.allowNoExp) {
    throw invalid('no_exp', 'token has no exp claim; only tokens that expire are accepted (start tenantd with --jwt-allow-no-exp to accept others)');
  }
  if (typeof claims.exp === 'number' && now - skew >= claims.exp) throw invalid('expired', 'token has expired', { exp: claims.exp });
  if (typeof claims.nbf === 'number' && now + skew < claims.nbf) throw invalid('not_yet_valid', 'token is not valid yet', { nbf: claims.nbf });
  if (options.issuer !== undefined && claims.iss !== options.issuer) throw invalid('issuer', 'token issuer is not accepted');
  if (options.audience !== undefined) {
    const aud = claims.aud;
    const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!auds.includes(options.audience)) throw invalid('audience', 'token audience is not accepted');
  }
  return claims;
}

/** The principal a verified token names: `sub` (sanitized, required) and scopes from `scope`, `scp` or `scopes`. */
export function principalFromClaims(claims: JwtClaims): Principal {
  if (typeof claims.sub !== 'string') throw invalid('subject', 'token has no sub claim');
  const name = sanitizePrincipalName(claims.sub);
  if (!name) throw invalid('subject', 'token sub claim is empty');
  const raw: unknown[] = [];
  for (const claim of [claims.scope, claims.scp, claims.scopes]) {
    if (typeof claim === 'string') raw.push(...claim.split(/\s+/));
    else if (Array.isArray(claim)) raw.push(...(claim as unknown[]));
  }
  return { name, scopes: knownScopes(raw), kind: 'jwt' };
}

const jwksError = (file: string, message: string, data: Record<string, unknown> = {}, cause?: unknown) =>
  stalled(AUTH_ERROR_CODES.config, `${file}: ${message}`, { file, ...data }, cause);

/**
 * Parse a JWKS document (`{"keys":[…]}`) into verification keys. Keys we cannot use for RS256 or
 * ES256 (oct, other curves, encryption keys, short RSA) are skipped, and their kids are reported
 * in `skipped`; a document with no usable key is E_AUTH_CONFIG.
 */
export function parseJwks(text: string, file: string): { keys: JwksKey[]; skipped: string[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err: unknown) {
    throw jwksError(file, 'not valid JSON', {}, err);
  }
  if (!isRecord(doc) || !Array.isArray(doc.keys)) throw jwksError(file, 'expected {"keys": [...]}');
  const keys: JwksKey[] = [];
  const skipped: string[] = [];
  doc.keys.forEach((jwk: unknown, i) => {
    const label = isRecord(jwk) && typeof jwk.kid === 'string' ? jwk.kid : `keys[${i}]`;
    const usable = isRecord(jwk) ? toJwksKey(jwk) : null;
    if (usable) keys.push(usable);
    else skipped.push(label);
  });
  if (keys.length === 0) throw jwksError(file, 'no RS256 (RSA ≥ 2048 bits) or ES256 (EC P-256) verification key', { skipped });
  return { keys, skipped };
}

function toJwksKey(jwk: Record<string, unknown>): JwksKey | null {
  const alg = jwk.kty === 'RSA' ? 'RS256' : jwk.kty === 'EC' ? 'ES256' : null;
  if (!alg) return null;
  if (jwk.alg !== undefined && jwk.alg !== alg) return null;
  if (jwk.use !== undefined && jwk.use !== 'sig') return null;
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return null;
  if (jwk.kid !== undefined && typeof jwk.kid !== 'string') return null;
  if (alg === 'ES256' && jwk.crv !== 'P-256') return null;
  // only the public members: a JWKS that (wrongly) carries private parts still yields a public key
  const pub: JsonWebKey =
    alg === 'RS256' ? { kty: 'RSA', n: jwk.n as string, e: jwk.e as string } : { kty: 'EC', crv: 'P-256', x: jwk.x as string, y: jwk.y as string };
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pub, format: 'jwk' });
  } catch {
    return null;
  }
  if (alg === 'RS256' && (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)) return null;
  if (alg === 'ES256' && (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')) return null;
  return { kid: jwk.kid, alg, key };
}

export async function loadJwksFile(file: string, fs: Pick<typeof fsp, 'readFile'> = fsp): Promise<{ keys: JwksKey[]; skipped: string[] }> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err: unknown) {
    throw jwksError(file, `cannot read the JWKS file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {}, err);
  }
  return parseJwks(text, file);
}
