/**
 * A parser for the `text/event-stream` format (the WHATWG "server-sent events" rules), fed
 * decoded text in arbitrary chunks. EventSource cannot send an Authorization header, so the
 * dashboard reads the stream with fetch() and parses it here. Pure: no DOM, no I/O.
 */
export interface SseMessage {
  /** The `event:` field, `message` when absent. */
  event: string;
  data: string;
  /** The last `id:` seen so far on the stream (it persists across messages, as in EventSource). */
  id: string | null;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private sawData = false;
  /** The last event id, sent back as Last-Event-ID when reconnecting. */
  lastEventId: string | null = null;
  /** The reconnection delay the server asked for with `retry:`, in ms. */
  retryMs: number | null = null;

  /** Feeds a chunk; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      // A lone '\r' at the very end may be the first half of '\r\n': wait for more.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const msg = this.line(line);
      if (msg) out.push(msg);
    }
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null; // comment (heartbeats)
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        this.sawData = true;
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
    return null;
  }

  private dispatch(): SseMessage | null {
    const msg = this.sawData ? { event: this.event || 'message', data: this.data.join('\n'), id: this.lastEventId } : null;
    this.data = [];
    this.event = '';
    this.sawData = false;
    return msg;
  }
}
