import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import t from 'tap';
import { LineCounter, parseDocument, parse as parseYaml } from 'yaml';
import schema from '../schemas/tenant.schema.json' with { type: 'json' };
import {
  CATALOG,
  CUSTOM_SIZE_PATTERN,
  DATABASE_SIZES,
  REGIONS,
  RETIRED_DATABASE_SIZES,
  TIER_POLICIES,
  databaseSizeSpec,
  lookupDatabaseSize,
} from '../core/tenant/catalog.js';
import { renderTenantSchema } from '../core/tenant/catalog-schema.js';
import { CLOUD_PROVIDERS, TIERS, formatWarning, type CloudProvider, type Tier, type ValidationIssue } from '../core/tenant/types.js';
import { parseTenantFile, quickParse, validateTenantDocument } from '../core/tenant/validate.js';

/** A tenant file on `provider` with the given region, size and tier; `databaseSize` is on line 11, column 19. */
const tenantFile = (provider: CloudProvider, region: string, databaseSize: string, tier: Tier = 'professional'): string =>
  [
    'apiVersion: tenantd.io/v1alpha1',
    'kind: TenantInfrastructure',
    'metadata:',
    '  tenantId: acme',
    '  name: Acme',
    'spec:',
    `  tier: ${tier}`,
    `  cloudProvider: ${provider}`,
    `  region: ${region}`, // 9, value at column 11
    '  configuration:',
    `    databaseSize: ${databaseSize}`, // 11, value at column 19
    '    storageGb: 20',
    '    enableHa: false',
    '',
  ].join('\n');

const issues = (text: string): ValidationIssue[] => {
  const r = parseTenantFile('tenants/acme.yaml', text);
  return r.ok ? [] : r.issues;
};
const warnings = (text: string): ValidationIssue[] => {
  const r = parseTenantFile('tenants/acme.yaml', text);
  return r.ok ? r.warnings : [];
};

t.test('the catalog data file names its sources and date, and its entries are consistent', async (t) => {
  t.match(CATALOG.compiled, /^\d{4}-\d{2}-\d{2}$/);
  for (const p of CLOUD_PROVIDERS) {
    const c = CATALOG.providers[p];
    t.ok(c.sources.length > 0 && c.sources.every((s) => /^https:\/\//.test(s.url)), `${p}: sources are URLs`);
    t.equal(new Set(c.regions).size, c.regions.length, `${p}: no region twice`);
    const current = Object.keys(c.sizes);
    const retired = Object.keys(RETIRED_DATABASE_SIZES[p]);
    t.ok(current.length >= 10, `${p}: a real catalog`);
    t.same(current.filter((n) => retired.includes(n)), [], `${p}: a size is current or retired, not both`);
    for (const [name, r] of Object.entries(RETIRED_DATABASE_SIZES[p])) {
      const replacement = DATABASE_SIZES[p][r.replacement];
      t.ok(replacement, `${p}: ${name} is replaced by a current size (${r.replacement})`);
      t.ok((replacement?.milliCpu ?? 0) >= r.size.milliCpu, `${p}: ${r.replacement} has at least the vCPUs of ${name}`);
    }
  }
});

t.test('sizes map to the vCPU and memory the clouds publish', async (t) => {
  const spec = (p: CloudProvider, n: string): string | undefined => {
    const s = databaseSizeSpec(p, n);
    return s && `${s.milliCpu / 1000}/${s.memoryMi / 1024}`;
  };
  // The seed's own size, one of each family the issue names, and a custom type read from its name.
  const published: Array<[CloudProvider, string, string]> = [
    ['AZURE', 'Standard_D2s_v3', '2/8'],
    ['AZURE', 'Standard_B1ms', '1/2'],
    ['AZURE', 'Standard_B2s', '2/4'],
    ['AZURE', 'Standard_D64s_v3', '64/256'],
    ['AZURE', 'Standard_D2ds_v5', '2/8'],
    ['AZURE', 'Standard_E2s_v3', '2/16'],
    ['AZURE', 'Standard_E64s_v3', '64/432'],
    ['AWS', 'db.t4g.micro', '2/1'],
    ['AWS', 'db.m6g.large', '2/8'],
    ['AWS', 'db.m7g.16xlarge', '64/256'],
    ['AWS', 'db.r6g.xlarge', '4/32'],
    ['GCP', 'db-f1-micro', '0.2/0.599609375'],
    ['GCP', 'db-g1-small', '0.5/1.69921875'],
    ['GCP', 'db-perf-optimized-N-2', '2/16'],
    ['GCP', 'db-custom-2-7680', '2/7.5'],
  ];
  for (const [p, name, vCpuGiB] of published) t.equal(spec(p, name), vCpuGiB, `${p} ${name}: ${vCpuGiB} (vCPU/GiB)`);
  t.equal(databaseSizeSpec('AZURE', 'db.t4g.micro'), undefined, 'sizes are per provider');
  t.equal(databaseSizeSpec('AWS', 'constructor'), undefined, 'no prototype keys');
});

t.test('every region and size tenantd accepted before is still accepted, on the tiers it fitted', async (t) => {
  const regionsBefore: Record<CloudProvider, string[]> = {
    AWS: ['us-east-1', 'us-east-2', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-southeast-1', 'ap-northeast-1'],
    AZURE: ['eastus', 'eastus2', 'westus2', 'westeurope', 'northeurope', 'southeastasia', 'uksouth'],
    GCP: ['us-central1', 'us-east1', 'us-west1', 'europe-west1', 'europe-west4', 'asia-southeast1', 'asia-northeast1'],
  };
  for (const p of CLOUD_PROVIDERS) t.same(regionsBefore[p].filter((r) => !REGIONS[p].includes(r)), [], `${p} regions kept`);
  const sizesBefore: Array<[CloudProvider, string, Tier]> = [
    ['AWS', 'db.t3.micro', 'starter'],
    ['AWS', 'db.t3.small', 'starter'],
    ['AWS', 'db.t3.medium', 'professional'],
    ['AWS', 'db.m5.large', 'professional'],
    ['AWS', 'db.m5.xlarge', 'professional'],
    ['AWS', 'db.r5.2xlarge', 'enterprise'],
    ['AZURE', 'B_Gen5_1', 'starter'],
    ['AZURE', 'B_Gen5_2', 'professional'],
    ['AZURE', 'GP_Gen5_2', 'professional'],
    ['AZURE', 'GP_Gen5_4', 'professional'],
    ['AZURE', 'MO_Gen5_8', 'enterprise'],
    ['GCP', 'db-f1-micro', 'starter'],
    ['GCP', 'db-g1-small', 'starter'],
    ['GCP', 'db-custom-2-7680', 'professional'],
    ['GCP', 'db-custom-4-15360', 'professional'],
    ['GCP', 'db-custom-8-53248', 'enterprise'],
  ];
  for (const [p, size, tier] of sizesBefore) {
    t.same(issues(tenantFile(p, regionsBefore[p][0] as string, size, tier)), [], `${p} ${size} on ${tier}`);
  }
});

t.test('the seed request body validates: professional, eastus, AZURE, Standard_D2s_v3, no warning', async (t) => {
  const seed = JSON.parse(readFileSync(new URL('./fixtures/seed-provision.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  const result = validateTenantDocument({ apiVersion: 'tenantd.io/v1alpha1', kind: 'TenantInfrastructure', metadata: { tenantId: '550e8400', name: '550e8400' }, spec: seed });
  t.same(result.ok ? result.warnings : result.issues, []);
  t.ok(result.ok);
});

t.test('a retired size is accepted with one warning at its position that names the replacement', async (t) => {
  const text = tenantFile('AZURE', 'westeurope', 'GP_Gen5_2');
  const result = parseTenantFile('tenants/acme.yaml', text);
  t.ok(result.ok, 'not an error: existing tenants keep reconciling');
  const found = warnings(text);
  t.equal(found.length, 1);
  t.match(found[0], { file: 'tenants/acme.yaml', line: 11, column: 19, path: 'spec.configuration.databaseSize' });
  t.match(found[0]?.message, /^database size "GP_Gen5_2" is retired \(Azure Database for PostgreSQL single server was retired on 2025-03-28\); use "Standard_D2ds_v5" \(2 vCPU, 8 GiB\) instead/);
  t.equal(formatWarning(found[0] as ValidationIssue).startsWith('tenants/acme.yaml:11:19: warning: spec.configuration.databaseSize: database size "GP_Gen5_2"'), true);
  // The API path (no positions) warns the same way; the tier limit still applies to a retired size.
  const doc = parseYaml(text) as unknown;
  const api = validateTenantDocument(doc);
  t.match(api.ok ? api.warnings : [], [{ path: 'spec.configuration.databaseSize', line: 0, message: /retired/ }]);
  t.match(issues(tenantFile('AZURE', 'westeurope', 'MO_Gen5_8')), [{ path: 'spec.configuration.databaseSize', message: /exceeds the professional tier limit of 4 vCPU/ }]);
  t.same(warnings(tenantFile('AWS', 'us-east-1', 'db.t4g.large')), [], 'a current size has no warning');
  t.match(warnings(tenantFile('AWS', 'us-east-1', 'db.m4.large')), [{ message: /db.m4 is a previous-generation class.*use "db.m6g.large"/ }]);
});

t.test('Cloud SQL custom machine types follow Google’s rules', async (t) => {
  const valid = ['db-custom-1-3840', 'db-custom-1-6656', 'db-custom-2-7680', 'db-custom-8-53248', 'db-custom-96-638976', 'db-custom-64-59136'];
  for (const name of valid) t.equal(lookupDatabaseSize('GCP', name).kind, 'custom', name);
  const invalid: Array<[string, RegExp]> = [
    ['db-custom-3-7680', /vCPU count must be 1 or an even number from 2 to 96 \(got 3\)/],
    ['db-custom-98-100352', /got 98/],
    ['db-custom-2-7700', /multiple of 256 MiB/],
    ['db-custom-1-3584', /at least 3840 MiB/],
    ['db-custom-4-30720', /per vCPU, 3840–26624 MiB for 4 vCPU \(got 30720\)/],
    ['db-custom-64-57344', /per vCPU, 59136–425984 MiB for 64 vCPU/],
  ];
  for (const [name, why] of invalid) {
    const found = issues(tenantFile('GCP', 'us-central1', name, 'enterprise'));
    t.equal(found.length, 1, `${name}: one error`);
    t.match(found[0]?.message, why, name);
  }
  t.match(issues(tenantFile('GCP', 'us-central1', 'db-custom-16-61440', 'enterprise')), [{ message: /exceeds the enterprise tier limit of 8 vCPU/ }]);
  // The schema's pattern encodes the same vCPU rule.
  const pattern = new RegExp(CUSTOM_SIZE_PATTERN);
  for (let n = 0; n <= 130; n++) {
    t.equal(pattern.test(`db-custom-${n}-${n * 4096}`), n === 1 || (n >= 2 && n <= 96 && n % 2 === 0), `pattern for ${n} vCPU`);
  }
});

t.test('tier limits: vCPU and memory, so the database fits the tier namespace quota', async (t) => {
  for (const tier of TIERS) {
    const policy = TIER_POLICIES[tier];
    t.ok(policy.maxDatabaseMemoryMi * (policy.haAllowed ? 2 : 1) <= parseInt(policy.quota.memory, 10) * 1024, `${tier}: the largest database (HA doubled) fits the quota`);
    for (const p of CLOUD_PROVIDERS) t.ok(Object.values(DATABASE_SIZES[p]).some((s) => s.milliCpu <= policy.maxDatabaseMilliCpu && s.memoryMi <= policy.maxDatabaseMemoryMi), `${tier} has a size on ${p}`);
  }
  t.match(issues(tenantFile('AZURE', 'eastus', 'Standard_E2s_v3', 'starter')), [{ message: /\(2 vCPU, 16 GiB\) exceeds the starter tier limit of 4 GiB of memory \(allowed: Standard_B1ms, Standard_B2s\)/ }]);
  t.match(issues(tenantFile('AZURE', 'eastus', 'Standard_D8s_v3')), [{ message: /exceeds the professional tier limit of 8 vCPU|exceeds the professional tier limit of 4 vCPU/ }]);
});

t.test('a bad region or size gets one error per field, with a hint when it is a near miss', async (t) => {
  const both = issues(tenantFile('AZURE', 'East US', 'GP_Standard_D2s_v3'));
  t.same(both.map((i) => `${i.line}:${i.column} ${i.path}`), ['9:11 spec.region', '11:19 spec.configuration.databaseSize'], 'one each, schema copies not repeated');
  t.match(both[0]?.message, /^region "East US" is not offered by AZURE; did you mean "eastus"\?/);
  t.match(both[1]?.message, /^database size "GP_Standard_D2s_v3" is not offered by AZURE \(Azure Database for PostgreSQL flexible server\); did you mean "Standard_D2s_v3"\? \(within the professional tier: Standard_B1ms, /);
  t.match(issues(tenantFile('AZURE', 'us-east-1', 'Standard_B1ms'))[0]?.message, /; that region belongs to AWS/);
  t.match(issues(tenantFile('AWS', 'us-east-1', 't4g.micro'))[0]?.message, /did you mean "db.t4g.micro"\?/);
  t.match(issues(tenantFile('GCP', 'us-central1', 'n1-standard-2'))[0]?.message, /, or db-custom-<vCPU>-<memory MiB>\)$/);
});

/** The line and column (1-based) of the value at a JSON pointer, computed from the YAML alone. */
function positionOf(text: string, pointer: string): string {
  const doc = parseDocument(text);
  const lines = new LineCounter();
  parseDocument(text, { lineCounter: lines });
  const node = doc.getIn(pointer.split('/').slice(1), true) as { range: [number, number, number] };
  const { line, col } = lines.linePos(node.range[0]);
  return `${line}:${col}`;
}

t.test('the schema alone (what an editor uses) flags a bad region or size at the place tenantd validate does', async (t) => {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const validate = ajv.compile(schema);
  for (const p of CLOUD_PROVIDERS) {
    const text = tenantFile(p, 'nowhere-9', 'no-such-size');
    t.equal(validate(parseYaml(text)), false, `${p}: the schema rejects it`);
    // ajv adds an `if` error on the parent that says only "must match then"; editors show the leaves.
    const pointers = [...new Set((validate.errors ?? []).filter((e) => e.keyword !== 'if').map((e) => e.instancePath))].sort();
    t.same(pointers, ['/spec/configuration/databaseSize', '/spec/region'], `${p}: errors on the two fields only`);
    const tenantd = issues(text).map((i) => `${i.line}:${i.column}`);
    t.same(tenantd, pointers.reverse().map((ptr) => positionOf(text, ptr)), `${p}: same line and column`);
    // A current, a custom (GCP) and a retired size all pass the schema: only tenantd warns.
    const ok = [Object.keys(CATALOG.providers[p].sizes).at(-1) as string, ...Object.keys(RETIRED_DATABASE_SIZES[p]).slice(0, 1), ...(p === 'GCP' ? ['db-custom-4-15360'] : [])];
    for (const size of ok) t.ok(validate(parseYaml(tenantFile(p, REGIONS[p][0] as string, size, 'enterprise'))), `${p}: ${size} passes the schema`);
  }
  t.ok(validate(parseYaml(tenantFile('AZURE', 'eastus', 'Standard_D2s_v3'))), 'the seed size passes the schema');
});

t.test('schemas/tenant.schema.json is generated from the catalog data file and up to date', async (t) => {
  const committed = readFileSync(new URL('../schemas/tenant.schema.json', import.meta.url), 'utf8');
  t.equal(committed, renderTenantSchema(JSON.parse(committed) as Record<string, unknown>), 'run `npm run schema` after editing core/tenant/catalog-data.json');
});

t.test('every property in the tenant schema has a description (an editor shows it on hover)', async (t) => {
  const missing: string[] = [];
  const walk = (node: unknown, where: string): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}[${i}]`));
    if (node === null || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    const props = o['properties'];
    // `if` subschemas only select a branch; their properties are conditions, not fields.
    if (props && typeof props === 'object' && !where.endsWith('.if')) {
      for (const [name, p] of Object.entries(props as Record<string, Record<string, unknown>>)) {
        if (typeof p['description'] !== 'string') missing.push(`${where}.properties.${name}`);
      }
    }
    for (const [k, v] of Object.entries(o)) walk(v, `${where}.${k}`);
  };
  walk(schema, '#');
  t.same(missing, []);
});

t.test('the example tenants name the schema for yaml-language-server, and the parse fast path reads them', async (t) => {
  const dir = new URL('../tenants-example/tenants/', import.meta.url);
  for (const name of ['acme-corp.yaml', 'globex.yaml', 'initech.yaml']) {
    const text = readFileSync(new URL(name, dir), 'utf8');
    t.equal(text.split('\n')[0], '# yaml-language-server: $schema=../schemas/tenant.schema.json', `${name}: modeline first`);
    t.same(quickParse(text), parseYaml(text), `${name}: the fast path reads the file as the full parser does`);
    const result = parseTenantFile(`tenants/${name}`, text);
    t.same(result.ok ? result.warnings : result.issues, [], `${name}: valid, no warnings`);
  }
  const viaLink = JSON.parse(readFileSync(new URL('../tenants-example/schemas/tenant.schema.json', import.meta.url), 'utf8')) as unknown;
  t.same(viaLink, schema, 'the relative path resolves in the example repository');
});
