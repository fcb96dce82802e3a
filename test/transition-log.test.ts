import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
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
