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

/** The default subscriber: one structured JSON line per event. */
export function jsonLineSubscriber(write: (line: string) => void): EventSubscriber {
  return (event) => {
    // A poll that found nothing new every few seconds is noise in a log; it still reaches metrics.
    if (event.type === 'SourceUnchanged') return;
    const level = event.type.endsWith('Failed') ? 'error' : event.type === 'DeletionHeld' ? 'warn' : 'info';
    write(`${JSON.stringify({ level, ...event })}\n`);
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
        write(`${t} source  FAILED ${event.code}: ${event.message}\n`);
        break;
      case 'PhaseStarted':
        write(`${t} ${event.tenantId.padEnd(20)} ${event.status.padEnd(14)} ${event.phase}\n`);
        break;
      case 'PhaseFailed':
        write(
          `${t} ${event.tenantId.padEnd(20)} FAILED         ${event.phase}: ${event.code} ${event.message}` +
            `${event.nextAttemptAt ? ` (retry ${event.attempt} at ${event.nextAttemptAt.slice(11, 19)})` : ''}\n`,
        );
        break;
      case 'StatusChanged':
        if (['ACTIVE', 'DEPROVISIONED', 'INVALID', 'SUSPENDED'].includes(event.to)) {
          write(`${t} ${event.tenantId.padEnd(20)} ${event.to.padEnd(14)} ${event.reason}\n`);
        }
        break;
      case 'StatusCommitted':
        write(`${t} status  committed ${event.commit.slice(0, 8)} (${event.tenants} tenant(s))\n`);
        break;
      case 'StatusCommitFailed':
        write(`${t} status  commit FAILED ${event.code}: ${event.message}\n`);
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
