/**
 * A streaming tar header reader and the safety rules of extraction. The validator sits
 * in front of the extracting tar: it forwards an entry's bytes only after the entry's
 * header (with its PAX / GNU long-name extensions) passed the checks, so the extractor
 * never sees a hostile entry. Pure: no file system access.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { BadRequest } from '../errors.js';
import { quote } from '../util/text.js';

export interface TarEntry {
  name: string;
  /** '0' file, '1' hard link, '2' symlink, '3' char dev, '4' block dev, '5' dir, '6' fifo */
  type: string;
  linkname: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  devMajor: number;
  devMinor: number;
  /** a GNU old-format sparse file (type 'S'): the file's size, and whether extension blocks of its map follow */
  sparse?: { realSize: number; extended: boolean; map: SparseChunk[] };
}

/** One stretch of data of a sparse file: its bytes are stored in the archive, the rest is holes. */
export interface SparseChunk {
  offset: number;
  size: number;
}

const EXTENSIONS = new Set(['x', 'g', 'L', 'K']);
/** The longest sparse map accepted (GNU tar writes one stretch per run of data). */
const MAX_SPARSE_CHUNKS = 1 << 16;
const KNOWN = new Set(['0', '\0', '1', '2', '3', '4', '5', '6', '7', 'S']);
/** Types whose entry is a regular file with data blocks ('S': GNU sparse, its stored stretches). */
export const FILE_TYPES = new Set(['0', '\0', '7', 'S']);

/** The sparse map entries of a GNU header or extension block: `count` of (offset, size), 12 octal bytes each. */
function sparseEntries(b: Buffer, start: number, count: number): SparseChunk[] {
  const out: SparseChunk[] = [];
  for (let i = 0; i < count; i++) {
    const at = start + i * 24;
    if (b[at] === 0) break;
    out.push({ offset: num(b, at, 12), size: num(b, at + 12, 12) });
  }
  return out;
}

/**
 * A GNU sparse extension block (GNU tar's `struct sparse_header`): 21 more map entries and,
 * at byte 504, whether another block follows.
 */
export function parseSparseExtension(b: Buffer): { map: SparseChunk[]; extended: boolean } {
  return { map: sparseEntries(b, 0, 21), extended: b[504] !== 0 };
}

/** Why a sparse map cannot describe its entry (GNU tar would refuse it too), or undefined. */
export function badSparseMap(e: TarEntry): string | undefined {
  const s = e.sparse!;
  let stored = 0;
  let end = 0;
  for (const c of s.map) {
    if (!Number.isSafeInteger(c.offset) || !Number.isSafeInteger(c.size) || c.offset < end || c.offset + c.size > s.realSize) {
      return 'a sparse map with overlapping stretches or stretches past the end of the file';
    }
    end = c.offset + c.size;
    stored += c.size;
  }
  if (stored !== e.size) return `a sparse map of ${stored} bytes for ${e.size} bytes of data`;
  return undefined;
}

function cstr(b: Buffer, start: number, len: number): string {
  const end = b.indexOf(0, start);
  return b.toString('utf8', start, end < 0 || end > start + len ? start + len : end);
}

function num(b: Buffer, start: number, len: number): number {
  if (b[start] & 0x80) {
    // GNU base-256
    let v = 0;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + b[i];
    return v;
  }
  const s = cstr(b, start, len).trim();
  return s ? parseInt(s, 8) : 0;
}

/** undefined for an all-zero block (end of archive). Throws on a bad checksum. */
export function parseHeader(b: Buffer): TarEntry | undefined {
  let zero = true;
  for (let i = 0; i < 512; i++)
    if (b[i] !== 0) {
      zero = false;
      break;
    }
  if (zero) return undefined;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : b[i];
  const stored = num(b, 148, 8);
  if (stored !== sum) throw new BadRequest('not a tar archive (or a corrupt one): a header checksum does not match');
  let name = cstr(b, 0, 100);
  // POSIX ustar ("ustar\0") has a name prefix at 345; GNU's "ustar  \0" keeps times and the
  // sparse map there instead
  if (b.toString('latin1', 257, 263) === 'ustar\0') {
    const prefix = cstr(b, 345, 155);
    if (prefix && b[156] !== 'L'.charCodeAt(0)) name = `${prefix}/${name}`;
  }
  const type = String.fromCharCode(b[156] || 48);
  // GNU tar's old sparse format (`struct oldgnu_header`): 4 map entries at 386, isextended
  // at 482, the file's real size at 483; the data blocks hold only the stretches of the map
  const sparse = type === 'S' ? { realSize: num(b, 483, 12), extended: b[482] !== 0, map: sparseEntries(b, 386, 4) } : undefined;
  return {
    name,
    type,
    linkname: cstr(b, 157, 100),
    size: num(b, 124, 12),
    mode: num(b, 100, 8),
    uid: num(b, 108, 8),
    gid: num(b, 116, 8),
    devMajor: num(b, 329, 8),
    devMinor: num(b, 337, 8),
    ...(sparse ? { sparse } : {}),
  };
}

/** PAX records "LEN key=value\n". */
export function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.toString('latin1', i, sp), 10);
    if (!(len > 0) || i + len > data.length) throw new BadRequest('corrupt PAX extended header in the archive');
    const rec = data.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** "./a/b/" -> "a/b"; "" for the root itself. */
export function normalizeName(name: string): string {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2);
  if (n === '.') n = '';
  n = n
    .replace(/\/+$/, '')
    .replace(/\/\.(?=\/|$)/g, '')
    .replace(/\/{2,}/g, '/');
  return n;
}

/** Why a path may not be written inside a layer, or undefined when it is fine. */
export function unsafePath(name: string): string | undefined {
  if (name.startsWith('/')) return 'absolute path';
  if (name.split('/').some((c) => c === '..')) return "'..' in the path";
  if (name.includes('\0')) return 'NUL in the path';
  return undefined;
}

/**
 * What an OCI whiteout entry means for the overlay form of a layer: `.wh..wh..opq` marks
 * its directory opaque; `.wh.NAME` hides NAME of the layers below (a 0/0 char device
 * NAME in overlayfs). The reverse of what native-bindings/src/layer.c writes.
 */
export function whiteoutTarget(name: string): { opaqueDir: string } | { hides: string } | undefined {
  const n = normalizeName(name);
  const slash = n.lastIndexOf('/');
  const dir = slash < 0 ? '' : n.slice(0, slash);
  const base = n.slice(slash + 1);
  if (base === '.wh..wh..opq') return { opaqueDir: dir };
  if (base.startsWith('.wh.') && base.length > 4) return { hides: dir ? `${dir}/${base.slice(4)}` : base.slice(4) };
  return undefined;
}

export interface CheckOptions {
  /** device nodes allowed (other than the 0/0 whiteout) */
  trusted: boolean;
  /**
   * where the rootfs's /dev is in the archive ('dev/', default; 'rootfs/dev/' in an LXC
   * tarball): device nodes there are dropped, trusted or not, since a server's /dev is
   * novabox's own (debootstrap and distribution tarballs ship some)
   */
  devDir?: string;
}

/** Whether an entry is a device node (not the 0/0 overlay whiteout). */
function isDevice(e: TarEntry): boolean {
  return (e.type === '3' || e.type === '4') && !(e.type === '3' && e.devMajor === 0 && e.devMinor === 0);
}

/**
 * The safety rules, entry by entry, with what they need to remember: the symlinks the
 * archive created so far (an entry may not be written through one), and the paths that
 * exist (a hard link must point at one).
 */
export class EntryChecker {
  private readonly symlinks = new Set<string>();
  private readonly seen = new Set<string>();
  /** device nodes under /dev left out, and how many */
  private readonly dropped = new Set<string>();
  /** OCI whiteouts met: `dir/.wh.NAME` paths, and opaque markers' dirs */
  readonly whiteouts: string[] = [];
  readonly opaques: string[] = [];
  entries = 0;

  constructor(private readonly opts: CheckOptions) {}

  /** Throws for an entry that may not be written; false for one to leave out (a device node under /dev). */
  check(e: TarEntry): boolean {
    const raw = e.name;
    const name = normalizeName(raw);
    const bad = (why: string): never => {
      throw new BadRequest(`refusing the archive: entry ${quote(raw)}: ${why}`);
    };
    this.entries++;
    // "/" (as umoci writes the root) is the layer's root itself, not an absolute path
    const isRoot = /^[./]*$/.test(raw) && !raw.includes('..');
    const pathWhy = isRoot ? undefined : (unsafePath(raw) ?? unsafePath(name));
    if (pathWhy) bad(pathWhy);
    if (!KNOWN.has(e.type)) bad(`unsupported entry type '${e.type}'`);
    const parts = name ? name.split('/') : [];
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (this.symlinks.has(prefix)) bad(`it would be written through the symlink "${prefix}"`);
    }
    const underDev = name.startsWith(this.opts.devDir ?? 'dev/') && name.length > (this.opts.devDir ?? 'dev/').length;
    if (e.type === '1' && this.dropped.has(normalizeName(e.linkname))) {
      // a hard link to a device node left out is that device node
      if (!underDev) bad(`hard link to the device node ${quote(e.linkname)} outside /dev`);
      this.dropped.add(name);
      return false;
    }
    if (isDevice(e) && underDev) {
      this.dropped.add(name);
      return false;
    }
    if (e.type === '1') {
      const target = normalizeName(e.linkname);
      if (!e.linkname || unsafePath(e.linkname) || unsafePath(target) || target === '')
        bad(`hard link to ${quote(e.linkname)}, outside the layer`);
      const tparts = target.split('/');
      for (let i = 1; i <= tparts.length; i++) {
        const prefix = tparts.slice(0, i).join('/');
        if (this.symlinks.has(prefix) && i < tparts.length) bad(`hard link through the symlink "${prefix}"`);
      }
      if (!this.seen.has(target)) bad(`hard link to ${quote(e.linkname)}, which is not earlier in the archive`);
    }
    if (isDevice(e) && !this.opts.trusted) {
      bad(`device node (${e.type === '3' ? 'character' : 'block'} ${e.devMajor}:${e.devMinor}); import with --trusted to allow devices`);
    }
    if (e.type === '2') this.symlinks.add(name);
    else this.symlinks.delete(name);
    this.seen.add(name);
    const wh = whiteoutTarget(name);
    if (wh || (parts[parts.length - 1] ?? '').startsWith('.wh.')) {
      if (!FILE_TYPES.has(e.type)) bad('whiteout that is not a regular file');
      if (wh && 'opaqueDir' in wh) this.opaques.push(wh.opaqueDir);
      else if (wh) this.whiteouts.push(name);
    }
    this.dropped.delete(name);
    return true;
  }
}

/**
 * Forwards a tar stream entry by entry, after EntryChecker accepted each header. Data
 * is passed through as it comes (never buffered whole); only extension headers wait for
 * the entry they describe. Errors end the stream with the checker's one-line message.
 */
export class TarValidator extends Transform {
  readonly checker: EntryChecker;
  private buf: Buffer = Buffer.alloc(0);
  /** bytes of entry data (with padding) still to forward */
  private dataLeft = 0;
  /** the padding part of dataLeft's entry */
  private padding = 0;
  private held: Buffer[] = [];
  private extLeft = 0;
  private extType = '';
  private extSize = 0;
  private ext: Buffer[] = [];
  private pax: Record<string, string> = {};
  private longName?: string;
  private longLink?: string;
  /** a sparse entry whose map continues in extension blocks: held until its map is whole */
  private sparseEntry?: TarEntry;
  private ended = false;
  /** called for each accepted entry (after the checks) */
  onEntry?: (e: TarEntry) => void;

  constructor(
    opts: CheckOptions,
    private readonly maxExtension = 1 << 20,
  ) {
    super();
    this.checker = new EntryChecker(opts);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.feed(chunk);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    // some writers (umoci's whiteout-only layers) stop after the last entry's data, without
    // its padding or the end blocks: complete the archive
    if (!this.ended && this.dataLeft && this.dataLeft <= this.padding && !this.buf.length) {
      this.push(Buffer.alloc(this.dataLeft));
      this.dataLeft = 0;
    }
    if (!this.ended && (this.buf.length || this.dataLeft || this.extLeft || this.held.length || this.sparseEntry)) {
      done(new BadRequest('the archive ends in the middle of an entry (truncated?)'));
      return;
    }
    if (!this.ended && this.checker.entries === 0) {
      done(new BadRequest('not a tar archive: it is empty'));
      return;
    }
    if (!this.ended) this.push(Buffer.alloc(1024));
    done();
  }

  private feed(chunk: Buffer): void {
    let c = chunk;
    while (c.length) {
      if (this.ended) {
        this.push(c);
        return;
      }
      if (this.dataLeft) {
        const n = Math.min(this.dataLeft, c.length);
        this.push(c.subarray(0, n));
        this.dataLeft -= n;
        c = c.subarray(n);
        continue;
      }
      if (this.extLeft) {
        const n = Math.min(this.extLeft, c.length);
        this.ext.push(c.subarray(0, n));
        this.held.push(c.subarray(0, n));
        this.extLeft -= n;
        c = c.subarray(n);
        if (!this.extLeft) this.endExtension();
        continue;
      }
      // a header (or a sparse map's extension block): gather 512 bytes
      const need = 512 - this.buf.length;
      if (c.length < need) {
        this.buf = Buffer.concat([this.buf, c]);
        return;
      }
      const block = this.buf.length ? Buffer.concat([this.buf, c.subarray(0, need)]) : c.subarray(0, need);
      this.buf = Buffer.alloc(0);
      c = c.subarray(need);
      if (this.sparseEntry) this.sparseExtension(block);
      else this.header(block);
    }
  }

  private header(block: Buffer): void {
    const h = parseHeader(block);
    if (!h) {
      // end of archive: whatever follows is padding
      if (this.held.length) throw new BadRequest('the archive ends after an extension header');
      this.ended = true;
      this.push(block);
      return;
    }
    if (EXTENSIONS.has(h.type)) {
      if (h.size > this.maxExtension) throw new BadRequest(`refusing the archive: an extension header of ${h.size} bytes`);
      this.held.push(Buffer.from(block));
      this.extType = h.type;
      this.ext = [];
      this.extLeft = Math.ceil(h.size / 512) * 512;
      this.extSize = h.size;
      if (!this.extLeft) this.endExtension();
      return;
    }
    if (this.longName !== undefined) h.name = this.longName;
    if (this.longLink !== undefined) h.linkname = this.longLink;
    if (this.pax.path !== undefined) h.name = this.pax.path;
    if (this.pax.linkpath !== undefined) h.linkname = this.pax.linkpath;
    if (this.pax.size !== undefined) h.size = Number(this.pax.size);
    this.pax = {};
    this.longName = this.longLink = undefined;
    if (!this.checker.check(h)) {
      // left out: its extension headers and its header go nowhere (a device node has no data)
      this.held = [];
      this.dataLeft = this.padding = 0;
      return;
    }
    if (h.sparse?.extended) {
      // its map goes on in the next blocks: hold the header until the map is whole
      this.held.push(Buffer.from(block));
      this.sparseEntry = h;
      if (h.sparse.map.length > MAX_SPARSE_CHUNKS)
        throw new BadRequest(`refusing the archive: entry ${quote(h.name)}: a sparse map over ${MAX_SPARSE_CHUNKS} stretches`);
      return;
    }
    this.acceptEntry(h, block);
  }

  private sparseExtension(block: Buffer): void {
    const h = this.sparseEntry!;
    const ext = parseSparseExtension(block);
    h.sparse!.map.push(...ext.map);
    h.sparse!.extended = ext.extended;
    this.held.push(Buffer.from(block));
    if (h.sparse!.map.length > MAX_SPARSE_CHUNKS)
      throw new BadRequest(`refusing the archive: entry ${quote(h.name)}: a sparse map over ${MAX_SPARSE_CHUNKS} stretches`);
    if (ext.extended) return;
    this.sparseEntry = undefined;
    this.acceptEntry(h);
  }

  /** Forward what was held for the entry and its header block, then its data. */
  private acceptEntry(h: TarEntry, block?: Buffer): void {
    if (h.sparse) {
      const why = badSparseMap(h);
      if (why) throw new BadRequest(`refusing the archive: entry ${quote(h.name)}: ${why}`);
    }
    this.onEntry?.(h);
    for (const b of this.held) this.push(b);
    this.held = [];
    if (block) this.push(block);
    const hasData = FILE_TYPES.has(h.type);
    this.dataLeft = hasData ? Math.ceil(h.size / 512) * 512 : 0;
    this.padding = hasData ? this.dataLeft - h.size : 0;
  }

  private endExtension(): void {
    const data = Buffer.concat(this.ext).subarray(0, this.extSize);
    if (this.extType === 'x') Object.assign(this.pax, parsePax(data));
    else if (this.extType === 'L') this.longName = cstr(data, 0, data.length);
    else if (this.extType === 'K') this.longLink = cstr(data, 0, data.length);
    this.ext = [];
  }
}

/** Names of the first `max` entries of a tar stream (for format detection); stops reading early. */
export async function firstEntries(stream: NodeJS.ReadableStream, max = 64): Promise<string[]> {
  const names: string[] = [];
  const v = new TarValidator({ trusted: true });
  v.onEntry = (e) => names.push(normalizeName(e.name));
  v.resume();
  return new Promise((resolve) => {
    const stop = () => {
      (stream as unknown as { destroy?: () => void }).destroy?.();
      resolve(names);
    };
    stream.on('data', (chunk: Buffer) => {
      try {
        v.write(chunk);
      } catch {
        stop();
      }
      if (names.length >= max) stop();
    });
    v.on('error', stop);
    stream.on('error', stop);
    stream.on('end', () => resolve(names));
  });
}
