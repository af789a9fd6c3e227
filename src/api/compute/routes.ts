/**
 * Nova v2.1 at /compute: decode the request, call the compute service, encode the 2.1
 * view. Long work (create, start, reboot) runs in the background after the state is
 * claimed, as in Nova: the answer is 202 and clients poll.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { statfsSync } from 'node:fs';
import { cpus, freemem, hostname, totalmem, uptime } from 'node:os';
import { BadRequest, Conflict, NotFound } from '../../errors.js';
import { KeypairService } from '../../compute/keypairs.js';
import type { Caller } from '../../compute/servers.js';
import { statusOf as serverStatus } from '../../compute/states.js';
import type { Server } from '../../store/servers.js';
import type { Flavor } from '../../store/flavors.js';
import { stateRoot } from '../../util/paths.js';
import { trace } from '../../util/trace.js';
import { ApiError } from '../faults.js';
import { baseUrl, callerOf, requireAdmin, type ApiDeps } from '../server.js';
import {
  bool, compactIPv6, int, ipAddress, isObject, isUuid, metadata, num, onlyKeys, refId, str, wrapped, type Json,
} from '../validate.js';
import {
  MICROVERSION, novaTime, actionView, computeImage, eventView, flavorBrief, flavorDetail, keypairBrief, keypairShow, serverBasic,
  serverBrief, serverDetail, versionDoc, versionSingle, type ServerViewContext,
} from './views.js';
import { QUOTAS, absoluteLimits, quotaSet } from './limits.js';
import { imageIdOfServer, type GlanceImage } from '../image/catalog.js';
import { inlineRunner } from './blocking.js';

type Req = FastifyRequest<{ Params: Record<string, string>; Querystring: Record<string, string | undefined> }>;

/** What runs after a 202: kept so `serve` can let it finish on shutdown. */
export const background = new Set<Promise<unknown>>();

function inBackground(p: Promise<unknown>, log: ((l: string) => void) | undefined, what: string): void {
  const tracked = p.catch((err: unknown) => log?.(`${what} failed: ${(err as Error)?.message ?? String(err)}`)).finally(() => background.delete(tracked));
  background.add(tracked);
}

/**
 * An async compute action claims the server synchronously, before its first await: a
 * refusal (409, 404) rejects the promise at once and becomes the answer; the rest of the
 * work continues in the background.
 */
async function claimed(p: Promise<unknown>, log: ApiDeps['log'], what: string): Promise<void> {
  let failed: unknown;
  let settled = false;
  p.then(
    () => (settled = true),
    (err: unknown) => {
      settled = true;
      failed = err;
    },
  );
  await null;
  await null;
  if (settled && failed !== undefined) throw failed;
  inBackground(p, log, what);
}

export function parseMicroversion(headers: FastifyRequest['headers']): string {
  const h = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  let v = h('openstack-api-version');
  if (v !== undefined) {
    const m = /^\s*compute\s+(\S+)\s*$/i.exec(v.split(',').find((x) => /^\s*compute\s/i.test(x)) ?? '');
    v = m?.[1];
  }
  v ??= h('x-openstack-nova-api-version');
  if (v === undefined) return MICROVERSION;
  if (v.toLowerCase() === 'latest') return MICROVERSION;
  if (!/^\d+\.\d+$/.test(v)) throw new BadRequest(`Invalid microversion "${v}": expected e.g. ${MICROVERSION}`);
  if (v !== MICROVERSION && v !== '2.0') {
    throw new ApiError(406, `Version ${v} is not supported by the API. Minimum is ${MICROVERSION} and maximum is ${MICROVERSION}.`);
  }
  return MICROVERSION;
}

export function registerCompute(app: FastifyInstance, deps: ApiDeps): void {
  const compute = deps.compute;
  const store = deps.store;
  const keypairs = new KeypairService(store);
  const log = deps.log;
  const blocking = deps.blocking ?? inlineRunner(compute);

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

  const caller = (req: FastifyRequest): Caller => callerOf(req, deps);

  /** By id only (a name is a 404, so the client falls back to a list); other projects' → 404. */
  const server = (req: Req): Server => {
    const c = caller(req);
    const id = req.params.id!;
    const s = store.servers.get(id);
    if (!s || (!c.isAdmin && s.projectId !== c.projectId)) throw new NotFound(`Instance ${id} could not be found.`);
    return compute.reconcile(s);
  };

  const viewCtx = (req: FastifyRequest, s: Server): ServerViewContext => ({
    base: baseUrl(req),
    isAdmin: caller(req).isAdmin,
    imageId: imageIdOfServer(deps.images, s, caller(req)),
    addresses: {},
  });

  // ---- servers
  app.get('/v2.1/servers', async (req: Req) => listServers(req, false));
  app.get('/v2.1/servers/detail', async (req: Req) => listServers(req, true));

  function listServers(req: Req, detail: boolean) {
    const c = caller(req);
    const q = req.query;
    const allTenants = q.all_tenants !== undefined && !['0', 'false', 'False'].includes(q.all_tenants);
    if (allTenants) requireAdmin(c, 'os_compute_api:servers:detail:get_all_tenants');
    const projectId = allTenants ? q.tenant_id ?? q.project_id : c.projectId;
    const limit = q.limit === undefined ? undefined : Number(q.limit);
    if (limit !== undefined && (!/^\d+$/.test(q.limit!) || !Number.isSafeInteger(limit))) {
      throw new BadRequest(`Invalid input for query parameter limit: "${q.limit}" is not a whole number >= 0`);
    }
    let list = compute.list(
      { projectId, name: q.name, status: q.status, changesSince: q['changes-since'] },
      allTenants ? { ...c, isAdmin: true } : { ...c, isAdmin: true },
    );
    if (q.image !== undefined) list = list.filter((s) => imageIdOfServer(deps.images, s, c) === refId(q.image!));
    if (q.flavor !== undefined) list = list.filter((s) => s.flavorId === refId(q.flavor!));
    if (q.host !== undefined) {
      requireAdmin(c, 'os_compute_api:servers:index:get_all_tenants');
      list = list.filter((s) => s.host === q.host);
    }
    list.reverse(); // newest first, as Nova
    if (q.marker !== undefined) {
      const i = list.findIndex((s) => s.id === q.marker);
      if (i < 0) throw new BadRequest(`marker [${q.marker}] not found`);
      list = list.slice(i + 1);
    }
    const base = baseUrl(req);
    const body: Json = {};
    if (limit !== undefined && list.length > limit) {
      list = list.slice(0, limit);
      const last = list.at(-1);
      if (last) body.servers_links = [{ rel: 'next', href: `${base}/compute/v2.1/servers${detail ? '/detail' : ''}?limit=${limit}&marker=${last.id}` }];
    } else if (limit !== undefined) list = list.slice(0, limit);
    body.servers = list.map((s) => (detail ? serverDetail(s, viewCtx(req, s)) : serverBrief(s, base)));
    return body;
  }

  app.get('/v2.1/servers/:id', async (req: Req) => {
    const s = server(req);
    return { server: serverDetail(s, viewCtx(req, s)) };
  });

  app.post('/v2.1/servers', async (req: Req, reply) => {
    trace('POST /servers');
    const c = caller(req);
    const b = wrapped(req.body, 'server');
    const name = str(b, 'name', { required: true, min: 1, max: 255 })!;
    if (name.trim() === '') throw new BadRequest("Invalid input for field/attribute name. An empty name or one of only white space is not allowed");
    const imageRef = str(b, 'imageRef', { required: true, min: 1 })!;
    const imageId = refId(imageRef);
    if (!isUuid(imageId)) throw new BadRequest(`Invalid input for field/attribute imageRef. Value: ${imageRef}. '${imageRef}' is not a 'uuid'`);
    let image: GlanceImage;
    try {
      image = deps.images.show(imageId, c);
    } catch (err) {
      if (err instanceof NotFound) throw new BadRequest(`Image ${imageId} could not be found.`);
      throw err;
    }
    if (image.status !== 'active') throw new BadRequest(`Image ${imageId} is not active.`);
    const flavorRef = b.flavorRef;
    if (typeof flavorRef !== 'string' && typeof flavorRef !== 'number') throw new BadRequest("Invalid input for field/attribute flavorRef. 'flavorRef' is a required property");
    const flavor = flavorFor(String(flavorRef), c, true);
    if (flavor.ramMiB < image.minRam) throw new BadRequest(`Flavor's memory is too small for requested image.`);
    if (flavor.diskGiB < image.minDisk && flavor.diskGiB !== 0) throw new BadRequest(`Flavor's disk is too small for requested image.`);
    const keyName = str(b, 'key_name', { nullable: true });
    if (keyName !== undefined) {
      try {
        keypairs.get(keyName, c);
      } catch {
        throw new BadRequest('Invalid key_name provided.');
      }
    }
    const meta = metadata(b, 'metadata') ?? {};
    if (Object.keys(meta).length > QUOTAS.metadata_items) {
      throw new ApiError(403, `Quota exceeded for metadata_items: at most ${QUOTAS.metadata_items} properties`);
    }
    const minCount = int(b, 'min_count', { min: 1 }) ?? 1;
    const maxCount = int(b, 'max_count', { min: 1 }) ?? minCount;
    if (maxCount < minCount) throw new BadRequest('Invalid input for field/attribute max_count: it is smaller than min_count');
    const userData = str(b, 'user_data', { nullable: true });
    if (userData !== undefined && (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(userData) || userData.length > 65535)) {
      throw new BadRequest("Invalid input for field/attribute user_data. It must be base64 of at most 65535 bytes");
    }
    const v4 = ipAddress(b, 'accessIPv4', 4);
    const v6 = ipAddress(b, 'accessIPv6', 6);
    const adminPass = str(b, 'adminPass') ?? newAdminPass();
    checkSecurityGroups(b.security_groups);
    checkNetworks(b.networks);
    const az = str(b, 'availability_zone', { nullable: true });
    if (az !== undefined && az !== 'nova') throw new BadRequest(`Invalid input for field/attribute availability_zone: "${az}" does not exist (only "nova")`);
    const used = store.servers.count(c.projectId);
    if (QUOTAS.instances >= 0 && used + maxCount > QUOTAS.instances) {
      throw new ApiError(403, `Quota exceeded for instances: Requested ${maxCount}, but already used ${used} of ${QUOTAS.instances} instances`);
    }
    trace('create request checked');
    const { servers, started } = await compute.createRecorded(
      { name, image: image.id, flavor: flavor.id, properties: meta, keyName, count: maxCount, accessIpv4: v4, accessIpv6: v6 },
      c,
    );
    inBackground(started, log, `create ${servers.map((s) => s.id).join(', ')}`);
    const first = servers[0]!;
    const base = baseUrl(req);
    reply.code(202).header('Location', `${base}/compute/v2.1/servers/${first.id}`);
    if (bool(b, 'return_reservation_id')) return { reservation_id: `r-${first.id.slice(0, 8)}` };
    return {
      server: {
        id: first.id,
        links: serverBrief(first, base).links,
        'OS-DCF:diskConfig': 'MANUAL',
        security_groups: [{ name: 'default' }],
        adminPass,
      },
    };
  });

  app.put('/v2.1/servers/:id', async (req: Req) => {
    const s = server(req);
    const b = wrapped(req.body, 'server');
    onlyKeys(b, 'server', ['name', 'accessIPv4', 'accessIPv6', 'OS-DCF:diskConfig']);
    const name = str(b, 'name', { min: 1, max: 255 });
    if (name !== undefined && name.trim() === '') throw new BadRequest('Invalid input for field/attribute name. An empty name is not allowed');
    const patched = compute.rename(s.id, { name, accessIpv4: ipAddress(b, 'accessIPv4', 4), accessIpv6: ipAddress(b, 'accessIPv6', 6) }, caller(req));
    return { server: serverBasic(patched, viewCtx(req, patched)) };
  });

  app.delete('/v2.1/servers/:id', async (req: Req, reply) => {
    const s = server(req);
    await blocking.run({ op: 'delete', id: s.id, caller: caller(req) });
    return reply.code(204).send();
  });

  // ---- actions
  app.post('/v2.1/servers/:id/action', async (req: Req, reply) => {
    const s = server(req);
    const c = caller(req);
    if (!isObject(req.body) || Object.keys(req.body).length !== 1) {
      throw new BadRequest('The action body must be a JSON object with exactly one action, e.g. {"os-stop": null}');
    }
    const [action, arg] = Object.entries(req.body)[0]!;
    const done = () => reply.code(202).send();
    switch (action) {
      case 'os-start':
        await claimed(compute.start(s.id, c), log, `start ${s.id}`);
        return done();
      case 'os-stop':
        await blocking.run({ op: 'stop', id: s.id, caller: c });
        return done();
      case 'reboot': {
        if (!isObject(arg)) throw new BadRequest("Invalid input for field/attribute reboot. Expected {\"type\": \"SOFT\"|\"HARD\"}");
        const type = str(arg, 'type', { required: true });
        if (type !== 'SOFT' && type !== 'HARD') throw new BadRequest(`Invalid input for field/attribute type. Value: ${type}. It must be SOFT or HARD`);
        await claimed(compute.reboot(s.id, c, { hard: type === 'HARD' }), log, `reboot ${s.id}`);
        return done();
      }
      case 'pause':
        compute.pause(s.id, c);
        return done();
      case 'unpause':
        compute.unpause(s.id, c);
        return done();
      case 'lock':
        compute.lock(s.id, c);
        return done();
      case 'unlock':
        compute.unlock(s.id, c);
        return done();
      case 'os-getConsoleOutput': {
        const o = isObject(arg) ? arg : {};
        const length = o.length === undefined || o.length === null ? -1 : int(o, 'length', { min: -1 })!;
        return { output: consoleTail(compute.consoleLog(s.id, c), length) };
      }
      case 'suspend':
      case 'resume':
        lockCheck(s, c);
        throw new ApiError(501, `novabox cannot ${action} a server: containers have no suspend-to-disk here (use pause/unpause, which freezes it in memory)`);
      case 'createImage': {
        if (!isObject(arg)) throw new BadRequest('Invalid input for field/attribute createImage. Expected {"name": "..."}');
        const name = str(arg, 'name', { required: true, min: 1, max: 255 })!;
        const meta = metadata(arg, 'metadata') ?? {};
        if (!deps.snapshot) throw new ApiError(501, 'createImage needs the image store');
        let imageId: string | undefined;
        await claimed(deps.snapshot({ server: s.id, name, properties: meta, onRecord: (r) => (imageId = r.id) }, c), log, `createImage of ${s.id}`);
        return reply.code(202).header('Location', `${baseUrl(req)}/image/v2/images/${imageId}`).send();
      }
      case 'rebuild': {
        if (!isObject(arg)) throw new BadRequest('Invalid input for field/attribute rebuild. Expected {"imageRef": "<image id>"}');
        onlyKeys(arg, 'rebuild', ['imageRef', 'name', 'metadata', 'adminPass', 'accessIPv4', 'accessIPv6', 'OS-DCF:diskConfig', 'preserve_ephemeral']);
        const ref = str(arg, 'imageRef', { required: true, min: 1 })!;
        const imageId = refId(ref);
        if (!isUuid(imageId)) throw new BadRequest(`Invalid input for field/attribute imageRef. Value: ${ref}. '${ref}' is not a 'uuid'`);
        let image: GlanceImage;
        try {
          image = deps.images.show(imageId, c);
        } catch (err) {
          if (err instanceof NotFound) throw new BadRequest(`Image ${imageId} could not be found.`);
          throw err;
        }
        const name = str(arg, 'name', { min: 1, max: 255 });
        const meta = metadata(arg, 'metadata');
        const v4 = ipAddress(arg, 'accessIPv4', 4);
        const v6 = ipAddress(arg, 'accessIPv6', 6);
        const adminPass = str(arg, 'adminPass') ?? newAdminPass();
        lockCheck(s, c);
        await claimed(compute.rebuild(s.id, image.id, c), log, `rebuild ${s.id}`);
        if (name !== undefined || v4 !== undefined || v6 !== undefined) compute.rename(s.id, { name, accessIpv4: v4, accessIpv6: v6 }, c);
        if (meta !== undefined) compute.replaceProperties(s.id, meta, c);
        const now = store.servers.get(s.id)!;
        return reply.code(202).send({ server: { ...serverBasic(now, viewCtx(req, now)), adminPass } });
      }
      case 'createBackup':
        lockCheck(s, c);
        throw new ApiError(501, 'createBackup (rotated backups) is not implemented by novabox: use createImage');
      case 'resize': {
        if (!isObject(arg)) throw new BadRequest('Invalid input for field/attribute resize. Expected {"flavorRef": "<flavor id>"}');
        const ref = arg.flavorRef;
        if (typeof ref !== 'string' && typeof ref !== 'number') throw new BadRequest("Invalid input for field/attribute flavorRef. 'flavorRef' is a required property");
        const flavor = flavorFor(String(ref), c, true);
        compute.resize(s.id, flavor.id, c);
        return done();
      }
      case 'confirmResize':
        compute.confirmResize(s.id, c);
        return reply.code(204).send();
      case 'revertResize':
        compute.revertResize(s.id, c);
        return done();
      case 'migrate':
      case 'os-migrateLive':
        requireAdmin(c, `os_compute_api:os-migrate-server:${action}`);
        throw new BadRequest('No valid host was found. novabox is a single host: there is nowhere to migrate to.');
      case 'forceDelete':
      case 'restore':
        throw new Conflict(`Cannot '${action}' instance ${s.id} while it is in vm_state ${s.vmState}`);
      case 'os-resetState': {
        requireAdmin(c, 'os_compute_api:os-admin-actions:reset_state');
        const state = isObject(arg) ? str(arg, 'state', { required: true }) : undefined;
        if (state !== 'active' && state !== 'error') throw new BadRequest('Invalid input for field/attribute state: it must be "active" or "error"');
        store.actions.start(s.id, 'resetState', { requestId: c.requestId, userId: c.userId, projectId: c.projectId });
        store.servers.update(s.id, { vmState: state, taskState: null, taskOwnerPid: null, taskOwnerStart: null });
        return done();
      }
      default:
        throw new BadRequest(`There is no such action: ${action}`);
    }
  });

  function lockCheck(s: Server, c: Caller): void {
    if (s.locked && !c.isAdmin) throw new Conflict(`Instance ${s.id} is locked`);
  }

  // ---- metadata
  app.get('/v2.1/servers/:id/metadata', async (req: Req) => ({ metadata: server(req).metadata }));
  app.post('/v2.1/servers/:id/metadata', async (req: Req) => {
    const s = server(req);
    const m = metadata(wrappedAny(req.body), 'metadata', { required: true })!;
    checkMetaCount({ ...s.metadata, ...m });
    return { metadata: compute.setProperties(s.id, m, caller(req)).metadata };
  });
  app.put('/v2.1/servers/:id/metadata', async (req: Req) => {
    const s = server(req);
    const m = metadata(wrappedAny(req.body), 'metadata', { required: true })!;
    checkMetaCount(m);
    return { metadata: compute.replaceProperties(s.id, m, caller(req)).metadata };
  });
  app.get('/v2.1/servers/:id/metadata/:key', async (req: Req) => {
    const s = server(req);
    const k = req.params.key!;
    if (!Object.hasOwn(s.metadata, k)) throw new NotFound(`Metadata item was not found: ${k}`);
    return { meta: { [k]: s.metadata[k] } };
  });
  app.put('/v2.1/servers/:id/metadata/:key', async (req: Req) => {
    const s = server(req);
    const m = metadata(wrappedAny(req.body), 'meta', { required: true })!;
    const k = req.params.key!;
    if (Object.keys(m).length !== 1 || !Object.hasOwn(m, k)) throw new BadRequest('Request body and URI mismatch: "meta" must hold exactly the key of the URL');
    checkMetaCount({ ...s.metadata, ...m });
    compute.setProperties(s.id, m, caller(req));
    return { meta: m };
  });
  app.delete('/v2.1/servers/:id/metadata/:key', async (req: Req, reply) => {
    const s = server(req);
    const k = req.params.key!;
    if (!Object.hasOwn(s.metadata, k)) throw new NotFound(`Metadata item was not found: ${k}`);
    compute.unsetProperties(s.id, [k], caller(req));
    return reply.code(204).send();
  });

  // ---- addresses (the networking issue fills them)
  app.get('/v2.1/servers/:id/ips', async (req: Req) => {
    server(req);
    return { addresses: {} };
  });
  app.get('/v2.1/servers/:id/ips/:network', async (req: Req) => {
    server(req);
    throw new NotFound(`There is no such network: ${req.params.network}`);
  });

  // ---- instance actions
  app.get('/v2.1/servers/:id/os-instance-actions', async (req: Req) => {
    const s = server(req);
    return { instanceActions: store.actions.list(s.id).map((a) => actionView(a, s.id)) };
  });
  app.get('/v2.1/servers/:id/os-instance-actions/:rid', async (req: Req) => {
    const s = server(req);
    const a = store.actions.get(s.id, req.params.rid!);
    return { instanceAction: { ...actionView(a, s.id), events: a.events.map(eventView) } };
  });

  // ---- flavors
  const flavorFor = (ref: string, c: Caller, forBoot = false): Flavor => {
    try {
      return store.flavors.get(refId(ref), c.isAdmin ? {} : { projectId: c.projectId });
    } catch (err) {
      if (forBoot && err instanceof NotFound) throw new BadRequest(`Flavor ${ref} could not be found.`);
      throw err;
    }
  };
  const listFlavors = (req: Req, detail: boolean) => {
    const c = caller(req);
    const q = req.query;
    const isPublic = q.is_public;
    const all = c.isAdmin && (isPublic === undefined ? false : ['none', 'None'].includes(isPublic));
    let list = store.flavors.list({
      includePrivate: c.isAdmin && (all || isPublic === 'false' || isPublic === 'False'),
      projectId: c.isAdmin ? undefined : c.projectId,
      minRamMiB: q.minRam === undefined ? undefined : int({ minRam: q.minRam }, 'minRam', { min: 0 }),
      minDiskGiB: q.minDisk === undefined ? undefined : int({ minDisk: q.minDisk }, 'minDisk', { min: 0 }),
    });
    if (c.isAdmin && (isPublic === 'false' || isPublic === 'False')) list = list.filter((f) => !f.isPublic);
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
  app.get('/v2.1/flavors/:id', async (req: Req) => ({ flavor: flavorDetail(flavorFor(req.params.id!, caller(req)), baseUrl(req)) }));
  app.post('/v2.1/flavors', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-flavor-manage:create');
    const f = wrapped(req.body, 'flavor');
    const id = f.id === null || f.id === undefined ? undefined : typeof f.id === 'number' ? String(f.id) : str(f, 'id', { min: 1, max: 255, trimmed: true });
    const created = store.flavors.create({
      id,
      name: str(f, 'name', { required: true, min: 1, max: 255, trimmed: true })!,
      ramMiB: int(f, 'ram', { required: true, min: 1 })!,
      vcpus: int(f, 'vcpus', { required: true, min: 1 })!,
      diskGiB: int(f, 'disk', { required: true, min: 0 })!,
      swapMiB: f.swap === '' ? 0 : int(f, 'swap', { min: 0 }) ?? 0,
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
    if (Object.keys(body).length !== 1 || !Object.hasOwn(body, k)) throw new BadRequest('Request body and URI mismatch: the body must hold exactly the key of the URL');
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
    const list = action === 'addTenantAccess' ? store.flavors.addAccess(req.params.id!, tenant) : store.flavors.removeAccess(req.params.id!, tenant);
    return { flavor_access: list.map((a) => ({ flavor_id: a.flavorId, tenant_id: a.projectId })) };
  });

  // ---- keypairs
  app.get('/v2.1/os-keypairs', async (req: Req) => ({ keypairs: keypairs.list(caller(req)).map((k) => ({ keypair: keypairBrief(k) })) }));
  app.get('/v2.1/os-keypairs/:name', async (req: Req) => ({ keypair: keypairShow(keypairs.get(req.params.name!, caller(req))) }));
  app.post('/v2.1/os-keypairs', async (req: Req) => {
    const k = wrapped(req.body, 'keypair');
    onlyKeys(k, 'keypair', ['name', 'public_key']);
    const made = await keypairs.create(k.name, k.public_key, caller(req));
    const body: Json = { ...keypairBrief(made), user_id: made.userId };
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

  // ---- images (compute's proxy onto Glance)
  const visibleImages = (req: Req) => deps.images.list({}, caller(req));
  const oneImage = (req: Req): GlanceImage => {
    const c = caller(req);
    if (!isUuid(req.params.id!)) throw new NotFound('Image not found.');
    try {
      return deps.images.show(req.params.id!, c);
    } catch (err) {
      if (err instanceof NotFound) throw new NotFound('Image not found.');
      throw err;
    }
  };
  app.get('/v2.1/images', async (req: Req) => ({ images: visibleImages(req).map((i) => computeImage(i, baseUrl(req), false)) }));
  app.get('/v2.1/images/detail', async (req: Req) => ({ images: visibleImages(req).map((i) => computeImage(i, baseUrl(req), true)) }));
  app.get('/v2.1/images/:id', async (req: Req) => ({ image: computeImage(oneImage(req), baseUrl(req), true) }));
  app.delete('/v2.1/images/:id', async (req: Req, reply) => {
    deps.images.delete(oneImage(req).id, caller(req));
    return reply.code(204).send();
  });
  app.get('/v2.1/images/:id/metadata', async (req: Req) => ({ metadata: { ...oneImage(req).properties } }));

  // ---- hypervisors, aggregates, migrations (admin)
  const hypervisor = (detail: boolean) => {
    const host = hostname();
    const all = compute.list({}, { ...compute.localCaller() });
    const running = all.filter((s) => serverStatus(s.vmState, s.taskState) !== 'SHUTOFF');
    const ramUsed = running.reduce((n, s) => n + (safeFlavor(s.flavorId)?.ramMiB ?? 0), 0);
    const vcpusUsed = running.reduce((n, s) => n + (safeFlavor(s.flavorId)?.vcpus ?? 0), 0);
    const base = { id: 1, hypervisor_hostname: host, state: 'up', status: 'enabled' };
    if (!detail) return base;
    const fs = diskStats();
    return {
      ...base,
      hypervisor_type: 'container', hypervisor_version: 1, host_ip: '127.0.0.1',
      cpu_info: JSON.stringify({ arch: process.arch, model: cpus()[0]?.model ?? '', topology: { cores: cpus().length } }),
      vcpus: cpus().length, vcpus_used: vcpusUsed, memory_mb: Math.floor(totalmem() / 2 ** 20), memory_mb_used: ramUsed,
      free_ram_mb: Math.floor(freemem() / 2 ** 20), local_gb: fs.total, local_gb_used: fs.total - fs.free, free_disk_gb: fs.free,
      disk_available_least: fs.free, current_workload: 0, running_vms: running.length,
      service: { host, id: 1, disabled_reason: null },
    };
  };
  const safeFlavor = (id: string) => {
    try {
      return store.flavors.get(id);
    } catch {
      return undefined;
    }
  };
  app.get('/v2.1/os-hypervisors', async (req: Req) => (requireAdmin(caller(req), 'os_compute_api:os-hypervisors:list'), { hypervisors: [hypervisor(false)] }));
  app.get('/v2.1/os-hypervisors/detail', async (req: Req) => (requireAdmin(caller(req), 'os_compute_api:os-hypervisors:list-detail'), { hypervisors: [hypervisor(true)] }));
  app.get('/v2.1/os-hypervisors/statistics', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-hypervisors:statistics');
    const h = hypervisor(true) as Json;
    const keys = ['current_workload', 'disk_available_least', 'free_disk_gb', 'free_ram_mb', 'local_gb', 'local_gb_used', 'memory_mb', 'memory_mb_used', 'running_vms', 'vcpus', 'vcpus_used'];
    return { hypervisor_statistics: { count: 1, ...Object.fromEntries(keys.map((k) => [k, h[k]])) } };
  });
  app.get('/v2.1/os-hypervisors/:id', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-hypervisors:show');
    if (req.params.id !== '1') throw new NotFound(`Hypervisor with ID ${req.params.id} could not be found.`);
    return { hypervisor: hypervisor(true) };
  });
  app.get('/v2.1/os-hypervisors/:id/uptime', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-hypervisors:uptime');
    if (req.params.id !== '1') throw new NotFound(`Hypervisor with ID ${req.params.id} could not be found.`);
    return { hypervisor: { ...hypervisor(false), uptime: ` up ${Math.floor(uptime() / 60)} min` } };
  });
  app.get('/v2.1/os-aggregates', async (req: Req) => (caller(req), { aggregates: [] }));
  app.get('/v2.1/os-migrations', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-migrations:index');
    const q = req.query;
    let list = store.resizes.list({ serverId: q.instance_uuid });
    if (q.status !== undefined) list = list.filter((m) => m.status === q.status);
    return {
      migrations: list.map((m) => ({
        id: m.id, status: m.status, instance_uuid: m.serverId, source_node: m.host, source_compute: m.host, dest_node: m.host,
        dest_compute: m.host, dest_host: '127.0.0.1', old_instance_type_id: m.oldFlavorInt, new_instance_type_id: m.newFlavorInt,
        created_at: novaTime(m.createdAt), updated_at: novaTime(m.updatedAt),
      })),
    };
  });
  app.get('/v2.1/os-availability-zone', async (req: Req) => (caller(req), { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: null }] }));
  app.get('/v2.1/os-availability-zone/detail', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-availability-zone:detail');
    const up = { available: true, active: true, updated_at: novaTime(new Date().toISOString().slice(0, 23) + '000') };
    return { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: { [hostname()]: { 'nova-compute': up } } }] };
  });
}

function wrappedAny(body: unknown): Json {
  if (!isObject(body)) throw new BadRequest('The request body must be a JSON object');
  return body;
}

function checkMetaCount(m: Record<string, string>): void {
  if (Object.keys(m).length > QUOTAS.metadata_items) {
    throw new ApiError(403, `Quota exceeded for metadata_items: at most ${QUOTAS.metadata_items} properties`);
  }
}

function checkSecurityGroups(v: unknown): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) throw new BadRequest("Invalid input for field/attribute security_groups: expected a list");
  for (const g of v) {
    if (!isObject(g) || g.name !== 'default') {
      throw new BadRequest(`Security group ${JSON.stringify(isObject(g) ? g.name : g)} not found: novabox has only "default"`);
    }
  }
}

function checkNetworks(v: unknown): void {
  if (v === undefined || v === 'none' || v === 'auto') return;
  if (!Array.isArray(v)) throw new BadRequest('Invalid input for field/attribute networks: expected a list, "auto" or "none"');
  for (const n of v) {
    if (!isObject(n)) throw new BadRequest('Invalid input for field/attribute networks: each entry must be an object');
    const uuid = n.uuid;
    if (typeof uuid !== 'string' || !isUuid(uuid)) throw new BadRequest(`Bad networks format: network uuid ${JSON.stringify(uuid)} is not in proper format`);
    throw new BadRequest(`Network ${uuid} could not be found.`);
  }
}

function newAdminPass(): string {
  const abc = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => abc[b % abc.length]).join('');
}

/** Nova: length -1/absent = all; else '\n'.join(log.split('\n')[-N:]). */
export function consoleTail(log: string, length: number): string {
  if (length < 0) return log;
  if (length === 0) return '';
  return log.split('\n').slice(-length).join('\n');
}

function diskStats(): { total: number; free: number } {
  try {
    const s = statfsSync(stateRoot());
    return { total: Math.floor((s.blocks * s.bsize) / 2 ** 30), free: Math.floor((s.bavail * s.bsize) / 2 ** 30) };
  } catch {
    return { total: 0, free: 0 };
  }
}

export { compactIPv6 };
export type { FastifyReply };
