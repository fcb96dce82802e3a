import { TenantdError, toTenantdError } from '../core/errors.js';

/** One problem in a request, in the caller's terms (a body field path, a header, a parameter). */
export interface FieldError {
  path: string;
  message: string;
}

/** RFC 9457 problem document; every error the API returns is one. */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  errors?: FieldError[];
}

/**
 * The one place error codes become HTTP statuses. Codes not listed fall back by kind:
 * retryable/waiting → 503 (try again), stalled → 500 (we do not know better).
 */
const STATUS_BY_CODE: Readonly<Record<string, [number, string]>> = {
  E_BAD_REQUEST: [400, 'Bad request'],
  E_BAD_JSON: [400, 'Malformed JSON'],
  E_BAD_TENANT_ID: [400, 'Invalid tenant id'],
  E_BAD_QUERY: [400, 'Invalid query parameter'],
  E_CONFIRMATION_REQUIRED: [400, 'Confirmation required'],
  E_WEBHOOK_PAYLOAD: [400, 'Invalid webhook payload'],
  E_AUTH_MISSING: [401, 'Authentication required'],
  E_AUTH_INVALID: [401, 'Invalid credentials'],
  E_WEBHOOK_SIGNATURE: [401, 'Invalid webhook signature'],
  E_FORBIDDEN_SCOPE: [403, 'Insufficient scope'],
  E_NOT_FOUND: [404, 'Not found'],
  E_TENANT_NOT_FOUND: [404, 'Tenant not found'],
  E_WEBHOOK_PROVIDER: [404, 'Unknown webhook provider'],
  E_METHOD_NOT_ALLOWED: [405, 'Method not allowed'],
  E_TENANT_EXISTS: [409, 'Tenant already exists'],
  E_DELETION_PROTECTED: [409, 'Deletion protection is on'],
  E_IDEMPOTENCY_IN_PROGRESS: [409, 'A request with this Idempotency-Key is in progress'],
  E_GIT_BRANCH_MISSING: [409, 'The tracked branch is missing'],
  E_REPO_LAYOUT: [409, 'The repository layout is invalid'],
  E_NO_DELETION_HOLD: [409, 'No deletion is held'],
  E_DELETION_HOLD_CHANGED: [409, 'The deletion hold changed'],
  E_NOT_AWAITING_APPROVAL: [409, 'No plan awaits approval'],
  E_PLAN_DIGEST_STALE: [409, 'Not the plan awaiting approval'],
  E_PRECONDITION_FAILED: [412, 'Precondition failed'],
  E_BODY_TOO_LARGE: [413, 'Request body too large'],
  E_UNSUPPORTED_MEDIA_TYPE: [415, 'Unsupported media type'],
  E_VALIDATION: [422, 'Validation failed'],
  E_IDEMPOTENCY_MISMATCH: [422, 'Idempotency-Key reused with a different request'],
  E_TOO_MANY_STREAMS: [429, 'Too many event streams'],
  E_NOT_READY: [503, 'Not ready'],
  E_NOT_LEADER: [503, 'This replica does not lead'],
  E_NO_LEADER: [503, 'No leader'],
  E_LEADER_UNREACHABLE: [502, 'The leader cannot be reached'],
};

export function httpStatusOf(err: TenantdError): number {
  const known = STATUS_BY_CODE[err.code];
  if (known) return known[0];
  return err.kind === 'stalled' ? 500 : 503;
}

export function problemOf(err: unknown, requestId: string): ProblemDocument {
  const e = toTenantdError(err, 'E_INTERNAL');
  const status = httpStatusOf(e);
  const title = STATUS_BY_CODE[e.code]?.[1] ?? (status === 503 ? 'Service unavailable' : 'Internal error');
  // Unknown internal errors are not described to the caller: their message may carry internals.
  const detail = status >= 500 && !(err instanceof TenantdError) ? 'An internal error occurred; see the daemon log for this request id.' : e.message;
  const errors = Array.isArray(e.data['errors']) ? (e.data['errors'] as FieldError[]) : undefined;
  return {
    type: `https://tenantd.io/problems/${e.code.toLowerCase().replace(/^e_/, '').replace(/_/g, '-')}`,
    title,
    status,
    detail,
    code: e.code,
    requestId,
    ...(errors ? { errors } : {}),
  };
}

/** Shorthand for errors the API raises itself. */
export const apiError = (code: string, message: string, data: Record<string, unknown> = {}): TenantdError =>
  new TenantdError(code, 'stalled', message, data);
