import { promises as fsp } from 'node:fs';
import { stalled, toTenantdError, type TenantdError } from '../../core/errors.js';
import { loadJwksFile, looksLikeJwt, principalFromClaims, verifyJwt, type JwksKey } from './jwt.js';
import { AUTH_ERROR_CODES, type Principal } from './principal.js';
import { loadTokenFile, TokenVerifier, type AuthFs } from './tokens.js';

export interface AuthConfig {
  /** A tokens file (YAML/JSON) of named, hashed tokens. Reloaded when it changes on disk. */
  readonly tokensFile?: string;
  /** HS256 shared secret, at least 32 bytes. */
  readonly jwtSecret?: string;
  /** A JWKS file for RS256/ES256 tokens. Reloaded when it changes on disk (key rotation). */
  readonly jwksFile?: string;
  /** Required `iss` of JWTs, when set. */
  readonly issuer?: string;
  /** Required member of `aud` of JWTs, when set. */
  readonly audience?: string;
  readonly now?: () => Date;
  /** Tolerance for exp/nbf, default 30 s. */
  readonly clockSkewSeconds?: number;
  /** Accept JWTs that carry no `exp` claim (refused by default). */
  readonly allowNoExp?: boolean;
  /** Every request is the anonymous admin. Only with an explicit `--insecure-no-auth`. */
  readonly insecureNoAuth?: boolean;
  readonly fs?: Pick<AuthFs, 'readFile' | 'stat'>;
  /** Called when a changed tokens/JWKS file fails to load; the previous content stays in force. */
  readonly onReloadError?: (err: TenantdError) => void;
}

export interface Authenticator {
  /** The principal of an `Authorization` header value; throws E_AUTH_MISSING or E_AUTH_INVALID. */
  authenticate(authorizationHeader: string | undefined): Promise<Principal>;
  /** What is configured, for the daemon's start-up line. */
  readonly methods: readonly ('token' | 'hs256' | 'jwks' | 'insecure-no-auth')[];
}

export const ANONYMOUS_PRINCIPAL: Principal = Object.freeze({ name: 'anonymous', scopes: Object.freeze(['admin'] as const), kind: 'anonymous' });

export const MIN_JWT_SECRET_BYTES = 32;

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const MAX_CREDENTIAL_LENGTH = 8192;

/** The bearer credential of an Authorization header value; E_AUTH_MISSING when absent or malformed. */
export function parseBearer(header: string | undefined): string {
  if (header === undefined || header.trim() === '') {
    throw stalled(AUTH_ERROR_CODES.missing, 'an Authorization: Bearer <token> header is required', { reason: 'missing' });
  }
  const m = /^([^\s]+)[ \t]+([^\s]+)[ \t]*$/.exec(header.trim());
  if (!m || !m[1] || !m[2]) throw stalled(AUTH_ERROR_CODES.missing, 'the Authorization header must be "Bearer <token>"', { reason: 'malformed' });
  if (m[1].toLowerCase() !== 'bearer') {
    throw stalled(AUTH_ERROR_CODES.missing, 'the Authorization scheme must be Bearer', { reason: 'scheme', scheme: m[1].slice(0, 32) });
  }
  if (m[2].length > MAX_CREDENTIAL_LENGTH || !TOKEN68.test(m[2])) {
    throw stalled(AUTH_ERROR_CODES.missing, 'the bearer token is malformed', { reason: 'malformed' });
  }
  return m[2];
}

/**
 * A file whose parsed content is reused until the file changes (inode, size, mtime or ctime).
 * Concurrent callers share one stat/load; a failed reload keeps the previous content.
 */
class WatchedFile<T> {
  private stamp = '';
  private inflight: Promise<T> | null = null;

  private constructor(
    private readonly file: string,
    private readonly fs: Pick<AuthFs, 'stat'>,
    private readonly load: () => Promise<T>,
    private readonly onError: ((err: TenantdError) => void) | undefined,
    private value: T,
  ) {}

  static async open<T>(file: string, fs: Pick<AuthFs, 'stat'>, load: () => Promise<T>, onError?: (err: TenantdError) => void): Promise<WatchedFile<T>> {
    const stamp = await statStamp(fs, file);
    const w = new WatchedFile(file, fs, load, onError, await load());
    w.stamp = stamp;
    return w;
  }

  get(): Promise<T> {
    this.inflight ??= this.refresh().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async refresh(): Promise<T> {
    let stamp: string;
    try {
      stamp = await statStamp(this.fs, this.file);
    } catch (err: unknown) {
      // the file went away (e.g. mid-replace): keep serving what we have
      this.onError?.(toTenantdError(err, AUTH_ERROR_CODES.config));
      return this.value;
    }
    if (stamp === this.stamp) return this.value;
    try {
      this.value = await this.load();
      this.stamp = stamp;
    } catch (err: unknown) {
      this.stamp = stamp; // report a broken file once, not on every request
      this.onError?.(toTenantdError(err, AUTH_ERROR_CODES.config));
    }
    return this.value;
  }
}

async function statStamp(fs: Pick<AuthFs, 'stat'>, file: string): Promise<string> {
  try {
    const st = await fs.stat(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch (err: unknown) {
    throw stalled(AUTH_ERROR_CODES.config, `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file }, err);
  }
}

/**
 * Build the authenticator. Loads and validates the configured files now, so a bad configuration
 * stops the daemon at start (E_AUTH_CONFIG); later edits of the files are picked up per request.
 *
 * Credential routing: a bearer value shaped like a JWT (three base64url segments) is verified as a
 * JWT when JWT is configured; anything else is looked up in the tokens file. Tokens `tdk_…` never
 * contain a dot, so the two never overlap.
 */
export async function createAuthenticator(config: AuthConfig): Promise<Authenticator> {
  if (config.insecureNoAuth) {
    return { methods: ['insecure-no-auth'], authenticate: async () => ANONYMOUS_PRINCIPAL };
  }
  const fs = config.fs ?? fsp;
  const now = config.now ?? (() => new Date());
  const clockSkewSeconds = config.clockSkewSeconds ?? 30;
  const methods: Authenticator['methods'][number][] = [];

  let secret: Buffer | undefined;
  if (config.jwtSecret !== undefined) {
    secret = Buffer.from(config.jwtSecret, 'utf8');
    if (secret.length < MIN_JWT_SECRET_BYTES) {
      throw stalled(AUTH_ERROR_CODES.config, `the JWT secret must be at least ${MIN_JWT_SECRET_BYTES} bytes (got ${secret.length})`, {
        field: 'jwtSecret',
      });
    }
    methods.push('hs256');
  }
  const tokens = config.tokensFile
    ? await WatchedFile.open(config.tokensFile, fs, async () => new TokenVerifier(await loadTokenFile(config.tokensFile as string, fs)), config.onReloadError)
    : null;
  if (tokens) methods.unshift('token');
  const jwks = config.jwksFile
    ? await WatchedFile.open(config.jwksFile, fs, async (): Promise<JwksKey[]> => (await loadJwksFile(config.jwksFile as string, fs)).keys, config.onReloadError)
    : null;
  if (jwks) methods.push('jwks');
  if (methods.length === 0) {
    throw stalled(AUTH_ERROR_CODES.config, 'no API authentication configured: give a tokens file, a JWT secret or a JWKS file (or --insecure-no-auth)', {});
  }
  const jwtConfigured = secret !== undefined || jwks !== null;

  return {
    methods,
    async authenticate(header) {
      const credential = parseBearer(header);
      if (jwtConfigured && looksLikeJwt(credential)) {
        const claims = verifyJwt(credential, {
          ...(secret ? { secret } : {}),
          ...(jwks ? { jwks: await jwks.get() } : {}),
          ...(config.issuer !== undefined ? { issuer: config.issuer } : {}),
          ...(config.audience !== undefined ? { audience: config.audience } : {}),
          now: now(),
          clockSkewSeconds,
          ...(config.allowNoExp ? { allowNoExp: true } : {}),
        });
        return principalFromClaims(claims);
      }
      const principal = tokens ? await (await tokens.get()).verify(credential) : null;
      if (!principal) throw stalled(AUTH_ERROR_CODES.invalid, 'the bearer token is not valid', { reason: 'unknown_token' });
      return principal;
    },
  };
}
