import { promises as fsp } from 'node:fs';
import { parseDocument } from 'yaml';
import { TenantdError } from '../core/errors.js';
import { ALERT_TYPES, DEFAULT_FAILED_AFTER_RETRIES, type AlertType } from '../core/notify/alert-rules.js';
import { isRecord } from '../core/is-record.js';

export const RECEIVER_FORMATS = ['webhook', 'slack'] as const;
export type ReceiverFormat = (typeof RECEIVER_FORMATS)[number];

export interface ReceiverConfig {
  name: string;
  /** Resolved (from `urlFromEnv` if so configured). Carries secrets: never logged. */
  url: string;
  format: ReceiverFormat;
  alerts: AlertType[];
  maxPerMinute: number;
}

export interface NotificationsConfig {
  failedAfterRetries: number;
  receivers: ReceiverConfig[];
}

const DEFAULT_MAX_PER_MINUTE = 30;
const TOP_KEYS = ['failedAfterRetries', 'receivers'];
const RECEIVER_KEYS = ['name', 'url', 'urlFromEnv', 'format', 'alerts', 'maxPerMinute'];

/** E_CONFIG naming the file and the field; the reason never quotes a URL (it may hold a token). */
const bad = (file: string, field: string | null, reason: string, extra: Record<string, unknown> = {}): TenantdError =>
  new TenantdError('E_CONFIG', 'stalled', `--notifications-file ${file}${field ? `: ${field}` : ''}: ${reason}`, { file, field, reason, ...extra });

/**
 * Reads the notifications file (YAML): where alerts go and when a failure is worth one.
 * `urlFromEnv` is read from `env` now, so a missing secret stops the start, not the first alert.
 */
export async function loadNotificationsConfig(file: string, env: NodeJS.ProcessEnv): Promise<NotificationsConfig> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err: unknown) {
    throw bad(file, null, `cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const doc = parseDocument(text, { prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax) throw bad(file, null, `not YAML: ${syntax.code} at line ${syntax.linePos?.[0].line ?? '?'}`, { line: syntax.linePos?.[0].line ?? null });
  return notificationsConfigFrom(doc.toJS() as unknown, file, env);
}

export function notificationsConfigFrom(value: unknown, file: string, env: NodeJS.ProcessEnv): NotificationsConfig {
  if (!isRecord(value)) throw bad(file, null, 'must be a mapping with receivers');
  unknownKeys(value, TOP_KEYS, '', file);
  const failedAfterRetries = whole(value.failedAfterRetries ?? DEFAULT_FAILED_AFTER_RETRIES, 1, 1000, 'failedAfterRetries', file);
  const list = value.receivers;
  if (!Array.isArray(list) || list.length === 0) throw bad(file, 'receivers', 'must list at least one receiver');
  const receivers = list.map((r, i) => receiverFrom(r, `receivers[${i}]`, file, env));
  const names = receivers.map((r) => r.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw bad(file, `receivers[${names.lastIndexOf(dup)}].name`, `"${dup}" names two receivers`);
  return { failedAfterRetries, receivers };
}

function receiverFrom(r: unknown, at: string, file: string, env: NodeJS.ProcessEnv): ReceiverConfig {
  if (!isRecord(r)) throw bad(file, at, 'must be a mapping with name, url (or urlFromEnv) and format');
  unknownKeys(r, RECEIVER_KEYS, `${at}.`, file);
  if (typeof r.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(r.name)) throw bad(file, `${at}.name`, 'must be a name of letters, digits, ".", "_" or "-" (at most 63)');
  const format = r.format ?? 'webhook';
  if (!(RECEIVER_FORMATS as readonly unknown[]).includes(format)) throw bad(file, `${at}.format`, `must be one of ${RECEIVER_FORMATS.join(', ')}`);
  const alerts = r.alerts ?? [...ALERT_TYPES];
  if (!Array.isArray(alerts) || alerts.length === 0 || !alerts.every((a) => (ALERT_TYPES as readonly unknown[]).includes(a))) {
    throw bad(file, `${at}.alerts`, `must list alert types among ${ALERT_TYPES.join(', ')}`);
  }
  return {
    name: r.name,
    url: urlOf(r, at, file, env),
    format: format as ReceiverFormat,
    alerts: [...new Set(alerts as AlertType[])],
    maxPerMinute: whole(r.maxPerMinute ?? DEFAULT_MAX_PER_MINUTE, 1, 10_000, `${at}.maxPerMinute`, file),
  };
}

function urlOf(r: Record<string, unknown>, at: string, file: string, env: NodeJS.ProcessEnv): string {
  if ((r.url === undefined) === (r.urlFromEnv === undefined)) throw bad(file, `${at}.url`, 'give exactly one of url and urlFromEnv');
  let url = r.url;
  let field = `${at}.url`;
  if (r.urlFromEnv !== undefined) {
    field = `${at}.urlFromEnv`;
    if (typeof r.urlFromEnv !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(r.urlFromEnv)) throw bad(file, field, 'must name an environment variable');
    url = env[r.urlFromEnv];
    if (url === undefined || url === '') throw bad(file, field, `the environment variable ${r.urlFromEnv} is not set`);
  }
  if (typeof url !== 'string' || !isHttpUrl(url)) throw bad(file, field, 'is not an http(s) URL');
  return url;
}

function isHttpUrl(s: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(s).protocol);
  } catch {
    return false;
  }
}

function whole(v: unknown, min: number, max: number, field: string, file: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(file, field, `must be a whole number between ${min} and ${max}`);
  return v;
}

function unknownKeys(obj: Record<string, unknown>, known: readonly string[], prefix: string, file: string): void {
  const extra = Object.keys(obj).filter((k) => !known.includes(k)).sort()[0];
  if (extra !== undefined) throw bad(file, `${prefix}${extra}`, `unknown field (known: ${known.join(', ')})`);
}
