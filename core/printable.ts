/**
 * Text from a repository (file names, messages that quote them) on its way to one log or output
 * line: control characters would split the line or rewrite the terminal, so they are escaped.
 */

/** C0 and C1 controls, DEL, line/paragraph separators, bidi overrides and isolates. */
// eslint-disable-next-line no-control-regex
export const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
// eslint-disable-next-line no-control-regex
const ESCAPED = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const SHORT: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `s` with every unprintable character escaped (`\n`, `\u001b`, …); printable text is unchanged. */
export function printable(s: string): string {
  if (!UNPRINTABLE.test(s)) return s;
  return s.replace(ESCAPED, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
