/**
 * A tenantd daemon run by the benchmark in a process of its own, so its memory is its own and the
 * load generator never shares its event loop. Started by bench/run.ts with one JSON argument and
 * an IPC channel; it reports figures it measured itself (performance.now(), resourceUsage) back
 * over IPC.
 *
 * - `reconcile`: open the daemon on a repository of new tenants, start it, wait until every tenant
 *   is reconciled and its status committed, report the time, the statuses and the peak RSS, stop.
 * - `serve`: open the daemon on an already reconciled repository and data directory with the REST
 *   API on 127.0.0.1 (a real tokens file, a webhook secret), then answer commands: no-op polls,
 *   wait for idle, memory figures, stop. Webhook latency is measured here: from the moment the
 *   HTTP server receives a webhook request to the ReconcileStarted event its delivery causes.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createAuthenticator } from '../api/auth/index.js';
import { startApiServer, type ApiServer } from '../daemon/api-server.js';
import { parseDaemonConfig } from '../daemon/config.js';
import { TenantdDaemon } from '../daemon/daemon.js';
import { applyHeapPolicy } from '../daemon/heap-policy.js';

export interface ChildConfig {
  mode: 'reconcile' | 'serve';
  repo: string;
  dataDir: string;
  concurrency: number;
  tokensFile?: string;
  webhookSecret?: string;
  /** Event streams one token may hold (the SSE scenario opens hundreds on one token). */
  sseMaxStreams?: number;
}

export type ChildCommand =
  | { id: number; cmd: 'noop-poll'; n: number }
  | { id: number; cmd: 'idle' }
  | { id: number; cmd: 'stats' }
  | { id: number; cmd: 'memory' }
  | { id: number; cmd: 'rss-watch'; on: boolean }
  | { id: number; cmd: 'stop' };

/** Memory now (no GC first) and the event-stream clients held and dropped. */
export interface MemoryNow extends MemoryFigures {
  sseClients: number;
  sseDropped: number;
}

export interface MemoryFigures {
  rssMb: number;
  heapUsedMb: number;
  /** Peak resident set size of this process so far (getrusage maxrss). */
  maxRssMb: number;
  /** VmHWM from /proc/self/status where available (the kernel's own peak RSS figure). */
  vmHwmMb: number | null;
}

export interface ReconcileReport {
  type: 'reconciled';
  /** From TenantdDaemon.open to whenIdle() resolving (status committed), ms. */
  wallMs: number;
  openMs: number;
  tenants: number;
  statuses: Record<string, number>;
  statusCommits: number;
  statusFilesCommitted: number;
  reconciles: number;
  /** CPU time of the daemon process from open to idle, seconds. */
  cpuUserS: number;
  cpuSystemS: number;
  memory: MemoryFigures;
}

export interface ServeReady {
  type: 'ready';
  url: string;
  /** From open to the first whenIdle() (restart: load, recover, compare status), ms. */
  startMs: number;
  tenants: number;
  memory: MemoryFigures;
}

export interface WebhookObservation {
  type: 'webhook';
  deliveryId: string;
  tenantId: string;
  /** HTTP request received → ReconcileStarted of the changed tenant, ms. */
  ms: number;
}

const MB = 1024 * 1024;

export function memoryFigures(): MemoryFigures {
  const m = process.memoryUsage();
  let vmHwmMb: number | null = null;
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) vmHwmMb = Number(match[1]) / 1024;
  } catch {
    vmHwmMb = null;
  }
  return { rssMb: m.rss / MB, heapUsedMb: m.heapUsed / MB, maxRssMb: process.resourceUsage().maxRSS / 1024, vmHwmMb };
}

function send(message: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) {
      reject(new Error('bench/child.ts must be started with an IPC channel'));
      return;
    }
    process.send(message, (err: Error | null) => (err ? reject(err) : resolve()));
  });
}

function daemonConfig(c: ChildConfig) {
  const flags = ['--repo', c.repo, '--data-dir', c.dataDir, '--poll', '0', '--log-format', 'json', '--concurrency', String(c.concurrency), '--drift-interval', '0'];
  if (c.webhookSecret) flags.push('--webhook-secret', c.webhookSecret);
  return parseDaemonConfig(flags, {}, process.cwd());
}

async function reconcile(c: ChildConfig): Promise<void> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  // Event lines go to stdout like a real daemon's (the parent discards them).
  const daemon = await TenantdDaemon.open(daemonConfig(c), { write: (l) => void process.stdout.write(l) });
  const openMs = performance.now() - t0;
  let statusCommits = 0;
  let statusFilesCommitted = 0;
  let reconciles = 0;
  daemon.publisher.subscribe((e) => {
    if (e.type === 'StatusCommitted') {
      statusCommits++;
      statusFilesCommitted += e.tenants;
    } else if (e.type === 'ReconcileStarted') reconciles++;
  });
  await daemon.start();
  await daemon.whenIdle();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const statuses: Record<string, number> = {};
  for (const r of daemon.store.all()) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const report: ReconcileReport = {
    type: 'reconciled',
    wallMs,
    openMs,
    tenants: daemon.store.size,
    statuses,
    statusCommits,
    statusFilesCommitted,
    reconciles,
    cpuUserS: cpu.user / 1e6,
    cpuSystemS: cpu.system / 1e6,
    memory: memoryFigures(),
  };
  await daemon.stop();
  await send(report);
}

async function serve(c: ChildConfig): Promise<void> {
  if (!c.tokensFile || !c.webhookSecret) throw new Error('serve mode needs tokensFile and webhookSecret');
  const t0 = performance.now();
  const daemon = await TenantdDaemon.open(daemonConfig(c), { write: (l) => void process.stdout.write(l) });
  const auth = await createAuthenticator({ tokensFile: c.tokensFile });
  const api: ApiServer = await startApiServer(daemon, {
    host: '127.0.0.1',
    port: 0,
    auth,
    webhookSecrets: [c.webhookSecret],
    ...(c.sseMaxStreams ? { events: { maxStreamsPerPrincipal: c.sseMaxStreams } } : {}),
  });
  // Peak RSS over a window (rss-watch on … off), sampled often: maxRSS is the whole life's peak.
  let watch: { timer: NodeJS.Timeout; peakMb: number; samples: number } | null = null;

  // Webhook latency: request received by the server → ReconcileStarted caused by that delivery.
  const arrivals = new Map<string, number>();
  api.server.prependListener('request', (req: IncomingMessage) => {
    if (!req.url?.startsWith('/api/v1/webhooks/')) return;
    const id = req.headers['x-tenantd-delivery'];
    if (typeof id === 'string') arrivals.set(id, performance.now());
  });
  daemon.publisher.subscribe((e) => {
    if (e.type !== 'ReconcileStarted' || !e.trigger.startsWith('webhook:')) return;
    const deliveryId = e.trigger.slice('webhook:'.length).replace(/@[0-9a-f]+$/, '');
    const at = arrivals.get(deliveryId);
    if (at === undefined) return;
    const obs: WebhookObservation = { type: 'webhook', deliveryId, tenantId: e.tenantId, ms: performance.now() - at };
    void send(obs);
  });

  await daemon.start();
  await daemon.whenIdle();
  const ready: ServeReady = { type: 'ready', url: api.url, startMs: performance.now() - t0, tenants: daemon.store.size, memory: memoryFigures() };
  await send(ready);

  process.on('message', (m: ChildCommand) => {
    void (async () => {
      switch (m.cmd) {
        case 'noop-poll': {
          const samples: number[] = [];
          let changed = 0;
          const before = daemon.loader.commit;
          for (let i = 0; i < m.n; i++) {
            const t = performance.now();
            const r = await daemon.poll('poll');
            samples.push(performance.now() - t);
            changed += r.changed.length;
          }
          await send({ type: 'reply', id: m.id, data: { samples, changed, headMoved: daemon.loader.commit !== before, tenants: daemon.loader.size } });
          break;
        }
        case 'idle':
          await daemon.whenIdle();
          await send({ type: 'reply', id: m.id, data: { tenants: daemon.store.size } });
          break;
        case 'stats': {
          const before = memoryFigures();
          // A full GC, then the heap still in use: what the daemon retains, apart from GC slack.
          v8.setFlagsFromString('--expose-gc');
          (vm.runInNewContext('gc') as () => void)();
          const retainedHeapMb = process.memoryUsage().heapUsed / MB;
          await send({ type: 'reply', id: m.id, data: { ...before, retainedHeapMb } });
          break;
        }
        case 'memory': {
          const now: MemoryNow = { ...memoryFigures(), sseClients: api.events.clients, sseDropped: api.events.dropped };
          await send({ type: 'reply', id: m.id, data: now });
          break;
        }
        case 'rss-watch': {
          if (m.on) {
            const w = { timer: setInterval(() => {
              w.peakMb = Math.max(w.peakMb, process.memoryUsage.rss() / MB);
              w.samples++;
            }, 10), peakMb: process.memoryUsage.rss() / MB, samples: 1 };
            watch = w;
            await send({ type: 'reply', id: m.id, data: { peakMb: w.peakMb, samples: 1 } });
          } else {
            const w = watch;
            if (w) clearInterval(w.timer);
            watch = null;
            await send({ type: 'reply', id: m.id, data: { peakMb: w?.peakMb ?? 0, samples: w?.samples ?? 0 } });
          }
          break;
        }
        case 'stop':
          await api.close();
          await daemon.stop();
          await send({ type: 'reply', id: m.id, data: memoryFigures() });
          process.disconnect?.();
          break;
      }
    })().catch((err: unknown) => {
      void send({ type: 'error', id: m.id, message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    });
  });
}

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
// the daemon's own heap policy, as `tenantd daemon` applies it
applyHeapPolicy();
try {
  if (config.mode === 'reconcile') {
    await reconcile(config);
    process.disconnect?.();
  } else if (config.mode === 'serve') {
    await serve(config);
  } else {
    throw new Error(`unknown mode ${String(config.mode)}`);
  }
} catch (err: unknown) {
  await send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }).catch(() => undefined);
  process.exitCode = 1;
  process.disconnect?.();
}
