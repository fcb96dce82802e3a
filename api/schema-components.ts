import { TenantdError } from '../core/errors.js';

/**
 * Turns the JSON Schemas in `schemas/` (the single source of truth) into OpenAPI components,
 * so the served document never holds a hand-copied schema.
 *
 * A schema's `$defs` are hoisted to components of their own and every `$ref` is rewritten to
 * point there: OpenAPI tools resolve `#/…` against the whole document, not against a schema's
 * `$id`, so `#/$defs/x` left inside a component resolves nowhere.
 */
export type JsonSchema = { [keyword: string]: unknown };
export type Components = Record<string, JsonSchema>;

const isObject = (v: unknown): v is JsonSchema => v !== null && typeof v === 'object' && !Array.isArray(v);
/** Values of these keywords are data, not schemas: never rewritten. */
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples', 'example']);

/** A schema the document cannot be derived from: a programming error, caught by test/openapi.test.ts. */
const derivationError = (message: string): TenantdError => new TenantdError('E_SCHEMA_DERIVATION', 'stalled', message);

export const componentRef = (name: string, pointer = ''): JsonSchema => ({ $ref: `#/components/schemas/${name}${pointer}` });

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * One schema file as components: `name` for the root, `<defsPrefix><Def>` for each `$defs` entry
 * (`labelKey` of the tenant schema becomes `TenantLabelKey`). `$schema` and `$id` are dropped (the
 * document's `jsonSchemaDialect` names the dialect; an `$id` would rebase the rewritten refs).
 */
export function schemaComponents(schema: JsonSchema, name: string, defsPrefix: string): Components {
  const { $defs, $schema: _dialect, $id, ...root } = schema;
  const ownIds = typeof $id === 'string' ? [$id] : [];
  const defs = isObject($defs) ? $defs : {};
  const defName = (def: string): string => `${defsPrefix}${capitalize(def)}`;
  const rewrite = (ref: string, at: string): string => {
    const local = ownIds.reduce((r, id) => (r.startsWith(`${id}#`) ? r.slice(id.length) : r), ref);
    if (local === '#') return `#/components/schemas/${name}`;
    const def = /^#\/\$defs\/([^/]+)(\/.*)?$/.exec(local);
    if (def) {
      const target = decodeURIComponent((def[1] as string).replace(/~1/g, '/').replace(/~0/g, '~'));
      if (!(target in defs)) throw derivationError(`${name}${at}: $ref "${ref}" names no entry of $defs`);
      return `#/components/schemas/${defName(target)}${def[2] ?? ''}`;
    }
    if (local.startsWith('#/')) return `#/components/schemas/${name}${local.slice(1)}`;
    throw derivationError(`${name}${at}: $ref "${ref}" is not a reference inside the schema; only local references can be derived`);
  };
  const walk = (node: unknown, at: string): unknown => {
    if (Array.isArray(node)) return node.map((item, i) => walk(item, `${at}/${i}`));
    if (!isObject(node)) return node;
    const out: JsonSchema = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === '$id' || key === '$anchor' || key === '$dynamicRef' || key === '$dynamicAnchor') {
        throw derivationError(`${name}${at}: ${key} inside a schema is not supported by the OpenAPI derivation`);
      }
      if (key === '$ref' && typeof value === 'string') out[key] = rewrite(value, at);
      else out[key] = DATA_KEYWORDS.has(key) ? value : walk(value, `${at}/${key}`);
    }
    return out;
  };
  const components: Components = { [name]: walk(root, '') as JsonSchema };
  for (const [def, sub] of Object.entries(defs)) {
    const key = defName(def);
    if (key in components) throw derivationError(`${name}: $defs entry "${def}" would be the component ${key}, which exists`);
    components[key] = walk(sub, `/$defs/${def}`) as JsonSchema;
  }
  return components;
}

/** The subschema at a JSON pointer (`/properties/spec`); throws when the schema has none there. */
export function subschema(schema: JsonSchema, pointer: string, what: string): JsonSchema {
  let node: unknown = schema;
  for (const part of pointer.split('/').slice(1)) {
    node = isObject(node) ? node[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  }
  if (!isObject(node)) throw derivationError(`${what}: the schema has nothing at ${pointer}`);
  return node;
}

/** Keywords that only combine or annotate: safe to carry from the document level down to `spec`. */
const COMBINATORS = ['allOf', 'anyOf', 'oneOf'] as const;
const CONDITIONALS = ['if', 'then', 'else', 'not'] as const;
const ANNOTATIONS = new Set(['title', 'description', '$comment', 'deprecated', 'examples']);
/** The tenant schema's own shape at the root (what a file is), as opposed to constraints on its values. */
const DOCUMENT_STRUCTURE = new Set(['type', 'additionalProperties', 'required', 'properties', 'title', 'description', '$comment']);

/**
 * A document-level constraint (`allOf`, `if/then/else`, … at the tenant schema's root) as the
 * same constraint on `spec`, so a body made of the spec's fields keeps it. Only constraints that
 * talk about `spec` alone can be carried; anything else is refused loudly rather than dropped.
 */
function projectOntoSpec(node: unknown, at: string, alwaysRequired: readonly string[]): unknown {
  if (typeof node === 'boolean') return node;
  if (!isObject(node)) throw derivationError(`TenantDocument${at}: expected a schema`);
  const out: JsonSchema = {};
  const specParts: unknown[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (ANNOTATIONS.has(key)) out[key] = value;
    else if ((COMBINATORS as readonly string[]).includes(key) && Array.isArray(value)) {
      out[key] = value.map((v, i) => projectOntoSpec(v, `${at}/${key}/${i}`, alwaysRequired));
    } else if ((CONDITIONALS as readonly string[]).includes(key)) out[key] = projectOntoSpec(value, `${at}/${key}`, alwaysRequired);
    else if (key === 'required' && Array.isArray(value) && value.every((r) => alwaysRequired.includes(String(r)))) continue;
    else if (key === 'properties' && isObject(value) && Object.keys(value).every((k) => k === 'spec')) {
      if (value['spec'] !== undefined) specParts.push(value['spec']);
    } else {
      throw derivationError(
        `TenantDocument${at}/${key}: a document-level constraint that is not about spec alone cannot be carried to the API request body; move it into spec`,
      );
    }
  }
  if (specParts.length) out['allOf'] = [...((out['allOf'] as unknown[] | undefined) ?? []), ...specParts];
  return out;
}

/**
 * The provision request body: the seed's flat shape, the tenant spec's fields at the top level
 * plus `name` and `labels` from metadata. Derived from the tenant component (refs already rewritten),
 * every keyword of `spec` carried over — `if/then`, `allOf`, `dependentRequired`, … — since the
 * body is the spec object with two more fields.
 */
export function provisionBodySchema(tenant: JsonSchema): JsonSchema {
  const spec = subschema(tenant, '/properties/spec', 'ProvisionBody');
  const specProps = isObject(spec['properties']) ? spec['properties'] : {};
  for (const taken of ['name', 'labels']) {
    if (taken in specProps) throw derivationError(`ProvisionBody: spec.${taken} would collide with metadata.${taken} in the flat request body`);
  }
  // The document-level keywords besides the structure itself: conditionals are carried to the body.
  const carried: JsonSchema = {};
  for (const [key, value] of Object.entries(tenant)) {
    if (DOCUMENT_STRUCTURE.has(key)) continue;
    if (!(COMBINATORS as readonly string[]).includes(key) && !(CONDITIONALS as readonly string[]).includes(key)) {
      throw derivationError(`TenantDocument/${key}: a document-level ${key} cannot be carried to the API request body; move it into spec`);
    }
    carried[key] = value;
  }
  const rootRequired = Array.isArray(tenant['required']) ? tenant['required'].map(String) : [];
  const documentLevel = projectOntoSpec(carried, '', rootRequired) as JsonSchema;
  const body: JsonSchema = {
    ...spec,
    description: 'The tenant spec\'s fields at the top level, plus `name` and `labels` from its metadata (the seed\'s request shape). It is validated as a whole tenant document.',
    properties: {
      name: subschema(tenant, '/properties/metadata/properties/name', 'ProvisionBody'),
      labels: subschema(tenant, '/properties/metadata/properties/labels', 'ProvisionBody'),
      ...specProps,
    },
  };
  if (Object.keys(documentLevel).length) body['allOf'] = [...((spec['allOf'] as unknown[] | undefined) ?? []), documentLevel];
  return body;
}

/** Keywords that constrain the whole object: a patch is checked after merging, so they do not apply to it. */
const WHOLE_OBJECT_KEYWORDS = new Set([
  'required', 'allOf', 'anyOf', 'oneOf', 'if', 'then', 'else', 'not', 'dependentRequired', 'dependentSchemas', 'minProperties', 'maxProperties', 'unevaluatedProperties',
]);

/**
 * An RFC 7386 JSON merge patch of `schema`: objects merge field by field (nothing required, any
 * field may be `null` to remove it), everything else — scalars and arrays — is replaced whole and
 * keeps its schema. `$ref`s to object components are followed so nested objects patch too.
 */
export function mergePatchSchema(schema: JsonSchema, components: Components): JsonSchema {
  const resolve = (node: JsonSchema): JsonSchema => {
    const ref = node['$ref'];
    if (typeof ref !== 'string') return node;
    const m = /^#\/components\/schemas\/([^/]+)(\/.*)?$/.exec(ref);
    const target = m ? components[m[1] as string] : undefined;
    if (!m || !target) return node;
    return m[2] ? subschema(target, m[2], ref) : target;
  };
  const patchOf = (node: JsonSchema): JsonSchema => {
    const target = resolve(node);
    const props = target['properties'];
    const isObjectSchema = isObject(props) || (target['type'] === 'object' && isObject(target['additionalProperties']));
    if (!isObjectSchema) return node;
    const out: JsonSchema = {};
    for (const [key, value] of Object.entries(target)) {
      if (WHOLE_OBJECT_KEYWORDS.has(key)) continue;
      if (key === 'properties' && isObject(value)) {
        out[key] = Object.fromEntries(Object.entries(value).map(([p, s]) => [p, nullable(isObject(s) ? patchOf(s) : s)]));
      } else if (key === 'additionalProperties' && isObject(value)) out[key] = nullable(patchOf(value));
      else out[key] = value;
    }
    return out;
  };
  return patchOf(schema);
}

const nullable = (schema: unknown): JsonSchema => ({ anyOf: [schema, { type: 'null' }] });

/**
 * Drops the components nothing refers to (starting from `roots`, usually the paths), so a schema
 * file's definitions appear only where the API uses them.
 */
export function referencedComponents(components: Components, roots: unknown): Components {
  const keep = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (isObject(node)) {
      for (const [key, value] of Object.entries(node)) {
        if (key === '$ref' && typeof value === 'string') {
          const name = /^#\/components\/schemas\/([^/]+)/.exec(value)?.[1];
          if (name && !keep.has(name) && components[name]) {
            keep.add(name);
            visit(components[name]);
          }
        } else visit(value);
      }
    }
  };
  visit(roots);
  return Object.fromEntries(Object.entries(components).filter(([name]) => keep.has(name)));
}
