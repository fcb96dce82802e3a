/**
 * Comparing live objects: the field paths (never values) at which two server-side views of an object
 * differ, ignoring what the server alone maintains.
 */
import { diffPaths } from '../resources/diff.js';
import type { LiveObject } from './client.js';
import { isRecord } from '../../core/is-record.js';

/** Metadata the server maintains: never a change tenantd made or could make. */
const VOLATILE_METADATA = ['managedFields', 'resourceVersion', 'generation', 'uid', 'creationTimestamp', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds'];

/** A copy without status and server-maintained metadata. */
export function comparable(obj: LiveObject): Record<string, unknown> {
  const { status: _status, metadata, ...rest } = obj;
  const meta: Record<string, unknown> = { ...metadata };
  for (const k of VOLATILE_METADATA) delete meta[k];
  return { ...rest, metadata: meta };
}

/** Paths at which the object would change if `after` (e.g. a dry-run apply result) replaced `live`. */
export function changedPaths(live: LiveObject, after: LiveObject): string[] {
  return diffPaths(comparable(live), comparable(after));
}

/**
 * Paths of `desired` whose value differs at the same path in `live` (fields `live` has and `desired`
 * does not are not compared). Arrays are compared element by element when lengths match.
 */
export function projectedDiff(desired: unknown, live: unknown): string[] {
  return diffPaths(projectOnto(desired, live), desired);
}

/** `live` restricted to the shape of `desired`. */
function projectOnto(desired: unknown, live: unknown): unknown {
  if (isRecord(desired) && isRecord(live)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(desired)) out[k] = projectOnto(desired[k], live[k]);
    return out;
  }
  if (Array.isArray(desired) && Array.isArray(live) && desired.length === live.length) {
    return desired.map((d, i) => projectOnto(d, live[i]));
  }
  return live;
}
