/**
 * Named volumes and their attachment: one server at a time (Cinder's default, not
 * multiattach), recorded on the volume's row; the server's delete detaches, the volume
 * stays. Attaching checks and writes in one transaction (BEGIN IMMEDIATE).
 */
import { statementCache, type Database } from './sqlite.js';

export interface VolumeRow {
  id: string;
  name: string;
  projectId: string;
  description: string;
  /** the host ids its files are stored in: 0, or the base of the range that used it last */
  uidBase: number;
  gidBase: number;
  /** the server (or `run` container: ownerKind) it is attached to */
  serverId: string | null;
  ownerKind: 'server' | 'container';
  mountPath: string | null;
  readOnly: boolean;
  createdAt: string;
  attachedAt: string | null;
}

const COLUMNS =
  'id, name, project_id AS projectId, description, uid_base AS uidBase, gid_base AS gidBase, server_id AS serverId, owner_kind AS ownerKind, ' +
  'mount_path AS mountPath, read_only AS readOnly, created_at AS createdAt, attached_at AS attachedAt';

type Raw = Omit<VolumeRow, 'readOnly'> & { readOnly: number };
const fromRaw = (r: Raw | undefined): VolumeRow | undefined => (r ? { ...r, readOnly: r.readOnly === 1 } : undefined);

export class VolumeRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(db: Database) {
    this.sql = statementCache(db);
  }

  insert(v: Pick<VolumeRow, 'id' | 'name' | 'projectId' | 'description' | 'createdAt'>): VolumeRow {
    this.sql('INSERT INTO volumes (id, name, project_id, description, created_at) VALUES (?, ?, ?, ?, ?)').run(
      v.id,
      v.name,
      v.projectId,
      v.description,
      v.createdAt,
    );
    return this.get(v.id)!;
  }

  get(id: string): VolumeRow | undefined {
    return fromRaw(this.sql<Raw>(`SELECT ${COLUMNS} FROM volumes WHERE id = ?`).get(id));
  }

  /** By name, else by id. */
  find(nameOrId: string): VolumeRow | undefined {
    return fromRaw(
      this.sql<Raw>(`SELECT ${COLUMNS} FROM volumes WHERE name = ? OR id = ? ORDER BY name = ? DESC LIMIT 1`).get(
        nameOrId,
        nameOrId,
        nameOrId,
      ),
    );
  }

  list(): VolumeRow[] {
    return this.sql<Raw>(`SELECT ${COLUMNS} FROM volumes ORDER BY name`)
      .all()
      .map((r) => fromRaw(r)!);
  }

  ofServer(serverId: string): VolumeRow[] {
    return this.sql<Raw>(`SELECT ${COLUMNS} FROM volumes WHERE server_id = ? ORDER BY attached_at, name`)
      .all(serverId)
      .map((r) => fromRaw(r)!);
  }

  attach(
    id: string,
    serverId: string,
    mountPath: string,
    readOnly: boolean,
    at: string,
    ownerKind: VolumeRow['ownerKind'] = 'server',
  ): void {
    this.sql('UPDATE volumes SET server_id = ?, owner_kind = ?, mount_path = ?, read_only = ?, attached_at = ? WHERE id = ?').run(
      serverId,
      ownerKind,
      mountPath,
      readOnly ? 1 : 0,
      at,
      id,
    );
  }

  detach(id: string): void {
    this.sql(
      "UPDATE volumes SET server_id = NULL, owner_kind = 'server', mount_path = NULL, read_only = 0, attached_at = NULL WHERE id = ?",
    ).run(id);
  }

  detachServer(serverId: string): number {
    return this.sql(
      "UPDATE volumes SET server_id = NULL, owner_kind = 'server', mount_path = NULL, read_only = 0, attached_at = NULL WHERE server_id = ?",
    ).run(serverId).changes;
  }

  setOwner(id: string, uidBase: number, gidBase: number): void {
    this.sql('UPDATE volumes SET uid_base = ?, gid_base = ? WHERE id = ?').run(uidBase, gidBase, id);
  }

  remove(id: string): number {
    return this.sql('DELETE FROM volumes WHERE id = ?').run(id).changes;
  }
}

/** A volume's point-in-time copy (`volume snapshot create`). */
export interface VolumeSnapshotRow {
  id: string;
  name: string;
  volumeId: string;
  projectId: string;
  description: string;
  status: 'creating' | 'available';
  /** the ids the copied files are stored in (the volume's at the copy) */
  uidBase: number;
  gidBase: number;
  createdAt: string;
  /** while `creating`: the process making it (pid, start time), and the server it froze for the copy */
  ownerPid: number | null;
  ownerStart: number | null;
  frozenServer: string | null;
}

const SNAP_COLUMNS =
  'id, name, volume_id AS volumeId, project_id AS projectId, description, status, uid_base AS uidBase, gid_base AS gidBase, created_at AS createdAt, ' +
  'owner_pid AS ownerPid, owner_start AS ownerStart, frozen_server AS frozenServer';

export class VolumeSnapshotRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(db: Database) {
    this.sql = statementCache(db);
  }

  insert(s: Omit<VolumeSnapshotRow, 'status' | 'frozenServer'>): VolumeSnapshotRow {
    this.sql(
      'INSERT INTO volume_snapshots (id, name, volume_id, project_id, description, uid_base, gid_base, created_at, owner_pid, owner_start) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(s.id, s.name, s.volumeId, s.projectId, s.description, s.uidBase, s.gidBase, s.createdAt, s.ownerPid, s.ownerStart);
    return this.get(s.id)!;
  }

  get(id: string): VolumeSnapshotRow | undefined {
    return this.sql<VolumeSnapshotRow>(`SELECT ${SNAP_COLUMNS} FROM volume_snapshots WHERE id = ?`).get(id);
  }

  /** By name, else by id. */
  find(nameOrId: string): VolumeSnapshotRow | undefined {
    return this.sql<VolumeSnapshotRow>(
      `SELECT ${SNAP_COLUMNS} FROM volume_snapshots WHERE name = ? OR id = ? ORDER BY name = ? DESC LIMIT 1`,
    ).get(nameOrId, nameOrId, nameOrId);
  }

  list(volumeId?: string): VolumeSnapshotRow[] {
    return volumeId === undefined
      ? this.sql<VolumeSnapshotRow>(`SELECT ${SNAP_COLUMNS} FROM volume_snapshots ORDER BY created_at, name`).all()
      : this.sql<VolumeSnapshotRow>(`SELECT ${SNAP_COLUMNS} FROM volume_snapshots WHERE volume_id = ? ORDER BY created_at, name`).all(
          volumeId,
        );
  }

  /** False when the record is gone (deleted while it was copied). */
  setAvailable(id: string): boolean {
    return (
      this.sql(
        "UPDATE volume_snapshots SET status = 'available', owner_pid = NULL, owner_start = NULL, frozen_server = NULL WHERE id = ?",
      ).run(id).changes === 1
    );
  }

  /** The server frozen for its copy (null: thawed again). */
  setFrozen(id: string, serverId: string | null): void {
    this.sql('UPDATE volume_snapshots SET frozen_server = ? WHERE id = ?').run(serverId, id);
  }

  /** Those still `creating`, with the process making them. */
  creating(): VolumeSnapshotRow[] {
    return this.sql<VolumeSnapshotRow>(`SELECT ${SNAP_COLUMNS} FROM volume_snapshots WHERE status = 'creating'`).all();
  }

  remove(id: string): number {
    return this.sql('DELETE FROM volume_snapshots WHERE id = ?').run(id).changes;
  }
}

/**
 * A volume being copied (`volume create --source` / `--snapshot`): it has no row until its
 * copy is whole, so the copy in progress is recorded here with the process making it and
 * the server it froze; the volume's insert removes the record in the same transaction.
 */
export interface VolumeCopyRow {
  /** the new volume's id (its data: runtime/volumes.ts volumeDir/volumeImage) */
  volumeId: string;
  name: string;
  /** what it copies: `volume NAME` or `snapshot NAME` */
  source: string;
  ownerPid: number;
  ownerStart: number;
  frozenServer: string | null;
  createdAt: string;
}

const COPY_COLUMNS =
  'volume_id AS volumeId, name, source, owner_pid AS ownerPid, owner_start AS ownerStart, frozen_server AS frozenServer, created_at AS createdAt';

export class VolumeCopyRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(db: Database) {
    this.sql = statementCache(db);
  }

  insert(c: Omit<VolumeCopyRow, 'frozenServer'>): void {
    this.sql('INSERT INTO volume_copies (volume_id, name, source, owner_pid, owner_start, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      c.volumeId,
      c.name,
      c.source,
      c.ownerPid,
      c.ownerStart,
      c.createdAt,
    );
  }

  get(volumeId: string): VolumeCopyRow | undefined {
    return this.sql<VolumeCopyRow>(`SELECT ${COPY_COLUMNS} FROM volume_copies WHERE volume_id = ?`).get(volumeId);
  }

  list(): VolumeCopyRow[] {
    return this.sql<VolumeCopyRow>(`SELECT ${COPY_COLUMNS} FROM volume_copies`).all();
  }

  /** The server frozen for its copy (null: thawed again). */
  setFrozen(volumeId: string, serverId: string | null): void {
    this.sql('UPDATE volume_copies SET frozen_server = ? WHERE volume_id = ?').run(serverId, volumeId);
  }

  remove(volumeId: string): number {
    return this.sql('DELETE FROM volume_copies WHERE volume_id = ?').run(volumeId).changes;
  }
}
