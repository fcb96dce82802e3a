/**
 * Against a running daemon (bench/child.ts, serve mode) that has N tenants loaded and ACTIVE:
 * no-op polls, signed push webhooks (received → reconcile started), and a burst of concurrent
 * provision requests. This process is only the client; every server is on 127.0.0.1.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateToken, hashToken } from '../../api/auth/index.js';
import { signGeneric } from '../../api/webhooks/index.js';
import type { MemoryFigures, ServeReady, WebhookObservation } from '../child.js';
import { DaemonChild } from '../lib/child-proc.js';
import { fastImport, gitOut } from '../lib/git.js';
import { figure, row, type Row } from '../lib/report.js';
import { percentile } from '../lib/stats.js';
import { provisionBody, tenantId, tenantPath, tenantYaml } from '../lib/tenants.js';

export interface ServeOptions {
  tenants: number;
  repo: string;
  dataDir: string;
  concurrency: number;
  runs: number;
  burst: number;
  webhooks: number;
  polls: number;
  timeoutMs: number;
  /** extra node flags for the daemon process (e.g. --cpu-prof) */
  execArgv?: string[];
}

/** A real tokens file (only the hash is stored), as an operator would write it. */
export async function writeTokensFile(dir: string): Promise<{ file: string; token: string }> {
  const token = generateToken();
  const file = path.join(dir, 'bench-tokens.yaml');
  await fsp.writeFile(file, `tokens:\n  - name: bench-client\n    hash: ${await hashToken(token)}\n    scopes: [tenants:read, tenants:write]\n`, { mode: 0o600 });
  return { file, token };
}

interface BurstResult {
  ok: number;
  commits: Set<string>;
  latencies: number[];
  wallMs: number;
  statuses: Map<number, number>;
}

export async function burst(url: string, token: string, prefix: string, count: number): Promise<BurstResult> {
  const latencies: number[] = [];
  const commits = new Set<string>();
  const statuses = new Map<number, number>();
  let ok = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const id = tenantId(i, prefix);
      const t = performance.now();
      const res = await fetch(`${url}/api/v1/infrastructure/tenants/${id}/provision`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(provisionBody(i, prefix)),
      });
      const body = (await res.json().catch(() => ({}))) as { commit?: unknown };
      latencies.push(performance.now() - t);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 202 && typeof body.commit === 'string') {
        ok++;
        commits.add(body.commit);
      }
    }),
  );
  return { ok, commits, latencies, wallMs: performance.now() - t0, statuses };
}

export async function serveScenarios(o: ServeOptions): Promise<Row[]> {
  const secret = randomBytes(24).toString('hex');
  const tokens = await writeTokensFile(path.dirname(o.dataDir));
  const child = new DaemonChild({ mode: 'serve', repo: o.repo, dataDir: o.dataDir, concurrency: o.concurrency, tokensFile: tokens.file, webhookSecret: secret }, o.execArgv ?? []);
  const rows: Row[] = [];
  try {
    const ready = await child.waitFor<ServeReady>('ready', o.timeoutMs);

    // --- no-op poll -------------------------------------------------------------------------
    const polls = await child.request<{ samples: number[]; changed: number; headMoved: boolean; tenants: number }>({ cmd: 'noop-poll', n: o.polls }, o.timeoutMs);
    const pollFig = figure(polls.samples);
    rows.push(
      row({
        scenario: 'no-op poll (no new commit)',
        tenants: o.tenants,
        unit: 'ms',
        tenantd: pollFig,
        native: null,
        target: '≤ 5 ms, independent of N',
        met: pollFig.median <= 5 && polls.changed === 0 && !polls.headMoved,
        check: `${polls.tenants} tenants loaded; ${polls.changed} tenants queued; head ${polls.headMoved ? 'MOVED' : 'unchanged'}`,
      }),
    );

    // --- webhook latency ----------------------------------------------------------------------
    const latencies: number[] = [];
    let matched = 0;
    for (let k = 0; k < o.webhooks; k++) {
      await child.request({ cmd: 'idle' }, o.timeoutMs);
      const i = (k * 104729 + 7) % o.tenants;
      const revision = 100 + k;
      await fastImport(o.repo, [{ ref: 'refs/heads/main', from: 'refs/heads/main^0', message: `edit ${tenantId(i)} (webhook ${k})\n`, files: [[tenantPath(tenantId(i)), tenantYaml(i, revision)]] }]);
      const after = await gitOut(o.repo, ['rev-parse', 'refs/heads/main']);
      const deliveryId = `bench-${randomUUID()}`;
      const body = JSON.stringify({ ref: 'refs/heads/main', after });
      const seen = child.waitFor<WebhookObservation>('webhook', o.timeoutMs);
      const res = await fetch(`${ready.url}/api/v1/webhooks/generic`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Tenantd-Signature': signGeneric(body, secret), 'X-Tenantd-Delivery': deliveryId },
        body,
      });
      await res.arrayBuffer();
      if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
      const obs = await seen;
      latencies.push(obs.ms);
      if (obs.deliveryId === deliveryId && obs.tenantId === tenantId(i)) matched++;
    }
    const hookFig = figure(latencies);
    rows.push(
      row({
        scenario: 'webhook → reconcile started (p50)',
        tenants: o.tenants,
        unit: 'ms',
        tenantd: hookFig,
        native: null,
        target: 'p50 ≤ 100 ms',
        met: hookFig.median <= 100 && matched === o.webhooks,
        check: `${matched}/${o.webhooks} signed deliveries started the changed tenant; p99 ${percentile(latencies, 99).toFixed(0)} ms`,
      }),
    );

    // --- API write burst ----------------------------------------------------------------------
    const rates: number[] = [];
    const p99s: number[] = [];
    const all: number[] = [];
    let allOk = true;
    const seenStatuses = new Map<number, number>();
    for (let b = 0; b < o.runs; b++) {
      await child.request({ cmd: 'idle' }, o.timeoutMs);
      const before = await gitOut(o.repo, ['rev-parse', 'refs/heads/main']);
      const res = await burst(ready.url, tokens.token, `burst${b}`, o.burst);
      for (const [s, c] of res.statuses) seenStatuses.set(s, (seenStatuses.get(s) ?? 0) + c);
      rates.push((o.burst / res.wallMs) * 1000);
      p99s.push(percentile(res.latencies, 99));
      all.push(...res.latencies);
      // every answer a 202 naming a commit of its own, and every one of them on main
      const onMain = new Set((await gitOut(o.repo, ['rev-list', `${before}..refs/heads/main`])).split('\n').filter(Boolean));
      const allOnMain = [...res.commits].every((c) => onMain.has(c));
      if (res.ok !== o.burst || res.commits.size !== o.burst || !allOnMain) allOk = false;
    }
    const rateFig = figure(rates);
    const p99Fig = figure(p99s);
    const statusText = [...seenStatuses].map(([s, c]) => `${c}×${s}`).join(', ');
    rows.push(
      row({
        scenario: `API burst: ${o.burst} concurrent POST provision`,
        tenants: o.tenants,
        unit: 'writes/s',
        tenantd: rateFig,
        native: null,
        target: '≥ 100 writes/s, all 202',
        met: rateFig.median >= 100 && allOk,
        check: `${statusText}; ${allOk ? 'each its own commit, all on main' : 'NOT every request got its own commit on main'}`,
      }),
      row({
        scenario: 'API burst: p99 latency per burst',
        tenants: o.tenants,
        unit: 'ms',
        tenantd: p99Fig,
        native: null,
        target: 'p99 ≤ 1000 ms',
        met: p99Fig.median <= 1000,
        check: `p50 over all requests ${percentile(all, 50).toFixed(0)} ms`,
      }),
    );

    await child.request({ cmd: 'idle' }, o.timeoutMs);
    const mem = await child.request<MemoryFigures & { retainedHeapMb: number }>({ cmd: 'stats' }, o.timeoutMs);
    rows.push(
      row({
        scenario: 'daemon RSS: loaded, after burst',
        tenants: o.tenants,
        unit: 'MB',
        tenantd: figure([mem.rssMb]),
        native: null,
        target: '-',
        met: null,
        check: `restart→idle ${(ready.startMs / 1000).toFixed(1)} s; RSS ${ready.memory.rssMb.toFixed(0)} MB after start; peak ${Math.max(mem.maxRssMb, mem.vmHwmMb ?? 0).toFixed(0)} MB; heap after a full GC ${mem.retainedHeapMb.toFixed(0)} MB`,
      }),
    );
    await child.request({ cmd: 'stop' }, o.timeoutMs);
    await child.finish();
  } finally {
    child.kill();
  }
  return rows;
}
