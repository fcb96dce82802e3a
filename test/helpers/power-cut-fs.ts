/**
 * A file system that loses, at a power cut, everything not yet made durable — a test layer for
 * `DurableFs` (core/durable-fs.ts), never used by the product.
 *
 * Files and directories live in memory as the process sees them. Only two calls make anything
 * durable, as on a real disk after power loss: `datasync` of a file (its content as of that call)
 * and `syncDir` of a directory (its names, each pointing at a file's inode, as of that call). The
 * durable part is mirrored into `imageDir` at once, each piece by an atomic rename, so a process
 * killed with SIGKILL at any moment leaves exactly what a power cut would: `PowerCutFs.load` on
 * the same image is the machine coming back. A file whose name became durable but whose content
 * never did comes back empty; a name created or renamed but never synced in its directory is
 * gone (a rename over an old file brings the old file back); so is a directory whose parent was
 * never synced after it was made.
 *
 * Simplifications, on the harsh side: nothing unsynced survives (a real disk keeps some), and a
 * synced write is never torn.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DurableFile, DurableFs } from '../../core/durable-fs.js';

interface Inode {
  id: number;
  data: Buffer;
}
type Entry = { kind: 'file'; inode: Inode } | { kind: 'dir'; dir: Dir };
interface Dir {
  entries: Map<string, Entry>;
}
type ImageEntry = { kind: 'file'; id: number } | { kind: 'dir' };

const errno = (code: string, syscall: string, p: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`${code}: ${syscall} '${p}'`), { code, syscall, path: p });

export class PowerCutFs implements DurableFs {
  private nextId: number;
  private dead = false;
  private budget = Infinity;
  private cutListeners: Array<() => void> = [];
  /** Counts of the calls that made something durable (a test can show it exercised them). */
  readonly stats = { datasyncs: 0, dirSyncs: 0 };

  private constructor(
    readonly root: string,
    private readonly imageDir: string,
    private readonly rootDir: Dir,
    nextId: number,
  ) {
    this.nextId = nextId;
  }

  /** The file system as it comes back from the image (an empty one the first time). */
  static load(root: string, imageDir: string): PowerCutFs {
    mkdirSync(path.join(imageDir, 'inodes'), { recursive: true });
    mkdirSync(path.join(imageDir, 'dirs'), { recursive: true });
    let maxId = 0;
    for (const name of readdirSync(path.join(imageDir, 'inodes'))) if (/^\d+$/.test(name)) maxId = Math.max(maxId, Number(name));
    const loadDir = (rel: string): Dir => {
      const dir: Dir = { entries: new Map() };
      let listing: Record<string, ImageEntry> = {};
      try {
        listing = JSON.parse(readFileSync(path.join(imageDir, 'dirs', dirKey(rel)), 'utf8')) as Record<string, ImageEntry>;
      } catch (err: unknown) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      for (const [name, e] of Object.entries(listing)) {
        if (e.kind === 'dir') {
          dir.entries.set(name, { kind: 'dir', dir: loadDir(rel ? `${rel}/${name}` : name) });
        } else {
          maxId = Math.max(maxId, e.id);
          let data = Buffer.alloc(0);
          try {
            data = readFileSync(path.join(imageDir, 'inodes', String(e.id)));
          } catch (err: unknown) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          }
          dir.entries.set(name, { kind: 'file', inode: { id: e.id, data } });
        }
      }
      return dir;
    };
    return new PowerCutFs(path.resolve(root), imageDir, loadDir(''), maxId + 1);
  }

  /** A file's content as this instance sees it (right after `load`: as a restart finds it); null when absent. */
  contentOf(file: string): Buffer | null {
    const found = this.lookup(file);
    return found?.kind === 'file' ? Buffer.from(found.inode.data) : null;
  }

  /** The power goes out for this instance: every call from now on never returns. */
  cut(): void {
    if (this.dead) return;
    this.dead = true;
    for (const l of this.cutListeners) l();
  }

  /** Cut the power when a sync is asked for after `n` syncs (datasync or syncDir) were made durable. */
  cutAfterSyncs(n: number): void {
    this.budget = n;
  }

  /** Resolves when the power is cut. */
  whenCut(): Promise<void> {
    return this.dead ? Promise.resolve() : new Promise((resolve) => this.cutListeners.push(resolve));
  }

  /** Called by each sync before it makes anything durable: false when the power went out instead. */
  private spend(): boolean {
    if (this.budget <= 0) {
      this.cut();
      return false;
    }
    this.budget--;
    return true;
  }

  private rel(p: string): string[] {
    const r = path.relative(this.root, path.resolve(p));
    if (r.startsWith('..') || path.isAbsolute(r)) throw errno('EXDEV', 'resolve', p);
    return r === '' ? [] : r.split(path.sep);
  }

  private lookup(p: string): Entry | null {
    let entry: Entry = { kind: 'dir', dir: this.rootDir };
    for (const part of this.rel(p)) {
      if (entry.kind !== 'dir') return null;
      const next = entry.dir.entries.get(part);
      if (!next) return null;
      entry = next;
    }
    return entry;
  }

  private parentOf(p: string, syscall: string): { dir: Dir; name: string } {
    const parts = this.rel(p);
    const name = parts.pop();
    if (name === undefined) throw errno('EISDIR', syscall, p);
    const parent = this.lookup(path.join(this.root, ...parts));
    if (!parent || parent.kind !== 'dir') throw errno('ENOENT', syscall, p);
    return { dir: parent.dir, name };
  }

  private async alive(): Promise<void> {
    if (this.dead) await new Promise<never>(() => undefined);
  }

  private persistInode(inode: Inode): void {
    atomicWrite(path.join(this.imageDir, 'inodes', String(inode.id)), inode.data);
  }

  async open(p: string, flags: 'w' | 'a+'): Promise<DurableFile> {
    await this.alive();
    const { dir, name } = this.parentOf(p, 'open');
    let entry = dir.entries.get(name);
    if (entry?.kind === 'dir') throw errno('EISDIR', 'open', p);
    if (!entry) {
      entry = { kind: 'file', inode: { id: this.nextId++, data: Buffer.alloc(0) } };
      dir.entries.set(name, entry);
    } else if (flags === 'w') {
      entry.inode.data = Buffer.alloc(0);
    }
    const inode = entry.inode;
    const alive = (): Promise<void> => this.alive();
    const onDatasync = (): boolean => {
      if (!this.spend()) return false;
      this.stats.datasyncs++;
      this.persistInode(inode);
      return true;
    };
    return {
      async read(buffer, offset, length, position) {
        await alive();
        const n = Math.max(0, Math.min(length, inode.data.length - position));
        inode.data.copy(buffer, offset, position, position + n);
        return { bytesRead: n };
      },
      async write(buffer, offset, length, position) {
        await alive();
        // O_APPEND writes at the end whatever the position, as on Linux.
        const at = flags === 'a+' || position === null ? inode.data.length : position;
        const end = at + length;
        if (end > inode.data.length) {
          const grown = Buffer.alloc(end);
          inode.data.copy(grown);
          inode.data = grown;
        }
        buffer.copy(inode.data, at, offset, offset + length);
        return { bytesWritten: length };
      },
      async stat() {
        await alive();
        return { size: inode.data.length };
      },
      async truncate(length) {
        await alive();
        inode.data = length <= inode.data.length ? Buffer.from(inode.data.subarray(0, length)) : Buffer.concat([inode.data, Buffer.alloc(length - inode.data.length)]);
      },
      async datasync() {
        await alive();
        if (!onDatasync()) await alive();
      },
      async close() {
        await alive();
      },
    };
  }

  async readFile(p: string): Promise<Buffer> {
    await this.alive();
    const entry = this.lookup(p);
    if (!entry) throw errno('ENOENT', 'open', p);
    if (entry.kind === 'dir') throw errno('EISDIR', 'read', p);
    return Buffer.from(entry.inode.data);
  }

  async readdir(p: string): Promise<string[]> {
    await this.alive();
    const entry = this.lookup(p);
    if (!entry) throw errno('ENOENT', 'scandir', p);
    if (entry.kind !== 'dir') throw errno('ENOTDIR', 'scandir', p);
    return [...entry.dir.entries.keys()].sort();
  }

  async mkdirp(p: string): Promise<void> {
    await this.alive();
    let dir = this.rootDir;
    for (const part of this.rel(p)) {
      let next = dir.entries.get(part);
      if (!next) {
        next = { kind: 'dir', dir: { entries: new Map() } };
        dir.entries.set(part, next);
      }
      if (next.kind !== 'dir') throw errno('ENOTDIR', 'mkdir', p);
      dir = next.dir;
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await this.alive();
    const src = this.parentOf(from, 'rename');
    const entry = src.dir.entries.get(src.name);
    if (!entry) throw errno('ENOENT', 'rename', from);
    const dest = this.parentOf(to, 'rename');
    src.dir.entries.delete(src.name);
    dest.dir.entries.set(dest.name, entry);
  }

  async rm(p: string): Promise<void> {
    await this.alive();
    const entry = this.lookup(p);
    if (!entry) return;
    const { dir, name } = this.parentOf(p, 'rm');
    dir.entries.delete(name);
  }

  async syncDir(p: string): Promise<void> {
    await this.alive();
    const entry = this.lookup(p);
    if (!entry) throw errno('ENOENT', 'fsync', p);
    if (entry.kind !== 'dir') throw errno('ENOTDIR', 'fsync', p);
    if (!this.spend()) await this.alive();
    this.stats.dirSyncs++;
    const listing: Record<string, ImageEntry> = {};
    for (const [name, e] of [...entry.dir.entries].sort(([a], [b]) => (a < b ? -1 : 1))) {
      listing[name] = e.kind === 'dir' ? { kind: 'dir' } : { kind: 'file', id: e.inode.id };
    }
    atomicWrite(path.join(this.imageDir, 'dirs', dirKey(this.rel(p).join('/'))), Buffer.from(JSON.stringify(listing)));
  }
}

const dirKey = (rel: string): string => `${rel === '' ? '.' : encodeURIComponent(rel)}.json`;

/** Replace a file in one rename: a SIGKILL leaves the old piece of the image or the new one. */
function atomicWrite(file: string, data: Buffer): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}
