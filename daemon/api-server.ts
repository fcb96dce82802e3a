import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createApp, type ApiAuthenticator, type RouteInfo, type WebhookHandler } from '../api/app.js';
import { IdempotencyStore } from '../api/idempotency.js';
import { DELIVERY_LOG_FILE, DeliveryLog, isRelevantPush, verifyWebhook, type WebhookDelivery } from '../api/webhooks/index.js';
import { createMetrics } from '../api/metrics.js';
import packageJson from '../package.json' with { type: 'json' };
import { TenantInfrastructureService } from '../api/service.js';
import { EventStreamHub, type EventStreamOptions } from '../api/sse.js';
import type { TenantdDaemon } from './daemon.js';
import { forwardingHandler } from './forward-writes.js';
import { tenantMetricViews } from './tenant-metric-views.js';

export interface ApiServerOptions {
  host: string;
  port: number;
  auth: ApiAuthenticator;
  /** Secrets accepted on webhook signatures (several while rotating); none = webhooks off. */
  webhookSecrets?: readonly string[];
  bodyLimit?: number;
  /** Bounds of the event stream (clients per token, bytes per client). */
  events?: EventStreamOptions;
  logError?: (requestId: string, err: unknown) => void;
  /** Under leader election: this replica's identity and the leader it sees (a standby forwards writes there). */
  replica?: { identity: string; leader: () => { identity: string; url: string | null } | null };
  /** Read at every scrape for `tenantd_leader`; absent (no election): this replica leads. */
  isLeader?: () => boolean;
}

export interface ApiServer {
  url: string;
  server: http.Server;
  /** The event stream hub (clients connected, dropped). */
  events: EventStreamHub;
  routes: RouteInfo[];
  close(): Promise<void>;
}

/** Serves the REST API for a daemon: the app over the daemon's own store, log, git and queue. */
export async function startApiServer(daemon: TenantdDaemon, opts: ApiServerOptions): Promise<ApiServer> {
  const service = new TenantInfrastructureService({
    git: daemon.git,
    branch: daemon.config.branch,
    store: daemon.store,
    log: daemon.log,
    loader: daemon.loader,
    publisher: daemon.publisher,
    nudge: (trigger) => void daemon.poll(trigger),
    requestReconcile: (id, trigger, requestedAt) => daemon.requestReconcile(id, trigger, requestedAt),
    problem: () => daemon.problem,
    approvePlan: (id, digest, by, trigger) => daemon.approvePlan(id, digest, by, trigger),
    deletions: { hold: () => daemon.deletions.hold, approve: (commit, by, trigger) => daemon.approveDeletions(commit, by, trigger) },
  });
  const events = new EventStreamHub(daemon.publisher, opts.events);
  const metrics = createMetrics({
    publisher: daemon.publisher,
    queue: daemon.queue,
    statuses: () => daemon.store.all().map((r) => r.status),
    deletionHold: () => daemon.deletions.hold,
    tenants: () => tenantMetricViews({ records: () => daemon.store.all(), desired: () => daemon.loader.all() }),
    build: { version: packageJson.version },
    // Under leader election the replica leads when the Lease it sees names it.
    ...(opts.isLeader ? { isLeader: opts.isLeader } : opts.replica ? { isLeader: () => opts.replica?.leader()?.identity === opts.replica?.identity } : {}),
  });
  const replica = opts.replica;
  const secrets = opts.webhookSecrets ?? [];
  let webhooks: WebhookHandler<WebhookDelivery> | undefined;
  if (secrets.length > 0) {
    const deliveries = await DeliveryLog.open({ file: path.join(daemon.config.dataDir, DELIVERY_LOG_FILE) });
    const branch = daemon.config.branch;
    webhooks = {
      branch,
      verify: (provider, headers, raw) => verifyWebhook(provider, headers, raw, secrets, { branch }),
      seen: async (d) => {
        // Replicas share the file: only the leader answers webhooks, but it may have just taken over.
        if (replica) await deliveries.reload();
        const seen = deliveries.seenDelivery(d);
        // Durable before acting, so a redelivery after a crash is not acted on twice.
        if (!seen) await deliveries.flush();
        return seen;
      },
      relevant: (d) => isRelevantPush(d, branch),
      onPush: (d) => void daemon.poll(`webhook:${d.deliveryId}`),
    };
  }
  const app = createApp({
    service,
    auth: opts.auth,
    events,
    metrics,
    idempotency: await IdempotencyStore.open(daemon.config.dataDir, { shared: replica !== undefined }),
    ready: () => daemon.isReady(),
    ...(replica ? { role: () => replicaRole(daemon, replica) } : {}),
    problem: () => daemon.problem,
    ...(webhooks ? { webhooks } : {}),
    ...(opts.bodyLimit ? { bodyLimit: opts.bodyLimit } : {}),
    ...(opts.logError ? { logError: opts.logError } : {}),
  });
  const local = app.callback();
  const server = http.createServer(
    replica ? forwardingHandler({ identity: replica.identity, standby: () => daemon.roleName === 'standby', leader: replica.leader }, local) : local,
  );
  // Slow or idle clients must not hold sockets forever; SSE streams disable their own timeout.
  server.requestTimeout = 30_000;
  server.headersTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    server,
    events,
    routes: app.routes,
    close: async () => {
      events.closeAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function replicaRole(daemon: TenantdDaemon, replica: NonNullable<ApiServerOptions['replica']>): { role: 'leader' | 'standby'; identity: string; leader: string | null } {
  return { role: daemon.roleName === 'leader' ? 'leader' : 'standby', identity: replica.identity, leader: replica.leader()?.identity ?? null };
}
