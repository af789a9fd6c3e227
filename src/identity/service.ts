/**
 * Keystone's rules over the store: password and token authentication, scoping, who is
 * admin, and the first start's bootstrap (admin user, "admin" project, roles). The API's
 * identity routes and the compute/image routes' token check call this.
 */
import { NovaboxError, BadRequest, NotFound } from '../errors.js';
import type { Store } from '../store/db.js';
import { DEFAULT_DOMAIN, type Project, type Role, type TokenRecord, type User } from '../store/identity.js';
import { nowIso } from '../store/time.js';
import { hashPassword, newPassword, newToken, tokenHash, verifyPassword } from './passwords.js';

export const TOKEN_TTL_MS = 60 * 60 * 1000;

/** 401: no, wrong, expired or revoked credentials. Keystone says no more than that. */
export class Unauthorized extends NovaboxError {
  readonly status = 401;
  constructor(message = 'The request you have made requires authentication.') {
    super('permission', message);
  }
}

/** 403: authenticated, but not allowed. */
export class Forbidden extends NovaboxError {
  readonly status = 403;
  constructor(message: string) {
    super('permission', message);
  }
}

export interface Token extends TokenRecord {
  id: string;
  user: User;
  project: Project | null;
  roles: Role[];
  isAdmin: boolean;
}

export interface PasswordAuth {
  user: { id?: string; name?: string; domain?: { id?: string; name?: string }; password: string };
}

export type Scope =
  | { project: { id?: string; name?: string; domain?: { id?: string; name?: string } } }
  | { domain: { id?: string; name?: string } }
  | undefined;

function domainIdOf(d: { id?: string; name?: string } | undefined): string {
  if (!d) return DEFAULT_DOMAIN.id;
  if (d.id !== undefined) {
    if (d.id !== DEFAULT_DOMAIN.id) throw new Unauthorized(`Could not find domain: ${d.id}.`);
    return d.id;
  }
  if (d.name !== undefined && d.name.toLowerCase() !== DEFAULT_DOMAIN.name.toLowerCase()) {
    throw new Unauthorized(`Could not find domain: ${d.name}.`);
  }
  return DEFAULT_DOMAIN.id;
}

/** Keystone's times: microseconds and a Z. */
export function keystoneTime(stored: string): string {
  return `${stored}Z`;
}

function storedTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 23) + '000';
}

export class IdentityService {
  constructor(
    readonly store: Store,
    private readonly ttlMs = TOKEN_TTL_MS,
  ) {}

  private get repo() {
    return this.store.identity;
  }

  /** Password method: the user by id, or by name in a domain. Any failure is the same 401. */
  async checkPassword(p: PasswordAuth): Promise<User> {
    const u = p.user;
    const user =
      u.id !== undefined ? this.repo.getUser(u.id) : u.name !== undefined ? this.repo.userByName(u.name, domainIdOf(u.domain)) : undefined;
    const ok = await verifyPassword(u.password, user ? this.repo.passwordHash(user.id) : null);
    if (!user || !ok || !user.enabled) throw new Unauthorized('The request you have made requires authentication.');
    return user;
  }

  /** The project a scope names, and the user's roles on it (none: 401, as Keystone). */
  private scopeTo(user: User, scope: Scope): { project: Project | null; domainId?: string; roles: Role[] } {
    if (!scope) return { project: null, roles: [] };
    if ('domain' in scope) {
      const domainId = domainIdOf(scope.domain);
      const roles = this.domainRoles(user.id);
      if (roles.length === 0) throw new Unauthorized(`User ${user.id} has no access to domain ${domainId}.`);
      return { project: null, domainId, roles };
    }
    const p = scope.project;
    const project =
      p.id !== undefined
        ? this.repo.getProject(p.id)
        : p.name !== undefined
          ? this.repo.projectByName(p.name, domainIdOf(p.domain))
          : undefined;
    if (!project) throw new Unauthorized(`Could not find project: ${p.id ?? p.name}.`);
    if (!project.enabled) throw new Unauthorized(`Project ${project.id} is disabled.`);
    const roles = this.repo.rolesOn(project.id, user.id);
    if (roles.length === 0) {
      throw new Unauthorized(`User ${user.id} has no access to project ${project.id}.`);
    }
    return { project, roles };
  }

  /**
   * A user's roles on the one domain: novabox assigns roles on projects only; as the
   * contract makes admin on any project admin everywhere, such a user is admin on the
   * domain (what Horizon asks a domain-scoped token for). Others have no domain role.
   */
  private domainRoles(userId: string): Role[] {
    const admin = this.repo
      .assignments({ userId })
      .map((a) => this.repo.getRole(a.roleId))
      .find((r) => r?.name === 'admin');
    return admin ? [admin] : [];
  }

  /** A new token for the user, scoped as asked; re-scoping keeps the original expiry. */
  issue(user: User, scope: Scope, methods: string[], opts: { expiresAt?: string; auditId?: string } = {}): Token {
    const { project, domainId, roles } = this.scopeTo(user, scope);
    const id = newToken();
    const rec: TokenRecord = {
      userId: user.id,
      projectId: project?.id ?? null,
      domainId: domainId ?? null,
      methods,
      auditId: opts.auditId ?? newToken().slice(0, 22),
      issuedAt: nowIso(),
      expiresAt: opts.expiresAt ?? storedTime(Date.now() + this.ttlMs),
    };
    this.repo.insertToken(tokenHash(id), rec);
    return { ...rec, id, user, project, roles, isAdmin: roles.some((r) => r.name === 'admin') };
  }

  /** The token behind an id, or undefined when unknown, revoked, expired, or its user is gone/disabled. */
  lookup(id: string | undefined): Token | undefined {
    if (!id || id.length > 512) return undefined;
    const rec = this.repo.token(tokenHash(id));
    if (!rec || rec.expiresAt <= nowIso()) return undefined;
    const user = this.repo.getUser(rec.userId);
    if (!user || !user.enabled) return undefined;
    let project: Project | null = null;
    let roles: Role[] = [];
    if (rec.projectId !== null) {
      project = this.repo.getProject(rec.projectId) ?? null;
      if (!project || !project.enabled) return undefined;
      roles = this.repo.rolesOn(project.id, user.id);
      if (roles.length === 0) return undefined; // access taken away since
    } else if (rec.domainId) {
      roles = this.domainRoles(user.id);
      if (roles.length === 0) return undefined;
    }
    return { ...rec, id, user, project, roles, isAdmin: roles.some((r) => r.name === 'admin') };
  }

  /** The caller's token: 401 when it is not valid. */
  authenticate(id: string | undefined): Token {
    const t = this.lookup(id);
    if (!t) throw new Unauthorized();
    return t;
  }

  revoke(id: string): void {
    if (!this.repo.revokeToken(tokenHash(id))) throw new NotFound('Could not find token.');
  }

  /** Password for a new user or a changed one. */
  async passwordHashFor(password: unknown, field = 'password'): Promise<string> {
    if (typeof password !== 'string' || password.length < 1 || password.length > 4096) {
      throw new BadRequest(`Invalid input for field '${field}': expected a string of 1 to 4096 characters.`);
    }
    return hashPassword(password);
  }

  /**
   * First start: the "admin" project and user, with the ids the CLI acts as (its local
   * caller), so servers made either way are the same project's; role admin on it. The
   * password is NOVABOX_ADMIN_PASSWORD, else a new random one that only the returned
   * value (and clouds.yaml) will ever hold: the store keeps its scrypt hash.
   */
  async bootstrap(envPassword: string | undefined): Promise<{ password: string | undefined; created: boolean }> {
    const projectId = this.store.getSetting('local_project_id')!;
    const userId = this.store.getSetting('local_user_id')!;
    const existing = this.repo.getUser(userId);
    const password = envPassword || (existing ? undefined : newPassword());
    const rehash = password !== undefined && !(existing && (await verifyPassword(password, this.repo.passwordHash(userId))));
    const hash = rehash ? await hashPassword(password!) : undefined;
    const created = this.store.tx(() => {
      if (!this.repo.getProject(projectId)) {
        this.repo.createProject({ id: projectId, name: 'admin', description: 'Bootstrap project for initializing the cloud.' });
      }
      const isNew = !this.repo.getUser(userId);
      if (isNew) this.repo.createUser({ id: userId, name: 'admin', defaultProjectId: projectId, passwordHash: hash });
      else if (hash !== undefined) this.repo.updateUser(userId, { passwordHash: hash });
      for (const name of ['admin', 'member', 'reader']) if (!this.repo.roleByName(name)) this.repo.createRole(name);
      this.repo.grant(projectId, userId, this.repo.roleByName('admin')!.id);
      return isNew;
    });
    return { password, created };
  }
}
