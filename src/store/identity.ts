/**
 * Keystone's records: projects, users, roles, role assignments and tokens (stored by
 * hash only). One domain, "Default" (id `default`), as a single-host Keystone has.
 */
import { randomUUID } from 'node:crypto';
import { Conflict, NotFound } from '../errors.js';
import { isConstraint, statementCache, type Database, type Tx } from './sqlite.js';
import { nowIso } from './time.js';
import { DEFAULT_DOMAIN, type Project, type User, type Role } from '../model/records.js';
export { DEFAULT_DOMAIN } from '../model/records.js';
export type { Project, User, Role } from '../model/records.js';

export interface Assignment {
  projectId: string;
  userId: string;
  roleId: string;
}

export interface TokenRecord {
  userId: string;
  projectId: string | null;
  /** a domain-scoped token's domain (then projectId is null) */
  domainId?: string | null;
  methods: string[];
  auditId: string;
  issuedAt: string;
  expiresAt: string;
}

/** Keystone ids: 32 lower-case hex digits. */
export function newId(): string {
  return randomUUID().replaceAll('-', '');
}

interface ProjectRow {
  id: string;
  name: string;
  domain_id: string;
  description: string;
  enabled: number;
}
interface UserRow {
  id: string;
  name: string;
  domain_id: string;
  default_project_id: string | null;
  email: string | null;
  description: string;
  enabled: number;
  password_hash: string | null;
}

const project = (r: ProjectRow): Project => ({
  id: r.id,
  name: r.name,
  domainId: r.domain_id,
  description: r.description,
  enabled: r.enabled !== 0,
});
const user = (r: UserRow): User => ({
  id: r.id,
  name: r.name,
  domainId: r.domain_id,
  defaultProjectId: r.default_project_id,
  email: r.email,
  description: r.description,
  enabled: r.enabled !== 0,
});

export class IdentityRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(
    db: Database,
    private readonly tx: Tx,
  ) {
    this.sql = statementCache(db);
  }

  // ---- projects --------------------------------------------------------------------

  listProjects(filter: { name?: string; domainId?: string } = {}): Project[] {
    return this.sql<ProjectRow>(`SELECT * FROM projects WHERE (@a IS NULL OR name = @a) AND (@b IS NULL OR domain_id = @b) ORDER BY name`)
      .all({ a: filter.name ?? null, b: filter.domainId ?? null })
      .map(project);
  }

  getProject(id: string): Project | undefined {
    const r = this.sql<ProjectRow>('SELECT * FROM projects WHERE id = ?').get(id);
    return r && project(r);
  }

  projectByName(name: string, domainId: string = DEFAULT_DOMAIN.id): Project | undefined {
    const r = this.sql<ProjectRow>('SELECT * FROM projects WHERE name = ? AND domain_id = ?').get(name, domainId);
    return r && project(r);
  }

  createProject(p: Partial<Project> & { name: string }): Project {
    const id = p.id ?? newId();
    try {
      this.sql('INSERT INTO projects (id, name, domain_id, description, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
        id,
        p.name,
        p.domainId ?? DEFAULT_DOMAIN.id,
        p.description ?? '',
        p.enabled === false ? 0 : 1,
        nowIso(),
      );
    } catch (err) {
      if (isConstraint(err, 'UNIQUE') || isConstraint(err, 'PRIMARYKEY')) {
        throw new Conflict(`Conflict occurred attempting to store project - Duplicate entry found with name ${p.name}.`, { cause: err });
      }
      throw err;
    }
    return this.getProject(id)!;
  }

  updateProject(id: string, patch: Partial<Pick<Project, 'name' | 'description' | 'enabled'>>): Project {
    const cur = this.getProject(id);
    if (!cur) throw new NotFound(`Could not find project: ${id}.`);
    const next = { ...cur, ...patch };
    try {
      this.sql('UPDATE projects SET name = ?, description = ?, enabled = ? WHERE id = ?').run(
        next.name,
        next.description,
        next.enabled ? 1 : 0,
        id,
      );
    } catch (err) {
      if (isConstraint(err, 'UNIQUE')) throw new Conflict(`a project named "${next.name}" already exists`, { cause: err });
      throw err;
    }
    return this.getProject(id)!;
  }

  deleteProject(id: string): void {
    if (this.sql('DELETE FROM projects WHERE id = ?').run(id).changes === 0) throw new NotFound(`Could not find project: ${id}.`);
  }

  // ---- users -----------------------------------------------------------------------

  listUsers(filter: { name?: string; domainId?: string } = {}): User[] {
    return this.sql<UserRow>(`SELECT * FROM users WHERE (@a IS NULL OR name = @a) AND (@b IS NULL OR domain_id = @b) ORDER BY name`)
      .all({ a: filter.name ?? null, b: filter.domainId ?? null })
      .map(user);
  }

  getUser(id: string): User | undefined {
    const r = this.sql<UserRow>('SELECT * FROM users WHERE id = ?').get(id);
    return r && user(r);
  }

  userByName(name: string, domainId: string = DEFAULT_DOMAIN.id): User | undefined {
    const r = this.sql<UserRow>('SELECT * FROM users WHERE name = ? AND domain_id = ?').get(name, domainId);
    return r && user(r);
  }

  passwordHash(userId: string): string | null {
    return this.sql<{ password_hash: string | null }>('SELECT password_hash FROM users WHERE id = ?').get(userId)?.password_hash ?? null;
  }

  createUser(u: Partial<User> & { name: string; passwordHash?: string | null }): User {
    const id = u.id ?? newId();
    try {
      this.sql(
        `INSERT INTO users (id, name, domain_id, default_project_id, email, description, enabled, password_hash, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        id,
        u.name,
        u.domainId ?? DEFAULT_DOMAIN.id,
        u.defaultProjectId ?? null,
        u.email ?? null,
        u.description ?? '',
        u.enabled === false ? 0 : 1,
        u.passwordHash ?? null,
        nowIso(),
      );
    } catch (err) {
      if (isConstraint(err, 'UNIQUE') || isConstraint(err, 'PRIMARYKEY')) {
        throw new Conflict(`Conflict occurred attempting to store user - Duplicate entry found with name ${u.name}.`, { cause: err });
      }
      throw err;
    }
    return this.getUser(id)!;
  }

  updateUser(
    id: string,
    patch: Partial<Pick<User, 'name' | 'description' | 'enabled' | 'email' | 'defaultProjectId'>> & { passwordHash?: string },
  ): User {
    const cur = this.getUser(id);
    if (!cur) throw new NotFound(`Could not find user: ${id}.`);
    const next = { ...cur, ...patch };
    try {
      this.sql('UPDATE users SET name = ?, description = ?, enabled = ?, email = ?, default_project_id = ? WHERE id = ?').run(
        next.name,
        next.description,
        next.enabled ? 1 : 0,
        next.email,
        next.defaultProjectId,
        id,
      );
      if (patch.passwordHash !== undefined) {
        this.sql('UPDATE users SET password_hash = ? WHERE id = ?').run(patch.passwordHash, id);
        // a new password ends the user's sessions, as Keystone does
        this.sql('UPDATE tokens SET revoked = 1 WHERE user_id = ?').run(id);
      }
    } catch (err) {
      if (isConstraint(err, 'UNIQUE')) throw new Conflict(`a user named "${next.name}" already exists`, { cause: err });
      throw err;
    }
    return this.getUser(id)!;
  }

  deleteUser(id: string): void {
    if (this.sql('DELETE FROM users WHERE id = ?').run(id).changes === 0) throw new NotFound(`Could not find user: ${id}.`);
  }

  // ---- roles -----------------------------------------------------------------------

  listRoles(filter: { name?: string } = {}): Role[] {
    return this.sql<Role>('SELECT id, name FROM roles WHERE (@a IS NULL OR name = @a) ORDER BY name').all({ a: filter.name ?? null });
  }

  getRole(id: string): Role | undefined {
    return this.sql<Role>('SELECT id, name FROM roles WHERE id = ?').get(id);
  }

  roleByName(name: string): Role | undefined {
    return this.sql<Role>('SELECT id, name FROM roles WHERE name = ?').get(name);
  }

  createRole(name: string): Role {
    const id = newId();
    try {
      this.sql('INSERT INTO roles (id, name, created_at) VALUES (?, ?, ?)').run(id, name, nowIso());
    } catch (err) {
      if (isConstraint(err, 'UNIQUE')) throw new Conflict(`Duplicate entry found with name ${name}.`, { cause: err });
      throw err;
    }
    return { id, name };
  }

  deleteRole(id: string): void {
    if (this.sql('DELETE FROM roles WHERE id = ?').run(id).changes === 0) throw new NotFound(`Could not find role: ${id}.`);
  }

  // ---- assignments -----------------------------------------------------------------

  grant(projectId: string, userId: string, roleId: string): boolean {
    return (
      this.sql('INSERT OR IGNORE INTO role_assignments (project_id, user_id, role_id) VALUES (?, ?, ?)').run(projectId, userId, roleId)
        .changes === 1
    );
  }

  revoke(projectId: string, userId: string, roleId: string): void {
    const n = this.sql('DELETE FROM role_assignments WHERE project_id = ? AND user_id = ? AND role_id = ?').run(
      projectId,
      userId,
      roleId,
    ).changes;
    if (n === 0)
      throw new NotFound(
        `Could not find role assignment with role: ${roleId}, user or group: ${userId}, project, domain, or system: ${projectId}.`,
      );
  }

  rolesOn(projectId: string, userId: string): Role[] {
    return this.sql<Role>(
      `SELECT r.id, r.name FROM role_assignments a JOIN roles r ON r.id = a.role_id
       WHERE a.project_id = ? AND a.user_id = ? ORDER BY r.name`,
    ).all(projectId, userId);
  }

  /** Projects where the user has any role. */
  projectsOf(userId: string): Project[] {
    return this.sql<ProjectRow>(
      `SELECT DISTINCT p.* FROM projects p JOIN role_assignments a ON a.project_id = p.id WHERE a.user_id = ? ORDER BY p.name`,
    )
      .all(userId)
      .map(project);
  }

  assignments(filter: { projectId?: string; userId?: string; roleId?: string } = {}): Assignment[] {
    return this.sql<Assignment>(
      `SELECT project_id AS projectId, user_id AS userId, role_id AS roleId FROM role_assignments
       WHERE (@a IS NULL OR project_id = @a) AND (@b IS NULL OR user_id = @b) AND (@c IS NULL OR role_id = @c)
       ORDER BY project_id, user_id, role_id`,
    ).all({ a: filter.projectId ?? null, b: filter.userId ?? null, c: filter.roleId ?? null });
  }

  // ---- tokens ----------------------------------------------------------------------

  insertToken(hash: string, t: TokenRecord): void {
    this.tx(() => {
      // expired tokens are of no use to anyone: drop them as new ones arrive
      this.sql('DELETE FROM tokens WHERE expires_at < ?').run(nowIso());
      this.sql(
        'INSERT INTO tokens (hash, user_id, project_id, methods, audit_id, issued_at, expires_at, domain_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ).run(hash, t.userId, t.projectId, JSON.stringify(t.methods), t.auditId, t.issuedAt, t.expiresAt, t.domainId ?? null);
    });
  }

  /** A token that exists and is not revoked (expiry is the caller's check). */
  token(hash: string): TokenRecord | undefined {
    const r = this.sql<{
      user_id: string;
      project_id: string | null;
      domain_id: string | null;
      methods: string;
      audit_id: string;
      issued_at: string;
      expires_at: string;
    }>('SELECT * FROM tokens WHERE hash = ? AND revoked = 0').get(hash);
    return (
      r && {
        userId: r.user_id,
        projectId: r.project_id,
        domainId: r.domain_id,
        methods: JSON.parse(r.methods) as string[],
        auditId: r.audit_id,
        issuedAt: r.issued_at,
        expiresAt: r.expires_at,
      }
    );
  }

  revokeToken(hash: string): boolean {
    return this.sql('UPDATE tokens SET revoked = 1 WHERE hash = ? AND revoked = 0').run(hash).changes === 1;
  }
}
