/**
 * Event-stream clients that never read, against a running daemon (bench/child.ts, serve mode):
 * hundreds of `GET /api/v1/events` connections on one token that read nothing while API bursts
 * make the daemon publish thousands of events. Measured: the daemon's RSS before (idle, loaded),
 * its peak during (sampled every 10 ms in the daemon process) and after the clients close. The
 * hub bounds what it queues per client and drops a client that falls behind; without that bound
 * the events queue per client and RSS grows with clients × events.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import type { MemoryNow, ServeReady } from '../child.js';
import { DaemonChild } from '../lib/child-proc.js';
import { figure, row, type Row } from '../lib/report.js';
import { burst, writeTokensFile } from './serve.js';

export interface SseOptions {
  tenants: number;
  repo: string;
  dataDir: string;
  concurrency: number;
  clients: number;
  bursts: number;
  burst: number;
  timeoutMs: number;
  execArgv?: string[];
}

/** A raw connection that asks for the event stream and then never reads. */
function deafClient(url: string, token: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(`GET /api/v1/events HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`);
      socket.pause();
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export async function sseScenario(o: SseOptions): Promise<Row[]> {
  const tokens = await writeTokensFile(path.dirname(o.dataDir));
  const child = new DaemonChild(
    { mode: 'serve', repo: o.repo, dataDir: o.dataDir, concurrency: o.concurrency, tokensFile: tokens.file, webhookSecret: randomBytes(16).toString('hex'), sseMaxStreams: o.clients + 10 },
    o.execArgv ?? [],
  );
  const sockets: net.Socket[] = [];
  try {
    const ready = await child.waitFor<ServeReady>('ready', o.timeoutMs);
    await child.request({ cmd: 'idle' }, o.timeoutMs);
    const idle = await child.request<MemoryNow>({ cmd: 'memory' }, o.timeoutMs);
    await child.request({ cmd: 'rss-watch', on: true }, o.timeoutMs);
    for (let i = 0; i < o.clients; i += 50) {
      sockets.push(...(await Promise.all(Array.from({ length: Math.min(50, o.clients - i) }, () => deafClient(ready.url, tokens.token)))));
    }
    const deadline = Date.now() + o.timeoutMs;
    let held = await child.request<MemoryNow>({ cmd: 'memory' }, o.timeoutMs);
    while (held.sseClients < o.clients && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      held = await child.request<MemoryNow>({ cmd: 'memory' }, o.timeoutMs);
    }
    let accepted = 0;
    for (let b = 0; b < o.bursts; b++) {
      accepted += (await burst(ready.url, tokens.token, `sse${b}`, o.burst)).ok;
      await child.request({ cmd: 'idle' }, o.timeoutMs);
    }
    const during = await child.request<MemoryNow>({ cmd: 'memory' }, o.timeoutMs);
    const peak = await child.request<{ peakMb: number; samples: number }>({ cmd: 'rss-watch', on: false }, o.timeoutMs);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 500));
    const after = await child.request<MemoryNow>({ cmd: 'memory' }, o.timeoutMs);
    await child.request({ cmd: 'stop' }, o.timeoutMs);
    await child.finish();
    const ratio = peak.peakMb / idle.rssMb;
    return [
      row({
        scenario: `SSE: ${o.clients} clients that never read, ${o.bursts}× ${o.burst} writes`,
        tenants: o.tenants,
        unit: 'MB',
        tenantd: figure([peak.peakMb]),
        native: null,
        target: 'peak RSS ≤ 2× idle RSS',
        met: ratio <= 2 && held.sseClients === o.clients && accepted === o.bursts * o.burst,
        check:
          `idle ${idle.rssMb.toFixed(0)} MB → peak ${peak.peakMb.toFixed(0)} MB (${ratio.toFixed(2)}× idle, ${peak.samples} samples) → ${after.rssMb.toFixed(0)} MB after they closed; ` +
          `${held.sseClients} connected, ${during.sseDropped} dropped as too slow; ${accepted}/${o.bursts * o.burst} writes 202`,
      }),
    ];
  } finally {
    for (const s of sockets) s.destroy();
    child.kill();
  }
}
