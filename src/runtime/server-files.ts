/**
 * `server cp`: files and directory trees copied between the host and a server's root,
 * keeping modes, owners and times (as `cp -a`), never leaving the server's root.
 *
 * A running server is read and written through its init's root (`/proc/<init>/root`,
 * its mount namespace as the init sees it, the overlay and every bind mount in it):
 * the path given is resolved with openat2 RESOLVE_IN_ROOT, as the launch ops resolve
 * theirs, and every step below it is one plain name opened with O_NOFOLLOW relative to
 * the directory fd held (`/proc/self/fd/<dir>/<name>`): a symlink a process inside
 * swaps in at any moment is refused (ELOOP), never followed out of the root. Files are
 * opened O_NONBLOCK and checked to be regular files (a FIFO swapped in cannot hang us).
 *
 * A stopped server has no mount namespace: its tree is the overlay's layers read as
 * overlayfs would merge them (the writable layer over the image's, whiteouts and
 * opaque directories respected, symlinks resolved in that merged view under the same
 * in-root rules), and a copy into it is written into the writable layer only, parent
 * directories copied up first as overlayfs would. Nothing runs inside a stopped server
 * to race the walk; the image's layers are never written.
 *
 * Ids: in a server with its own user namespace, what the host sees through the overlay
 * and what the writable layer stores are host ids (base + id); image layers hold the
 * container's ids. A copy out shows the container's ids; a copy in is owned by the
 * container's ids as seen inside (ids outside the range become the container's root).
 */
import {
  closeSync,
  constants as C,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  chmodSync,
  chownSync,
  utimesSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { BadRequest, NotFound, NovaboxError, SysError } from '../errors.js';
import { isOpaqueDir, openInRoot } from '../sys/files.js';
import { layerSetOpaque as markOpaque } from '../sys/layer.js';
import type { Idmap } from './plan/spec.js';

const MAX_LINKS = 40; // path_resolution(7)
const OVERFLOW_ID = 65534;
const COPY_CHUNK = 1 << 20;

/** ids as the host stores them <-> ids as the server sees them */
export interface IdView {
  inside(uid: number, gid: number): { uid: number; gid: number };
  host(uid: number, gid: number): { uid: number; gid: number };
}

export function idView(idmap: Idmap | undefined): IdView {
  if (!idmap) return { inside: (uid, gid) => ({ uid, gid }), host: (uid, gid) => ({ uid, gid }) };
  const back = (id: number, base: number) => (id >= base && id < base + idmap.size ? id - base : OVERFLOW_ID);
  const fwd = (id: number, base: number) => base + (id < idmap.size ? id : 0);
  return {
    inside: (uid, gid) => ({ uid: back(uid, idmap.uidBase), gid: back(gid, idmap.gidBase) }),
    host: (uid, gid) => ({ uid: fwd(uid, idmap.uidBase), gid: fwd(gid, idmap.gidBase) }),
  };
}

/** An entry as copied: its lstat and its owner as the server (or the host, for host files) sees it. */
interface Entry {
  st: Stats;
  uid: number;
  gid: number;
}

/** A directory being read. */
export interface SrcDir {
  list(): string[];
  entry(name: string): Entry | undefined;
  /** a host path of the entry, safe to open with O_NOFOLLOW and to readlink */
  path(name: string): string;
  dir(name: string): SrcDir;
  close(): void;
}

/** A directory being written. */
export interface DstDir {
  kind(name: string): 'dir' | 'symlink' | 'other' | undefined;
  mkdir(name: string): DstDir;
  writeFile(name: string, from: string, e: Entry): void;
  symlink(name: string, target: string, e: Entry): void;
  finish(e: Entry): void;
  close(): void;
}

function kindOfEntry(e: Entry | undefined): 'dir' | 'symlink' | 'other' | undefined {
  if (!e) return undefined;
  return e.st.isDirectory() ? 'dir' : e.st.isSymbolicLink() ? 'symlink' : 'other';
}

function plainName(name: string): void {
  if (!name || name === '.' || name === '..' || name.includes('/')) throw new BadRequest(`invalid file name ${JSON.stringify(name)}`);
}

function errnoOf(err: unknown): string | undefined {
  return err instanceof SysError ? err.errno : (err as NodeJS.ErrnoException)?.code;
}

// ---- a directory held by an fd: the host's side, and a running server's ---------------

/** A directory fd; each child is one plain name below it, never a followed symlink. */
export class FdDir implements SrcDir, DstDir {
  constructor(
    readonly fd: number,
    private readonly ids: IdView,
  ) {}

  path(name: string): string {
    plainName(name);
    return `/proc/self/fd/${this.fd}/${name}`;
  }

  list(): string[] {
    return readdirSync(`/proc/self/fd/${this.fd}`).sort();
  }

  entry(name: string): Entry | undefined {
    let st: Stats;
    try {
      st = lstatSync(this.path(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return { st, ...this.ids.inside(st.uid, st.gid) };
  }

  kind(name: string): 'dir' | 'symlink' | 'other' | undefined {
    return kindOfEntry(this.entry(name));
  }

  dir(name: string): FdDir {
    return new FdDir(openSync(this.path(name), C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW), this.ids);
  }

  mkdir(name: string): FdDir {
    try {
      mkdirSync(this.path(name), 0o700);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (this.kind(name) !== 'dir') throw new NovaboxError('conflict', `cannot overwrite non-directory "${name}" with a directory`);
    }
    return this.dir(name);
  }

  writeFile(name: string, from: string, e: Entry): void {
    if (this.kind(name) === 'dir') throw new NovaboxError('conflict', `cannot overwrite directory "${name}" with a file`);
    const dst = openSync(this.path(name), C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW | C.O_NONBLOCK, 0o600);
    try {
      if (!fstatSync(dst).isFile()) throw new NovaboxError('conflict', `cannot overwrite "${name}": not a regular file`);
      copyData(from, dst);
      const { uid, gid } = this.ids.host(e.uid, e.gid);
      fchownSync(dst, uid, gid); // before the mode: chown clears set-user-ID
      fchmodSync(dst, e.st.mode & 0o7777);
      futimesSync(dst, e.st.atime, e.st.mtime);
    } finally {
      closeSync(dst);
    }
  }

  symlink(name: string, target: string, e: Entry): void {
    const k = this.kind(name);
    if (k === 'dir') throw new NovaboxError('conflict', `cannot overwrite directory "${name}" with a symlink`);
    if (k) unlinkSync(this.path(name));
    symlinkSync(target, this.path(name));
    const { uid, gid } = this.ids.host(e.uid, e.gid);
    lchownSync(this.path(name), uid, gid);
    lutimesSync(this.path(name), e.st.atime, e.st.mtime);
  }

  finish(e: Entry): void {
    const { uid, gid } = this.ids.host(e.uid, e.gid);
    fchownSync(this.fd, uid, gid);
    fchmodSync(this.fd, e.st.mode & 0o7777);
    futimesSync(this.fd, e.st.atime, e.st.mtime);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Copy a regular file's bytes from a path (opened O_NOFOLLOW|O_NONBLOCK, checked) to an fd. */
function copyData(from: string, dst: number): void {
  const src = openSync(from, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  try {
    if (!fstatSync(src).isFile()) throw new NovaboxError('conflict', `cannot copy ${from}: not a regular file`);
    const buf = Buffer.allocUnsafe(COPY_CHUNK);
    for (;;) {
      const n = readSync(src, buf, 0, buf.length, null);
      if (n <= 0) break;
      for (let off = 0; off < n; ) off += writeSync(dst, buf, off, n - off);
    }
  } finally {
    closeSync(src);
  }
}

// ---- a stopped server: its layers merged as overlayfs would ---------------------------

interface Layer {
  dir: string;
  /** the writable layer: host ids (under a user namespace), the only one ever written */
  upper: boolean;
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * One directory of the merged tree: the layers' directories at `rel`, top first, down to
 * the first opaque one. Every directory in it was reached by real directories only
 * (lstat at each step), so joining a plain name to it follows no symlink.
 */
export class UnionDir implements SrcDir {
  constructor(
    readonly rel: string,
    readonly dirs: Layer[],
    private readonly ids: IdView,
  ) {}

  /** The top layer holding `name`, and what it is there; undefined for none or a whiteout. */
  private find(name: string): { layer: Layer; st: Stats } | undefined {
    plainName(name);
    for (const layer of this.dirs) {
      const st = lstatOrUndefined(join(layer.dir, name));
      if (!st) continue;
      return isWhiteout(st) ? undefined : { layer, st };
    }
    return undefined;
  }

  list(): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const layer of this.dirs) {
      let names: string[];
      try {
        names = readdirSync(layer.dir);
      } catch {
        continue;
      }
      for (const n of names) {
        if (seen.has(n)) continue;
        seen.add(n);
        const st = lstatOrUndefined(join(layer.dir, n));
        if (st && !isWhiteout(st)) out.push(n);
      }
    }
    return out.sort();
  }

  entry(name: string): Entry | undefined {
    const f = this.find(name);
    if (!f) return undefined;
    const { uid, gid } = f.layer.upper ? this.ids.inside(f.st.uid, f.st.gid) : { uid: f.st.uid, gid: f.st.gid };
    return { st: f.st, uid, gid };
  }

  path(name: string): string {
    const f = this.find(name);
    if (!f) throw new NotFound(`no such file or directory: /${join(this.rel, name)}`);
    return join(f.layer.dir, name);
  }

  /** The merged child directory: each layer's directory of that name down to an opaque one, a non-directory or a whiteout. */
  dir(name: string): UnionDir {
    plainName(name);
    const dirs: Layer[] = [];
    for (const layer of this.dirs) {
      const p = join(layer.dir, name);
      const st = lstatOrUndefined(p);
      if (!st) continue;
      if (!st.isDirectory()) break; // a whiteout or a non-directory hides what is below
      dirs.push({ dir: p, upper: layer.upper });
      if (isOpaqueDir(p)) break;
    }
    if (!dirs.length) throw new NotFound(`no such directory: /${join(this.rel, name)}`);
    return new UnionDir(join(this.rel, name), dirs, this.ids);
  }

  close(): void {}
}

/**
 * A directory of a stopped server being written: in its writable layer, at `union.rel`,
 * the directories above it copied up already.
 */
export class UpperDir implements DstDir {
  constructor(
    private readonly upperDir: string,
    private readonly union: UnionDir,
    private readonly ids: IdView,
  ) {}

  private at(name: string): string {
    plainName(name);
    return join(this.upperDir, name);
  }

  kind(name: string): 'dir' | 'symlink' | 'other' | undefined {
    return kindOfEntry(this.union.entry(name));
  }

  /** Make room for a new `name` in the writable layer: a whiteout or an upper non-directory goes; true when a whiteout was there. */
  private clear(name: string): boolean {
    const st = lstatOrUndefined(this.at(name));
    if (!st || st.isDirectory()) return false;
    unlinkSync(this.at(name));
    return isWhiteout(st);
  }

  mkdir(name: string): UpperDir {
    const visible = this.union.entry(name);
    if (visible && !visible.st.isDirectory())
      throw new NovaboxError('conflict', `cannot overwrite non-directory "${name}" with a directory`);
    const p = this.at(name);
    const up = lstatOrUndefined(p);
    if (!up?.isDirectory()) {
      const hidden = this.clear(name);
      mkdirSync(p, 0o700);
      // a directory in place of a whiteout must hide the lower ones of its name
      if (hidden) markOpaque(p);
      if (visible) setAttrs(p, visible, this.ids); // copied up: as it was
    }
    return new UpperDir(p, this.union.dir(name), this.ids);
  }

  writeFile(name: string, from: string, e: Entry): void {
    if (this.kind(name) === 'dir') throw new NovaboxError('conflict', `cannot overwrite directory "${name}" with a file`);
    const up = lstatOrUndefined(this.at(name));
    if (up && !up.isFile()) this.clear(name);
    const dst = openSync(this.at(name), C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW | C.O_NONBLOCK, 0o600);
    try {
      copyData(from, dst);
      const { uid, gid } = this.ids.host(e.uid, e.gid);
      fchownSync(dst, uid, gid);
      fchmodSync(dst, e.st.mode & 0o7777);
      futimesSync(dst, e.st.atime, e.st.mtime);
    } finally {
      closeSync(dst);
    }
  }

  symlink(name: string, target: string, e: Entry): void {
    if (this.kind(name) === 'dir') throw new NovaboxError('conflict', `cannot overwrite directory "${name}" with a symlink`);
    const up = lstatOrUndefined(this.at(name));
    if (up) unlinkSync(this.at(name));
    symlinkSync(target, this.at(name));
    const { uid, gid } = this.ids.host(e.uid, e.gid);
    lchownSync(this.at(name), uid, gid);
    lutimesSync(this.at(name), e.st.atime, e.st.mtime);
  }

  finish(e: Entry): void {
    setAttrs(this.upperDir, e, this.ids);
  }

  close(): void {}
}

function setAttrs(p: string, e: Entry, ids: IdView): void {
  const { uid, gid } = ids.host(e.uid, e.gid);
  chownSync(p, uid, gid);
  chmodSync(p, e.st.mode & 0o7777);
  utimesSync(p, e.st.atime, e.st.mtime);
}

/**
 * Resolve `path` in a stopped server's merged tree as RESOLVE_IN_ROOT would: ".." stops
 * at the root, a symlink's target (absolute ones from the root) is walked in the merged
 * view, at most MAX_LINKS of them. Returns the directory holding the last component and
 * its name (undefined for the root itself).
 */
export function resolveUnion(root: UnionDir, path: string): { dir: UnionDir; name: string | undefined } {
  let stack: UnionDir[] = [root];
  const rest = path.split('/').filter((c) => c && c !== '.');
  let links = 0;
  while (rest.length > 1 || (rest.length === 1 && rest[0] === '..')) {
    const c = rest.shift()!;
    const top = stack[stack.length - 1];
    if (c === '..') {
      if (stack.length > 1) stack.pop();
      continue;
    }
    const e = top.entry(c);
    if (!e) throw new NotFound(`no such file or directory: /${join(top.rel, c)}`);
    if (e.st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new BadRequest(`too many levels of symbolic links in ${path}`);
      const target = readlinkSync(top.path(c));
      if (target.startsWith('/')) stack = [root];
      rest.unshift(...target.split('/').filter((x) => x && x !== '.'));
      continue;
    }
    if (!e.st.isDirectory()) throw new BadRequest(`not a directory: /${join(top.rel, c)}`);
    stack.push(top.dir(c));
  }
  return { dir: stack[stack.length - 1], name: rest[0] };
}

/**
 * Whether `path` is a regular file in an image's merged layers (top first), every symlink
 * followed as execve(2) would, whiteouts and opaque directories respected: the check that
 * an image has the init a system container is to boot.
 */
export function imageHasFile(lowers: string[], path: string): boolean {
  const root = unionRoot(undefined, lowers, idView(undefined));
  let p = path;
  for (let links = 0; links <= MAX_LINKS; links++) {
    let r: { dir: UnionDir; name: string | undefined };
    try {
      r = resolveUnion(root, p);
    } catch {
      return false;
    }
    const e = r.name === undefined ? undefined : r.dir.entry(r.name);
    if (!e) return false;
    if (!e.st.isSymbolicLink()) return e.st.isFile();
    const target = readlinkSync(r.dir.path(r.name!));
    // a relative target from the link's directory, walked by resolveUnion (".." included)
    p = target.startsWith('/') ? target : `/${r.dir.rel}/${target}`;
  }
  return false;
}

/** The merged tree of a stopped server: upper over the image's layers (top first). */
export function unionRoot(upper: string | undefined, lowers: string[], ids: IdView): UnionDir {
  const dirs: Layer[] = [...(upper ? [{ dir: upper, upper: true }] : []), ...lowers.map((dir) => ({ dir, upper: false }))];
  // the root itself may be opaque in a layer
  const cut = dirs.findIndex((l) => isOpaqueDir(l.dir));
  return new UnionDir('', cut >= 0 ? dirs.slice(0, cut + 1) : dirs, ids);
}

// ---- the copy ---------------------------------------------------------------------------

/** What a copy met that it cannot make (device nodes, sockets, FIFOs): reported, not fatal. */
export type Skipped = (path: string, what: string) => void;

function kindOf(st: Stats): string {
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device node';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  return 'special file';
}

/** Copy entry `name` of `src` to `dstName` in `dst`, recursively. Returns the count of files and directories made. */
export function copyEntry(src: SrcDir, name: string, dst: DstDir, dstName: string, skipped: Skipped, at = name): number {
  const e = src.entry(name);
  if (!e) throw new NotFound(`no such file or directory: ${at}`);
  if (e.st.isDirectory()) {
    const s = src.dir(name);
    try {
      const d = dst.mkdir(dstName);
      try {
        return 1 + copyContents(s, d, skipped, at, e);
      } finally {
        d.close();
      }
    } finally {
      s.close();
    }
  }
  if (e.st.isFile()) {
    dst.writeFile(dstName, src.path(name), e);
    return 1;
  }
  if (e.st.isSymbolicLink()) {
    dst.symlink(dstName, readlinkSync(src.path(name)), e);
    return 1;
  }
  skipped(at, kindOf(e.st));
  return 0;
}

/** The entries of `src` into `dst`; then `dst` gets `attrs` (the source directory's mode, owner, times). */
export function copyContents(src: SrcDir, dst: DstDir, skipped: Skipped, at: string, attrs?: Entry): number {
  let n = 0;
  for (const child of src.list()) n += copyEntry(src, child, dst, child, skipped, `${at.replace(/\/$/, '')}/${child}`);
  if (attrs) dst.finish(attrs);
  return n;
}

/** A server's tree as `server cp` reaches it. */
export interface ServerTree {
  /** running: its init (the pid checked against its start time after opening its root) */
  init?: { pid: number; isSame: () => boolean };
  /** stopped: the writable layer (absent for an ephemeral server) and the image's layers, top first */
  upper?: string;
  lowers: string[];
  idmap?: Idmap;
}

/** One side of a copy: a path on the host, or a path in the server. */
export interface CopyEnd {
  server: boolean;
  path: string;
}

interface Opened<D> {
  /** the directory holding the last component, and that name (undefined: the directory itself) */
  dir: D;
  name: string | undefined;
  close(): void;
}

/** A path in the server: never above its root ("/../x" is refused, not clamped, so a typo cannot look like success). */
export function checkServerPath(path: string): string {
  if (path.includes('\0')) throw new BadRequest('invalid path: it contains a NUL byte');
  let depth = 0;
  for (const c of path.split('/')) {
    if (c === '..') depth--;
    else if (c && c !== '.') depth++;
    if (depth < 0) throw new BadRequest(`path ${JSON.stringify(path)} escapes the server's root`);
  }
  return path.startsWith('/') ? path : `/${path}`;
}

function splitLast(path: string): { parent: string; name: string | undefined; contents: boolean } {
  const comps = path.split('/').filter((c) => c);
  const contents = comps[comps.length - 1] === '.';
  while (comps[comps.length - 1] === '.') comps.pop();
  const last = comps[comps.length - 1];
  if (last === undefined || last === '..') return { parent: `/${comps.join('/')}`, name: undefined, contents: true };
  return { parent: `/${comps.slice(0, -1).join('/')}`, name: last, contents };
}

function wrapped(what: string, err: unknown): Error {
  if (err instanceof NovaboxError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return new NotFound(`${what}: no such file or directory`);
  if (e.code === 'ENOTDIR') return new BadRequest(`${what}: not a directory`);
  if (e.code === 'ELOOP')
    return new NovaboxError('conflict', `${what}: a symbolic link is in the way (cp never follows one out of the server's root)`);
  return new NovaboxError('sys', `${what}: ${e.code ?? e.message}`);
}

/**
 * The directory holding `path`'s last component in a running server, and that name; with
 * `dirFirst` (a destination), `path` itself when it is a directory (symlinks followed in
 * the root: `/var/run/` reaches `/run`).
 */
function openServerFd(tree: ServerTree, path: string, dirFirst: boolean): Opened<FdDir> {
  const ids = idView(tree.idmap);
  const init = tree.init!;
  const rootFd = openSync(`/proc/${init.pid}/root`, C.O_RDONLY | C.O_DIRECTORY);
  try {
    if (!init.isSame()) throw new NovaboxError('conflict', 'the server stopped while the copy started');
    if (dirFirst) {
      try {
        const dir = new FdDir(openInRoot(rootFd, path, C.O_RDONLY | C.O_DIRECTORY), ids);
        return { dir, name: undefined, close: () => dir.close() };
      } catch (err) {
        if (!['ENOENT', 'ENOTDIR'].includes(errnoOf(err) ?? '')) throw err;
      }
    }
    const { parent, name } = splitLast(path);
    let fd: number;
    try {
      fd = openInRoot(rootFd, parent, C.O_RDONLY | C.O_DIRECTORY);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') throw new NotFound(`no such directory in the server: ${parent}`);
      if (code === 'ENOTDIR') throw new BadRequest(`not a directory in the server: ${parent}`);
      throw err;
    }
    const dir = new FdDir(fd, ids);
    return { dir, name, close: () => dir.close() };
  } finally {
    closeSync(rootFd);
  }
}

function openHost(path: string, dirFirst: boolean): Opened<FdDir> {
  const abs = path.startsWith('/') ? path : join(process.cwd(), path);
  if (dirFirst) {
    try {
      const dir = new FdDir(openSync(abs, C.O_RDONLY | C.O_DIRECTORY), idView(undefined));
      return { dir, name: undefined, close: () => dir.close() };
    } catch (err) {
      if (!['ENOENT', 'ENOTDIR'].includes(errnoOf(err) ?? '')) throw wrapped(`cannot open ${abs}`, err);
    }
  }
  const { parent, name } = splitLast(abs);
  let fd: number;
  try {
    fd = openSync(parent, C.O_RDONLY | C.O_DIRECTORY);
  } catch (err) {
    throw wrapped(`cannot open ${parent}`, err);
  }
  const dir = new FdDir(fd, idView(undefined));
  return { dir, name, close: () => dir.close() };
}

function openUnion(tree: ServerTree, path: string, dirFirst: boolean): { src: Opened<UnionDir>; root: UnionDir } {
  const root = unionRoot(tree.upper, tree.lowers, idView(tree.idmap));
  if (dirFirst) {
    try {
      // a stand-in last component: every real one resolved as a directory, symlinks followed in the root
      const { dir } = resolveUnion(root, `${path}/x`);
      return { src: { dir, name: undefined, close: () => {} }, root };
    } catch (err) {
      if (!(err instanceof NotFound || err instanceof BadRequest)) throw err;
    }
  }
  const { dir, name } = resolveUnion(root, path);
  const contents = splitLast(path).name === undefined;
  return { src: { dir, name: contents ? undefined : name, close: () => {} }, root };
}

/** The writable-layer side of a merged directory, its parents copied up. */
function upperFor(tree: ServerTree, root: UnionDir, dir: UnionDir): UpperDir {
  if (!tree.upper) throw new NovaboxError('conflict', 'the server is ephemeral and stopped: it has no writable layer to copy into');
  let u = new UpperDir(tree.upper, root, idView(tree.idmap));
  for (const c of dir.rel.split('/').filter((x) => x)) u = u.mkdir(c);
  return u;
}

/** A directory's own entry (the root, "dir/."), for the attributes of a copy of its contents. */
function selfEntry(parent: SrcDir, name: string | undefined, opened: SrcDir): Entry | undefined {
  if (name !== undefined) return parent.entry(name);
  if (opened instanceof FdDir) {
    const st = fstatSync(opened.fd);
    return { st, uid: st.uid, gid: st.gid };
  }
  return undefined;
}

/**
 * `server cp SRC DST` (docker cp's rules): a file onto a directory goes into it under its
 * name; onto anything else it becomes that path (`DST/` must be an existing directory); a
 * directory goes into an existing directory under its name, or becomes DST; `SRC/.` copies
 * the contents. Returns how many entries were made.
 */
export function copyFiles(tree: ServerTree, from: CopyEnd, to: CopyEnd, skipped: Skipped): number {
  const srcPath = from.server ? checkServerPath(from.path) : from.path;
  const dstPath = to.server ? checkServerPath(to.path) : to.path;
  const contentsOnly = splitLast(srcPath).contents;
  const trailingSlash = dstPath.endsWith('/');
  let src: Opened<SrcDir> | undefined;
  let dst: Opened<DstDir> | undefined;
  try {
    if (!from.server) src = openHost(srcPath, false);
    else if (tree.init) src = openServerFd(tree, srcPath, false);
    else src = openUnion(tree, srcPath, false).src;
    const srcName = src.name;
    const srcEntry = srcName === undefined ? undefined : src.dir.entry(srcName);
    if (srcName !== undefined && !srcEntry) throw new NotFound(`no such file or directory: ${srcPath}`);

    if (!to.server) dst = openHost(dstPath, true);
    else if (tree.init) dst = openServerFd(tree, dstPath, true);
    else {
      const { src: u, root } = openUnion(tree, dstPath, true);
      dst = { dir: upperFor(tree, root, u.dir), name: u.name, close: () => {} };
    }
    const dstDir = dst.dir;
    const dstName = dst.name;
    const dstKind = dstName === undefined ? 'dir' : dstDir.kind(dstName);
    const into = (): DstDir => (dstName === undefined ? dstDir : dstDir.mkdir(dstName));

    const isDir = srcEntry ? srcEntry.st.isDirectory() : true;
    if (isDir && (contentsOnly || srcName === undefined)) {
      if (dstKind !== undefined && dstKind !== 'dir')
        throw new NovaboxError('conflict', `cannot copy a directory onto the file ${dstPath}`);
      const from = srcName === undefined ? src.dir : src.dir.dir(srcName);
      const target = into();
      try {
        return copyContents(from, target, skipped, srcPath, dstKind === undefined ? selfEntry(src.dir, srcName, from) : undefined);
      } finally {
        if (target !== dstDir) target.close();
        if (from !== src.dir) from.close();
      }
    }
    const name = srcName!;
    if (dstKind === 'dir') {
      const target = into();
      try {
        return copyEntry(src.dir, name, target, name, skipped, srcPath);
      } finally {
        if (target !== dstDir) target.close();
      }
    }
    if (trailingSlash) throw new NotFound(`no such directory: ${dstPath}`);
    if (dstKind === 'symlink')
      throw new NovaboxError('conflict', `cannot copy onto ${dstPath}: it is a symbolic link (cp never writes through one)`);
    if (dstKind && isDir) throw new NovaboxError('conflict', `cannot copy a directory onto the file ${dstPath}`);
    return copyEntry(src.dir, name, dstDir, dstName!, skipped, srcPath);
  } catch (err) {
    throw wrapped(`cannot copy ${from.server ? 'from the server' : 'into the server'}`, err);
  } finally {
    src?.close();
    dst?.close();
  }
}
