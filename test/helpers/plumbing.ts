/**
 * Git plumbing for tests that build hostile repositories: objects written byte by byte (so they
 * can lie about their size, or be garbage), trees with any mode and name (`git mktree -z
 * --missing`: symlinks, submodules, names with newlines, entries naming objects that do not
 * exist), commits and refs moved without a work tree. Native git, `-c gc.auto=0` (git-fixtures).
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { gitOut } from './git-fixtures.js';

export interface TreeItem {
  /** 100644 file, 120000 symlink, 040000 directory, 160000 submodule */
  mode: string;
  oid: string;
  /** one path segment; may hold any character but '/' and NUL */
  name: string;
}

const TYPE_OF_MODE: Record<string, string> = { '040000': 'tree', '160000': 'commit' };

export const looseObjectPath = (gitdir: string, oid: string): string => path.join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2));

export const objectId = (type: string, data: Buffer): string => createHash('sha1').update(`${type} ${data.length}\0`).update(data).digest('hex');

/**
 * Write a loose object for `data` under its true id. `claimSize` puts another size in its header
 * (a wrong size header); the id stays the one of the true content.
 */
export async function writeObject(gitdir: string, type: string, data: Buffer | string, opts: { claimSize?: number } = {}): Promise<string> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const oid = objectId(type, bytes);
  const raw = Buffer.concat([Buffer.from(`${type} ${opts.claimSize ?? bytes.length}\0`), bytes]);
  await overwriteObject(gitdir, oid, zlib.deflateSync(raw));
  return oid;
}

/** Replace the stored bytes of a loose object (git writes them read-only). */
export async function overwriteObject(gitdir: string, oid: string, stored: Buffer): Promise<void> {
  const file = looseObjectPath(gitdir, oid);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.chmod(file, 0o644).catch(() => undefined);
  await fsp.writeFile(file, stored);
}

export const readStoredObject = (gitdir: string, oid: string): Promise<Buffer> => fsp.readFile(looseObjectPath(gitdir, oid));

/** A tree of `items` (git sorts them); entries may name objects that do not exist. */
export async function makeTree(gitdir: string, items: readonly TreeItem[]): Promise<string> {
  const input = items.map((i) => `${i.mode} ${TYPE_OF_MODE[i.mode] ?? 'blob'} ${i.oid}\t${i.name}\0`).join('');
  return gitOut(gitdir, ['mktree', '-z', '--missing'], input);
}

export async function commitTree(gitdir: string, tree: string, parent: string | null, message: string): Promise<string> {
  return gitOut(gitdir, ['commit-tree', tree, ...(parent ? ['-p', parent] : []), '-m', message]);
}

/** Point `refs/heads/<branch>` at `oid` by writing the ref file (no check of the object: it may be damaged). */
export async function setBranch(gitdir: string, branch: string, oid: string): Promise<void> {
  const file = path.join(gitdir, 'refs', 'heads', branch);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(`${file}.lock`, `${oid}\n`);
  await fsp.rename(`${file}.lock`, file);
}

export const blob = (gitdir: string, content: string | Buffer): Promise<string> => writeObject(gitdir, 'blob', content);



/** The content of a loose object (header stripped), or null when it is missing or damaged. */
export async function readObjectContent(gitdir: string, oid: string): Promise<Buffer | null> {
  try {
    const raw = zlib.inflateSync(await readStoredObject(gitdir, oid));
    return raw.subarray(raw.indexOf(0) + 1);
  } catch {
    return null;
  }
}
