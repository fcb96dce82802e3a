/**
 * Fencing under leader election: every durable write first asks the fence, which throws
 * E_NOT_LEADER unless this replica holds an unexpired lease (core/leader/election.ts). The state
 * store and the transition log ask it themselves; these wrappers put it in front of the other
 * writers — a provider's phases (the cluster, rendered files, Pulumi state) and git commits.
 */
import { E_NOT_LEADER } from '../core/leader/election.js';
import { isTenantdError } from '../core/errors.js';
import type { InfrastructureProvider } from '../providers/provider.js';

export type WriteFence = (what: string) => void;

export const isFenced = (err: unknown): boolean => isTenantdError(err) && err.code === E_NOT_LEADER;

/** The provider, with the fence asked before each phase starts (a phase in flight is stopped by its abort signal). */
export function fencedProvider(provider: InfrastructureProvider, fence: WriteFence): InfrastructureProvider {
  const guard =
    <A extends unknown[], R>(what: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      fence(`${provider.name} ${what}`);
      return fn(...args);
    };
  const p = provider;
  return {
    ...(p.admit ? { admit: p.admit.bind(p) } : {}),
    ...(p.stateKey ? { stateKey: p.stateKey.bind(p) } : {}),
    ...(p.ready ? { ready: p.ready.bind(p) } : {}),
    ...(p.close ? { close: p.close.bind(p) } : {}),
    name: p.name,
    plan: guard('plan', p.plan.bind(p)),
    apply: guard('apply', p.apply.bind(p)),
    deploy: guard('deploy', p.deploy.bind(p)),
    configure: guard('configure', p.configure.bind(p)),
    verify: guard('verify', p.verify.bind(p)),
    destroy: guard('destroy', p.destroy.bind(p)),
    refresh: guard('drift check', p.refresh.bind(p)),
  };
}

interface CommitRequest {
  build: (head: string | null) => Promise<Array<{ path: string; content: string | null }>> | Array<{ path: string; content: string | null }>;
}

/**
 * A commit request whose fence is asked now and again inside `build`, which the git store runs
 * under its lock just before it writes (a commit may wait behind others for a while).
 */
export function fencedCommit<R extends CommitRequest>(req: R, fence: WriteFence, what: string): R {
  fence(what);
  return {
    ...req,
    build: (head: string | null) => {
      fence(what);
      return req.build(head);
    },
  };
}
