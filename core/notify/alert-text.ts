import { printable } from '../printable.js';
import type { Alert } from './alert-rules.js';

/** An alert as it goes out: `suppressed` counts the alerts the rate limit folded into this one. */
export type DeliveredAlert = Alert & { suppressed?: number };

const MARK: Readonly<Record<Alert['type'], string>> = {
  Failed: ':warning:',
  Stalled: ':octagonal_sign:',
  Invalid: ':x:',
  Recovered: ':white_check_mark:',
  DeletionHeld: ':raised_hand:',
  DeletionHoldEnded: ':arrow_forward:',
};

/** One readable line for a chat message: what, which tenant, why, and what was folded into it. */
export function alertSummary(alert: DeliveredAlert): string {
  const who = alert.tenantId ?? 'fleet';
  const code = alert.code ? ` [${alert.code}]` : '';
  const commit = alert.commit ? ` at ${alert.commit.slice(0, 12)}` : '';
  const extra = alert.suppressed ? ` (+${alert.suppressed} more alert(s) suppressed by the rate limit)` : '';
  // Messages carry text from tenant files and providers: one line, no control characters.
  const message = printable(alert.message.replace(/\s*\n\s*/g, '; '));
  return `${MARK[alert.type]} tenantd ${alert.type} ${who}${commit}: ${message}${code}${extra}`;
}
