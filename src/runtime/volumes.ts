/**
 * Named volumes on the host: a directory `$NOVABOX_ROOT/volumes/<id>` bind-mounted into a
 * server (the plan's `volumes`, as `run -v`). A server in a user namespace sees host ids
 * through its range only, so a volume's files are stored in the ids of the range that uses
 * it: when a server of another range (or `--userns host`, ids 0…) takes it, `shiftTree`
 * moves every entry's owner from the old range to the new one, as Incus shifts a custom
 * volume where it cannot idmap the mount. Ids outside the old range stay as they are.
 * The shift runs only while no server has the volume mounted (at a start, one attachment
 * at a time), so nothing inside can swap a path under it; it never follows a symlink.
 */
import { chmodSync, lchownSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequest } from '../errors.js';
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
