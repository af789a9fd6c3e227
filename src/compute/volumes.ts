/**
 * Named volumes (`novabox volume …`, `server create --volume`, `server add volume`): data
 * that outlives a server. A volume is attached to one server at a time, from the attach
 * to `server remove volume` or the server's delete; it is mounted at the server's starts
 * (a bind mount, `:ro` read-only), so it survives stop/start, reboot and rebuild, and is
 * never part of a snapshot. Deleting it is refused while it is attached.
 *
 * A volume is a directory, or with `--size` an ext4 image of that size (runtime/volumes.ts):
 * loop-mounted on the host for the start of the server that has it, then held by the
 * server's mount namespace alone, so its loop device goes when the server's last process
 * does. `mountsFor` stages the images; `unstage` (in a finally around the start) detaches
 * the host's mounts again.
 */
import { BadRequest, Conflict, NotFound } from '../errors.js';
import { isContainerLive, readState } from '../runtime/container.js';
import {
  checkMountPath,
  makeVolumeDir,
  makeVolumeImage,
  mountVolumeLive,
  removeVolume,
  shiftTree,
  sizeText,
  stageVolume,
  unmountVolumeLive,
  unstageVolume,
  VOLUME_NAME,
  volumeDir,
  volumeImage,
  volumeSize,
  type VolumeMount,
} from '../runtime/volumes.js';

export { checkMountPath, parseVolumeMount, parseVolumeSize, type VolumeMount } from '../runtime/volumes.js';
export type { VolumeRow } from '../store/volumes.js';
import type { Idmap } from '../runtime/plan/spec.js';
import type { Store } from '../store/db.js';
import { nowIso } from '../store/time.js';
import type { VolumeRow } from '../store/volumes.js';
import { randomUuid } from '../util/random.js';

export function checkVolumeName(name: string): void {
  if (!VOLUME_NAME.test(name)) {
    throw new BadRequest(
      `invalid volume name ${JSON.stringify(name)}: use letters, digits, '_', '.' and '-' (at most 63, not starting with a symbol)`,
    );
  }
}

export class VolumeService {
  constructor(private readonly store: Store) {}

  /** A directory volume, or with `sizeBytes` (parseVolumeSize) an ext4 image of that size. */
  create(name: string, opts: { projectId: string; description?: string; sizeBytes?: number }): VolumeRow {
    checkVolumeName(name);
    if (this.store.volumes.find(name)) throw new Conflict(`volume "${name}" already exists`);
    const id = randomUuid();
    if (opts.sizeBytes !== undefined) makeVolumeImage(id, opts.sizeBytes);
    else makeVolumeDir(id);
    try {
      return this.store.tx(() => {
        if (this.store.volumes.find(name)) throw new Conflict(`volume "${name}" already exists`);
        return this.store.volumes.insert({ id, name, projectId: opts.projectId, description: opts.description ?? '', createdAt: nowIso() });
      });
    } catch (err) {
      removeVolume(id);
      throw err;
    }
  }

  get(nameOrId: string): VolumeRow {
    const v = this.store.volumes.find(nameOrId);
    if (!v) throw new NotFound(`volume "${nameOrId}" not found`, { hint: 'novabox volume list' });
    return v;
  }

  list(): VolumeRow[] {
    return this.store.volumes.list();
  }

  /** Cinder's status: in-use while attached (to a `run` container only while it lives). */
  statusOf(v: VolumeRow): 'available' | 'in-use' {
    return this.attached(v) ? 'in-use' : 'available';
  }

  /** Attached: to a server, or to a `run` container that still lives (one killed with its CLI does not hold it). */
  private attached(v: VolumeRow): boolean {
    return Boolean(v.serverId && (v.ownerKind === 'server' || isContainerLive(v.serverId)));
  }

  serverName(v: VolumeRow): string | null {
    if (!v.serverId) return null;
    if (v.ownerKind === 'container') return readState(v.serverId)?.name ?? v.serverId.slice(0, 12);
    return this.store.servers.get(v.serverId)?.name ?? v.serverId;
  }

  /** `server "web"`, `run container "x"`: who holds it, in messages. */
  holder(v: VolumeRow): string {
    return `${v.ownerKind === 'container' ? 'run container' : 'server'} "${this.serverName(v)}"`;
  }

  delete(nameOrId: string): void {
    const v = this.get(nameOrId);
    this.store.tx(() => {
      const cur = this.store.volumes.get(v.id);
      if (!cur) return;
      if (this.attached(cur)) {
        const server = this.serverName(cur);
        throw new Conflict(`cannot delete volume "${cur.name}": it is in use by ${this.holder(cur)} (at ${cur.mountPath})`, {
          hint:
            cur.ownerKind === 'server'
              ? `detach it first ("novabox server remove volume ${server} ${cur.name}") or delete the server`
              : 'it is free when the container ends',
        });
      }
      this.store.volumes.remove(cur.id);
    });
    removeVolume(v.id);
  }

  /** The volumes a create names, found and free (before its transaction). */
  resolve(mounts: VolumeMount[], opts: { count: number }): { row: VolumeRow; mount: VolumeMount }[] {
    if (!mounts.length) return [];
    if (opts.count !== 1) throw new BadRequest('a volume can be attached to one server only, not with --min/--max');
    const out = mounts.map((m) => ({ row: this.get(m.volume), mount: m }));
    for (let i = 0; i < out.length; i++) {
      for (let j = 0; j < i; j++) {
        if (out[i].row.id === out[j].row.id) throw new BadRequest(`volume "${out[i].row.name}" is named twice`);
        if (out[i].mount.path === out[j].mount.path) throw new BadRequest(`two volumes on ${out[i].mount.path}`);
      }
      this.checkFree(out[i].row);
    }
    return out;
  }

  private checkFree(v: VolumeRow): void {
    if (this.attached(v)) {
      throw new Conflict(`volume "${v.name}" is in use by ${this.holder(v)} (at ${v.mountPath})`, {
        hint: 'a volume is attached to one server or container at a time',
      });
    }
  }

  /** Inside a transaction (the create's, or attach's own): checked again, then recorded. */
  attachIn(serverId: string, volumeId: string, path: string, readOnly: boolean): void {
    const v = this.store.volumes.get(volumeId);
    if (!v) throw new NotFound(`volume "${volumeId}" not found`);
    this.checkFree(v);
    if (this.store.volumes.ofServer(serverId).some((o) => o.mountPath === path)) {
      throw new Conflict(`the server has a volume on ${path} already`);
    }
    this.store.volumes.attach(v.id, serverId, path, readOnly, nowIso());
  }

  /**
   * `run -v NAME:/path`: the volumes attached to the container (its id) for its life, and
   * the bind mounts `run -v` takes (host paths), owners shifted to its range first.
   */
  attachContainer(containerId: string, mounts: VolumeMount[], idmap: Idmap | undefined): string[] {
    if (!mounts.length) return [];
    const rows = mounts.map((m) => this.get(m.volume));
    this.store.tx(() => {
      mounts.forEach((m, i) => {
        if (mounts.findIndex((o) => this.get(o.volume).id === rows[i].id) !== i)
          throw new BadRequest(`volume "${rows[i].name}" is named twice`);
        const cur = this.store.volumes.get(rows[i].id)!;
        this.checkFree(cur);
        this.store.volumes.attach(cur.id, containerId, m.path, m.readOnly, nowIso(), 'container');
      });
    });
    return this.mountsFor(containerId, idmap).map((b) => `${b.source}:${b.target}${b.readOnly ? ':ro' : ''}`);
  }

  /** `server add volume`. */
  attach(serverId: string, nameOrId: string, path: string, readOnly: boolean): VolumeRow {
    const v = this.get(nameOrId);
    const p = checkMountPath(path);
    this.store.tx(() => this.attachIn(serverId, v.id, p, readOnly));
    return this.store.volumes.get(v.id)!;
  }

  /**
   * `server add volume` on a running server (`init`: its pid 1): recorded as for a stopped
   * one, then mounted into its mount namespace; a mount that fails takes the record back.
   */
  attachRunning(
    serverId: string,
    serverName: string,
    nameOrId: string,
    path: string,
    readOnly: boolean,
    init: { pid: number; start: number },
    idmap: Idmap | undefined,
  ): VolumeRow {
    const v = this.attach(serverId, nameOrId, path, readOnly);
    const to = { uid: idmap?.uidBase ?? 0, gid: idmap?.gidBase ?? 0 };
    try {
      mountVolumeLive(v.id, init, v.mountPath!, {
        readOnly,
        ...to,
        shift: (dir) => {
          if (v.uidBase === to.uid && v.gidBase === to.gid) return;
          shiftTree(dir, { uid: v.uidBase, gid: v.gidBase }, to);
          this.store.volumes.setOwner(v.id, to.uid, to.gid);
        },
      });
    } catch (err) {
      this.store.volumes.detach(v.id);
      throw new Conflict(`cannot attach volume "${v.name}" to running server "${serverName}": ${(err as Error).message}`);
    }
    return this.store.volumes.get(v.id)!;
  }

  /** `server remove volume`; with `init` (a running server) unmounted inside it first. */
  detach(serverId: string, serverName: string, nameOrId: string, init?: { pid: number; start: number }): void {
    const v = this.get(nameOrId);
    if (v.serverId !== serverId) throw new Conflict(`volume "${v.name}" is not attached to server "${serverName}"`);
    if (init) {
      try {
        unmountVolumeLive(init, v.mountPath!);
      } catch (err) {
        throw new Conflict(`cannot detach volume "${v.name}" from running server "${serverName}": ${(err as Error).message}`);
      }
    }
    this.store.volumes.detach(v.id);
  }

  /** A server's delete: its volumes stay, free. */
  detachAll(serverId: string): void {
    this.store.volumes.detachServer(serverId);
  }

  ofServer(serverId: string): VolumeRow[] {
    return this.store.volumes.ofServer(serverId);
  }

  /**
   * At a start: the bind mounts of the server's volumes, each volume's files first given
   * the ids of the server's range (host ids 0… for --userns host) if another range's.
   */
  mountsFor(serverId: string, idmap: Idmap | undefined): { source: string; target: string; readOnly: boolean; isDir: boolean }[] {
    const to = { uid: idmap?.uidBase ?? 0, gid: idmap?.gidBase ?? 0 };
    const rows = this.ofServer(serverId);
    try {
      return rows.map((v) => {
        // a sized volume: its image loop-mounted on the host until unstage()
        const source = volumeSize(v.id) === null ? volumeDir(v.id) : stageVolume(v.id);
        if (v.uidBase !== to.uid || v.gidBase !== to.gid) {
          shiftTree(source, { uid: v.uidBase, gid: v.gidBase }, to);
          this.store.volumes.setOwner(v.id, to.uid, to.gid);
        }
        return { source, target: v.mountPath!, readOnly: v.readOnly, isDir: true };
      });
    } catch (err) {
      this.unstage(serverId);
      throw err;
    }
  }

  /**
   * After a start (it ran or failed): the host's mounts of the holder's sized volumes
   * detached; a running server keeps its own. Never throws (a failure leaves a mount the
   * next stage or delete of the volume detaches).
   */
  unstage(holderId: string): void {
    for (const v of this.ofServer(holderId)) {
      try {
        unstageVolume(v.id);
      } catch {
        /* the next stageVolume() detaches it */
      }
    }
  }

  /** `volume show` / `volume list --long`. */
  view(v: VolumeRow): Record<string, unknown> {
    const size = volumeSize(v.id);
    return {
      attachments: v.serverId
        ? [{ server_id: v.serverId, server: this.serverName(v), path: v.mountPath, read_only: v.readOnly, attached_at: v.attachedAt }]
        : [],
      created_at: v.createdAt,
      description: v.description,
      id: v.id,
      kind: size === null ? 'directory' : 'ext4 image',
      name: v.name,
      owner: v.uidBase === 0 && v.gidBase === 0 ? 'host ids' : `ids from ${v.uidBase}:${v.gidBase}`,
      path: size === null ? volumeDir(v.id) : volumeImage(v.id),
      project_id: v.projectId,
      size: size === null ? null : sizeText(size),
      status: this.statusOf(v),
    };
  }
}
