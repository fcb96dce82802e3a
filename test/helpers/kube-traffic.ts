/** The request log the recording proxy (kube-proxy.ts) keeps, and the faults tests inject into its traffic. */

export interface RecordedRequest {
  /** 1, 2, 3, … in arrival order. */
  id: number;
  method: string;
  /** The URL path without the query string, e.g. `/apis/apps/v1/namespaces/t1/deployments/web`. */
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  /** The fieldManager query parameter, when sent. */
  fieldManager: string | undefined;
  dryRun: boolean;
  /** The parsed request body (JSON or YAML), the raw text when it did not parse, undefined when empty. */
  body: unknown;
  /** The HTTP status answered; 0 when the connection was dropped (unreachable mode). */
  status: number;
  /** True when an injected fault answered this request. */
  injected: boolean;
}

/**
 * Which requests a fault applies to: every given property must match. `path` is the exact URL
 * path or a RegExp tested against it; `method` is case-insensitive. A function gets the request
 * (its status is still 0) and decides.
 */
export type RequestMatcher =
  | {
      method?: string;
      path?: string | RegExp;
      contentType?: string | RegExp;
      fieldManager?: string;
    }
  | ((request: RecordedRequest) => boolean);

export interface FaultOptions {
  /** The Status message; a default per code otherwise. */
  message?: string;
  /** The Status reason; derived from the code otherwise (409 Conflict, 422 Invalid, 500 InternalError, …). */
  reason?: string;
  /** Drop the connection instead of answering (the status code is then unused). */
  drop?: boolean;
}

export interface InjectedFault {
  /** How many requests this fault has answered. */
  readonly fired: number;
  /** How many more it will answer. */
  readonly remaining: number;
  cancel(): void;
}

export interface Fault extends InjectedFault {
  readonly status: number;
  readonly options: FaultOptions;
  matches(request: RecordedRequest): boolean;
  fire(): void;
}

export function matches(matcher: RequestMatcher, request: RecordedRequest): boolean {
  if (typeof matcher === 'function') return matcher(request);
  if (matcher.method && matcher.method.toUpperCase() !== request.method) return false;
  if (matcher.path !== undefined) {
    if (typeof matcher.path === 'string' ? matcher.path !== request.path : !matcher.path.test(request.path)) return false;
  }
  if (matcher.contentType !== undefined) {
    const ct = request.contentType ?? '';
    if (typeof matcher.contentType === 'string' ? !ct.startsWith(matcher.contentType) : !matcher.contentType.test(ct)) return false;
  }
  if (matcher.fieldManager !== undefined && matcher.fieldManager !== request.fieldManager) return false;
  return true;
}

export function createFault(matcher: RequestMatcher, status: number, times: number, options: FaultOptions): Fault {
  let fired = 0;
  let cancelled = false;
  return {
    status,
    options,
    get fired() {
      return fired;
    },
    get remaining() {
      return cancelled ? 0 : Math.max(0, times - fired);
    },
    cancel() {
      cancelled = true;
    },
    matches(request) {
      return !cancelled && fired < times && matches(matcher, request);
    },
    fire() {
      fired++;
    },
  };
}
