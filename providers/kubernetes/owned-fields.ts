/**
 * What tenantd owns in a live object, from server-side apply's `managedFields` (fieldsV1), and
 * whether those fields changed.
 *
 * Why not the resourceVersion: on a real cluster controllers write to objects all the time (the
 * StatefulSet controller its status, the PV binder a claim's annotations and volumeName), so "the
 * resourceVersion moved" says nothing about what tenantd's apply did. The only fields tenantd's
 * apply can change are the ones its field manager owns before or after it; comparing the object on
 * exactly those fields makes an unchanged re-apply report "unchanged" whatever else wrote to it.
 *
 * fieldsV1 (https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management):
 * `f:<name>` a field of a map, `k:<json>` a list element by its key fields, `v:<json>` a set element
 * by value, `i:<n>` a list element by index, `.` the node itself; `{}` marks an owned leaf.
 */
import { canonicalJson } from '../../core/canonical.js';
import { diffPaths } from '../resources/diff.js';
import type { LiveObject } from './client.js';
import { isRecord } from '../../core/is-record.js';

export interface FieldSet {
  [key: string]: FieldSet;
}

const asFieldSet = (v: unknown): FieldSet => (isRecord(v) ? (v as FieldSet) : {});

/** The fields `manager` owns through server-side apply (operation Apply), merged over subresources of the main object; undefined when it owns none. */
export function fieldsOwnedBy(obj: LiveObject | null, manager: string): FieldSet | undefined {
  const entries = obj && Array.isArray(obj.metadata.managedFields) ? (obj.metadata.managedFields as unknown[]) : [];
  let owned: FieldSet | undefined;
  for (const entry of entries) {
    if (!isRecord(entry) || entry.manager !== manager || entry.operation !== 'Apply') continue;
    // The status subresource is never written by tenantd's apply.
    if (typeof entry.subresource === 'string' && entry.subresource !== '') continue;
    owned = unionFields(owned ?? {}, asFieldSet(entry.fieldsV1));
  }
  return owned;
}

/** Every field owned in either set. */
export function unionFields(a: FieldSet, b: FieldSet): FieldSet {
  const out: FieldSet = {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[key];
    const y = b[key];
    out[key] = x && y ? unionFields(x, y) : (x ?? y ?? {});
  }
  return out;
}

const isLeaf = (fields: FieldSet): boolean => Object.keys(fields).every((k) => k === '.');

function parseKey(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

function matchesKey(element: unknown, key: unknown): boolean {
  if (!isRecord(element) || !isRecord(key)) return false;
  return Object.entries(key).every(([k, v]) => canonicalJson(element[k]) === canonicalJson(v));
}

/** The part of `value` that `fields` names: maps keep owned keys, lists owned elements in their order. */
export function projectFields(value: unknown, fields: FieldSet): unknown {
  if (isLeaf(fields)) return value;
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, sub] of Object.entries(fields)) {
      if (!key.startsWith('f:')) continue;
      const name = key.slice(2);
      if (Object.prototype.hasOwnProperty.call(value, name)) out[name] = projectFields(value[name], sub);
    }
    return out;
  }
  if (Array.isArray(value)) {
    const selectors = Object.entries(fields).flatMap(([key, sub]) => {
      if (key.startsWith('k:')) {
        const k = parseKey(key.slice(2));
        return [{ match: (e: unknown) => matchesKey(e, k), sub }];
      }
      if (key.startsWith('v:')) {
        const v = canonicalJson(parseKey(key.slice(2)));
        return [{ match: (e: unknown) => canonicalJson(e) === v, sub }];
      }
      if (key.startsWith('i:')) {
        const n = Number(key.slice(2));
        return [{ match: (_e: unknown, i: number) => i === n, sub }];
      }
      return [];
    });
    const out: unknown[] = [];
    value.forEach((element, i) => {
      const selector = selectors.find((s) => s.match(element, i));
      if (selector) out.push(projectFields(element, selector.sub));
    });
    return out;
  }
  return value;
}

/**
 * The field paths (never values) that differ between `before` and `after` among the fields
 * `manager` owns in either; empty when its fields are the same. Without any ownership on either
 * side (an object no server-side apply wrote), everything but status and server metadata counts.
 */
export function ownedFieldChanges(before: LiveObject, after: LiveObject, manager: string, fallback: (a: LiveObject, b: LiveObject) => string[]): string[] {
  const a = fieldsOwnedBy(before, manager);
  const b = fieldsOwnedBy(after, manager);
  if (!a && !b) return fallback(before, after);
  const fields = unionFields(a ?? {}, b ?? {});
  return diffPaths(ownedValues(before, fields), ownedValues(after, fields));
}

/** The values of `fields` in `obj`, without managedFields: metadata the server keeps, never a field of the object. */
export function ownedValues(obj: LiveObject, fields: FieldSet): unknown {
  const projected = projectFields(obj, fields);
  if (isRecord(projected) && isRecord(projected.metadata)) delete projected.metadata.managedFields;
  return projected;
}
