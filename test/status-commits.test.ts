/**
 * Status commits are bounded: a fleet retrying against a cluster it cannot reach commits its status
 * when its state changes, at most once per --status-interval, not once per retry. Runs a real
 * daemon (real repository, records, log) on a simulated clock, so ten minutes of backoff take
 * seconds.
 */
import path from 'node:path';
import t from 'tap';
import { TenantdError } from '../core/errors.js';
import { SimulatedClock } from '../bench/lib/sim-clock.js';
import { openDaemon, statusAt } from './helpers/daemon.js';
import { ScriptedProvider } from './helpers/fake-provider.js';
import { commitFiles, gitOut, initRepo } from './helpers/git-fixtures.js';
import { prng } from './helpers/prng.js';
import { tenantYaml } from './helpers/tenants.js';

const COUNT = 100;
const MINUTE = 60_000;
const id = (i: number): string => `tenant-${String(i).padStart(3, '0')}`;

t.test('100 tenants failing for 10 simulated minutes make a bounded number of status commits', async (t) => {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  const files: Record<string, string> = {};
  for (let i = 0; i < COUNT; i++) files[`tenants/${id(i)}.yaml`] = tenantYaml(id(i));
  await commitFiles(repo, files, `${COUNT} tenants`);

  // Half the fleet waits on an unreachable cluster (status unchanged between attempts), half fails
  // outright (FAILED, back to PROVISIONING for each attempt, FAILED again).
  let clusterDown = true;
  const provider = new ScriptedProvider();
  provider.hook = async (step, ctx) => {
    if (!clusterDown || step !== 'apply') return;
    const even = Number(ctx.tenantId.slice(-3)) % 2 === 0;
    throw even
      ? new TenantdError('E_CLUSTER_UNREACHABLE', 'waiting', 'cluster did not answer')
      : new TenantdError('E_TEST_APPLY', 'retryable', 'apply failed');
  };
  const clock = new SimulatedClock();
  const { daemon } = await openDaemon(repo, path.join(dir, 'data'), ['--status-interval', '10', '--drift-interval', '0', '--gc-interval', '0'], {
    provider,
    timers: clock,
    random: prng(7),
  });
  const commits: number[] = [];
  let failures = 0;
  daemon.publisher.subscribe((e) => {
    if (e.type === 'StatusCommitted') commits.push(clock.now());
    if (e.type === 'PhaseFailed') failures++;
  });
  const settle = async (): Promise<void> => {
    await daemon.queue.whenIdle();
    await daemon.status.settled();
  };
  const start = clock.now();
  await daemon.start();
  await settle();
  await clock.advanceTo(start + 10 * MINUTE, settle);

  const whileFailing = commits.length;
  t.comment(`100 tenants failing for 10 simulated minutes: ${failures} failed attempts, ${whileFailing} status commit(s)`);
  t.ok(failures >= COUNT * 6, `every tenant kept retrying (${failures} failed attempts)`);
  t.ok(whileFailing >= 1 && whileFailing <= 3, `status committed when the tenants failed, not per retry (${whileFailing} commits)`);

  // The record (and so the API) has the retry counters; the committed status has the failure.
  const record = daemon.store.get(id(0));
  t.ok((record?.retry?.attempt ?? 0) >= 5, `the record counts the attempts (${record?.retry?.attempt})`);
  const waiting = await statusAt(repo, 'main', id(0));
  t.match(waiting.status, { status: 'PROVISIONING', phase: 'Apply', retry: { lastError: { code: 'E_CLUSTER_UNREACHABLE' } } }, 'a waiting tenant shows the error in git');
  const failed = await statusAt(repo, 'main', id(1));
  t.match(failed.status, { status: 'FAILED', phase: 'Apply', retry: { lastError: { code: 'E_TEST_APPLY' } } }, 'a failing tenant shows FAILED in git');

  // The cluster comes back: every tenant converges as its next retry comes up (up to 5 minutes
  // away); that is news, committed at most once per interval.
  clusterDown = false;
  await clock.advanceTo(start + 20 * MINUTE, settle);
  const recovered = commits.slice(whileFailing);
  t.comment(`recovery over the next 10 simulated minutes: ${recovered.length} status commit(s)`);
  t.ok(recovered.length >= 1 && recovered.length <= 61, `recovery committed, at most once per 10 s (${recovered.length})`);
  const gaps = commits.slice(1).map((at, i) => at - (commits[i] as number));
  t.ok(gaps.every((g) => g >= 10_000), `commits at least 10 s apart (smallest gap ${Math.min(...gaps)} ms)`);
  t.equal(daemon.store.all().filter((r) => r.status === 'ACTIVE').length, COUNT, 'every tenant ACTIVE');
  for (const i of [0, 1, COUNT - 1]) t.equal((await statusAt(repo, 'main', id(i))).status.status, 'ACTIVE', `${id(i)} ACTIVE in git`);

  // Shutdown commits whatever changed since, news or not: git then matches the records.
  await daemon.stop();
  const total = Number(await gitOut(repo, ['rev-list', '--count', '--author=tenantd', 'main']));
  t.equal(total, commits.length, 'every status commit is on main');
  t.comment(`status commits in all: ${commits.length} (${whileFailing} failing, ${recovered.length} recovering and at shutdown)`);
});
