/** Nova flavors: list, show, create and delete (admin), extra specs, access. */
import type { FastifyInstance } from 'fastify';
import { BadRequest, NotFound } from '../../errors.js';
import { baseUrl, requireAdmin } from '../request.js';
import { bool, int, isObject, metadata, num, str, wrapped } from '../validate.js';
import { flavorBrief, flavorDetail } from './views.js';
import { type ComputeCtx, type Req, wrappedAny } from './context.js';

export function registerFlavors(app: FastifyInstance, ctx: ComputeCtx): void {
  const { store, caller, flavorFor } = ctx;
  // ---- flavors
  const listFlavors = (req: Req, detail: boolean) => {
    const c = caller(req);
    const q = req.query;
    // only an admin's is_public is read (Nova ignores it for others)
    let list = ctx.compute.flavorsFor(c, c.isAdmin ? parseIsPublic(q.is_public) : true, {
      minRamMiB: q.minRam === undefined ? undefined : int({ minRam: q.minRam }, 'minRam', { min: 0 }),
      minDiskGiB: q.minDisk === undefined ? undefined : int({ minDisk: q.minDisk }, 'minDisk', { min: 0 }),
    });
    if (q.marker !== undefined) {
      const i = list.findIndex((f) => f.id === q.marker);
      if (i < 0) throw new BadRequest(`marker [${q.marker}] not found`);
      list = list.slice(i + 1);
    }
    if (q.limit !== undefined) list = list.slice(0, int({ limit: q.limit }, 'limit', { min: 0 }));
    const base = baseUrl(req);
    return { flavors: list.map((f) => (detail ? flavorDetail(f, base) : flavorBrief(f, base))) };
  };
  app.get('/v2.1/flavors', async (req: Req) => listFlavors(req, false));
  app.get('/v2.1/flavors/detail', async (req: Req) => listFlavors(req, true));
  app.get('/v2.1/flavors/:id', async (req: Req) => ({
    flavor: flavorDetail(ctx.compute.showFlavor(req.params.id!, caller(req)), baseUrl(req)),
  }));
  app.post('/v2.1/flavors', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-flavor-manage:create');
    const f = wrapped(req.body, 'flavor');
    const id =
      f.id === null || f.id === undefined
        ? undefined
        : typeof f.id === 'number'
          ? String(f.id)
          : str(f, 'id', { min: 1, max: 255, trimmed: true });
    const created = store.flavors.create({
      id,
      name: str(f, 'name', { required: true, min: 1, max: 255, trimmed: true })!,
      ramMiB: int(f, 'ram', { required: true, min: 1 })!,
      vcpus: int(f, 'vcpus', { required: true, min: 1 })!,
      diskGiB: int(f, 'disk', { required: true, min: 0 })!,
      swapMiB: f.swap === '' ? 0 : (int(f, 'swap', { min: 0 }) ?? 0),
      ephemeralGiB: int(f, 'OS-FLV-EXT-DATA:ephemeral', { min: 0 }) ?? 0,
      rxtxFactor: num(f, 'rxtx_factor', { min: 0, exclusiveMin: true }) ?? 1,
      isPublic: bool(f, 'os-flavor-access:is_public') ?? true,
    });
    return { flavor: flavorDetail(created, baseUrl(req)) };
  });
  app.delete('/v2.1/flavors/:id', async (req: Req, reply) => {
    requireAdmin(caller(req), 'os_compute_api:os-flavor-manage:delete');
    store.flavors.delete(req.params.id!);
    return reply.code(202).send();
  });
  app.get('/v2.1/flavors/:id/os-extra_specs', async (req: Req) => ({ extra_specs: flavorFor(req.params.id!, caller(req)).extraSpecs }));
  app.post('/v2.1/flavors/:id/os-extra_specs', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-flavor-extra-specs:create');
    const specs = metadata(wrappedAny(req.body), 'extra_specs', { required: true })!;
    const f = flavorFor(req.params.id!, caller(req));
    return { extra_specs: store.flavors.setExtraSpecs(f.id, specs) };
  });
  app.get('/v2.1/flavors/:id/os-extra_specs/:key', async (req: Req) => {
    const f = flavorFor(req.params.id!, caller(req));
    const k = req.params.key!;
    if (!Object.hasOwn(f.extraSpecs, k)) throw new NotFound(`Flavor ${f.id} has no extra specs with key ${k}.`);
    return { [k]: f.extraSpecs[k] };
  });
  app.put('/v2.1/flavors/:id/os-extra_specs/:key', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-flavor-extra-specs:update');
    const body = wrappedAny(req.body);
    const k = req.params.key!;
    if (Object.keys(body).length !== 1 || !Object.hasOwn(body, k))
      throw new BadRequest('Request body and URI mismatch: the body must hold exactly the key of the URL');
    const f = flavorFor(req.params.id!, caller(req));
    const specs = metadata({ s: body }, 's')!;
    store.flavors.setExtraSpecs(f.id, specs);
    return specs;
  });
  app.delete('/v2.1/flavors/:id/os-extra_specs/:key', async (req: Req, reply) => {
    requireAdmin(caller(req), 'os_compute_api:os-flavor-extra-specs:delete');
    store.flavors.unsetExtraSpec(flavorFor(req.params.id!, caller(req)).id, req.params.key!);
    return reply.code(200).send();
  });
  app.get('/v2.1/flavors/:id/os-flavor-access', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-flavor-access');
    return { flavor_access: store.flavors.listAccess(req.params.id!).map((a) => ({ flavor_id: a.flavorId, tenant_id: a.projectId })) };
  });
  app.post('/v2.1/flavors/:id/action', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-flavor-access:add_tenant_access');
    const body = wrappedAny(req.body);
    const [action, arg] = Object.entries(body)[0] ?? [];
    if ((action !== 'addTenantAccess' && action !== 'removeTenantAccess') || !isObject(arg)) {
      throw new BadRequest('Expected {"addTenantAccess": {"tenant": ...}} or {"removeTenantAccess": {"tenant": ...}}');
    }
    const tenant = str(arg, 'tenant', { required: true, min: 1, max: 255 })!;
    const list =
      action === 'addTenantAccess' ? store.flavors.addAccess(req.params.id!, tenant) : store.flavors.removeAccess(req.params.id!, tenant);
    return { flavor_access: list.map((a) => ({ flavor_id: a.flavorId, tenant_id: a.projectId })) };
  });
}

const TRUE_STRINGS = ['1', 't', 'true', 'on', 'y', 'yes'];
const FALSE_STRINGS = ['0', 'f', 'false', 'off', 'n', 'no'];

/** Nova's _parse_is_public: absent = true, "none" (any case) = both, else oslo's strict bool_from_string. */
export function parseIsPublic(v: string | undefined): boolean | null {
  if (v === undefined) return true;
  const s = v.trim().toLowerCase();
  if (s === 'none') return null;
  if (TRUE_STRINGS.includes(s)) return true;
  if (FALSE_STRINGS.includes(s)) return false;
  throw new BadRequest(`Invalid is_public filter [${v}]`);
}
