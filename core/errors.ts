/**
 * Errors are typed by what should happen next, as Flux's controllers do:
 * - `stalled`: a person must act (bad input, forbidden change); retrying will not help.
 * - `waiting`: a dependency is not ready yet; try again later without counting it as a failure.
 * - `retryable`: something failed that may succeed on a later attempt; back off.
 * Every error carries a stable `code` (tests and the HTTP layer key on it) and structured `data`.
 */
export type ErrorKind = 'stalled' | 'waiting' | 'retryable';

export class TenantdError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly data: Record<string, unknown>;

  constructor(code: string, kind: ErrorKind, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TenantdError';
    this.code = code;
    this.kind = kind;
    this.data = data;
  }
}

export const stalled = (code: string, message: string, data?: Record<string, unknown>, cause?: unknown): TenantdError =>
  new TenantdError(code, 'stalled', message, data, cause === undefined ? undefined : { cause });
export const waiting = (code: string, message: string, data?: Record<string, unknown>, cause?: unknown): TenantdError =>
  new TenantdError(code, 'waiting', message, data, cause === undefined ? undefined : { cause });
export const retryable = (code: string, message: string, data?: Record<string, unknown>, cause?: unknown): TenantdError =>
  new TenantdError(code, 'retryable', message, data, cause === undefined ? undefined : { cause });

/** Anything thrown that is not a TenantdError is treated as retryable: we do not know it is permanent. */
export function toTenantdError(err: unknown, fallbackCode = 'E_INTERNAL'): TenantdError {
  if (err instanceof TenantdError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = typeof (err as { code?: unknown })?.code === 'string' ? `${fallbackCode}:${(err as { code: string }).code}` : fallbackCode;
  return new TenantdError(code, 'retryable', message, {}, { cause: err });
}

export const isTenantdError = (err: unknown): err is TenantdError => err instanceof TenantdError;
