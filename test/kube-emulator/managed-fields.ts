/**
 * Field ownership (metadata.managedFields) and server-side apply.
 *
 * Simplification of structured-merge-diff: a field set holds the *leaf* paths of an object —
 * paths through maps ending at a scalar, a list or an empty map. Lists are atomic (owned and
 * replaced as a whole; the real server merges associative lists such as containers by key).
 * fieldsV1 is rendered in the real trie shape (`{"f:spec":{"f:replicas":{}}}`), so clients that
 * read managedFields see what they would see on a cluster.
 */
import { KubeStatusError } from './errors.js';
import {
  clone,
  deepEqual,
  deletePath,
  getPath,
  isObject,
  setPath,
  type JsonObject,
  type JsonValue,
  type KubeObject,
} from './json.js';
import type { KindInfo } from './kinds.js';

export type FieldPath = readonly string[];
export type Operation = 'Apply' | 'Update';
/** '' is the main resource. */
export type SubresourceScope = '' | 'status';

export class FieldSet {
  private readonly byKey = new Map<string, FieldPath>();

  constructor(paths: Iterable<FieldPath> = []) {
    for (const p of paths) this.add(p);
  }

  add(path: FieldPath): void {
    this.byKey.set(JSON.stringify(path), path);
  }
  has(path: FieldPath): boolean {
    return this.byKey.has(JSON.stringify(path));
  }
  delete(path: FieldPath): void {
    this.byKey.delete(JSON.stringify(path));
  }
  get size(): number {
    return this.byKey.size;
  }
  paths(): FieldPath[] {
    return [...this.byKey.values()];
  }
  equals(other: FieldSet): boolean {
    return this.size === other.size && this.paths().every((p) => other.has(p));
  }

  /** The fieldsV1 trie: `f:<field>` keys, `{}` for a member, `.` when a node is also a member. */
  toFieldsV1(): JsonObject {
    interface Node {
      member: boolean;
      children: Map<string, Node>;
    }
    const root: Node = { member: false, children: new Map() };
    for (const path of this.paths()) {
      let node = root;
      for (const seg of path) {
        let next = node.children.get(seg);
        if (!next) {
          next = { member: false, children: new Map() };
          node.children.set(seg, next);
        }
        node = next;
      }
      node.member = true;
    }
    const render = (node: Node): JsonObject => {
      const out: JsonObject = {};
      if (node.member && node.children.size > 0) out['.'] = {};
      for (const key of [...node.children.keys()].sort()) {
        const childNode = node.children.get(key);
        if (childNode) out[`f:${key}`] = render(childNode);
      }
      return out;
    };
    return render(root);
  }

  static fromFieldsV1(fields: JsonValue | undefined): FieldSet {
    const set = new FieldSet();
    const walk = (node: JsonObject, prefix: string[]): void => {
      const keys = Object.keys(node);
      if (keys.length === 0 && prefix.length > 0) set.add(prefix);
      for (const key of keys) {
        const value = node[key];
        if (key === '.') set.add(prefix);
        else if (key.startsWith('f:') && isObject(value)) walk(value, [...prefix, key.slice(2)]);
      }
    };
    if (isObject(fields)) walk(fields, []);
    return set;
  }
}

/** `.spec.replicas`, `.metadata.labels.app`: how conflict messages print a path. */
export function pathString(path: FieldPath): string {
  return path.map((seg) => `.${seg}`).join('');
}

const SERVER_METADATA = new Set([
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
  'generateName',
]);

/** Whether a path is tracked by field management for writes to `scope` of objects of `info`. */
export function trackedFilter(info: KindInfo, scope: SubresourceScope): (path: FieldPath) => boolean {
  if (scope === 'status') return (path) => path[0] === 'status';
  const topLevel = new Set(['apiVersion', 'kind', ...info.serverOwned]);
  return (path) => {
    if (path.length === 1 && topLevel.has(path[0] ?? '')) return false;
    if (path.length === 2 && path[0] === 'metadata' && SERVER_METADATA.has(path[1] ?? '')) return false;
    return true;
  };
}

/** The leaf paths of `value` that `tracked` accepts. Nulls are not fields. */
export function leafPaths(value: JsonValue | undefined, tracked: (path: FieldPath) => boolean): FieldSet {
  const set = new FieldSet();
  const walk = (node: JsonObject, prefix: string[]): void => {
    for (const [key, v] of Object.entries(node)) {
      const path = [...prefix, key];
      if (v === null || !tracked(path)) continue;
      if (isObject(v) && Object.keys(v).length > 0) walk(v, path);
      else set.add(path);
    }
  };
  if (isObject(value)) walk(value, []);
  return set;
}

export interface ManagedEntry {
  manager: string;
  operation: Operation;
  apiVersion: string;
  time: string;
  subresource: SubresourceScope;
  fields: FieldSet;
}

export function decodeManagedFields(obj: KubeObject | undefined): ManagedEntry[] {
  const raw = obj?.metadata.managedFields;
  if (!Array.isArray(raw)) return [];
  const entries: ManagedEntry[] = [];
  for (const item of raw) {
    if (!isObject(item)) continue;
    const operation = item.operation === 'Apply' ? 'Apply' : 'Update';
    entries.push({
      manager: typeof item.manager === 'string' ? item.manager : '',
      operation,
      apiVersion: typeof item.apiVersion === 'string' ? item.apiVersion : '',
      time: typeof item.time === 'string' ? item.time : '',
      subresource: item.subresource === 'status' ? 'status' : '',
      fields: FieldSet.fromFieldsV1(item.fieldsV1),
    });
  }
  return entries;
}

export function encodeManagedFields(entries: ManagedEntry[]): JsonObject[] {
  return entries
    .filter((e) => e.fields.size > 0)
    .map((e) => ({
      manager: e.manager,
      operation: e.operation,
      apiVersion: e.apiVersion,
      time: e.time,
      fieldsType: 'FieldsV1',
      fieldsV1: e.fields.toFieldsV1(),
      ...(e.subresource ? { subresource: e.subresource } : {}),
    }));
}

function sameIdentity(e: ManagedEntry, manager: string, operation: Operation, scope: SubresourceScope): boolean {
  return e.manager === manager && e.operation === operation && e.subresource === scope;
}

/** How the real server names a manager in conflict messages (fieldmanager/internal/conflict.go). */
function describeManager(e: ManagedEntry): string {
  let s = JSON.stringify(e.manager);
  if (e.subresource) s += ` with subresource ${JSON.stringify(e.subresource)}`;
  if (e.operation === 'Update') s += e.time ? ` using ${e.apiVersion} at ${e.time}` : ` using ${e.apiVersion}`;
  return s;
}

interface Conflict {
  entry: ManagedEntry;
  path: FieldPath;
}

function isEmptyObject(value: JsonValue | undefined): boolean {
  return isObject(value) && Object.keys(value).length === 0;
}

function isPrefix(a: FieldPath, b: FieldPath): boolean {
  return a.length <= b.length && a.every((seg, i) => seg === b[i]);
}

function conflictError(conflicts: Conflict[]): KubeStatusError {
  let message: string;
  const first = conflicts[0];
  if (conflicts.length === 1 && first) {
    message = `Apply failed with 1 conflict: conflict with ${describeManager(first.entry)}: ${pathString(first.path)}`;
  } else {
    const byManager = new Map<string, string[]>();
    for (const c of conflicts) {
      const who = describeManager(c.entry);
      byManager.set(who, [...(byManager.get(who) ?? []), pathString(c.path)]);
    }
    const lines: string[] = [];
    for (const who of [...byManager.keys()].sort()) {
      lines.push(`conflicts with ${who}:`);
      for (const p of byManager.get(who) ?? []) lines.push(`- ${p}`);
    }
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
  }
  return new KubeStatusError(409, 'Conflict', message, {
    causes: conflicts.map((c) => ({
      type: 'FieldManagerConflict',
      message: `conflict with ${describeManager(c.entry)}`,
      field: pathString(c.path),
    })),
  });
}

export interface ApplyRequest {
  info: KindInfo;
  /** The stored object, or undefined when the apply creates it. */
  live: KubeObject | undefined;
  /** The applied configuration, already normalized (quantities, stringData). */
  config: KubeObject;
  manager: string;
  apiVersion: string;
  force: boolean;
  now: string;
}

/**
 * Server-side apply on the main resource: detects conflicts, takes ownership (with force), prunes
 * fields the manager stopped applying that nobody else owns, merges the configuration in and
 * returns the new object with its managedFields (not yet defaulted or validated).
 */
export function serverSideApply(req: ApplyRequest): KubeObject {
  const tracked = trackedFilter(req.info, '');
  const entries = decodeManagedFields(req.live);
  const configFields = leafPaths(req.config, tracked);
  const others = entries.filter((e) => e.subresource === '' && !sameIdentity(e, req.manager, 'Apply', ''));

  // A field conflicts when another manager owns it (or a field inside or around it) and the
  // applied value differs from the live one. Equal values make the applier a co-owner instead.
  const conflicts: Conflict[] = [];
  for (const path of configFields.paths()) {
    const wanted = getPath(req.config, path);
    const current = getPath(req.live, path);
    if (deepEqual(current, wanted)) continue;
    // An empty map in the configuration claims the map, not its members: it merges into the live map.
    if (isEmptyObject(wanted) && isObject(current)) continue;
    for (const entry of others) {
      for (const owned of entry.fields.paths()) {
        if (isPrefix(owned, path) || isPrefix(path, owned)) conflicts.push({ entry, path: owned });
      }
    }
  }
  if (conflicts.length > 0 && !req.force) throw conflictError(dedupe(conflicts));
  for (const c of conflicts) c.entry.fields.delete(c.path);

  const result: KubeObject = req.live ? clone(req.live) : { apiVersion: req.config.apiVersion, kind: req.config.kind, metadata: {} };
  const mine = entries.find((e) => sameIdentity(e, req.manager, 'Apply', ''));
  if (mine) {
    for (const path of mine.fields.paths()) {
      if (configFields.has(path)) continue;
      if (others.some((e) => e.fields.has(path))) continue;
      deletePath(result, path);
    }
  }
  for (const path of configFields.paths()) {
    const value = getPath(req.config, path);
    if (value === undefined) continue;
    if (isEmptyObject(value) && isObject(getPath(result, path))) continue;
    setPath(result, path, clone(value));
  }

  if (mine) {
    if (!mine.fields.equals(configFields)) mine.time = req.now;
    mine.fields = configFields;
    mine.apiVersion = req.apiVersion;
  } else {
    entries.push({ manager: req.manager, operation: 'Apply', apiVersion: req.apiVersion, time: req.now, subresource: '', fields: configFields });
  }
  result.metadata.managedFields = encodeManagedFields(entries);
  return result;
}

function dedupe(conflicts: Conflict[]): Conflict[] {
  const seen = new Set<string>();
  return conflicts.filter((c) => {
    const key = `${c.entry.manager}|${c.entry.operation}|${JSON.stringify(c.path)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export interface UpdateRequest {
  info: KindInfo;
  old: KubeObject | undefined;
  next: KubeObject;
  manager: string;
  apiVersion: string;
  scope: SubresourceScope;
  now: string;
}

/**
 * Ownership for a non-apply write (create, update, patch): the writer takes every field it changed
 * from everyone else, and fields that disappeared leave every set. Sets `next.metadata.managedFields`.
 */
export function recordUpdate(req: UpdateRequest): void {
  const tracked = trackedFilter(req.info, req.scope);
  const entries = decodeManagedFields(req.old);
  const before = leafPaths(req.old, tracked);
  const after = leafPaths(req.next, tracked);
  const changed = after.paths().filter((p) => !before.has(p) || !deepEqual(getPath(req.old, p), getPath(req.next, p)));

  for (const entry of entries) {
    if (entry.subresource !== req.scope) continue;
    // Fields that no longer exist leave every set (an owned empty map may have gained members: it still exists).
    for (const owned of entry.fields.paths()) {
      const value = getPath(req.next, owned);
      if (value === undefined || value === null) entry.fields.delete(owned);
    }
    if (sameIdentity(entry, req.manager, 'Update', req.scope)) continue;
    for (const p of changed) entry.fields.delete(p);
  }
  if (changed.length > 0) {
    const mine = entries.find((e) => sameIdentity(e, req.manager, 'Update', req.scope));
    if (mine) {
      for (const p of changed) mine.fields.add(p);
      mine.time = req.now;
      mine.apiVersion = req.apiVersion;
    } else {
      entries.push({
        manager: req.manager,
        operation: 'Update',
        apiVersion: req.apiVersion,
        time: req.now,
        subresource: req.scope,
        fields: new FieldSet(changed),
      });
    }
  }
  req.next.metadata.managedFields = encodeManagedFields(entries);
}
