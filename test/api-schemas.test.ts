import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { apiHarness } from './helpers/api.js';
import { exampleFiles } from './helpers/daemon.js';

const committed = (name: string): unknown => JSON.parse(readFileSync(new URL(`../schemas/${name}`, import.meta.url), 'utf8'));

t.test('GET /schemas/<name>.schema.json: public, the committed schema, the schema media type, cacheable', async (t) => {
  const h = await apiHarness(t, { start: false });
  for (const name of ['tenant.schema.json', 'status.schema.json', 'transition.schema.json']) {
    const res = await fetch(`${h.api.url}/schemas/${name}`);
    t.equal(res.status, 200, `${name} without a token`);
    t.equal(res.headers.get('content-type'), 'application/schema+json');
    t.match(res.headers.get('cache-control'), /^public, max-age=\d+/);
    t.equal(res.headers.get('access-control-allow-origin'), '*', 'an editor or a web tool may fetch it from anywhere');
    t.same(await res.json(), committed(name), `${name} is the committed file`);
    const etag = res.headers.get('etag') as string;
    t.match(etag, /^"[A-Za-z0-9_-]+"$/);
    // fetch() adds `Cache-Control: no-cache` to a conditional request unless told otherwise; a
    // revalidating browser or editor sends max-age=0.
    const again = await fetch(`${h.api.url}/schemas/${name}`, { headers: { 'If-None-Match': etag, 'Cache-Control': 'max-age=0' } });
    t.equal(again.status, 304, 'revalidation with the ETag');
  }
  const head = await fetch(`${h.api.url}/schemas/tenant.schema.json`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(await head.text(), '');
  const missing = await fetch(`${h.api.url}/schemas/nope.schema.json`);
  t.equal(missing.status, 404);
  t.match(missing.headers.get('content-type'), /^application\/problem\+json/);
  t.equal((await fetch(`${h.api.url}/schemas/tenant.schema.json`, { method: 'POST' })).status, 404, 'read-only');
});

t.test('the served tenant schema validates the example tenants and rejects a region of another cloud', async (t) => {
  const h = await apiHarness(t, { start: false });
  const served = (await (await fetch(`${h.api.url}/schemas/tenant.schema.json`)).json()) as Record<string, unknown>;
  const validate = new Ajv2020({ allErrors: true, strict: false }).compile(served);
  for (const [file, text] of Object.entries(await exampleFiles())) t.ok(validate(parseYaml(text)), file);
  const globex = parseYaml((await exampleFiles())['tenants/globex.yaml'] as string) as { spec: { region: string } };
  globex.spec.region = 'us-east-1';
  t.notOk(validate(globex), 'an AWS region on AZURE');
  t.ok(validate.errors?.some((e) => e.instancePath === '/spec/region'));
});
