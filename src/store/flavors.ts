import { randomUUID } from 'node:crypto';
import { BadRequest, Conflict, NotFound } from '../errors.js';
import { isConstraint, statementCache, type Database, type Tx } from './sqlite.js';
import { nowIso } from './time.js';
import type { Flavor } from '../model/records.js';
export type { Flavor } from '../model/records.js';

/** What `create` needs; the rest has Nova's defaults (and a new UUID for the id). */
export type NewFlavor = Pick<Flavor, 'name' | 'vcpus' | 'ramMiB' | 'diskGiB'> &
  Partial<Omit<Flavor, 'name' | 'vcpus' | 'ramMiB' | 'diskGiB' | 'createdAt'>>;

export interface FlavorListOptions {
  /** every flavor, private ones too (admin) */
  includePrivate?: boolean;
  /** also the private flavors shared with this project */
  projectId?: string;
  minRamMiB?: number;
  minDiskGiB?: number;
}

export interface FlavorAccess {
  flavorId: string;
  projectId: string;
}

interface FlavorRow {
  id: string;
  name: string;
  vcpus: number;
  ram_mib: number;
  disk_gib: number;
  swap_mib: number;
  ephemeral_gib: number;
  rxtx_factor: number;
  is_public: number;
  disabled: number;
  extra_specs: string;
  created_at: string;
}

function fromRow(r: FlavorRow): Flavor {
  return {
    id: r.id,
    name: r.name,
    vcpus: r.vcpus,
    ramMiB: r.ram_mib,
    diskGiB: r.disk_gib,
    swapMiB: r.swap_mib,
    ephemeralGiB: r.ephemeral_gib,
    rxtxFactor: r.rxtx_factor,
    isPublic: r.is_public !== 0,
    disabled: r.disabled !== 0,
    extraSpecs: JSON.parse(r.extra_specs) as Record<string, string>,
    createdAt: r.created_at,
  };
}

// Nova: printable characters, no white space at either end, at most 255.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f]/;
const SPEC_KEY = /^[a-zA-Z0-9-_:. ]{1,255}$/;

function checkText(what: string, v: unknown): void {
  if (typeof v !== 'string' || v.length < 1 || v.length > 255) {
    throw new BadRequest(`invalid flavor ${what}: expected 1 to 255 characters`);
  }
  if (UNPRINTABLE.test(v)) throw new BadRequest(`invalid flavor ${what} "${v}": it contains unprintable characters`);
  if (v.trim() !== v) throw new BadRequest(`invalid flavor ${what} "${v}": it starts or ends with white space`);
}

function checkInt(what: string, v: unknown, min: number): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new BadRequest(`invalid flavor ${what} ${String(v)}: expected a whole number >= ${min}`);
  }
}

function checkSpecs(specs: Record<string, string>): void {
  for (const [k, v] of Object.entries(specs)) {
    if (!SPEC_KEY.test(k)) {
      throw new BadRequest(`invalid extra spec key "${k}": 1 to 255 letters, digits, spaces or - _ : .`);
    }
    if (typeof v !== 'string' || v.length > 255) {
      throw new BadRequest(`invalid extra spec "${k}": the value must be a string of at most 255 characters`);
    }
  }
}

const VALIDATE: ((f: NewFlavor) => void)[] = [
  (f) => checkText('name', f.name),
  (f) => f.id === undefined || checkText('id', f.id),
  (f) => checkInt('vcpus', f.vcpus, 1),
  (f) => checkInt('ram', f.ramMiB, 1),
  (f) => checkInt('disk', f.diskGiB, 0),
  (f) => checkInt('swap', f.swapMiB ?? 0, 0),
  (f) => checkInt('ephemeral disk', f.ephemeralGiB ?? 0, 0),
  (f) => {
    const r = f.rxtxFactor ?? 1;
    if (typeof r !== 'number' || !Number.isFinite(r) || r <= 0) {
      throw new BadRequest(`invalid flavor rxtx_factor ${String(r)}: expected a number > 0`);
    }
  },
  (f) => checkSpecs(f.extraSpecs ?? {}),
];

export class FlavorRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(
    db: Database,
    private readonly tx: Tx,
  ) {
    this.sql = statementCache(db);
  }

  /** Ordered by id, as Nova's default listing. */
  list(opts: FlavorListOptions = {}): Flavor[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (!opts.includePrivate) {
      if (opts.projectId !== undefined) {
        where.push('(is_public = 1 OR id IN (SELECT flavor_id FROM flavor_access WHERE project_id = ?))');
        params.push(opts.projectId);
      } else {
        where.push('is_public = 1');
      }
    }
    if (opts.minRamMiB !== undefined) {
      where.push('ram_mib >= ?');
      params.push(opts.minRamMiB);
    }
    if (opts.minDiskGiB !== undefined) {
      where.push('disk_gib >= ?');
      params.push(opts.minDiskGiB);
    }
    const sql = `SELECT * FROM flavors ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`;
    return this.sql<FlavorRow>(sql)
      .all(...params)
      .map(fromRow);
  }

  /**
   * By id first, then by name. With `projectId`, a private flavor not shared with that
   * project is not found, as Nova hides it.
   */
  get(idOrName: string, opts: { projectId?: string } = {}): Flavor {
    const row =
      this.sql<FlavorRow>('SELECT * FROM flavors WHERE id = ?').get(idOrName) ??
      this.sql<FlavorRow>('SELECT * FROM flavors WHERE name = ?').get(idOrName);
    if (!row || (opts.projectId !== undefined && !row.is_public && !this.hasAccess(row.id, opts.projectId))) {
      throw new NotFound(`flavor "${idOrName}" not found`);
    }
    return fromRow(row);
  }

  create(f: NewFlavor): Flavor {
    for (const check of VALIDATE) check(f);
    const id = f.id ?? randomUUID();
    return this.tx(() => {
      if (this.sql('SELECT 1 FROM flavors WHERE id = ?').get(id)) {
        throw new Conflict(`flavor with id "${id}" already exists`);
      }
      if (this.sql('SELECT 1 FROM flavors WHERE name = ?').get(f.name)) {
        throw new Conflict(`flavor with name "${f.name}" already exists`);
      }
      try {
        this.sql(
          `INSERT INTO flavors (id, name, vcpus, ram_mib, disk_gib, swap_mib, ephemeral_gib, rxtx_factor,
               is_public, disabled, extra_specs, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          id,
          f.name,
          f.vcpus,
          f.ramMiB,
          f.diskGiB,
          f.swapMiB ?? 0,
          f.ephemeralGiB ?? 0,
          f.rxtxFactor ?? 1,
          f.isPublic === false ? 0 : 1,
          f.disabled ? 1 : 0,
          JSON.stringify(f.extraSpecs ?? {}),
          nowIso(),
        );
      } catch (err) {
        if (isConstraint(err, 'UNIQUE') || isConstraint(err, 'PRIMARYKEY')) {
          throw new Conflict(`flavor "${f.name}" (id "${id}") already exists`, { cause: err });
        }
        throw err;
      }
      return this.get(id);
    });
  }

  /** Existing servers keep their flavor id and keep working. */
  delete(id: string): void {
    if (this.sql('DELETE FROM flavors WHERE id = ?').run(id).changes === 0) {
      throw new NotFound(`flavor "${id}" not found`);
    }
  }

  /** Merges `specs` into the flavor's extra specs; returns all of them. */
  setExtraSpecs(id: string, specs: Record<string, string>): Record<string, string> {
    checkSpecs(specs);
    return this.tx(() => {
      const merged = { ...this.byId(id).extraSpecs, ...specs };
      this.sql('UPDATE flavors SET extra_specs = ? WHERE id = ?').run(JSON.stringify(merged), id);
      return merged;
    });
  }

  unsetExtraSpec(id: string, key: string): void {
    this.tx(() => {
      const specs = this.byId(id).extraSpecs;
      if (!Object.hasOwn(specs, key)) throw new NotFound(`flavor "${id}" has no extra spec "${key}"`);
      delete specs[key];
      this.sql('UPDATE flavors SET extra_specs = ? WHERE id = ?').run(JSON.stringify(specs), id);
    });
  }

  addAccess(flavorId: string, projectId: string): FlavorAccess[] {
    return this.tx(() => {
      const f = this.byId(flavorId);
      if (f.isPublic) throw new Conflict(`flavor "${flavorId}" is public: access is for private flavors`);
      try {
        this.sql('INSERT INTO flavor_access (flavor_id, project_id) VALUES (?, ?)').run(flavorId, projectId);
      } catch (err) {
        if (isConstraint(err, 'PRIMARYKEY')) {
          throw new Conflict(`project "${projectId}" already has access to flavor "${flavorId}"`, { cause: err });
        }
        throw err;
      }
      return this.listAccess(flavorId);
    });
  }

  removeAccess(flavorId: string, projectId: string): FlavorAccess[] {
    return this.tx(() => {
      this.byId(flavorId);
      const gone = this.sql('DELETE FROM flavor_access WHERE flavor_id = ? AND project_id = ?').run(flavorId, projectId).changes;
      if (gone === 0) throw new NotFound(`project "${projectId}" has no access to flavor "${flavorId}"`);
      return this.listAccess(flavorId);
    });
  }

  /** Nova has no access list for public flavors: NotFound. */
  listAccess(flavorId: string): FlavorAccess[] {
    if (this.byId(flavorId).isPublic) throw new NotFound(`flavor "${flavorId}" is public: it has no access list`);
    return this.sql<{ flavor_id: string; project_id: string }>(
      'SELECT flavor_id, project_id FROM flavor_access WHERE flavor_id = ? ORDER BY project_id',
    )
      .all(flavorId)
      .map((r) => ({ flavorId: r.flavor_id, projectId: r.project_id }));
  }

  hasAccess(flavorId: string, projectId: string): boolean {
    return !!this.sql('SELECT 1 FROM flavor_access WHERE flavor_id = ? AND project_id = ?').get(flavorId, projectId);
  }

  private byId(id: string): Flavor {
    const row = this.sql<FlavorRow>('SELECT * FROM flavors WHERE id = ?').get(id);
    if (!row) throw new NotFound(`flavor "${id}" not found`);
    return fromRow(row);
  }
}
