import type { Flavor } from './flavors.js';
import { BadRequest, Conflict, NotFound } from '../errors.js';
import { statusOf, type TaskState, type VmState } from '../model/states.js';
import { isConstraint, statementCache, type Database, type Tx } from './sqlite.js';
import { nowIso, toStoredTime } from './time.js';
import type { ServerFacts as RuntimeFacts } from '../runtime/server.js';

import type { Server } from '../model/records.js';
export type { Fault, NetworkMode, Server } from '../model/records.js';

/** What `insert` needs; the rest defaults (times to now). */
export type NewServer = Pick<Server, 'id' | 'name' | 'projectId' | 'userId' | 'vmState'> & Partial<Server>;

/** Facts about the live container (the runtime's own type), checked against /proc before they are believed. */
export type { RuntimeFacts };

export interface ServerListFilters {
  projectId?: string;
  /** the derived API status, case-insensitive */
  status?: string;
  /** a regular expression searched in the name (Nova: re.search) */
  name?: string;
  /** a regular expression searched in the fixed addresses (Nova's `ip` filter) */
  ip?: string;
  limit?: number;
  /** a server id: only servers after it */
  marker?: string;
  /** ISO 8601: servers updated at or after it, deleted ones included */
  changesSince?: string;
}

export interface Transition {
  /** the vm_states the action may start from */
  from: VmState[];
  /** what task_state must be now (default: null, no task running) */
  taskState?: TaskState | null;
  /** skip the task_state check (delete runs even while a task does) */
  allowTask?: boolean;
  to: Partial<Server>;
  /** Nova's action name, for the error message */
  action: string;
}

type Kind = 'text' | 'int' | 'bool' | 'json';

/** field → column, and how the value is stored. */
const COLUMNS: Record<keyof Server, [string, Kind]> = {
  id: ['id', 'text'],
  name: ['name', 'text'],
  projectId: ['project_id', 'text'],
  userId: ['user_id', 'text'],
  imageRef: ['image_ref', 'text'],
  imageName: ['image_name', 'text'],
  flavorId: ['flavor_id', 'text'],
  vmState: ['vm_state', 'text'],
  taskState: ['task_state', 'text'],
  powerState: ['power_state', 'int'],
  metadata: ['metadata', 'json'],
  keyName: ['key_name', 'text'],
  accessIpv4: ['access_ipv4', 'text'],
  accessIpv6: ['access_ipv6', 'text'],
  locked: ['locked', 'bool'],
  lockedBy: ['locked_by', 'text'],
  host: ['host', 'text'],
  fault: ['fault', 'json'],
  ephemeral: ['ephemeral', 'bool'],
  network: ['network', 'text'],
  userns: ['userns', 'text'],
  taskOwnerPid: ['task_owner_pid', 'int'],
  taskOwnerStart: ['task_owner_start', 'int'],
  createdAt: ['created_at', 'text'],
  updatedAt: ['updated_at', 'text'],
  launchedAt: ['launched_at', 'text'],
  terminatedAt: ['terminated_at', 'text'],
  deleted: ['deleted', 'bool'],
  flavor: ['flavor', 'json'],
  restart: ['restart', 'text'],
  restartCount: ['restart_count', 'int'],
  userData: ['user_data', 'text'],
  keyData: ['key_data', 'text'],
  configDrive: ['config_drive', 'bool'],
  init: ['init', 'text'],
};
const FIELDS = Object.keys(COLUMNS) as (keyof Server)[];

function toColumn(kind: Kind, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (kind === 'bool') return v ? 1 : 0;
  if (kind === 'json') return JSON.stringify(v);
  return v;
}

function fromRow(row: Record<string, unknown>): Server {
  const s: Record<string, unknown> = {};
  for (const f of FIELDS) {
    const [col, kind] = COLUMNS[f];
    const v = row[col];
    s[f] = kind === 'bool' ? v === 1 : kind === 'json' ? (v === null ? null : JSON.parse(v as string)) : v;
  }
  return s as unknown as Server;
}

const DEFAULTS: Omit<Server, 'id' | 'name' | 'projectId' | 'userId' | 'vmState' | 'createdAt' | 'updatedAt'> = {
  imageRef: '',
  imageName: '',
  flavorId: '',
  taskState: null,
  powerState: 0,
  metadata: {},
  keyName: null,
  accessIpv4: '',
  accessIpv6: '',
  locked: false,
  lockedBy: null,
  host: '',
  fault: null,
  ephemeral: false,
  network: 'none',
  userns: 'host',
  taskOwnerPid: null,
  taskOwnerStart: null,
  launchedAt: null,
  terminatedAt: null,
  deleted: false,
  flavor: null,
  restart: 'no',
  restartCount: 0,
  userData: null,
  keyData: null,
  configDrive: false,
  init: 'novabox',
};

export class ServerRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(
    db: Database,
    private readonly tx: Tx,
  ) {
    this.sql = statementCache(db);
  }

  insert(s: NewServer): Server {
    const now = nowIso();
    const base: Server = { ...DEFAULTS, ...s, createdAt: s.createdAt ?? now, updatedAt: s.updatedAt ?? s.createdAt ?? now };
    const full = Object.fromEntries(
      FIELDS.map((f) => [f, base[f] !== undefined ? base[f] : (DEFAULTS as Partial<Server>)[f]]),
    ) as unknown as Server;
    const cols = FIELDS.map((f) => COLUMNS[f][0]);
    try {
      this.sql(`INSERT INTO servers (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(
        ...FIELDS.map((f) => toColumn(COLUMNS[f][1], full[f])),
      );
    } catch (err) {
      if (isConstraint(err, 'PRIMARYKEY')) throw new Conflict(`server ${s.id} already exists`, { cause: err });
      throw err;
    }
    return full;
  }

  /** undefined when there is no such server or it is deleted */
  get(id: string): Server | undefined {
    const row = this.sql<Record<string, unknown>>('SELECT * FROM servers WHERE id = ? AND deleted = 0').get(id);
    return row && fromRow(row);
  }

  /** By exact id, else by exact name, which must then be unique (names are not, as in Nova). */
  find(nameOrId: string, projectId?: string): Server {
    const scope = projectId === undefined ? '' : ' AND project_id = ?';
    const args = projectId === undefined ? [] : [projectId];
    const byId = this.sql<Record<string, unknown>>(`SELECT * FROM servers WHERE id = ? AND deleted = 0${scope}`).get(nameOrId, ...args);
    if (byId) return fromRow(byId);
    const rows = this.sql<Record<string, unknown>>(
      `SELECT * FROM servers WHERE name = ? AND deleted = 0${scope} ORDER BY created_at, id`,
    ).all(nameOrId, ...args);
    if (rows.length === 0) throw new NotFound(`server "${nameOrId}" not found`);
    if (rows.length > 1) {
      throw new Conflict(`more than one server is named "${nameOrId}": ${rows.map((r) => r.id as string).join(', ')}; use the id`);
    }
    return fromRow(rows[0]!);
  }

  /** Oldest first (created_at, then id). Deleted servers only with changesSince, as Nova. */
  list(filters: ServerListFilters = {}): Server[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filters.limit !== undefined && (!Number.isSafeInteger(filters.limit) || filters.limit < 0)) {
      throw new BadRequest(`invalid limit ${String(filters.limit)}: expected a whole number >= 0`);
    }
    let nameRe: RegExp | undefined;
    if (filters.name !== undefined) {
      try {
        nameRe = new RegExp(filters.name);
      } catch (err) {
        throw new BadRequest(`invalid name filter "${filters.name}": not a regular expression`, { cause: err });
      }
    }
    let ipRe: RegExp | undefined;
    let addrs: Map<string, string[]> | undefined;
    if (filters.ip !== undefined) {
      try {
        ipRe = new RegExp(filters.ip);
      } catch (err) {
        throw new BadRequest(`invalid ip filter "${filters.ip}": not a regular expression`, { cause: err });
      }
      addrs = new Map();
      for (const l of this.sql<{ owner_id: string; address: string }>('SELECT owner_id, address FROM network_leases').all()) {
        addrs.set(l.owner_id, [...(addrs.get(l.owner_id) ?? []), l.address]);
      }
    }
    if (filters.projectId !== undefined) {
      where.push('project_id = ?');
      params.push(filters.projectId);
    }
    if (filters.changesSince !== undefined) {
      where.push('updated_at >= ?');
      params.push(toStoredTime(filters.changesSince));
    } else {
      where.push('deleted = 0');
    }
    if (filters.marker !== undefined) {
      const m = this.sql<{ created_at: string }>(
        `SELECT created_at FROM servers WHERE id = ?${filters.projectId === undefined ? '' : ' AND project_id = ?'}`,
      ).get(filters.marker, ...(filters.projectId === undefined ? [] : [filters.projectId]));
      if (!m) throw new BadRequest(`marker [${filters.marker}] not found`);
      where.push('(created_at > ? OR (created_at = ? AND id > ?))');
      params.push(m.created_at, m.created_at, filters.marker);
    }
    const rows = this.sql<Record<string, unknown>>(`SELECT * FROM servers WHERE ${where.join(' AND ')} ORDER BY created_at, id`).all(
      ...params,
    );
    const status = filters.status?.toUpperCase();
    const out: Server[] = [];
    for (const row of rows) {
      if (filters.limit !== undefined && out.length >= filters.limit) break;
      const s = fromRow(row);
      if (status !== undefined && statusOf(s.vmState, s.taskState) !== status) continue;
      if (nameRe && !nameRe.test(s.name)) continue;
      if (ipRe && !(addrs!.get(s.id) ?? []).some((a) => ipRe.test(a))) continue;
      out.push(s);
    }
    return out;
  }

  /** A server by id, deleted ones too (Nova resolves a deleted server as a list marker). */
  getAny(id: string, projectId?: string): Server | undefined {
    const row = this.sql<Record<string, unknown>>(
      `SELECT * FROM servers WHERE id = ?${projectId === undefined ? '' : ' AND project_id = ?'}`,
    ).get(id, ...(projectId === undefined ? [] : [projectId]));
    return row ? fromRow(row) : undefined;
  }

  /** Servers that existed at some time in [start, end): live ones and those deleted after start (usage). */
  existedBetween(start: string, end: string, projectId?: string): Server[] {
    return this.sql<Record<string, unknown>>(
      `SELECT * FROM servers WHERE created_at < ? AND (deleted = 0 OR terminated_at IS NULL OR terminated_at >= ?)${projectId === undefined ? '' : ' AND project_id = ?'} ORDER BY created_at, id`,
    )
      .all(end, start, ...(projectId === undefined ? [] : [projectId]))
      .map(fromRow);
  }

  /** The copy of a flavor some server keeps (the flavor itself may be deleted). */
  flavorCopy(flavorId: string): Flavor | undefined {
    const r = this.sql<{ flavor: string }>(
      'SELECT flavor FROM servers WHERE flavor_id = ? AND flavor IS NOT NULL ORDER BY updated_at DESC LIMIT 1',
    ).get(flavorId);
    return r ? (JSON.parse(r.flavor) as Flavor) : undefined;
  }

  /** How many (not deleted) servers a project has: Nova's instance quota usage. */
  count(projectId: string): number {
    return this.sql<{ n: number }>('SELECT count(*) AS n FROM servers WHERE project_id = ? AND deleted = 0').get(projectId)!.n;
  }

  /** Applies patch and bumps updated_at (unless the patch sets it); returns the new row. */
  update(id: string, patch: Partial<Server>): Server {
    const fields = (Object.keys(patch) as (keyof Server)[]).filter((f) => f !== 'id' && f in COLUMNS && patch[f] !== undefined);
    const values = { ...patch, updatedAt: patch.updatedAt ?? nowIso() };
    if (!fields.includes('updatedAt')) fields.push('updatedAt');
    const set = fields.map((f) => `${COLUMNS[f][0]} = ?`).join(', ');
    return this.tx(() => {
      const n = this.sql(`UPDATE servers SET ${set} WHERE id = ?`).run(
        ...fields.map((f) => toColumn(COLUMNS[f][1], values[f])),
        id,
      ).changes;
      if (n === 0) throw new NotFound(`server "${id}" not found`);
      return fromRow(this.sql<Record<string, unknown>>('SELECT * FROM servers WHERE id = ?').get(id)!);
    });
  }

  /**
   * The one way to change state: check and write in one IMMEDIATE transaction, so two
   * processes racing to act on a server cannot both pass the check.
   */
  transition(id: string, t: Transition): Server {
    return this.tx(() => {
      const cur = this.get(id);
      if (!cur) throw new NotFound(`server "${id}" not found`);
      if (!t.from.includes(cur.vmState)) {
        throw new Conflict(`Cannot '${t.action}' instance ${id} while it is in vm_state ${cur.vmState}`);
      }
      const wantTask = t.taskState ?? null;
      if (!t.allowTask && cur.taskState !== wantTask) {
        throw new Conflict(`Cannot '${t.action}' instance ${id} while it is in task_state ${cur.taskState ?? 'None'}`);
      }
      return this.update(id, t.to);
    });
  }

  /** Deletes the row; its runtime facts and actions go with it. */
  remove(id: string): void {
    if (this.sql('DELETE FROM servers WHERE id = ?').run(id).changes === 0) {
      throw new NotFound(`server "${id}" not found`);
    }
  }

  setRuntime(id: string, f: RuntimeFacts): void {
    this.sql(
      `INSERT INTO server_runtime (server_id, monitor_pid, monitor_start, init_pid, init_start, boot_id, cgroup_path,
         started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (server_id) DO UPDATE SET monitor_pid = excluded.monitor_pid,
         monitor_start = excluded.monitor_start, init_pid = excluded.init_pid, init_start = excluded.init_start,
         boot_id = excluded.boot_id, cgroup_path = excluded.cgroup_path, started_at = excluded.started_at`,
    ).run(id, f.monitorPid, f.monitorStart, f.initPid, f.initStart, f.bootId, f.cgroupPath, f.startedAt);
  }

  getRuntime(id: string): RuntimeFacts | undefined {
    return this.sql<RuntimeFacts>(
      `SELECT monitor_pid AS monitorPid, monitor_start AS monitorStart, init_pid AS initPid,
         init_start AS initStart, boot_id AS bootId, cgroup_path AS cgroupPath, started_at AS startedAt
       FROM server_runtime WHERE server_id = ?`,
    ).get(id);
  }

  /** Every server's runtime facts by id: one read for a listing (a row per running server). */
  runtimeOfAll(): Map<string, RuntimeFacts> {
    const rows = this.sql<RuntimeFacts & { id: string }>(
      `SELECT server_id AS id, monitor_pid AS monitorPid, monitor_start AS monitorStart, init_pid AS initPid,
         init_start AS initStart, boot_id AS bootId, cgroup_path AS cgroupPath, started_at AS startedAt
       FROM server_runtime`,
    ).all();
    const out = new Map<string, RuntimeFacts>();
    for (const { id, ...facts } of rows) out.set(id, facts);
    return out;
  }

  clearRuntime(id: string): void {
    this.sql('DELETE FROM server_runtime WHERE server_id = ?').run(id);
  }
}
