/**
 * `npm run schema`: regenerates the catalog part of schemas/tenant.schema.json from
 * core/tenant/catalog-data.json (the rest of the schema is written by hand and kept as it is).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderTenantSchema } from '../core/tenant/catalog-schema.js';

const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'schemas', 'tenant.schema.json');
const before = await fsp.readFile(file, 'utf8');
const after = renderTenantSchema(JSON.parse(before) as Record<string, unknown>);
if (after === before) {
  console.log(`${path.relative(process.cwd(), file)} is up to date`);
} else {
  await fsp.writeFile(file, after);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
