import { promises as fsp } from 'node:fs';

/**
 * The file-system calls the record store and the transition log make, passed in as a dependency:
 * tests give them a layer that fails a write on demand, or one that forgets at a "power cut"
 * everything not yet fsynced (test/helpers/power-cut-fs.ts). Node's FileHandle is a DurableFile.
 */
export interface DurableFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number | null): Promise<{ bytesWritten: number }>;
  stat(): Promise<{ size: number }>;
  truncate(length: number): Promise<void>;
  /** fdatasync(2): the file's data, and the size needed to read it back, survive a power cut. */
  datasync(): Promise<void>;
  close(): Promise<void>;
}

export interface DurableFs {
  /** `w` creates or truncates, `a+` creates or appends (and reads). */
  open(path: string, flags: 'w' | 'a+', mode?: number): Promise<DurableFile>;
  /** Rejects with code ENOENT when there is no such file. */
  readFile(path: string): Promise<Buffer>;
  readdir(path: string): Promise<string[]>;
  mkdirp(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; no error when it does not exist. */
  rm(path: string): Promise<void>;
  /** fsync(2) of a directory: names created, renamed or removed in it survive a power cut. */
  syncDir(path: string): Promise<void>;
}

export const nodeDurableFs: DurableFs = {
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  readFile: (path) => fsp.readFile(path),
  readdir: (path) => fsp.readdir(path),
  mkdirp: async (path) => {
    await fsp.mkdir(path, { recursive: true });
  },
  rename: (from, to) => fsp.rename(from, to),
  rm: (path) => fsp.rm(path, { force: true }),
  syncDir: async (path) => {
    const handle = await fsp.open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};

/** Write all of `data` at `position` (a write may be short), then fdatasync. */
export async function writeDurably(file: DurableFile, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw Object.assign(new Error('write wrote nothing'), { code: 'EIO' });
    done += bytesWritten;
  }
  await file.datasync();
}

/**
 * fsyncs one directory on behalf of many writers (group commit): each call resolves after a sync
 * that began after the call, so whatever the caller renamed before calling is durable; calls made
 * while a sync runs share the next one. A thousand renames in a burst cost a few fsyncs, not a
 * thousand.
 */
export function groupedDirSync(fs: DurableFs, dir: string): () => Promise<void> {
  let running: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  const start = (): Promise<void> => {
    const p = fs.syncDir(dir).finally(() => {
      if (running === p) running = null;
    });
    running = p;
    return p;
  };
  return () => {
    if (!running) return start();
    next ??= running
      .catch(() => undefined)
      .then(() => {
        next = null;
        return start();
      });
    return next;
  };
}
