import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { stalled } from '../../core/errors.js';
import { AUTH_ERROR_CODES, SCOPES, isScope, sanitizePrincipalName, type Principal, type Scope } from './principal.js';
import { isRecord } from '../../core/is-record.js';

/**
 * Named API tokens, stored as hashes only.
 *
 * A token is `tdk_` + base64url of 32 random bytes (256 bits), so a plain SHA-256 is already
 * unguessable and is the default (`sha256:<hex>`); `scrypt:<salt hex>:<hash hex>` is accepted for
 * those who want a slow hash (N=16384, r=8, p=1, key length = hash bytes). Every comparison is
 * `timingSafeEqual` on equal-length digests, and every entry is compared (no early exit).
 *
 * The file (YAML, or JSON — YAML is a superset):
 *
 *     tokens:
 *       - name: ci-pipeline
 *         hash: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
 *         scopes: [tenants:read, tenants:write]
 */

/** The subset of `fs.promises` the auth module uses; pass another implementation in tests. */
export type AuthFs = Pick<typeof fsp, 'readFile' | 'stat' | 'mkdir' | 'open' | 'link' | 'rm' | 'rename'>;

export const TOKEN_PREFIX = 'tdk_';

export const SCRYPT_PARAMS: Readonly<Required<Pick<ScryptOptions, 'N' | 'r' | 'p'>>> = { N: 16384, r: 8, p: 1 };

export type TokenHash =
  | { readonly algorithm: 'sha256'; readonly digest: Buffer }
  | { readonly algorithm: 'scrypt'; readonly salt: Buffer; readonly digest: Buffer };

export interface TokenEntry {
  readonly name: string;
  readonly hash: TokenHash;
  readonly scopes: readonly Scope[];
}

export interface TokenFile {
  readonly path: string;
  readonly tokens: readonly TokenEntry[];
}

/** A new random token: `tdk_` + base64url(32 random bytes). */
export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

const sha256 = (data: string | Buffer): Buffer => createHash('sha256').update(data).digest();

function scrypt(token: string, salt: Buffer, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(token, salt, keylen, { ...SCRYPT_PARAMS, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** The string to store in a tokens file for `token`: `sha256:<hex>` (default) or `scrypt:<salt hex>:<hex>`. */
export async function hashToken(token: string, algorithm: 'sha256' | 'scrypt' = 'sha256'): Promise<string> {
  if (algorithm === 'sha256') return `sha256:${sha256(token).toString('hex')}`;
  const salt = randomBytes(16);
  return `scrypt:${salt.toString('hex')}:${(await scrypt(token, salt, 32)).toString('hex')}`;
}

const HEX = /^(?:[0-9a-f]{2})+$/i;

/** Parse a stored hash string; null when it is not one of the two forms. */
export function parseTokenHash(value: string): TokenHash | null {
  const parts = value.trim().split(':');
  if (parts[0] === 'sha256' && parts.length === 2 && parts[1] !== undefined && parts[1].length === 64 && HEX.test(parts[1])) {
    return { algorithm: 'sha256', digest: Buffer.from(parts[1], 'hex') };
  }
  if (parts[0] === 'scrypt' && parts.length === 3) {
    const [, salt, digest] = parts;
    if (salt !== undefined && digest !== undefined && HEX.test(salt) && salt.length >= 16 && HEX.test(digest) && digest.length >= 32 && digest.length <= 128) {
      return { algorithm: 'scrypt', salt: Buffer.from(salt, 'hex'), digest: Buffer.from(digest, 'hex') };
    }
  }
  return null;
}

const configError = (file: string, message: string, data: Record<string, unknown> = {}, cause?: unknown) =>
  stalled(AUTH_ERROR_CODES.config, `${file}: ${message}`, { file, ...data }, cause);

/** Validate the parsed content of a tokens file. Every problem is E_AUTH_CONFIG naming the entry. */
export function parseTokenFile(text: string, file: string): TokenFile {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err: unknown) {
    throw configError(file, `not valid YAML/JSON: ${err instanceof Error ? err.message : String(err)}`, {}, err);
  }
  if (!isRecord(doc) || !Array.isArray(doc.tokens)) throw configError(file, 'expected a top-level "tokens" list');
  const names = new Set<string>();
  const tokens = doc.tokens.map((raw: unknown, i): TokenEntry => {
    const at = `tokens[${i}]`;
    if (!isRecord(raw)) throw configError(file, `${at}: expected an object with name, hash and scopes`, { path: at });
    if (typeof raw.name !== 'string') throw configError(file, `${at}.name: expected a string`, { path: `${at}.name` });
    const name = sanitizePrincipalName(raw.name);
    if (!name) throw configError(file, `${at}.name: empty after removing control characters`, { path: `${at}.name` });
    if (names.has(name)) throw configError(file, `${at}.name: duplicate token name "${name}"`, { path: `${at}.name` });
    names.add(name);
    const hash = typeof raw.hash === 'string' ? parseTokenHash(raw.hash) : null;
    if (!hash) {
      throw configError(file, `${at}.hash: expected "sha256:<64 hex>" or "scrypt:<salt hex>:<hash hex>" (never a plaintext token)`, {
        path: `${at}.hash`,
      });
    }
    if (!Array.isArray(raw.scopes) || raw.scopes.length === 0) {
      throw configError(file, `${at}.scopes: expected a non-empty list of ${SCOPES.join(', ')}`, { path: `${at}.scopes` });
    }
    const scopes: Scope[] = [];
    for (const s of raw.scopes as unknown[]) {
      if (!isScope(s)) throw configError(file, `${at}.scopes: unknown scope ${JSON.stringify(s)} (known: ${SCOPES.join(', ')})`, { path: `${at}.scopes` });
      if (!scopes.includes(s)) scopes.push(s);
    }
    return { name, hash, scopes };
  });
  return { path: file, tokens };
}

/** Read and validate a tokens file (E_AUTH_CONFIG when it is missing or invalid). */
export async function loadTokenFile(file: string, fs: Pick<AuthFs, 'readFile'> = fsp): Promise<TokenFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err: unknown) {
    throw configError(file, `cannot read the tokens file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {}, err);
  }
  return parseTokenFile(text, file);
}

/**
 * Verifies presented tokens against one loaded file. Successful scrypt verifications are cached
 * by the token's SHA-256 (bounded), so a client does not pay an scrypt per entry on every request.
 */
export class TokenVerifier {
  private readonly cache = new Map<string, TokenEntry>();

  constructor(
    readonly file: TokenFile,
    private readonly cacheSize = 1000,
  ) {}

  async verify(token: string): Promise<Principal | null> {
    const digest = sha256(token);
    const key = digest.toString('hex');
    const cached = this.cache.get(key);
    if (cached) return toPrincipal(cached);
    let match: TokenEntry | null = null;
    for (const entry of this.file.tokens) {
      if (entry.hash.algorithm !== 'sha256') continue;
      if (timingSafeEqual(digest, entry.hash.digest) && !match) match = entry;
    }
    if (match) return toPrincipal(match);
    for (const entry of this.file.tokens) {
      if (entry.hash.algorithm !== 'scrypt') continue;
      const derived = await scrypt(token, entry.hash.salt, entry.hash.digest.length);
      if (timingSafeEqual(derived, entry.hash.digest) && !match) match = entry;
    }
    if (!match) return null;
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(key, match);
    return toPrincipal(match);
  }
}

const toPrincipal = (entry: TokenEntry): Principal => ({ name: entry.name, scopes: [...entry.scopes], kind: 'token' });
