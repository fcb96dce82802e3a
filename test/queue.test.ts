import t from 'tap';
import { TenantQueue, type QueueJob } from '../daemon/queue.js';

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('one job per tenant at a time, bounded across tenants', async (t) => {
  let running = 0;
  let peak = 0;
  const perTenant = new Map<string, number>();
  const seen: string[] = [];
  const q = new TenantQueue(2, async (job) => {
    running++;
    peak = Math.max(peak, running);
    perTenant.set(job.tenantId, (perTenant.get(job.tenantId) ?? 0) + 1);
    t.equal(perTenant.get(job.tenantId), 1, `${job.tenantId} never runs twice at once`);
    await tick(10);
    seen.push(`${job.tenantId}:${job.trigger}`);
    perTenant.set(job.tenantId, (perTenant.get(job.tenantId) ?? 1) - 1);
    running--;
  });
  for (const id of ['a', 'b', 'c', 'd']) q.enqueue(id, 'first');
  q.enqueue('a', 'second'); // a is running: exactly one re-run follows
  q.enqueue('a', 'third'); // merged with the waiting re-run, newest trigger wins
  await q.whenIdle();
  t.equal(peak, 2);
  t.same(seen.filter((s) => s.startsWith('a:')), ['a:first', 'a:third']);
  t.equal(seen.length, 5);
});

t.test('supersede aborts the running job; retries are scheduled and cancelled by new work', async (t) => {
  const jobs: QueueJob[] = [];
  let aborted = 0;
  const q = new TenantQueue(1, async (job, signal) => {
    jobs.push(job);
    if (job.trigger === 'slow') {
      await new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => {
          aborted++;
          resolve();
        });
        setTimeout(resolve, 2000).unref();
      });
      return;
    }
    if (job.trigger === 'fail') return { retryAt: new Date(Date.now() + 20), retryTrigger: 'retry:1' };
  });
  q.enqueue('a', 'slow');
  await tick();
  q.enqueue('a', 'new', { supersede: true });
  await q.whenIdle();
  t.equal(aborted, 1);
  t.same(jobs.map((j) => j.trigger), ['slow', 'new']);

  q.enqueue('b', 'fail');
  await q.whenIdle();
  t.equal(q.scheduledRetries, 1);
  await tick(60);
  await q.whenIdle();
  t.equal(jobs.at(-1)?.trigger, 'retry:1', 'the retry ran with its own trigger');

  q.enqueue('c', 'fail');
  await q.whenIdle();
  t.equal(q.scheduledRetries, 1, 'c has a retry scheduled (b\'s retry succeeded)');
  q.enqueue('c', 'fix', { force: true });
  await q.whenIdle();
  t.equal(jobs.at(-1)?.trigger, 'fix');
  t.equal(jobs.at(-1)?.force, true);
  q.pause();
  t.equal(q.scheduledRetries, 0, 'pause clears retry timers');
});

t.test('pause stops new jobs and drain waits for running ones', async (t) => {
  let done = 0;
  const q = new TenantQueue(1, async () => {
    await tick(20);
    done++;
  });
  q.enqueue('a', 'x');
  q.enqueue('b', 'x');
  await tick(1);
  q.pause();
  await q.drain();
  t.equal(done, 1, 'b never started after pause');
  t.equal(q.depth, 1);
});
