/**
 * How the Kubernetes provider turns what the API server (or the network) said into a TenantdError
 * typed by what should happen next. Codes are stable; tests and the daemon key on them.
 *
 * | situation                                             | code                     | kind      |
 * |-------------------------------------------------------|--------------------------|-----------|
 * | connection refused/reset, DNS, timeout, 5xx, 429      | E_CLUSTER_UNREACHABLE    | waiting   |
 * | 409 conflict with another field manager               | E_FIELD_CONFLICT         | stalled   |
 * | 409 of another kind (resourceVersion, uid precondition)| E_KUBE_CONFLICT         | retryable |
 * | 422 Invalid / 400 BadRequest                          | E_INVALID_OBJECT         | stalled   |
 * | 403 Forbidden                                         | E_FORBIDDEN              | stalled   |
 * | 403 because the namespace is being deleted            | E_NAMESPACE_TERMINATING  | retryable |
 * | 401 Unauthorized                                      | E_UNAUTHORIZED           | stalled   |
 * | 404 on a write (namespace missing, …)                 | E_NOT_FOUND              | retryable |
 * | kind not served by the cluster (discovery)            | E_UNSUPPORTED_KIND       | stalled   |
 * | anything else from the API server                     | E_KUBE_API               | retryable |
 * | the operation's signal aborted                        | E_ABORTED                | retryable |
 */
import { retryable, stalled, waiting, type TenantdError } from '../../core/errors.js';
import { refKey } from '../resources/renderer.js';
import type { KubeObjectRef } from '../resources/types.js';
import { KubeApiError, RequestAbortedError, RequestTimeoutError, UnsupportedKindError, type KubeStatus } from './client.js';

export const E_CLUSTER_UNREACHABLE = 'E_CLUSTER_UNREACHABLE';
export const E_FIELD_CONFLICT = 'E_FIELD_CONFLICT';
export const E_KUBE_CONFLICT = 'E_KUBE_CONFLICT';
export const E_INVALID_OBJECT = 'E_INVALID_OBJECT';
export const E_FORBIDDEN = 'E_FORBIDDEN';
export const E_UNAUTHORIZED = 'E_UNAUTHORIZED';
export const E_NOT_FOUND = 'E_NOT_FOUND';
export const E_NAMESPACE_TERMINATING = 'E_NAMESPACE_TERMINATING';
export const E_UNSUPPORTED_KIND = 'E_UNSUPPORTED_KIND';
export const E_KUBE_API = 'E_KUBE_API';
export const E_ABORTED = 'E_ABORTED';
export const E_NOT_OWNED = 'E_NOT_OWNED';
export const E_OBJECT_TERMINATING = 'E_OBJECT_TERMINATING';
export const E_ROLLOUT_FAILED = 'E_ROLLOUT_FAILED';
export const E_VERIFY_TIMEOUT = 'E_VERIFY_TIMEOUT';
export const E_NO_CLUSTER_FOR_REGION = 'E_NO_CLUSTER_FOR_REGION';
export const E_KUBE_CONTEXT_NOT_FOUND = 'E_KUBE_CONTEXT_NOT_FOUND';
export const E_KUBECONFIG = 'E_KUBECONFIG';
export const E_CLUSTERS_FILE = 'E_CLUSTERS_FILE';
export const E_INVENTORY_CORRUPT = 'E_INVENTORY_CORRUPT';

/** Network-level error codes that mean "the API server cannot be reached right now". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export interface ErrorContext {
  tenantId: string;
  /** `<context> (<server>)` */
  cluster: string;
  /** What tenantd was doing: `apply`, `read`, `delete`, `list`, `dry-run apply`, `discovery`. */
  action: string;
  ref?: KubeObjectRef;
  /** The operation's signal: an abort is reported as E_ABORTED whatever the request failed with. */
  signal?: AbortSignal;
  /** Strings that must never appear in an error (generated secret values): replaced by `[redacted]`. */
  redact?: readonly string[];
}

export interface FieldConflict {
  manager: string;
  field: string;
  message: string;
}

function errnoCode(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 4 && cur !== null && typeof cur === 'object'; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function isAbortError(err: unknown): boolean {
  return err instanceof RequestAbortedError || (err instanceof Error && (err.name === 'AbortError' || err.name === 'AbortSignal'));
}

/** Field-manager conflicts from a 409's Status causes. */
export function fieldConflicts(status: KubeStatus): FieldConflict[] {
  const out: FieldConflict[] = [];
  for (const cause of status.details?.causes ?? []) {
    if (cause.type !== 'FieldManagerConflict' && cause.reason !== 'FieldManagerConflict') continue;
    const message = cause.message ?? '';
    const manager = /conflict with "([^"]+)"/.exec(message)?.[1] ?? 'unknown';
    out.push({ manager, field: cause.field ?? '', message });
  }
  return out;
}

function causesOf(status: KubeStatus): { field: string; reason: string; message: string }[] {
  return (status.details?.causes ?? []).map((c) => ({ field: c.field ?? '', reason: c.reason ?? c.type ?? '', message: c.message ?? '' }));
}

function redactText(text: string, secrets: readonly string[] | undefined): string {
  let out = text;
  for (const s of secrets ?? []) if (s.length > 0) out = out.split(s).join('[redacted]');
  return out;
}

function redactDeep<T>(value: T, secrets: readonly string[] | undefined): T {
  if (!secrets || secrets.length === 0) return value;
  return JSON.parse(redactText(JSON.stringify(value), secrets)) as T;
}

/** Turns anything a Kubernetes call threw into a TenantdError typed by what should happen next. */
export function toKubeError(err: unknown, ec: ErrorContext): TenantdError {
  const on = ec.ref ? ` ${refKey(ec.ref)}` : '';
  const base: Record<string, unknown> = { tenantId: ec.tenantId, cluster: ec.cluster, action: ec.action, ...(ec.ref ? { ref: refKey(ec.ref) } : {}) };
  const finish = (e: TenantdError): TenantdError => {
    if (!ec.redact || ec.redact.length === 0) return e;
    const r = (e.kind === 'stalled' ? stalled : e.kind === 'waiting' ? waiting : retryable)(e.code, redactText(e.message, ec.redact), redactDeep(e.data, ec.redact));
    return r;
  };

  if (ec.signal?.aborted || isAbortError(err)) {
    return retryable(E_ABORTED, `${ec.action}${on} for tenant ${ec.tenantId} was aborted`, base);
  }
  if (err instanceof RequestTimeoutError) {
    return waiting(E_CLUSTER_UNREACHABLE, `cluster ${ec.cluster} did not answer ${ec.action}${on} within ${err.timeoutMs} ms`, { ...base, reason: 'Timeout' }, err);
  }
  if (err instanceof UnsupportedKindError) {
    return stalled(E_UNSUPPORTED_KIND, `cluster ${ec.cluster} does not serve ${err.apiVersion} ${err.kind}, needed for${on || ' a tenant object'}`, {
      ...base,
      apiVersion: err.apiVersion,
      kind: err.kind,
    });
  }
  if (err instanceof KubeApiError) {
    const status = err.status;
    const message = redactText(status.message ?? `HTTP ${err.statusCode}`, ec.redact);
    const data = { ...base, status: err.statusCode, reason: status.reason ?? null };
    const code = err.statusCode;
    if (code === 409) {
      const conflicts = fieldConflicts(status);
      if (conflicts.length > 0) {
        const list = conflicts.map((c) => `${c.field} (owned by "${c.manager}")`).join(', ');
        return finish(
          stalled(
            E_FIELD_CONFLICT,
            `${ec.action}${on} conflicts with another field manager: ${list}. Let that manager give the fields up, or set spec.forceConflicts: true to take them over`,
            { ...data, conflicts: conflicts.map((c) => ({ manager: c.manager, field: c.field })), managers: [...new Set(conflicts.map((c) => c.manager))].sort() },
          ),
        );
      }
      return finish(retryable(E_KUBE_CONFLICT, `${ec.action}${on}: ${message}`, data));
    }
    if (code === 422 || code === 400) {
      const causes = causesOf(status);
      const detail = causes.length > 0 ? causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join('; ') : message;
      return finish(stalled(E_INVALID_OBJECT, `cluster ${ec.cluster} rejected${on || ' an object'} as invalid: ${detail}`, { ...data, causes, serverMessage: message }));
    }
    if (code === 403) {
      const terminating = (status.details?.causes ?? []).some((c) => c.type === 'NamespaceTerminating') || /is being terminated/.test(status.message ?? '');
      if (terminating) {
        return finish(retryable(E_NAMESPACE_TERMINATING, `${ec.action}${on}: the namespace is still being deleted; retrying once it is gone`, data));
      }
      return finish(stalled(E_FORBIDDEN, `cluster ${ec.cluster} forbids ${ec.action}${on}: ${message}. Grant tenantd's identity the permission`, data));
    }
    if (code === 401) {
      return finish(stalled(E_UNAUTHORIZED, `cluster ${ec.cluster} rejected tenantd's credentials (${message}); fix the kubeconfig`, data));
    }
    if (code === 404) {
      return finish(retryable(E_NOT_FOUND, `${ec.action}${on}: ${message}`, { ...data, notFound: status.details?.kind ?? null, name: status.details?.name ?? null }));
    }
    if (code === 429 || code >= 500) {
      return finish(waiting(E_CLUSTER_UNREACHABLE, `cluster ${ec.cluster} cannot serve ${ec.action}${on} now (HTTP ${code} ${status.reason ?? ''}): ${message}`.replace(/ +\)/, ')'), data));
    }
    return finish(retryable(E_KUBE_API, `${ec.action}${on} failed with HTTP ${code}: ${message}`, data));
  }
  const errno = errnoCode(err);
  const text = err instanceof Error ? err.message : String(err);
  if ((errno && NETWORK_CODES.has(errno)) || /socket hang up|ECONNREFUSED|ECONNRESET|network|fetch failed/i.test(text)) {
    return waiting(E_CLUSTER_UNREACHABLE, `cluster ${ec.cluster} is unreachable (${errno ?? 'network error'}) during ${ec.action}${on}`, { ...base, errno: errno ?? null }, err);
  }
  return finish(retryable(E_KUBE_API, `${ec.action}${on} failed: ${redactText(text, ec.redact)}`, { ...base, errno: errno ?? null }));
}
