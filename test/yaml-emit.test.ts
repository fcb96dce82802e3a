import t from 'tap';
import YAML from 'yaml';
import { sortKeysDeep } from '../core/canonical.js';
import { stringifyYaml } from '../core/status/yaml-emit.js';
import { TIERS, CLOUD_PROVIDERS } from '../core/tenant/types.js';
import { REGIONS, DATABASE_SIZES } from '../core/tenant/catalog.js';
import { allObjects, renderTenant } from '../providers/resources/renderer.js';
import { tenantDoc } from './helpers/tenants.js';

// The fast emitter must write exactly what the yaml library writes, or the files would churn.
const reference = (doc: unknown, version: '1.1' | '1.2'): string =>
  version === '1.1'
    ? YAML.stringify(doc, { version: '1.1', lineWidth: 0, aliasDuplicateObjects: false, sortMapEntries: true })
    : YAML.stringify(doc, { lineWidth: 0 });

const TRICKY = ['yes', 'no', 'on', 'off', 'y', 'n', 'null', '~', 'true', 'False', '0x1F', '0o17', '0777', '1e3', '.5', '1.', '-1', '+1', '1_000',
  '2024-01-01', '2024-01-01T00:00:00Z', '.inf', '-.Inf', '.NaN', 'a: b', 'a #b', '#x', '- x', '? x', '[1]', '{a: 1}', '&a', '*a', '!x', '|', '>', '%x', '@x',
  '`x', "'q'", '"q"', '', ' lead', 'trail ', 'é ü', '12:30', '1:2:3', 'a\\b', 'tab\there', 'x'.repeat(250)];

t.test('rendered manifests and status-like documents: byte for byte what yaml writes', async (t) => {
  let compared = 0;
  for (const tier of TIERS) {
    for (const cloud of CLOUD_PROVIDERS) {
      const doc = tenantDoc(`t-${tier}-${cloud.toLowerCase()}`, {
        tier,
        cloudProvider: cloud,
        region: REGIONS[cloud][0] as string,
        configuration: { databaseSize: Object.keys(DATABASE_SIZES[cloud])[0] as string, storageGb: 20, enableHa: tier !== 'starter' },
      });
      for (const obj of allObjects(renderTenant(doc))) {
        const sorted = sortKeysDeep(obj);
        t.equal(stringifyYaml(sorted, { version: '1.1', sortMapEntries: true }), reference(sorted, '1.1'), `${obj.kind}/${obj.metadata.name}`);
        compared++;
      }
    }
  }
  for (const [i, s] of TRICKY.entries()) {
    const doc = { key: s, list: [s, i, i + 0.5, null, true], nested: { [s || 'empty']: { deep: [s] } } };
    t.equal(stringifyYaml(doc, { version: '1.1', sortMapEntries: true }), reference(doc, '1.1'), `1.1 ${JSON.stringify(s)}`);
    t.equal(stringifyYaml(doc), reference(doc, '1.2'), `1.2 ${JSON.stringify(s)}`);
    compared += 2;
  }
  t.ok(compared > 100, `${compared} documents compared`);
});
