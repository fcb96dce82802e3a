/**
 * The real Kubernetes control plane the tests run against (test/cluster/up.sh: etcd,
 * kube-apiserver and kube-controller-manager 1.20.2 from Debian's source package).
 *
 * - `TENANTD_TEST_CLUSTER=DIR`: a control plane `test/cluster/up.sh DIR` started (`.ci/run` does).
 * - `TENANTD_TEST_KUBECONFIG=FILE` (optionally `TENANTD_TEST_KUBE_CONTEXT`): any other cluster,
 *   e.g. kind. Tests that start or stop API server processes need a cluster of our own and say so.
 * - Neither: the first test that needs the cluster starts one in a directory of this checkout's own
 *   under the OS temp dir (up.sh is idempotent and locked, so parallel test files share it), and
 *   tap's `after` hook (test/cluster/tap-after.ts) stops it when the run ends.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import type { Test } from 'tap';
import net from 'node:net';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPTS = path.join(ROOT, 'test', 'cluster');

/** A port nothing listens on now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Where a test run's own control plane lives when none was given (one per checkout). */
export function defaultClusterDir(): string {
  const id = createHash('sha256').update(ROOT).digest('hex').slice(0, 10);
  return path.join(os.tmpdir(), `tenantd-test-cluster-${id}`);
}

/** The controllers that work without a kubelet (as test/cluster/up.sh runs them). */
const CONTROLLERS = 'namespace,garbagecollector,persistentvolume-binder,pv-protection,pvc-protection,resourcequota,root-ca-cert-publisher,serviceaccount,serviceaccount-token';

/** Marks a control plane the tests started themselves, which the `after` hook stops. */
export const STARTED_BY_TESTS = '.started-by-tests';

export interface TestCluster {
  kubeconfigPath: string;
  /** The up.sh directory; null for a cluster named only by TENANTD_TEST_KUBECONFIG. */
  dir: string | null;
  context: string | undefined;
}

let cluster: Promise<TestCluster> | undefined;

/** The cluster of this test process, started on first use when none is configured. */
export function testCluster(): Promise<TestCluster> {
  cluster ??= (async () => {
    const kubeconfig = process.env.TENANTD_TEST_KUBECONFIG;
    if (kubeconfig) return { kubeconfigPath: kubeconfig, dir: process.env.TENANTD_TEST_CLUSTER ?? null, context: process.env.TENANTD_TEST_KUBE_CONTEXT };
    const given = process.env.TENANTD_TEST_CLUSTER;
    const dir = given ?? defaultClusterDir();
    if (!given) {
      await fsp.mkdir(dir, { recursive: true });
      await fsp.writeFile(path.join(dir, STARTED_BY_TESTS), `${process.pid}\n`);
    }
    // Idempotent: returns at once when the control plane in `dir` already answers.
    await run('bash', [path.join(SCRIPTS, 'up.sh'), dir], { timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
    return { kubeconfigPath: path.join(dir, 'kubeconfig'), dir, context: undefined };
  })();
  return cluster;
}

/** The cluster's own files (etcd address, keys, binaries) for starting more API servers. */
async function clusterFiles(dir: string): Promise<{ etcd: string; bin: string; saKey: string; saPub: string; tokens: string; adminToken: string; nobodyToken: string }> {
  const read = async (name: string): Promise<string> => (await fsp.readFile(path.join(dir, name), 'utf8')).trim();
  const tokens = (await read('tokens.csv')).split('\n').map((line) => line.split(',')[0] ?? '');
  return {
    etcd: `http://127.0.0.1:${await read('etcd.port')}`,
    bin: await read('bin.path'),
    saKey: path.join(dir, 'sa.key'),
    saPub: path.join(dir, 'sa.pub'),
    tokens: path.join(dir, 'tokens.csv'),
    adminToken: tokens[0] ?? '',
    nobodyToken: tokens[1] ?? '',
  };
}

/** A kubeconfig for `server` with a bearer token (insecure TLS: the test cluster's certificates are self-signed). */
export function tokenKubeConfig(server: string, token: string, name = 'tenantd-test'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name, server, skipTLSVerify: true }],
    users: [{ name: `${name}-user`, token }],
    contexts: [{ name, cluster: name, user: `${name}-user` }],
    currentContext: name,
  });
  return kc;
}

/** A kubeconfig for the cluster as a user that no role is bound to (every request is 403). */
export async function unprivilegedKubeConfig(t: Test): Promise<KubeConfig | undefined> {
  const c = await testCluster();
  if (!c.dir) {
    t.comment('TENANTD_TEST_KUBECONFIG names a cluster of its own: the unprivileged user of test/cluster/up.sh is not there');
    return undefined;
  }
  const files = await clusterFiles(c.dir);
  const kc = new KubeConfig();
  kc.loadFromFile(c.kubeconfigPath);
  return tokenKubeConfig(kc.getCurrentCluster()?.server ?? '', files.nobodyToken, 'tenantd-test-nobody');
}

export interface ApiServerProcess {
  readonly url: string;
  readonly kubeConfig: KubeConfig;
  /** Written to a file, for `tenantd daemon --kubeconfig`. */
  readonly kubeconfigPath: string;
  /** SIGTERM, and wait until the process is gone: the address then refuses connections. */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves once /readyz answers. */
  start(): Promise<void>;
}

export interface ApiServerOptions {
  /**
   * etcd key prefix. The cluster's own (`/registry`, the default) makes this one more API server of
   * the same cluster; another prefix makes an independent, empty cluster (no controller manager
   * runs for it: namespaces it deletes never finish terminating).
   */
  etcdPrefix?: string;
  /** `--runtime-config`, e.g. `policy/v1beta1=false` to stop serving a version. */
  runtimeConfig?: string;
  /** Also run a kube-controller-manager for it (an independent cluster needs one: quotas, namespaces, claims). */
  controllerManager?: boolean;
}

async function waitReady(url: string, token: string, child: () => ChildProcess | undefined, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = https.get(`${url}/readyz`, { headers: { authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 2000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    const proc = child();
    if (!proc || proc.exitCode !== null) throw new Error(`kube-apiserver exited before it was ready (code ${proc?.exitCode ?? '?'})`);
    if (Date.now() > deadline) throw new Error(`kube-apiserver at ${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Another kube-apiserver process on the test cluster's etcd, which a test may stop (a cluster that
 * really cannot be reached) and start again. Needs a control plane of up.sh's; undefined (with a
 * comment on `t`) for a cluster given only by TENANTD_TEST_KUBECONFIG.
 */
export async function startApiServer(t: Test, options: ApiServerOptions = {}): Promise<ApiServerProcess | undefined> {
  const c = await testCluster();
  if (!c.dir) {
    t.comment('TENANTD_TEST_KUBECONFIG names a cluster of its own: this test starts and stops API server processes and needs test/cluster/up.sh (TENANTD_TEST_CLUSTER)');
    return undefined;
  }
  const files = await clusterFiles(c.dir);
  const port = await freePort();
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'tenantd-apiserver-'));
  const url = `https://127.0.0.1:${port}`;
  const args = [
    '--etcd-servers', files.etcd,
    '--etcd-prefix', options.etcdPrefix ?? '/registry',
    '--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1', '--secure-port', String(port), '--insecure-port', '0',
    '--cert-dir', path.join(work, 'certs'),
    '--token-auth-file', files.tokens, '--authorization-mode', 'RBAC',
    '--service-account-issuer', 'https://kubernetes.default.svc.cluster.local',
    '--service-account-key-file', files.saPub, '--service-account-signing-key-file', files.saKey,
    '--service-cluster-ip-range', '10.96.0.0/16',
    '--enable-priority-and-fairness=false', '--profiling=false', '--logtostderr', '-v', '0',
    ...(options.runtimeConfig ? ['--runtime-config', options.runtimeConfig] : []),
  ];
  let child: ChildProcess | undefined;
  let manager: ChildProcess | undefined;
  const log = path.join(work, 'kube-apiserver.log');
  const start = async (): Promise<void> => {
    const out = await fsp.open(log, 'a');
    child = spawn(path.join(files.bin, 'kube-apiserver'), args, { stdio: ['ignore', out.fd, out.fd] });
    await out.close();
    try {
      await waitReady(url, files.adminToken, () => child);
    } catch (err: unknown) {
      const tail = (await fsp.readFile(log, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tail}`);
    }
  };
  const end = async (proc: ChildProcess | undefined): Promise<void> => {
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 10_000).unref();
    });
  };
  const stop = (): Promise<void> => end(child);
  t.teardown(async () => {
    await end(manager);
    await stop();
    await fsp.rm(work, { recursive: true, force: true });
  });
  await start();
  const kubeConfig = tokenKubeConfig(url, files.adminToken, `apiserver-${randomBytes(2).toString('hex')}`);
  const kubeconfigPath = path.join(work, 'kubeconfig');
  await fsp.writeFile(kubeconfigPath, kubeConfig.exportConfig(), { mode: 0o600 });
  if (options.controllerManager) {
    const out = await fsp.open(path.join(work, 'kube-controller-manager.log'), 'a');
    manager = spawn(
      path.join(files.bin, 'kube-controller-manager'),
      [
        '--kubeconfig', kubeconfigPath, '--leader-elect=false', '--port', '0', '--secure-port', '0',
        '--service-account-private-key-file', files.saKey, '--use-service-account-credentials=false',
        '--root-ca-file', path.join(work, 'certs', 'apiserver.crt'),
        '--controllers', CONTROLLERS, '--namespace-sync-period', '30s', '--pvclaimbinder-sync-period', '1s', '--logtostderr', '-v', '0',
      ],
      { stdio: ['ignore', out.fd, out.fd] },
    );
    await out.close();
  }
  return { url, kubeConfig, kubeconfigPath, stop, start };
}
