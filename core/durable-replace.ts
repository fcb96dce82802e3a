import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/**
 * Replace `file` with `text` so that a crash or a power cut leaves either the old file or the new
 * one, whole: a temporary file in the same directory, fsync, rename, fsync of the directory.
 */
export async function replaceFileDurably(file: string, text: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await fsp.open(tmp, 'w', mode);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch (err: unknown) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  const dir = await fsp.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
