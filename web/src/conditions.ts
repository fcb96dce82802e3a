import type { Condition } from './types.js';

/**
 * How a condition should look. Conditions differ in polarity (kstatus): Ready is good when True,
 * while Stalled and Reconciling are "abnormal-true" — True is the exception. So Stalled=True and
 * Ready=False are bad, Ready=True is good, Reconciling=True is work in progress, and a False
 * Stalled or Reconciling is the normal, quiet state. Unknown is neither good nor bad.
 */
export type ConditionTone = 'good' | 'bad' | 'progressing' | 'normal' | 'unknown';

const POLARITY: Readonly<Record<string, { True: ConditionTone; False: ConditionTone }>> = {
  Ready: { True: 'good', False: 'bad' },
  Stalled: { True: 'bad', False: 'normal' },
  Reconciling: { True: 'progressing', False: 'normal' },
};

export function conditionTone(c: Pick<Condition, 'type' | 'status'>): ConditionTone {
  if (c.status !== 'True' && c.status !== 'False') return 'unknown';
  return POLARITY[c.type]?.[c.status] ?? 'normal';
}

/** Words for the tone, for the cell's title (the colour is not the only sign). */
export const TONE_LABEL: Readonly<Record<ConditionTone, string>> = {
  good: 'healthy',
  bad: 'needs attention',
  progressing: 'in progress',
  normal: 'normal',
  unknown: 'not known yet',
};
