/** Label selectors (`app=web,tier in (a,b),!legacy`) and the few field selectors lists support. */
import { badRequest } from './errors.js';
import { isObject, type KubeObject } from './json.js';

type Requirement =
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'doesnotexist'; key: string };

export type Selector = (obj: KubeObject) => boolean;

function splitTopLevel(input: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of input) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

function parseRequirement(raw: string): Requirement {
  let m = /^!\s*([^\s=!(),]+)$/.exec(raw);
  if (m?.[1]) return { op: 'doesnotexist', key: m[1] };
  m = /^([^\s=!(),]+)\s+(in|notin)\s+\(([^()]*)\)$/.exec(raw);
  if (m?.[1] && m[2] && m[3] !== undefined) {
    const values = m[3].split(',').map((v) => v.trim()).filter((v) => v.length > 0);
    return { op: m[2] === 'in' ? 'in' : 'notin', key: m[1], values };
  }
  m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(raw);
  if (m?.[1] && m[2] && m[3] !== undefined) return { op: m[2] === '!=' ? 'notin' : 'in', key: m[1], values: [m[3]] };
  m = /^([^\s=!(),]+)$/.exec(raw);
  if (m?.[1]) return { op: 'exists', key: m[1] };
  throw badRequest(`unable to parse requirement: found '${raw}', expected: identifier`);
}

export function parseLabelSelector(input: string | undefined): Selector {
  if (!input) return () => true;
  const requirements = splitTopLevel(input).map(parseRequirement);
  return (obj) => {
    const raw = obj.metadata.labels;
    const labels = isObject(raw) ? raw : {};
    return requirements.every((r) => {
      const has = Object.prototype.hasOwnProperty.call(labels, r.key);
      const value = labels[r.key];
      switch (r.op) {
        case 'exists':
          return has;
        case 'doesnotexist':
          return !has;
        case 'in':
          return has && typeof value === 'string' && r.values.includes(value);
        case 'notin':
          return !has || typeof value !== 'string' || !r.values.includes(value);
      }
    });
  };
}

/** Field selectors: metadata.name and metadata.namespace, with `=`, `==` and `!=`. */
export function parseFieldSelector(input: string | undefined): Selector {
  if (!input) return () => true;
  const checks = splitTopLevel(input).map((raw) => {
    const m = /^([^\s=!]+)\s*(==|=|!=)\s*(.*)$/.exec(raw);
    if (!m?.[1] || !m[2] || m[3] === undefined) throw badRequest(`invalid selector: '${input}'; can't understand '${raw}'`);
    const field = m[1];
    if (field !== 'metadata.name' && field !== 'metadata.namespace') throw badRequest(`field label not supported: ${field}`);
    const negate = m[2] === '!=';
    const wanted = m[3];
    const key = field === 'metadata.name' ? 'name' : 'namespace';
    return (obj: KubeObject) => (obj.metadata[key] === wanted) !== negate;
  });
  return (obj) => checks.every((check) => check(obj));
}

/** Whether a `matchLabels`/`matchExpressions` LabelSelector object selects `labels`. */
export function labelSelectorMatches(selector: unknown, labels: unknown): boolean {
  if (!isObject(selector) || !isObject(labels)) return false;
  const matchLabels = isObject(selector.matchLabels) ? selector.matchLabels : {};
  for (const [k, v] of Object.entries(matchLabels)) if (labels[k] !== v) return false;
  const expressions = Array.isArray(selector.matchExpressions) ? selector.matchExpressions : [];
  for (const e of expressions) {
    if (!isObject(e) || typeof e.key !== 'string') return false;
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const value = labels[e.key];
    const values = Array.isArray(e.values) ? e.values : [];
    const inValues = typeof value === 'string' && values.includes(value);
    if (e.operator === 'In' && !(has && inValues)) return false;
    if (e.operator === 'NotIn' && has && inValues) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}
