/**
 * Servers' id ranges: the record of the lease a server holds (the lease itself, which
 * decides, is runtime/userns/leases.ts's link under $NOVABOX_ROOT/idmap). Written in the
 * transaction that creates the server, removed in the one that deletes it.
 */
import { statementCache, type Database } from './sqlite.js';
import { nowIso } from './time.js';

export interface IdmapLeaseRow {
  slot: number;
  uidBase: number;
  gidBase: number;
  size: number;
  ownerKind: 'server' | 'container';
  ownerId: string;
  nonce: string;
  createdAt: string;
}

const COLUMNS =
  'slot, uid_base AS uidBase, gid_base AS gidBase, size, owner_kind AS ownerKind, owner_id AS ownerId, nonce, created_at AS createdAt';

export class IdmapLeaseRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(db: Database) {
    this.sql = statementCache(db);
  }

  /**
   * Record a lease just taken. A row of the same slot is a record the links no longer
   * back (the link decides): it goes.
   */
  insert(r: Omit<IdmapLeaseRow, 'createdAt'>): IdmapLeaseRow {
    const row: IdmapLeaseRow = { ...r, createdAt: nowIso() };
    this.sql('DELETE FROM idmap_leases WHERE slot = ? AND nonce != ?').run(row.slot, row.nonce);
    this.sql(
      'INSERT INTO idmap_leases (slot, uid_base, gid_base, size, owner_kind, owner_id, nonce, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(row.slot, row.uidBase, row.gidBase, row.size, row.ownerKind, row.ownerId, row.nonce, row.createdAt);
    return row;
  }

  ofOwner(ownerId: string): IdmapLeaseRow | undefined {
    return this.sql<IdmapLeaseRow>(`SELECT ${COLUMNS} FROM idmap_leases WHERE owner_id = ?`).get(ownerId);
  }

  /** The record of the lease with this nonce (a lease's link names its owner by a prefix of its id). */
  ofNonce(nonce: string): IdmapLeaseRow | undefined {
    return this.sql<IdmapLeaseRow>(`SELECT ${COLUMNS} FROM idmap_leases WHERE nonce = ?`).get(nonce);
  }

  list(): IdmapLeaseRow[] {
    return this.sql<IdmapLeaseRow>(`SELECT ${COLUMNS} FROM idmap_leases ORDER BY slot`).all();
  }

  remove(ownerId: string): number {
    return this.sql('DELETE FROM idmap_leases WHERE owner_id = ?').run(ownerId).changes;
  }

  /**
   * The nonces of every record, and whether any is an orphan (below): the reconcile's one
   * read when there is nothing to repair.
   */
  nonces(): { nonces: Set<string>; orphans: boolean } {
    const rows = this.sql<{ nonce: string; orphan: number }>(
      `SELECT nonce, owner_kind = 'server' AND owner_id NOT IN (SELECT id FROM servers WHERE deleted = 0) AS orphan FROM idmap_leases`,
    ).all();
    return { nonces: new Set(rows.map((r) => r.nonce)), orphans: rows.some((r) => r.orphan === 1) };
  }

  /** Rows whose server is deleted or gone (a delete that stopped half way). */
  orphans(): IdmapLeaseRow[] {
    return this.sql<IdmapLeaseRow>(
      `SELECT ${COLUMNS} FROM idmap_leases WHERE owner_kind = 'server' AND owner_id NOT IN (SELECT id FROM servers WHERE deleted = 0)`,
    ).all();
  }
}
