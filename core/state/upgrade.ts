import { countGeneration, noteObserved } from '../status/generation.js';
import type { TenantRecord } from './record.js';

type Added = 'generation' | 'generationOf' | 'observed' | 'reconcileRequestedAt' | 'lastHandledReconcileAt';
/** A record as an older tenantd wrote it: without the generation bookkeeping. */
export type StoredRecord = Omit<TenantRecord, Added> & Partial<Pick<TenantRecord, Added>>;

/**
 * Bring a record written by an older tenantd up to date when it is read: its current file becomes
 * generation 1 (observed if its reconcile had ended), and an INVALID tenant loses the phase it never
 * was in (`INVALID/Complete` said a reconcile had completed).
 */
export function upgradeRecord(stored: StoredRecord): TenantRecord {
  if (stored.generation !== undefined) return stored as TenantRecord;
  const record: TenantRecord = { ...stored, generation: 0, generationOf: null, observed: null, reconcileRequestedAt: null, lastHandledReconcileAt: null };
  if (record.status === 'INVALID') record.phase = null;
  if (record.status !== 'PENDING') countGeneration(record, record.desired);
  noteObserved(record);
  return record;
}
