import t, { type Test } from 'tap';
import type { TenantParseResult, ValidationIssue } from '../core/tenant/types.js';
import { MAX_DOCUMENT_DEPTH, MAX_DOCUMENT_NODES } from '../core/tenant/plain-tree.js';
import { parseTenantFile, validateTenantDocument } from '../core/tenant/validate.js';
import { prng } from './helpers/prng.js';

const lines = (...l: string[]): string => `${l.join('\n')}\n`;
const issuesOf = (r: TenantParseResult): ValidationIssue[] => (r.ok ? [] : r.issues);

const HEAD = ['apiVersion: tenantd.io/v1alpha1', 'kind: TenantInfrastructure', 'metadata:', '  tenantId: acme', '  name: Acme'];
const SPEC = ['spec:', '  tier: starter', '  cloudProvider: AWS', '  region: us-east-1', '  configuration:', '    databaseSize: db.t3.micro', '    storageGb: 20', '    enableHa: false'];

/** Nine levels of nine aliases each: 9^9 strings if expanded. */
function laughs(indent: string): string[] {
  const out = [`${indent}l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]`];
  for (let i = 1; i <= 9; i++) out.push(`${indent}l${i}: &l${i} [${Array.from({ length: 9 }, () => `*l${i - 1}`).join(',')}]`);
  return out;
}

/** Parses under a time budget: a bound that fails loudly if some input makes the parser crawl. */
function parseBounded(t: Test, file: string, text: string): TenantParseResult {
  const started = Date.now();
  const result = parseTenantFile(file, text);
  t.ok(Date.now() - started < 5000, `parsed in ${Date.now() - started} ms`);
  return result;
}

t.test('alias bombs are INVALID with a reason, quickly, wherever they are', async (t) => {
  const cases: Record<string, string> = {
    'in spec': lines(...HEAD, ...SPEC, '  extra:', ...laughs('    ')),
    'in labels': lines(...HEAD.slice(0, 5), '  labels:', ...laughs('    '), ...SPEC),
    'in a service': lines(...HEAD, ...SPEC, '  services:', '    - name: web', '      image: nginx', '      port: 80', '      resources:', ...laughs('        ')),
    'through merge keys': lines(
      ...HEAD,
      ...SPEC,
      '  services:',
      '    - &s0 {name: web, image: nginx, port: 80}',
      ...Array.from({ length: 8 }, (_, i) => `    - &s${i + 1} {<<: [${Array.from({ length: 9 }, () => `*s${i}`).join(', ')}], name: w${i}, image: nginx, port: 80}`),
    ),
  };
  for (const [name, text] of Object.entries(cases)) {
    const result = parseBounded(t, 'tenants/acme.yaml', text);
    t.notOk(result.ok, `${name}: INVALID`);
    t.match(issuesOf(result).map((i) => i.message).join('\n'), /alias|more than \d+ values|merge keys|unknown field/, `${name}: the reason is named`);
  }
});

t.test('5,000 aliases of one service: INVALID naming the aliases', async (t) => {
  const text = lines(...HEAD, ...SPEC, '  services:', '    - &svc {name: web, image: nginx, port: 80}', ...Array.from({ length: 5000 }, () => '    - *svc'));
  const result = parseBounded(t, 'tenants/acme.yaml', text);
  t.notOk(result.ok);
  t.match(issuesOf(result), [{ file: 'tenants/acme.yaml', message: /too many YAML aliases/ }]);
  t.ok((issuesOf(result)[0]?.line ?? 0) > 0, 'the first alias is pointed at');
});

t.test('aliases that stay under the alias count but expand past the value bound are refused', async (t) => {
  const big = `[${Array.from({ length: 2000 }, (_, i) => `v${i}`).join(', ')}]`;
  const text = lines(...HEAD, ...SPEC, `  big: &big ${big}`, `  copies: [${Array.from({ length: 90 }, () => '*big').join(', ')}]`);
  const result = parseBounded(t, 'tenants/acme.yaml', text);
  t.match(issuesOf(result), [{ message: new RegExp(`more than ${MAX_DOCUMENT_NODES} values`) }]);
});

t.test('a few aliases in a valid file are fine, and the document is a plain tree', async (t) => {
  const text = lines(
    ...HEAD,
    '  labels: &labels {team: a}',
    ...SPEC,
    '  services:',
    '    - name: web',
    '      image: &img nginx:1.27',
    '      port: 8080',
    '      resources: &res {cpu: "1", memory: 1Gi}',
    '    - name: api',
    '      image: *img',
    '      port: 8081',
    '      resources: *res',
  );
  const result = parseTenantFile('tenants/acme.yaml', text);
  t.same(issuesOf(result), []);
  if (!result.ok) return;
  const [a, b] = result.tenant.spec.services ?? [];
  t.same(a?.resources, b?.resources);
  t.not(a?.resources, b?.resources, 'aliases are copied, never shared');
});

t.test('deeply nested files: INVALID, no stack overflow', async (t) => {
  const depth = 10_000;
  const flow = lines(...HEAD, ...SPEC, `  deep: ${'['.repeat(depth)}${']'.repeat(depth)}`);
  const block = lines(...HEAD, ...SPEC, ...Array.from({ length: 2000 }, (_, i) => `${'  '.repeat(i + 1)}k${i}:`));
  const shallowDeep = lines(...HEAD, ...SPEC, `  deep: ${'['.repeat(MAX_DOCUMENT_DEPTH + 5)}${']'.repeat(MAX_DOCUMENT_DEPTH + 5)}`);
  for (const [name, text] of Object.entries({ flow, block, shallowDeep })) {
    const result = parseBounded(t, 'tenants/acme.yaml', text);
    t.notOk(result.ok, `${name}: INVALID`);
    t.ok(issuesOf(result).length > 0 && issuesOf(result).every((i) => i.message.length > 0), `${name}: ${issuesOf(result)[0]?.message.slice(0, 80)}`);
  }
  const deepApi = JSON.parse(`{"tier": ${'['.repeat(5000)}${']'.repeat(5000)}}`) as unknown;
  t.match(issuesOf(validateTenantDocument({ apiVersion: 'x', spec: deepApi })), [{ message: /nested more than/ }]);
});

t.test('NUL, bytes that were not UTF-8 and unpaired surrogates are refused in every text field', async (t) => {
  const withName = (name: string): string => lines(...HEAD.slice(0, 4), `  name: ${name}`, ...SPEC);
  t.match(issuesOf(parseTenantFile('tenants/acme.yaml', withName('"Ac\\0me"'))), [{ line: 5, path: 'metadata.name', message: /NUL/ }]);
  t.match(issuesOf(parseTenantFile('tenants/acme.yaml', withName('Ac\uFFFDme'))), [{ line: 5, path: 'metadata.name', message: /not valid UTF-8/ }]);
  t.match(issuesOf(parseTenantFile('tenants/acme.yaml', withName('"Ac\\uD800me"'))), [{ path: 'metadata.name', message: /surrogate/ }]);
  // A file read from bytes that are not UTF-8 (Latin-1 "é"): decoded leniently, refused here.
  const latin1 = Buffer.concat([Buffer.from(withName('Caf')), Buffer.from([0xe9])]).toString('utf8');
  t.notOk(parseTenantFile('tenants/acme.yaml', latin1).ok);
  const keyed = lines(...HEAD, '  labels:', '    "te\\0am": a', ...SPEC);
  t.match(issuesOf(parseTenantFile('tenants/acme.yaml', keyed)), [{ path: /labels/, message: /field name contains a NUL/ }]);
  // Emoji (a valid surrogate pair) are fine.
  t.ok(parseTenantFile('tenants/acme.yaml', withName('"Acme 🚀"')).ok);
});

t.test('__proto__ is refused at any depth, in files and in API bodies', async (t) => {
  const file = lines(...HEAD, ...SPEC, '    __proto__: {enableHa: true}');
  t.match(issuesOf(parseTenantFile('tenants/acme.yaml', file)), [{ path: 'spec.configuration.__proto__', line: 14, column: 5, message: /__proto__/ }]);
  const body = JSON.parse(
    '{"apiVersion":"tenantd.io/v1alpha1","kind":"TenantInfrastructure","metadata":{"tenantId":"acme","name":"Acme"},"spec":{"tier":"starter","cloudProvider":"AWS","region":"us-east-1","configuration":{"databaseSize":"db.t3.micro","storageGb":20,"enableHa":false,"__proto__":{"polluted":true}}}}',
  ) as unknown;
  const result = validateTenantDocument(body);
  t.match(issuesOf(result), [{ path: 'spec.configuration.__proto__', message: /not allowed/ }]);
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'no prototype was touched');
});

// --- Fuzz: parseTenantFile is total. --------------------------------------------------------------

const TOKENS = ['&a ', '*a', '&b ', '*b', '<<: ', '[', ']', '{', '}', ', ', ': ', '- ', '? ', '!!str ', '!!binary ', '!foo ', '|', '>', '"', "'", '\\', '\\0', '\\x', '\\u', '#', '%YAML 1.2\n', '---\n', '...\n', '\n', '\n  ', '\t', '\r', '\0', '\uFFFD', '\uD800', '__proto__', 'constructor', 'spec', 'metadata', '1e999', '-.inf', '0x', '~', 'null'];

function garbage(rand: () => number): string {
  const parts: string[] = [];
  const n = 1 + Math.floor(rand() * 60);
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.6) parts.push(TOKENS[Math.floor(rand() * TOKENS.length)] as string);
    else if (r < 0.8) parts.push(String.fromCharCode(Math.floor(rand() * 0x3000)));
    else parts.push(HEAD[Math.floor(rand() * HEAD.length)] as string, '\n');
  }
  return parts.join('');
}

t.test('parseTenantFile never throws, on random garbage or on mangled valid files', async (t) => {
  const rand = prng(15_2024);
  const valid = lines(...HEAD, ...SPEC, '  services:', '    - &w {name: web, image: nginx, port: 80}');
  const runs = 4000;
  const thrown: string[] = [];
  let invalid = 0;
  const started = Date.now();
  for (let i = 0; i < runs; i++) {
    let text: string;
    if (i % 2 === 0) text = garbage(rand);
    else {
      const at = Math.floor(rand() * valid.length);
      text = valid.slice(0, at) + garbage(rand) + valid.slice(at + Math.floor(rand() * 20));
    }
    try {
      const r = parseTenantFile('tenants/acme.yaml', text);
      if (!r.ok) {
        invalid++;
        if (r.issues.length === 0 || r.issues.some((x) => x.file !== 'tenants/acme.yaml' || typeof x.message !== 'string')) thrown.push(`bad result for ${JSON.stringify(text)}`);
      }
    } catch (err: unknown) {
      thrown.push(`${JSON.stringify(text)}: ${String(err)}`);
    }
  }
  t.same(thrown.slice(0, 5), [], 'no input throws or yields an issue-less failure');
  t.ok(invalid > runs / 2, `${invalid} of ${runs} inputs were INVALID (${Date.now() - started} ms)`);
  for (const odd of [undefined, null, 42, {}] as unknown[]) {
    t.notOk(parseTenantFile('tenants/acme.yaml', odd as string).ok, `${String(odd)} is not text`);
  }
});
