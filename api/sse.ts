import { PassThrough } from 'node:stream';
import type { ReconciliationEvent } from '../core/events/events.js';
import type { ReconciliationEventPublisher } from '../core/events/publisher.js';
import { apiError } from './problem.js';

interface Numbered {
  id: number;
  tenant: string | null;
  /** The encoded frame, shared by every client it is written to (one copy, however many clients). */
  frame: Buffer;
}

const tenantOf = (e: ReconciliationEvent): string | null => ('tenantId' in e ? e.tenantId : null);

export interface EventStreamOptions {
  /** Events kept for `Last-Event-ID` resumption. */
  capacity?: number;
  heartbeatMs?: number;
  /** Bytes queued for one client before it is dropped as too slow (it resumes with Last-Event-ID). */
  maxClientBufferBytes?: number;
  /** Streams one principal (API token, JWT subject) may hold open at once; more are refused with 429. */
  maxStreamsPerPrincipal?: number;
}

export const DEFAULT_SSE_CAPACITY = 1000;
export const DEFAULT_SSE_CLIENT_BUFFER_BYTES = 256 * 1024;
export const DEFAULT_SSE_STREAMS_PER_PRINCIPAL = 16;

interface Client {
  stream: PassThrough;
  tenant: string | null;
  principal: string;
  /** Replaying the buffer: the next id to send; null once live. */
  replayFrom: number | null;
  close: () => void;
  drop: () => void;
}

/**
 * Server-sent events from the publisher. Every event gets an increasing id and the last
 * `capacity` are kept, so a client that reconnects with `Last-Event-ID` misses nothing that is
 * still in the buffer.
 *
 * A client that does not read costs at most `maxClientBufferBytes`: the replay after a reconnect
 * is written only as fast as the client takes it, and a live client whose queue passes the bound
 * is dropped (its connection closed); a browser's EventSource reconnects by itself with
 * `Last-Event-ID` and carries on from the buffer. Each event is encoded once and the same bytes go
 * to every client.
 */
export class EventStreamHub {
  private readonly buffer: Numbered[] = [];
  private nextId = 1;
  private readonly streams = new Set<Client>();
  private readonly capacity: number;
  private readonly heartbeatMs: number;
  private readonly maxBytes: number;
  private readonly maxPerPrincipal: number;
  private droppedCount = 0;

  constructor(publisher: ReconciliationEventPublisher, opts: EventStreamOptions = {}) {
    this.capacity = opts.capacity ?? DEFAULT_SSE_CAPACITY;
    this.heartbeatMs = opts.heartbeatMs ?? 15_000;
    this.maxBytes = opts.maxClientBufferBytes ?? DEFAULT_SSE_CLIENT_BUFFER_BYTES;
    this.maxPerPrincipal = opts.maxStreamsPerPrincipal ?? DEFAULT_SSE_STREAMS_PER_PRINCIPAL;
    publisher.subscribe((event) => {
      const id = this.nextId++;
      const n: Numbered = { id, tenant: tenantOf(event), frame: Buffer.from(`id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`) };
      this.buffer.push(n);
      if (this.buffer.length > this.capacity) this.buffer.shift();
      for (const c of this.streams) {
        if (c.replayFrom === null && wants(c, n)) this.send(c, n.frame);
      }
    });
  }

  get clients(): number {
    return this.streams.size;
  }

  /** Clients dropped for falling behind since start. */
  get dropped(): number {
    return this.droppedCount;
  }

  /**
   * A stream for one client; ends when `close` is called (the connection closed). `onDrop` closes
   * the connection of a client dropped as too slow. Throws E_TOO_MANY_STREAMS (429) when the
   * principal already holds `maxStreamsPerPrincipal` streams.
   */
  open(opts: { tenant: string | null; lastEventId: number | null; principal?: string; onDrop?: () => void }): { stream: PassThrough; close: () => void } {
    const principal = opts.principal ?? 'anonymous';
    let held = 0;
    for (const c of this.streams) if (c.principal === principal) held++;
    if (held >= this.maxPerPrincipal) {
      throw apiError('E_TOO_MANY_STREAMS', `${principal} already has ${held} event streams open (at most ${this.maxPerPrincipal}); close one first`, {
        limit: this.maxPerPrincipal,
      });
    }
    const stream = new PassThrough();
    const heartbeat = setInterval(() => this.send(client, KEEP_ALIVE), this.heartbeatMs);
    heartbeat.unref();
    const close = (): void => {
      clearInterval(heartbeat);
      this.streams.delete(client);
      stream.end();
    };
    const client: Client = {
      stream,
      tenant: opts.tenant,
      principal,
      // what is older than the buffer is gone for everyone: start at its oldest event
      replayFrom: opts.lastEventId === null ? null : Math.max(opts.lastEventId + 1, this.buffer[0]?.id ?? this.nextId),
      close,
      drop: () => {
        this.droppedCount++;
        close();
        stream.destroy();
        opts.onDrop?.();
      },
    };
    this.streams.add(client);
    stream.write('retry: 2000\n: connected\n\n');
    if (client.replayFrom !== null) this.replay(client);
    return { stream, close };
  }

  closeAll(): void {
    for (const c of [...this.streams]) c.close();
  }

  /** Write a live frame; a client whose queue passes the bound is dropped. */
  private send(c: Client, frame: Buffer): void {
    if (!this.streams.has(c)) return;
    c.stream.write(frame);
    if (queued(c) > this.maxBytes) c.drop();
  }

  /** The buffered events after `Last-Event-ID`, as fast as the client takes them; then live. */
  private replay(c: Client): void {
    while (this.streams.has(c) && c.replayFrom !== null) {
      const oldest = this.buffer[0]?.id ?? this.nextId;
      if (c.replayFrom < oldest) {
        // the buffer moved past it while it was not reading: too slow to follow
        c.drop();
        return;
      }
      const n = this.buffer[c.replayFrom - oldest];
      if (!n) {
        c.replayFrom = null; // caught up: live from here
        return;
      }
      c.replayFrom = n.id + 1;
      if (!wants(c, n)) continue;
      if (!c.stream.write(n.frame)) {
        c.stream.once('drain', () => this.replay(c));
        return;
      }
    }
  }
}

const KEEP_ALIVE = Buffer.from(': keep-alive\n\n');

const wants = (c: Client, n: Numbered): boolean => !c.tenant || n.tenant === c.tenant;

/** Bytes written to a client's stream and not yet taken by its connection. */
const queued = (c: Client): number => c.stream.writableLength + c.stream.readableLength;
