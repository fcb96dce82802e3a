/**
 * Mapping isomorphic-git (and network) failures to TenantdError with stable codes.
 *
 * Codes used by the git store:
 * - E_GIT_REPO_NOT_FOUND (stalled): local path is not a git repository, or the server answers 404
 * - E_GIT_BAD_URL (stalled): an unsupported or unparsable repository URL (ssh://, git@host:…)
 * - E_GIT_AUTH (stalled): the server answers 401/403 (missing or wrong token)
 * - E_GIT_FETCH (retryable): clone/fetch failed otherwise (connection refused, 5xx, timeouts, …)
 * - E_GIT_PUSH (retryable): push failed for a reason other than the remote having moved
 * - E_GIT_PUSH_CONFLICT (retryable): the remote kept moving; gave up after the bounded attempts
 * - E_GIT_BAD_PATH / E_GIT_BAD_REF (stalled): an invalid file path or branch name was asked for
 * - E_GIT_OBJECT_NOT_FOUND (stalled): a commit, tree or blob is missing from the object store
 * - E_GIT_BRANCH_MISSING (stalled): a commit would start over, as a root commit, a branch that had history
 * - E_REPO_LAYOUT (stalled): a directory read (tenants/) is a file, symlink or submodule at that commit
 */
import { TenantdError, retryable, stalled } from '../errors.js';

interface ErrorShape {
  code?: unknown;
  data?: unknown;
  message?: unknown;
}

/** The `code` of an isomorphic-git error (`'HttpError'`, `'NotFoundError'`, …) or a Node errno code. */
export function errCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const c = (err as ErrorShape).code;
  return typeof c === 'string' ? c : undefined;
}

export function errData(err: unknown): Record<string, unknown> {
  if (typeof err !== 'object' || err === null) return {};
  const d = (err as ErrorShape).data;
  return typeof d === 'object' && d !== null ? (d as Record<string, unknown>) : {};
}

export function errMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Remove credentials embedded in URLs (`https://user:pass@host`) and the token itself. */
export function redact(text: string, token?: string): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
  if (token) out = out.split(token).join('***');
  return out;
}

export function httpStatusOf(err: unknown): number | undefined {
  if (errCode(err) !== 'HttpError') return undefined;
  const s = errData(err).statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** Map a failed clone/fetch/push to a TenantdError. */
export function remoteError(op: 'clone' | 'fetch' | 'push', err: unknown, url: string, token?: string): TenantdError {
  if (err instanceof TenantdError) return err;
  const cause = errCode(err);
  const safeUrl = redact(url, token);
  const detail = redact(errMessage(err), token);
  const data: Record<string, unknown> = { op, url: safeUrl, cause: cause ?? null };
  const status = httpStatusOf(err);
  if (status !== undefined) data.status = status;
  if (status === 401 || status === 403) {
    return stalled('E_GIT_AUTH', `git ${op} of ${safeUrl}: authentication failed (HTTP ${status})`, data, err);
  }
  if (status === 404) {
    return stalled('E_GIT_REPO_NOT_FOUND', `git ${op} of ${safeUrl}: repository not found (HTTP 404)`, data, err);
  }
  if (cause === 'UrlParseError' || cause === 'UnknownTransportError') {
    return stalled('E_GIT_BAD_URL', `git ${op}: unsupported repository URL ${safeUrl}`, data, err);
  }
  if (cause === 'UserCanceledError') {
    return stalled('E_GIT_AUTH', `git ${op} of ${safeUrl}: authentication cancelled`, data, err);
  }
  const code = op === 'push' ? 'E_GIT_PUSH' : 'E_GIT_FETCH';
  return retryable(code, `git ${op} of ${safeUrl} failed: ${detail}`, data, err);
}

/** Map a failed local object read (missing commit/tree/blob) to a TenantdError. */
export function objectError(what: string, err: unknown): TenantdError {
  if (err instanceof TenantdError) return err;
  if (errCode(err) === 'NotFoundError') {
    return stalled('E_GIT_OBJECT_NOT_FOUND', `git object not found: ${what}`, { what }, err);
  }
  return retryable('E_GIT_READ', `reading git object ${what} failed: ${errMessage(err)}`, { what, cause: errCode(err) ?? null }, err);
}
