/**
 * The layer store on disk.
 *
 *   layers/sha256/<diff id hex>/   the layer as a directory in overlayfs form (whiteouts
 *                                  are 0/0 character devices, opaque dirs carry
 *                                  trusted.overlay.opaque=y): used directly as a lowerdir
 *   blobs/sha256/<digest hex>      the layer as distributed (tar, tar+gzip or tar+zstd):
 *                                  what `image save` streams, so digests round-trip
 *   tmp/<kind>-<pid>-<rand>/       staging: everything is written here, its digest
 *                                  checked, then renamed into place
 *
 * Which images use a layer is in the database (image_layers); this module only moves
 * files. A staging dir whose process is gone is removed by the next command (sweepTmp).
 */
import { spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import {
  type Dirent,
  closeSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { Duplex, PassThrough, type Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BadRequest, NovaboxError } from '../errors.js';
import * as nativeLayer from '../sys/layer.js';
import { paths, stateRoot } from '../util/paths.js';
import { randomBytesSync } from '../util/random.js';
import { readProcStart } from '../runtime/proc.js';
import { rmTree } from '../util/rmtree.js';
import { trace } from '../util/trace.js';
import { TarValidator, normalizeName, whiteoutTarget } from './tarstream.js';
import { quote } from '../util/text.js';

export const MEDIA_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_TAR_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

export function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new BadRequest(`invalid digest ${quote(digest)}: expected sha256:<64 hex digits>`);
  return m[1];
}

export function blobsDir(): string {
  return join(stateRoot(), 'blobs', 'sha256');
}

export function blobPath(digest: string): string {
  return join(blobsDir(), hexOf(digest));
}

export function layerPath(diffId: string): string {
  return paths.layer(hexOf(diffId));
}

// ---- staging -----------------------------------------------------------------------

/** A private temp dir under the state root (same file system as the layers: rename works). */
export class Staging {
  readonly dir: string;
  private n = 0;

  constructor(kind: string) {
    mkdirSync(paths.tmp(), { recursive: true, mode: 0o700 });
    this.dir = join(paths.tmp(), `${kind}-${process.pid}-${randomBytesSync(4).toString('hex')}`);
    mkdirSync(this.dir, { mode: 0o700 });
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** A fresh empty directory inside. */
  newDir(prefix = 'layer'): string {
    const d = join(this.dir, `${prefix}${this.n++}`);
    mkdirSync(d, { mode: 0o755 });
    return d;
  }

  remove(): void {
    rmTree(this.dir);
  }
}

/**
 * A staging file directly under tmp/, named as a Staging dir is (so sweepTmp removes it
 * after a kill -9): a snapshot's tar needs no directory around it, whose mkdir and rmdir
 * cost ~0.5 ms of journaled metadata on its path.
 */
export function stagingFile(kind: string): string {
  mkdirSync(paths.tmp(), { recursive: true, mode: 0o700 });
  return join(paths.tmp(), `${kind}-${process.pid}-${randomBytesSync(4).toString('hex')}`);
}

/** Remove a staging file if it is still there (a failed command; after success it was renamed away). */
export function removeStagingFile(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Remove staging dirs (and files) whose process is gone (kill -9 during an import or snapshot).
 * The pid in the name is checked against /proc: a live process keeps its dir.
 */
export function sweepTmp(): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(paths.tmp());
  } catch {
    return removed;
  }
  for (const n of names) {
    const m = /^[a-z]+-(\d+)-[0-9a-f]+$/.exec(n);
    if (!m || Number(m[1]) === process.pid || readProcStart(Number(m[1])) !== undefined) continue;
    try {
      rmTree(join(paths.tmp(), n));
      removed.push(n);
    } catch {
      /* next time */
    }
  }
  return removed;
}

/**
 * Put a staged layer dir and blob in place. Called inside the transaction that records
 * the layer, so a concurrent delete (which renames layers away in its own transaction)
 * cannot interleave. An existing layer of the same digest wins: the staged copy is left
 * for the staging dir's removal.
 */
export function installLayer(diffId: string, dir: string | undefined, blob: { digest: string; file: string } | undefined): void {
  mkdirSync(paths.layers(), { recursive: true });
  mkdirSync(blobsDir(), { recursive: true });
  const target = layerPath(diffId);
  if (dir && !existsSync(target)) renameNoClobber(dir, target);
  if (blob && !existsSync(blobPath(blob.digest))) renameNoClobber(blob.file, blobPath(blob.digest));
}

function renameNoClobber(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
  }
}

/** Move a layer's files out of the store (inside the deleting transaction); remove them after. */
export function retireLayer(diffId: string, blobDigest: string, trash: Staging): void {
  for (const [p, name] of [
    [layerPath(diffId), `l-${hexOf(diffId)}`],
    [blobPath(blobDigest), `b-${hexOf(blobDigest)}`],
  ] as const) {
    try {
      renameSync(p, trash.path(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

// ---- compression -------------------------------------------------------------------

export type Compression = 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2';

export function compressionOf(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  return 'none';
}

export function readHead(file: string, n = 512): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(n);
    return b.subarray(0, readSync(fd, b, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/** A child process as a stream stage (zstd -dc, xz -dc). */
function processStage(cmd: string, args: string[]): Duplex {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  child.on('error', (e) => out.destroy(new NovaboxError('not-found', `cannot run ${cmd}: ${(e as Error).message} (install it)`)));
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new BadRequest(`${cmd} could not decompress the input: ${err.trim().split('\n')[0] || `exit status ${code}`}`));
  });
  child.stdin.on('error', () => {
    /* reported by close */
  });
  return Duplex.from({ writable: child.stdin, readable: out });
}

export function decompressor(c: Compression): Duplex | undefined {
  switch (c) {
    case 'none':
      return undefined;
    case 'gzip':
      return createGunzip({ chunkSize: 256 << 10 });
    case 'zstd':
      return processStage('zstd', ['-dc', '-q']);
    case 'xz':
      return processStage('xz', ['-dc', '-T0']);
    case 'bzip2':
      return processStage('bzip2', ['-dc']);
  }
}

/** Counts and hashes what flows through. */
class Tap extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly fd?: number) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.fd !== undefined) {
      try {
        for (let off = 0; off < chunk.length; ) off += writeSync(this.fd, chunk, off);
      } catch (err) {
        // a full disk (ENOSPC) fails the pipeline like any stage: thrown here it would end the process
        done(err as Error);
        return;
      }
    }
    done(null, chunk);
  }
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

// ---- extraction ---------------------------------------------------------------------

export interface ExtractedLayer {
  diffId: string;
  /** the blob kept for export: raw input when an OCI media type fits, else the tar */
  blob: { digest: string; file: string; mediaType: string; size: number };
  size: number;
}

export interface ExtractOptions {
  trusted: boolean;
  /** where the rootfs's /dev is in the archive (tarstream.ts CheckOptions) */
  devDir?: string;
  /** expected digests (OCI manifests, docker archives): refused when they differ */
  expectDiffId?: string;
  expectBlobDigest?: string;
  onBytes?: (n: number) => void;
  /** stops the extraction (GNU tar killed); the caller removes its staging dir */
  signal?: AbortSignal;
  /** a stage between the checked tar and GNU tar (the server stream's id shift: id-shift.ts) */
  transform?: Transform;
}

/**
 * Stream one layer archive into `dest` (an empty dir in a Staging): raw bytes are hashed
 * and kept as the blob, the decompressed tar is hashed (the diff id), checked entry by
 * entry (TarValidator), and extracted by GNU tar, which keeps modes, owners, xattrs and
 * setuid bits (see bench/README.md for why GNU tar and not the tar package). OCI
 * whiteouts are then turned into overlay whiteouts.
 */
export async function extractLayer(
  input: Readable,
  compression: Compression,
  dest: string,
  blobFile: string,
  opts: ExtractOptions,
): Promise<ExtractedLayer> {
  const keepRaw = compression === 'none' || compression === 'gzip' || compression === 'zstd';
  const blobFd = openSync(blobFile, 'wx', 0o644);
  let tar: ReturnType<typeof spawn> | undefined;
  try {
    const raw = new Tap(keepRaw ? blobFd : undefined);
    if (opts.onBytes) raw.on('data', (c: Buffer) => opts.onBytes!(c.length));
    const plain = new Tap(keepRaw ? undefined : blobFd);
    const validator = new TarValidator({ trusted: opts.trusted, devDir: opts.devDir });
    const args = [
      '-x',
      '-f',
      '-',
      '-C',
      dest,
      '--numeric-owner',
      '--same-owner',
      '--same-permissions',
      '--xattrs',
      '--xattrs-include=*',
      '--no-overwrite-dir',
      '--warning=no-timestamp',
      '--warning=no-unknown-keyword',
    ];
    tar = spawn('tar', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let tarErr = '';
    tar.stderr!.on('data', (d) => (tarErr += d));
    const tarDone = new Promise<number>((resolve, reject) => {
      tar!.on('error', reject);
      tar!.on('close', (code) => resolve(code ?? 1));
    });
    // GNU tar may stop reading at the end-of-archive blocks: the rest is still hashed
    let tarGone = false;
    tar.stdin!.on('error', () => (tarGone = true));
    const sink = new Writable({
      highWaterMark: 1 << 20,
      write(chunk: Buffer, _e, done) {
        if (tarGone || !tar!.stdin!.writable) return done();
        if (tar!.stdin!.write(chunk)) done();
        else {
          const go = () => {
            tar!.stdin!.off('close', go);
            tar!.stdin!.off('drain', go);
            done();
          };
          tar!.stdin!.once('drain', go);
          tar!.stdin!.once('close', go);
        }
      },
      final(done) {
        tar!.stdin!.end();
        done();
      },
    });
    const stages: (NodeJS.ReadableStream | NodeJS.WritableStream)[] = [input, raw];
    const dec = decompressor(compression);
    if (dec) stages.push(dec);
    stages.push(plain, validator, ...(opts.transform ? [opts.transform] : []), sink);
    await (pipeline as (...s: unknown[]) => Promise<void>)(...stages, ...(opts.signal ? [{ signal: opts.signal }] : [])).catch((err) => {
      tar?.kill('SIGKILL');
      throw err;
    });
    const code = await tarDone;
    if (code !== 0) {
      const line = tarErr.split('\n').find((l) => l.trim() && !/Exiting with failure/.test(l)) ?? `exit status ${code}`;
      // GNU tar's short write is a full disk: not the layer's fault
      if (/No space left on device|Wrote only \d+ of \d+ bytes/.test(tarErr)) {
        throw new NovaboxError('sys', 'extracting the layer failed: no space left on the device');
      }
      throw new BadRequest(`extracting the layer failed: ${line.replace(/^tar: /, '')}`);
    }
    const diffId = plain.digest();
    const blobDigest = keepRaw ? raw.digest() : diffId;
    if (opts.expectDiffId && opts.expectDiffId !== diffId) {
      throw new BadRequest(`layer digest mismatch: the manifest says ${opts.expectDiffId}, the data is ${diffId}`);
    }
    if (opts.expectBlobDigest && keepRaw && opts.expectBlobDigest !== blobDigest) {
      throw new BadRequest(`blob digest mismatch: the manifest says ${opts.expectBlobDigest}, the data is ${blobDigest}`);
    }
    applyWhiteouts(dest, validator.checker.whiteouts, validator.checker.opaques);
    return {
      diffId,
      blob: {
        digest: blobDigest,
        file: blobFile,
        mediaType: compression === 'gzip' ? MEDIA_TAR_GZIP : compression === 'zstd' ? MEDIA_TAR_ZSTD : MEDIA_TAR,
        size: keepRaw ? raw.bytes : plain.bytes,
      },
      size: plain.bytes,
    };
  } finally {
    closeSync(blobFd);
    if (tar && tar.exitCode === null) tar.kill('SIGKILL');
  }
}

/** Each component below root must be a real directory (never follow a symlink out). */
function checkedPath(root: string, rel: string): string {
  const parts = rel.split('/').filter(Boolean);
  let p = root;
  for (let i = 0; i < parts.length - 1; i++) {
    p = join(p, parts[i]);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st || !st.isDirectory()) throw new BadRequest(`refusing the archive: whiteout ${quote(rel)} is not under a directory`);
  }
  return join(p, parts[parts.length - 1] ?? '');
}

export function applyWhiteouts(root: string, whiteouts: string[], opaques: string[]): void {
  for (const o of opaques) {
    const rel = normalizeName(o);
    const dir = rel ? checkedPath(root, `${rel}/x`).slice(0, -2) : root;
    unlinkSync(join(dir, '.wh..wh..opq'));
    nativeLayer.layerSetOpaque(dir);
  }
  for (const w of whiteouts) {
    const rel = normalizeName(w);
    const marker = checkedPath(root, rel);
    const target = join(root, (whiteoutTarget(rel) as { hides: string }).hides);
    try {
      unlinkSync(marker);
    } catch {
      /* a later entry removed it */
    }
    rmSync(target, { recursive: true, force: true });
    nativeLayer.layerWhiteout(target);
  }
}

/**
 * Remove the device nodes under a rootfs's /dev (`dev` is that directory), at any depth:
 * a server's /dev is novabox's own. Directories, symlinks and other files stay. The
 * directory form of the import path; archives leave them out entry by entry (tarstream.ts).
 */
export function dropDeviceNodes(dev: string): number {
  let n = 0;
  let entries: Dirent[];
  try {
    entries = readdirSync(dev, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dev, e.name);
    // a 0/0 character device is an overlay whiteout, kept as the archives' path keeps it
    if (e.isBlockDevice() || (e.isCharacterDevice() && lstatSync(p).rdev !== 0)) {
      unlinkSync(p);
      n++;
    } else if (e.isDirectory()) n += dropDeviceNodes(p);
  }
  return n;
}

// ---- packing -----------------------------------------------------------------------

export interface PackedLayer {
  diffId: string;
  blobFile: string;
  size: number;
}

/**
 * Pack a directory in overlay form (a server's upper dir, an extracted rootfs) into an
 * uncompressed OCI layer tar (native-bindings/src/layer.c), optionally mirroring it into
 * `mirror` as a lowerdir-ready copy. The diff id is the sha256 the packer computes over
 * every byte it writes, in the same pass (the tar is never read back).
 */
export function packLayer(src: string, blobFile: string, mirror: string | null, syncfs: boolean, shift?: nativeLayer.IdShift): PackedLayer {
  const fd = openSync(blobFile, 'wx', 0o644);
  try {
    const r = nativeLayer.layerPack(src, fd, mirror, syncfs, shift);
    trace('layer packed and hashed');
    return { diffId: `sha256:${r.sha256}`, blobFile, size: r.size };
  } finally {
    closeSync(fd);
  }
}

/**
 * packLayer on a thread of the libuv pool, so the event loop stays free (a snapshot
 * through `novabox serve` answers other requests meanwhile). `between` runs as soon as
 * the packer returns, success or not (the snapshot thaws the server there).
 */
export async function packLayerAsync(
  src: string,
  blobFile: string,
  mirror: string | null,
  syncfs: boolean,
  between?: () => void,
  shift?: nativeLayer.IdShift,
): Promise<PackedLayer> {
  const fd = openSync(blobFile, 'wx', 0o644);
  try {
    let r: nativeLayer.PackResult;
    try {
      r = await nativeLayer.layerPackAsync(src, fd, mirror, syncfs, shift);
    } finally {
      between?.();
    }
    trace('layer packed and hashed');
    return { diffId: `sha256:${r.sha256}`, blobFile, size: r.size };
  } finally {
    closeSync(fd);
  }
}

export function fileStream(file: string): Readable {
  return createReadStream(file, { highWaterMark: 1 << 20 });
}
