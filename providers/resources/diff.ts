/**
 * Field-level differences between two plain JSON values, as paths (`spec.replicas`,
 * `spec.template.spec.containers[0].image`, `metadata.labels['app.kubernetes.io/name']`).
 * Paths only, never values: a diff of a Secret must not leak what changed to.
 */
import { isRecord } from '../../core/is-record.js';

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function join(prefix: string, key: string): string {
  if (IDENT.test(key)) return prefix ? `${prefix}.${key}` : key;
  return `${prefix}[${JSON.stringify(key).replace(/^"|"$/g, "'")}]`;
}

function walk(a: unknown, b: unknown, path: string, out: string[]): void {
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) {
      out.push(path);
      return;
    }
    for (let i = 0; i < a.length; i++) walk(a[i], b[i], `${path}[${i}]`, out);
    return;
  }
  if (isRecord(a) && isRecord(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const key of keys) walk(a[key], b[key], join(path, key), out);
    return;
  }
  if (a !== b) out.push(path || '.');
}

/** Sorted, de-duplicated field paths at which `a` and `b` differ; empty when equal. */
export function diffPaths(a: unknown, b: unknown): string[] {
  const out: string[] = [];
  walk(a, b, '', out);
  return [...new Set(out)].sort();
}
