/**
 * Two replicas of `tenantd daemon --leader-elect` as real processes sharing one data dir and one
 * repository, electing a leader by a real `coordination.k8s.io/v1` Lease on the test control plane:
 * what test/kubernetes-leader-*.test.ts share (one file per scenario, so each has its own timeout
 * and the two run side by side).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';
import type { LiveObject } from '../../providers/kubernetes/client.js';
import { freePort } from './kube-cluster.js';
import { eventually, startKubeTarget, type KubeTarget } from './kube-target.js';
import { commitFiles, gitOut, initRepo } from './git-fixtures.js';
import { spawnTenantd, type DaemonProcess } from './process.js';
import { tenantYaml } from './tenants.js';

// Short enough for a test, with client-go's proportions: 6 s lease, 4 s renew deadline, 1 s retries.
export const LEASE_S = 6;
export const RENEW_S = 4;
export const RETRY_S = 1;
/** client-go's bound on a takeover after a crash: the lease, plus the standby's view of the last renewal being up to one jittered retry period old. */
export const TAKEOVER_BOUND_MS = (LEASE_S + 2 * RETRY_S * 2.2) * 1000;

export interface Replica {
  name: string;
  port: number;
  url: string;
  proc: DaemonProcess;
}

interface Readiness {
  ready: boolean;
  role?: { role: 'leader' | 'standby'; identity: string; leader: string | null };
}

interface LogEntry {
  id: string;
  tenantId: string;
  toState: string;
  trigger: string;
}

export async function readyz(r: Replica): Promise<Readiness | undefined> {
  const res = await fetch(`${r.url}/readyz`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
  return res ? ((await res.json()) as Readiness) : undefined;
}

export async function logEntries(dataDir: string): Promise<LogEntry[]> {
  const text = await fsp.readFile(path.join(dataDir, 'transitions.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogEntry);
}

export async function recordStatuses(dataDir: string): Promise<Map<string, string>> {
  const dir = path.join(dataDir, 'state', 'tenants');
  const out = new Map<string, string>();
  for (const n of (await fsp.readdir(dir).catch(() => [] as string[])).filter((x) => x.endsWith('.json'))) {
    out.set(n.slice(0, -5), (JSON.parse(await fsp.readFile(path.join(dir, n), 'utf8')) as { status: string }).status);
  }
  return out;
}

/** Everything a replica writes: records, the log, the deletion guard, the repository's refs. */
export async function snapshot(dataDir: string, repo: string): Promise<string> {
  const parts: string[] = [];
  const dir = path.join(dataDir, 'state', 'tenants');
  for (const n of (await fsp.readdir(dir)).sort()) parts.push(`${n}:${await fsp.readFile(path.join(dir, n), 'utf8')}`);
  for (const f of ['transitions.jsonl', 'deletion-guard.json']) parts.push(`${f}:${await fsp.readFile(path.join(dataDir, f), 'utf8').catch(() => '-')}`);
  parts.push(`refs:${await gitOut(repo, ['for-each-ref'])}`);
  return parts.join('\n');
}

export async function fleet(t: Test, count: number): Promise<{ target: KubeTarget; dir: string; repo: string; dataDir: string; ids: string[] }> {
  const target = await startKubeTarget(t);
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  const dataDir = path.join(dir, 'data');
  await initRepo(repo);
  const ids = Array.from({ length: count }, (_, i) => target.tenantId(`le${i}`));
  const files: Record<string, string> = {};
  for (const id of ids) files[`tenants/${id}.yaml`] = tenantYaml(id);
  await commitFiles(repo, files, `${count} tenants`);
  return { target, dir, repo, dataDir, ids };
}

export function starter(t: Test, repo: string, dataDir: string, lease: string) {
  const procs: DaemonProcess[] = [];
  t.teardown(() => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  return async (name: string, kubeconfig: string, port?: number): Promise<Replica> => {
    const p = port ?? (await freePort());
    const url = `http://127.0.0.1:${p}`;
    const proc = spawnTenantd([
      'daemon', '--repo', repo, '--data-dir', dataDir, '--provider', 'kubernetes', '--kubeconfig', kubeconfig,
      '--poll', '1', '--drift-interval', '0', '--retry-base', '1', '--retry-cap', '2', '--concurrency', '1', '--status-interval', '1',
      '--port', String(p), '--host', '127.0.0.1', '--insecure-no-auth', '--log-format', 'json', '--author-name', name,
      '--leader-elect', '--leader-elect-lease-name', lease, '--leader-elect-identity', name, '--advertise-url', url,
      '--leader-elect-lease-duration', String(LEASE_S), '--leader-elect-renew-deadline', String(RENEW_S), '--leader-elect-retry-period', String(RETRY_S),
    ]);
    procs.push(proc);
    return { name, port: p, url, proc };
  };
}

/** `eventually`, saying on failure what the replicas printed last. */
export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms: number, ...replicas: Replica[]): Promise<T> {
  try {
    return await eventually(
      what,
      () => {
        const gone = replicas.find((r) => r.proc.child.exitCode !== null);
        if (gone) throw new Error(`${gone.name} exited (${gone.proc.child.exitCode})`);
        return probe();
      },
      ms,
    );
  } catch (err: unknown) {
    const tails = replicas.map((r) => `--- ${r.name} (port ${r.port}):\n${r.proc.output().slice(-4000)}`).join('\n');
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tails}`);
  }
}

export const role = async (r: Replica): Promise<string | undefined> => (await readyz(r))?.role?.role;
export const leaseOf = (target: KubeTarget, name: string): Promise<LiveObject | null> => target.get({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name, namespace: 'default' });
export const spec = (l: LiveObject | null): { holderIdentity?: string; leaseTransitions?: number; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string } =>
  (l?.spec ?? {}) as ReturnType<typeof spec>;
