/**
 * Nova v2.1 at /compute: decode the request, call the compute service, encode the 2.1
 * view. Long work (create, start, reboot) runs in the background after the state is
 * claimed, as in Nova: the answer is 202 and clients poll. One file per resource group.
 */
import type { FastifyInstance } from 'fastify';
import { baseUrl, callerOf, type ApiDeps } from '../request.js';
import { versionDoc, versionSingle } from './views.js';
import { microversionOf, parseMicroversion } from './microversion.js';
import { computeCtx } from './context.js';
import { registerServers } from './servers.js';
import { registerActions, consoleTail } from './actions.js';
import { registerFlavors } from './flavors.js';
import { registerKeypairs } from './keypairs.js';
import { registerImageProxy } from './images.js';
import { registerAdmin } from './admin.js';
import { registerGroups } from './groups.js';
import { registerSecurityGroups } from './security-groups.js';
import { registerVolumes } from './volumes.js';

export { consoleTail };
export { background } from './context.js';

export { parseMicroversion, microversionOf };

export function registerCompute(app: FastifyInstance, deps: ApiDeps): void {
  // ---- version documents (no token)
  app.get('/', async (req) => ({ versions: [versionDoc(baseUrl(req), 'v2.0'), versionDoc(baseUrl(req), 'v2.1')] }));
  app.get('/v2', async (req) => ({ version: versionSingle(baseUrl(req), 'v2.0') }));
  app.get('/v2.1', async (req) => ({ version: versionSingle(baseUrl(req), 'v2.1') }));

  // ---- every /v2.1/... call: microversion, then a project-scoped token
  app.addHook('preHandler', async (req, reply) => {
    const path = req.url.split('?')[0]!.replace(/\/+$/, '');
    if (!path.startsWith('/compute/v2.1/') && !path.startsWith('/compute/v2/')) return;
    const v = parseMicroversion(req.headers);
    reply.header('OpenStack-API-Version', `compute ${v}`);
    reply.header('X-OpenStack-Nova-API-Version', v);
    reply.header('Vary', 'OpenStack-API-Version, X-OpenStack-Nova-API-Version');
    callerOf(req, deps);
  });
  const ctx = computeCtx(deps);
  registerServers(app, ctx);
  registerActions(app, ctx);
  registerFlavors(app, ctx);
  registerKeypairs(app, ctx);
  registerImageProxy(app, ctx);
  registerAdmin(app, ctx);
  registerGroups(app, ctx);
  registerSecurityGroups(app, ctx);
  registerVolumes(app, ctx);
}
