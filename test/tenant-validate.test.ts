import { readdirSync, readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import { parseDocument } from 'yaml';
import { formatIssue, type TenantInfrastructureDocument, type TenantParseResult, type ValidationIssue } from '../core/tenant/types.js';
import { parseTenantFile, quickParse, serializeTenant, tenantIdFromPath, validateTenantDocument } from '../core/tenant/validate.js';
import { prng } from './helpers/prng.js';

const examplesDir = new URL('../tenants-example/tenants/', import.meta.url);
const examples = readdirSync(examplesDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((name) => ({ file: `tenants/${name}`, text: readFileSync(new URL(name, examplesDir), 'utf8') }));

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

/** A valid starter tenant; tests edit a line or two. */
const BASE = [
  'apiVersion: tenantd.io/v1alpha1', // 1
  'kind: TenantInfrastructure', // 2
  'metadata:', // 3
  '  tenantId: acme', // 4
  '  name: Acme', // 5
  'spec:', // 6
  '  tier: starter', // 7
  '  cloudProvider: AWS', // 8
  '  region: us-east-1', // 9
  '  configuration:', // 10
  '    databaseSize: db.t3.micro', // 11
  '    storageGb: 20', // 12
  '    enableHa: false', // 13
  '  services:', // 14
  '    - name: web', // 15
  '      image: nginx:1.27', // 16
  '      port: 8080', // 17
];

function issuesOf(result: TenantParseResult): ValidationIssue[] {
  return result.ok ? [] : result.issues;
}

/** Issues reduced to `line:col path` for exact position assertions. */
const where = (result: TenantParseResult): string[] => issuesOf(result).map((i) => `${i.line}:${i.column} ${i.path}`);

const validDoc = (): TenantInfrastructureDocument => ({
  apiVersion: 'tenantd.io/v1alpha1',
  kind: 'TenantInfrastructure',
  metadata: { tenantId: 'acme', name: 'Acme' },
  spec: {
    tier: 'starter',
    cloudProvider: 'AWS',
    region: 'us-east-1',
    configuration: { databaseSize: 'db.t3.micro', storageGb: 20, enableHa: false },
    services: [{ name: 'web', image: 'nginx:1.27', port: 8080 }],
  },
});

t.test('the base fixture is valid', async (t) => {
  const result = parseTenantFile('tenants/acme.yaml', lines(...BASE));
  t.same(issuesOf(result), []);
  t.ok(result.ok);
});

t.test('every example tenant validates, and the examples cover the intended variety', async (t) => {
  t.ok(examples.length >= 3);
  const tenants: TenantInfrastructureDocument[] = [];
  for (const { file, text } of examples) {
    const result = parseTenantFile(file, text);
    t.same(issuesOf(result).map(formatIssue), [], file);
    if (result.ok) {
      tenants.push(result.tenant);
      t.equal(result.tenant.metadata.tenantId, tenantIdFromPath(file), `${file} is named after its tenant`);
    }
  }
  t.ok(new Set(tenants.map((x) => x.spec.tier)).size >= 3, 'different tiers');
  t.ok(new Set(tenants.map((x) => x.spec.cloudProvider)).size >= 3, 'different providers');
  t.ok(
    tenants.some((x) => (x.spec.services?.length ?? 0) >= 2 && x.spec.ingress?.tls?.enabled === true),
    'one with two services and a TLS ingress',
  );
  t.ok(tenants.some((x) => x.spec.deletionProtection === true), 'one with deletion protection');
  t.ok(examples.every((e) => e.text.startsWith('#')), 'each file opens with explaining comments');
});

t.test('YAML syntax errors carry line and column', async (t) => {
  const result = parseTenantFile('tenants/acme.yaml', lines('apiVersion: tenantd.io/v1alpha1', 'metadata:', '  tenantId: [acme', '  name: x'));
  t.equal(result.ok, false);
  const issues = issuesOf(result);
  t.ok(issues.length >= 1);
  t.match(issues[0], { file: 'tenants/acme.yaml', line: 4, column: 3, path: '', message: /invalid YAML/ });

  const unterminated = issuesOf(parseTenantFile('tenants/acme.yaml', 'a: "unterminated\n'));
  t.match(unterminated, [{ line: 2, column: 1, message: /invalid YAML/ }]);
});

t.test('several schema violations are all reported, sorted, with exact positions', async (t) => {
  const text = lines(
    'apiVersion: tenantd.io/v1alpha1',
    'kind: TenantInfrastructure',
    'metadata:',
    '  tenantId: acme',
    '  name: Acme',
    'spec:',
    '  tier: gold', // 7
    '  cloudProvider: AWS',
    '  region: us-east-1',
    '  configuration:',
    '    databaseSize: db.t3.micro',
    '    storageGb: 20000', // 12
    '    enableHa: false',
    '  services:',
    '    - name: web',
    '      image: nginx:1.27',
    '      port: 0', // 17
    '  colour: blue', // 18
  );
  const result = parseTenantFile('tenants/acme.yaml', text);
  t.same(where(result), ['7:9 spec.tier', '12:16 spec.configuration.storageGb', '17:13 spec.services[0].port', '18:3 spec.colour']);
  const issues = issuesOf(result);
  t.equal(issues[0]?.message.startsWith('must be one of: starter, professional, enterprise'), true);
  t.equal(issues[1]?.message.startsWith('must be <= 16384'), true);
  t.equal(formatIssue(issues[1] as ValidationIssue).startsWith('tenants/acme.yaml:12:16: spec.configuration.storageGb: must be <= 16384'), true);
  t.equal(issues[2]?.message.startsWith('must be >= 1'), true);
  t.match(issues[3]?.message, /^unknown field "colour"/);
});

t.test('an unknown field points at its key, in nested objects too', async (t) => {
  const text = lines(...BASE.slice(0, 16), '      imagePullPolicy: Always', BASE[16] as string);
  const result = parseTenantFile('tenants/acme.yaml', text);
  t.same(where(result), ['17:7 spec.services[0].imagePullPolicy']);
  t.match(issuesOf(result)[0]?.message, /^unknown field "imagePullPolicy" \(allowed: name, image, replicas, port, resources, env\)/);
});

t.test('a missing required field is reported at its parent', async (t) => {
  const text = lines(...BASE.slice(0, 4), ...BASE.slice(5)); // drop metadata.name
  const result = parseTenantFile('tenants/acme.yaml', text);
  t.same(where(result), ['4:3 metadata.name']);
  t.match(issuesOf(result)[0]?.message, /required/);
});

t.test('tenantId must equal the file name', async (t) => {
  const result = parseTenantFile('tenants/globex.yaml', lines(...BASE));
  t.same(where(result), ['4:13 metadata.tenantId']);
  t.match(issuesOf(result)[0]?.message, /"globex".*"acme"/);
  t.ok(parseTenantFile('tenants/acme.yml', lines(...BASE)).ok, '.yml works too');
  t.ok(parseTenantFile('some/other/dir/acme.yaml', lines(...BASE)).ok, 'the basename is what counts');
  t.ok(parseTenantFile('<stdin>', lines(...BASE)).ok, 'no file-name check without a YAML file name');
});

t.test('region and database size must be in the provider catalog', async (t) => {
  const text = lines(...BASE).replace('region: us-east-1', 'region: mars-1').replace('db.t3.micro', 'GP_Gen5_2');
  const result = parseTenantFile('tenants/acme.yaml', text);
  t.same(where(result), ['9:11 spec.region', '11:19 spec.configuration.databaseSize']);
  t.match(issuesOf(result)[0]?.message, /^region "mars-1" is not offered by AWS \(one of: af-south-1, .*us-east-1, /);
  t.match(issuesOf(result)[1]?.message, /^database size "GP_Gen5_2" is not offered by AWS/);
});

t.test('tier limits are enforced', async (t) => {
  const text = lines(
    ...BASE.slice(0, 10),
    '    databaseSize: db.m5.large', // 11: 8 GiB > starter's 4 GiB
    '    storageGb: 500', // 12: > 100
    '    enableHa: true', // 13: starter has no HA
    '  services:', // 14: 3 > 2 services
    '    - name: web',
    '      image: nginx:1.27',
    '      port: 8080',
    '      replicas: 3', // 18: > 2
    '    - name: api',
    '      image: api:1',
    '      port: 9000',
    '    - name: worker',
    '      image: worker:1',
    '      port: 9100',
  );
  const result = parseTenantFile('tenants/acme.yaml', text);
  t.same(where(result), [
    '11:19 spec.configuration.databaseSize',
    '12:16 spec.configuration.storageGb',
    '13:15 spec.configuration.enableHa',
    '15:5 spec.services',
    '18:17 spec.services[0].replicas',
  ]);
  const messages = issuesOf(result).map((i) => i.message);
  t.match(messages[0], /^database size "db.m5.large" \(2 vCPU, 8 GiB\) exceeds the starter tier limit of 4 GiB of memory \(allowed: db.t4g.micro, /);
  t.match(messages[1], /^must be <= 100 for the starter tier/);
  t.match(messages[2], /high availability/);
  t.match(messages[3], /at most 2 services/);
  t.match(messages[4], /^must be <= 2 for the starter tier/);

  const enterprise = text.replace('tier: starter', 'tier: enterprise');
  t.same(issuesOf(parseTenantFile('tenants/acme.yaml', enterprise)), [], 'the same spec fits the enterprise tier');
});

t.test('the tenantId must be a DNS-1123 label of at most 56 characters', async (t) => {
  const withId = (id: string): string => lines(...BASE).replace('tenantId: acme', `tenantId: ${id}`);
  const bad = parseTenantFile('tenants/Acme_Corp.yaml', withId('Acme_Corp'));
  t.same(where(bad), ['4:13 metadata.tenantId']);
  t.match(issuesOf(bad)[0]?.message, /DNS-1123 label/);
  t.same(where(parseTenantFile('tenants/-acme.yaml', withId('"-acme"'))), ['4:13 metadata.tenantId']);

  const max = 'a'.repeat(56);
  t.ok(parseTenantFile(`tenants/${max}.yaml`, withId(max)).ok, '56 characters fit');
  const tooLong = 'a'.repeat(57);
  const long = parseTenantFile(`tenants/${tooLong}.yaml`, withId(tooLong));
  t.same(where(long), ['4:13 metadata.tenantId']);
  t.match(issuesOf(long)[0]?.message, /at most 56 characters/);
  const uuid = '3f2b9c4e-8d1a-4b6f-9e2c-7a5d1f0b8c3e';
  t.ok(parseTenantFile(`tenants/${uuid}.yaml`, withId(uuid)).ok, 'a UUID is a valid tenantId');
});

t.test('duplicate keys are errors', async (t) => {
  const text = lines(...BASE.slice(0, 5), '  tenantId: other', ...BASE.slice(5));
  const result = parseTenantFile('tenants/acme.yaml', text);
  t.same(where(result), ['6:3 metadata.tenantId']);
  t.match(issuesOf(result)[0]?.message, /duplicate key "tenantId"/);
});

t.test('service names must be unique', async (t) => {
  const text = lines(...BASE, '    - name: web', '      image: other:1', '      port: 9000');
  const result = parseTenantFile('tenants/acme.yaml', text);
  t.same(where(result), ['18:13 spec.services[1].name']);
  t.match(issuesOf(result)[0]?.message, /duplicate service name "web"/);
});

t.test('environment variable names must be unique per service', async (t) => {
  const text = lines(...BASE, '      env:', '        - name: A', '          value: "1"', '        - name: A', '          value: "2"');
  t.same(where(parseTenantFile('tenants/acme.yaml', text)), ['21:17 spec.services[0].env[1].name']);
});

t.test('the ingress must route to an existing service', async (t) => {
  const ingress = (service: string): string => lines(...BASE, '  ingress:', '    hosts: [acme.example.com]', `    service: ${service}`);
  t.ok(parseTenantFile('tenants/acme.yaml', ingress('web')).ok);
  const result = parseTenantFile('tenants/acme.yaml', ingress('api'));
  t.same(where(result), ['20:14 spec.ingress.service']);
  t.match(issuesOf(result)[0]?.message, /no service named "api"/);

  const noServices = lines(...BASE.slice(0, 13), '  ingress:', '    hosts:', '      - acme.example.com');
  t.same(where(parseTenantFile('tenants/acme.yaml', noServices)), ['15:5 spec.ingress']);
});

t.test('a file must hold exactly one non-empty document', async (t) => {
  const multi = parseTenantFile('tenants/acme.yaml', `${lines(...BASE)}---\n${lines(...BASE)}`);
  t.same(where(multi), ['18:1 ']);
  t.match(issuesOf(multi)[0]?.message, /exactly one YAML document/);
  t.ok(parseTenantFile('tenants/acme.yaml', `---\n${lines(...BASE)}`).ok, 'a leading document marker is fine');
  t.match(issuesOf(parseTenantFile('tenants/acme.yaml', '')), [{ line: 0, column: 0, message: /empty/ }]);
  t.match(issuesOf(parseTenantFile('tenants/acme.yaml', '# only a comment\n')), [{ message: /empty/ }]);
  t.match(issuesOf(parseTenantFile('tenants/acme.yaml', '- a\n- b\n')), [{ line: 1, column: 1, path: '', message: /mapping/ }]);
});

t.test('type errors name the expected type and suggest quoting', async (t) => {
  const text = lines(...BASE, '      resources:', '        cpu: 2', '        memory: lots');
  const result = parseTenantFile('tenants/acme.yaml', text);
  t.same(where(result), ['19:14 spec.services[0].resources.cpu', '20:17 spec.services[0].resources.memory']);
  t.match(issuesOf(result)[0]?.message, /must be a string \(got number 2\); put the value in quotes/);
  t.match(issuesOf(result)[1]?.message, /memory quantity/);
});

t.test('label keys and values follow Kubernetes rules', async (t) => {
  const text = lines(...BASE.slice(0, 5), '  labels:', '    "bad key": x', '    app.kubernetes.io/name: "has space"', ...BASE.slice(5));
  const result = parseTenantFile('tenants/acme.yaml', text);
  t.same(where(result), ['7:5 metadata.labels["bad key"]', '8:29 metadata.labels["app.kubernetes.io/name"]']);
});

t.test('flow style, anchors and escapes read the same on the fast and the full path', async (t) => {
  const flow = lines(
    'apiVersion: tenantd.io/v1alpha1',
    'kind: TenantInfrastructure',
    'metadata: {tenantId: acme, name: "Acme \\"the\\" Corp"}',
    'spec:',
    '  tier: starter',
    '  cloudProvider: AWS',
    '  region: us-east-1',
    '  configuration: &cfg {databaseSize: db.t3.micro, storageGb: 0x14, enableHa: false}',
    '  services:',
    '  - name: web',
    '    image: nginx:1.27',
    '    port: 8080',
  );
  t.same(quickParse(flow), parseDocument(flow).toJS(), 'js-yaml and yaml agree on flow style, anchors, hex and escapes');
  const result = parseTenantFile('tenants/acme.yaml', flow);
  t.same(issuesOf(result), []);
  t.equal(result.ok && result.tenant.metadata.name, 'Acme "the" Corp');
  t.equal(result.ok && result.tenant.spec.configuration.storageGb, 20);
});

t.test('validateTenantDocument checks API bodies without positions', async (t) => {
  t.ok(validateTenantDocument(validDoc()).ok);
  const body = validDoc() as unknown as Record<string, Record<string, unknown>>;
  (body['spec'] as Record<string, unknown>)['tier'] = 'gold';
  (body['metadata'] as Record<string, unknown>)['extra'] = 1;
  const result = validateTenantDocument(body);
  t.same(
    issuesOf(result).map((i) => [i.file, i.line, i.column, i.path]),
    [
      ['', 0, 0, 'metadata.extra'],
      ['', 0, 0, 'spec.tier'],
    ],
  );
  t.same(where(validateTenantDocument('not an object')), ['0:0 ']);
  t.same(where(validateTenantDocument(null)), ['0:0 ']);

  t.ok(validateTenantDocument(validDoc(), 'tenants/acme.yaml').ok);
  const mismatch = validateTenantDocument(validDoc(), 'tenants/globex.yaml');
  t.match(issuesOf(mismatch), [{ file: 'tenants/globex.yaml', line: 0, column: 0, path: 'metadata.tenantId' }]);
});

t.test('tenantIdFromPath', async (t) => {
  t.equal(tenantIdFromPath('tenants/acme.yaml'), 'acme');
  t.equal(tenantIdFromPath('tenants/acme.yml'), 'acme');
  t.equal(tenantIdFromPath('./tenants/acme.yaml'), 'acme');
  t.equal(tenantIdFromPath('tenants/nested/acme.yaml'), null);
  t.equal(tenantIdFromPath('status/acme.yaml'), null);
  t.equal(tenantIdFromPath('other/tenants/acme.yaml'), null);
  t.equal(tenantIdFromPath('tenants/acme.json'), null);
  t.equal(tenantIdFromPath('tenants/.yaml'), null);
  t.equal(tenantIdFromPath('tenants/README.md'), null);
});

t.test('serializeTenant is deterministic and round-trips', async (t) => {
  for (const { file, text } of examples) {
    const parsed = parseTenantFile(file, text);
    if (!parsed.ok) {
      t.fail(file);
      continue;
    }
    const yaml = serializeTenant(parsed.tenant);
    const again = parseTenantFile(file, yaml);
    t.same(again.ok && again.tenant, parsed.tenant, `${file} round-trips`);
    t.equal(again.ok && serializeTenant(again.tenant), yaml, `${file} serializes to the same text twice`);
    t.same(Object.keys(parseDocument(yaml).toJS() as object), ['apiVersion', 'kind', 'metadata', 'spec']);
    t.not(quickParse(yaml), undefined, 'files written by the API take the fast path');
  }

  const a = validDoc();
  const b: TenantInfrastructureDocument = {
    spec: { ...a.spec, configuration: { enableHa: false, storageGb: 20, databaseSize: 'db.t3.micro' } },
    metadata: { name: 'Acme', tenantId: 'acme' },
    kind: a.kind,
    apiVersion: a.apiVersion,
  };
  const text = serializeTenant(a);
  t.equal(serializeTenant(b), text, 'key order of the input does not matter');
  t.ok(text.startsWith('apiVersion: tenantd.io/v1alpha1\nkind: TenantInfrastructure\nmetadata:\n  name: Acme\n  tenantId: acme\nspec:\n'));

  // Strings that look like other types stay strings, also for YAML 1.1 readers.
  const tricky = validDoc();
  tricky.metadata.labels = { flag: 'yes', version: '1.10', zip: '0777' };
  tricky.spec.services = [{ name: 'web', image: 'nginx', port: 80, env: [{ name: 'X', value: 'true' }, { name: 'Y', value: 'a: b # c' }] }];
  const trickyText = serializeTenant(tricky);
  t.match(trickyText, /flag: "yes"/);
  const round = parseTenantFile('tenants/acme.yaml', trickyText);
  t.same(round.ok && round.tenant, tricky);
});

// --- The fast path must agree with the yaml library whenever it answers. -------------------

const TRICKY_SCALARS = [
  'yes', 'no', 'on', 'null', 'Null', '~', 'true', 'TRUE', 'False', '0x1F', '0o17', '0777', '1e3', '.5', '1.', '-1', '+1',
  '1_000', '2024-01-01', '.inf', '-.Inf', '.NaN', '"a: b"', "'it''s'", '"x\\ny"', '""', "''", 'a #b', 'a#b', 'a: b', 'a:',
  '[1, 2]', '{a: 1}', '&x 1', '*x', '!!str 1', '|', '>', '@x', '`x', '%x', '- x', '? x', 'é ü', '12345678901234567890',
  '"unterminated', "'q' x", '"q" # c', 'http://x:80/y', '1.0', '00', '0', '007', 'a  b',
];
const TRICKY_CHARS = [' ', ' ', '\n', '-', ':', '#', '"', "'", 'a', '1', '.', '{', '[', '&', '*', '!', '|', '>', '\t', '~', '\r', '?', ','];

function mutate(text: string, rand: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
  const at = Math.floor(rand() * text.length);
  const rows = text.split('\n');
  const row = Math.floor(rand() * rows.length);
  switch (Math.floor(rand() * 6)) {
    case 0:
      return text.slice(0, at) + text.slice(at + 1);
    case 1:
      return text.slice(0, at) + pick(TRICKY_CHARS) + text.slice(at);
    case 2:
      rows.splice(row, 0, rows[row] ?? '');
      return rows.join('\n');
    case 3:
      rows[row] = rand() < 0.5 ? ` ${rows[row] ?? ''}` : (rows[row] ?? '').replace(/^ /, '');
      return rows.join('\n');
    case 4:
      rows[row] = (rows[row] ?? '').replace(/: .*$/, `: ${pick(TRICKY_SCALARS)}`);
      return rows.join('\n');
    default:
      rows[row] = (rows[row] ?? '').replace(/- .*$/, `- ${pick(TRICKY_SCALARS)}`);
      return rows.join('\n');
  }
}

t.test('whenever the fast path accepts a file, the yaml library reads the same values', async (t) => {
  const rand = prng(20240607);
  const sources = [...examples.map((e) => e.text), lines(...BASE)];
  const disagreements: string[] = [];
  let accepted = 0;
  let lenient = 0;
  const runs = 6000;
  for (let i = 0; i < runs; i++) {
    let text = sources[i % sources.length] as string;
    const mutations = 1 + Math.floor(rand() * 3);
    for (let m = 0; m < mutations; m++) text = mutate(text, rand);
    const quick = quickParse(text);
    // Only a fast-path result that validates is ever used; anything else is re-parsed by `yaml`.
    if (quick === undefined || !validateTenantDocument(quick).ok) continue;
    accepted++;
    const doc = parseDocument(text, { prettyErrors: false });
    if (doc.errors.length > 0) {
      // js-yaml is more forgiving about some indentation than `yaml`: the file is accepted with
      // the structure js-yaml read. Counted, not a value disagreement.
      lenient++;
      continue;
    }
    if (!isDeepStrictEqual(quick, doc.toJS())) disagreements.push(JSON.stringify(text));
  }
  t.same(disagreements.slice(0, 5), [], 'no file is read as different values by the two parsers');
  t.ok(accepted > runs / 10, `the fast path accepted ${accepted} of ${runs} mutated files (${lenient} that yaml refuses)`);
  for (const { text } of examples) t.not(quickParse(text), undefined, 'examples take the fast path');
});

t.test('parse cost per valid example file (informational, no assertion on time)', async (t) => {
  const rounds = 2000;
  for (const { file, text } of examples) {
    parseTenantFile(file, text);
    const start = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) parseTenantFile(file, text);
    const micros = Number(process.hrtime.bigint() - start) / 1000 / rounds;
    t.comment(`${file}: ${micros.toFixed(1)} µs per parseTenantFile (${text.length} bytes)`);
  }
  t.pass();
});

t.test('the fast path reads scalars as the YAML 1.2 core schema does (the yaml library), not YAML 1.1', async (t) => {
  const scalars = ['1_000', '0b101', '+0x1F', '0x1F', '0o17', '017', '+12', '-0', '1.5e3', '.5', '1.', '1_0.5', '.inf', '-.Inf', '+.INF', '.NaN', '~', 'null', 'Null', 'NULL', '', 'TRUE', 'false', 'yes', 'on', 'No', '2001-12-14', '1:20', '0.1', '1e', 'x1', '12abc'];
  for (const s of scalars) {
    const text = `v: ${s}\n`;
    const fast = quickParse(text);
    const full = parseDocument(text, { prettyErrors: false }).toJS() as Record<string, unknown>;
    t.same(fast, full, `v: ${JSON.stringify(s)} → ${JSON.stringify(full['v'])}`);
    t.equal(Object.is(fast?.['v'], full['v']) || (Number.isNaN(fast?.['v']) && Number.isNaN(full['v'])), true, `${JSON.stringify(s)}: same type and value`);
  }
});
