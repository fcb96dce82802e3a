import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { nodeDurableFs, type DurableFs } from '../core/durable-fs.js';
import { TransitionLog } from '../core/log/transition-log.js';
import type { InfrastructureStateTransition } from '../core/log/transition.js';

const tr = (tenantId: string, n: number): InfrastructureStateTransition => ({
  id: `${tenantId}-${n}`,
  tenantId,
  fromState: 'PROVISIONING/Request',
  toState: 'PROVISIONING/Plan',
  trigger: `commit:${n}`,
  details: { n },
  timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
});

t.test('appends are durable JSON lines, indexed per tenant, and survive reopening', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'transitions.jsonl');
  const log = await TransitionLog.open({ path: file });
  await Promise.all([log.append(tr('a', 1)), log.append(tr('b', 1)), log.append(tr('a', 2))]);
  t.equal(log.total, 3);
  t.equal(log.lastId('a'), 'a-2');
  t.same((await log.read('a')).map((x) => x.id), ['a-1', 'a-2'], 'per-tenant order is append order');
  await log.close();

  const lines = (await fsp.readFile(file, 'utf8')).trimEnd().split('\n');
  t.equal(lines.length, 3);
  for (const line of lines) t.ok(JSON.parse(line).id, 'every line is a JSON document');

  const again = await TransitionLog.open({ path: file });
  t.same(again.tenants(), ['a', 'b']);
  t.equal(again.countFor('a'), 2);
  t.same((await again.read('a', { offset: 1, limit: 5 })).map((x) => x.id), ['a-2'], 'paging');
  t.same((await again.last('a', 1)).map((x) => x.id), ['a-2']);
  await again.append(tr('b', 2));
  t.same((await again.read('b')).map((x) => x.id), ['b-1', 'b-2']);
  await again.close();
});

t.test('a torn last line from a crash is cut on open, leaving valid JSON lines', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'transitions.jsonl');
  const log = await TransitionLog.open({ path: file });
  await log.append(tr('a', 1));
  await log.close();
  await fsp.appendFile(file, '{"id":"a-2","tenantId":"a","fromSt');
  const reopened = await TransitionLog.open({ path: file });
  t.equal(reopened.total, 1);
  await reopened.append(tr('a', 3));
  await reopened.close();
  const lines = (await fsp.readFile(file, 'utf8')).trimEnd().split('\n');
  t.same(
    lines.map((l) => JSON.parse(l).id),
    ['a-1', 'a-3'],
  );
});

t.test('a corrupt line in the middle is refused with E_LOG_CORRUPT rather than silently dropped', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'transitions.jsonl');
  await fsp.writeFile(file, `${JSON.stringify(tr('a', 1))}\nnot json\n${JSON.stringify(tr('a', 2))}\n`);
  await t.rejects(TransitionLog.open({ path: file }), { code: 'E_LOG_CORRUPT' });
});

t.test('the index is built across read-chunk boundaries', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'transitions.jsonl');
  const big = 'x'.repeat(700);
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) lines.push(JSON.stringify({ ...tr(`t${i % 7}`, i), details: { big } }));
  await fsp.writeFile(file, `${lines.join('\n')}\n`);
  const log = await TransitionLog.open({ path: file });
  t.equal(log.total, 3000);
  const got = await log.read('t3');
  t.equal(got.length, Math.ceil((3000 - 3) / 7));
  t.ok(got.every((x) => x.tenantId === 't3'));
  await log.close();
});

t.test('a batch whose write or fdatasync fails is rejected whole and cut from the file; later appends land', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'transitions.jsonl');
  let failDatasync = false;
  let failWrite = false;
  const open: DurableFs['open'] = async (p, flags) => {
    const real = await fsp.open(p, flags);
    return new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'datasync' && failDatasync) return () => Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
        if (prop === 'write' && failWrite) {
          // half the bytes reach the file, then the disk fails
          return async (buf: Buffer, offset: number, length: number, position: number | null) => {
            await target.write(buf, offset, Math.floor(length / 2), position);
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          };
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  const log = await TransitionLog.open({ path: file, fs: { ...nodeDurableFs, open } });
  await log.append(tr('a', 1));
  await log.append(tr('a', 2));

  // One append in flight (its fdatasync fails: the flag is read when it is called), four queued
  // behind it that go as the next batch, which fails too.
  const first = log.append(tr('b', 1));
  failDatasync = true;
  const batch = [2, 3, 4, 5].map((n) => log.append(tr('b', n)));
  const settled = await Promise.allSettled([first, ...batch]);
  failDatasync = false;
  t.same(
    settled.map((s) => (s.status === 'rejected' ? `${(s.reason as { code?: string }).code}:${((s.reason as Error).cause as { code?: string }).code}` : 'fulfilled')),
    ['E_LOG_APPEND:EIO', 'E_LOG_APPEND:EIO', 'E_LOG_APPEND:EIO', 'E_LOG_APPEND:EIO', 'E_LOG_APPEND:EIO'],
    'every append of a failed batch is rejected with E_LOG_APPEND, the cause kept',
  );

  failWrite = true;
  await t.rejects(log.append(tr('c', 1)), { code: 'E_LOG_APPEND', cause: { code: 'ENOSPC' } }, 'a failed write is rejected');
  failWrite = false;
  await log.append(tr('c', 2));

  const lines = (await fsp.readFile(file, 'utf8')).split('\n').filter(Boolean);
  for (const line of lines) t.ok(JSON.parse(line), 'every line is whole JSON');
  const ids = lines.map((l) => (JSON.parse(l) as { id: string }).id);
  t.same(ids, ['a-1', 'a-2', 'c-2'], 'only durable appends are in the file, in order');
  t.equal(log.countFor('b'), 0, 'the index holds no failed append');
  t.equal(log.total, 3);
  await log.close();
  const again = await TransitionLog.open({ path: file });
  t.equal(again.total, 3, 'reopened: the same entries');
  await again.close();
});
