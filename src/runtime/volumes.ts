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
