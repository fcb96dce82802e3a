/**
 * `--leader-elect`: the election of core/leader/election.ts on a `coordination.k8s.io/v1` Lease,
 * written through the kubernetes provider's client (same kubeconfig, kept-alive connections, request
 * deadlines), and the loop that runs it.
 */
import { abortableSleep } from '../core/abortable-sleep.js';
import { promises as fsp } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { KubeConfig } from '@kubernetes/client-node';
import { TenantdError } from '../core/errors.js';
import { E_LEASE_CONFLICT, LeaderElection, type ElectionEvent, type ElectionTiming, type LeaseRecord, type LeaseStore, type ObservedLease } from '../core/leader/election.js';
import { KubeApiError, KubeClient, type LiveObject } from '../providers/kubernetes/client.js';
import type { KubeObjectRef } from '../providers/resources/types.js';

/** The annotation on the Lease that says where the holder serves its API (standbys forward writes there). */
export const ANNOTATION_LEADER_URL = 'tenantd.io/leader-url';
const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface LeaseLocation {
  namespace: string;
  name: string;
}

interface LeaseObject extends LiveObject {
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number | null;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number | null;
  };
}

const conflict = (err: unknown, what: string): unknown =>
  err instanceof KubeApiError && err.statusCode === 409 ? new TenantdError(E_LEASE_CONFLICT, 'retryable', `${what}: ${err.message}`, { status: 409 }, { cause: err }) : err;

/** The Lease as a LeaseStore: GET, POST (409 = exists) and PUT with the resourceVersion read (409 = someone else wrote). */
export class KubeLeaseStore implements LeaseStore {
  private readonly ref: KubeObjectRef;
  /** The object last read or written, so an update keeps its metadata (labels, other annotations). */
  private last: LeaseObject | null = null;

  constructor(
    private readonly client: KubeClient,
    readonly lease: LeaseLocation,
  ) {
    this.ref = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name: lease.name, namespace: lease.namespace };
  }

  get description(): string {
    return `Lease ${this.lease.namespace}/${this.lease.name} on ${this.client.description}`;
  }

  async get(signal: AbortSignal): Promise<ObservedLease | null> {
    const live = (await this.client.get(this.ref, signal)) as LeaseObject | null;
    this.last = live;
    return live ? observed(live) : null;
  }

  async create(record: LeaseRecord, signal: AbortSignal): Promise<ObservedLease> {
    try {
      const made = (await this.client.create(this.object(record, null), this.ref, signal)) as LeaseObject;
      this.last = made;
      return observed(made);
    } catch (err: unknown) {
      throw conflict(err, `creating ${this.description}`);
    }
  }

  async update(record: LeaseRecord, version: string, signal: AbortSignal): Promise<ObservedLease> {
    try {
      const put = (await this.client.replace(this.object(record, version), this.ref, signal)) as LeaseObject;
      this.last = put;
      return observed(put);
    } catch (err: unknown) {
      throw conflict(err, `updating ${this.description}`);
    }
  }

  private object(record: LeaseRecord, version: string | null): LeaseObject {
    const meta = this.last?.metadata;
    const annotations = { ...(meta?.annotations ?? {}) };
    if (record.holderUrl) annotations[ANNOTATION_LEADER_URL] = record.holderUrl;
    else delete annotations[ANNOTATION_LEADER_URL];
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.lease.name,
        namespace: this.lease.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'tenantd', ...(meta?.labels ?? {}) },
        annotations,
        ...(version !== null ? { resourceVersion: version } : {}),
      },
      spec: {
        ...(record.holderIdentity ? { holderIdentity: record.holderIdentity } : {}),
        leaseDurationSeconds: record.leaseDurationSeconds,
        ...(record.acquireTime ? { acquireTime: record.acquireTime } : {}),
        ...(record.renewTime ? { renewTime: record.renewTime } : {}),
        leaseTransitions: record.leaseTransitions,
      },
    };
  }
}

function observed(live: LeaseObject): ObservedLease {
  const s = live.spec ?? {};
  return {
    version: live.metadata.resourceVersion ?? '',
    record: {
      holderIdentity: s.holderIdentity ?? '',
      leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
      acquireTime: s.acquireTime ?? null,
      renewTime: s.renewTime ?? null,
      leaseTransitions: s.leaseTransitions ?? 0,
      holderUrl: live.metadata.annotations?.[ANNOTATION_LEADER_URL] ?? null,
    },
  };
}

export interface LeaderElectionSettings {
  kubeconfig: string | null;
  context: string | null;
  /** null: the service account's namespace in a pod, else the kubeconfig context's, else `default`. */
  namespace: string | null;
  name: string;
  identity: string;
  url: string | null;
  timing: ElectionTiming;
}

/** The kubeconfig the provider would use, its client, and the Lease's namespace. */
export async function leaseClient(s: LeaderElectionSettings): Promise<{ client: KubeClient; namespace: string }> {
  const kc = new KubeConfig();
  try {
    if (s.kubeconfig) kc.loadFromFile(s.kubeconfig);
    else kc.loadFromDefault();
    if (s.context) kc.setCurrentContext(s.context);
  } catch (err: unknown) {
    throw new TenantdError('E_CONFIG', 'stalled', `--leader-elect: cannot load the kubeconfig${s.kubeconfig ? ` ${s.kubeconfig}` : ''}: ${err instanceof Error ? err.message : String(err)}`, { field: 'kubeconfig' });
  }
  if (!kc.getCurrentCluster()) throw new TenantdError('E_CONFIG', 'stalled', '--leader-elect: the kubeconfig names no cluster to hold the Lease (set --kubeconfig or run in a pod)', { field: 'kubeconfig' });
  const namespace =
    s.namespace ??
    ((await fsp.readFile(SERVICE_ACCOUNT_NAMESPACE, 'utf8').catch(() => '')).trim() || kc.getContextObject(kc.getCurrentContext())?.namespace || 'default');
  // Lease calls must answer well within the renew deadline; a hung one is cut by the election's own bound too.
  return { client: new KubeClient(kc.getCurrentContext(), kc, { requestTimeoutMs: Math.max(1000, Math.floor(s.timing.renewDeadlineMs / 2)) }), namespace };
}

export interface ElectionRunner {
  readonly election: LeaderElection;
  readonly lease: LeaseLocation;
  /** Starts the loop (once): one `step` after another, each followed by the wait it asks for. */
  start(): void;
  /** Stops the loop; when leading, releases the lease (a standby takes over at its next attempt). */
  stop(): Promise<void>;
}

export const monotonicClock = { now: () => performance.now(), wall: () => new Date() };

/**
 * The election on `store`, not running yet: the fence (`election.fence`) can be handed to the
 * daemon before the first attempt. Events go to `onEvent` as they happen.
 */
export function electionRunner(store: LeaseStore & { lease: LeaseLocation }, s: LeaderElectionSettings, onEvent: (e: ElectionEvent) => void): ElectionRunner {
  const election = new LeaderElection({ identity: s.identity, url: s.url, timing: s.timing, store, clock: monotonicClock, onEvent });
  const stopper = new AbortController();
  let loop: Promise<void> = Promise.resolve();
  let started = false;
  return {
    election,
    lease: store.lease,
    start() {
      if (started) return;
      started = true;
      loop = (async () => {
        while (!stopper.signal.aborted) {
          const wait = await election.step(stopper.signal);
          await abortableSleep(wait, stopper.signal);
        }
      })();
    },
    async stop() {
      stopper.abort();
      await loop;
      await election.release(AbortSignal.timeout(s.timing.renewDeadlineMs));
    },
  };
}
