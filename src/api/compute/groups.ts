/** Nova's os-server-groups (2.1 view) and os-services (the one nova-compute of this host). */
import type { FastifyInstance } from 'fastify';
import { hostname } from 'node:os';
import { BadRequest } from '../../errors.js';
import { ServerGroupService } from '../../compute/server-groups.js';
import type { ServerGroup } from '../../compute/server-groups.js';
import { requireAdmin } from '../request.js';
import { isObject, onlyKeys, str, wrapped } from '../validate.js';
import type { ComputeCtx, Req } from './context.js';

export function registerGroups(app: FastifyInstance, ctx: ComputeCtx): void {
  const { store, caller } = ctx;
  const groups = new ServerGroupService(store);
  const view = (g: ServerGroup) => ({ id: g.id, name: g.name, policies: [g.policy], members: groups.members(g.id), metadata: {} });

  app.get('/v2.1/os-server-groups', async (req: Req) => {
    const c = caller(req);
    const all = req.query.all_projects !== undefined && !['0', 'false', 'False'].includes(req.query.all_projects);
    if (all) requireAdmin(c, 'os_compute_api:os-server-groups:index:all_projects');
    let list = groups.list(c, all);
    const offset = req.query.offset === undefined ? 0 : Number(req.query.offset);
    const limit = req.query.limit === undefined ? undefined : Number(req.query.limit);
    if (!Number.isSafeInteger(offset) || offset < 0 || (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0))) {
      throw new BadRequest('Invalid input for query parameters limit/offset: whole numbers >= 0');
    }
    list = list.slice(offset, limit === undefined ? undefined : offset + limit);
    return { server_groups: list.map(view) };
  });
  app.get('/v2.1/os-server-groups/:id', async (req: Req) => ({ server_group: view(groups.get(req.params.id!, caller(req))) }));
  app.post('/v2.1/os-server-groups', async (req: Req) => {
    const g = wrapped(req.body, 'server_group');
    onlyKeys(g, 'server_group', ['name', 'policies']);
    const name = str(g, 'name', { required: true, min: 1, max: 255 })!;
    const policies = g.policies;
    if (!Array.isArray(policies) || policies.length !== 1 || typeof policies[0] !== 'string') {
      throw new BadRequest('Invalid input for field/attribute policies: a list of exactly one policy, e.g. ["anti-affinity"]');
    }
    return { server_group: view(groups.create(name, policies[0], caller(req))) };
  });
  app.delete('/v2.1/os-server-groups/:id', async (req: Req, reply) => {
    groups.delete(req.params.id!, caller(req));
    return reply.code(204).send();
  });

  // ---- os-services: one nova-compute, this host; up while serve answers, enabled
  app.get('/v2.1/os-services', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-services:list');
    const q = req.query;
    const host = hostname();
    const now = new Date().toISOString().slice(0, 19);
    const { state } = ctx.compute.serviceState();
    const svc = {
      id: 1,
      binary: 'nova-compute',
      host,
      zone: 'nova',
      status: 'enabled',
      state,
      updated_at: `${now}.000000`,
      disabled_reason: null,
    };
    const keep = (q.host === undefined || q.host === host) && (q.binary === undefined || q.binary === 'nova-compute');
    return { services: keep ? [svc] : [] };
  });
  app.put('/v2.1/os-services/:action', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-services:update');
    if (!isObject(req.body)) throw new BadRequest('The request body must be a JSON object');
    throw new BadRequest('novabox has one compute service, which cannot be disabled or forced down');
  });
}
