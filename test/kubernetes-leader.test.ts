/**
 * Two replicas, one active (`--leader-elect`), as two real `tenantd daemon` processes sharing one
 * data dir and one repository, electing a leader by a real `coordination.k8s.io/v1` Lease on the
 * real control plane, with the kubernetes provider:
 * - the leader killed with SIGKILL mid-reconcile is replaced by the standby, which resumes where it
 *   stopped: the fleet converges, each tenant's seven phases once, no transition twice, every
 *   status commit the old leader made still in the history; the takeover time is measured;
 * - the standby serves reads and forwards writes to the leader (and refuses them while none leads);
 * - a leader cut off from the API server past its renew deadline stops writing before the standby
 *   may take over, and writes nothing when it comes back.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { PHASES } from '../core/phases.js';
import type { LiveObject } from '../providers/kubernetes/client.js';
import { freePort } from './helpers/kube-cluster.js';
import { startKubeProxy } from './helpers/kube-proxy.js';
import { eventually, startKubeTarget, type KubeTarget } from './helpers/kube-target.js';
import { statusAt } from './helpers/daemon.js';
import { commitFiles, gitOut, initRepo } from './helpers/git-fixtures.js';
import { spawnTenantd, type DaemonProcess } from './helpers/process.js';
import { tenantYaml } from './helpers/tenants.js';

// Short enough for a test, with client-go's proportions: 6 s lease, 4 s renew deadline, 1 s retries.
const LEASE_S = 6;
const RENEW_S = 4;
const RETRY_S = 1;
/** client-go's bound on a takeover after a crash: the lease, plus the standby's view of the last renewal being up to one jittered retry period old. */
const TAKEOVER_BOUND_MS = (LEASE_S + 2 * RETRY_S * 2.2) * 1000;

interface Replica {
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

async function readyz(r: Replica): Promise<Readiness | undefined> {
  const res = await fetch(`${r.url}/readyz`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
  return res ? ((await res.json()) as Readiness) : undefined;
}

async function logEntries(dataDir: string): Promise<LogEntry[]> {
  const text = await fsp.readFile(path.join(dataDir, 'transitions.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogEntry);
}

async function recordStatuses(dataDir: string): Promise<Map<string, string>> {
  const dir = path.join(dataDir, 'state', 'tenants');
  const out = new Map<string, string>();
  for (const n of (await fsp.readdir(dir).catch(() => [] as string[])).filter((x) => x.endsWith('.json'))) {
    out.set(n.slice(0, -5), (JSON.parse(await fsp.readFile(path.join(dir, n), 'utf8')) as { status: string }).status);
  }
  return out;
}

/** Everything a replica writes: records, the log, the deletion guard, the repository's refs. */
async function snapshot(dataDir: string, repo: string): Promise<string> {
  const parts: string[] = [];
  const dir = path.join(dataDir, 'state', 'tenants');
  for (const n of (await fsp.readdir(dir)).sort()) parts.push(`${n}:${await fsp.readFile(path.join(dir, n), 'utf8')}`);
  for (const f of ['transitions.jsonl', 'deletion-guard.json']) parts.push(`${f}:${await fsp.readFile(path.join(dataDir, f), 'utf8').catch(() => '-')}`);
  parts.push(`refs:${await gitOut(repo, ['for-each-ref'])}`);
  return parts.join('\n');
}

async function fleet(t: Test, count: number): Promise<{ target: KubeTarget; dir: string; repo: string; dataDir: string; ids: string[] }> {
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

function starter(t: Test, repo: string, dataDir: string, lease: string) {
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
async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms: number, ...replicas: Replica[]): Promise<T> {
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

const role = async (r: Replica): Promise<string | undefined> => (await readyz(r))?.role?.role;
const leaseOf = (target: KubeTarget, name: string): Promise<LiveObject | null> => target.get({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name, namespace: 'default' });
const spec = (l: LiveObject | null): { holderIdentity?: string; leaseTransitions?: number; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string } =>
  (l?.spec ?? {}) as ReturnType<typeof spec>;

t.test('the leader killed with SIGKILL mid-reconcile: the standby takes over, resumes, converges; nothing doubled or lost', async (t) => {
  const COUNT = 4;
  const { target, repo, dataDir, ids } = await fleet(t, COUNT);
  const lease = `tenantd-${target.tenantId('lease')}`;
  const start = starter(t, repo, dataDir, lease);
  const a = await start('replica-a', target.kubeconfigPath);
  await until('replica-a leads', async () => (await role(a)) === 'leader', 120_000, a);
  const b = await start('replica-b', target.kubeconfigPath);
  await until('replica-b stands by and is ready', async () => {
    const r = await readyz(b);
    return r?.ready === true && r.role?.role === 'standby' && r.role.leader === 'replica-a';
  }, 120_000, a, b);
  const held = spec(await leaseOf(target, lease));
  t.equal(held.holderIdentity, 'replica-a', 'the Lease names the leader');
  t.equal(held.leaseDurationSeconds, LEASE_S);
  const leaderGauge = async (r: Replica): Promise<string | undefined> => /^tenantd_leader (\d)$/m.exec(await (await fetch(`${r.url}/metrics`)).text())?.[1];
  t.equal(await leaderGauge(a), '1', 'tenantd_leader is 1 on the leader');
  t.equal(await leaderGauge(b), '0', 'and 0 on the standby');

  // The standby answers reads from the shared data dir, as the leader does.
  const api = (r: Replica) => `${r.url}/api/v1/infrastructure/tenants`;
  await eventually('the standby lists what the leader reconciles', async () => {
    const res = await fetch(api(b));
    const body = (await res.json()) as { items: { tenantId: string }[] };
    return res.ok && body.items.length > 0;
  }, 60_000);

  // Mid-reconcile: no kubelet yet, so the first tenant's rollout never becomes ready and the
  // leader waits in the middle of its phases, the other tenants queued behind it.
  await until('a tenant past Apply', async () => (await logEntries(dataDir)).some((e) => /\/(Deploy|Configure|Verify)$/.test(e.toState)), 180_000, a);
  await new Promise((r) => setTimeout(r, 2000));
  const headBefore = await gitOut(repo, ['rev-parse', 'main']);
  a.proc.child.kill('SIGKILL');
  const killedAt = Date.now();
  await a.proc.exited;
  const before = await logEntries(dataDir);
  const statuses = await recordStatuses(dataDir);
  t.ok(statuses.size < COUNT || [...statuses.values()].some((s) => s !== 'ACTIVE'), `killed mid-reconcile (${before.length} transitions, ${[...statuses.values()].filter((s) => s === 'ACTIVE').length} of ${COUNT} ACTIVE)`);

  // No leader for a few seconds: a write sent to the standby is refused, never accepted and lost.
  const orphan = await fetch(`${api(b)}/${ids[0]}/reconcile`, { method: 'POST' });
  t.ok([502, 503].includes(orphan.status), `a write without a leader is refused (${orphan.status})`);
  t.match(await orphan.json(), { code: /^E_(LEADER_UNREACHABLE|NO_LEADER)$/ });

  await until('replica-b leads', async () => (await role(b)) === 'leader', 60_000, b);
  const takeoverMs = Date.now() - killedAt;
  t.comment(`takeover: ${takeoverMs} ms from SIGKILL of the leader to the standby leading (lease ${LEASE_S} s, renew deadline ${RENEW_S} s, retry period ${RETRY_S} s)`);
  t.ok(takeoverMs <= TAKEOVER_BOUND_MS + 5000, `taken over within the lease duration plus one observation (${takeoverMs} ms; bound ${TAKEOVER_BOUND_MS} ms + 5 s for a loaded machine)`);
  const taken = spec(await leaseOf(target, lease));
  t.equal(taken.holderIdentity, 'replica-b');
  t.equal(taken.leaseTransitions, (held.leaseTransitions ?? 0) + 1, 'one transition of the Lease');
  t.not(taken.acquireTime, held.acquireTime, 'a new acquireTime');

  // The fleet converges under the new leader (the test now acting as kubelet).
  const kubelet = target.kubelet();
  t.teardown(() => kubelet.stop());
  await until('every tenant ACTIVE', async () => {
    const s = await recordStatuses(dataDir);
    return s.size === COUNT && [...s.values()].every((x) => x === 'ACTIVE');
  }, 240_000, b);
  for (const id of ids) await target.markAllReady(`tenant-${id}`);
  await eventually('status of every tenant committed by the new leader', async () => {
    for (const id of ids) {
      const s = await statusAt(repo, 'main', id).catch(() => null);
      if (s?.status.status !== 'ACTIVE') return false;
    }
    return true;
  }, 60_000);

  const after = await logEntries(dataDir);
  t.same(after.slice(0, before.length), before, 'every transition logged before the kill is still there, in order');
  t.equal(new Set(after.map((e) => e.id)).size, after.length, 'no transition id twice');
  for (const id of ids) {
    t.same(after.filter((e) => e.tenantId === id).map((e) => e.toState.split('/')[1]), [...PHASES], `${id}: the seven phases once each`);
  }
  t.ok(after.some((e) => e.trigger === 'resume'), 'the new leader resumed work the old one left');
  await gitOut(repo, ['merge-base', '--is-ancestor', headBefore, 'main']);
  t.pass('every commit the old leader made is in the new head’s history');
  t.match(await gitOut(repo, ['log', '--format=%an', 'main']), /replica-b/, 'the new leader committed status');
  await gitOut(repo, ['fsck', '--no-dangling']);

  // The killed replica comes back (its pod restarts): a standby now, forwarding writes to the leader.
  const a2 = await start('replica-a', target.kubeconfigPath, a.port);
  await eventually('replica-a is back as a standby', async () => {
    const r = await readyz(a2);
    return r?.ready === true && r.role?.role === 'standby' && r.role.leader === 'replica-b';
  }, 120_000);
  const forwarded = await fetch(`${api(a2)}/${ids[0]}/reconcile`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ requestedAt: 'leader-test-1' }) });
  t.equal(forwarded.status, 202, 'a write to the standby is forwarded and accepted');
  t.equal(forwarded.headers.get('x-tenantd-leader'), 'replica-b', 'answered by the leader');
  await eventually('the forwarded request was handled by the leader', async () => {
    const res = await fetch(`${api(a2)}/${ids[0]}`);
    return JSON.stringify(await res.json()).includes('leader-test-1');
  }, 60_000);

  for (const r of [a2, b]) r.proc.child.kill('SIGTERM');
  t.match(await b.proc.exited, { code: 0 }, 'the leader stops cleanly');
  t.match(await a2.proc.exited, { code: 0 }, 'the standby stops cleanly');
  t.equal(spec(await leaseOf(target, lease)).holderIdentity ?? '', '', 'a leader that stops gives the Lease up');
});

t.test('a leader cut off from the API server stops writing at its renew deadline and writes nothing when it returns', async (t) => {
  const COUNT = 5;
  const { target, dir, repo, dataDir, ids } = await fleet(t, COUNT);
  const lease = `tenantd-${target.tenantId('lease')}`;
  const start = starter(t, repo, dataDir, lease);
  const proxy = await startKubeProxy(t, target.kubeConfig);
  const viaProxy = path.join(dir, 'proxy-kubeconfig');
  await fsp.writeFile(viaProxy, proxy.kubeConfig.exportConfig(), { mode: 0o600 });
  // Replica a reaches the API server (Lease and tenants alike) only through the proxy the test can cut.
  const a = await start('replica-a', viaProxy);
  await until('replica-a leads', async () => (await role(a)) === 'leader', 120_000, a);
  const b = await start('replica-b', target.kubeconfigPath);
  await until('replica-b stands by', async () => (await readyz(b))?.role?.leader === 'replica-a', 120_000, a, b);
  // With the test acting as kubelet the leader moves through the tenants' phases, writing a record
  // and a transition every step: it is busy writing when it is cut off, and its failed calls would
  // be recorded (and retried every second or two) if anything let it write.
  const kubelet = target.kubelet();
  t.teardown(() => kubelet.stop());
  await until('work in progress', async () => (await logEntries(dataDir)).length >= 3, 180_000, a);
  const busy = (await logEntries(dataDir)).length;

  // Freeze the standby so that only the old leader could change the data dir, then cut the old leader off.
  b.proc.child.kill('SIGSTOP');
  t.teardown(() => void b.proc.child.kill('SIGCONT'));
  proxy.setUnreachable(true);
  const cutAt = Date.now();
  await eventually('replica-a stops leading', () => /"event":"StoppedLeading"/.test(a.proc.output()), 60_000);
  const stoppedMs = Date.now() - cutAt;
  t.comment(`replica-a stopped leading ${stoppedMs} ms after it was cut off (renew deadline ${RENEW_S} s)`);
  t.ok(stoppedMs < LEASE_S * 1000 + 3000, 'at about the renew deadline, before the lease could expire elsewhere');
  t.equal((await readyz(a))?.role?.role, 'standby', 'it says so on /readyz');
  // Anything it had in flight was stopped by the fence; from here on the data dir must not change.
  await new Promise((r) => setTimeout(r, 1000));
  const fenced = await snapshot(dataDir, repo);
  t.ok((await logEntries(dataDir)).length < COUNT * PHASES.length, `cut off mid-pass (${busy} transitions when cut, ${(await logEntries(dataDir)).length} when fenced)`);
  // Long enough for polls (1 s), retries (1–2 s) and status commits (1 s) to come round several times.
  await new Promise((r) => setTimeout(r, 8000));
  t.equal(await snapshot(dataDir, repo), fenced, 'the partitioned old leader wrote nothing: records, log, guard and refs unchanged');
  t.comment(`writes the fence refused meanwhile, as replica-a logged them: ${(a.proc.output().match(/E_NOT_LEADER/g) ?? []).length}`);

  // The standby wakes up and takes over while the old leader is still cut off.
  b.proc.child.kill('SIGCONT');
  await eventually('replica-b leads', async () => (await role(b)) === 'leader', 60_000);
  const taken = spec(await leaseOf(target, lease));
  t.equal(taken.holderIdentity, 'replica-b');

  // The old leader comes back: it sees the Lease held by replica-b and stays a standby.
  const lines = a.proc.output().length;
  proxy.setUnreachable(false);
  await eventually('replica-a sees replica-b lead', async () => (await readyz(a))?.role?.leader === 'replica-b', 60_000);
  await eventually('every tenant ACTIVE under replica-b', async () => {
    const s = await recordStatuses(dataDir);
    return s.size === COUNT && [...s.values()].every((x) => x === 'ACTIVE');
  }, 240_000);
  for (const id of ids) await target.markAllReady(`tenant-${id}`);
  t.notMatch(a.proc.output().slice(lines), /"event":"StartedLeading"/, 'the old leader did not lead again');
  const l = spec(await leaseOf(target, lease));
  t.equal(l.holderIdentity, 'replica-b');
  t.equal(l.leaseTransitions, taken.leaseTransitions, 'the old leader never wrote the Lease back');
  // Status commits after the cut carry only the new leader's name.
  const authors = (await gitOut(repo, ['log', '--format=%an %ct', 'main'])).split('\n').filter(Boolean);
  const cutSecond = Math.floor(cutAt / 1000) + RENEW_S + 1;
  t.same(authors.filter((x) => x.startsWith('replica-a ') && Number(x.split(' ')[1]) > cutSecond), [], 'no commit by the old leader after its renew deadline');
  const entries = await logEntries(dataDir);
  t.equal(new Set(entries.map((e) => e.id)).size, entries.length, 'no transition id twice');

  for (const r of [a, b]) r.proc.child.kill('SIGTERM');
  t.match(await a.proc.exited, { code: 0 });
  t.match(await b.proc.exited, { code: 0 });
});
