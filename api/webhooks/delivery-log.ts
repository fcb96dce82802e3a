import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { stalled, type TenantdError } from '../../core/errors.js';
import type { WebhookDelivery } from './verify.js';

export const DELIVERY_LOG_FILE = 'webhook-deliveries.json';
export const DEFAULT_DELIVERY_CAPACITY = 10_000;

export type DeliveryLogFs = Pick<typeof fsp, 'readFile' | 'open' | 'rename' | 'rm' | 'mkdir' | 'stat'>;

export interface DeliveryLogOptions {
  /** Persist to this JSON file (e.g. `<dataDir>/webhook-deliveries.json`); in memory only when absent. */
  readonly file?: string;
  /** Ids remembered per provider; the oldest are forgotten first. */
  readonly capacity?: number;
  readonly fs?: DeliveryLogFs;
}

interface FileShape {
  version: 1;
  /** provider → ids, oldest first */
  providers: Record<string, string[]>;
}

/**
 * The last N delivery ids per provider, so a redelivered webhook is acknowledged and not acted on
 * twice. `seen()` answers and records in memory at once; writes to the file are coalesced (one in
 * flight, at most one queued) through a temporary file, fsync and rename, so the file is always
 * whole. `await flush()` after `seen()` returned false makes the record durable before acting.
 */
export class DeliveryLog {
  private readonly ids = new Map<string, Set<string>>();
  private readonly capacity: number;
  private readonly file: string | undefined;
  private readonly fs: DeliveryLogFs;
  private writing: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  /** Identity of the file as last read or written (inode, size, mtime); a reload of the same file reads nothing. */
  private known: string | null = null;
  /** Set by `open` when the file existed but could not be read; the log then starts empty. */
  loadError: TenantdError | null = null;

  constructor(options: DeliveryLogOptions = {}) {
    this.capacity = Math.max(1, Math.floor(options.capacity ?? DEFAULT_DELIVERY_CAPACITY));
    this.file = options.file;
    this.fs = options.fs ?? fsp;
  }

  /** A log loaded from `options.file` when it exists. A corrupt file is reported in `loadError`, not thrown. */
  static async open(options: DeliveryLogOptions = {}): Promise<DeliveryLog> {
    const log = new DeliveryLog(options);
    if (log.file) await log.load(log.file);
    return log;
  }

  private async load(file: string): Promise<void> {
    let text: string;
    try {
      // Every write replaces the file (rename), so an unchanged identity means unchanged content.
      const before = await this.identity(file);
      if (before !== null && before === this.known) return;
      text = await this.fs.readFile(file, 'utf8');
      this.known = before;
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.loadError = stalled('E_WEBHOOK_LOG', `${file}: cannot read the delivery log`, { file }, err);
      return;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err: unknown) {
      this.loadError = stalled('E_WEBHOOK_LOG', `${file}: the delivery log is not valid JSON; starting empty`, { file }, err);
      return;
    }
    const providers = typeof doc === 'object' && doc !== null ? (doc as { providers?: unknown }).providers : undefined;
    if (typeof providers !== 'object' || providers === null) {
      this.loadError = stalled('E_WEBHOOK_LOG', `${file}: unexpected delivery log shape; starting empty`, { file });
      return;
    }
    for (const [provider, ids] of Object.entries(providers)) {
      if (!Array.isArray(ids)) continue;
      // Ids already known keep their place: a reload only adds what another process recorded.
      for (const id of ids as unknown[]) if (typeof id === 'string' && !this.ids.get(provider)?.has(id)) this.remember(provider, id);
    }
  }

  private async identity(file: string): Promise<string | null> {
    const st = await this.fs.stat(file);
    return st.isFile() ? fileIdentity(st) : null;
  }

  /**
   * Adds what the file holds now (nothing is read when the file did not change since). Replicas
   * under leader election share the file: the one that takes over must know what its predecessor
   * acknowledged, so a redelivery is not acted on twice.
   */
  async reload(): Promise<void> {
    if (this.file) await this.load(this.file);
  }

  private remember(provider: string, id: string): void {
    let set = this.ids.get(provider);
    if (!set) {
      set = new Set();
      this.ids.set(provider, set);
    }
    set.delete(id); // re-inserting moves it to the newest end
    set.add(id);
    while (set.size > this.capacity) {
      const oldest = set.values().next();
      if (oldest.done) break;
      set.delete(oldest.value);
    }
  }

  /** True if `id` was seen before for `provider`; otherwise records it and returns false. */
  seen(provider: string, id: string): boolean {
    if (this.ids.get(provider)?.has(id)) return true;
    this.remember(provider, id);
    this.schedule();
    return false;
  }

  /**
   * For a verified delivery: true if its delivery id OR its body digest was seen before (the
   * delivery-id header is not covered by the signature, so a replayed body with a new id is still
   * caught). Records both.
   */
  seenDelivery(delivery: Pick<WebhookDelivery, 'provider' | 'deliveryId' | 'bodyDigest'>): boolean {
    const byId = this.ids.get(delivery.provider)?.has(delivery.deliveryId) ?? false;
    const byBody = this.ids.get(delivery.provider)?.has(delivery.bodyDigest) ?? false;
    if (!byId) this.remember(delivery.provider, delivery.deliveryId);
    if (!byBody && delivery.bodyDigest !== delivery.deliveryId) this.remember(delivery.provider, delivery.bodyDigest);
    if (!byId || !byBody) this.schedule();
    return byId || byBody;
  }

  /** Number of ids remembered for `provider`. */
  size(provider: string): number {
    return this.ids.get(provider)?.size ?? 0;
  }

  /** Resolves when everything recorded so far is on disk (immediately without a file). Rejects if that write failed. */
  async flush(): Promise<void> {
    if (this.queued) await this.queued;
    else if (this.writing) await this.writing;
  }

  private schedule(): void {
    if (!this.file) return;
    if (this.queued) return; // the queued write will include this record
    if (!this.writing) {
      this.writing = this.write().finally(() => {
        this.writing = null;
      });
      this.writing.catch(() => undefined);
      return;
    }
    const prev = this.writing;
    this.queued = prev
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        this.writing = this.write().finally(() => {
          this.writing = null;
        });
        return this.writing;
      });
    this.queued.catch(() => undefined);
  }

  private async write(): Promise<void> {
    const file = this.file as string;
    const doc: FileShape = { version: 1, providers: {} };
    for (const [provider, set] of [...this.ids.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) doc.providers[provider] = [...set];
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await this.fs.mkdir(path.dirname(file), { recursive: true });
    let written: string | null = null;
    try {
      const fh = await this.fs.open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(doc)}\n`, 'utf8');
        await fh.datasync();
        const st = await fh.stat();
        written = fileIdentity(st);
      } finally {
        await fh.close();
      }
      await this.fs.rename(tmp, file);
      // What this process wrote holds nothing it does not know: a reload need not read it back.
      // (The identity is the temporary file's, taken before the rename, which keeps inode, size and
      // mtime: a file another replica renames over it afterwards is not mistaken for this one.)
      this.known = written;
    } catch (err: unknown) {
      await this.fs.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }
}

/**
 * Inode, size and mtime: a freed inode number reused by the next write still differs in its mtime.
 * Not ctime, which the rename itself moves.
 */
const fileIdentity = (st: { ino: number; size: number; mtimeMs: number }): string => `${st.ino}:${st.size}:${st.mtimeMs}`;
