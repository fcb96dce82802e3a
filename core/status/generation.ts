import type { SeenDesired, TenantRecord } from '../state/record.js';
import { reconcileEnded } from './conditions.js';

/** The identity of a removed file: removing it is a change of the desired state (Kubernetes bumps generation on delete too). */
export const ABSENT = 'absent';

/**
 * What one generation of a tenant file is. For a valid file, its spec digest: `spec` plus
 * `metadata.name` and `labels`, which tenantd renders into the tenant's namespace, so a label edit is
 * work to reconcile and counts; reformatting, comments or key order change nothing and do not count.
 * A file that does not validate has no digest: each edit of it counts (`invalid:<blob id>`), since
 * tenantd cannot tell its spec from its metadata.
 */
export function specIdentity(desired: Pick<SeenDesired, 'specDigest' | 'blobOid'> | null): string {
  if (!desired) return ABSENT;
  return desired.specDigest ?? `invalid:${desired.blobOid}`;
}

/** The generation of a desired state with `identity`, given the record's count (one formula for the daemon and the API). */
export function generationFor(record: Pick<TenantRecord, 'generation' | 'generationOf'> | undefined, identity: string): number {
  if (!record) return identity === ABSENT ? 0 : 1;
  return identity === record.generationOf ? record.generation : record.generation + 1;
}

/** Count the desired state a reconcile is about to act on: a changed identity is the next generation. */
export function countGeneration(record: TenantRecord, desired: Pick<SeenDesired, 'specDigest' | 'blobOid'> | null): void {
  const identity = specIdentity(desired);
  record.generation = generationFor(record, identity);
  record.generationOf = identity;
}

/**
 * On every save: once the reconcile of the current generation has ended — Ready, or Stalled (a
 * person must act) — that generation is observed. A retry, a wait, a suspend or a reconcile still
 * walking its phases leaves observedGeneration behind, so `observedGeneration < generation` reads
 * as "in progress", exactly as kstatus reads it; a stalled generation is observed so kstatus reads
 * Stalled=True as failed rather than as still in progress.
 */
export function noteObserved(record: TenantRecord): void {
  if (record.generation > 0 && reconcileEnded(record)) {
    record.observed = { generation: record.generation, commit: record.desired?.commit ?? null, specDigest: record.desired?.specDigest ?? null };
  }
}
