import { readFileSync } from 'node:fs';
import { replaceFileDurably } from '../core/durable-replace.js';
import type { Standing } from '../core/notify/alert-rules.js';
import type { WriteFence } from './write-fence.js';

export const ALERT_LEDGER_FILE = 'alerts-told.json';

const STANDINGS: ReadonlySet<string> = new Set<Standing>(['ok', 'failing', 'stalled', 'invalid']);

interface LedgerFile {
  version: 1;
  /** tenant → where the receivers were last left believing it stands; ok tenants are absent. */
  told: Record<string, Standing>;
}

export interface AlertLedgerOptions {
  /** `<dataDir>/alerts-told.json` */
  file: string;
  /** Asked before each write: a replica that no longer leads leaves the ledger to the one that does. */
  fence?: WriteFence;
  /** A write that failed, or a file that could not be read (the ledger then starts over from the records). */
  onError?: (err: unknown) => void;
}

/**
 * What the receivers were last told of each tenant, kept in the data dir, so that an alert raised
 * and not delivered before a crash (or a lost leadership) is sent by the next daemon instead of
 * being taken as told. An entry changes only once an alert was delivered or given up on.
 */
export class AlertLedger {
  private told = new Map<string, Standing>();
  private dirty = false;
  private writing: Promise<void> | null = null;

  constructor(private readonly options: AlertLedgerOptions) {}

  /**
   * The file as it is now; null when there is none yet, or it is unreadable (then the records are
   * taken as told, as before the ledger existed). Synchronous: read when reconciling starts, before
   * any event is fed to the rules.
   */
  read(): ReadonlyMap<string, Standing> | null {
    let text: string;
    try {
      text = readFileSync(this.options.file, 'utf8');
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.options.onError?.(err);
      return null;
    }
    const told = parseLedger(text);
    if (!told) {
      this.options.onError?.(new Error(`${this.options.file}: not an alert ledger; starting over from the records`));
      return null;
    }
    this.told = told;
    return new Map(told);
  }

  /** Replaces every entry (at a start: what the ledger and the records agree on) and saves. */
  reset(told: ReadonlyMap<string, Standing>): void {
    this.told = new Map([...told].filter(([, s]) => s !== 'ok'));
    this.save();
  }

  /** The receivers now believe `tenantId` stands at `standing`. */
  record(tenantId: string, standing: Standing): void {
    if ((this.told.get(tenantId) ?? 'ok') === standing) return;
    if (standing === 'ok') this.told.delete(tenantId);
    else this.told.set(tenantId, standing);
    this.save();
  }

  /** Resolves when what was recorded so far is on disk (or its write failed and was reported). */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private save(): void {
    this.dirty = true;
    // One write at a time; changes made meanwhile go out in the next one.
    this.writing ??= (async () => {
      while (this.dirty) {
        this.dirty = false;
        try {
          this.options.fence?.(`the alert ledger ${this.options.file}`);
          const doc: LedgerFile = { version: 1, told: Object.fromEntries([...this.told].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
          await replaceFileDurably(this.options.file, `${JSON.stringify(doc, null, 2)}\n`);
        } catch (err: unknown) {
          this.options.onError?.(err);
        }
      }
    })().finally(() => {
      this.writing = null;
    });
  }
}

function parseLedger(text: string): Map<string, Standing> | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  const told = typeof doc === 'object' && doc !== null ? (doc as { told?: unknown }).told : undefined;
  if (typeof told !== 'object' || told === null || Array.isArray(told)) return null;
  const out = new Map<string, Standing>();
  for (const [id, s] of Object.entries(told)) if (typeof s === 'string' && STANDINGS.has(s) && s !== 'ok') out.set(id, s as Standing);
  return out;
}
