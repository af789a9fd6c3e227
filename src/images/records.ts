/**
 * Image records in the state database (migration "002 images"): Glance's fields, the
 * ordered layer list and the runtime config. Rows only; the rules live in service.ts.
 */
import { Conflict, NotFound } from '../errors.js';
import { isConstraint, statementCache, type Database, type Tx } from '../store/sqlite.js';
import { nowIso } from '../store/time.js';
import type { ImageConfig } from './store.js';

export type ImageStatus = 'queued' | 'saving' | 'active' | 'killed' | 'deleted' | 'pending_delete' | 'deactivated';
export type Visibility = 'public' | 'private' | 'shared' | 'community';

export interface ImageRecord {
  id: string;
  name: string;
  status: ImageStatus;
  /** bytes of the image's layers as tars (what `image save` streams, less the OCI metadata) */
  size: number | null;
  virtualSize: number | null;
  /** md5 of the uploaded data when it came through upload(); null for snapshots and imports */
  checksum: string | null;
  osHashAlgo: string | null;
  /** sha256 of the OCI manifest: the image's content identity */
  osHashValue: string | null;
  diskFormat: string | null;
  containerFormat: string | null;
  visibility: Visibility;
  owner: string;
  protected: boolean;
  minDisk: number;
  minRam: number;
  tags: string[];
  properties: Record<string, string>;
  config: ImageConfig;
  /** diff ids (sha256:<hex>), bottom layer first */
  layers: string[];
  taskOwnerPid: number | null;
  taskOwnerStart: number | null;
  createdAt: string;
  updatedAt: string;
}

export interface LayerRecord {
  diffId: string;
  blobDigest: string;
  mediaType: string;
  blobSize: number;
  size: number;
}

interface Row {
  id: string;
  name: string;
  status: ImageStatus;
  size: number | null;
  virtual_size: number | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  disk_format: string | null;
  container_format: string | null;
  visibility: Visibility;
  owner: string;
  protected: number;
  min_disk: number;
  min_ram: number;
  tags: string;
  properties: string;
  config: string;
  task_owner_pid: number | null;
  task_owner_start: number | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS: Record<string, [string, 'text' | 'int' | 'bool' | 'json']> = {
  name: ['name', 'text'],
  status: ['status', 'text'],
  size: ['size', 'int'],
  virtualSize: ['virtual_size', 'int'],
  checksum: ['checksum', 'text'],
  osHashAlgo: ['os_hash_algo', 'text'],
  osHashValue: ['os_hash_value', 'text'],
  diskFormat: ['disk_format', 'text'],
  containerFormat: ['container_format', 'text'],
  visibility: ['visibility', 'text'],
  owner: ['owner', 'text'],
  protected: ['protected', 'bool'],
  minDisk: ['min_disk', 'int'],
  minRam: ['min_ram', 'int'],
  tags: ['tags', 'json'],
  properties: ['properties', 'json'],
  config: ['config', 'json'],
  taskOwnerPid: ['task_owner_pid', 'int'],
  taskOwnerStart: ['task_owner_start', 'int'],
};

export type NewImage = Pick<ImageRecord, 'id' | 'name' | 'owner'> & Partial<ImageRecord>;

export class ImageRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(
    readonly db: Database,
    readonly tx: Tx,
  ) {
    this.sql = statementCache(db);
  }

  private layersOf(id: string): string[] {
    return this.sql<{ diff_id: string }>('SELECT diff_id FROM image_layers WHERE image_id = ? ORDER BY position')
      .all(id)
      .map((r) => r.diff_id);
  }

  private toRecord(r: Row): ImageRecord {
    return {
      id: r.id,
      name: r.name,
      status: r.status,
      size: r.size,
      virtualSize: r.virtual_size,
      checksum: r.checksum,
      osHashAlgo: r.os_hash_algo,
      osHashValue: r.os_hash_value,
      diskFormat: r.disk_format,
      containerFormat: r.container_format,
      visibility: r.visibility,
      owner: r.owner,
      protected: Boolean(r.protected),
      minDisk: r.min_disk,
      minRam: r.min_ram,
      tags: JSON.parse(r.tags),
      properties: JSON.parse(r.properties),
      config: JSON.parse(r.config),
      layers: this.layersOf(r.id),
      taskOwnerPid: r.task_owner_pid,
      taskOwnerStart: r.task_owner_start,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  get(id: string): ImageRecord | undefined {
    const r = this.sql<Row>('SELECT * FROM images WHERE id = ?').get(id);
    return r ? this.toRecord(r) : undefined;
  }

  /** The live image of that name (queued, saving, active or deactivated), or the newest other one. */
  byName(name: string): ImageRecord | undefined {
    const r = this.sql<Row>(
      "SELECT * FROM images WHERE name = ? ORDER BY status IN ('queued', 'saving', 'active', 'deactivated') DESC, created_at DESC LIMIT 1",
    ).get(name);
    return r ? this.toRecord(r) : undefined;
  }

  /** Every image of that name, live ones first, newest first (names may repeat, as in Glance). */
  allByName(name: string): ImageRecord[] {
    return this.sql<Row>(
      "SELECT * FROM images WHERE name = ? ORDER BY status IN ('queued', 'saving', 'active', 'deactivated') DESC, created_at DESC, id",
    )
      .all(name)
      .map((r) => this.toRecord(r));
  }

  list(): ImageRecord[] {
    return this.sql<Row>('SELECT * FROM images ORDER BY created_at DESC, id')
      .all()
      .map((r) => this.toRecord(r));
  }

  insert(img: NewImage): ImageRecord {
    const now = nowIso();
    try {
      this.sql(
        `INSERT INTO images (id, name, status, size, virtual_size, checksum, os_hash_algo, os_hash_value, disk_format, container_format,
           visibility, owner, protected, min_disk, min_ram, tags, properties, config, task_owner_pid, task_owner_start, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        img.id,
        img.name,
        img.status ?? 'queued',
        img.size ?? null,
        img.virtualSize ?? null,
        img.checksum ?? null,
        img.osHashAlgo ?? null,
        img.osHashValue ?? null,
        img.diskFormat ?? null,
        img.containerFormat ?? null,
        img.visibility ?? 'shared',
        img.owner,
        img.protected ? 1 : 0,
        img.minDisk ?? 0,
        img.minRam ?? 0,
        JSON.stringify(img.tags ?? []),
        JSON.stringify(img.properties ?? {}),
        JSON.stringify(img.config ?? {}),
        img.taskOwnerPid ?? null,
        img.taskOwnerStart ?? null,
        img.createdAt ?? now,
        img.updatedAt ?? now,
      );
    } catch (err) {
      if (isConstraint(err, 'UNIQUE'))
        throw new Conflict(`an image named "${img.name}" already exists`, { hint: 'pick another name, or delete that image first' });
      throw err;
    }
    return this.get(img.id)!;
  }

  update(id: string, patch: Partial<ImageRecord>): ImageRecord {
    const sets: string[] = [];
    const vals: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      const col = COLUMNS[k];
      if (!col || v === undefined) continue;
      sets.push(`${col[0]} = ?`);
      vals.push(col[1] === 'json' ? JSON.stringify(v) : col[1] === 'bool' ? (v ? 1 : 0) : v);
    }
    sets.push('updated_at = ?');
    vals.push(nowIso());
    try {
      const r = this.db.prepare(`UPDATE images SET ${sets.join(', ')} WHERE id = ?`).run(...vals, id);
      if (r.changes === 0) throw new NotFound(`image ${id} not found`);
    } catch (err) {
      if (isConstraint(err, 'UNIQUE')) throw new Conflict(`an image named "${patch.name}" already exists`);
      throw err;
    }
    return this.get(id)!;
  }

  /** The image's layer list, replacing any; layers must exist in `layers`. */
  setLayers(id: string, diffIds: string[]): void {
    this.sql('DELETE FROM image_layers WHERE image_id = ?').run(id);
    const add = this.sql('INSERT INTO image_layers (image_id, position, diff_id) VALUES (?, ?, ?)');
    diffIds.forEach((d, i) => add.run(id, i, d));
  }

  remove(id: string): void {
    this.sql('DELETE FROM images WHERE id = ?').run(id);
  }

  layer(diffId: string): LayerRecord | undefined {
    const r = this.sql<{ diff_id: string; blob_digest: string; media_type: string; blob_size: number; size: number }>(
      'SELECT * FROM layers WHERE diff_id = ?',
    ).get(diffId);
    return r ? { diffId: r.diff_id, blobDigest: r.blob_digest, mediaType: r.media_type, blobSize: r.blob_size, size: r.size } : undefined;
  }

  addLayer(l: LayerRecord): void {
    this.sql('INSERT OR IGNORE INTO layers (diff_id, blob_digest, media_type, blob_size, size, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      l.diffId,
      l.blobDigest,
      l.mediaType,
      l.blobSize,
      l.size,
      nowIso(),
    );
  }

  /** How many images use the layer: its reference count. */
  layerRefs(diffId: string): number {
    return this.sql<{ n: number }>('SELECT count(*) AS n FROM image_layers WHERE diff_id = ?').get(diffId)!.n;
  }

  /** Layers no image references (after a delete). */
  unreferencedLayers(): LayerRecord[] {
    return this.sql<{ diff_id: string }>('SELECT diff_id FROM layers WHERE diff_id NOT IN (SELECT diff_id FROM image_layers)')
      .all()
      .map((r) => this.layer(r.diff_id)!);
  }

  removeLayer(diffId: string): void {
    this.sql('DELETE FROM layers WHERE diff_id = ?').run(diffId);
  }

  /** Servers (not deleted) that name this image by id or by name. */
  serversUsing(img: Pick<ImageRecord, 'id' | 'name'>): { id: string; name: string }[] {
    return this.sql<{ id: string; name: string }>(
      'SELECT id, name FROM servers WHERE deleted = 0 AND (image_ref = ? OR (image_ref = ? AND image_name = ?)) ORDER BY name',
    ).all(img.id, img.name, img.name);
  }
}
