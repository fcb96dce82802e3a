/**
 * Two replicas, one active (`--leader-elect`), with the kubernetes provider on the real control
 * plane: a leader cut off from the API server past its renew deadline stops writing before the
 * standby may take over (fencing), and writes nothing when it comes back.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { PHASES } from '../core/phases.js';
import { gitOut } from './helpers/git-fixtures.js';
import { startKubeProxy } from './helpers/kube-proxy.js';
import { eventually } from './helpers/kube-target.js';
import { fleet, LEASE_S, leaseOf, logEntries, readyz, recordStatuses, RENEW_S, role, snapshot, spec, starter, until } from './helpers/leader-replicas.js';

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
  // Nothing starts after the renew deadline (the fence); a write already in flight then has until
  // the lease could expire elsewhere (lease duration − renew deadline) to land. From there on the
  // data dir must not change.
  await new Promise((r) => setTimeout(r, (LEASE_S - RENEW_S) * 1000));
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
