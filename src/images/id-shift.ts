/**
 * Shift the owners of a layer tar into a user namespace's id range while it flows to
 * GNU tar: the writable layer of a server with its own range is packed with the
 * container's ids (0..count-1, `nb_layer_pack_shifted`), and unpacked on another host
 * as that host's range (base + id). Only the ustar uid/gid fields of each header are
 * rewritten (octal, or GNU's base-256 when the id needs more than 7 octal digits) and
 * the header checksum recomputed; data blocks pass untouched. A pax header that sets
 * uid or gid (novabox's packer writes none) is refused rather than guessed at.
 * GNU tar's --owner-map applies only when creating an archive, hence this.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { BadRequest } from '../errors.js';
import type { IdShift } from '../sys/layer.js';

const BLOCK = 512;

export function readTarNumber(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    let v = b[off]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    return v;
  }
  const s = b
    .toString('latin1', off, off + len)
    .replace(/[\0 ]+$/g, '')
    .replace(/^[ ]+/, '');
  return s === '' ? 0 : Number.parseInt(s, 8);
}

export function writeTarNumber(b: Buffer, off: number, len: number, v: number): void {
  if (v < 8 ** (len - 1)) {
    b.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1');
    return;
  }
  b.fill(0, off, off + len);
  b[off] = 0x80;
  for (let i = len - 1, x = v; i > 0; i--, x = Math.floor(x / 256)) b[off + i] = x % 256;
}

export function tarChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}

/** pax records: "LEN key=value\n"... */
function paxKeys(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number.parseInt(data.toString('latin1', i, sp), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const rec = data.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

export class TarIdShifter extends Transform {
  private carry: Buffer = Buffer.alloc(0);
  /** bytes of entry data still to pass (padded to blocks) */
  private dataLeft = 0;
  /** a pax header's data being collected */
  private pax: { left: number; chunks: Buffer[]; global: boolean } | undefined;
  private paxSize: number | undefined;

  constructor(private readonly shift: IdShift) {
    super();
  }

  private mapId(id: number, base: number, what: string): number {
    if (id >= this.shift.count)
      throw new BadRequest(`the writable layer holds ${what} ${id}, outside the ${this.shift.count} ids of a server's range`);
    return base + id;
  }

  private header(h: Buffer): void {
    if (h.every((x) => x === 0)) return; // end-of-archive blocks
    const type = String.fromCharCode(h[156]!);
    const size = readTarNumber(h, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x' || type === 'g') {
      this.pax = { left: padded, chunks: [], global: type === 'g' };
      this.dataLeft = 0;
      return;
    }
    const eff = type === 'L' || type === 'K' ? size : (this.paxSize ?? size);
    if (type !== 'L' && type !== 'K') {
      this.paxSize = undefined;
      writeTarNumber(h, 108, 8, this.mapId(readTarNumber(h, 108, 8), this.shift.uidBase, 'uid'));
      writeTarNumber(h, 116, 8, this.mapId(readTarNumber(h, 116, 8), this.shift.gidBase, 'gid'));
      tarChecksum(h);
    }
    this.dataLeft = Math.ceil(eff / BLOCK) * BLOCK;
  }

  private paxDone(): void {
    const p = this.pax!;
    this.pax = undefined;
    const keys = paxKeys(Buffer.concat(p.chunks));
    if (keys.has('uid') || keys.has('gid') || keys.has('uname') || keys.has('gname')) {
      throw new BadRequest('the writable layer sets owners in pax headers, which novabox does not shift: it was not packed by novabox');
    }
    if (!p.global && keys.has('size')) this.paxSize = Number(keys.get('size'));
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    try {
      let c = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
      this.carry = Buffer.alloc(0);
      const out: Buffer[] = [];
      while (c.length > 0) {
        if (this.pax) {
          const n = Math.min(this.pax.left, c.length);
          this.pax.chunks.push(c.subarray(0, n));
          out.push(c.subarray(0, n));
          this.pax.left -= n;
          c = c.subarray(n);
          if (this.pax.left === 0) this.paxDone();
          continue;
        }
        if (this.dataLeft > 0) {
          const n = Math.min(this.dataLeft, c.length);
          out.push(c.subarray(0, n));
          this.dataLeft -= n;
          c = c.subarray(n);
          continue;
        }
        if (c.length < BLOCK) {
          this.carry = Buffer.from(c);
          break;
        }
        const h = Buffer.from(c.subarray(0, BLOCK));
        c = c.subarray(BLOCK);
        this.header(h);
        out.push(h);
      }
      done(null, out.length === 1 ? out[0] : Buffer.concat(out));
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    done(null, this.carry.length ? this.carry : undefined);
  }
}
