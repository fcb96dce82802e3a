import t from 'tap';
import { canonicalJson, digestOf, sortKeysDeep } from '../core/canonical.js';

t.test('canonical JSON sorts keys at every depth and drops undefined', async (t) => {
  t.equal(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[{"y":2,"z":1}]},"b":1}');
  t.same(Object.keys(sortKeysDeep({ z: 1, a: 2 })), ['a', 'z']);
});

t.test('digest is independent of key order and changes with values', async (t) => {
  t.equal(digestOf({ a: 1, b: 2 }), digestOf({ b: 2, a: 1 }));
  t.not(digestOf({ a: 1 }), digestOf({ a: 2 }));
  t.match(digestOf({}), /^sha256:[0-9a-f]{64}$/);
});
