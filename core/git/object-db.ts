/**
 * ObjectDb: a fast reader/writer of a git object database (the `objects/` directory of a gitdir),
 * using node:zlib (native inflate/deflate) and node:crypto sha1.
 *
 * Why: isomorphic-git's per-object reads inflate with pako and, for every object, probe for a
 * loose file (a failed open) and readdir the pack directory; reading 10,000 blobs takes ~5 s.
 * Here pack indexes stay in memory (binary search over the sha1 bytes), pack bytes are read
 * through an open FileHandle in aligned windows, and each object is inflated natively on exactly
 * its compressed bytes.
 *
 * It shares the gitdir with isomorphic-git and native git, either of which may add loose objects
 * or packs (fetch, gc) or delete packs (gc) at any time: a miss rescans `objects/pack/` once and
 * looks again, and a pack file that vanished before it was opened triggers a rescan and a retry.
 * Alternates (`objects/info/alternates`) are not followed.
 *
 * Returned buffers belong to the caller: data shared with the delta-base cache is copied first.
 *
 * Codes: E_GIT_OBJECT_CORRUPT (stalled) for malformed objects, packs or deltas; E_GIT_BAD_OID
 * (stalled) for an argument that is not a 40-hex object id (E_GIT_BAD_OBJECT_TYPE for a type given
 * to write() that is none of the four); E_GIT_READ / E_GIT_WRITE (retryable)
 * for I/O failures (see objectError in ./errors.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { isTenantdError, retryable, stalled, type TenantdError } from '../errors.js';
import { errCode, objectError } from './errors.js';
import { writePack, type PackInput } from './pack-write.js';

export type GitObjectType = 'blob' | 'tree' | 'commit' | 'tag';
export interface GitObject {
  type: GitObjectType;
  data: Buffer;
}

/** Pack reads go through aligned windows of this size; a few are kept (most packs fit in a few). */
const WINDOW_SIZE = 1 << 20;
const WINDOWS_KEPT = 8;
/** Resolved delta bases (and delta results, which are usually bases of the next chain link). */
const BASE_CACHE_BYTES = 32 << 20;
/** Longer chains than git ever writes (its --depth maximum is 4095): a cycle in a corrupt pack. */
const MAX_DELTA_CHAIN = 10_000;
const LOOSE_CONCURRENCY = 32;
/** Held objects written at once by `flush` (each is a handful of file-system calls). */
const FLUSH_CONCURRENCY = 16;
/** From this many held objects (a chain of 2+ commits), `flush` writes one pack instead of loose files. */
const PACK_FLUSH_MIN = 8;
/** Below this, deflate synchronously: the thread-pool round trip costs more than it saves. */
const ASYNC_DEFLATE_BYTES = 256 * 1024;
/** Touch a pack we deduplicated a write against at most this often (keeps it from gc's pruning). */
const FRESHEN_PACK_MS = 60_000;

const OBJ_COMMIT = 1;
const OBJ_TREE = 2;
const OBJ_BLOB = 3;
const OBJ_TAG = 4;
const OBJ_OFS_DELTA = 6;
const OBJ_REF_DELTA = 7;

const TYPE_BY_NUMBER: Record<number, GitObjectType | undefined> = {
  [OBJ_COMMIT]: 'commit',
  [OBJ_TREE]: 'tree',
  [OBJ_BLOB]: 'blob',
  [OBJ_TAG]: 'tag',
};

const OID_RE = /^[0-9a-f]{40}$/;
const deflateAsync = promisify(zlib.deflate);

export const isGitObjectType = (s: string): s is GitObjectType => s === 'blob' || s === 'tree' || s === 'commit' || s === 'tag';

export function corruptObject(oid: string, message: string, details: Record<string, unknown> = {}, cause?: unknown): TenantdError {
  return stalled('E_GIT_OBJECT_CORRUPT', `git object ${oid || '(unknown)'} is corrupt: ${message}`, { oid, ...details }, cause);
}

function normalizeOid(oid: string): string {
  const lower = typeof oid === 'string' ? oid.toLowerCase() : '';
  if (!OID_RE.test(lower)) throw stalled('E_GIT_BAD_OID', `not a git object id: ${JSON.stringify(oid)}`, { oid });
  return lower;
}

/**
 * Apply a git delta (as stored in OFS_DELTA/REF_DELTA entries) to `base`. Throws
 * E_GIT_OBJECT_CORRUPT (with `{ oid }`) when the delta is malformed or does not fit the base.
 */
export function applyDelta(base: Buffer, delta: Buffer, oid = ''): Buffer {
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let mult = 1;
    for (;;) {
      if (pos >= delta.length) throw corruptObject(oid, 'truncated delta header');
      const b = delta[pos++] as number;
      value += (b & 0x7f) * mult;
      mult *= 128;
      if ((b & 0x80) === 0) return value;
      if (mult > 2 ** 56) throw corruptObject(oid, 'delta size varint too long');
    }
  };
  const srcSize = varint();
  if (srcSize !== base.length) {
    throw corruptObject(oid, `delta base size ${srcSize} does not match base of ${base.length} bytes`);
  }
  const tgtSize = varint();
  const out = Buffer.allocUnsafe(tgtSize);
  let outPos = 0;
  while (pos < delta.length) {
    const op = delta[pos++] as number;
    if (op & 0x80) {
      // copy from base: which offset/size bytes follow is given by the low 7 bits
      let off = 0;
      let size = 0;
      let need = 0;
      for (let m = op & 0x7f; m !== 0; m &= m - 1) need++;
      if (pos + need > delta.length) throw corruptObject(oid, 'truncated delta copy instruction');
      if (op & 0x01) off += delta[pos++] as number;
      if (op & 0x02) off += (delta[pos++] as number) * 0x100;
      if (op & 0x04) off += (delta[pos++] as number) * 0x10000;
      if (op & 0x08) off += (delta[pos++] as number) * 0x1000000;
      if (op & 0x10) size += delta[pos++] as number;
      if (op & 0x20) size += (delta[pos++] as number) * 0x100;
      if (op & 0x40) size += (delta[pos++] as number) * 0x10000;
      if (size === 0) size = 0x10000;
      if (off + size > base.length || outPos + size > tgtSize) {
        throw corruptObject(oid, `delta copy of ${size} bytes at ${off} is out of bounds`);
      }
      base.copy(out, outPos, off, off + size);
      outPos += size;
    } else if (op !== 0) {
      // insert the next `op` literal bytes
      if (pos + op > delta.length || outPos + op > tgtSize) throw corruptObject(oid, 'delta insert is out of bounds');
      delta.copy(out, outPos, pos, pos + op);
      pos += op;
      outPos += op;
    } else {
      throw corruptObject(oid, 'delta contains the reserved opcode 0');
    }
  }
  if (outPos !== tgtSize) throw corruptObject(oid, `delta produced ${outPos} bytes, expected ${tgtSize}`);
  return out;
}

/** Parse an inflated loose object ("<type> <size>\0<data>"), checking the size. */
export function parseLooseObject(oid: string, raw: Buffer): GitObject {
  const nul = raw.indexOf(0);
  if (nul < 0 || nul > 32) throw corruptObject(oid, 'loose object has no header');
  const header = raw.toString('latin1', 0, nul);
  const sp = header.indexOf(' ');
  const type = header.slice(0, sp);
  const sizeText = header.slice(sp + 1);
  if (sp < 0 || !isGitObjectType(type) || !/^\d+$/.test(sizeText)) {
    throw corruptObject(oid, `bad loose object header ${JSON.stringify(header)}`);
  }
  const data = raw.subarray(nul + 1);
  if (Number(sizeText) !== data.length) {
    throw corruptObject(oid, `loose object size ${data.length} does not match header ${sizeText}`);
  }
  return { type, data };
}

// ---------------------------------------------------------------------------------------------
// Pack index (.idx), kept in memory

const IDX_V2_MAGIC = 0xff744f63; // "\377tOc"
const FANOUT_BYTES = 256 * 4;
const TRAILER_BYTES = 40; // pack checksum + idx checksum

export class PackIndex {
  readonly count: number;
  private readonly shaBase: number;
  private readonly shaStride: number;
  private readonly offBase: number;
  private readonly largeBase: number;
  private readonly largeCount: number;
  private sorted: Float64Array | null = null;

  private constructor(
    private readonly buf: Buffer,
    readonly version: 1 | 2,
    private readonly fanoutBase: number,
  ) {
    this.count = buf.readUInt32BE(fanoutBase + 255 * 4);
    if (version === 2) {
      this.shaBase = fanoutBase + FANOUT_BYTES;
      this.shaStride = 20;
      this.offBase = this.shaBase + this.count * 24; // after the sha1s and the crc32s
      this.largeBase = this.offBase + this.count * 4;
      this.largeCount = (buf.length - TRAILER_BYTES - this.largeBase) / 8;
    } else {
      this.shaBase = fanoutBase + FANOUT_BYTES + 4;
      this.shaStride = 24;
      this.offBase = fanoutBase + FANOUT_BYTES;
      this.largeBase = 0;
      this.largeCount = 0;
    }
  }

  /** Parse and sanity-check an index; null when it is not a complete v1/v2 index. */
  static parse(buf: Buffer): PackIndex | null {
    const v2 = buf.length >= 8 && buf.readUInt32BE(0) === IDX_V2_MAGIC;
    if (v2 && buf.readUInt32BE(4) !== 2) return null;
    const fanoutBase = v2 ? 8 : 0;
    if (buf.length < fanoutBase + FANOUT_BYTES + TRAILER_BYTES) return null;
    let prev = 0;
    for (let i = 0; i < 256; i++) {
      const n = buf.readUInt32BE(fanoutBase + i * 4);
      if (n < prev) return null;
      prev = n;
    }
    const count = prev;
    if (v2) {
      const fixed = fanoutBase + FANOUT_BYTES + count * 28 + TRAILER_BYTES;
      if (buf.length < fixed || (buf.length - fixed) % 8 !== 0) return null;
    } else if (buf.length !== FANOUT_BYTES + count * 24 + TRAILER_BYTES) {
      return null;
    }
    return new PackIndex(buf, v2 ? 2 : 1, fanoutBase);
  }

  /** Position of `oid` (20 raw bytes) in the index, or -1. */
  find(oid: Buffer): number {
    const first = oid[0] as number;
    let lo = first === 0 ? 0 : this.buf.readUInt32BE(this.fanoutBase + (first - 1) * 4);
    let hi = this.buf.readUInt32BE(this.fanoutBase + first * 4);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.shaBase + mid * this.shaStride;
      const c = this.buf.compare(oid, 0, 20, at, at + 20);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  oidAt(i: number): string {
    const at = this.shaBase + i * this.shaStride;
    return this.buf.toString('hex', at, at + 20);
  }

  /** Pack offset of the object at position `i`; null when the index points nowhere sensible. */
  offsetAt(i: number): number | null {
    if (this.version === 1) return this.buf.readUInt32BE(this.offBase + i * 24);
    const o = this.buf.readUInt32BE(this.offBase + i * 4);
    if ((o & 0x80000000) === 0) return o;
    const j = o & 0x7fffffff;
    if (j >= this.largeCount) return null;
    const big = this.buf.readBigUInt64BE(this.largeBase + j * 8);
    return big > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(big);
  }

  /** Where the object starting at `offset` ends: the next object's offset, or `packEnd`. -1 if `offset` is no object's start. */
  extentEnd(offset: number, packEnd: number): number {
    const s = this.sortedOffsets();
    let lo = 0;
    let hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((s[mid] as number) <= offset) lo = mid + 1;
      else hi = mid;
    }
    // lo is the first offset greater than `offset`
    if (lo === 0 || s[lo - 1] !== offset) return -1;
    return lo < s.length ? (s[lo] as number) : packEnd;
  }

  private sortedOffsets(): Float64Array {
    if (this.sorted) return this.sorted;
    const s = new Float64Array(this.count);
    for (let i = 0; i < this.count; i++) s[i] = this.offsetAt(i) ?? -1;
    s.sort();
    this.sorted = s;
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Packs

/** A pack file that disappeared (gc) before we opened it: rescan and look again. */
class PackGoneError extends Error {
  constructor(readonly packPath: string) {
    super(`pack ${packPath} disappeared`);
  }
}

type FsPromises = typeof nodeFs.promises;

let nextPackId = 1;

class Pack {
  readonly id = nextPackId++;
  private handle: Promise<{ fh: FileHandle; size: number }> | null = null;
  private busy = 0;
  private closeWhenIdle = false;
  freshenedAt = 0;

  constructor(
    readonly name: string,
    readonly packPath: string,
    readonly idx: PackIndex,
    private readonly fsp: FsPromises,
  ) {}

  acquire(): void {
    this.busy++;
  }

  release(): void {
    this.busy--;
    if (this.busy === 0 && this.closeWhenIdle) void this.closeNow();
  }

  /** Close the file handle now, or when the reads in flight are done. */
  requestClose(): Promise<void> {
    if (this.busy > 0) {
      this.closeWhenIdle = true;
      return Promise.resolve();
    }
    return this.closeNow();
  }

  private async closeNow(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    this.closeWhenIdle = false;
    if (!h) return;
    try {
      await (await h).fh.close();
    } catch {
      // it never opened, or is closed already
    }
  }

  open(): Promise<{ fh: FileHandle; size: number }> {
    if (!this.handle) {
      const h = this.openAndCheck();
      this.handle = h;
      h.catch(() => {
        if (this.handle === h) this.handle = null;
      });
    }
    return this.handle;
  }

  private async openAndCheck(): Promise<{ fh: FileHandle; size: number }> {
    let fh: FileHandle;
    try {
      fh = await this.fsp.open(this.packPath, 'r');
    } catch (err: unknown) {
      if (errCode(err) === 'ENOENT') throw new PackGoneError(this.packPath);
      throw err;
    }
    try {
      const { size } = await fh.stat();
      const head = Buffer.alloc(12);
      await readFully(fh, head, 0);
      const version = head.readUInt32BE(4);
      if (head.toString('latin1', 0, 4) !== 'PACK' || (version !== 2 && version !== 3) || head.readUInt32BE(8) !== this.idx.count) {
        throw stalled('E_GIT_OBJECT_CORRUPT', `pack ${this.name} does not match its index`, { pack: this.packPath });
      }
      return { fh, size };
    } catch (err: unknown) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw retryable('E_GIT_READ', `unexpected end of pack file at ${position + done}`, { position });
    done += bytesRead;
  }
}

/** A Map used as an LRU by insertion order, bounded by the bytes of its values. */
class ByteLru {
  private readonly map = new Map<string, GitObject>();
  private bytes = 0;

  constructor(private readonly capacity: number) {}

  get(key: string): GitObject | undefined {
    const v = this.map.get(key);
    if (v) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, value: GitObject): void {
    // one huge object would flush everything else for little gain
    if (value.data.length > this.capacity / 4 || this.map.has(key)) return;
    this.map.set(key, value);
    this.bytes += value.data.length;
    while (this.bytes > this.capacity) {
      const oldest = this.map.entries().next().value;
      if (!oldest) break;
      this.map.delete(oldest[0]);
      this.bytes -= oldest[1].data.length;
    }
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }
}

interface PackLocation {
  pack: Pack;
  offset: number;
}

/** One entry read from a pack: a whole object, or a delta with the reference to its base. */
type PackEntry =
  | { kind: 'object'; type: GitObjectType; data: Buffer }
  | { kind: 'ofs'; delta: Buffer; baseOffset: number }
  | { kind: 'ref'; delta: Buffer; baseOid: Buffer };

const GONE = Symbol('gone');

async function runPool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class ObjectDb {
  private readonly objectsDir: string;
  private readonly packDir: string;
  private packs: Pack[] = [];
  /** Last pack that answered a lookup: consecutive reads mostly hit the same pack. */
  private hotPack: Pack | null = null;
  private scanned: Promise<void> | null = null;
  private scanning: Promise<void> | null = null;
  private queuedScan: Promise<void> | null = null;
  private readonly windows = new Map<string, Promise<Buffer>>();
  private readonly bases = new ByteLru(BASE_CACHE_BYTES);

  private readonly fsp: FsPromises;
  /** Objects written with `defer` and not yet flushed (readable meanwhile). */
  private readonly deferred = new Map<string, { type: GitObjectType; data: Buffer; level: number; delta?: PackInput['delta'] }>();

  /** `fs` defaults to node:fs; another (e.g. a test's recording fs) must offer the same promises API. */
  constructor(
    readonly gitdir: string,
    fs: typeof nodeFs = nodeFs,
  ) {
    this.fsp = fs.promises;
    this.objectsDir = path.join(gitdir, 'objects');
    this.packDir = path.join(this.objectsDir, 'pack');
  }

  /** The git object id of `data` as an object of `type` (hex sha1). */
  static hash(type: GitObjectType, data: Buffer): string {
    return createHash('sha1').update(`${type} ${data.length}\0`, 'latin1').update(data).digest('hex');
  }

  async read(oid: string): Promise<GitObject | null> {
    const key = normalizeOid(oid);
    const held = this.deferred.get(key);
    if (held) return { type: held.type, data: Buffer.from(held.data) };
    await this.ensureScanned();
    const first = await this.tryRead(key);
    if (first !== null && first !== GONE) return first;
    await this.rescan();
    const second = await this.tryRead(key);
    if (second === GONE) throw this.goneError(key);
    return second;
  }

  async readMany(oids: readonly string[]): Promise<Array<GitObject | null>> {
    return (await this.readManySettled(oids)).map((o) => {
      if (o instanceof Error) throw o;
      return o;
    });
  }

  /**
   * As `readMany`, but an object that cannot be read (corrupt, or its pack unreadable) is its own
   * error in its place instead of failing the whole batch: one bad object costs only its reader.
   */
  async readManySettled(oids: readonly string[]): Promise<Array<GitObject | null | TenantdError>> {
    const keys = oids.map(normalizeOid);
    await this.ensureScanned();
    const found = new Map<string, GitObject | TenantdError>();
    const unique: string[] = [];
    for (const k of new Set(keys)) {
      const held = this.deferred.get(k);
      if (held) found.set(k, { type: held.type, data: Buffer.from(held.data) });
      else unique.push(k);
    }
    const first = await this.readBatch(unique, found);
    const again = [...first.missing, ...first.gone];
    if (again.length > 0) {
      await this.rescan();
      const second = await this.readBatch(again, found);
      for (const oid of second.gone) found.set(oid, this.goneError(oid));
    }
    // duplicates in the input share one object: give each position its own buffer
    const handedOut = new Set<GitObject>();
    return keys.map((k) => {
      const obj = found.get(k);
      if (!obj) return null;
      if (obj instanceof Error) return obj;
      if (handedOut.has(obj)) return { type: obj.type, data: Buffer.from(obj.data) };
      handedOut.add(obj);
      return obj;
    });
  }

  async has(oid: string): Promise<boolean> {
    const key = normalizeOid(oid);
    if (this.deferred.has(key)) return true;
    await this.ensureScanned();
    if (this.locate(key) || (await this.looseExists(key))) return true;
    await this.rescan();
    return this.locate(key) !== null || (await this.looseExists(key));
  }

  /**
   * Store an object as a loose file (deflated at `level`, default 1; 0 suits big incompressible
   * trees) unless it exists already, and return its id. Written to a temporary file in
   * objects/xx/ and renamed into place, so no reader ever sees a partial object.
   *
   * `defer`: only hash it and hold it in memory (readable through this ObjectDb) until `flush()`
   * writes every held object at once. A chain of commits writes its objects this way: one burst
   * of concurrent file writes instead of several sequential ones per commit, all on disk before
   * the caller moves a ref to them.
   */
  async write(type: GitObjectType, data: Buffer, opts: { level?: number; defer?: boolean; delta?: PackInput['delta'] } = {}): Promise<string> {
    if (!isGitObjectType(type)) throw stalled('E_GIT_BAD_OBJECT_TYPE', `not a git object type: ${JSON.stringify(type)}`, { type });
    const oid = ObjectDb.hash(type, data);
    const level = opts.level ?? 1;
    if (opts.defer) {
      if (!this.deferred.has(oid)) this.deferred.set(oid, { type, data, level, ...(opts.delta ? { delta: opts.delta } : {}) });
      return oid;
    }
    await this.writeNow(oid, type, data, level);
    return oid;
  }

  /**
   * Write every object held by `write(…, { defer: true })`; each stays held until it is on disk.
   * A few are written as loose objects; more (a chain of commits) as one pack, in which a held
   * object that names a held delta base is stored as a delta of it.
   */
  async flush(): Promise<void> {
    const held = [...this.deferred];
    if (held.length >= PACK_FLUSH_MIN) {
      await this.writeAsPack(held);
      for (const [oid] of held) this.deferred.delete(oid);
      return;
    }
    await runPool(held, FLUSH_CONCURRENCY, async ([oid, o]) => {
      await this.writeNow(oid, o.type, o.data, o.level);
      this.deferred.delete(oid);
    });
  }

  private async writeAsPack(held: Array<[string, { type: GitObjectType; data: Buffer; level: number; delta?: PackInput['delta'] }]>): Promise<void> {
    await this.ensureScanned();
    const fresh = held.filter(([oid]) => this.locate(oid) === null);
    if (fresh.length === 0) return;
    const { pack, idx, packSha } = writePack(fresh.map(([oid, o]) => ({ oid, type: o.type, data: o.data, level: o.level, ...(o.delta ? { delta: o.delta } : {}) })));
    const put = async (bytes: Buffer, final: string): Promise<void> => {
      // git's temp prefix, so gc cleans up a leftover; the index last, so no reader finds an index without its pack
      const tmp = path.join(this.packDir, `tmp_pack_tenantd_${randomBytes(6).toString('hex')}`);
      try {
        await this.writeThenRename(tmp, final, bytes);
      } catch (err: unknown) {
        throw retryable('E_GIT_WRITE', `writing pack ${packSha} failed: ${err instanceof Error ? err.message : String(err)}`, { pack: final, cause: errCode(err) ?? null }, err);
      }
    };
    await put(pack, path.join(this.packDir, `pack-${packSha}.pack`));
    await put(idx, path.join(this.packDir, `pack-${packSha}.idx`));
    await this.rescan();
  }

  /** Drop held objects without writing them (their commit was abandoned). */
  discard(): void {
    this.deferred.clear();
  }

  private async writeNow(oid: string, type: GitObjectType, data: Buffer, level: number): Promise<void> {
    await this.ensureScanned();
    // No rescan here: a duplicate loose copy of an object in a brand-new pack is harmless.
    const loc = this.locate(oid);
    if (loc) {
      await this.freshenPack(loc.pack);
      return;
    }
    const file = this.loosePath(oid);
    if (await this.freshenLoose(file)) return;

    const raw = Buffer.concat([Buffer.from(`${type} ${data.length}\0`, 'latin1'), data]);
    const deflated = raw.length >= ASYNC_DEFLATE_BYTES ? await deflateAsync(raw, { level }) : zlib.deflateSync(raw, { level });
    // git's prefix, so `git gc`/`git prune` clean up a leftover after its grace period
    const tmp = path.join(path.dirname(file), `tmp_obj_tenantd_${randomBytes(6).toString('hex')}`);
    try {
      await this.writeThenRename(tmp, file, deflated);
    } catch (err: unknown) {
      throw retryable('E_GIT_WRITE', `writing git object ${oid} failed: ${err instanceof Error ? err.message : String(err)}`, { oid, cause: errCode(err) ?? null }, err);
    }
  }

  /**
   * Write `bytes` to the new read-only file `tmp` (creating its directory if needed) and rename it
   * to `final`, so no reader sees a partial file; `tmp` never survives a failure. Through a
   * FileHandle, not writeFile: an fs wrapper that makes writeFile atomic (atomic-fs.ts) would add a
   * second temporary file to what is already a temp-and-rename.
   */
  private async writeThenRename(tmp: string, final: string, bytes: Buffer): Promise<void> {
    try {
      let fh: FileHandle;
      try {
        fh = await this.fsp.open(tmp, 'wx', 0o444);
      } catch (err: unknown) {
        if (errCode(err) !== 'ENOENT') throw err;
        await this.fsp.mkdir(path.dirname(tmp), { recursive: true });
        fh = await this.fsp.open(tmp, 'wx', 0o444);
      }
      try {
        await fh.writeFile(bytes);
      } finally {
        await fh.close();
      }
      await this.fsp.rename(tmp, final);
    } catch (err: unknown) {
      await this.fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** Close open pack files and drop the caches (the next read reopens what it needs). */
  async close(): Promise<void> {
    this.windows.clear();
    this.bases.clear();
    await Promise.all(this.packs.map((p) => p.requestClose()));
  }

  // -------------------------------------------------------------------------------------------
  // Scanning objects/pack

  private ensureScanned(): Promise<void> {
    if (!this.scanned) {
      const s = this.rescan();
      this.scanned = s;
      s.catch(() => {
        if (this.scanned === s) this.scanned = null;
      });
    }
    return this.scanned;
  }

  /**
   * Rescan objects/pack. A caller arriving while a scan runs may have missed a pack that scan
   * already listed past, so it waits for one more scan, shared by everyone who arrived meanwhile.
   */
  private rescan(): Promise<void> {
    if (!this.scanning) {
      const s = this.scanPacks().finally(() => {
        if (this.scanning === s) this.scanning = null;
      });
      this.scanning = s;
      return s;
    }
    if (!this.queuedScan) {
      this.queuedScan = this.scanning
        .catch(() => undefined)
        .then(() => {
          this.queuedScan = null;
          return this.rescan();
        });
    }
    return this.queuedScan;
  }

  private async scanPacks(): Promise<void> {
    let names: string[];
    try {
      names = await this.fsp.readdir(this.packDir);
    } catch (err: unknown) {
      if (errCode(err) !== 'ENOENT') throw objectError(this.packDir, err);
      names = [];
    }
    const present = new Set(names);
    const known = new Map(this.packs.map((p) => [p.name, p]));
    const loaded = await Promise.all(
      names
        .filter((n) => n.endsWith('.idx') && present.has(`${n.slice(0, -4)}.pack`))
        .map(async (n): Promise<Pack | null> => {
          const name = n.slice(0, -4);
          const existing = known.get(name);
          if (existing) return existing;
          try {
            const idx = PackIndex.parse(await this.fsp.readFile(path.join(this.packDir, n)));
            // an unparsable index may be mid-write by a non-atomic writer: try again next scan
            return idx ? new Pack(name, path.join(this.packDir, `${name}.pack`), idx, this.fsp) : null;
          } catch (err: unknown) {
            if (errCode(err) === 'ENOENT') return null;
            throw objectError(path.join(this.packDir, n), err);
          }
        }),
    );
    const next = loaded.filter((p): p is Pack => p !== null);
    const kept = new Set(next);
    for (const p of this.packs) {
      if (!kept.has(p)) this.retire(p);
    }
    // bigger packs first: they hold most objects
    next.sort((a, b) => b.idx.count - a.idx.count);
    this.packs = next;
  }

  private retire(pack: Pack): void {
    if (this.hotPack === pack) this.hotPack = null;
    const prefix = `${pack.id}:`;
    for (const k of [...this.windows.keys()]) {
      if (k.startsWith(prefix)) this.windows.delete(k);
    }
    void pack.requestClose();
  }

  // -------------------------------------------------------------------------------------------
  // Lookup

  private locate(oid: string): PackLocation | null {
    return this.locateRaw(Buffer.from(oid, 'hex'));
  }

  private locateRaw(raw: Buffer, prefer?: Pack): PackLocation | null {
    for (const pack of [prefer, this.hotPack]) {
      if (!pack) continue;
      const i = pack.idx.find(raw);
      if (i >= 0) return this.locationAt(pack, i);
    }
    for (const pack of this.packs) {
      if (pack === prefer || pack === this.hotPack) continue;
      const i = pack.idx.find(raw);
      if (i >= 0) {
        this.hotPack = pack;
        return this.locationAt(pack, i);
      }
    }
    return null;
  }

  private locationAt(pack: Pack, i: number): PackLocation {
    const offset = pack.idx.offsetAt(i);
    if (offset === null) throw corruptObject(pack.idx.oidAt(i), `bad offset in index of ${pack.name}`, { pack: pack.packPath });
    return { pack, offset };
  }

  private loosePath(oid: string): string {
    return path.join(this.objectsDir, oid.slice(0, 2), oid.slice(2));
  }

  private async looseExists(oid: string): Promise<boolean> {
    try {
      await this.fsp.access(this.loosePath(oid));
      return true;
    } catch {
      return false;
    }
  }

  private async tryRead(oid: string): Promise<GitObject | null | typeof GONE> {
    const loc = this.locate(oid);
    if (loc) {
      try {
        return await this.readPacked(loc, oid);
      } catch (err: unknown) {
        if (err instanceof PackGoneError) return GONE;
        throw err;
      }
    }
    return this.readLoose(oid);
  }

  /** Read what can be read; an object that fails is set to its error (missing ones are listed). */
  private async readBatch(oids: readonly string[], found: Map<string, GitObject | TenantdError>): Promise<{ missing: string[]; gone: string[] }> {
    const packed: Array<{ oid: string; loc: PackLocation }> = [];
    const loose: string[] = [];
    for (const oid of oids) {
      let loc: PackLocation | null;
      try {
        loc = this.locate(oid);
      } catch (err: unknown) {
        found.set(oid, objectError(oid, err));
        continue;
      }
      if (loc) packed.push({ oid, loc });
      else loose.push(oid);
    }
    // read each pack front to back, so consecutive objects come from the same window
    packed.sort((a, b) => a.loc.pack.id - b.loc.pack.id || a.loc.offset - b.loc.offset);
    const missing: string[] = [];
    const gone: string[] = [];
    const readPackedAll = async (): Promise<void> => {
      for (const { oid, loc } of packed) {
        try {
          found.set(oid, await this.readPacked(loc, oid));
        } catch (err: unknown) {
          if (err instanceof PackGoneError) gone.push(oid);
          else found.set(oid, objectError(oid, err));
        }
      }
    };
    const readLooseAll = (): Promise<void> =>
      runPool(loose, LOOSE_CONCURRENCY, async (oid) => {
        let obj: GitObject | null;
        try {
          obj = await this.readLoose(oid);
        } catch (err: unknown) {
          found.set(oid, objectError(oid, err));
          return;
        }
        if (obj) found.set(oid, obj);
        else missing.push(oid);
      });
    await Promise.all([readPackedAll(), readLooseAll()]);
    return { missing, gone };
  }

  private goneError(oid: string): TenantdError {
    return retryable('E_GIT_READ', `reading git object ${oid} failed: its pack disappeared twice`, { what: oid, cause: 'ENOENT' });
  }

  // -------------------------------------------------------------------------------------------
  // Loose objects

  private async readLoose(oid: string): Promise<GitObject | null> {
    let deflated: Buffer;
    try {
      deflated = await this.fsp.readFile(this.loosePath(oid));
    } catch (err: unknown) {
      if (errCode(err) === 'ENOENT') return null;
      throw objectError(oid, err);
    }
    let raw: Buffer;
    try {
      raw = zlib.inflateSync(deflated);
    } catch (err: unknown) {
      throw corruptObject(oid, `loose object does not inflate (${err instanceof Error ? err.message : String(err)})`, { path: this.loosePath(oid) }, err);
    }
    return parseLooseObject(oid, raw);
  }

  private async freshenLoose(file: string): Promise<boolean> {
    const now = new Date();
    try {
      await this.fsp.utimes(file, now, now);
      return true;
    } catch (err: unknown) {
      // EACCES/EPERM: someone else's file; it exists, which is what matters
      return errCode(err) === 'EPERM' || errCode(err) === 'EACCES';
    }
  }

  /** As git does, touch the pack that holds an object we were asked to write, so gc keeps it. */
  private async freshenPack(pack: Pack): Promise<void> {
    const now = Date.now();
    if (now - pack.freshenedAt < FRESHEN_PACK_MS) return;
    pack.freshenedAt = now;
    await this.fsp.utimes(pack.packPath, now / 1000, now / 1000).catch(() => undefined);
  }

  // -------------------------------------------------------------------------------------------
  // Packed objects

  /** Read and fully resolve the object at `loc` (walking delta chains iteratively). */
  private async readPacked(loc: PackLocation, oid: string): Promise<GitObject> {
    const cached = this.bases.get(`${loc.pack.id}:${loc.offset}`);
    if (cached) return { type: cached.type, data: Buffer.from(cached.data) };

    const chain: Array<{ key: string; delta: Buffer }> = [];
    let cur = loc;
    let base: GitObject;
    for (;;) {
      if (chain.length > MAX_DELTA_CHAIN) throw corruptObject(oid, 'delta chain too long (cyclic?)', { pack: cur.pack.packPath });
      const key = `${cur.pack.id}:${cur.offset}`;
      if (chain.length > 0) {
        const hit = this.bases.get(key);
        if (hit) {
          base = hit;
          break;
        }
      }
      const entry = await this.readEntry(cur, oid);
      if (entry.kind === 'object') {
        base = { type: entry.type, data: entry.data };
        if (chain.length > 0) this.bases.set(key, base);
        break;
      }
      chain.push({ key, delta: entry.delta });
      if (entry.kind === 'ofs') {
        cur = { pack: cur.pack, offset: entry.baseOffset };
        continue;
      }
      // REF_DELTA: the base is normally in the same pack; for robustness look anywhere
      const baseLoc = this.locateRaw(entry.baseOid, cur.pack);
      if (baseLoc) {
        cur = baseLoc;
        continue;
      }
      const baseHex = entry.baseOid.toString('hex');
      const looseBase = await this.readLoose(baseHex);
      if (!looseBase) throw corruptObject(oid, `delta base ${baseHex} not found`, { base: baseHex, pack: cur.pack.packPath });
      base = looseBase;
      break;
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const link = chain[i] as { key: string; delta: Buffer };
      base = { type: base.type, data: applyDelta(base.data, link.delta, oid) };
      // a delta result is usually the base of the next object in its chain
      this.bases.set(link.key, base);
    }
    // the result may be shared with the cache: the caller gets its own copy
    return chain.length > 0 ? { type: base.type, data: Buffer.from(base.data) } : base;
  }

  /** Read one pack entry: parse its header and inflate exactly its compressed bytes. */
  private async readEntry(loc: PackLocation, oid: string): Promise<PackEntry> {
    const { pack, offset } = loc;
    pack.acquire();
    try {
      const { fh, size } = await pack.open();
      const end = pack.idx.extentEnd(offset, size - 20);
      if (end < 0 || end <= offset || end > size - 20) {
        throw corruptObject(oid, `no object at offset ${offset} of ${pack.name}`, { pack: pack.packPath, offset });
      }
      const bytes = await this.readRange(pack, fh, size, offset, end);
      let pos = 0;
      let c = bytes[pos++] as number;
      const typeNum = (c >> 4) & 7;
      let objSize = c & 15;
      let mult = 16;
      while (c & 0x80) {
        if (pos >= bytes.length || mult > 2 ** 53) throw corruptObject(oid, 'bad pack entry header', { pack: pack.packPath, offset });
        c = bytes[pos++] as number;
        objSize += (c & 0x7f) * mult;
        mult *= 128;
      }
      let baseOffset = 0;
      let baseOid: Buffer | null = null;
      if (typeNum === OBJ_OFS_DELTA) {
        // big-endian base-128 where each continuation adds one (git's "offset encoding")
        if (pos >= bytes.length) throw corruptObject(oid, 'truncated delta offset', { pack: pack.packPath, offset });
        c = bytes[pos++] as number;
        let rel = c & 0x7f;
        while (c & 0x80) {
          if (pos >= bytes.length || rel > 2 ** 45) throw corruptObject(oid, 'bad delta offset', { pack: pack.packPath, offset });
          c = bytes[pos++] as number;
          rel = (rel + 1) * 128 + (c & 0x7f);
        }
        baseOffset = offset - rel;
        if (rel <= 0 || baseOffset < 12) throw corruptObject(oid, `bad delta base offset ${baseOffset}`, { pack: pack.packPath, offset });
      } else if (typeNum === OBJ_REF_DELTA) {
        if (pos + 20 > bytes.length) throw corruptObject(oid, 'truncated delta base id', { pack: pack.packPath, offset });
        baseOid = bytes.subarray(pos, pos + 20);
        pos += 20;
      } else if (!TYPE_BY_NUMBER[typeNum]) {
        throw corruptObject(oid, `unknown pack object type ${typeNum}`, { pack: pack.packPath, offset });
      }
      let data: Buffer;
      try {
        // The size is known: an output chunk of exactly that (the default is a fresh 16 KiB per
        // call, which dominated GC time for small objects), and a cap against corrupt data that
        // would inflate without end.
        const limit = Math.max(64, objSize + 1);
        data = zlib.inflateSync(bytes.subarray(pos), { chunkSize: limit, maxOutputLength: limit });
      } catch (err: unknown) {
        throw corruptObject(oid, `pack data does not inflate (${err instanceof Error ? err.message : String(err)})`, { pack: pack.packPath, offset }, err);
      }
      if (data.length !== objSize) {
        throw corruptObject(oid, `pack entry inflated to ${data.length} bytes, header says ${objSize}`, { pack: pack.packPath, offset });
      }
      if (typeNum === OBJ_OFS_DELTA) return { kind: 'ofs', delta: data, baseOffset };
      if (baseOid) return { kind: 'ref', delta: data, baseOid: Buffer.from(baseOid) };
      return { kind: 'object', type: TYPE_BY_NUMBER[typeNum] as GitObjectType, data };
    } catch (err: unknown) {
      if (err instanceof PackGoneError) throw err;
      if (!isTenantdError(err)) throw objectError(oid, err);
      // a pack-level failure (header/index mismatch) is reported against the object asked for
      if (err.code === 'E_GIT_OBJECT_CORRUPT' && !err.data.oid) throw corruptObject(oid, err.message, err.data, err);
      throw err;
    } finally {
      pack.release();
    }
  }

  /** Bytes [start, end) of a pack: from cached aligned windows, or read directly when large. */
  private async readRange(pack: Pack, fh: FileHandle, size: number, start: number, end: number): Promise<Buffer> {
    const len = end - start;
    const w0 = Math.floor(start / WINDOW_SIZE);
    const w1 = Math.floor((end - 1) / WINDOW_SIZE);
    if (len > WINDOW_SIZE || w1 - w0 > 1) {
      const buf = Buffer.allocUnsafe(len);
      await readFully(fh, buf, start);
      return buf;
    }
    const a = await this.window(pack, fh, size, w0);
    const from = start - w0 * WINDOW_SIZE;
    if (w0 === w1) return a.subarray(from, from + len);
    const b = await this.window(pack, fh, size, w1);
    return Buffer.concat([a.subarray(from), b.subarray(0, end - w1 * WINDOW_SIZE)]);
  }

  private window(pack: Pack, fh: FileHandle, size: number, w: number): Promise<Buffer> {
    const key = `${pack.id}:${w}`;
    const hit = this.windows.get(key);
    if (hit) {
      this.windows.delete(key);
      this.windows.set(key, hit);
      return hit;
    }
    const start = w * WINDOW_SIZE;
    const buf = Buffer.allocUnsafe(Math.min(WINDOW_SIZE, size - start));
    const p = readFully(fh, buf, start).then(() => buf);
    this.windows.set(key, p);
    p.catch(() => {
      if (this.windows.get(key) === p) this.windows.delete(key);
    });
    while (this.windows.size > WINDOWS_KEPT) this.windows.delete(this.windows.keys().next().value as string);
    return p;
  }
}
