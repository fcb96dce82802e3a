import { PassThrough } from 'node:stream';
import type { ReconciliationEvent } from '../core/events/events.js';
import type { ReconciliationEventPublisher } from '../core/events/publisher.js';

interface Numbered {
  id: number;
  event: ReconciliationEvent;
}

const tenantOf = (e: ReconciliationEvent): string | null => ('tenantId' in e ? e.tenantId : null);

/**
 * Server-sent events from the publisher. Every event gets an increasing id and the last
 * `capacity` are kept, so a client that reconnects with `Last-Event-ID` misses nothing that is
 * still in the buffer.
 */
export class EventStreamHub {
  private readonly buffer: Numbered[] = [];
  private nextId = 1;
  private readonly streams = new Set<{ stream: PassThrough; tenant: string | null }>();

  constructor(
    publisher: ReconciliationEventPublisher,
    private readonly capacity = 1000,
    private readonly heartbeatMs = 15_000,
  ) {
    publisher.subscribe((event) => {
      const n = { id: this.nextId++, event };
      this.buffer.push(n);
      if (this.buffer.length > this.capacity) this.buffer.shift();
      for (const s of this.streams) if (!s.tenant || tenantOf(event) === s.tenant) write(s.stream, n);
    });
  }

  get clients(): number {
    return this.streams.size;
  }

  /** A stream for one client; ends when `close` is called (the connection closed). */
  open(opts: { tenant: string | null; lastEventId: number | null }): { stream: PassThrough; close: () => void } {
    const stream = new PassThrough();
    const entry = { stream, tenant: opts.tenant };
    stream.write(`retry: 2000\n: connected\n\n`);
    if (opts.lastEventId !== null) {
      for (const n of this.buffer) if (n.id > opts.lastEventId && (!opts.tenant || tenantOf(n.event) === opts.tenant)) write(stream, n);
    }
    this.streams.add(entry);
    const heartbeat = setInterval(() => stream.write(': keep-alive\n\n'), this.heartbeatMs);
    heartbeat.unref();
    const close = (): void => {
      clearInterval(heartbeat);
      this.streams.delete(entry);
      stream.end();
    };
    return { stream, close };
  }

  closeAll(): void {
    for (const s of this.streams) s.stream.end();
    this.streams.clear();
  }
}

function write(stream: PassThrough, n: Numbered): void {
  stream.write(`id: ${n.id}\nevent: ${n.event.type}\ndata: ${JSON.stringify(n.event)}\n\n`);
}
