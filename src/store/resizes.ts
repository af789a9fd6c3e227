/** Resizes of servers (Nova's migration records, one host): what confirm/revert need, and os-migrations. */
import { NotFound } from '../errors.js';
import { statementCache, type Database } from './sqlite.js';
import { nowIso } from './time.js';
import type { Flavor } from './flavors.js';

export type ResizeStatus = 'finished' | 'confirmed' | 'reverted' | 'error';

/** Nova's migration_type: a resize on this host, or a cold migration to another (`server migrate`). */
export type MigrationKind = 'resize' | 'migration' | 'live-migration';

/** A migration's status: a resize's, or a cold migration's (Nova: migrating while it runs; confirmed, or error). */
export type MigrationStatus = ResizeStatus | 'migrating';

export interface Resize {
  id: number;
  serverId: string;
  projectId: string;
  kind: MigrationKind;
  status: MigrationStatus;
  oldFlavorId: string;
  newFlavorId: string;
  oldFlavorInt: number;
  newFlavorInt: number;
  preVmState: string;
  /** the source host (Nova's source_compute) */
  host: string;
  /** a migration's target host as it named itself, and its address (ssh) when known; null for a resize */
  destCompute: string | null;
  destHost: string | null;
  createdAt: string;
  updatedAt: string;
  /** copies of both flavors (Nova keeps them with the migration): revert works after a flavor is deleted */
  oldFlavor: Flavor | null;
  newFlavor: Flavor | null;
}

const COLS = `id, server_id AS serverId, project_id AS projectId, kind, status, old_flavor_id AS oldFlavorId,
  new_flavor_id AS newFlavorId, old_flavor_int AS oldFlavorInt, new_flavor_int AS newFlavorInt,
  pre_vm_state AS preVmState, host, dest_compute AS destCompute, dest_host AS destHost, created_at AS createdAt, updated_at AS updatedAt, old_flavor AS oldFlavor, new_flavor AS newFlavor`;

function parsed(r: Resize | undefined): Resize | undefined {
  if (!r) return r;
  const j = (v: unknown) => (typeof v === 'string' ? (JSON.parse(v) as Flavor) : null);
  return { ...r, oldFlavor: j(r.oldFlavor), newFlavor: j(r.newFlavor) };
}

export class ResizeRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(db: Database) {
    this.sql = statementCache(db);
  }

  insert(
    r: Pick<Resize, 'serverId' | 'projectId' | 'status' | 'oldFlavorId' | 'newFlavorId' | 'preVmState' | 'host'> &
      Partial<Pick<Resize, 'oldFlavor' | 'newFlavor'>>,
  ): Resize {
    const now = nowIso();
    const rowid = (id: string) => this.sql<{ r: number }>('SELECT rowid AS r FROM flavors WHERE id = ?').get(id)?.r ?? 0;
    const id = Number(
      this.sql(
        `INSERT INTO server_migrations (server_id, project_id, status, old_flavor_id, new_flavor_id, old_flavor_int, new_flavor_int,
           pre_vm_state, host, created_at, updated_at, old_flavor, new_flavor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        r.serverId,
        r.projectId,
        r.status,
        r.oldFlavorId,
        r.newFlavorId,
        rowid(r.oldFlavorId),
        rowid(r.newFlavorId),
        r.preVmState,
        r.host,
        now,
        now,
        r.oldFlavor ? JSON.stringify(r.oldFlavor) : null,
        r.newFlavor ? JSON.stringify(r.newFlavor) : null,
      ).lastInsertRowid,
    );
    return parsed(this.sql<Resize>(`SELECT ${COLS} FROM server_migrations WHERE id = ?`).get(id))!;
  }

  /** The resize a VERIFY_RESIZE server waits on. */
  pending(serverId: string): Resize {
    const r = this.sql<Resize>(
      `SELECT ${COLS} FROM server_migrations WHERE server_id = ? AND kind = 'resize' AND status = 'finished' ORDER BY id DESC LIMIT 1`,
    ).get(serverId);
    if (!r) throw new NotFound(`Migration for instance ${serverId} could not be found`);
    return parsed(r)!;
  }

  setStatus(id: number, status: MigrationStatus, dest?: { compute: string | null; host: string | null }): void {
    this.sql(
      'UPDATE server_migrations SET status = ?, updated_at = ?, dest_compute = coalesce(?, dest_compute), dest_host = coalesce(?, dest_host) WHERE id = ?',
    ).run(status, nowIso(), dest?.compute ?? null, dest?.host ?? null, id);
  }

  /** A cold migration to another host (`server migrate`), recorded on the source as it begins: status migrating. */
  insertMigration(r: {
    serverId: string;
    projectId: string;
    flavorId: string;
    preVmState: string;
    host: string;
    destHost: string | null;
    /** Nova's migration_type: `live-migration` for `--live` */
    kind?: 'migration' | 'live-migration';
  }): Resize {
    const now = nowIso();
    const flavorInt = this.sql<{ r: number }>('SELECT rowid AS r FROM flavors WHERE id = ?').get(r.flavorId)?.r ?? 0;
    const id = Number(
      this.sql(
        `INSERT INTO server_migrations (server_id, project_id, kind, status, old_flavor_id, new_flavor_id, old_flavor_int, new_flavor_int,
           pre_vm_state, host, dest_host, created_at, updated_at) VALUES (?, ?, ?, 'migrating', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        r.serverId,
        r.projectId,
        r.kind ?? 'migration',
        r.flavorId,
        r.flavorId,
        flavorInt,
        flavorInt,
        r.preVmState,
        r.host,
        r.destHost,
        now,
        now,
      ).lastInsertRowid,
    );
    return parsed(this.sql<Resize>(`SELECT ${COLS} FROM server_migrations WHERE id = ?`).get(id))!;
  }

  list(filter: { projectId?: string; serverId?: string } = {}): Resize[] {
    return this.sql<Resize>(
      `SELECT ${COLS} FROM server_migrations WHERE (@p IS NULL OR project_id = @p) AND (@s IS NULL OR server_id = @s) ORDER BY id DESC`,
    )
      .all({ p: filter.projectId ?? null, s: filter.serverId ?? null })
      .map((r) => parsed(r)!);
  }
}
