/**
 * Commit objects encoded here (not through isomorphic-git's writeCommit) so a chain of commits can
 * be held in memory and written in one flush with its trees and blobs (see ObjectDb `defer`).
 * The bytes are what isomorphic-git and git write: headers, a blank line, the message with
 * surrounding blank lines trimmed and one final newline.
 */

export interface CommitIdent {
  name: string;
  email: string;
  /** seconds since the epoch */
  timestamp: number;
  /** minutes east of UTC, as git prints it (+0130 = 90) */
  timezoneOffset: number;
}

export interface CommitFields {
  tree: string;
  parents: readonly string[];
  author: CommitIdent;
  committer: CommitIdent;
  message: string;
}

/** git strips these from names and addresses ("crud"); a newline or <> would break the header. */
const clean = (s: string): string => s.replace(/[<>\n\r\0]/g, '').trim();

function tz(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
}

const ident = (who: CommitIdent): string => `${clean(who.name)} <${clean(who.email)}> ${Math.floor(who.timestamp)} ${tz(who.timezoneOffset)}`;

export function encodeCommit(c: CommitFields): Buffer {
  const message = `${c.message.replace(/\r/g, '').replace(/^\n+/, '').replace(/\n+$/, '')}\n`;
  const headers = [`tree ${c.tree}`, ...c.parents.map((p) => `parent ${p}`), `author ${ident(c.author)}`, `committer ${ident(c.committer)}`];
  return Buffer.from(`${headers.join('\n')}\n\n${message}`, 'utf8');
}
