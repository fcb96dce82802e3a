/**
 * End-to-end harness for the dashboard: Debian's Chromium driven by playwright-core against a real
 * daemon and API on 127.0.0.1 with a real tenants repository. The provider is the real render
 * provider behind a gate, so a test can hold a phase open (to watch UPDATING live) or make one
 * fail once (to see a failed phase and its retry).
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import type { Browser, LaunchOptions } from 'playwright-core';
import { TenantdError } from '../../core/errors.js';
import { startApiServer, type ApiServer } from '../../daemon/api-server.js';
import type { TenantdDaemon } from '../../daemon/daemon.js';
import type { InfrastructureProvider, PhaseResult, ProviderContext } from '../../providers/provider.js';
import { createRenderProvider } from '../../providers/render/provider.js';
import { fixedTokens } from './api.js';
import { exampleFiles, openDaemon } from './daemon.js';
import { commitFiles, initRepo } from './git-fixtures.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = process.env['TENANTD_CHROMIUM'] ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(ROOT, 'test', 'artifacts');

export const LAUNCH: LaunchOptions = {
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
};

/**
 * Whether browser tests can run: `skip` when TENANTD_SKIP_BROWSER=1, `missing` (a failure, with
 * the fix) when there is no Chromium, else `ok`.
 */
export function browserAvailability(): { kind: 'ok' } | { kind: 'skip'; reason: string } | { kind: 'missing'; message: string } {
  if (process.env['TENANTD_SKIP_BROWSER'] === '1') return { kind: 'skip', reason: 'TENANTD_SKIP_BROWSER=1' };
  if (!existsSync(CHROMIUM)) {
    return {
      kind: 'missing',
      message: `no Chromium at ${CHROMIUM}: install it (apt-get install -y chromium), point TENANTD_CHROMIUM at one, or set TENANTD_SKIP_BROWSER=1 to skip the dashboard's browser tests`,
    };
  }
  return { kind: 'ok' };
}

const run = (cmd: string, args: string[]): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed:\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });

/** `node web/build.mjs`: the bundle the daemon serves from dist/web (what `npm run build` produces). */
export const buildDashboard = (): Promise<string> => run(process.execPath, [path.join(ROOT, 'web', 'build.mjs')]);

/** Type-checks the dashboard's source with its own tsconfig (DOM, JSX), which the root config does not include. */
export const typecheckDashboard = (): Promise<string> => run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', path.join(ROOT, 'web', 'tsconfig.json')]);

type Step = 'plan' | 'apply' | 'deploy' | 'configure' | 'verify' | 'destroy';

/** The render provider with test controls: hold a tenant's step until released, or fail it once. */
export interface GatedProvider extends InfrastructureProvider {
  /** The next runs of `step` for `tenantId` wait until the returned function is called. */
  hold(tenantId: string, step: Step): () => void;
  /** The next run of `step` for `tenantId` throws a retryable error with `message`. */
  failOnce(tenantId: string, step: Step, message: string): void;
  /** How many times `step` ran for `tenantId` (held or not). */
  calls(tenantId: string, step: Step): number;
  releaseAll(): void;
}

export function gatedProvider(inner: InfrastructureProvider): GatedProvider {
  const holds = new Map<string, { promise: Promise<void>; release: () => void }>();
  const failures = new Map<string, string>();
  const counts = new Map<string, number>();
  const wrap =
    (step: Step) =>
    async (ctx: ProviderContext): Promise<PhaseResult> => {
      const key = `${ctx.tenantId}:${step}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      const failure = failures.get(key);
      if (failure !== undefined) {
        failures.delete(key);
        throw new TenantdError('E_TEST_INJECTED', 'retryable', failure, { step });
      }
      const hold = holds.get(key);
      if (hold) {
        await new Promise<void>((resolve) => {
          void hold.promise.then(resolve);
          ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
      return (inner[step] as (c: ProviderContext) => Promise<PhaseResult>).call(inner, ctx);
    };
  // Everything else (name, admit, refresh, ready, close) is the render provider's own.
  const gated = Object.create(inner) as GatedProvider;
  Object.assign(gated, {
    plan: wrap('plan'),
    apply: wrap('apply'),
    deploy: wrap('deploy'),
    configure: wrap('configure'),
    verify: wrap('verify'),
    destroy: wrap('destroy'),
    hold(tenantId: string, step: Step) {
      let release!: () => void;
      const promise = new Promise<void>((r) => (release = r));
      const key = `${tenantId}:${step}`;
      holds.set(key, { promise, release });
      return () => {
        if (holds.get(key)?.promise === promise) holds.delete(key);
        release();
      };
    },
    failOnce(tenantId: string, step: Step, message: string) {
      failures.set(`${tenantId}:${step}`, message);
    },
    calls(tenantId: string, step: Step) {
      return counts.get(`${tenantId}:${step}`) ?? 0;
    },
    releaseAll() {
      for (const h of holds.values()) h.release();
      holds.clear();
    },
  });
  return gated;
}

export interface DashboardHarness {
  repo: string;
  daemon: TenantdDaemon;
  provider: GatedProvider;
  /** The API as it is now (replaced by `restartApi`). */
  api: ApiServer;
  url: string;
  /** Closes the API server (every open connection drops), runs `whileDown`, then listens again on the same port. */
  restartApi(whileDown?: () => Promise<void>): Promise<void>;
}

/**
 * A daemon on a fresh repository holding the example tenants plus `extra` files, with its API (the
 * fixed test tokens of helpers/api.ts) on 127.0.0.1, reconciled once; all stopped at teardown.
 */
export async function dashboardHarness(t: Test, opts: { extra?: Record<string, string>; flags?: string[] } = {}): Promise<DashboardHarness> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'tenantd-web-'));
  const repo = path.join(dir, 'repo');
  const dataDir = path.join(dir, 'data');
  await initRepo(repo);
  await commitFiles(repo, { ...(await exampleFiles()), ...(opts.extra ?? {}) }, 'examples');
  const provider = gatedProvider(createRenderProvider({ dataDir }));
  const { daemon } = await openDaemon(repo, dataDir, opts.flags ?? [], { provider });
  const listen = (port: number): Promise<ApiServer> => startApiServer(daemon, { host: '127.0.0.1', port, auth: fixedTokens });
  let api = await listen(0);
  const port = Number(new URL(api.url).port);
  const h: DashboardHarness = {
    repo,
    daemon,
    provider,
    api,
    url: api.url,
    async restartApi(whileDown) {
      await api.close();
      await whileDown?.();
      api = await listen(port);
      h.api = api;
    },
  };
  t.teardown(async () => {
    provider.releaseAll();
    await h.api.close();
    await daemon.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });
  await daemon.start();
  await daemon.whenIdle();
  return h;
}

/** Launches Chromium (closed at teardown). */
export async function launchBrowser(t: Test): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch(LAUNCH);
  t.teardown(() => browser.close());
  return browser;
}
