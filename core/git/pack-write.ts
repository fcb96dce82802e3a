/**
 * Writing a pack (and its v2 index) for a batch of new objects: a chain of commits rewrites the
 * same 10,000-entry tree once per commit, and as loose objects that is ~450 KB of file per commit.
 * In a pack, a tree derived from an earlier tree of the same batch is stored as an offset delta
 * (a few copy instructions and the changed entries), so a 200-commit burst writes one small pack.
 * Format: git's pack v2 and idx v2 (Documentation/gitformat-pack.txt).
 */
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import type { GitObjectType } from './object-db.js';

const TYPE_NUMBER: Record<GitObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };
const OFS_DELTA = 6;
/** Like git's default --depth: a longer chain makes the last object slow to read. */
export const MAX_DELTA_DEPTH = 50;

/** A copy from the base (`[start, end)`) or literal bytes. */
export type DeltaPiece = { copy: [number, number] } | { insert: Buffer };

export interface PackInput {
  oid: string;
  type: GitObjectType;
  data: Buffer;
  /** deflate level for a whole object */
  level: number;
  /** how this object derives from another of the same batch, if it does */
  delta?: { base: string; pieces: DeltaPiece[] };
}

function varint(n: number, out: number[]): void {
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** git's delta: source size, target size, then copy and insert instructions. */
export function encodeDelta(baseSize: number, targetSize: number, pieces: readonly DeltaPiece[]): Buffer {
  const out: number[] = [];
  varint(baseSize, out);
  varint(targetSize, out);
  const chunks: Buffer[] = [];
  const flush = (): void => {
    if (out.length > 0) chunks.push(Buffer.from(out.splice(0)));
  };
  for (const p of pieces) {
    if ('copy' in p) {
      const end = p.copy[1];
      let start = p.copy[0];
      while (start < end) {
        const size = Math.min(end - start, 0xffffff);
        let op = 0x80;
        const args: number[] = [];
        for (let i = 0; i < 4; i++) {
          const b = Math.floor(start / 2 ** (8 * i)) & 0xff;
          if (b !== 0) {
            op |= 1 << i;
            args.push(b);
          }
        }
        for (let i = 0; i < 3; i++) {
          const b = (size >> (8 * i)) & 0xff;
          if (b !== 0) {
            op |= 0x10 << i;
            args.push(b);
          }
        }
        out.push(op, ...args);
        start += size;
      }
    } else {
      for (let at = 0; at < p.insert.length; at += 127) {
        const part = p.insert.subarray(at, at + 127);
        out.push(part.length);
        flush();
        chunks.push(part);
      }
    }
  }
  flush();
  return Buffer.concat(chunks);
}

function objectHeader(type: number, size: number): Buffer {
  const out: number[] = [];
  let v = size;
  let first = (type << 4) | (v & 0x0f);
  v = Math.floor(v / 16);
  while (v > 0) {
    out.push(first | 0x80);
    first = v & 0x7f;
    v = Math.floor(v / 128);
  }
  out.push(first);
  return Buffer.from(out);
}

/** The distance to an earlier object, in git's offset-delta encoding. */
function ofsBytes(distance: number): Buffer {
  const bytes = [distance & 0x7f];
  let d = Math.floor(distance / 128);
  while (d > 0) {
    d -= 1;
    bytes.unshift(0x80 | (d & 0x7f));
    d = Math.floor(d / 128);
  }
  return Buffer.from(bytes);
}

/**
 * The pack and index bytes for `objects` (no duplicates). An object is stored as a delta only when
 * its base comes earlier in `objects` and the chain stays within MAX_DELTA_DEPTH.
 */
export function writePack(objects: readonly PackInput[]): { pack: Buffer; idx: Buffer; packSha: string; deltas: number } {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.write('PACK', 0, 'latin1');
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(objects.length, 8);
  parts.push(header);
  let offset = 12;
  const placed = new Map<string, { offset: number; depth: number; size: number }>();
  const entries: Array<{ oid: Buffer; offset: number; crc: number }> = [];
  let deltas = 0;
  for (const o of objects) {
    const base = o.delta ? placed.get(o.delta.base) : undefined;
    let bytes: Buffer;
    let depth = 0;
    if (o.delta && base && base.depth < MAX_DELTA_DEPTH) {
      const delta = encodeDelta(base.size, o.data.length, o.delta.pieces);
      bytes = Buffer.concat([objectHeader(OFS_DELTA, delta.length), ofsBytes(offset - base.offset), zlib.deflateSync(delta, { level: 1 })]);
      depth = base.depth + 1;
      deltas++;
    } else {
      bytes = Buffer.concat([objectHeader(TYPE_NUMBER[o.type], o.data.length), zlib.deflateSync(o.data, { level: o.level })]);
    }
    placed.set(o.oid, { offset, depth, size: o.data.length });
    entries.push({ oid: Buffer.from(o.oid, 'hex'), offset, crc: zlib.crc32(bytes) });
    parts.push(bytes);
    offset += bytes.length;
  }
  const body = Buffer.concat(parts);
  const packSum = createHash('sha1').update(body).digest();
  const pack = Buffer.concat([body, packSum]);

  entries.sort((a, b) => Buffer.compare(a.oid, b.oid));
  const n = entries.length;
  const large = entries.filter((e) => e.offset >= 0x80000000);
  const idx = Buffer.alloc(8 + 256 * 4 + n * (20 + 4 + 4) + large.length * 8 + 40);
  idx.writeUInt32BE(0xff744f63, 0);
  idx.writeUInt32BE(2, 4);
  const fanout = new Array<number>(256).fill(0);
  for (const e of entries) fanout[e.oid[0] as number] = (fanout[e.oid[0] as number] as number) + 1;
  let running = 0;
  for (let i = 0; i < 256; i++) {
    running += fanout[i] as number;
    idx.writeUInt32BE(running, 8 + i * 4);
  }
  let at = 8 + 256 * 4;
  for (const e of entries) at += e.oid.copy(idx, at);
  for (const e of entries) at = idx.writeUInt32BE(e.crc >>> 0, at);
  let li = 0;
  for (const e of entries) at = idx.writeUInt32BE(e.offset >= 0x80000000 ? (0x80000000 | li++) >>> 0 : e.offset, at);
  for (const e of large) at = idx.writeBigUInt64BE(BigInt(e.offset), at);
  at += packSum.copy(idx, at);
  createHash('sha1').update(idx.subarray(0, at)).digest().copy(idx, at);
  return { pack, idx, packSha: packSum.toString('hex'), deltas };
}
