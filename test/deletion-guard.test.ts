import t from 'tap';
import { approvalTrailers, approveHold, decide, deletionLimit, emptyGuardState, type ChangeFacts, type GuardState } from '../core/deletion/guard.js';

const ids = (n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `t${String(i + from).padStart(3, '0')}`);
const facts = (over: Partial<ChangeFacts>): ChangeFacts => ({
  head: 'h1',
  previous: 'h0',
  pending: [],
  fleet: 100,
  listingEmpty: false,
  fastForward: true,
  trailers: [],
  now: '2025-01-01T00:00:00.000Z',
  ...over,
});

t.test('the limit: 5 or 10 % whichever is larger, a fixed count, a percentage', async (t) => {
  t.equal(deletionLimit({ kind: 'default' }, 10), 5);
  t.equal(deletionLimit({ kind: 'default' }, 100), 10);
  t.equal(deletionLimit({ kind: 'default' }, 1000), 100);
  t.equal(deletionLimit({ kind: 'count', n: 0 }, 1000), 0);
  t.equal(deletionLimit({ kind: 'percent', percent: 25 }, 10), 2);
});

t.test('deletions up to the limit go ahead; more are held, and only the fresh ones', async (t) => {
  const ok = decide(emptyGuardState(), facts({ pending: ids(10) }), { kind: 'default' });
  t.same(ok.released, ids(10), 'ten of a hundred: allowed');
  t.equal(ok.hold, null);
  t.same(ok.state.allowed, ids(10));
  t.equal(ok.state.lastHead, 'h1');

  // The next change deletes 11 more while the first ten have not started yet: they stay allowed.
  const held = decide(ok.state, facts({ head: 'h2', previous: 'h1', pending: [...ids(10), ...ids(11, 10)] }), { kind: 'default' });
  t.same(held.released, []);
  t.same(held.hold?.tenants, ids(11, 10));
  t.same(held.hold?.reasons, ['threshold']);
  t.equal(held.hold?.commit, 'h2');
  t.equal(held.event?.kind, 'held');
  t.same(held.state.allowed, ids(10), 'the earlier ten stay allowed');

  const zero = decide(emptyGuardState(), facts({ pending: ids(1) }), { kind: 'count', n: 0 });
  t.same(zero.hold?.tenants, ids(1), '--max-deletions 0: every deletion asks');
});

t.test('an empty listing and a non-fast-forward hold even one deletion', async (t) => {
  const empty = decide(emptyGuardState(), facts({ pending: ids(3), fleet: 3, listingEmpty: true }), { kind: 'default' });
  t.same(empty.hold?.reasons, ['emptyListing']);
  const reset = decide(emptyGuardState(), facts({ pending: ids(1), fastForward: false }), { kind: 'default' });
  t.same(reset.hold?.reasons, ['nonFastForward']);
  const both = decide(emptyGuardState(), facts({ pending: ids(100), fleet: 100, listingEmpty: true, fastForward: false }), { kind: 'default' });
  t.same(both.hold?.reasons, ['threshold', 'emptyListing', 'nonFastForward']);
  const nothing = decide(emptyGuardState(), facts({ fastForward: false, listingEmpty: true }), { kind: 'default' });
  t.equal(nothing.hold, null, 'a rewrite that deletes nothing holds nothing');
});

t.test('a hold grows with every further deletion, shrinks as files come back, and ends when all are back', async (t) => {
  const s1 = decide(emptyGuardState(), facts({ pending: ids(20) }), { kind: 'default' }).state;
  const grown = decide(s1, facts({ head: 'h2', previous: 'h1', pending: [...ids(20), 'x'] }), { kind: 'default' });
  t.same(grown.hold?.tenants, [...ids(20), 'x'].sort(), 'one more deletion joins the hold');
  t.equal(grown.hold?.commit, 'h2', 'the commit to approve moves');
  t.same(grown.released, [], 'nothing released although one deletion alone is under the limit');
  const shrunk = decide(grown.state, facts({ head: 'h3', previous: 'h2', pending: ids(5) }), { kind: 'default' });
  t.same(shrunk.hold?.tenants, ids(5));
  t.equal(shrunk.hold?.commit, 'h2', 'shrinking keeps the approved commit (a subset of what was seen)');
  t.equal(shrunk.event, null);
  const back = decide(shrunk.state, facts({ head: 'h4', previous: 'h3', pending: [] }), { kind: 'default' });
  t.equal(back.hold, null);
  t.same(back.event, { kind: 'restored', commit: 'h4' });
  t.same(back.released, [], 'nothing to do: the files are back');
});

t.test('approval: the exact commit through the API, or a trailer with the exact count', async (t) => {
  const held = decide(emptyGuardState(), facts({ pending: ids(20) }), { kind: 'default' }).state;
  t.match(approveHold(held, 'h0', 'alice'), { refused: 'stale' });
  t.match(approveHold(emptyGuardState(), 'h1', 'alice'), { refused: 'none' });
  const ok = approveHold(held, 'h1', 'alice');
  if ('refused' in ok) throw new Error('refused');
  t.same(ok.released, ids(20));
  t.equal(ok.state.hold, null);
  t.same(ok.state.allowed, ids(20));

  const wrong = decide(emptyGuardState(), facts({ pending: ids(20), trailers: [19, 21] }), { kind: 'default' });
  t.same(wrong.hold?.tenants.length, 20, 'a trailer with another count approves nothing');
  const right = decide(emptyGuardState(), facts({ pending: ids(20), trailers: [20] }), { kind: 'default' });
  t.same(right.released, ids(20), 'the trailer approves in the same change');
  t.match(right.event, { kind: 'approved', by: /Tenantd-Approve-Deletions: 20/ });
  const later = decide(held, facts({ head: 'h2', previous: 'h1', pending: ids(20), trailers: [20] }), { kind: 'default' });
  t.same(later.released, ids(20), 'a later commit with the trailer approves the hold');
});

t.test('approval trailers are read from the trailer block only', async (t) => {
  t.same(approvalTrailers('remove 20 tenants\n\nTenantd-Approve-Deletions: 20\n'), [20]);
  t.same(approvalTrailers('remove\n\nbody\n\nSigned-off-by: a <a@b>\ntenantd-approve-deletions:   7  \n'), [7]);
  t.same(approvalTrailers('Tenantd-Approve-Deletions: 20'), [], 'a subject line is not a trailer');
  t.same(approvalTrailers('x\n\nTenantd-Approve-Deletions: 20\n\nlast paragraph'), [], 'only the last paragraph');
  t.same(approvalTrailers('x\n\nTenantd-Approve-Deletions: twenty'), []);
});

t.test('a state round-trips through JSON (it is persisted)', async (t) => {
  const s: GuardState = decide(emptyGuardState(), facts({ pending: ids(20) }), { kind: 'default' }).state;
  t.same(JSON.parse(JSON.stringify(s)), s);
});

t.test('--max-deletions: a count, a percentage, or the default; a bad value is E_CONFIG', async (t) => {
  const { parseDaemonConfig } = await import('../daemon/config.js');
  const parse = (v?: string) => parseDaemonConfig(v === undefined ? [] : [`--max-deletions=${v}`], {}, '/').maxDeletions;
  t.same(parse(), { kind: 'default' });
  t.same(parse('0'), { kind: 'count', n: 0 });
  t.same(parse('25'), { kind: 'count', n: 25 });
  t.same(parse('15%'), { kind: 'percent', percent: 15 });
  t.same(parseDaemonConfig([], { TENANTD_MAX_DELETIONS: '3' }, '/').maxDeletions, { kind: 'count', n: 3 });
  for (const bad of ['-1', 'many', '120%', '1.5']) t.throws(() => parse(bad), { code: 'E_CONFIG' }, bad);
});
