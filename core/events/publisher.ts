import { printable } from '../printable.js';
import type { ReconciliationEvent, ReconciliationEventInput } from './events.js';

export type EventSubscriber = (event: ReconciliationEvent) => void;

/**
 * Fans typed reconciliation events out to any number of subscribers (logs, SSE, metrics).
 * A subscriber that throws is reported to `onSubscriberError` and never stops the others
 * or the reconcile that published the event.
 */
export class ReconciliationEventPublisher {
  private readonly subscribers = new Set<EventSubscriber>();

  constructor(
    private readonly now: () => Date = () => new Date(),
    private readonly onSubscriberError: (err: unknown) => void = () => undefined,
  ) {}

  subscribe(fn: EventSubscriber): () => void {
    this.subscribers.add(fn);
    return () => {
      this.subscribers.delete(fn);
    };
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  publish(input: ReconciliationEventInput): ReconciliationEvent {
    const event = { ...input, time: this.now().toISOString() } as ReconciliationEvent;
    for (const fn of this.subscribers) {
      try {
        fn(event);
      } catch (err: unknown) {
        this.onSubscriberError(err);
      }
    }
    return event;
  }
}

export type LogLevel = 'error' | 'warn' | 'info';

/**
 * How loud an event is in a log: failures are errors; a tenant turned INVALID and a held
 * deletion (any event type ending in `Held`) are warnings a person should look at; the rest is info.
 */
export function levelOf(event: ReconciliationEvent): LogLevel {
  if (event.type.endsWith('Failed')) return 'error';
  if (event.type.endsWith('Held') || (event.type === 'StatusChanged' && event.to === 'INVALID')) return 'warn';
  return 'info';
}

const short = (sha: string | null): string => (sha ? sha.slice(0, 12) : '-');

/** One sentence saying what happened, for a log line's `msg`. */
export function messageOf(event: ReconciliationEvent): string {
  switch (event.type) {
    case 'SourceFetched':
      return `source at ${short(event.commit)}: ${event.changedTenants} tenant(s) changed`;
    case 'SourceUnchanged':
      return `source unchanged at ${short(event.commit)}`;
    case 'ReconcileStarted':
      return `${event.tenantId}: ${event.operation} started (${event.trigger})`;
    case 'PhaseStarted':
      return `${event.tenantId}: ${event.status} ${event.phase} started`;
    case 'PhaseCompleted':
      return `${event.tenantId}: ${event.status} ${event.phase} done: ${event.summary}`;
    case 'PhaseFailed':
      return `${event.tenantId}: ${event.phase} failed: ${event.code} ${event.message}${event.nextAttemptAt ? ` (retry ${event.attempt} at ${event.nextAttemptAt})` : ' (stalled)'}`;
    case 'PhaseProgress':
      return `${event.tenantId}: ${event.phase}: ${event.message}`;
    case 'DriftDetected':
      return `${event.tenantId}: drift in ${event.changes.length} object(s)${event.corrected ? ', corrected' : ', reported'}`;
    case 'StatusChanged':
      return `${event.tenantId}: ${event.from ?? '-'} -> ${event.to} (${event.reason})`;
    case 'StatusCommitted':
      return `status of ${event.tenants} tenant(s) committed as ${short(event.commit)}`;
    case 'TenantCommitted':
      return `${event.action} committed as ${short(event.commit)} (request ${event.requestId})`;
    case 'RepositoryPacked':
      return `repository packed: ${event.looseBefore} loose objects before, ${event.looseAfter} after`;
    case 'BookkeepingFailed':
      return `${event.tenantId}: ${event.code} ${event.message}${event.nextAttemptAt ? ` (retry ${event.attempt} at ${event.nextAttemptAt})` : ' (stalled)'}`;
    case 'SourceFailed':
    case 'StatusCommitFailed':
    case 'RepositoryPackFailed':
      return `${event.type.replace(/Failed$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()} failed: ${event.code} ${event.message}`;
    case 'DriftCheckFailed':
      return `${event.tenantId}: drift check failed: ${event.code} ${event.message}`;
    case 'StateRecordDiscarded':
      return `${event.tenantId}: record ${event.file} unreadable (${event.message}), moved to ${event.movedTo}; rebuilt by the next reconcile`;
    case 'TenantFilesSkipped':
      return `${event.files.length} entr${event.files.length === 1 ? 'y' : 'ies'} under tenants/ at ${short(event.commit)} not read as tenant files`;
    case 'DeletionHeld':
      return `deletions held at ${short(event.commit)}: ${event.message}`;
    case 'DeletionHoldEnded':
      return `deletion hold at ${short(event.commit)} ended: ${event.how}${event.by ? ` by ${event.by}` : ''} (${event.tenants} tenant(s))`;
    case 'ApprovalRequired':
      return `${event.tenantId}: plan ${event.planDigest} awaits approval`;
    case 'PlanApproved':
      return `${event.tenantId}: plan ${event.planDigest} approved by ${event.by}`;
    default:
      return (event as { type: string }).type;
  }
}

/** The default subscriber: one JSON line per event, with `level` and `msg` first. */
export function jsonLineSubscriber(write: (line: string) => void): EventSubscriber {
  return (event) => {
    // A poll that found nothing new every few seconds is noise in a log; it still reaches metrics.
    if (event.type === 'SourceUnchanged') return;
    write(`${JSON.stringify({ level: levelOf(event), msg: messageOf(event), ...event })}\n`);
  };
}

/** A human-readable line per tenant phase, for the embedded default's console. */
export function humanLineSubscriber(write: (line: string) => void): EventSubscriber {
  return (event) => {
    const t = event.time.slice(11, 19);
    switch (event.type) {
      case 'SourceFetched':
        write(`${t} source  ${event.commit.slice(0, 8)}  ${event.changedTenants} tenant(s) changed\n`);
        break;
      case 'SourceFailed':
        write(`${t} source  FAILED ${event.code}: ${printable(event.message)}\n`);
        break;
      case 'StateRecordDiscarded':
        write(`${t} state   ${printable(event.file)} could not be read (${printable(event.message)}); moved to ${printable(event.movedTo)}, ${event.tenantId} is rebuilt from the repository\n`);
        break;
      case 'TenantFilesSkipped':
        for (const f of event.files) write(`${t} source  skipped ${printable(f.path)}: ${f.reason}\n`);
        break;
      case 'PhaseStarted':
        write(`${t} ${event.tenantId.padEnd(20)} ${event.status.padEnd(14)} ${event.phase}\n`);
        break;
      case 'PhaseFailed':
        write(
          `${t} ${event.tenantId.padEnd(20)} FAILED         ${event.phase}: ${event.code} ${printable(event.message)}` +
            `${event.nextAttemptAt ? ` (retry ${event.attempt} at ${event.nextAttemptAt.slice(11, 19)})` : ''}\n`,
        );
        break;
      case 'StatusChanged':
        if (['ACTIVE', 'DEPROVISIONED', 'INVALID', 'SUSPENDED'].includes(event.to)) {
          write(`${t} ${event.tenantId.padEnd(20)} ${event.to.padEnd(14)} ${event.reason}\n`);
        }
        break;
      case 'BookkeepingFailed':
        write(`${t} ${event.tenantId.padEnd(20)} FAILED         ${messageOf(event).slice(event.tenantId.length + 2)}\n`);
        break;
      case 'StatusCommitted':
        write(`${t} status  committed ${event.commit.slice(0, 8)} (${event.tenants} tenant(s))\n`);
        break;
      case 'StatusCommitFailed':
        write(`${t} status  commit FAILED ${event.code}: ${printable(event.message)}\n`);
        break;
      case 'RepositoryPacked':
        if (event.looseAfter < event.looseBefore) write(`${t} git     packed ${event.looseBefore - event.looseAfter} loose objects (${event.durationMs} ms)\n`);
        break;
      case 'DeletionHeld':
        write(`${t} source  HELD ${event.tenants} deletion(s): ${event.message}\n`);
        break;
      case 'DeletionHoldEnded':
        write(`${t} source  deletion hold at ${event.commit.slice(0, 8)} ended: ${event.how}${event.by ? ` by ${event.by}` : ''} (${event.tenants} tenant(s))\n`);
        break;
      case 'ApprovalRequired':
        write(`${t} ${event.tenantId.padEnd(20)} AWAITING       approval of plan ${event.planDigest}\n`);
        break;
      case 'RepositoryPackFailed':
        write(`${t} git     gc FAILED ${event.code}: ${event.message}\n`);
        break;
      default:
        break;
    }
  };
}
