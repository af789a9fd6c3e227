/** Nova keypairs (per user), limits and quota sets. */
import type { FastifyInstance } from 'fastify';
import { KeypairService } from '../../compute/keypairs.js';
import { requireAdmin } from '../request.js';
import { onlyKeys, wrapped, type Json } from '../validate.js';
import { keypairBrief, keypairShow, versionAtLeast } from './views.js';
import { microversionOf } from './microversion.js';
import { absoluteLimits, quotaSet } from './limits.js';
import type { ComputeCtx, Req } from './context.js';

export function registerKeypairs(app: FastifyInstance, ctx: ComputeCtx): void {
  const { compute, store, caller } = ctx;
  const keypairs = new KeypairService(store);
  // ---- keypairs
  app.get('/v2.1/os-keypairs', async (req: Req) => ({
    keypairs: keypairs.list(caller(req)).map((k) => ({ keypair: keypairBrief(k, microversionOf(req)) })),
  }));
  app.get('/v2.1/os-keypairs/:name', async (req: Req) => ({
    keypair: keypairShow(keypairs.get(req.params.name!, caller(req)), microversionOf(req)),
  }));
  app.post('/v2.1/os-keypairs', async (req: Req) => {
    const k = wrapped(req.body, 'keypair');
    const v = microversionOf(req);
    const withType = versionAtLeast(v, '2.2');
    onlyKeys(k, 'keypair', withType ? ['name', 'public_key', 'type'] : ['name', 'public_key']);
    const made = await keypairs.create(k.name, k.public_key, caller(req), withType ? (k.type ?? 'ssh') : 'ssh');
    const body: Json = { ...keypairBrief(made, v), user_id: made.userId };
    if (made.privateKey !== undefined) body.private_key = made.privateKey;
    return { keypair: body };
  });
  app.delete('/v2.1/os-keypairs/:name', async (req: Req, reply) => {
    keypairs.delete(req.params.name!, caller(req));
    return reply.code(202).send();
  });

  // ---- limits and quotas
  app.get('/v2.1/limits', async (req: Req) => {
    const c = caller(req);
    let projectId = c.projectId;
    if (req.query.tenant_id !== undefined && req.query.tenant_id !== c.projectId) {
      requireAdmin(c, 'os_compute_api:limits:other_project');
      projectId = req.query.tenant_id;
    }
    return { limits: { rate: [], absolute: absoluteLimits(store, compute, projectId, c) } };
  });
  app.get('/v2.1/os-quota-sets/:project', async (req: Req) => {
    const c = caller(req);
    if (req.params.project !== c.projectId) requireAdmin(c, 'os_compute_api:os-quota-sets:show');
    return { quota_set: quotaSet(req.params.project!) };
  });
  app.get('/v2.1/os-quota-sets/:project/defaults', async (req: Req) => ({ quota_set: (caller(req), quotaSet(req.params.project!)) }));
}
