/**
 * A fast path for `YAML.stringify` (the `yaml` package) of plain JSON-like documents — status files
 * and rendered manifests — producing the same bytes.
 *
 * At fleet scale YAML serialization was the largest CPU cost of a reconcile (20 manifests and a
 * status file per tenant; `yaml` builds a node tree per document). The block structure of a plain
 * document is simple; the hard part — how each scalar and key must be written (plain or quoted,
 * YAML 1.1 or 1.2 rules) — is still decided by `yaml` itself, once per distinct string (memoized),
 * except for lowercase words and timestamps whose rendering is fixed. Anything unusual (multi-line
 * strings, non-finite numbers, non-plain objects, undefined in an array) falls back to
 * `YAML.stringify` for the whole document, so the output is always what `yaml` would write.
 */
import YAML, { type ToStringOptions, type DocumentOptions, type SchemaOptions, type CreateNodeOptions } from 'yaml';

export interface EmitOptions {
  /** YAML version whose rules decide quoting ('1.1' for Kubernetes tooling). Default '1.2'. */
  version?: '1.1' | '1.2';
  /** Sort map keys (the `yaml` option sortMapEntries: true). */
  sortMapEntries?: boolean;
}

type YamlOptions = DocumentOptions & SchemaOptions & CreateNodeOptions & ToStringOptions;

class Unsupported extends Error {}

/** Strings at most this long are memoized; longer ones are rendered by `yaml` each time. */
const MEMO_MAX_LENGTH = 200;
/** Memo entries per version before the memo is cleared (bounds memory; refilled on demand). */
const MEMO_MAX_ENTRIES = 50_000;

/**
 * Lowercase words are plain scalars unless a schema tag would read them as something else: in
 * `yaml`'s 1.1 schema the booleans, null, and exponent-only floats such as `e1` (its float pattern
 * makes the mantissa optional); in 1.2 core only true, false and null. (Every other 1.1/1.2 tag
 * needs a digit, sign, dot, tilde or capital first.)
 */
const KEYWORDS_1_1 = new Set(['y', 'n', 'yes', 'no', 'on', 'off', 'true', 'false', 'null']);
const KEYWORDS_1_2 = new Set(['true', 'false', 'null']);
const WORD = /^[a-z][a-z0-9-]*$/;
const EXPONENT_1_1 = /^e-?[0-9]+$/;
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

class Emitter {
  private readonly values = new Map<string, string>();
  private readonly keys = new Map<string, string>();
  private readonly numbers = new Map<number, string>();
  private readonly keywords: Set<string>;
  /** A lowercase word this version writes as-is (no lookup needed). */
  private plainWord(s: string): boolean {
    return WORD.test(s) && !this.keywords.has(s) && !(this.version === '1.1' && EXPONENT_1_1.test(s));
  }
  readonly yamlOptions: YamlOptions;

  constructor(readonly version: '1.1' | '1.2', readonly sort: boolean) {
    this.keywords = version === '1.1' ? KEYWORDS_1_1 : KEYWORDS_1_2;
    this.yamlOptions = { lineWidth: 0, ...(version === '1.1' ? { version: '1.1', aliasDuplicateObjects: false } : {}), ...(sort ? { sortMapEntries: true } : {}) };
  }

  private memo(map: Map<string, string>, s: string, render: () => string): string {
    const hit = map.get(s);
    if (hit !== undefined) return hit;
    const out = render();
    if (out.includes('\n')) throw new Unsupported();
    if (s.length <= MEMO_MAX_LENGTH) {
      if (map.size >= MEMO_MAX_ENTRIES) map.clear();
      map.set(s, out);
    }
    return out;
  }

  /** How `yaml` writes this string as a value. */
  str(s: string): string {
    if (this.plainWord(s)) return s;
    // 1.2 has no timestamp type: a UTC ISO time is a plain scalar there ('yaml' 1.1 quotes it)
    if (this.version === '1.2' && ISO_TIME.test(s)) return s;
    return this.memo(this.values, s, () => YAML.stringify(s, this.yamlOptions).slice(0, -1));
  }

  /** How `yaml` writes this string as a map key. */
  key(k: string): string {
    if (this.plainWord(k)) return k;
    return this.memo(this.keys, k, () => {
      const line = YAML.stringify({ [k]: 0 }, this.yamlOptions);
      if (!line.endsWith(': 0\n')) throw new Unsupported();
      return line.slice(0, -4);
    });
  }

  num(n: number): string {
    if (!Number.isFinite(n)) throw new Unsupported();
    if (Number.isSafeInteger(n) && !Object.is(n, -0)) return String(n);
    let out = this.numbers.get(n);
    if (out === undefined) {
      out = YAML.stringify(n, this.yamlOptions).slice(0, -1);
      if (out.includes('\n')) throw new Unsupported();
      if (this.numbers.size >= MEMO_MAX_ENTRIES) this.numbers.clear();
      this.numbers.set(n, out);
    }
    return out;
  }

  /** Objects of the document being written: one seen twice would be an alias in `yaml`'s output. */
  private seen = new Set<object>();

  /** A value that fits on its key's line, or null when it is a non-empty collection. */
  inline(v: unknown): string | null {
    switch (typeof v) {
      case 'string':
        return this.str(v);
      case 'number':
        return this.num(v);
      case 'boolean':
        return v ? 'true' : 'false';
      case 'object':
        if (v === null) return 'null';
        if (Array.isArray(v)) return v.length === 0 ? '[]' : null;
        if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) throw new Unsupported();
        return this.entries(v as Record<string, unknown>).length === 0 ? '{}' : null;
      default:
        throw new Unsupported();
    }
  }

  entries(obj: Record<string, unknown>): Array<[string, unknown]> {
    const out: Array<[string, unknown]> = [];
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (v !== undefined) out.push([k, v]);
    }
    if (this.sort) out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return out;
  }

  /** A non-empty map at `indent`; the first line may continue a `- ` already written. */
  map(obj: Record<string, unknown>, indent: string, firstInline: boolean, out: string[]): void {
    let first = firstInline;
    for (const [k, v] of this.entries(obj)) {
      const prefix = first ? '' : indent;
      first = false;
      const scalar = this.inline(v);
      if (scalar !== null) {
        out.push(`${prefix}${this.key(k)}: ${scalar}\n`);
      } else {
        out.push(`${prefix}${this.key(k)}:\n`);
        this.block(v, `${indent}  `, false, out);
      }
    }
  }

  seq(items: unknown[], indent: string, firstInline: boolean, out: string[]): void {
    let first = firstInline;
    for (const item of items) {
      if (item === undefined) throw new Unsupported();
      const prefix = first ? '' : indent;
      first = false;
      const scalar = this.inline(item);
      if (scalar !== null) out.push(`${prefix}- ${scalar}\n`);
      else {
        out.push(`${prefix}- `);
        this.block(item, `${indent}  `, true, out);
      }
    }
  }

  block(v: unknown, indent: string, firstInline: boolean, out: string[]): void {
    if (this.seen.has(v as object)) throw new Unsupported();
    this.seen.add(v as object);
    if (Array.isArray(v)) this.seq(v, indent, firstInline, out);
    else this.map(v as Record<string, unknown>, indent, firstInline, out);
  }

  emit(doc: unknown): string {
    this.seen = new Set();
    try {
      const scalar = this.inline(doc);
      if (scalar !== null) return `${scalar}\n`;
      const out: string[] = [];
      this.block(doc, '', false, out);
      return out.join('');
    } catch (err: unknown) {
      if (err instanceof Unsupported) return YAML.stringify(doc, this.yamlOptions);
      throw err;
    }
  }
}

const emitters = new Map<string, Emitter>();

/**
 * `YAML.stringify(doc, { lineWidth: 0 })` — plus `version: '1.1', aliasDuplicateObjects: false`
 * for version 1.1, and `sortMapEntries: true` when asked — byte for byte, faster.
 */
export function stringifyYaml(doc: unknown, opts: EmitOptions = {}): string {
  const version = opts.version ?? '1.2';
  const sort = opts.sortMapEntries ?? false;
  const id = `${version}:${sort}`;
  let e = emitters.get(id);
  if (!e) emitters.set(id, (e = new Emitter(version, sort)));
  return e.emit(doc);
}
