/**
 * Public types of the git store (re-exported from `store.ts`).
 */
import type * as nodeFs from 'node:fs';
import type { HttpClient } from 'isomorphic-git';

export type { HttpClient };

export interface GitAuthor {
  name: string;
  email: string;
}

/** One file to write (`content` is utf8 text) or delete (`content: null`), repo-relative path. */
export interface FileChange {
  path: string;
  content: string | null;
}

/** A file in a tree: repo-relative path and blob oid. */
export interface TreeEntryFile {
  path: string;
  oid: string;
}

/** A file that differs between two commits: `oldOid` null = added, `newOid` null = deleted. */
export interface ChangedFile {
  path: string;
  oldOid: string | null;
  newOid: string | null;
}

export interface GitLogger {
  debug(msg: string, data?: object): void;
  warn(msg: string, data?: object): void;
}

export interface GitStoreOptions {
  /** a local path (bare repo, or repo with a work tree), a `file://` URL, or an http(s) URL */
  repo: string;
  /** where a remote is cloned (`<dataDir>/repo.git`) */
  dataDir: string;
  /** tracked branch, e.g. `main` */
  branch: string;
  /** for http(s): sent as basic auth (user `x-access-token`, token as password) when the server asks; never logged */
  token?: string;
  fs?: typeof nodeFs;
  http?: HttpClient;
  now?: () => Date;
  logger?: GitLogger;
  /** recorded as committer of every commit (default: the commit's author) */
  committer?: GitAuthor;
  /** push attempts when the remote moved under us (default 5) */
  maxPushAttempts?: number;
}

export interface CommitRequest {
  /** target branch; default: the tracked branch */
  branch?: string;
  message: string;
  author: GitAuthor;
  /** called with the current head of the target branch (again with the new head after a rejected push) */
  build: (head: string | null) => Promise<FileChange[]> | FileChange[];
}

export interface CommitResult {
  commit: string;
  parent: string | null;
}

export interface LogEntry {
  oid: string;
  message: string;
  author: GitAuthor & { timestamp: number };
}
