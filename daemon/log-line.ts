import type { LogLevel } from '../core/events/publisher.js';

/**
 * A line the daemon itself writes (start, stop, warnings), in the log format chosen: with
 * `--log-format json` every line on stdout is one JSON document with `level` and `msg`, like the
 * event lines, so a log pipeline never meets a line it cannot parse.
 */
export function logLine(format: 'human' | 'json', level: LogLevel, msg: string, fields: Record<string, unknown> = {}): string {
  if (format === 'json') return `${JSON.stringify({ level, msg, ...fields, time: new Date().toISOString() })}\n`;
  return `tenantd: ${level === 'info' ? '' : `${level.toUpperCase()}: `}${msg}\n`;
}

/** A repository location fit for a log: credentials in an http(s) URL are masked. */
export function displayRepo(repo: string): string {
  try {
    const url = new URL(repo);
    if (!url.username && !url.password) return repo;
    url.username = '***';
    url.password = '';
    return url.toString();
  } catch {
    return repo;
  }
}
