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
 *
 * Snapshots are taken only when asked (`volume snapshot create`, as Cinder's): a copy of
 * the directory (`cp -a`) or of the image (sparse), under $NOVABOX_ROOT/volume-snapshots.
 * A volume a running server has is copied with the server's cgroup frozen (and a sized
 * one's filesystem synced inside it first), thawed in a finally, as a server snapshot
 * freezes; a server in the middle of a task (a start, a stop) is not copied from. A new
 * volume is made from a snapshot (`volume create --snapshot`) or from another volume
 * (`--source`, the same frozen copy). A volume with snapshots is not deleted (Cinder).
 *
 * A snapshot is `creating` until its copy is whole, recorded with the process making it
 * (pid and start time) and the server it froze; a volume being copied (a clone, or one
 * from a snapshot) has no row until its copy is whole and is recorded the same way in
 * volume_copies. One whose process is gone (a CLI killed with SIGKILL) is swept by the
 * next `volume` command, or by `doctor` (reconcileCopies): its record and partial copy
 * removed, and the server it froze thawed, as a killed `server image create` is
 * reconciled (compute/servers.ts).
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequest, Conflict, NotFound } from '../errors.js';
import { isContainerLive, readState } from '../runtime/container.js';
import { isSameProcess, selfStart } from '../runtime/proc.js';
import {
  allocatedBytes,
  checkMountPath,
  checkSpace,
  copyVolumeData,
  makeVolumeDir,
  makeVolumeImage,
  mountVolumeLive,
  removeSnapshotData,
  removeVolume,
  shiftTree,
  snapshotData,
  snapshotPath,
  snapshotsDir,
  syncFilesystem,
  sizeText,
  stageVolume,
  unmountVolumeLive,
  unstageVolume,
  VOLUME_NAME,
  volumeDir,
  volumeImage,
  volumesDir,
  volumeSize,
  type VolumeMount,
} from '../runtime/volumes.js';

export { checkMountPath, parseVolumeMount, parseVolumeSize, type VolumeMount } from '../runtime/volumes.js';
export type { VolumeRow, VolumeSnapshotRow } from '../store/volumes.js';
import type { Idmap } from '../runtime/plan/spec.js';
import type { Store } from '../store/db.js';
import { nowIso } from '../store/time.js';
import type { VolumeCopyRow, VolumeRow, VolumeSnapshotRow } from '../store/volumes.js';
import { randomUuid } from '../util/random.js';
import { testPause } from '../util/test-pause.js';
import { trace } from '../util/trace.js';

export function checkVolumeName(name: string): void {
  if (!VOLUME_NAME.test(name)) {
    throw new BadRequest(
      `invalid volume name ${JSON.stringify(name)}: use letters, digits, '_', '.' and '-' (at most 63, not starting with a symbol)`,
    );
  }
}

/** What a copy of a volume needs from the server it is attached to (compute/servers.ts). */
export interface HolderState {
  /** the server's task in progress (a start, a stop, …), or null */
  task: string | null;
  /** when it runs: freezes its cgroup and returns the thaw (absent when stopped or paused: nothing writes) */
  freeze?: () => () => void;
  /** when it runs: its root as the host sees it (/proc/PID/root) */
  root?: string;
  /** when it runs and is not paused: thaws its cgroup (a freeze a killed copy left) */
  thaw?: () => void;
}

export class VolumeService {
  constructor(
    private readonly store: Store,
    private readonly holderState?: (serverId: string) => HolderState | undefined,
  ) {}

  /**
   * A directory volume, or with `sizeBytes` (parseVolumeSize) an ext4 image of that size;
   * with `snapshot` a copy of that snapshot, with `source` a copy (clone) of that volume.
   */
  create(
    name: string,
    opts: { projectId: string; description?: string; sizeBytes?: number; snapshot?: string; source?: string },
  ): VolumeRow {
    checkVolumeName(name);
    if (opts.snapshot !== undefined && opts.source !== undefined)
      throw new BadRequest('a volume is made from a snapshot or from a volume, not both (--snapshot, --source)');
    if (opts.sizeBytes !== undefined && (opts.snapshot !== undefined || opts.source !== undefined))
      throw new BadRequest('--size cannot be given with --snapshot or --source: the new volume is the size of what it copies');
    if (this.store.volumes.find(name)) throw new Conflict(`volume "${name}" already exists`);
    const id = randomUuid();
    let owner = { uid: 0, gid: 0 };
    const snap = opts.snapshot !== undefined ? this.getSnapshot(opts.snapshot) : undefined;
    const data = snap ? snapshotData(snap.id) : undefined;
    if (snap && (snap.status !== 'available' || !data))
      throw new Conflict(`volume snapshot "${snap.name}" is not available (${snap.status}): its copy is not whole`);
    const src = opts.source !== undefined ? this.get(opts.source) : undefined;
    // a copy is recorded while it is made (its process, the server it froze): one whose
    // CLI is killed is swept by the next volume command or doctor (reconcileCopies)
    const copying = snap !== undefined || src !== undefined;
    if (copying) {
      this.store.volumeCopies.insert({
        volumeId: id,
        name,
        source: snap ? `snapshot "${snap.name}"` : `volume "${src!.name}"`,
        ownerPid: process.pid,
        ownerStart: selfStart(),
        createdAt: nowIso(),
      });
    }
    const undo = () => {
      removeVolume(id);
      if (copying) this.store.volumeCopies.remove(id);
    };
    try {
      if (snap && data) {
        this.copyInto(id, data.path, data.sized, `volume "${name}"`);
        testPause('volume-copied');
        owner = { uid: snap.uidBase, gid: snap.gidBase };
      } else if (src) {
        const sized = volumeSize(src.id) !== null;
        this.quietly(
          src,
          `clone volume "${src.name}"`,
          () => {
            this.copyInto(id, sized ? volumeImage(src.id) : volumeDir(src.id), sized, `volume "${name}"`);
            testPause('volume-copied');
            const cur = this.store.volumes.get(src.id);
            owner = { uid: cur?.uidBase ?? src.uidBase, gid: cur?.gidBase ?? src.gidBase };
          },
          (serverId) => this.store.volumeCopies.setFrozen(id, serverId),
        );
      } else if (opts.sizeBytes !== undefined) makeVolumeImage(id, opts.sizeBytes);
      else makeVolumeDir(id);
    } catch (err) {
      undo(); // a copy that failed, or was refused after it was made
      throw err;
    }
    try {
      return this.store.tx(() => {
        if (this.store.volumes.find(name)) throw new Conflict(`volume "${name}" already exists`);
        const v = this.store.volumes.insert({
          id,
          name,
          projectId: opts.projectId,
          description: opts.description ?? '',
          createdAt: nowIso(),
        });
        if (owner.uid !== 0 || owner.gid !== 0) this.store.volumes.setOwner(id, owner.uid, owner.gid);
        this.store.volumeCopies.remove(id); // whole: a volume now
        return this.store.volumes.get(v.id)!;
      });
    } catch (err) {
      undo();
      throw err;
    }
  }

  /** A copy of `src` as the data of the new volume `id` (refused when the host's filesystem has no room). */
  private copyInto(id: string, src: string, sized: boolean, what: string): void {
    mkdirSync(volumesDir(), { recursive: true, mode: 0o700 });
    checkSpace(volumesDir(), allocatedBytes(src), what);
    copyVolumeData(src, sized ? volumeImage(id) : volumeDir(id), sized);
  }

  /**
   * `fn` (a copy of the volume's data) while nothing writes to it: a volume attached to a
   * running server is copied with the server's cgroup frozen, thawed always; a sized
   * one's filesystem is synced inside the server before and during the freeze, so the
   * image file holds what the server wrote. Refused while its server is in a task (a
   * start that may be shifting its owners, a stop) or a `run` container has it.
   */
  private quietly<T>(v: VolumeRow, what: string, fn: () => T, onFreeze?: (serverId: string | null) => void): T {
    if (!this.attached(v)) return this.unchanged(v, what, fn);
    if (v.ownerKind === 'container')
      throw new Conflict(`cannot ${what}: it is in use by ${this.holder(v)}; copy it when the container has ended`);
    const h = this.holderState?.(v.serverId!);
    if (h?.task) throw new Conflict(`cannot ${what}: ${this.holder(v)} is busy (${h.task}); try again when it is done`);
    if (!h?.freeze) return this.unchanged(v, what, fn);
    const inServer = h.root && volumeSize(v.id) !== null ? join(h.root, v.mountPath!) : undefined;
    if (inServer) syncFilesystem(inServer); // the bulk of the writeback before the freeze
    onFreeze?.(v.serverId); // recorded before the freeze: a kill after it leaves the server to thaw
    const thaw = h.freeze();
    trace('volume: server frozen');
    try {
      if (inServer) syncFilesystem(inServer);
      const out = fn();
      trace('volume: copied');
      return out;
    } finally {
      thaw();
      onFreeze?.(null);
      trace('volume: server thawed');
    }
  }

  /**
   * `fn` on a volume no running server has: refused after it if the volume was attached,
   * or its server started or took a task, meanwhile (the copy may be torn; the caller
   * removes it).
   */
  private unchanged<T>(v: VolumeRow, what: string, fn: () => T): T {
    const before = this.holding(v.id);
    const out = fn();
    if (this.holding(v.id) !== before) {
      throw new Conflict(`cannot ${what}: it was attached, or its server started, while it was copied; try again`);
    }
    return out;
  }

  /** Who holds the volume now and in what state, as a string to compare. */
  private holding(id: string): string {
    const cur = this.store.volumes.get(id);
    if (!cur || !this.attached(cur)) return 'free';
    if (cur.ownerKind === 'container') return `container ${cur.serverId}`;
    const h = this.holderState?.(cur.serverId!);
    return `server ${cur.serverId} ${h?.task ?? '-'} ${h?.freeze ? 'running' : 'still'}`;
  }

  // ---- snapshots ------------------------------------------------------------------

  /** `volume snapshot create --volume VOL NAME`: a point-in-time copy of the volume. */
  snapshot(volume: string, name: string, opts: { projectId: string; description?: string }): VolumeSnapshotRow {
    if (!VOLUME_NAME.test(name)) {
      throw new BadRequest(
        `invalid volume snapshot name ${JSON.stringify(name)}: use letters, digits, '_', '.' and '-' (at most 63, not starting with a symbol)`,
      );
    }
    const v = this.get(volume);
    if (this.store.volumeSnapshots.find(name)) throw new Conflict(`volume snapshot "${name}" already exists`);
    const sized = volumeSize(v.id) !== null;
    const src = sized ? volumeImage(v.id) : volumeDir(v.id);
    mkdirSync(snapshotsDir(), { recursive: true, mode: 0o700 });
    checkSpace(snapshotsDir(), allocatedBytes(src), `a snapshot of volume "${v.name}"`);
    const id = randomUuid();
    // recorded first ('creating'): the name is taken at once, and a copy whose CLI was
    // killed leaves a record that `volume snapshot delete` removes with its data
    const row = this.store.tx(() => {
      if (this.store.volumeSnapshots.find(name)) throw new Conflict(`volume snapshot "${name}" already exists`);
      const cur = this.store.volumes.get(v.id);
      if (!cur) throw new NotFound(`volume "${v.name}" not found`);
      return this.store.volumeSnapshots.insert({
        id,
        name,
        volumeId: cur.id,
        projectId: opts.projectId,
        description: opts.description ?? '',
        uidBase: cur.uidBase,
        gidBase: cur.gidBase,
        createdAt: nowIso(),
        ownerPid: process.pid,
        ownerStart: selfStart(),
      });
    });
    try {
      this.quietly(
        this.store.volumes.get(v.id) ?? v,
        `snapshot volume "${v.name}"`,
        () => {
          copyVolumeData(src, snapshotPath(id, sized), sized);
          testPause('volume-copied');
        },
        (serverId) => this.store.volumeSnapshots.setFrozen(id, serverId),
      );
    } catch (err) {
      this.store.volumeSnapshots.remove(id);
      removeSnapshotData(id);
      throw err;
    }
    // deleted while it was copied: its data goes too
    if (!this.store.volumeSnapshots.setAvailable(id)) {
      removeSnapshotData(id);
      throw new NotFound(`volume snapshot "${name}" was deleted while it was made`);
    }
    return this.store.volumeSnapshots.get(row.id)!;
  }

  /** Snapshots left `creating` by a process that is gone (a killed `volume snapshot create`). */
  staleSnapshots(): VolumeSnapshotRow[] {
    return this.store.volumeSnapshots.creating().filter((s) => !isSameProcess(s.ownerPid, s.ownerStart));
  }

  /** Volume copies (`volume create --source`/`--snapshot`) whose process is gone (a killed CLI). */
  staleCopies(): VolumeCopyRow[] {
    return this.store.volumeCopies.list().filter((c) => !isSameProcess(c.ownerPid, c.ownerStart));
  }

  /**
   * The server a killed copy left frozen, thawed: unless it is in a task, paused, stopped,
   * or another copy still running (a snapshot or a clone, `self` aside) froze it too.
   */
  private thawLeft(serverId: string, self: string): void {
    const live = (pid: number | null, start: number | null) => isSameProcess(pid, start);
    const others =
      this.store.volumeSnapshots.creating().some((o) => o.id !== self && o.frozenServer === serverId && live(o.ownerPid, o.ownerStart)) ||
      this.store.volumeCopies.list().some((o) => o.volumeId !== self && o.frozenServer === serverId && live(o.ownerPid, o.ownerStart));
    const h = others ? undefined : this.holderState?.(serverId);
    if (h && !h.task && h.thaw) {
      h.thaw();
      trace('volume: server thawed (left frozen by a killed copy)');
    }
  }

  /**
   * One stale snapshot swept: the server it froze thawed (thawLeft), its record and
   * partial copy removed.
   */
  sweepSnapshot(s: VolumeSnapshotRow): void {
    if (s.frozenServer) this.thawLeft(s.frozenServer, s.id);
    const gone = this.store.tx(() => {
      const cur = this.store.volumeSnapshots.get(s.id);
      if (!cur || cur.status !== 'creating' || cur.ownerPid !== s.ownerPid || cur.ownerStart !== s.ownerStart) return false;
      this.store.volumeSnapshots.remove(s.id);
      return true;
    });
    if (gone) removeSnapshotData(s.id);
  }

  /**
   * One stale volume copy swept: the server it froze thawed (thawLeft), its partial data
   * removed, then its record (a sweep killed in between finds it again).
   */
  sweepCopy(c: VolumeCopyRow): void {
    if (c.frozenServer) this.thawLeft(c.frozenServer, c.volumeId);
    const cur = this.store.volumeCopies.get(c.volumeId);
    if (!cur || cur.ownerPid !== c.ownerPid || cur.ownerStart !== c.ownerStart) return;
    if (!this.store.volumes.get(c.volumeId)) removeVolume(c.volumeId);
    this.store.volumeCopies.remove(c.volumeId);
  }

  /** The next `volume` command's repair: every stale snapshot and volume copy swept. */
  reconcileCopies(): void {
    for (const s of this.staleSnapshots()) this.sweepSnapshot(s);
    for (const c of this.staleCopies()) this.sweepCopy(c);
  }

  getSnapshot(nameOrId: string): VolumeSnapshotRow {
    const s = this.store.volumeSnapshots.find(nameOrId);
    if (!s) throw new NotFound(`volume snapshot "${nameOrId}" not found`);
    return s;
  }

  listSnapshots(volume?: string): VolumeSnapshotRow[] {
    return this.store.volumeSnapshots.list(volume === undefined ? undefined : this.get(volume).id);
  }

  deleteSnapshot(nameOrId: string): void {
    const s = this.getSnapshot(nameOrId);
    this.store.volumeSnapshots.remove(s.id);
    removeSnapshotData(s.id);
  }

  /** `volume snapshot show` / `list --long`. */
  snapshotView(s: VolumeSnapshotRow): Record<string, unknown> {
    const data = snapshotData(s.id);
    const bytes = data?.sized ? volumeSizeOf(data.path) : null;
    return {
      created_at: s.createdAt,
      description: s.description,
      id: s.id,
      kind: data ? (data.sized ? 'ext4 image' : 'directory') : null,
      name: s.name,
      owner: s.uidBase === 0 && s.gidBase === 0 ? 'host ids' : `ids from ${s.uidBase}:${s.gidBase}`,
      path: data?.path ?? null,
      project_id: s.projectId,
      size: bytes === null ? null : sizeText(bytes),
      status: s.status,
      volume: this.store.volumes.get(s.volumeId)?.name ?? null,
      volume_id: s.volumeId,
    };
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
      const snaps = this.store.volumeSnapshots.list(cur.id);
      if (snaps.length) {
        throw new Conflict(`cannot delete volume "${cur.name}": it has snapshots (${snaps.map((s) => s.name).join(', ')})`, {
          hint: `delete them first ("novabox volume snapshot delete ${snaps.map((s) => s.name).join(' ')}")`,
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

function volumeSizeOf(path: string): number | null {
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
}
