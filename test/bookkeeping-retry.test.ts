/**
 * No bookkeeping error is dropped: a record write or a log append that fails (a full disk, an I/O
 * error) is shown on the tenant and retried with the phase backoff, and the tenant converges
 * without a restart — every transition in the log exactly once.
 */
import path from 'node:path';
import t, { type Test } from 'tap';
import { nodeDurableFs, type DurableFs } from '../core/durable-fs.js';
import type { ReconciliationEvent } from '../core/events/events.js';
import { PHASES } from '../core/phases.js';
import { SimulatedClock } from '../bench/lib/sim-clock.js';
import { openDaemon, statusAt } from './helpers/daemon.js';
import { ScriptedProvider } from './helpers/fake-provider.js';
import { commitFiles, initRepo } from './helpers/git-fixtures.js';
import { prng } from './helpers/prng.js';
import { tenantYaml } from './helpers/tenants.js';

const MINUTE = 60_000;

/** The real file system, except that the calls `fail` picks throw the error a full or broken disk gives. */
function failingFs(fail: (call: 'record-write' | 'log-datasync', file: string) => boolean): DurableFs {
  const broken = (code: string, file: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: injected, ${file}`), { code });
  return {
    ...nodeDurableFs,
    async open(file, flags, mode) {
      const h = await nodeDurableFs.open(file, flags, mode);
      const isLog = file.endsWith('transitions.jsonl');
      return {
        read: (...a) => h.read(...a),
        stat: () => h.stat(),
        truncate: (n) => h.truncate(n),
        close: () => h.close(),
        write: (buf, off, len, pos) => (!isLog && fail('record-write', file) ? Promise.reject(broken('ENOSPC', file)) : h.write(buf, off, len, pos)),
        datasync: () => (isLog && fail('log-datasync', file) ? Promise.reject(broken('EIO', file)) : h.datasync()),
      };
    },
  };
}

async function setup(t: Test, fs: DurableFs) {
  const dir = t.testdir();
  const repo = path.join(dir, 'repo');
  await initRepo(repo);
  await commitFiles(repo, { 'tenants/acme.yaml': tenantYaml('acme'), 'tenants/globex.yaml': tenantYaml('globex') }, 'two tenants');
  const clock = new SimulatedClock();
  const { daemon } = await openDaemon(repo, path.join(dir, 'data'), ['--drift-interval', '0', '--gc-interval', '0', '--status-interval', '1'], {
    provider: new ScriptedProvider(),
    timers: clock,
    random: prng(3),
    fs,
  });
  const events: ReconciliationEvent[] = [];
  daemon.publisher.subscribe((e) => events.push(e));
  const settle = async (): Promise<void> => {
    await daemon.queue.whenIdle();
    await daemon.status.settled();
  };
  t.teardown(() => daemon.stop());
  return { repo, daemon, clock, events, settle };
}

async function phasesOf(daemon: Awaited<ReturnType<typeof setup>>['daemon'], tenantId: string): Promise<string[]> {
  return (await daemon.log.read(tenantId)).map((x) => x.toState.split('/')[1] as string);
}

for (const scenario of [
  { call: 'record-write' as const, code: 'E_STATE_WRITE', nth: 3, times: 1 },
  { call: 'log-datasync' as const, code: 'E_LOG_APPEND', nth: 4, times: 1 },
  { call: 'record-write' as const, code: 'E_STATE_WRITE', nth: 5, times: 4 },
]) {
  t.test(`${scenario.times} failed ${scenario.call}(s) of acme: retried with backoff, converges without a restart, no transition lost or doubled`, async (t) => {
    let seen = 0;
    let failed = 0;
    const fs = failingFs((call, file) => {
      if (call !== scenario.call || !(call === 'log-datasync' || path.basename(file).includes('acme'))) return false;
      // For the log every datasync counts (acme's and globex's lines share batches): fail from the nth on.
      seen++;
      if (seen >= scenario.nth && failed < scenario.times) {
        failed++;
        return true;
      }
      return false;
    });
    const { repo, daemon, clock, events, settle } = await setup(t, fs);
    await daemon.start();
    await settle();
    await clock.advance(0, settle); // what is due now (the status commit of the pass)

    t.ok(failed >= 1, 'the injected failure happened');
    const shown = events.filter((e): e is Extract<ReconciliationEvent, { type: 'BookkeepingFailed' }> => e.type === 'BookkeepingFailed');
    t.ok(shown.length >= 1 && shown.every((e) => e.code === scenario.code), `a BookkeepingFailed event with ${scenario.code}`);
    const tenantId = shown[0]?.tenantId as string;
    const record = daemon.store.get(tenantId);
    t.match(record?.retry, { attempt: 1, lastError: { code: scenario.code, kind: 'retryable' } }, 'the tenant shows the error and its retry (API, record)');
    t.notOk(record?.status === 'ACTIVE', 'it is not reported converged');
    t.match((await statusAt(repo, 'main', tenantId)).status, { retry: { lastError: { code: scenario.code } } }, 'and so does its status file');

    // Time passes: the retries come up on the backoff schedule until the disk takes the writes.
    await clock.advance(30 * MINUTE, settle);
    t.equal(failed, scenario.times, `${scenario.times} injected failure(s) in all`);
    const attempts = events.flatMap((e) => (e.type === 'BookkeepingFailed' && e.tenantId === tenantId ? [e.attempt] : []));
    // The save that records the failure may fail too (a full disk stays full): then the attempt is
    // counted in memory and the next retry writes it.
    t.ok(attempts.length >= 1 && attempts.length <= scenario.times, `${attempts.length} retry attempt(s) for ${scenario.times} failure(s)`);
    t.same(attempts, attempts.map((_, i) => i + 1), 'attempts counted up, one by one');
    for (const id of ['acme', 'globex']) {
      t.equal(daemon.store.get(id)?.status, 'ACTIVE', `${id} ACTIVE`);
      t.same(await phasesOf(daemon, id), [...PHASES], `${id}: the seven phases, each once`);
      t.equal(daemon.store.get(id)?.retry, null, `${id}: no retry left`);
    }
    t.ok(daemon.store.isSaved(tenantId), 'the record on disk caught up');
    await daemon.whenIdle();
    t.equal((await statusAt(repo, 'main', tenantId)).status.status, 'ACTIVE', 'status committed ACTIVE');
  });
}
