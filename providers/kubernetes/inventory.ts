/**
 * The per-tenant inventory: what tenantd applied, per apply group, stored in the cluster itself as
 * the ConfigMap `tenantd-inventory` in the tenant's namespace. It survives daemon restarts and the
 * loss of the data directory, and lives and dies with the namespace.
 *
 * Pruning deletes an object only when it is in the inventory, no longer rendered, AND carries
 * tenantd's `managed-by` and `tenant-id` labels: nothing tenantd did not create is ever deleted.
 */
import { canonicalJson } from '../../core/canonical.js';
import { stalled } from '../../core/errors.js';
import { APPLY_GROUPS, LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_PART_OF, LABEL_TENANT_ID, MANAGED_BY, refKey } from '../resources/renderer.js';
import type { ApplyGroup, KubeObject, KubeObjectRef } from '../resources/types.js';
import type { LiveObject } from './client.js';
import { E_INVENTORY_CORRUPT } from './errors.js';

export const INVENTORY_NAME = 'tenantd-inventory';
export const INVENTORY_VERSION = '1';
const KEY_VERSION = 'version';
const KEY_FINGERPRINTS = 'fingerprints';

export type Inventory = Record<ApplyGroup, KubeObjectRef[]>;

/**
 * identityKey → the fingerprint of tenantd's last apply of that object (apply-fingerprint.ts). A
 * cache, not a record: a missing or unreadable entry only costs a read of the object.
 */
export type Fingerprints = Record<string, string>;

export const emptyInventory = (): Inventory => ({ Apply: [], Deploy: [], Configure: [] });

export const inventoryRef = (namespace: string): KubeObjectRef => ({ apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace });

function isRef(v: unknown): v is KubeObjectRef {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.apiVersion === 'string' &&
    typeof r.kind === 'string' &&
    typeof r.name === 'string' &&
    (r.namespace === undefined || typeof r.namespace === 'string')
  );
}

/**
 * An object's identity whatever version it is read in: `<group>/<kind>/<namespace>/<name>` (the
 * core group is empty). The same PodDisruptionBudget is `policy/v1beta1` on one cluster and
 * `policy/v1` after an upgrade; comparing refs by apiVersion would prune the object just applied.
 */
export function identityKey(ref: KubeObjectRef): string {
  const slash = ref.apiVersion.indexOf('/');
  const group = slash === -1 ? '' : ref.apiVersion.slice(0, slash);
  return `${group}/${ref.kind}/${ref.namespace ?? ''}/${ref.name}`;
}

/** Sorted by refKey and de-duplicated by identity (the later ref wins), so the stored form is deterministic. */
export function normalizeRefs(refs: readonly KubeObjectRef[]): KubeObjectRef[] {
  const byIdentity = new Map<string, KubeObjectRef>();
  for (const r of refs) {
    const ref: KubeObjectRef = { apiVersion: r.apiVersion, kind: r.kind, name: r.name };
    if (r.namespace) ref.namespace = r.namespace;
    byIdentity.delete(identityKey(ref));
    byIdentity.set(identityKey(ref), ref);
  }
  return [...byIdentity.values()].sort((a, b) => (refKey(a) < refKey(b) ? -1 : refKey(a) > refKey(b) ? 1 : 0));
}

/** The inventory held by a live ConfigMap. A ConfigMap that does not parse is an error that names it. */
export function parseInventory(cm: LiveObject, tenantId: string): Inventory {
  const data = (cm.data ?? {}) as Record<string, unknown>;
  const inv = emptyInventory();
  for (const group of APPLY_GROUPS) {
    const raw = data[group];
    if (raw === undefined) continue;
    let parsed: unknown;
    try {
      parsed = typeof raw === 'string' ? JSON.parse(raw) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed) || !parsed.every(isRef)) {
      throw stalled(E_INVENTORY_CORRUPT, `ConfigMap ${cm.metadata.namespace ?? ''}/${INVENTORY_NAME} key ${group} is not a list of object references; restore it or delete it (tenantd then stops pruning what it lists)`, {
        tenantId,
        group,
      });
    }
    inv[group] = normalizeRefs(parsed);
  }
  return inv;
}

/** The fingerprints a live inventory ConfigMap holds; {} when it holds none or they do not parse. */
export function parseFingerprints(cm: LiveObject): Fingerprints {
  const raw = ((cm.data ?? {}) as Record<string, unknown>)[KEY_FINGERPRINTS];
  if (typeof raw !== 'string') return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return {};
  }
}

/** Whether two fingerprint maps hold the same entries. */
export function sameFingerprints(a: Fingerprints, b: Fingerprints): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** The ConfigMap that stores an inventory (and the fingerprints of what it lists). */
export function inventoryObject(tenantId: string, namespace: string, inv: Inventory, fingerprints: Fingerprints = {}): KubeObject {
  const data: Record<string, string> = { [KEY_VERSION]: INVENTORY_VERSION };
  for (const group of APPLY_GROUPS) data[group] = canonicalJson(normalizeRefs(inv[group]));
  // Only objects the inventory lists: a pruned object's fingerprint goes with it.
  const listed = new Set(APPLY_GROUPS.flatMap((g) => inv[g].map(identityKey)));
  const kept = Object.fromEntries(Object.entries(fingerprints).filter(([k]) => listed.has(k)));
  if (Object.keys(kept).length > 0) data[KEY_FINGERPRINTS] = canonicalJson(kept);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: INVENTORY_NAME,
      namespace,
      labels: {
        [LABEL_COMPONENT]: 'inventory',
        [LABEL_MANAGED_BY]: MANAGED_BY,
        [LABEL_PART_OF]: tenantId,
        [LABEL_TENANT_ID]: tenantId,
      },
      annotations: { 'tenantd.io/description': 'What tenantd applied to this namespace, per apply group; used to prune. Do not edit.' },
    },
    data,
  };
}

export function sameInventory(a: Inventory, b: Inventory): boolean {
  return APPLY_GROUPS.every((g) => canonicalJson(normalizeRefs(a[g])) === canonicalJson(normalizeRefs(b[g])));
}

/** Whether `manager` has applied (server-side apply) to the object: tenantd wrote it before. */
export function appliedBy(obj: LiveObject, manager: string): boolean {
  const entries = Array.isArray(obj.metadata.managedFields) ? (obj.metadata.managedFields as unknown[]) : [];
  return entries.some((e) => e !== null && typeof e === 'object' && (e as { manager?: unknown }).manager === manager && (e as { operation?: unknown }).operation === 'Apply');
}

/** Whether a live object carries tenantd's ownership labels for this tenant. */
export function ownedBy(obj: LiveObject | KubeObject, tenantId: string): boolean {
  const labels = obj.metadata.labels ?? {};
  return labels[LABEL_MANAGED_BY] === MANAGED_BY && labels[LABEL_TENANT_ID] === tenantId;
}
