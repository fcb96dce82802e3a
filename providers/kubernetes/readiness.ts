/**
 * Readiness of the objects Verify waits for, read from what the controllers report in `status`
 * (the same rules as kstatus / `kubectl rollout status`):
 *
 * - Deployment: the controller observed the latest generation, every replica is updated, ready and
 *   available, and no old replica is left; Progressing=False (ProgressDeadlineExceeded) is a failure.
 * - StatefulSet: latest generation observed, every replica ready and updated, current revision =
 *   update revision; a Progressing=False condition (some controllers set one) is a failure.
 * - PersistentVolumeClaim: phase Bound.
 */
import type { LiveObject } from './client.js';

export interface Readiness {
  ready: boolean;
  /** `web 1/3 ready`, `claim data-postgres-0 Pending`, … */
  summary: string;
  /** For workloads: ready and desired replicas. */
  readyReplicas?: number;
  desiredReplicas?: number;
  /** A failed rollout (terminal until the spec changes). */
  failure?: { reason: string; message: string };
}

function rec(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

const num = (v: unknown, fallback = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);

function condition(status: Record<string, unknown>, type: string): Record<string, unknown> | undefined {
  const list = Array.isArray(status.conditions) ? status.conditions : [];
  return list.map(rec).find((c) => c.type === type);
}

export function workloadReadiness(obj: LiveObject): Readiness {
  const name = obj.metadata.name;
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  const desired = num(spec.replicas, 1);
  const readyReplicas = num(status.readyReplicas);
  const generation = num(obj.metadata.generation, 0);
  const observed = num(status.observedGeneration, -1);
  const base = { readyReplicas, desiredReplicas: desired };
  if (obj.metadata.deletionTimestamp) return { ...base, ready: false, summary: `${name} is being deleted` };
  if (observed < generation) return { ...base, ready: false, summary: `${name} ${readyReplicas}/${desired} ready (waiting for the controller to observe generation ${generation})` };
  const progressing = condition(status, 'Progressing');
  if (progressing && progressing.status === 'False') {
    const reason = typeof progressing.reason === 'string' ? progressing.reason : 'RolloutFailed';
    const message = typeof progressing.message === 'string' ? progressing.message : '';
    return { ...base, ready: false, summary: `${name} rollout failed: ${reason}`, failure: { reason, message } };
  }
  const updated = num(status.updatedReplicas);
  let ready = readyReplicas >= desired && updated >= desired;
  if (obj.kind === 'Deployment') {
    const total = num(status.replicas);
    const available = num(status.availableReplicas);
    ready = ready && available >= desired && total <= desired;
  } else {
    const current = status.currentRevision;
    const update = status.updateRevision;
    if (typeof current === 'string' && typeof update === 'string' && current !== update) ready = false;
  }
  return { ...base, ready, summary: `${name} ${readyReplicas}/${desired} ready` };
}

export function claimReadiness(obj: LiveObject): Readiness {
  const phase = rec(obj.status).phase;
  const p = typeof phase === 'string' ? phase : 'Pending';
  return { ready: p === 'Bound', summary: `claim ${obj.metadata.name} ${p}` };
}

/** The first address an Ingress's load balancer reports (IP or hostname), if any. */
export function ingressAddress(obj: LiveObject): string | undefined {
  const lb = rec(rec(obj.status).loadBalancer);
  const entries = Array.isArray(lb.ingress) ? lb.ingress.map(rec) : [];
  for (const e of entries) {
    if (typeof e.hostname === 'string' && e.hostname) return e.hostname;
    if (typeof e.ip === 'string' && e.ip) return e.ip;
  }
  return undefined;
}
