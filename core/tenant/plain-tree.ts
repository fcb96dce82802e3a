/**
 * What a parsed tenant document may hold, checked before anything else walks it.
 *
 * YAML aliases make a parsed document a graph: js-yaml (the fast path) and `yaml` both hand out
 * the anchored object itself at every alias, so 30 lines can stand for billions of values and any
 * walk over them (ajv, the semantic checks, a digest, JSON) never ends. `plainTree` copies the
 * document into a plain tree, counting every value it copies, and stops at a bound: nothing after
 * it ever sees shared objects or more than MAX_DOCUMENT_NODES values. The same walk rejects what
 * no text field may hold (NUL, bytes that were not UTF-8, unpaired surrogates) and `__proto__` as a
 * field name at any depth, so a file and an API body are refused alike.
 */

export type Segment = string | number;

export interface TreeProblem {
  path: Segment[];
  message: string;
  /** Point at the key of the pair (a bad field name) rather than its value. */
  at?: 'key' | 'value';
}

/** Values a document may hold once aliases are expanded; a real tenant file holds a few hundred. */
export const MAX_DOCUMENT_NODES = 100_000;
/** Deeper nesting is never a tenant document (the schema is six levels deep). */
export const MAX_DOCUMENT_DEPTH = 64;

export type PlainTree = { ok: true; value: unknown; problems: TreeProblem[] } | { ok: false; problem: TreeProblem };

class TreeLimit {
  constructor(readonly problem: TreeProblem) {}
}

// NUL, U+FFFD (what a lenient UTF-8 decoder makes of invalid bytes), and unpaired surrogates.
// eslint-disable-next-line no-control-regex
const BAD_TEXT = /[\u0000\uFFFD]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function textProblem(s: string): string | null {
  const m = BAD_TEXT.exec(s);
  if (!m) return null;
  const c = m[0].charCodeAt(0);
  if (c === 0) return `contains a NUL character at position ${m.index}; text fields hold printable text`;
  if (c === 0xfffd) return `contains bytes that are not valid UTF-8 (read as U+FFFD at position ${m.index}); save the file as UTF-8`;
  return `contains an unpaired UTF-16 surrogate (\\u${c.toString(16).toUpperCase()}) at position ${m.index}, which UTF-8 cannot encode`;
}

/**
 * A plain copy of `root` (objects, arrays, scalars; no shared references), or the one limit it
 * exceeds. `problems` lists bad text and forbidden field names, with their paths.
 */
export function plainTree(root: unknown): PlainTree {
  const problems: TreeProblem[] = [];
  const path: Segment[] = [];
  let nodes = 0;
  // Recursion is safe: depth is checked before every level and bounded by MAX_DOCUMENT_DEPTH.
  const copy = (value: unknown, depth: number): unknown => {
    if (++nodes > MAX_DOCUMENT_NODES) {
      throw new TreeLimit({
        path: [],
        message: `the document holds more than ${MAX_DOCUMENT_NODES} values once YAML aliases are expanded; a tenant file holds a few hundred (repeat values by writing them out, not with aliases)`,
      });
    }
    if (typeof value === 'string') {
      const bad = textProblem(value);
      if (bad) problems.push({ path: [...path], message: bad });
      return value;
    }
    if (value === null || typeof value !== 'object') return value;
    if (depth >= MAX_DOCUMENT_DEPTH) {
      throw new TreeLimit({ path: [...path], message: `nested more than ${MAX_DOCUMENT_DEPTH} levels deep; a tenant document is a few levels deep` });
    }
    if (Array.isArray(value)) {
      const out: unknown[] = new Array<unknown>(value.length);
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        out[i] = copy(value[i], depth + 1);
        path.pop();
      }
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      path.push(key);
      if (key === '__proto__') {
        problems.push({ path: [...path], at: 'key', message: 'field name "__proto__" is not allowed' });
      } else {
        const bad = textProblem(key);
        if (bad) problems.push({ path: [...path], at: 'key', message: `field name ${bad}` });
        out[key] = copy((value as Record<string, unknown>)[key], depth + 1);
      }
      path.pop();
    }
    return out;
  };
  try {
    return { ok: true, value: copy(root, 0), problems };
  } catch (err: unknown) {
    if (err instanceof TreeLimit) return { ok: false, problem: err.problem };
    throw err;
  }
}
