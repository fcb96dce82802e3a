/**
 * A fleet that cannot reach its cluster: N tenants on the kubernetes provider whose API server
 * refuses every connection (a kubeconfig naming a closed port on 127.0.0.1), so every tenant waits
 * with E_CLUSTER_UNREACHABLE and retries with the daemon's backoff (5 s doubling to 300 s). The
 * daemon runs in this process on a simulated clock (bench/lib/sim-clock.ts) for a simulated hour;
 * the figure is the status commits it made in that hour — the retries are real reconciles
 * (record writes, provider calls refused by the kernel), only the waiting between them is skipped.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseDaemonConfig } from '../../daemon/config.js';
import { TenantdDaemon } from '../../daemon/daemon.js';
import { figure, row, type Row } from '../lib/report.js';
import { SimulatedClock } from '../lib/sim-clock.js';
import { createTenantsRepo } from './repo.js';

const HOUR_MS = 3_600_000;

/** A port nothing listens on: bound by the kernel, then closed again. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function failingFleet(opts: { root: string; tenants: number; concurrency: number; hours: number }): Promise<Row[]> {
  const dir = path.join(opts.root, `failing-${opts.tenants}`);
  await fsp.mkdir(dir, { recursive: true });
  const repo = await createTenantsRepo(dir, opts.tenants, 0);
  const kubeconfig = path.join(dir, 'kubeconfig.yaml');
  await fsp.writeFile(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{ name: unreachable, cluster: { server: 'https://127.0.0.1:${await closedPort()}', insecure-skip-tls-verify: true } }]`,
      'users: [{ name: bench, user: { token: bench } }]',
      'contexts: [{ name: unreachable, context: { cluster: unreachable, user: bench } }]',
      'current-context: unreachable',
      '',
    ].join('\n'),
  );
  const config = parseDaemonConfig(
    ['--repo', repo.repo, '--data-dir', path.join(dir, 'data'), '--provider', 'kubernetes', '--kubeconfig', kubeconfig, '--poll', '0', '--drift-interval', '0', '--gc-interval', '0', '--concurrency', String(opts.concurrency)],
    {},
    dir,
  );
  const clock = new SimulatedClock();
  const daemon = await TenantdDaemon.open(config, { timers: clock, write: () => undefined });
  let commits = 0;
  let attempts = 0;
  const codes = new Set<string>();
  daemon.publisher.subscribe((e) => {
    if (e.type === 'StatusCommitted') commits++;
    if (e.type === 'PhaseFailed') {
      attempts++;
      codes.add(e.code);
    }
  });
  const settle = async (): Promise<void> => {
    await daemon.queue.whenIdle();
    await daemon.status.settled();
  };
  const started = performance.now();
  const simStart = clock.now();
  await daemon.start();
  await settle();
  const afterFirstPass = commits;
  await clock.advanceTo(simStart + opts.hours * HOUR_MS, settle);
  const inWindow = commits;
  await daemon.stop();
  const wallS = (performance.now() - started) / 1000;
  const perHour = inWindow / opts.hours;
  return [
    row({
      scenario: 'failing fleet: status commits per hour',
      tenants: opts.tenants,
      unit: 'commits/h',
      tenantd: figure([perHour]),
      native: null,
      target: 'bounded, not per retry',
      met: null,
      check:
        `cluster unreachable (${[...codes].sort().join(', ') || 'no failure seen'}); ${attempts} failed attempts in ${opts.hours} simulated h; ` +
        `${afterFirstPass} commit(s) in the first pass, ${inWindow} in the hour, ${commits - inWindow} at shutdown; ${wallS.toFixed(0)} s real time`,
    }),
  ];
}
