/**
 * Named volumes (`novabox volume …`, `server create --volume`, `server add volume`): data
 * that outlives a server. A volume is attached to one server at a time, from the attach
 * to `server remove volume` or the server's delete; it is mounted at the server's starts
 * (a bind mount, `:ro` read-only), so it survives stop/start, reboot and rebuild, and is
 * never part of a snapshot. Deleting it is refused while it is attached.
 */
import { BadRequest, Conflict, NotFound } from '../errors.js';
import { makeVolumeDir, removeVolumeDir, shiftTree, volumeDir } from '../runtime/volumes.js';
import type { Idmap } from '../runtime/plan/spec.js';
import type { Store } from '../store/db.js';
import { nowIso } from '../store/time.js';
import type { VolumeRow } from '../store/volumes.js';
import { randomUuid } from '../util/random.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export interface VolumeMount {
  /** the volume's name or id */
  volume: string;
  path: string;
  readOnly: boolean;
}

/** `NAME:/path[:ro|rw]` (podman's -v with a named volume). Pure. */
export function parseVolumeMount(spec: string): VolumeMount {
  const parts = spec.split(':');
  const mode = parts.length === 3 ? parts[2] : parts.length === 2 ? 'rw' : undefined;
  if (mode === undefined || (mode !== 'ro' && mode !== 'rw') || !parts[0]) {
    throw new BadRequest(`invalid --volume ${JSON.stringify(spec)}: expected NAME:/path[:ro]`);
  }
  return { volume: parts[0], path: checkMountPath(parts[1], `--volume ${JSON.stringify(spec)}`), readOnly: mode === 'ro' };
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

export function checkVolumeName(name: string): void {
  if (!NAME.test(name)) {
    throw new BadRequest(
      `invalid volume name ${JSON.stringify(name)}: use letters, digits, '_', '.' and '-' (at most 63, not starting with a symbol)`,
    );
  }
}

export class VolumeService {
  constructor(private readonly store: Store) {}

  create(name: string, opts: { projectId: string; description?: string }): VolumeRow {
    checkVolumeName(name);
    if (this.store.volumes.find(name)) throw new Conflict(`volume "${name}" already exists`);
    const id = randomUuid();
    makeVolumeDir(id);
    try {
      return this.store.tx(() => {
        if (this.store.volumes.find(name)) throw new Conflict(`volume "${name}" already exists`);
        return this.store.volumes.insert({ id, name, projectId: opts.projectId, description: opts.description ?? '', createdAt: nowIso() });
      });
    } catch (err) {
      removeVolumeDir(id);
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

  /** Cinder's status: in-use while attached. */
  statusOf(v: VolumeRow): 'available' | 'in-use' {
    return v.serverId ? 'in-use' : 'available';
  }

  serverName(v: VolumeRow): string | null {
    return v.serverId ? (this.store.servers.get(v.serverId)?.name ?? v.serverId) : null;
  }

  delete(nameOrId: string): void {
    const v = this.get(nameOrId);
    this.store.tx(() => {
      const cur = this.store.volumes.get(v.id);
      if (!cur) return;
      if (cur.serverId) {
        const server = this.serverName(cur);
        throw new Conflict(`cannot delete volume "${cur.name}": it is in use by server "${server}" (at ${cur.mountPath})`, {
          hint: `detach it first ("novabox server remove volume ${server} ${cur.name}") or delete the server`,
        });
      }
      this.store.volumes.remove(cur.id);
    });
    removeVolumeDir(v.id);
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
    if (v.serverId) {
      throw new Conflict(`volume "${v.name}" is in use by server "${this.serverName(v)}" (at ${v.mountPath})`, {
        hint: 'a volume is attached to one server at a time',
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

  /** `server add volume`. */
  attach(serverId: string, nameOrId: string, path: string, readOnly: boolean): VolumeRow {
    const v = this.get(nameOrId);
    const p = checkMountPath(path);
    this.store.tx(() => this.attachIn(serverId, v.id, p, readOnly));
    return this.store.volumes.get(v.id)!;
  }

  /** `server remove volume`. */
  detach(serverId: string, serverName: string, nameOrId: string): void {
    const v = this.get(nameOrId);
    if (v.serverId !== serverId) throw new Conflict(`volume "${v.name}" is not attached to server "${serverName}"`);
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
    return this.ofServer(serverId).map((v) => {
      if (v.uidBase !== to.uid || v.gidBase !== to.gid) {
        shiftTree(volumeDir(v.id), { uid: v.uidBase, gid: v.gidBase }, to);
        this.store.volumes.setOwner(v.id, to.uid, to.gid);
      }
      return { source: volumeDir(v.id), target: v.mountPath!, readOnly: v.readOnly, isDir: true };
    });
  }

  /** `volume show` / `volume list --long`. */
  view(v: VolumeRow): Record<string, unknown> {
    return {
      attachments: v.serverId
        ? [{ server_id: v.serverId, server: this.serverName(v), path: v.mountPath, read_only: v.readOnly, attached_at: v.attachedAt }]
        : [],
      created_at: v.createdAt,
      description: v.description,
      id: v.id,
      name: v.name,
      owner: v.uidBase === 0 && v.gidBase === 0 ? 'host ids' : `ids from ${v.uidBase}:${v.gidBase}`,
      path: volumeDir(v.id),
      project_id: v.projectId,
      status: this.statusOf(v),
    };
  }
}
