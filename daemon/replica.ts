/**
 * `--leader-elect` in the daemon command: the Lease election, its fence handed to the daemon, and
 * the role changes it drives — leading starts the daemon as after a restart (`lead()`), losing the
 * lease stops it writing and makes it a standby again (`stepDown()`).
 */
import type { ElectionEvent } from '../core/leader/election.js';
import type { DaemonConfig, LeaderElectionConfig } from './config.js';
import type { DaemonDeps, TenantdDaemon } from './daemon.js';
import { electionRunner, KubeLeaseStore, leaseClient, type ElectionRunner } from './leader-election.js';

export type ReplicaLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface Replica {
  readonly runner: ElectionRunner;
  readonly identity: string;
  /** What the daemon is given: the fence every durable write asks first. */
  readonly deps: NonNullable<DaemonDeps['election']>;
  /** Start campaigning; the daemon must be open and serving reads as a standby. */
  run(daemon: TenantdDaemon): void;
  /** The holder as this replica last saw it (standbys forward writes to its URL), null when none. */
  leader(): { identity: string; url: string | null } | null;
  /** Stop campaigning and give the lease up if held (call after the daemon stopped). */
  stop(): Promise<void>;
}

export async function openReplica(config: DaemonConfig, le: LeaderElectionConfig, log: ReplicaLog): Promise<Replica> {
  const { client, namespace } = await leaseClient({
    kubeconfig: config.kube.kubeconfig,
    context: config.kube.context,
    namespace: le.namespace,
    name: le.name,
    identity: le.identity,
    url: le.advertiseUrl,
    timing: le.timing,
  });
  const store = new KubeLeaseStore(client, { namespace, name: le.name });
  let daemon: TenantdDaemon | null = null;
  let lastFailure = '';
  const onEvent = (e: ElectionEvent): void => {
    switch (e.type) {
      case 'StartedLeading':
        lastFailure = '';
        log('info', `leader election: ${e.identity} leads (Lease ${namespace}/${le.name}, transitions ${e.leaseTransitions})`, { event: 'StartedLeading', identity: e.identity, leaseTransitions: e.leaseTransitions });
        void daemon?.lead().catch((err: unknown) => {
          // The data dir is held by a daemon without leader election (or cannot be read): give the lease up.
          log('error', `leader election: cannot take over the data dir: ${err instanceof Error ? err.message : String(err)}`, { event: 'LeadFailed' });
          void runner.election.release(AbortSignal.timeout(le.timing.renewDeadlineMs));
        });
        break;
      case 'StoppedLeading':
        log('warn', `leader election: ${e.identity} stopped leading (${e.reason}); no more writes from this replica`, { event: 'StoppedLeading', identity: e.identity, reason: e.reason });
        void daemon?.stepDown().catch((err: unknown) => log('error', `leader election: stepping down failed: ${err instanceof Error ? err.message : String(err)}`));
        break;
      case 'NewLeader':
        log('info', `leader election: the Lease names ${e.identity ?? 'no holder'}`, { event: 'NewLeader', leader: e.identity });
        break;
      case 'AttemptFailed':
        // Said once per distinct failure, not every retry period.
        if (e.message !== lastFailure) log('warn', `leader election: ${e.code}: ${e.message}`, { event: 'AttemptFailed', code: e.code });
        lastFailure = e.message;
        break;
    }
  };
  const runner = electionRunner(store, { kubeconfig: config.kube.kubeconfig, context: config.kube.context, namespace, name: le.name, identity: le.identity, url: le.advertiseUrl, timing: le.timing }, onEvent);
  const election = runner.election;
  return {
    runner,
    identity: le.identity,
    deps: { fence: (what) => election.fence(what), holdsLease: () => election.holdsLease(), lease: `${namespace}/${le.name}`, identity: le.identity },
    run(d) {
      daemon = d;
      runner.start();
    },
    leader: () => election.leader(),
    stop: () => runner.stop(),
  };
}
