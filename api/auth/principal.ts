import { stalled } from '../../core/errors.js';

/**
 * Who is calling, and what they may do. `name` is the token's name or the JWT's `sub`; it becomes
 * the git author of the caller's writes, so it is always passed through `sanitizePrincipalName`.
 */
export const SCOPES = ['tenants:read', 'tenants:write', 'tenants:delete', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** `anonymous` only with `insecureNoAuth`. */
export type PrincipalKind = 'token' | 'jwt' | 'anonymous';

export interface Principal {
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly kind: PrincipalKind;
}

/** Stable error codes of the auth module; the HTTP layer maps them (401, 401, 403, 500 at start). */
export const AUTH_ERROR_CODES = {
  missing: 'E_AUTH_MISSING',
  invalid: 'E_AUTH_INVALID',
  forbidden: 'E_FORBIDDEN_SCOPE',
  config: 'E_AUTH_CONFIG',
} as const;

export const isScope = (value: unknown): value is Scope => typeof value === 'string' && (SCOPES as readonly string[]).includes(value);

/** `admin` implies every scope; no other scope implies another. */
export function hasScope(principal: Pick<Principal, 'scopes'>, scope: Scope): boolean {
  return principal.scopes.includes('admin') || principal.scopes.includes(scope);
}

/** Throws E_FORBIDDEN_SCOPE unless the principal has `scope`. */
export function requireScope(principal: Principal, scope: Scope): void {
  if (!hasScope(principal, scope)) {
    throw stalled(AUTH_ERROR_CODES.forbidden, `this request needs the scope "${scope}"`, {
      required: scope,
      granted: [...principal.scopes],
      principal: principal.name,
    });
  }
}

/** The known scopes among `values`, deduplicated, in SCOPES order (foreign scopes such as `openid` are dropped). */
export function knownScopes(values: Iterable<unknown>): Scope[] {
  const set = new Set<unknown>(values);
  return SCOPES.filter((s) => set.has(s));
}

export const PRINCIPAL_NAME_MAX = 64;

/**
 * A name safe to show and to use as a git author name: no control characters (C0, DEL, C1),
 * no line/paragraph separators or bidi overrides, no `<`/`>` (they delimit the email in a git
 * ident), whitespace runs collapsed to one space, trimmed, at most PRINCIPAL_NAME_MAX code points.
 * May return '' — callers decide whether that is acceptable.
 */
export function sanitizePrincipalName(raw: string): string {
  const cleaned = raw
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff<>]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const cps = [...cleaned];
  return cps.length > PRINCIPAL_NAME_MAX ? cps.slice(0, PRINCIPAL_NAME_MAX).join('').trimEnd() : cleaned;
}
