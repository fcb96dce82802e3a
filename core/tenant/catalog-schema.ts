import stringify from 'json-stringify-pretty-compact';
import { CATALOG, CUSTOM_SIZE_PATTERN } from './catalog.js';
import { CLOUD_PROVIDERS, type CloudProvider } from './types.js';

type Json = Record<string, unknown>;

/**
 * The catalog part of `schemas/tenant.schema.json`: for each cloud provider an `if`/`then` that
 * lists its regions and database sizes, so an editor running yaml-language-server (or any JSON
 * Schema tool) flags a bad region or size on the line `tenantd validate` reports. Generated from
 * core/tenant/catalog-data.json by `npm run schema`; a test fails when the committed schema is
 * stale. Retired sizes stay valid (marked `deprecated`): tenantd accepts them with a warning.
 */
export function catalogSchemaRules(): Json[] {
  return CLOUD_PROVIDERS.map((provider) => ({
    $comment: `${provider} catalog, generated from core/tenant/catalog-data.json (${CATALOG.compiled}) by \`npm run schema\`: do not edit by hand.`,
    if: { type: 'object', required: ['cloudProvider'], properties: { cloudProvider: { const: provider } } },
    then: {
      type: 'object',
      properties: {
        region: { description: `A region of ${CATALOG.providers[provider].service}.`, enum: CATALOG.providers[provider].regions },
        configuration: {
          description: `Database settings on ${provider}.`,
          type: 'object',
          properties: { databaseSize: { description: `A size of ${CATALOG.providers[provider].service}.`, anyOf: sizeAlternatives(provider) } },
        },
      },
    },
  }));
}

function sizeAlternatives(provider: CloudProvider): Json[] {
  const catalog = CATALOG.providers[provider];
  const alternatives: Json[] = [
    {
      description: `A size of ${catalog.service}; core/tenant/catalog-data.json maps each to vCPU and memory.`,
      type: 'string',
      enum: Object.keys(catalog.sizes),
    },
  ];
  const custom = catalog.customSizes;
  if (custom) {
    alternatives.push({
      description: `A custom machine type, ${custom.name}: ${custom.vCpu.min} or an even number of vCPUs up to ${custom.vCpu.max}; memory a multiple of ${custom.memoryMiB.multipleOf} MiB, at least ${custom.memoryMiB.min} MiB, ${custom.memoryMiB.minPerVCpu}–${custom.memoryMiB.maxPerVCpu} MiB per vCPU (checked by tenantd validate).`,
      type: 'string',
      pattern: CUSTOM_SIZE_PATTERN,
    });
  }
  for (const group of catalog.retiredSizes) {
    alternatives.push({
      description: `Retired: ${group.reason}. Still accepted with a warning; ${Object.entries(group.sizes)
        .map(([name, s]) => `${name} → ${s.replacement}`)
        .join(', ')}.`,
      deprecated: true,
      type: 'string',
      enum: Object.keys(group.sizes),
    });
  }
  return alternatives;
}

/** The schema document with its catalog rules regenerated, formatted as committed. */
export function renderTenantSchema(schema: Json): string {
  const spec = (schema['properties'] as Json)['spec'] as Json;
  const next = { ...schema, properties: { ...(schema['properties'] as Json), spec: { ...spec, allOf: catalogSchemaRules() } } };
  return `${stringify(next, { maxLength: 120 })}\n`;
}
