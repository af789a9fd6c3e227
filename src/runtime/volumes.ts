/**
 * Named volumes on the host: a directory `$NOVABOX_ROOT/volumes/<id>` bind-mounted into a
 * server (the plan's `volumes`, as `run -v`). A server in a user namespace sees host ids
 * through its range only, so a volume's files are stored in the ids of the range that uses
 * it: when a server of another range (or `--userns host`, ids 0…) takes it, `shiftTree`
 * moves every entry's owner from the old range to the new one, as Incus shifts a custom
 * volume where it cannot idmap the mount. Ids outside the old range stay as they are.
 * The shift runs only while no server has the volume mounted (at a start, one attachment
 * at a time), so nothing inside can swap a path under it; it never follows a symlink.
 *
 * A sized volume (`volume create --size`) is an ext4 image instead, `volumes/<id>.img`
 * (sparse: its blocks are taken as they are written). At a start it is loop-mounted on
 * `volumes/<id>.mnt` (util-linux's `mount -o loop` sets the loop device to clear itself
 * when its filesystem is unmounted) and the server's bind mount is made from there; once
 * the server runs that host mount is detached again, so the filesystem lives in the
 * server's mount namespace alone: when the server's last process is gone, the kernel
 * unmounts it and gives the loop device back, whatever way the server ended (stop, crash,
 * kill, host reboot). Nothing is left for novabox to undo, except a `.mnt` mount of a
 * start that was killed half-way, which the next mount of the volume (or its delete)
 * detaches first.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  ftruncateSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statfsSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { BadRequest, Conflict, type NovaboxError } from '../errors.js';
import { type InitProcess, mountInto, unmountFrom } from '../sys/mountin.js';
import { stateRoot } from '../util/paths.js';
import { rmTree } from '../util/rmtree.js';

export function volumesDir(): string {
  return join(stateRoot(), 'volumes');
}

export function volumeDir(id: string): string {
  return join(volumesDir(), id);
}

/** The volume's directory, empty, owned by host root (mode 0755, as podman's volumes). */
export function makeVolumeDir(id: string): string {
  mkdirSync(volumesDir(), { recursive: true, mode: 0o700 });
  const dir = volumeDir(id);
  mkdirSync(dir, { mode: 0o755 });
  return dir;
}

export function removeVolumeDir(id: string): void {
  rmTree(volumeDir(id));
}

// ---- sized volumes: an ext4 image, loop-mounted while a server starts with it ----------

export function volumeImage(id: string): string {
  return join(volumesDir(), `${id}.img`);
}

/** Where a sized volume is mounted on the host while a server starts with it. */
export function volumeStage(id: string): string {
  return join(volumesDir(), `${id}.mnt`);
}

/** The image's size in bytes, or null for a directory volume. */
export function volumeSize(id: string): number | null {
  try {
    return statSync(volumeImage(id)).size;
  } catch {
    return null;
  }
}

export const MIN_VOLUME_BYTES = 16 * 1024 * 1024;
const UNITS: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 };

/** `--size`: GiB as a bare number (openstack volume create --size), or with a unit: 512M, 1.5G, 2GiB, 1T. Pure. */
export function parseVolumeSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([KMGTP])(?:i?B)?|(B))?$/i.exec(text.trim());
  if (!m)
    throw new BadRequest(`invalid volume size ${JSON.stringify(text)}: expected a number of GiB or a size with a unit (512M, 2G, 1T)`);
  const unit = m[3] ? 1 : m[2] ? UNITS[m[2].toUpperCase()]! : UNITS.G!;
  const bytes = Math.floor(Number(m[1]) * unit);
  if (bytes < MIN_VOLUME_BYTES) throw new BadRequest(`invalid volume size ${JSON.stringify(text)}: a sized volume is at least 16MiB`);
  // ext4's limit with 4 KiB blocks and 64-bit block numbers is far above; 1 PiB is absurd here
  if (bytes > 2 ** 50) throw new BadRequest(`invalid volume size ${JSON.stringify(text)}: at most 1PiB`);
  return bytes - (bytes % 4096);
}

/** 1536 MiB -> "1.5GiB" (for messages). Pure. */
export function sizeText(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1).replace(/\.0$/, '')}${units[i]}`;
}

/** Sized volumes need loop devices and mkfs.ext4: one sentence when the host lacks either. */
function checkLoopSupport(): void {
  if (!existsSync('/dev/loop-control')) {
    throw new Conflict('sized volumes need loop devices, and this host has none (/dev/loop-control is missing: modprobe loop)');
  }
}

function toolError(what: string, err: unknown): NovaboxError {
  const e = err as { stderr?: Buffer | string; code?: string; message: string };
  if (e.code === 'ENOENT')
    return new Conflict(`${what}: ${what.startsWith('cannot make') ? 'mkfs.ext4' : 'mount'} is not installed (e2fsprogs, util-linux)`);
  const text =
    String(e.stderr ?? '')
      .trim()
      .split('\n')
      .filter(Boolean)
      .at(-1) ?? e.message;
  return new Conflict(`${what}: ${text}`);
}

/**
 * A new sparse image of `bytes` with an empty ext4 on it (root directory owned by host
 * root, mode 0755, no reserved blocks). Refused when it is larger than the whole
 * filesystem the state root is on.
 */
export function makeVolumeImage(id: string, bytes: number): string {
  checkLoopSupport();
  const fs = statfsSync(stateRoot());
  const total = fs.blocks * fs.bsize;
  if (bytes > total) {
    throw new BadRequest(`a ${sizeText(bytes)} volume does not fit: the filesystem of ${stateRoot()} is ${sizeText(total)} in all`);
  }
  mkdirSync(volumesDir(), { recursive: true, mode: 0o700 });
  const file = volumeImage(id);
  const fd = openSync(file, 'wx', 0o600);
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  try {
    execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'root_owner=0:0,nodiscard', '-L', id.slice(0, 16), file], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (err) {
    rmSync(file, { force: true });
    throw toolError(`cannot make the volume's filesystem`, err);
  }
  return file;
}

/** Is `dir` a mount point in this mount namespace? */
export function isMountPoint(dir: string): boolean {
  const want = dir.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.split(' ')[4] === want) return true;
  }
  return false;
}

/** Detach the host's mount of a sized volume (if any) and remove its mount point. Idempotent. */
export function unstageVolume(id: string): void {
  const dir = volumeStage(id);
  if (!existsSync(dir)) return;
  for (let i = 0; i < 8 && isMountPoint(dir); i++) {
    try {
      execFileSync('umount', ['-l', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      throw toolError(`cannot unmount ${dir}`, err);
    }
  }
  rmdirSync(dir);
}

/** Loop-mount a sized volume's image on its stage (a stale mount of a killed start detached first); returns the stage. */
export function stageVolume(id: string): string {
  checkLoopSupport();
  unstageVolume(id);
  const dir = volumeStage(id);
  mkdirSync(dir, { mode: 0o700 });
  try {
    execFileSync('mount', ['-t', 'ext4', '-o', 'loop,nodev', volumeImage(id), dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    rmdirSync(dir);
    throw toolError(`cannot mount the volume's image ${volumeImage(id)}`, err);
  }
  return dir;
}

/**
 * A volume attached to a running server (`server add volume` on an ACTIVE server): its
 * directory, or its image loop-mounted on the stage, is cloned into the server's mount
 * namespace at `target` (native-bindings/src/mountin.c), its files first shifted to the
 * server's ids by the caller; the stage is detached again at once, as after a start.
 */
export function mountVolumeLive(
  id: string,
  init: InitProcess,
  target: string,
  opts: { readOnly: boolean; uid: number; gid: number; shift?: (dir: string) => void },
): void {
  const sized = volumeSize(id) !== null;
  const source = sized ? stageVolume(id) : volumeDir(id);
  try {
    opts.shift?.(source);
    mountInto(init, source, target, opts);
  } finally {
    if (sized) unstageVolume(id);
  }
}

/** `server remove volume` on a running server: the mount at `target` inside it detached (nothing mounted there is no error). */
export function unmountVolumeLive(init: InitProcess, target: string): void {
  try {
    unmountFrom(init, target);
  } catch (err) {
    if (!/Invalid argument/.test((err as Error).message)) throw err;
  }
}

/** A volume's data, either kind, on the host (unstaged: its image file). */
export function removeVolume(id: string): void {
  unstageVolume(id);
  rmSync(volumeImage(id), { force: true });
  removeVolumeDir(id);
}

export interface IdBase {
  uid: number;
  gid: number;
}

/** One id from the range at `from` to the range at `to` (ids outside it unchanged). Pure. */
export function shiftId(id: number, from: number, to: number, size: number): number {
  return id >= from && id < from + size ? id - from + to : id;
}

/**
 * Every entry of `dir` (itself included) from ids of the range at `from` to the one at
 * `to`. chown(2) clears set-user-ID and set-group-ID bits of a file: they are put back.
 * Returns the number of entries changed.
 */
export function shiftTree(dir: string, from: IdBase, to: IdBase, size = 65536): number {
  if (from.uid === to.uid && from.gid === to.gid) return 0;
  let n = 0;
  const visit = (path: string) => {
    const st = lstatSync(path);
    const uid = shiftId(st.uid, from.uid, to.uid, size);
    const gid = shiftId(st.gid, from.gid, to.gid, size);
    if (uid !== st.uid || gid !== st.gid) {
      lchownSync(path, uid, gid);
      if (!st.isSymbolicLink() && st.mode & 0o6000) chmodSync(path, st.mode & 0o7777);
      n++;
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
  return n;
}

export interface VolumeMount {
  /** the volume's name or id */
  volume: string;
  path: string;
  readOnly: boolean;
}

/** A volume's name: letters, digits, '_', '.', '-', starting with a letter or digit, at most 63. */
export const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** `NAME:/path[:ro|rw]` (podman's -v with a named volume). Pure. */
export function parseVolumeMount(spec: string): VolumeMount {
  const parts = spec.split(':');
  const mode = parts.length === 3 ? parts[2] : parts.length === 2 ? 'rw' : undefined;
  if (mode === undefined || (mode !== 'ro' && mode !== 'rw') || !parts[0]) {
    throw new BadRequest(`invalid volume ${JSON.stringify(spec)}: expected NAME:/path[:ro]`);
  }
  if (!VOLUME_NAME.test(parts[0])) {
    throw new BadRequest(`invalid volume ${JSON.stringify(spec)}: "${parts[0]}" is neither an absolute host path nor a volume name`);
  }
  return { volume: parts[0], path: checkMountPath(parts[1], `volume ${JSON.stringify(spec)}`), readOnly: mode === 'ro' };
}

/** An absolute path inside the server, not its root, without `..`. Pure. */
export function checkMountPath(path: string, what = `mount path ${JSON.stringify(path)}`): string {
  if (!path.startsWith('/')) throw new BadRequest(`invalid ${what}: the path in the server must be absolute`);
  const parts = path.split('/').filter(Boolean);
  if (parts.includes('..') || parts.includes('.')) throw new BadRequest(`invalid ${what}: "." or ".." in the path in the server`);
  if (!parts.length) throw new BadRequest(`invalid ${what}: a volume cannot be mounted on the server's root`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  if (/[\x00-\x1f]/.test(path)) throw new BadRequest(`invalid ${what}: control characters in the path`);
  return `/${parts.join('/')}`;
}

// ---- copies: snapshots (`volume snapshot create`) and new volumes made from them -------

export function snapshotsDir(): string {
  return join(stateRoot(), 'volume-snapshots');
}

/** Where a snapshot's copy is: a directory, or for a sized volume's an image file. */
export function snapshotPath(id: string, sized: boolean): string {
  return join(snapshotsDir(), sized ? `${id}.img` : id);
}

/** A snapshot's copy on disk: its path and whether it is an image, or null when it has none. */
export function snapshotData(id: string): { path: string; sized: boolean } | null {
  for (const sized of [true, false]) {
    const path = snapshotPath(id, sized);
    if (existsSync(path)) return { path, sized };
  }
  return null;
}

/** The bytes a copy of `path` takes at most (its allocated blocks: a sparse image's holes are not counted). */
export function allocatedBytes(path: string): number {
  let n = 0;
  const visit = (p: string) => {
    const st = lstatSync(p);
    n += st.blocks * 512;
    if (st.isDirectory()) for (const name of readdirSync(p)) visit(join(p, name));
  };
  visit(path);
  return n;
}

/** Refused in one sentence when the filesystem of `dir` has less free than `bytes` (`what`: "the snapshot of volume "x""). */
export function checkSpace(dir: string, bytes: number, what: string): void {
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  if (bytes > free) {
    throw new Conflict(`no space for ${what}: it takes up to ${sizeText(bytes)} and ${dir} has ${sizeText(free)} free`);
  }
}

/**
 * `src` (a volume's directory or image, or a snapshot's) copied to `dst`, which must not
 * exist: a tree with owners, modes, timestamps, xattrs, ACLs, hard links and special files
 * kept (`cp -a`), an image sparse (`cp --sparse=always`), both shared with the source where
 * the filesystem can (`--reflink=auto`: btrfs, xfs). A copy that fails is removed.
 */
export function copyVolumeData(src: string, dst: string, sized: boolean): void {
  const args = sized
    ? ['--sparse=always', '--reflink=auto', '--no-target-directory', src, dst]
    : ['-a', '--reflink=auto', '--no-target-directory', src, dst];
  // under setpriv --pdeathsig: a cp whose CLI is killed (kill -9) dies with it, and does not
  // write on into a copy the next command's sweep removes (compute/volumes.ts)
  const setpriv = deathSignalSetpriv();
  try {
    if (setpriv) execFileSync(setpriv, ['--pdeathsig', 'KILL', '--', 'cp', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    else execFileSync('cp', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (sized) chmodSync(dst, 0o600);
  } catch (err) {
    rmTree(dst);
    rmSync(dst, { force: true });
    throw toolError(`cannot copy ${src}`, err);
  }
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'];
let setprivProbe: string | null | undefined;

/** util-linux's setpriv, where it is and takes --pdeathsig (busybox's setpriv does not: a plain cp then). */
function deathSignalSetpriv(): string | null {
  if (setprivProbe !== undefined) return setprivProbe;
  setprivProbe = null;
  for (const p of SETPRIV) {
    if (!existsSync(p)) continue;
    try {
      execFileSync(p, ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' });
      setprivProbe = p;
    } catch {
      // busybox's setpriv, or a broken one: cp runs without the death signal
    }
    break;
  }
  return setprivProbe;
}

/** `syncfs(2)` on the filesystem at `path` (coreutils `sync -f`): a loop-mounted image's writes reach its file. */
export function syncFilesystem(path: string): void {
  try {
    execFileSync('sync', ['-f', path], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw toolError(`cannot sync ${path}`, err);
  }
}

export function removeSnapshotData(id: string): void {
  rmSync(snapshotPath(id, true), { force: true });
  rmTree(snapshotPath(id, false));
}
