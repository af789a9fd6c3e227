/**
 * Random access to the members of an image archive (OCI layout or docker save), as a
 * directory or as an uncompressed tar (indexed by one pass over its headers, data
 * skipped), and the writer of OCI image layout archives for `image save`.
 */
import { closeSync, createReadStream, existsSync, lstatSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BadRequest } from '../errors.js';
import {
  FILE_TYPES,
  badSparseMap,
  normalizeName,
  parseHeader,
  parsePax,
  parseSparseExtension,
  unsafePath,
  type SparseChunk,
} from './tarstream.js';
import { quote } from '../util/text.js';

export interface ArchiveSource {
  has(path: string): boolean;
  read(path: string, max?: number): Buffer;
  open(path: string): Readable;
  size(path: string): number;
  names(): string[];
}

export class DirSource implements ArchiveSource {
  private readonly root: string;
  constructor(root: string) {
    this.root = realpathSync(root);
  }
  private resolve(path: string): string {
    const n = normalizeName(path);
    if (unsafePath(n)) throw new BadRequest(`refusing the path ${quote(path)} in the image layout`);
    const full = join(this.root, n);
    // a symlink inside the layout must not lead outside it
    const real = existsSync(full) ? realpathSync(full) : full;
    if (real !== this.root && !real.startsWith(`${this.root}/`))
      throw new BadRequest(`refusing ${quote(path)}: it leads outside the image layout`);
    return real;
  }
  has(path: string): boolean {
    try {
      return statSync(this.resolve(path)).isFile();
    } catch {
      return false;
    }
  }
  read(path: string, max = 64 << 20): Buffer {
    const p = this.resolve(path);
    if (!this.has(path)) throw new BadRequest(`the image layout has no ${path}`);
    if (lstatSync(p).size > max) throw new BadRequest(`${path} is too large`);
    return readFileSync(p);
  }
  open(path: string): Readable {
    if (!this.has(path)) throw new BadRequest(`the image layout has no ${path}`);
    return createReadStream(this.resolve(path), { highWaterMark: 1 << 20 });
  }
  size(path: string): number {
    return statSync(this.resolve(path)).size;
  }
  names(): string[] {
    return [];
  }
}

/** An uncompressed tar, indexed: member name -> data offset and size. */
export class TarSource implements ArchiveSource {
  /** size: the member's; a sparse member's stretches are stored one after the other from offset */
  private readonly index = new Map<string, { offset: number; size: number; sparse?: SparseChunk[] }>();
  private readonly links = new Map<string, string>();

  constructor(private readonly file: string) {
    const fd = openSync(file, 'r');
    try {
      const block = Buffer.alloc(512);
      let off = 0;
      let pax: Record<string, string> = {};
      let longName: string | undefined;
      const total = statSync(file).size;
      while (off + 512 <= total) {
        if (readSync(fd, block, 0, 512, off) !== 512) break;
        const h = parseHeader(block);
        if (!h) break;
        let dataOff = off + 512;
        const padded = Math.ceil(h.size / 512) * 512;
        if (h.type === 'x' || h.type === 'L') {
          if (h.size > 1 << 20) throw new BadRequest('refusing the archive: an extension header over 1 MiB');
          const data = Buffer.alloc(h.size);
          readSync(fd, data, 0, h.size, dataOff);
          if (h.type === 'x') pax = parsePax(data);
          else longName = data.toString('utf8').replace(/\0.*$/s, '');
          off = dataOff + padded;
          continue;
        }
        const name = normalizeName(pax.path ?? longName ?? h.name);
        const size = pax.size !== undefined ? Number(pax.size) : h.size;
        pax = {};
        longName = undefined;
        if (h.sparse) {
          // GNU old-format sparse member: the map goes on in extension blocks before the data
          for (let more = h.sparse.extended; more; dataOff += 512) {
            if (h.sparse.map.length > 1 << 16 || readSync(fd, block, 0, 512, dataOff) !== 512)
              throw new BadRequest('refusing the archive: a corrupt sparse map');
            const ext = parseSparseExtension(block);
            h.sparse.map.push(...ext.map);
            more = ext.extended;
          }
          const why = badSparseMap(h);
          if (why) throw new BadRequest(`refusing the archive: member ${quote(name)}: ${why}`);
          this.index.set(name, { offset: dataOff, size: h.sparse.realSize, sparse: h.sparse.map });
        } else if (FILE_TYPES.has(h.type)) this.index.set(name, { offset: dataOff, size });
        else if (h.type === '1') this.links.set(name, normalizeName(h.linkname));
        off = dataOff + (FILE_TYPES.has(h.type) ? Math.ceil(size / 512) * 512 : padded);
      }
      if (this.index.size === 0) throw new BadRequest('not a tar archive, or an empty one');
    } finally {
      closeSync(fd);
    }
  }

  private entry(path: string) {
    const n = normalizeName(path);
    return this.index.get(n) ?? this.index.get(this.links.get(n) ?? '');
  }
  has(path: string): boolean {
    return Boolean(this.entry(path));
  }
  read(path: string, max = 64 << 20): Buffer {
    const e = this.entry(path);
    if (!e) throw new BadRequest(`the archive has no ${path}`);
    if (e.size > max) throw new BadRequest(`${path} is too large`);
    const fd = openSync(this.file, 'r');
    try {
      const b = Buffer.alloc(e.size);
      let at = e.offset;
      for (const c of e.sparse ?? [{ offset: 0, size: e.size }]) {
        readSync(fd, b, c.offset, c.size, at);
        at += c.size;
      }
      return b;
    } finally {
      closeSync(fd);
    }
  }
  open(path: string): Readable {
    const e = this.entry(path);
    if (!e) throw new BadRequest(`the archive has no ${path}`);
    if (e.size === 0) return Readable.from([]);
    if (e.sparse) return Readable.from(sparseChunks(this.file, e.offset, e.size, e.sparse));
    return createReadStream(this.file, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20 });
  }
  size(path: string): number {
    const e = this.entry(path);
    if (!e) throw new BadRequest(`the archive has no ${path}`);
    return e.size;
  }
  names(): string[] {
    return [...this.index.keys()];
  }
}

/** A sparse member's bytes: its stored stretches from `offset` on, zeros in the holes. */
async function* sparseChunks(file: string, offset: number, size: number, map: SparseChunk[]): AsyncGenerator<Buffer> {
  const STEP = 1 << 20;
  const fd = openSync(file, 'r');
  try {
    let pos = 0;
    let at = offset;
    for (const c of [...map, { offset: size, size: 0 }]) {
      for (; pos < c.offset; pos += Math.min(STEP, c.offset - pos)) yield Buffer.alloc(Math.min(STEP, c.offset - pos));
      for (let left = c.size; left > 0; ) {
        const b = Buffer.alloc(Math.min(STEP, left));
        readSync(fd, b, 0, b.length, at);
        at += b.length;
        pos += b.length;
        left -= b.length;
        yield b;
      }
    }
  } finally {
    closeSync(fd);
  }
}

// ---- writing -----------------------------------------------------------------------

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar header for a regular file (names here are short: blobs/sha256/<hex>). */
export function fileHeader(name: string, size: number, mtime = 0): Buffer {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(mtime, 12), 136, 'latin1');
  h[156] = size < 0 ? 0x35 : 0x30;
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.write(octal(sum, 7) + ' ', 148, 'latin1');
  return h;
}

export function dirHeader(name: string): Buffer {
  const h = fileHeader(name, 0);
  h[156] = 0x35;
  h.write(octal(0o755, 8), 100, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.write(octal(sum, 7) + ' ', 148, 'latin1');
  return h;
}

export type ArchiveMember = { name: string; data: Buffer } | { name: string; file: string; size: number } | { name: string; dir: true };

/** A tar of the members, streamed (blobs are read in 1 MiB chunks, never held whole). */
export function tarStream(members: ArchiveMember[], onBytes?: (n: number) => void): Readable {
  async function* gen() {
    for (const m of members) {
      if ('dir' in m) {
        yield dirHeader(m.name.endsWith('/') ? m.name : `${m.name}/`);
        continue;
      }
      const size = 'data' in m ? m.data.length : m.size;
      yield fileHeader(m.name, size);
      if ('data' in m) yield m.data;
      else {
        let seen = 0;
        for await (const chunk of createReadStream(m.file, { highWaterMark: 1 << 20 })) {
          seen += (chunk as Buffer).length;
          onBytes?.((chunk as Buffer).length);
          yield chunk as Buffer;
        }
        if (seen !== size) throw new Error(`${m.file} changed size while being written`);
      }
      if (size % 512) yield Buffer.alloc(512 - (size % 512));
    }
    yield Buffer.alloc(1024);
  }
  return Readable.from(gen(), { objectMode: false });
}
