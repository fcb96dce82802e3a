import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SwaggerParser from '@apidevtools/swagger-parser';
import { lintFromString, loadConfig } from '@redocly/openapi-core';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import t from 'tap';
import tenantSchema from '../schemas/tenant.schema.json' with { type: 'json' };
import { bodyFromDocument } from '../api/tenant-body.js';
import { mergePatchSchema, provisionBodySchema, schemaComponents, type JsonSchema } from '../api/schema-components.js';
import { apiHarness, type ApiHarness } from './helpers/api.js';
import { tenantDoc } from './helpers/tenants.js';

const addFormats = formats.default;
const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const T = '/api/v1/infrastructure/tenants';

type Doc = { openapi: string; components: { schemas: Record<string, JsonSchema> }; paths: Record<string, Record<string, Operation>> };
type Operation = { operationId?: string; tags?: string[]; security?: unknown[]; responses: Record<string, { content?: Record<string, { schema?: JsonSchema }>; headers?: Record<string, unknown> }> };

/** Compiles schemas by JSON pointer into an OpenAPI document, so `#/components/…` refs resolve as a client generator would. */
function schemasOf(doc: object): (pointer: string) => ValidateFunction {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
  addFormats(ajv);
  // The document's own fields are not schema keywords; everything under components must be.
  ajv.addVocabulary(['openapi', 'info', 'jsonSchemaDialect', 'servers', 'security', 'tags', 'paths', 'components']);
  ajv.addSchema({ ...doc, $id: 'urn:tenantd:openapi' });
  return (pointer) => {
    const v = ajv.getSchema(`urn:tenantd:openapi#${pointer}`);
    if (!v) throw new Error(`no schema at ${pointer}`);
    return v;
  };
}

const served = async (h: ApiHarness): Promise<Doc> => (await h.call('GET', '/openapi.json', { token: null })).body as unknown as Doc;
const operations = (doc: Doc): Array<[string, string, Operation]> => Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).map(([m, op]): [string, string, Operation] => [m, p, op]));
const escapePointer = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

t.test('the served /openapi.json passes swagger-parser and redocly lint with no problem at all', async (t) => {
  const h = await apiHarness(t, { start: false });
  const res = await h.call('GET', '/openapi.json', { token: null });
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^application\/json/);
  const doc = res.body as unknown as Doc;

  await t.resolves(SwaggerParser.validate(structuredClone(doc) as never), 'swagger-parser accepts it (schema and every $ref)');

  const config = await loadConfig({ configPath: path.join(ROOT, 'redocly.yaml') });
  const problems = await lintFromString({ source: JSON.stringify(doc), absoluteRef: path.join(ROOT, 'openapi.json'), config });
  t.same(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? ''}`), [], 'redocly recommended rules: no error, no warning');

  const ids = operations(doc).map(([, , op]) => op.operationId);
  t.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  for (const [method, p, op] of operations(doc)) {
    const name = `${method.toUpperCase()} ${p}`;
    t.match(op.operationId, /^[a-z][A-Za-z]+$/, `${name} has an operationId`);
    t.ok(op.tags?.length, `${name} has a tag`);
    const codes = Object.keys(op.responses);
    const isPublic = Array.isArray(op.security) && op.security.length === 0;
    if (!isPublic) t.ok(codes.includes('401') && codes.includes('403'), `${name}: authenticated, so 401 and 403 are documented`);
    if (!['/healthz', '/readyz', '/metrics', '/openapi.json'].includes(p)) t.ok(codes.some((c) => /^4\d\d$/.test(c)), `${name} documents its 4xx`);
  }
});

t.test('real responses match the status codes, media types and schemas the document gives them', async (t) => {
  const h = await apiHarness(t);
  const doc = await served(h);
  const schemaAt = schemasOf(doc);
  const checked = new Set<string>();

  /** Checks one real response against `method path`'s documented response and returns its body. */
  const check = async (method: string, template: string, url: string, opts: Parameters<ApiHarness['call']>[2] = {}, expected?: number): Promise<Record<string, unknown>> => {
    const res = await h.call(method, url, opts);
    const name = `${method} ${url} → ${res.status}`;
    if (expected !== undefined) t.equal(res.status, expected, `${method} ${url}: ${expected}`);
    const op = doc.paths[template]?.[method.toLowerCase()];
    if (!op) throw new Error(`${method} ${template} is not in the document`);
    const documented = op.responses[String(res.status)] ? String(res.status) : 'default';
    const response = op.responses[documented];
    t.ok(response && (documented !== 'default' || res.status >= 500), `${name} is a documented status`);
    const type = (res.headers.get('content-type') ?? '').split(';')[0] as string;
    const media = response?.content?.[type];
    t.ok(media, `${name}: ${type} is its documented media type (${Object.keys(response?.content ?? {}).join(', ')})`);
    for (const header of Object.keys(response?.headers ?? {})) t.ok(res.headers.get(header), `${name} sends the documented ${header} header`);
    if (media?.schema && type.endsWith('json')) {
      const validate = schemaAt(`/paths/${escapePointer(template)}/${method.toLowerCase()}/responses/${documented}/content/${escapePointer(type)}/schema`);
      t.ok(validate(res.body), `${name} matches its schema${validate.errors ? `: ${JSON.stringify(validate.errors.slice(0, 3))}` : ''}`);
      const ref = media.schema['$ref'];
      const component = typeof ref === 'string' ? doc.components.schemas[ref.split('/').pop() as string] : undefined;
      const props = component?.['properties'] as Record<string, unknown> | undefined;
      if (props) t.same(Object.keys(res.body).filter((k) => !(k in props)), [], `${name}: every field it returns is documented`);
    }
    checked.add(`${method} ${template} ${res.status}`);
    return res.body;
  };

  const body = bodyFromDocument(tenantDoc('contract'));
  await check('POST', `${T}/{tenantId}/provision`, `${T}/contract/provision`, { body }, 202);
  await h.daemon.whenIdle();
  const entity = await check('GET', `${T}/{tenantId}`, `${T}/contract`, {}, 200);
  t.match(entity, { status: 'ACTIVE', reconciled: true, id: /^[0-9a-f-]{36}$/ });
  await check('GET', `${T}/{tenantId}`, `${T}/nobody`, {}, 404);
  await check('GET', `${T}/{tenantId}`, `${T}/Not_A_Label`, {}, 400);
  await check('GET', `${T}/{tenantId}`, `${T}/contract`, { token: null }, 401);
  await check('POST', `${T}/{tenantId}/provision`, `${T}/contract/provision`, { body }, 409);
  await check('POST', `${T}/{tenantId}/provision`, `${T}/other/provision`, { token: 'reader', body }, 403);
  const invalid = await check('POST', `${T}/{tenantId}/provision`, `${T}/other/provision`, { body: { ...body, tier: 'gold', storageGb: 5 } }, 422);
  t.ok((invalid['errors'] as unknown[]).length >= 1);
  await check('POST', `${T}/{tenantId}/provision`, `${T}/other/provision`, { raw: '{"tier":', headers: { 'Content-Type': 'application/json' } }, 400);
  await check('POST', `${T}/{tenantId}/provision`, `${T}/other/provision`, { raw: 'tier: x', headers: { 'Content-Type': 'text/yaml' } }, 415);
  await check('POST', `${T}/{tenantId}/provision`, `${T}/other/provision`, { raw: JSON.stringify({ pad: 'x'.repeat(70_000) }), headers: { 'Content-Type': 'application/json' } }, 413);
  await check('PUT', `${T}/{tenantId}`, `${T}/contract`, { body: { configuration: { storageGb: 60 }, labels: { team: null } } }, 202);
  await check('PUT', `${T}/{tenantId}`, `${T}/contract`, { body: { tier: 'starter' }, headers: { 'If-Match': '"0000000000000000000000000000000000000000"' } }, 412);
  await check('GET', T, T, {}, 200);
  await check('GET', T, `${T}?status=NOPE`, {}, 400);
  const transitions = await check('GET', `${T}/{tenantId}/transitions`, `${T}/contract/transitions`, {}, 200);
  t.ok((transitions['items'] as unknown[]).length >= 7, 'the provision\'s transitions');
  await check('GET', `${T}/{tenantId}/transitions`, `${T}/nobody/transitions`, {}, 404);
  await check('GET', `${T}/{tenantId}/desired`, `${T}/contract/desired`, {}, 200);
  await check('POST', `${T}/{tenantId}/reconcile`, `${T}/contract/reconcile`, {}, 202);
  await check('POST', `${T}/{tenantId}/reconcile`, `${T}/nobody/reconcile`, {}, 404);
  await check('POST', `${T}/{tenantId}/approve`, `${T}/contract/approve`, { body: { planDigest: `sha256:${'0'.repeat(64)}` } }, 409);
  await check('POST', `${T}/{tenantId}/approve`, `${T}/contract/approve`, { body: { planDigest: 'x' } }, 422);
  await check('POST', `${T}/{tenantId}/approve`, `${T}/nobody/approve`, { body: { planDigest: `sha256:${'0'.repeat(64)}` } }, 404);
  await check('GET', '/api/v1/deletions', '/api/v1/deletions', {}, 200);
  await check('POST', '/api/v1/deletions/approve', '/api/v1/deletions/approve', { body: { commit: '0'.repeat(40) } }, 409);
  await check('POST', '/api/v1/deletions/approve', '/api/v1/deletions/approve', { body: { commit: 'HEAD' } }, 422);
  await check('POST', '/api/v1/deletions/approve', '/api/v1/deletions/approve', { token: 'writer', body: { commit: '0'.repeat(40) } }, 403);
  await check('DELETE', `${T}/{tenantId}`, `${T}/contract`, {}, 400);
  await check('POST', '/api/v1/webhooks/{provider}', '/api/v1/webhooks/github', { token: null, body: {} }, 404);
  await check('GET', '/healthz', '/healthz', { token: null }, 200);
  await check('GET', '/readyz', '/readyz', { token: null }, 200);
  await check('GET', '/metrics', '/metrics', { token: null }, 200);
  await h.daemon.whenIdle();
  await check('DELETE', `${T}/{tenantId}`, `${T}/contract?confirm=contract`, {}, 202);
  t.ok(checked.size >= 25, `${checked.size} route/status pairs checked`);

  // The event stream: its media type, and the frame it opens with.
  const ac = new AbortController();
  const res = await fetch(`${h.api.url}/api/v1/events`, { headers: { Authorization: 'Bearer admin' }, signal: ac.signal });
  t.equal(res.status, 200);
  const type = res.headers.get('content-type')?.split(';')[0] as string;
  t.ok(doc.paths['/api/v1/events']?.['get']?.responses['200']?.content?.[type], `the event stream's ${type} is documented`);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  t.match(first, /^retry: \d+\n/);
  ac.abort();
  await reader.cancel().catch(() => undefined);
});

t.test('the request body schemas agree with the API: what the API takes, the document takes; what the document refuses, the API refuses', async (t) => {
  const h = await apiHarness(t, { start: false });
  const doc = await served(h);
  const schemaAt = schemasOf(doc);
  const provision = schemaAt('/components/schemas/ProvisionBody');
  const update = schemaAt('/components/schemas/UpdateBody');
  const base = bodyFromDocument(tenantDoc('x'));
  const bodies: Array<[string, unknown]> = [
    ['a valid body', base],
    ['without labels and name', (({ name: _n, labels: _l, ...rest }) => rest)(base)],
    ['unknown tier', { ...base, tier: 'gold' }],
    ['unknown field', { ...base, color: 'blue' }],
    ['missing configuration', (({ configuration: _c, ...rest }) => rest)(base)],
    ['storage out of range', { ...base, configuration: { ...(base['configuration'] as object), storageGb: 0 } }],
    ['bad label key', { ...base, labels: { 'bad key!': 'x' } }],
    ['bad service name', { ...base, services: [{ name: '9web', image: 'nginx', port: 80 }] }],
    ['bad ingress host', { ...base, ingress: { hosts: ['Not A Host'] } }],
    ['not an object', [1, 2]],
  ];
  for (const [i, [what, body]] of bodies.entries()) {
    const res = await h.call('POST', `${T}/agree-${i}/provision`, { body });
    const valid = provision(body);
    if (res.status === 202) t.ok(valid, `${what}: the API took it, so must the document (${JSON.stringify(provision.errors)})`);
    if (!valid) t.equal(res.status, 422, `${what}: the document refuses it, so does the API`);
  }

  // UpdateBody is a merge patch: partial objects and nulls, checked whole after merging.
  const patches: Array<[string, unknown, boolean]> = [
    ['a nested partial object', { configuration: { storageGb: 70 } }, true],
    ['a null removing a label', { labels: { team: null } }, true],
    ['a replaced array', { services: [{ name: 'api', image: 'nginx:1.28', port: 8080 }] }, true],
    ['an unknown tier', { tier: 'gold' }, false],
    ['an unknown field', { colour: 'blue' }, false],
  ];
  for (const [what, patch, ok] of patches) {
    t.equal(update(patch), ok, `UpdateBody ${ok ? 'takes' : 'refuses'} ${what}`);
    const res = await h.call('PUT', `${T}/agree-0`, { body: patch });
    t.equal(res.status, ok ? 202 : 422, `and so does PUT: ${what}`);
  }
});

t.test('the body derivation keeps every if/then, allOf and $defs the tenant schema adds', async (t) => {
  // The tenant schema as the catalog work may shape it: per-cloud enums with if/then in spec, a
  // document-level allOf about spec, and a new $defs entry.
  const variant = structuredClone(tenantSchema) as JsonSchema & { properties: { spec: JsonSchema & { properties: JsonSchema } }; $defs: JsonSchema };
  variant.$defs['awsRegion'] = { enum: ['us-east-1', 'eu-west-1'] };
  variant.properties.spec['allOf'] = [
    { if: { properties: { cloudProvider: { const: 'AWS' } } }, then: { properties: { region: { $ref: '#/$defs/awsRegion' } } } },
  ];
  variant['allOf'] = [
    {
      if: { required: ['spec'], properties: { spec: { properties: { tier: { const: 'starter' } } } } },
      then: { properties: { spec: { properties: { configuration: { properties: { enableHa: { const: false } } } } } } },
    },
  ];
  const components = schemaComponents(variant, 'TenantDocument', 'Tenant');
  t.ok(components['TenantAwsRegion'], '$defs become components');
  t.notOk(JSON.stringify(components).includes('#/$defs/'), 'no $ref is left pointing into $defs');
  const body = provisionBodySchema(components['TenantDocument'] as JsonSchema);
  const doc = { components: { schemas: { ...components, ProvisionBody: body, UpdateBody: mergePatchSchema(body, components) } } };
  const asBody = schemasOf(doc)('/components/schemas/ProvisionBody');
  const asFile = new Ajv2020({ allErrors: true, strict: false }).compile(variant);

  const base = bodyFromDocument(tenantDoc('x'));
  const cases: Array<Record<string, unknown>> = [
    base,
    { ...base, region: 'ap-northeast-1' },
    { ...base, cloudProvider: 'GCP', region: 'ap-northeast-1' },
    { ...base, tier: 'starter', configuration: { ...(base['configuration'] as object), enableHa: true } },
    { ...base, tier: 'starter' },
    { ...base, tier: 'enterprise', configuration: { ...(base['configuration'] as object), enableHa: true } },
  ];
  for (const c of cases) {
    const { name, labels, ...spec } = c;
    const file = { apiVersion: 'tenantd.io/v1alpha1', kind: 'TenantInfrastructure', metadata: { tenantId: 'x', name: name ?? 'x', ...(labels ? { labels } : {}) }, spec };
    t.equal(asBody(c), asFile(file), `body and file agree on ${JSON.stringify({ tier: c['tier'], cloudProvider: c['cloudProvider'], region: c['region'], configuration: c['configuration'] })}`);
  }

  const aboutMetadata = structuredClone(variant);
  aboutMetadata['allOf'] = [{ properties: { metadata: { required: ['labels'] } } }];
  t.throws(() => provisionBodySchema(schemaComponents(aboutMetadata, 'TenantDocument', 'Tenant')['TenantDocument'] as JsonSchema), { code: 'E_SCHEMA_DERIVATION' }, 'a document-level rule it cannot carry is refused, never dropped');
  const dangling = structuredClone(variant);
  (dangling.properties.spec.properties['region'] as JsonSchema)['$ref'] = '#/$defs/nowhere';
  t.throws(() => schemaComponents(dangling, 'TenantDocument', 'Tenant'), { code: 'E_SCHEMA_DERIVATION' }, 'a $ref to a missing $defs entry is an error');
});
