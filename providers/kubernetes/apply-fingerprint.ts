/**
 * A fingerprint of what tenantd's server-side apply left on an object: its uid and generation,
 * the fields tenantd's field manager owns and their values. Stored per object in the inventory
 * after each apply.
 *
 * Why: deciding "unchanged" by comparing the object before and after an apply costs a GET per
 * object on every pass. The apply's response alone is enough when the last response's fingerprint
 * is known: a no-op apply leaves tenantd's fields and values as they were, and controllers writing
 * status, annotations or fields tenantd does not own do not touch them. The generation catches a
 * spec field another manager changed and tenantd took back with force (same values as last time,
 * but two spec writes since) on kinds that keep one (workloads, PDBs, Ingresses); a uid that moved
 * means the object was re-created since the last pass. The entry's `time` is left out: before
 * Kubernetes 1.27 every apply moves it, changed or not.
 */
import { canonicalJson, sha256Hex } from '../../core/canonical.js';
import type { LiveObject } from './client.js';
import { fieldsOwnedBy, ownedValues } from './owned-fields.js';
import { isRecord } from '../../core/is-record.js';

export function applyFingerprint(obj: LiveObject, manager: string): string {
  const entries = (Array.isArray(obj.metadata.managedFields) ? (obj.metadata.managedFields as unknown[]) : [])
    .filter((e): e is Record<string, unknown> => isRecord(e) && e.manager === manager && e.operation === 'Apply')
    .map((e) => ({ apiVersion: e.apiVersion ?? null, fieldsV1: e.fieldsV1 ?? null, subresource: e.subresource ?? null }))
    .map((e) => canonicalJson(e))
    .sort();
  const fields = fieldsOwnedBy(obj, manager);
  const owned = fields ? ownedValues(obj, fields) : null;
  // Short is enough: it is compared with the same object's previous fingerprint, never across objects.
  return sha256Hex(canonicalJson({ entries, generation: obj.metadata.generation ?? null, owned, uid: obj.metadata.uid ?? null })).slice(0, 32);
}
