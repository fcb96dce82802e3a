/**
 * Parsing and validation of tenant files (`tenants/<tenantId>.yaml`) and API bodies.
 *
 * Three layers, each reporting every problem it finds at once:
 *   1. YAML: syntax errors, duplicate keys, more than one document.
 *   2. JSON Schema (`schemas/tenant.schema.json`, the source of truth), via ajv with allErrors.
 *   3. Checks the schema cannot express: catalog regions and database sizes (catalog-rules.ts:
 *      retired sizes are warnings, not errors), tier limits, unique names, ingress wiring, and
 *      that the tenantId matches the file name.
 *
 * Valid files are the hot path (a cold start loads every tenant): the ajv validator is compiled
 * once, files are parsed with js-yaml (`quickParse`, ~8x cheaper than the `yaml` parser), and
 * source positions (line/column) are only computed when there is
 * something to report, by re-parsing with `yaml`.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { FAILSAFE_SCHEMA, Type as YamlType, load as loadYamlFast } from 'js-yaml';
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  stringify,
  visit,
  type Document,
  type Node as YamlNode,
} from 'yaml';
import tenantSchema from '../../schemas/tenant.schema.json' with { type: 'json' };
import { sortKeysDeep } from '../canonical.js';
import { CUSTOM_SIZE_PATTERN, TIER_POLICIES } from './catalog.js';
import { catalogFindings } from './catalog-rules.js';
import { plainTree } from './plain-tree.js';
import {
  CLOUD_PROVIDERS,
  TIERS,
  type Tier,
  type TenantInfrastructureDocument,
  type TenantParseResult,
  type ValidationIssue,
} from './types.js';
import { isRecord } from '../is-record.js';

/** Tenant files are small; anything this long is a mistake, and refusing it bounds parse cost. */
export const MAX_TENANT_FILE_LENGTH = 1024 * 1024;
/** Alias resolutions the full parser allows (the `yaml` library's maxAliasCount, weighted by nesting). */
export const MAX_ALIAS_COUNT = 100;

type Segment = string | number;

/** A problem before it is given a source position. */
interface Problem {
  /** Field the problem is about (shown to the user). */
  path: Segment[];
  message: string;
  /** Node whose position is reported; defaults to `path`. */
  anchor?: Segment[];
  /** Point at the key of the anchor's pair (unknown fields) rather than its value. */
  at?: 'key' | 'value';
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Parses and validates one tenant file; `file` is its repo-relative path, e.g. `tenants/acme.yaml`.
 * Total: no input makes it throw (a file that did would stop whoever reads the repository, on
 * every restart); anything it cannot read becomes an issue on the file.
 */
export function parseTenantFile(file: string, text: string): TenantParseResult {
  try {
    if (typeof text !== 'string') return fail([{ file, line: 0, column: 0, path: '', message: 'file content is not text' }]);
    return parseText(file, text);
  } catch (err: unknown) {
    // A parser bug or an exhausted stack: the file is still only this tenant's problem.
    return fail([{ file, line: 0, column: 0, path: '', message: `file could not be parsed: ${parseFailure(err)}` }]);
  }
}

function parseText(file: string, text: string): TenantParseResult {
  if (text.length > MAX_TENANT_FILE_LENGTH) {
    return fail([{ file, line: 0, column: 0, path: '', message: `file is longer than ${MAX_TENANT_FILE_LENGTH} characters` }]);
  }
  const expectedId = expectedIdForFile(file);
  // Fast path: most tenant files are plain block YAML; valid ones never reach the full parser.
  const quick = quickParse(text);
  if (quick !== undefined) {
    const tree = plainTree(quick);
    if (tree.ok && tree.problems.length === 0) {
      const found = validateData(tree.value, expectedId);
      // Warnings (a retired size) need source positions: the full parse below places them.
      if (found.problems.length === 0 && found.warnings.length === 0) {
        return { ok: true, tenant: tree.value as TenantInfrastructureDocument, warnings: [] };
      }
    }
  }
  // prettyErrors: false skips the library's LineCounter; positions are derived lazily below.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  if (doc.errors.length > 0 || doc.warnings.length > 0) {
    return fail(yamlIssues(file, text, doc));
  }
  if (doc.contents === null) {
    return fail([{ file, line: 0, column: 0, path: '', message: 'file is empty; expected a TenantInfrastructure document' }]);
  }
  let data: unknown;
  try {
    // maxAliasCount bounds alias expansion ("billion laughs"); plainTree bounds what is left.
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err: unknown) {
    if (!(err instanceof ReferenceError)) throw err;
    return fail([aliasIssue(file, text, doc)]);
  }
  const positions = new SourcePositions(text, doc);
  const tree = plainTree(data);
  if (!tree.ok) return fail([positions.issue(file, tree.problem)]);
  const found = validateData(tree.value, expectedId);
  const problems = [...tree.problems, ...found.problems];
  if (problems.length === 0) return { ok: true, tenant: tree.value as TenantInfrastructureDocument, warnings: sortIssues(found.warnings.map((p) => positions.issue(file, p))) };
  return fail(problems.map((p) => positions.issue(file, p)));
}

/**
 * Validates an already-parsed document (a REST API body). Issues carry no position (0:0) and
 * `file: ''` unless given; the tenantId is checked against a file name only when `file` is given.
 * On success `tenant` is a plain copy of the input (ajv neither coerces nor adds defaults).
 */
export function validateTenantDocument(doc: unknown, file?: string): TenantParseResult {
  const tree = plainTree(doc);
  const unplaced = (p: Problem): ValidationIssue => ({ file: file ?? '', line: 0, column: 0, path: formatPath(p.path), message: p.message });
  if (!tree.ok) return fail([unplaced(tree.problem)]);
  const found = validateData(tree.value, file === undefined ? null : expectedIdForFile(file));
  const problems = [...tree.problems, ...found.problems];
  if (problems.length === 0) return { ok: true, tenant: tree.value as TenantInfrastructureDocument, warnings: found.warnings.map(unplaced) };
  return fail(problems.map(unplaced));
}

/** `tenants/acme.yaml` → `acme`; null for anything not directly under `tenants/` ending in .yaml/.yml. */
export function tenantIdFromPath(path: string): string | null {
  const match = /^(?:\.\/)?tenants\/([^/]+)\.ya?ml$/.exec(path);
  return match?.[1] ?? null;
}

/**
 * Deterministic YAML for a tenant: apiVersion, kind, metadata, spec first, keys sorted inside, so
 * files written by the API diff cleanly. The output round-trips through parseTenantFile.
 */
export function serializeTenant(doc: TenantInfrastructureDocument): string {
  const ordered = {
    apiVersion: doc.apiVersion,
    kind: doc.kind,
    metadata: sortKeysDeep(doc.metadata),
    spec: sortKeysDeep(doc.spec),
  };
  // compat: quote strings a YAML 1.1 reader would take as booleans/numbers (yes, on, 0777).
  return stringify(ordered, { lineWidth: 0, compat: 'yaml-1.1' });
}

// ---------------------------------------------------------------------------------------------
// Schema and semantic validation (position-free)

let compiled: ValidateFunction<TenantInfrastructureDocument> | undefined;

/** Compiled once, on first use: compiling costs milliseconds, validating microseconds. */
function schemaValidator(): ValidateFunction<TenantInfrastructureDocument> {
  // verbose: errors carry parentSchema, used to list the allowed fields of an unknown one.
  compiled ??= new Ajv2020({ allErrors: true, strict: true, verbose: true }).compile<TenantInfrastructureDocument>(tenantSchema);
  return compiled;
}

/**
 * Where the schema keeps its copy of the catalogs (generated from core/tenant/catalog-data.json
 * for editors). Its errors are dropped here: the catalog checks report the same fields with a
 * better message (the tier's sizes, a "did you mean"), and retired sizes as warnings.
 */
export const CATALOG_SCHEMA_PATH = '#/properties/spec/allOf';

function validateData(data: unknown, expectedId: string | null): { problems: Problem[]; warnings: Problem[] } {
  const validate = schemaValidator();
  const errors = validate(data) ? [] : (validate.errors ?? []).filter((e) => !e.schemaPath.startsWith(`${CATALOG_SCHEMA_PATH}/`));
  const schemaProblems = errors.flatMap((e) => schemaProblem(e, data));
  // Skip a semantic check on a field that already has a schema error: one complaint per field.
  const flagged = new Set(schemaProblems.map((p) => formatPath(p.path)));
  const semantic = semanticFindings(data, expectedId);
  const unflagged = (p: Problem): boolean => !flagged.has(formatPath(p.path));
  return { problems: [...schemaProblems, ...semantic.problems.filter(unflagged)], warnings: semantic.warnings.filter(unflagged) };
}

function schemaProblem(error: ErrorObject, root: unknown): Problem[] {
  const path = instancePathSegments(error.instancePath, root);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required': {
      const missing = String(params['missingProperty']);
      return [{ path: [...path, missing], anchor: path, message: 'required field is missing' }];
    }
    case 'additionalProperties': {
      const extra = String(params['additionalProperty']);
      const allowed = Object.keys(propertiesOf(error.parentSchema));
      const hint =
        extra === '<<' ? ' (YAML merge keys are not supported: write the fields out)' : allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : '';
      return [{ path: [...path, extra], at: 'key', message: `unknown field ${JSON.stringify(extra)}${hint}` }];
    }
    // The nested error (with `propertyName` set) says what is wrong with the name.
    case 'propertyNames':
      return [];
    default:
      break;
  }
  if (error.propertyName !== undefined) {
    const name = error.propertyName;
    return [{ path: [...path, name], at: 'key', message: `invalid key ${JSON.stringify(name)}: ${keywordMessage(error, name)}` }];
  }
  return [{ path, message: keywordMessage(error, error.data) }];
}

function keywordMessage(error: ErrorObject, value: unknown): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'type': {
      const expected = String(params['type']);
      const quoteHint = expected === 'string' && (typeof value === 'number' || typeof value === 'boolean') ? '; put the value in quotes' : '';
      return `must be ${TYPE_NAMES[expected] ?? expected} (got ${describe(value)})${quoteHint}`;
    }
    case 'enum': {
      const allowed = Array.isArray(params['allowedValues']) ? (params['allowedValues'] as unknown[]) : [];
      return `must be one of: ${allowed.map(String).join(', ')} (got ${describe(value)})`;
    }
    case 'const':
      return `must be ${JSON.stringify(params['allowedValue'])} (got ${describe(value)})`;
    case 'pattern': {
      const pattern = String(params['pattern']);
      const meaning = PATTERN_MEANINGS[pattern] ?? `match the pattern ${pattern}`;
      return `must be ${meaning} (got ${describe(value)})`;
    }
    case 'minLength':
      return params['limit'] === 1 ? 'must not be empty' : `must be at least ${String(params['limit'])} characters long`;
    case 'maxLength':
      return `must be at most ${String(params['limit'])} characters long (got ${typeof value === 'string' ? value.length : '?'})`;
    case 'minimum':
    case 'maximum':
      return `must be ${String(params['comparison'])} ${String(params['limit'])} (got ${describe(value)})`;
    case 'minItems':
      return `must have at least ${String(params['limit'])} item${params['limit'] === 1 ? '' : 's'}`;
    case 'uniqueItems':
      return `must not repeat items (items ${String(params['j'])} and ${String(params['i'])} are the same)`;
    default:
      return error.message ?? `fails the schema keyword "${error.keyword}"`;
  }
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
};

/** Human wording for every pattern in the schema (a test keeps this list complete). */
export const PATTERN_MEANINGS: Readonly<Record<string, string>> = {
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$':
    "a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit",
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$':
    "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit",
  '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$':
    'a lowercase DNS name such as app.example.com, optionally starting with "*."',
  '^[a-z]([-a-z0-9]*[a-z0-9])?$':
    "a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending with a letter or digit",
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$':
    "a Kubernetes label key: an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
  '^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$':
    "a Kubernetes label value: letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
  '^([0-9]+m|[0-9]+(\\.[0-9]{1,3})?)$': 'a CPU quantity such as "250m", "1" or "0.5"',
  '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$': 'a memory quantity such as "256Mi", "2Gi" or "1G"',
  '^\\S+$': 'a container image reference without whitespace',
  '^[A-Za-z_][A-Za-z0-9_]*$': 'an environment variable name: letters, digits and "_", not starting with a digit',
  // Catalog errors are reported by catalog-rules.ts; the wording stands for completeness.
  [CUSTOM_SIZE_PATTERN]: 'a Cloud SQL custom machine type db-custom-<vCPU>-<memory MiB> with 1 or an even number of vCPUs up to 96',
};

/** Checks the schema cannot express. Defensive: runs on data that may also have failed the schema. */
function semanticFindings(data: unknown, expectedId: string | null): { problems: Problem[]; warnings: Problem[] } {
  const problems: Problem[] = [];
  if (!isRecord(data)) return { problems, warnings: [] };
  const metadata = isRecord(data['metadata']) ? data['metadata'] : {};
  const spec = isRecord(data['spec']) ? data['spec'] : {};
  const configuration = isRecord(spec['configuration']) ? spec['configuration'] : {};

  const tenantId = metadata['tenantId'];
  if (expectedId !== null && typeof tenantId === 'string' && tenantId !== expectedId) {
    problems.push({
      path: ['metadata', 'tenantId'],
      message: `must equal the file name: expected ${JSON.stringify(expectedId)}, got ${JSON.stringify(tenantId)}`,
    });
  }

  const provider = oneOf(CLOUD_PROVIDERS, spec['cloudProvider']);
  const tier = oneOf(TIERS, spec['tier']);
  const policy = tier === undefined ? undefined : TIER_POLICIES[tier];

  const catalog = catalogFindings(provider, tier, spec['region'], configuration['databaseSize']);
  problems.push(...catalog.problems);

  const storageGb = configuration['storageGb'];
  if (policy !== undefined && typeof storageGb === 'number' && storageGb > policy.maxStorageGb) {
    problems.push({
      path: ['spec', 'configuration', 'storageGb'],
      message: `must be <= ${policy.maxStorageGb} for the ${String(tier)} tier (got ${storageGb})`,
    });
  }
  if (tier !== undefined && policy !== undefined && configuration['enableHa'] === true && !policy.haAllowed) {
    const haTiers = TIERS.filter((t) => TIER_POLICIES[t].haAllowed);
    problems.push({
      path: ['spec', 'configuration', 'enableHa'],
      message: `high availability is not available on the ${tier} tier (only on: ${haTiers.join(', ')})`,
    });
  }

  const services = Array.isArray(spec['services']) ? (spec['services'] as unknown[]) : [];
  problems.push(...serviceProblems(services, tier));
  if (spec['ingress'] !== undefined) problems.push(...ingressProblems(spec['ingress'], services));
  return { problems, warnings: catalog.warnings };
}

function serviceProblems(services: unknown[], tier: Tier | undefined): Problem[] {
  const problems: Problem[] = [];
  const policy = tier === undefined ? undefined : TIER_POLICIES[tier];
  if (policy !== undefined && services.length > policy.maxServices) {
    problems.push({
      path: ['spec', 'services'],
      message: `the ${String(tier)} tier allows at most ${policy.maxServices} services (got ${services.length})`,
    });
  }
  const firstByName = new Map<string, number>();
  services.forEach((service, i) => {
    if (!isRecord(service)) return;
    const name = service['name'];
    if (typeof name === 'string') {
      const first = firstByName.get(name);
      if (first === undefined) firstByName.set(name, i);
      else problems.push({ path: ['spec', 'services', i, 'name'], message: `duplicate service name ${JSON.stringify(name)} (first used by spec.services[${first}])` });
    }
    const replicas = service['replicas'];
    if (policy !== undefined && typeof replicas === 'number' && replicas > policy.maxReplicasPerService) {
      problems.push({
        path: ['spec', 'services', i, 'replicas'],
        message: `must be <= ${policy.maxReplicasPerService} for the ${String(tier)} tier (got ${replicas})`,
      });
    }
    // Kubernetes keeps the last of duplicated env names silently; that is always a mistake here.
    const env = Array.isArray(service['env']) ? (service['env'] as unknown[]) : [];
    const firstEnv = new Map<string, number>();
    env.forEach((v, j) => {
      const envName = isRecord(v) ? v['name'] : undefined;
      if (typeof envName !== 'string') return;
      const seen = firstEnv.get(envName);
      if (seen === undefined) firstEnv.set(envName, j);
      else problems.push({ path: ['spec', 'services', i, 'env', j, 'name'], message: `duplicate environment variable ${JSON.stringify(envName)} (first set by env[${seen}])` });
    });
  });
  return problems;
}

function ingressProblems(ingress: unknown, services: unknown[]): Problem[] {
  const names = [...new Set(services.flatMap((s) => (isRecord(s) && typeof s['name'] === 'string' ? [s['name']] : [])))];
  if (services.length === 0) {
    return [{ path: ['spec', 'ingress'], message: 'an ingress needs a service to send traffic to, but spec.services is empty' }];
  }
  const target = isRecord(ingress) ? ingress['service'] : undefined;
  if (typeof target === 'string' && names.length > 0 && !names.includes(target)) {
    return [{ path: ['spec', 'ingress', 'service'], message: `no service named ${JSON.stringify(target)} in spec.services (one of: ${names.join(', ')})` }];
  }
  return [];
}

/** The tenantId a file name demands: its basename without .yaml/.yml; null when it has none. */
function expectedIdForFile(file: string): string | null {
  const base = file.slice(file.lastIndexOf('/') + 1);
  const match = /^(.+)\.ya?ml$/.exec(base);
  return match?.[1] ?? null;
}

// ---------------------------------------------------------------------------------------------
// YAML-level issues and source positions (error path only)

function yamlIssues(file: string, text: string, doc: Document.Parsed): ValidationIssue[] {
  const lines = lineCounterFor(text);
  const issues = [...doc.errors, ...doc.warnings].map((error): ValidationIssue => {
    const offset = error.pos[0];
    const { line, col } = lines.linePos(offset);
    let path = '';
    let message = `invalid YAML: ${error.message}`;
    if (error.code === 'DUPLICATE_KEY') {
      const keyPath = keyPathAt(doc.contents, offset, []);
      path = keyPath === null ? '' : formatPath(keyPath);
      const key = keyPath?.[keyPath.length - 1];
      message = key === undefined ? 'duplicate key' : `duplicate key ${JSON.stringify(String(key))}`;
    } else if (error.code === 'MULTIPLE_DOCS') {
      message = 'a tenant file holds exactly one YAML document, but another one starts here';
    } else if (error.code === 'TAG_RESOLVE_FAILED') {
      message = `unsupported YAML tag ${JSON.stringify(text.slice(error.pos[0], error.pos[1]))}; a tenant file holds plain values`;
    }
    return { file, line, column: col, path, message };
  });
  return issues;
}

/** Path of the map key that starts at `offset` (used to name duplicate keys). */
function keyPathAt(node: unknown, offset: number, prefix: Segment[]): Segment[] | null {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      const segment = typeof key === 'number' ? String(key) : typeof key === 'string' ? key : '?';
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) return [...prefix, segment];
      const inner = keyPathAt(pair.value, offset, [...prefix, segment]);
      if (inner !== null) return inner;
    }
  } else if (isSeq(node)) {
    for (let i = 0; i < node.items.length; i++) {
      const inner = keyPathAt(node.items[i], offset, [...prefix, i]);
      if (inner !== null) return inner;
    }
  }
  return null;
}

/** The alias limit was hit: point at the first alias, since the expansion has no one position. */
function aliasIssue(file: string, text: string, doc: Document.Parsed): ValidationIssue {
  let offset: number | undefined;
  visit(doc, {
    Alias(_key, node) {
      offset = node.range?.[0];
      return visit.BREAK;
    },
  });
  const { line, col } = offset === undefined ? { line: 0, col: 0 } : lineCounterFor(text).linePos(offset);
  return {
    file,
    line,
    column: col,
    path: '',
    message: `too many YAML aliases: anchored values may be repeated at most ${MAX_ALIAS_COUNT} times (fewer when aliases nest), which bounds what a small file can expand to`,
  };
}

/** Why a parser gave up, in words (an exhausted stack is a nesting problem, not a bug report). */
function parseFailure(err: unknown): string {
  if (err instanceof RangeError && /call stack/i.test(err.message)) return 'it is nested too deeply';
  return err instanceof Error ? err.message : String(err);
}

function lineCounterFor(text: string): LineCounter {
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines.addNewLine(i + 1);
  return lines;
}

/** Maps problems to file:line:column through the parsed document's node ranges. */
class SourcePositions {
  private readonly lines: LineCounter;

  constructor(
    text: string,
    private readonly doc: Document.Parsed,
  ) {
    this.lines = lineCounterFor(text);
  }

  issue(file: string, problem: Problem): ValidationIssue {
    const offset = this.offsetOf(problem.anchor ?? problem.path, problem.at ?? 'value');
    const { line, col } = offset === undefined ? { line: 0, col: 0 } : this.lines.linePos(offset);
    return { file, line, column: col, path: formatPath(problem.path), message: problem.message };
  }

  /** Walks the segments as far as they exist; reports the deepest node reached. */
  private offsetOf(segments: Segment[], at: 'key' | 'value'): number | undefined {
    let node: unknown = this.doc.contents;
    let keyNode: YamlNode | undefined;
    let offset = rangeStart(node);
    for (const segment of segments) {
      node = this.resolve(node);
      let next: unknown;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
        keyNode = pair !== undefined && isScalar(pair.key) ? pair.key : undefined;
        next = pair?.value;
        if (pair === undefined) return offset;
      } else if (isSeq(node)) {
        keyNode = undefined;
        next = node.items[Number(segment)];
        if (next === undefined) return offset;
      } else {
        return offset;
      }
      // An empty value (`key:`) has a zero-width range after the colon: point at the key instead.
      const valueStart = rangeStart(next);
      const empty = isScalar(next) && next.value === null && next.range != null && next.range[0] === next.range[1];
      offset = valueStart === undefined || empty ? (rangeStart(keyNode) ?? offset) : valueStart;
      node = next;
    }
    if (at === 'key' && keyNode !== undefined) return rangeStart(keyNode) ?? offset;
    return offset;
  }

  private resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }
}

function rangeStart(node: unknown): number | undefined {
  if (node === null || typeof node !== 'object') return undefined;
  const range = (node as { range?: unknown }).range;
  return Array.isArray(range) && typeof range[0] === 'number' ? range[0] : undefined;
}

// ---------------------------------------------------------------------------------------------
// Fast path: js-yaml

/**
 * The `yaml` library keeps source ranges (we need them for file:line:column errors) but costs
 * ~100-300 µs per tenant file, which dominates loading thousands of tenants. js-yaml 4 parses the
 * same files in ~20 µs without ranges (js-yaml 5 takes ~70 µs: measured on the benchmark's
 * tenant files), so valid files take it and only files with problems are re-parsed by `yaml` to
 * place the errors. js-yaml's own CORE_SCHEMA reads YAML 1.1 numbers (`1_000`, `0b1`, `+0x1`),
 * so the schema below spells out the YAML 1.2 core schema `yaml` uses. js-yaml rejects duplicate
 * keys and multiple documents itself. Anything js-yaml refuses, or any result that does not
 * validate, falls back to the full path; a test fuzzes the two parsers against each other so the
 * fast path never accepts a value `yaml` would read differently.
 */
const scalar = (tag: string, test: (s: string) => boolean, construct: (s: string) => unknown): YamlType =>
  new YamlType(`tag:yaml.org,2002:${tag}`, { kind: 'scalar', resolve: (s: unknown) => typeof s === 'string' && test(s), construct: (s: string) => construct(s) });
const CORE_12_INT = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/;
const CORE_12_FLOAT = /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const YAML_12_CORE = FAILSAFE_SCHEMA.extend({
  implicit: [
    scalar('null', (s) => s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL', () => null),
    scalar('bool', (s) => /^(?:true|True|TRUE|false|False|FALSE)$/.test(s), (s) => s[0] === 't' || s[0] === 'T'),
    scalar('int', (s) => CORE_12_INT.test(s), (s) => (s.startsWith('0o') ? parseInt(s.slice(2), 8) : s.startsWith('0x') ? parseInt(s.slice(2), 16) : Number(s))),
    scalar('float', (s) => CORE_12_FLOAT.test(s), (s) => {
      const inf = /^([-+]?)\.inf$/i.exec(s);
      if (inf) return inf[1] === '-' ? -Infinity : Infinity;
      return /^\.nan$/i.test(s) ? NaN : Number(s);
    }),
  ],
});

export function quickParse(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = loadYamlFast(text, { schema: YAML_12_CORE });
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function fail(issues: ValidationIssue[]): TenantParseResult {
  return { ok: false, issues: sortIssues(issues) };
}

/** Stable sort by position: issues on the same position keep schema-then-semantic order. */
function sortIssues(issues: ValidationIssue[]): ValidationIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** ajv's JSON Pointer → segments, numeric where the container is an array. */
function instancePathSegments(pointer: string, root: unknown): Segment[] {
  if (pointer === '') return [];
  const segments: Segment[] = [];
  let current: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(current)) {
      const index = Number(key);
      segments.push(index);
      current = current[index];
    } else {
      segments.push(key);
      current = isRecord(current) ? current[key] : undefined;
    }
  }
  return segments;
}

/** `spec.services[1].port`; keys that are not identifiers are quoted: `metadata.labels["app.kubernetes.io/name"]`. */
export function formatPath(segments: readonly Segment[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return `${typeof value} ${String(value)}`;
}

function propertiesOf(schema: unknown): Record<string, unknown> {
  return isRecord(schema) && isRecord(schema['properties']) ? schema['properties'] : {};
}

function oneOf<T extends string>(allowed: readonly T[], value: unknown): T | undefined {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value) ? (value as T) : undefined;
}

