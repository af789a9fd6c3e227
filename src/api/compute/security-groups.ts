/** Nova 2.1's os-security-groups (proxy API) over novabox's one fixed `default` group per project. */
import type { FastifyInstance } from 'fastify';
import { FixedSecurityGroups, defaultGroup, findGroup, type SecurityGroup } from '../../compute/security-groups.js';
import type { ComputeCtx, Req } from './context.js';

function view(g: SecurityGroup) {
  return {
    id: g.id,
    name: g.name,
    description: g.description,
    tenant_id: g.projectId,
    rules: g.rules.map((r) => ({
      id: r.id,
      parent_group_id: g.id,
      ip_protocol: r.protocol,
      from_port: r.fromPort,
      to_port: r.toPort,
      ip_range: { cidr: r.cidr },
      group: {},
    })),
  };
}

export function registerSecurityGroups(app: FastifyInstance, ctx: ComputeCtx): void {
  const { caller, store, server } = ctx;
  const projectOf = (groupId: string) => store.identity.listProjects().find((p: { id: string }) => defaultGroup(p.id).id === groupId)?.id;
  app.get('/v2.1/os-security-groups', async (req: Req) => {
    const c = caller(req);
    const all = c.isAdmin && req.query.all_tenants !== undefined && !['0', 'false', 'False'].includes(req.query.all_tenants);
    const projects = all ? store.identity.listProjects().map((p: { id: string }) => p.id) : [c.projectId];
    return { security_groups: projects.map((p: string) => view(defaultGroup(p))) };
  });
  app.get('/v2.1/os-security-groups/:id', async (req: Req) => ({
    security_group: view(findGroup(req.params.id!, caller(req), projectOf)),
  }));
  app.get('/v2.1/servers/:id/os-security-groups', async (req: Req) => ({ security_groups: [view(defaultGroup(server(req).projectId))] }));
  app.post('/v2.1/os-security-groups', async (req: Req) => {
    caller(req);
    throw new FixedSecurityGroups('create security groups');
  });
  app.put('/v2.1/os-security-groups/:id', async (req: Req) => {
    findGroup(req.params.id!, caller(req), projectOf);
    throw new FixedSecurityGroups('change a security group');
  });
  app.delete('/v2.1/os-security-groups/:id', async (req: Req) => {
    findGroup(req.params.id!, caller(req), projectOf);
    throw new FixedSecurityGroups('delete the default security group');
  });
  app.post('/v2.1/os-security-group-rules', async (req: Req) => {
    caller(req);
    throw new FixedSecurityGroups('add security group rules');
  });
  app.delete('/v2.1/os-security-group-rules/:id', async (req: Req) => {
    caller(req);
    throw new FixedSecurityGroups('delete security group rules');
  });
}
