import type { DesiredInfrastructureState, Problem, TenantEntity, TenantPage, TenantStatus, TransitionPage } from './types.js';

export const API = '/api/v1';
const TENANTS = `${API}/infrastructure/tenants`;

/** A failed API call, carrying the RFC 9457 problem document (or what we could make of the answer). */
export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail || problem.title);
  }
  get status(): number {
    return this.problem.status;
  }
  /** The token is missing, unknown or expired (401) or lacks the scope (403). */
  get isAuth(): boolean {
    return this.problem.status === 401 || this.problem.status === 403;
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

async function problemOf(res: Response): Promise<Problem> {
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const b = isRecord(body) ? body : {};
  const str = (k: string, d: string): string => (typeof b[k] === 'string' ? (b[k] as string) : d);
  return {
    status: res.status,
    title: str('title', res.statusText || `HTTP ${res.status}`),
    detail: str('detail', ''),
    code: str('code', `HTTP_${res.status}`),
    ...(typeof b['requestId'] === 'string' ? { requestId: b['requestId'] } : {}),
  };
}

/** The REST API with one bearer token; every call is authenticated, nothing is cached. */
export class ApiClient {
  /**
   * metadata.name of tenants whose entity does not carry it, by `<id>@<desired commit>`, read from
   * …/desired. Kept per client (per token), so signing out forgets it.
   */
  readonly names = new Map<string, string | null>();
  private readonly pendingNames = new Set<string>();

  constructor(readonly token: string) {}

  nameOf(e: TenantEntity): string | null {
    return e.name ?? this.names.get(`${e.tenantId}@${e.desiredCommit}`) ?? null;
  }

  /** Fills `names` for these tenants (a few requests at a time); resolves true when something new was learnt. */
  async resolveNames(items: readonly TenantEntity[]): Promise<boolean> {
    const todo = items.filter((e) => e.name === undefined && !this.names.has(`${e.tenantId}@${e.desiredCommit}`) && !this.pendingNames.has(`${e.tenantId}@${e.desiredCommit}`));
    if (todo.length === 0) return false;
    for (const e of todo) this.pendingNames.add(`${e.tenantId}@${e.desiredCommit}`);
    await mapLimit(todo, 6, async (e) => {
      const key = `${e.tenantId}@${e.desiredCommit}`;
      try {
        const d = await this.desired(e.tenantId);
        this.names.set(key, d.document?.metadata.name ?? null);
      } catch {
        this.names.set(key, null);
      } finally {
        this.pendingNames.delete(key);
      }
    });
    return true;
  }

  async get<T>(path: string, signal?: AbortSignal): Promise<T> {
    let res: Response;
    try {
      res = await fetch(path, { headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json' }, cache: 'no-store', ...(signal ? { signal } : {}) });
    } catch (err: unknown) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      throw new ApiError({ status: 0, title: 'Network error', detail: 'the tenantd API cannot be reached', code: 'E_NETWORK' });
    }
    if (!res.ok) throw new ApiError(await problemOf(res));
    return (await res.json()) as T;
  }

  list(opts: { status?: TenantStatus | null; q?: string; limit: number; after?: string | null }, signal?: AbortSignal): Promise<TenantPage> {
    const p = new URLSearchParams();
    if (opts.status) p.set('status', opts.status);
    if (opts.q) p.set('q', opts.q);
    p.set('limit', String(opts.limit));
    if (opts.after) p.set('after', opts.after);
    return this.get<TenantPage>(`${TENANTS}?${p}`, signal);
  }

  tenant(id: string, signal?: AbortSignal): Promise<TenantEntity> {
    return this.get<TenantEntity>(`${TENANTS}/${encodeURIComponent(id)}`, signal);
  }

  desired(id: string, signal?: AbortSignal): Promise<DesiredInfrastructureState> {
    return this.get<DesiredInfrastructureState>(`${TENANTS}/${encodeURIComponent(id)}/desired`, signal);
  }

  transitions(id: string, offset: number, limit: number, signal?: AbortSignal): Promise<TransitionPage> {
    return this.get<TransitionPage>(`${TENANTS}/${encodeURIComponent(id)}/transitions?offset=${offset}&limit=${limit}`, signal);
  }
}

/** Runs `fn` over `items` with at most `n` at a time. */
export async function mapLimit<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}
