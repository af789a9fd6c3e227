/**
 * Keystone v3 at /identity: version documents, tokens (password and token methods,
 * unscoped and project-scoped), and the admin resources dynamic credentials need.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../errors.js';
import { Forbidden, Unauthorized, type PasswordAuth, type Scope, type Token } from '../../identity/service.js';
import { DEFAULT_DOMAIN } from '../../model/records.js';
import { baseUrl, tokenHeader, type ApiDeps } from '../request.js';
import { bool, isObject, str, wrapped, type Json } from '../validate.js';
import { domainView, projectView, roleView, tokenBody, userView, versionV3 } from './views.js';

type Req = FastifyRequest<{ Params: Record<string, string>; Querystring: Record<string, string> }>;

const NAME = { required: true, min: 1, max: 255, trimmed: true } as const;

export function registerIdentity(app: FastifyInstance, deps: ApiDeps): void {
  const ids = deps.identity;
  const repo = deps.store.identity;

  const auth = (req: FastifyRequest): Token => (req.token ??= ids.authenticate(tokenHeader(req)));
  const admin = (req: FastifyRequest, what: string): Token => {
    const t = auth(req);
    if (!t.isAdmin) throw new Forbidden(`You are not authorized to perform the requested action: ${what}.`);
    return t;
  };
  const selfOrAdmin = (req: FastifyRequest, userId: string, what: string): Token => {
    const t = auth(req);
    if (t.user.id !== userId && !t.isAdmin) throw new Forbidden(`You are not authorized to perform the requested action: ${what}.`);
    return t;
  };
  const project = (id: string) => repo.getProject(id) ?? notFound('project', id);
  const user = (id: string) => repo.getUser(id) ?? notFound('user', id);
  const role = (id: string) => repo.getRole(id) ?? notFound('role', id);

  // ---- version discovery: GET /identity → 300 list; /identity/v3 → the one version
  app.get('/', async (req, reply) => reply.code(300).send({ versions: { values: [versionV3(baseUrl(req))] } }));
  app.get('/v3', async (req) => ({ version: versionV3(baseUrl(req)) }));

  // ---- tokens
  app.post('/v3/auth/tokens', async (req: Req, reply) => {
    const a = wrapped(req.body, 'auth');
    const identity = a.identity;
    if (!isObject(identity) || !Array.isArray(identity.methods) || identity.methods.length === 0) {
      throw new BadRequest("Invalid input for field 'identity': it needs 'methods', a non-empty list");
    }
    const methods = identity.methods as unknown[];
    const scope = parseScope(a.scope, req.query.nocatalog);
    let t: Token;
    if (methods.includes('password')) {
      const p = identity.password;
      if (!isObject(p) || !isObject(p.user)) throw new BadRequest("Invalid input for field 'identity/password/user': expected an object");
      const u = p.user;
      str(u, 'password', { required: true });
      str(u, 'id');
      str(u, 'name');
      if (u.id === undefined && u.name === undefined)
        throw new BadRequest("Invalid input for field 'identity/password/user': expected 'id' or 'name'");
      const user = await ids.checkPassword({ user: u } as PasswordAuth);
      t = ids.issue(user, scope, ['password']);
    } else if (methods.includes('token')) {
      const tk = identity.token;
      if (!isObject(tk) || typeof tk.id !== 'string')
        throw new BadRequest("Invalid input for field 'identity/token/id': expected a string");
      const old = ids.lookup(tk.id);
      if (!old) throw new Unauthorized();
      // Keystone: a token may rescope, but never outlive the one it came from
      t = ids.issue(
        old.user,
        scope ?? (old.project ? { project: { id: old.project.id } } : undefined),
        [...new Set([...old.methods, 'token'])],
        {
          expiresAt: old.expiresAt,
          auditId: old.auditId,
        },
      );
    } else {
      throw new Unauthorized(`Attempted to authenticate with an unsupported method: ${String(methods[0])}.`);
    }
    req.token = t;
    return reply
      .code(201)
      .header('X-Subject-Token', t.id)
      .send(tokenBody(t, baseUrl(req), req.query.nocatalog === undefined));
  });

  const subject = (req: FastifyRequest): Token => {
    auth(req);
    const v = req.headers['x-subject-token'];
    const t = ids.lookup(Array.isArray(v) ? v[0] : v);
    if (!t) throw new NotFound('Could not find token.');
    return t;
  };
  app.get('/v3/auth/tokens', async (req: Req, reply) => {
    const t = subject(req);
    if (t.user.id !== req.token!.user.id && !req.token!.isAdmin) throw new Forbidden('You are not authorized to validate this token.');
    return reply.header('X-Subject-Token', t.id).send(tokenBody(t, baseUrl(req), req.query.nocatalog === undefined));
  });
  app.head('/v3/auth/tokens', async (req, reply) => {
    const t = subject(req);
    return reply.code(200).header('X-Subject-Token', t.id).send();
  });
  app.delete('/v3/auth/tokens', async (req, reply) => {
    const t = subject(req);
    if (t.user.id !== req.token!.user.id && !req.token!.isAdmin) throw new Forbidden('You are not authorized to revoke this token.');
    ids.revoke(t.id);
    return reply.code(204).send();
  });
  app.get('/v3/auth/projects', async (req) => {
    const t = auth(req);
    return projectList(repo.projectsOf(t.user.id), baseUrl(req), '/v3/auth/projects');
  });
  app.get('/v3/auth/catalog', async (req) => {
    const t = auth(req);
    if (!t.project && !t.domainId) throw new Forbidden('The token is not scoped: it has no catalog.');
    return {
      catalog: (tokenBody(t, baseUrl(req), true).token as Json).catalog,
      links: { self: `${baseUrl(req)}/identity/v3/auth/catalog` },
    };
  });

  // ---- domains: one, Default
  app.get('/v3/domains', async (req: Req) => {
    auth(req);
    const name = req.query.name;
    const list = name === undefined || name === DEFAULT_DOMAIN.name ? [domainView(baseUrl(req))] : [];
    return { domains: list, links: { self: `${baseUrl(req)}/identity/v3/domains`, next: null, previous: null } };
  });
  app.get('/v3/domains/:id', async (req: Req) => {
    auth(req);
    if (req.params.id !== DEFAULT_DOMAIN.id) notFound('domain', req.params.id!);
    return { domain: domainView(baseUrl(req)) };
  });

  // ---- projects
  app.get('/v3/projects', async (req: Req) => {
    admin(req, 'identity:list_projects');
    checkDomain(req.query.domain_id);
    return projectList(repo.listProjects({ name: req.query.name }), baseUrl(req), '/v3/projects');
  });
  app.post('/v3/projects', async (req: Req, reply) => {
    admin(req, 'identity:create_project');
    const p = wrapped(req.body, 'project');
    checkDomain(str(p, 'domain_id'));
    const created = repo.createProject({
      name: str(p, 'name', NAME)!,
      description: str(p, 'description', { max: 65535 }) ?? '',
      enabled: bool(p, 'enabled') ?? true,
    });
    return reply.code(201).send({ project: projectView(created, baseUrl(req)) });
  });
  app.get('/v3/projects/:id', async (req: Req) => {
    const t = auth(req);
    const p = project(req.params.id!);
    if (!t.isAdmin && !repo.projectsOf(t.user.id).some((x) => x.id === p.id))
      throw new Forbidden('You are not authorized to see this project.');
    return { project: projectView(p, baseUrl(req)) };
  });
  app.patch('/v3/projects/:id', async (req: Req) => {
    admin(req, 'identity:update_project');
    const p = wrapped(req.body, 'project');
    const patched = repo.updateProject(project(req.params.id!).id, {
      name: str(p, 'name', { ...NAME, required: false }),
      description: str(p, 'description', { max: 65535 }),
      enabled: bool(p, 'enabled'),
    });
    return { project: projectView(patched, baseUrl(req)) };
  });
  app.delete('/v3/projects/:id', async (req: Req, reply) => {
    admin(req, 'identity:delete_project');
    if (req.params.id === deps.store.getSetting('local_project_id')) {
      throw new Forbidden('The bootstrap project "admin" cannot be deleted: the command line acts in it.');
    }
    const left = deps.compute.list({ projectId: req.params.id }, { ...deps.compute.localCaller() });
    if (left.length) throw new Forbidden(`Project ${req.params.id} still has ${left.length} server(s): delete them first.`);
    repo.deleteProject(req.params.id!);
    return reply.code(204).send();
  });

  // ---- users
  app.get('/v3/users', async (req: Req) => {
    admin(req, 'identity:list_users');
    checkDomain(req.query.domain_id);
    return {
      users: repo.listUsers({ name: req.query.name }).map((u) => userView(u, baseUrl(req))),
      links: listLinks(baseUrl(req), '/v3/users'),
    };
  });
  app.post('/v3/users', async (req: Req, reply) => {
    admin(req, 'identity:create_user');
    const u = wrapped(req.body, 'user');
    checkDomain(str(u, 'domain_id'));
    const defaultProject = str(u, 'default_project_id', { nullable: true }) ?? str(u, 'project_id', { nullable: true });
    if (defaultProject !== undefined) project(defaultProject);
    const password = u.password === undefined || u.password === null ? undefined : await ids.passwordHashFor(u.password);
    const created = repo.createUser({
      name: str(u, 'name', NAME)!,
      email: str(u, 'email', { max: 255 }) ?? null,
      description: str(u, 'description', { max: 65535 }) ?? '',
      enabled: bool(u, 'enabled') ?? true,
      defaultProjectId: defaultProject ?? null,
      passwordHash: password ?? null,
    });
    return reply.code(201).send({ user: userView(created, baseUrl(req)) });
  });
  app.get('/v3/users/:id', async (req: Req) => {
    selfOrAdmin(req, req.params.id!, 'identity:get_user');
    return { user: userView(user(req.params.id!), baseUrl(req)) };
  });
  app.patch('/v3/users/:id', async (req: Req) => {
    admin(req, 'identity:update_user');
    const u = wrapped(req.body, 'user');
    const defaultProject = str(u, 'default_project_id', { nullable: true });
    if (defaultProject !== undefined) project(defaultProject);
    const passwordHash = u.password === undefined ? undefined : await ids.passwordHashFor(u.password);
    const patched = repo.updateUser(user(req.params.id!).id, {
      name: str(u, 'name', { ...NAME, required: false }),
      email: str(u, 'email', { max: 255 }),
      description: str(u, 'description', { max: 65535 }),
      enabled: bool(u, 'enabled'),
      defaultProjectId: defaultProject,
      passwordHash,
    });
    return { user: userView(patched, baseUrl(req)) };
  });
  app.delete('/v3/users/:id', async (req: Req, reply) => {
    admin(req, 'identity:delete_user');
    if (req.params.id === deps.store.getSetting('local_user_id')) throw new Forbidden('The bootstrap user "admin" cannot be deleted.');
    repo.deleteUser(req.params.id!);
    return reply.code(204).send();
  });
  app.post('/v3/users/:id/password', async (req: Req, reply) => {
    const t = auth(req);
    if (t.user.id !== req.params.id) throw new Forbidden('You can only change your own password.');
    const u = wrapped(req.body, 'user');
    const original = str(u, 'original_password', { required: true })!;
    const hash = await ids.passwordHashFor(u.password);
    await ids.checkPassword({ user: { id: t.user.id, password: original } });
    repo.updateUser(t.user.id, { passwordHash: hash });
    return reply.code(204).send();
  });
  app.get('/v3/users/:id/projects', async (req: Req) => {
    selfOrAdmin(req, req.params.id!, 'identity:list_user_projects');
    return projectList(repo.projectsOf(user(req.params.id!).id), baseUrl(req), `/v3/users/${req.params.id}/projects`);
  });

  // ---- roles
  app.get('/v3/roles', async (req: Req) => {
    auth(req);
    return {
      roles: repo.listRoles({ name: req.query.name }).map((r) => roleView(r, baseUrl(req))),
      links: listLinks(baseUrl(req), '/v3/roles'),
    };
  });
  app.post('/v3/roles', async (req: Req, reply) => {
    admin(req, 'identity:create_role');
    const r = wrapped(req.body, 'role');
    return reply.code(201).send({ role: roleView(repo.createRole(str(r, 'name', NAME)!), baseUrl(req)) });
  });
  app.get('/v3/roles/:id', async (req: Req) => {
    auth(req);
    return { role: roleView(role(req.params.id!), baseUrl(req)) };
  });
  app.delete('/v3/roles/:id', async (req: Req, reply) => {
    admin(req, 'identity:delete_role');
    const r = role(req.params.id!);
    if (['admin', 'member', 'reader'].includes(r.name)) throw new Forbidden(`The built-in role "${r.name}" cannot be deleted.`);
    repo.deleteRole(r.id);
    return reply.code(204).send();
  });

  // ---- role assignments on projects
  const grantTarget = (req: Req) => ({ p: project(req.params.p!), u: user(req.params.u!), r: role(req.params.r!) });
  app.put('/v3/projects/:p/users/:u/roles/:r', async (req: Req, reply) => {
    admin(req, 'identity:create_grant');
    const { p, u, r } = grantTarget(req);
    repo.grant(p.id, u.id, r.id);
    return reply.code(204).send();
  });
  app.head('/v3/projects/:p/users/:u/roles/:r', async (req: Req, reply) => {
    admin(req, 'identity:check_grant');
    const { p, u, r } = grantTarget(req);
    if (!repo.rolesOn(p.id, u.id).some((x) => x.id === r.id)) throw new NotFound(`Could not find role assignment with role: ${r.id}.`);
    return reply.code(204).send();
  });
  app.delete('/v3/projects/:p/users/:u/roles/:r', async (req: Req, reply) => {
    admin(req, 'identity:revoke_grant');
    const { p, u, r } = grantTarget(req);
    if (p.id === deps.store.getSetting('local_project_id') && u.id === deps.store.getSetting('local_user_id') && r.name === 'admin') {
      throw new Forbidden('The bootstrap admin keeps its admin role on the "admin" project.');
    }
    repo.revoke(p.id, u.id, r.id);
    return reply.code(204).send();
  });
  app.get('/v3/projects/:p/users/:u/roles', async (req: Req) => {
    selfOrAdmin(req, req.params.u!, 'identity:list_grants');
    const p = project(req.params.p!);
    const u = user(req.params.u!);
    return { roles: repo.rolesOn(p.id, u.id).map((r) => roleView(r, baseUrl(req))), links: listLinks(baseUrl(req), req.url) };
  });
  app.get('/v3/role_assignments', async (req: Req) => {
    const t = auth(req);
    const q = req.query;
    const userId = q['user.id'];
    if (!t.isAdmin && userId !== t.user.id) throw new Forbidden('You are not authorized to list role assignments of other users.');
    const base = baseUrl(req);
    const names = q.include_names !== undefined && q.include_names !== 'false' && q.include_names !== '0';
    const list = repo.assignments({ projectId: q['scope.project.id'], userId, roleId: q['role.id'] }).map((a) => {
      const r = repo.getRole(a.roleId)!;
      const u = repo.getUser(a.userId)!;
      const p = repo.getProject(a.projectId)!;
      return {
        role: names ? { id: r.id, name: r.name } : { id: r.id },
        user: names ? { id: u.id, name: u.name, domain: { id: DEFAULT_DOMAIN.id, name: DEFAULT_DOMAIN.name } } : { id: u.id },
        scope: { project: names ? { id: p.id, name: p.name, domain: { id: DEFAULT_DOMAIN.id, name: DEFAULT_DOMAIN.name } } : { id: p.id } },
        links: { assignment: `${base}/identity/v3/projects/${p.id}/users/${u.id}/roles/${r.id}` },
      };
    });
    return { role_assignments: list, links: listLinks(base, '/v3/role_assignments') };
  });
}

function parseScope(scope: unknown, _nocatalog: unknown): Scope {
  if (scope === undefined || scope === null || scope === 'unscoped') return undefined;
  if (!isObject(scope)) throw new BadRequest("Invalid input for field 'scope': expected an object");
  if (isObject(scope.project)) {
    const p = scope.project;
    str(p, 'id');
    str(p, 'name');
    if (p.id === undefined && p.name === undefined)
      throw new BadRequest("Invalid input for field 'scope/project': expected 'id' or 'name'");
    return { project: p as { id?: string; name?: string; domain?: { id?: string; name?: string } } };
  }
  if (isObject(scope.domain)) {
    const d = scope.domain;
    str(d, 'id');
    str(d, 'name');
    if (d.id === undefined && d.name === undefined) throw new BadRequest("Invalid input for field 'scope/domain': expected 'id' or 'name'");
    return { domain: d as { id?: string; name?: string } };
  }
  if (scope.domain !== undefined || scope.system !== undefined) {
    throw new Unauthorized('System scope is not supported by novabox: scope to a project or the domain.');
  }
  throw new BadRequest("Invalid input for field 'scope': expected 'project'");
}

function checkDomain(id: string | undefined): void {
  if (id !== undefined && id !== DEFAULT_DOMAIN.id)
    throw new BadRequest(`Unknown domain_id "${id}": novabox has one domain, "${DEFAULT_DOMAIN.id}"`);
}

function notFound(kind: string, id: string): never {
  throw new NotFound(`Could not find ${kind}: ${id}.`);
}

function listLinks(base: string, path: string) {
  return { self: `${base}/identity${path.startsWith('/identity') ? path.slice('/identity'.length) : path}`, next: null, previous: null };
}

function projectList(list: import('../../model/records.js').Project[], base: string, path: string) {
  return { projects: list.map((p) => projectView(p, base)), links: listLinks(base, path) };
}

export type { FastifyReply };
