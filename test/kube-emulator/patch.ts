/** JSON merge patch (RFC 7386), strategic merge patch (as merge) and JSON patch (RFC 6902). */
import { KubeStatusError } from './errors.js';
import { clone, deepEqual, isObject, type JsonObject, type JsonValue } from './json.js';

export function mergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/**
 * Strategic merge patch, simplified to a merge patch: lists are replaced rather than merged by
 * their patchMergeKey, and `$patch`/`$setElementOrder`/`$retainKeys` directives are dropped.
 */
export function strategicMergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  return mergePatch(target, stripDirectives(patch));
}

function stripDirectives(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(stripDirectives);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) if (!k.startsWith('$')) out[k] = stripDirectives(v);
  return out;
}

function patchError(message: string): KubeStatusError {
  return new KubeStatusError(422, 'Invalid', `the server rejected our request due to an error in our request: ${message}`);
}

function parsePointer(pointer: unknown): string[] {
  if (typeof pointer !== 'string' || (pointer !== '' && !pointer.startsWith('/'))) {
    throw patchError(`invalid JSON pointer ${JSON.stringify(pointer)}`);
  }
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

interface Slot {
  parent: JsonObject | JsonValue[];
  key: string;
}

function locate(doc: JsonValue, path: string[]): Slot {
  if (path.length === 0) throw patchError('operations on the document root are not supported');
  let cur: JsonValue = doc;
  for (const seg of path.slice(0, -1)) {
    const next: JsonValue | undefined = Array.isArray(cur) ? cur[Number(seg)] : isObject(cur) ? cur[seg] : undefined;
    if (next === undefined) throw patchError(`doc is missing path: "/${path.join('/')}"`);
    cur = next;
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw patchError(`doc is missing path: "/${path.join('/')}"`);
  return { parent: cur, key: path[path.length - 1] ?? '' };
}

function read(slot: Slot): JsonValue | undefined {
  return Array.isArray(slot.parent) ? slot.parent[Number(slot.key)] : slot.parent[slot.key];
}

function remove(slot: Slot, path: string[]): JsonValue {
  const existing = read(slot);
  if (existing === undefined) throw patchError(`unable to remove nonexistent key: ${slot.key}: missing value (path /${path.join('/')})`);
  if (Array.isArray(slot.parent)) slot.parent.splice(Number(slot.key), 1);
  else delete slot.parent[slot.key];
  return existing;
}

function add(slot: Slot, value: JsonValue, path: string[]): void {
  if (Array.isArray(slot.parent)) {
    const index = slot.key === '-' ? slot.parent.length : Number(slot.key);
    if (!Number.isInteger(index) || index < 0 || index > slot.parent.length) throw patchError(`index out of bounds at /${path.join('/')}`);
    slot.parent.splice(index, 0, value);
  } else {
    slot.parent[slot.key] = value;
  }
}

export function jsonPatch(target: JsonValue, operations: JsonValue): JsonValue {
  if (!Array.isArray(operations)) throw patchError('a JSON patch must be an array of operations');
  const doc = clone(target);
  for (const op of operations) {
    if (!isObject(op) || typeof op.op !== 'string') throw patchError('every JSON patch operation needs an "op"');
    const path = parsePointer(op.path);
    switch (op.op) {
      case 'add':
        add(locate(doc, path), clone(op.value ?? null), path);
        break;
      case 'remove':
        remove(locate(doc, path), path);
        break;
      case 'replace': {
        const slot = locate(doc, path);
        if (read(slot) === undefined) throw patchError(`replace operation does not apply: doc is missing key: /${path.join('/')}`);
        if (Array.isArray(slot.parent)) slot.parent[Number(slot.key)] = clone(op.value ?? null);
        else slot.parent[slot.key] = clone(op.value ?? null);
        break;
      }
      case 'move':
      case 'copy': {
        const from = parsePointer(op.from);
        const source = locate(doc, from);
        const value = op.op === 'move' ? remove(source, from) : clone(read(source) ?? null);
        add(locate(doc, path), value, path);
        break;
      }
      case 'test': {
        const actual = path.length === 0 ? doc : read(locate(doc, path));
        if (!deepEqual(actual, op.value ?? null)) throw patchError(`testing value /${path.join('/')} failed: test failed`);
        break;
      }
      default:
        throw patchError(`unexpected kind: ${op.op}`);
    }
  }
  return doc;
}
