/**
 * The server stream's framing (docs/server-stream.md): pure byte handling, no store, no
 * files of the state root.
 *
 *   frame := "NBX1" | kind (1 byte) | meta length (u32 BE) | payload length (u64 BE)
 *            | meta (JSON, UTF-8) | payload | sha256 of everything before it (32 bytes)
 *
 * A frame's digest covers its header, its meta and its payload, so one flipped bit
 * anywhere is found before the receiver acts on the frame. The reader pulls bytes from
 * any async iterable of Buffers (a file, stdin, a child's stdout) and keeps what it read
 * beyond a frame for the next one, so the same reader serves the request/answer
 * exchange of `server receive`.
 */
import { createHash } from 'node:crypto';
import { BadRequest } from '../../errors.js';

export const MAGIC = Buffer.from('NBX1', 'latin1');
export const FORMAT = 'novabox-server-stream';
export const FORMAT_VERSION = 1;
const HEAD = 4 + 1 + 4 + 8;
const DIGEST = 32;
/** a frame's meta is a small JSON document; anything larger is no stream of ours */
export const META_MAX = 4 << 20;

/** H header, S server record, I image record, L layer blob, W writable layer, D its pre-copy delta, C CRIU images (live migration), E end; Q/A: the receive protocol's messages */
export type FrameKind = 'H' | 'S' | 'I' | 'L' | 'V' | 'W' | 'D' | 'C' | 'E' | 'Q' | 'A';
const KINDS = new Set<string>(['H', 'S', 'I', 'L', 'V', 'W', 'D', 'C', 'E', 'Q', 'A']);

export type Meta = Record<string, unknown>;

/** Thrown when the input ends inside a frame or before the end frame. */
export class StreamCut extends BadRequest {}

/** The bytes before a frame's payload: header and meta. */
export function frameHead(kind: FrameKind, meta: Meta, payloadBytes: number): Buffer {
  const m = Buffer.from(JSON.stringify(meta), 'utf8');
  if (m.length > META_MAX) throw new BadRequest(`a stream frame's metadata is too large (${m.length} bytes)`);
  const h = Buffer.alloc(HEAD);
  MAGIC.copy(h, 0);
  h.write(kind, 4, 'latin1');
  h.writeUInt32BE(m.length, 5);
  h.writeBigUInt64BE(BigInt(payloadBytes), 9);
  return Buffer.concat([h, m]);
}

/** A whole frame with an in-memory payload (unit tests, the small frames). */
export function encodeFrame(kind: FrameKind, meta: Meta, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = frameHead(kind, meta, payload.length);
  const digest = createHash('sha256').update(head).update(payload).digest();
  return Buffer.concat([head, payload, digest]);
}

export interface FrameInfo {
  kind: FrameKind;
  meta: Meta;
  payloadBytes: number;
  /** sha256 of the payload alone, hex (layers are checked against their diff id with it) */
  payloadSha256: string;
}

/** Pulls exact byte counts out of an async iterable of chunks. */
export class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  private readonly it: AsyncIterator<Buffer | string>;
  /** bytes taken out of the input so far */
  offset = 0;

  constructor(source: AsyncIterable<Buffer | string>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** false at the end of the input */
  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const c = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    return true;
  }

  /** Exactly n bytes; undefined if the input ends first (what it had is kept in `short`). */
  async take(n: number): Promise<Buffer | undefined> {
    while (this.buf.length < n) if (!(await this.fill())) return undefined;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.offset += n;
    return out;
  }

  /** n bytes handed over in chunks as they arrive; false if the input ends first. */
  async pass(n: number, onChunk: (c: Buffer) => void | Promise<void>): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) return false;
      const c = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(c.length);
      this.offset += c.length;
      left -= c.length;
      await onChunk(c);
    }
    return true;
  }

  /** true when the input has ended and nothing is left */
  async atEnd(): Promise<boolean> {
    while (this.buf.length === 0) if (!(await this.fill())) return true;
    return false;
  }

  /** Stop reading (the source is closed if it can be). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

const cut = (r: ByteReader, what: string) =>
  new StreamCut(`the server stream ends early (at byte ${r.offset}, inside ${what}): it was cut; nothing was imported`);

/**
 * Read one frame: its meta, and its payload handed to `onPayload` chunk by chunk (or
 * dropped when there is none). The digest is checked once the payload has passed: a
 * caller must not commit anything of the frame before this resolves.
 * Returns undefined at a clean end of input between frames.
 */
export async function readFrame(
  r: ByteReader,
  onPayload?: (info: Omit<FrameInfo, 'payloadSha256'>, chunk: Buffer) => void | Promise<void>,
): Promise<FrameInfo | undefined> {
  const start = r.offset;
  if (await r.atEnd()) return undefined;
  const head = await r.take(HEAD);
  if (!head) {
    if (start === 0) throw new BadRequest('the input is not a novabox server stream: it is too short');
    throw cut(r, 'a frame header');
  }
  if (!head.subarray(0, 4).equals(MAGIC)) {
    if (start === 0) throw new BadRequest('the input is not a novabox server stream (it does not start with "NBX1")');
    throw new BadRequest(`the server stream is corrupt: no frame starts at byte ${start}`);
  }
  const kind = head.toString('latin1', 4, 5);
  if (!KINDS.has(kind)) throw new BadRequest(`the server stream is corrupt: unknown frame kind ${JSON.stringify(kind)} at byte ${start}`);
  const metaLen = head.readUInt32BE(5);
  const big = head.readBigUInt64BE(9);
  if (metaLen > META_MAX || big > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new BadRequest(`the server stream is corrupt: impossible frame lengths at byte ${start}`);
  }
  const payloadBytes = Number(big);
  const metaBuf = await r.take(metaLen);
  if (!metaBuf) throw cut(r, 'a frame header');
  const whole = createHash('sha256').update(head).update(metaBuf);
  const alone = createHash('sha256');
  let meta: Meta | undefined;
  let badMeta: unknown;
  try {
    const parsed: unknown = JSON.parse(metaBuf.toString('utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) badMeta = 'not an object';
    else meta = parsed as Meta;
  } catch (err) {
    badMeta = err;
  }
  // a meta that does not parse is reported once the digest says whether it was damaged
  const info = { kind: kind as FrameKind, meta: meta ?? {}, payloadBytes };
  const ok = await r.pass(payloadBytes, async (c) => {
    whole.update(c);
    alone.update(c);
    if (meta && onPayload) await onPayload(info, c);
  });
  if (!ok) throw cut(r, `a ${kindName(info.kind)} frame`);
  const digest = await r.take(DIGEST);
  if (!digest) throw cut(r, `a ${kindName(info.kind)} frame`);
  if (!digest.equals(whole.digest())) {
    throw new BadRequest(
      `the server stream is corrupt: the ${kindName(info.kind)} frame at byte ${start} does not match its sha256 digest; nothing was imported`,
    );
  }
  if (badMeta !== undefined) throw new BadRequest(`the server stream is corrupt: the frame at byte ${start} has unreadable metadata`);
  return { ...info, payloadSha256: alone.digest('hex') };
}

export function kindName(k: FrameKind): string {
  return (
    {
      H: 'header',
      S: 'server',
      I: 'image',
      L: 'layer',
      V: 'volume',
      W: 'writable layer',
      D: 'delta',
      C: 'CRIU images',
      E: 'end',
      Q: 'question',
      A: 'answer',
    } as const
  )[k];
}

/** The header frame's meta, checked: format, version, architecture. */
export interface StreamHeader {
  format: typeof FORMAT;
  version: number;
  /** Node's name of the CPU architecture the server ran on (x64, arm64, ...) */
  arch: string;
  os: string;
  createdAt: string;
  serverId: string;
  /** start the server on the receiving side once imported (migrate of an ACTIVE server) */
  start?: boolean;
}

export function checkHeader(f: FrameInfo | undefined, arch: string = process.arch): StreamHeader {
  if (!f) throw new BadRequest('the input is not a novabox server stream: it is empty');
  if (f.kind !== 'H' || f.meta.format !== FORMAT) throw new BadRequest('the input is not a novabox server stream: it has no header');
  const h = f.meta as unknown as StreamHeader;
  if (h.version !== FORMAT_VERSION) {
    throw new BadRequest(`the server stream has format version ${String(h.version)}; this novabox reads version ${FORMAT_VERSION}`);
  }
  if (h.os !== 'linux' || h.arch !== arch) {
    throw new BadRequest(`the server stream is of a ${String(h.os)}/${String(h.arch)} server; this host is linux/${arch}`);
  }
  return h;
}
