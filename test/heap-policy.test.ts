import t from 'tap';
import { applyHeapPolicy, HEAP_GROWING_PERCENT } from '../daemon/heap-policy.js';

t.test('the daemon caps heap growth unless the operator set heap flags', async (t) => {
  t.equal(applyHeapPolicy({}, []), true, 'applied by default');
  t.equal(applyHeapPolicy({ NODE_OPTIONS: '--max-old-space-size=300 --heap-growing-percent=20' }, []), false, 'NODE_OPTIONS wins');
  t.equal(applyHeapPolicy({}, ['--optimize-for-size']), false, 'node command-line flags win');
  t.equal(applyHeapPolicy({ NODE_OPTIONS: '--max-old-space-size=300' }, []), true, 'an unrelated flag does not disable it');
  t.equal(HEAP_GROWING_PERCENT, 50);
});
