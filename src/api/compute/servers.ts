/** Nova servers: list, show, create (202, BUILD), update, delete, metadata, addresses, instance actions. */
import type { FastifyInstance } from 'fastify';
import { KeypairService } from '../../compute/keypairs.js';
import { checkMountPath } from '../../compute/volumes.js';
import { decodeUserData } from '../../compute/instance-data.js';
import { BadRequest, NotFound } from '../../errors.js';
import { trace } from '../../util/trace.js';
import { ApiError } from '../faults.js';
import { baseUrl, requireAdmin } from '../request.js';
import { bool, int, ipAddress, isObject, isUuid, metadata, onlyKeys, refId, str, wrapped, type Json } from '../validate.js';
import { imageIdOfServer } from '../image/catalog.js';
import { actionView, eventView, serverBasic, serverBrief, serverDetail } from './views.js';
import { QUOTAS } from './limits.js';
import { type ComputeCtx, type Req, imageOfRef, inBackground, wrappedAny, newAdminPass, checkMetaCount } from './context.js';
import { quote } from '../../util/text.js';

export function registerServers(app: FastifyInstance, ctx: ComputeCtx): void {
  const { deps, compute, store, log, blocking, caller, server, viewCtx, flavorFor } = ctx;
  const keypairs = new KeypairService(store);
  app.get('/v2.1/servers', async (req: Req) => listServers(req, false));
  app.get('/v2.1/servers/detail', async (req: Req) => listServers(req, true));

  function listServers(req: Req, detail: boolean) {
    const c = caller(req);
    const q = req.query;
    const allTenants = q.all_tenants !== undefined && !['0', 'false', 'False'].includes(q.all_tenants);
    if (allTenants) requireAdmin(c, 'os_compute_api:servers:detail:get_all_tenants');
    const projectId = allTenants ? (q.tenant_id ?? q.project_id) : c.projectId;
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
    if (q.ip !== undefined) {
      let re: RegExp;
      try {
        re = new RegExp(q.ip);
      } catch {
        throw new BadRequest(`Invalid input for query parameter ip: "${q.ip}" is not a regular expression`);
      }
      list = list.filter((s) => store.leases.ofOwner(s.id).some((l) => !l.address.includes(':') && re.test(l.address)));
    }
    if (q.host !== undefined) {
      requireAdmin(c, 'os_compute_api:servers:index:get_all_tenants');
      list = list.filter((s) => s.host === q.host);
    }
    list.reverse(); // newest first, as Nova
    if (q.marker !== undefined) {
      const i = list.findIndex((s) => s.id === q.marker);
      if (i >= 0) list = list.slice(i + 1);
      else {
        // Nova still resolves a deleted (or filtered-out) server as a marker: what comes after its place
        const m = store.servers.getAny(q.marker, c.isAdmin ? undefined : c.projectId);
        if (!m) throw new BadRequest(`marker [${q.marker}] not found`);
        const before = (s: { createdAt: string; id: string }) => s.createdAt < m.createdAt || (s.createdAt === m.createdAt && s.id < m.id);
        list = list.filter(before);
      }
    }
    const base = baseUrl(req);
    const body: Json = {};
    if (limit !== undefined && list.length > limit) {
      list = list.slice(0, limit);
      const last = list.at(-1);
      if (last)
        body.servers_links = [
          { rel: 'next', href: `${base}/compute/v2.1/servers${detail ? '/detail' : ''}?limit=${limit}&marker=${last.id}` },
        ];
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
    onlyKeys(b, 'server', CREATE_KEYS);
    refuseUnhonoured(b);
    const name = str(b, 'name', { required: true, min: 1, max: 255 })!;
    if (name.trim() === '')
      throw new BadRequest('Invalid input for field/attribute name. An empty name or one of only white space is not allowed');
    const imageRef = str(b, 'imageRef', { required: true, min: 1 })!;
    const image = imageOfRef(deps, imageRef, c);
    if (image.status !== 'active') throw new BadRequest(`Image ${image.id} is not active.`);
    const flavorRef = b.flavorRef;
    if (typeof flavorRef !== 'string' && typeof flavorRef !== 'number')
      throw new BadRequest("Invalid input for field/attribute flavorRef. 'flavorRef' is a required property");
    const flavor = flavorFor(String(flavorRef), c, true);
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
    const userData = str(b, 'user_data', { nullable: true }) ?? undefined;
    decodeUserData(userData); // Nova's 400 before anything is made
    const configDrive = bool(b, 'config_drive');
    const v4 = ipAddress(b, 'accessIPv4', 4);
    const v6 = ipAddress(b, 'accessIPv6', 6);
    const adminPass = str(b, 'adminPass') ?? newAdminPass();
    checkSecurityGroups(b.security_groups);
    const nets = networksOf(b.networks, maxCount);
    const az = str(b, 'availability_zone', { nullable: true });
    if (az !== undefined && az !== 'nova')
      throw new BadRequest(`Invalid input for field/attribute availability_zone: "${az}" does not exist (only "nova")`);
    const used = store.servers.count(c.projectId);
    if (QUOTAS.instances >= 0 && used + maxCount > QUOTAS.instances) {
      throw new ApiError(
        403,
        `Quota exceeded for instances: Requested ${maxCount}, but already used ${used} of ${QUOTAS.instances} instances`,
      );
    }
    const group = schedulerGroup(req.body);
    const volumes = bdmVolumes(b.block_device_mapping_v2, (id) => {
      const v = compute.volumes.list().find((x) => x.id === id && (x.projectId === c.projectId || c.isAdmin));
      return v && { status: compute.volumes.statusOf(v), holder: compute.volumes.holder(v) };
    });
    if (volumes.length && maxCount > 1)
      throw new BadRequest('Block Device Mapping is Invalid: a volume can be attached to one server only, not with max_count > 1');
    trace('create request checked');
    const { servers, started } = await compute.createRecorded(
      {
        name,
        image: image.id,
        flavor: flavor.id,
        properties: meta,
        keyName: keyName ?? undefined,
        userData,
        configDrive,
        count: maxCount,
        accessIpv4: v4,
        accessIpv6: v6,
        ...nets,
        group,
        volumes,
      },
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
    if (name !== undefined && name.trim() === '')
      throw new BadRequest('Invalid input for field/attribute name. An empty name is not allowed');
    const patched = compute.rename(
      s.id,
      { name, accessIpv4: ipAddress(b, 'accessIPv4', 4), accessIpv6: ipAddress(b, 'accessIPv6', 6) },
      caller(req),
    );
    return { server: serverBasic(patched, viewCtx(req, patched)) };
  });

  app.delete('/v2.1/servers/:id', async (req: Req, reply) => {
    const s = server(req);
    await blocking.run({ op: 'delete', id: s.id, caller: caller(req) });
    return reply.code(204).send();
  });

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
    if (Object.keys(m).length !== 1 || !Object.hasOwn(m, k))
      throw new BadRequest('Request body and URI mismatch: "meta" must hold exactly the key of the URL');
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

  // ---- addresses: the basic form, {version, addr}
  const ips = (req: Req) => {
    const s = server(req);
    return Object.fromEntries(
      Object.entries(viewCtx(req, s).addresses).map(([net, l]) => [net, l.map((a) => ({ version: a.version, addr: a.addr }))]),
    );
  };
  app.get('/v2.1/servers/:id/ips', async (req: Req) => ({ addresses: ips(req) }));
  app.get('/v2.1/servers/:id/ips/:network', async (req: Req) => {
    const all = ips(req);
    const net = req.params.network!;
    if (!Object.hasOwn(all, net)) throw new NotFound(`There is no such network: ${net}`);
    return { [net]: all[net] };
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
}

/** The `group` scheduler hint (os:scheduler_hints, beside "server"): a server group's id. */
/** Nova 2.1's server create schema (additionalProperties: false); the same words for anything else. */
const CREATE_KEYS = [
  'name',
  'imageRef',
  'flavorRef',
  'adminPass',
  'metadata',
  'networks',
  'OS-DCF:diskConfig',
  'accessIPv4',
  'accessIPv6',
  'personality',
  'key_name',
  'user_data',
  'availability_zone',
  'block_device_mapping',
  'block_device_mapping_v2',
  'security_groups',
  'config_drive',
  'min_count',
  'max_count',
  'return_reservation_id',
];

/**
 * Fields Nova takes that a container cannot honour: refused with a 400, never dropped.
 * adminPass is echoed, as Nova does, and not set (as Nova's libvirt driver without
 * inject_password); diskConfig has no partition to resize.
 */
function refuseUnhonoured(b: Json): void {
  const p = b.personality;
  if (p !== undefined && p !== null && !(Array.isArray(p) && p.length === 0))
    throw new BadRequest(
      'Invalid input for field/attribute personality: novabox does not inject personality files; pass them in user_data',
    );
  const v1 = b.block_device_mapping;
  if (v1 !== undefined && v1 !== null && !(Array.isArray(v1) && v1.length === 0))
    throw new BadRequest(
      'Invalid input for field/attribute block_device_mapping: novabox servers have no block devices (boot from an image; attach volumes with block_device_mapping_v2)',
    );
  const dc = b['OS-DCF:diskConfig'];
  if (dc !== undefined && dc !== 'MANUAL' && dc !== 'AUTO')
    throw new BadRequest(`Invalid input for field/attribute OS-DCF:diskConfig. Value: ${quote(dc)}. It is not one of 'AUTO', 'MANUAL'`);
}

const BDM_KEYS = [
  'source_type',
  'destination_type',
  'uuid',
  'device_name',
  'boot_index',
  'delete_on_termination',
  'tag',
  'device_type',
  'disk_bus',
  'guest_format',
  'volume_size',
  'volume_type',
  'no_device',
];

/**
 * Nova's `block_device_mapping_v2` at create, where it fits novabox's volumes: entries
 * with `source_type` and `destination_type` "volume" name a volume (`uuid`) to attach, at
 * `device_name`, which is the path inside the server (as os-volume_attachments' `device`:
 * a volume is a filesystem mounted in the server, not a block device). Anything else (a
 * boot volume, an image, snapshot or blank source, a local disk, delete_on_termination)
 * is Nova's 400 with the reason. Returns `uuid:/path` for the create's volumes.
 */
export function bdmVolumes(v: unknown, volume: (id: string) => { status: string; holder: string } | undefined): string[] {
  if (v === undefined || v === null) return [];
  const field = 'Invalid input for field/attribute block_device_mapping_v2';
  if (!Array.isArray(v)) throw new BadRequest(`${field}: expected a list`);
  const out: string[] = [];
  for (const e of v) {
    if (!isObject(e)) throw new BadRequest(`${field}: each entry must be an object`);
    for (const k of Object.keys(e)) {
      if (!BDM_KEYS.includes(k)) throw new BadRequest(`${field}: Additional properties are not allowed ('${k}' was unexpected)`);
    }
    const src = e.source_type ?? null;
    const dst = e.destination_type ?? (src === 'volume' ? 'volume' : null);
    if (src !== 'volume' || dst !== 'volume') {
      throw new BadRequest(
        `Block Device Mapping is Invalid: source_type ${quote(src)} with destination_type ${quote(dst)} is not supported: novabox servers boot from imageRef and attach existing volumes only (source_type and destination_type "volume")`,
      );
    }
    const boot = e.boot_index;
    if (boot !== undefined && boot !== null && boot !== 'none' && !(Number(boot) < 0)) {
      throw new BadRequest(
        `Block Device Mapping is Invalid: a volume cannot be the boot device (boot_index ${quote(boot)}): novabox servers boot from imageRef; give boot_index -1 or none`,
      );
    }
    if (e.delete_on_termination === true || e.delete_on_termination === 'true' || e.delete_on_termination === 'True') {
      throw new BadRequest(
        'Block Device Mapping is Invalid: delete_on_termination true is not supported: a novabox volume outlives its server (delete it on its own)',
      );
    }
    if (e.no_device) throw new BadRequest('Block Device Mapping is Invalid: no_device is not supported');
    if (typeof e.uuid !== 'string' || !isUuid(e.uuid))
      throw new BadRequest(`Invalid input for field/attribute uuid. Value: ${JSON.stringify(e.uuid ?? null)}. It is not a 'uuid'`);
    const path = e.device_name;
    if (typeof path !== 'string' || !path.startsWith('/') || path === '/dev' || path.startsWith('/dev/')) {
      throw new BadRequest(
        `Block Device Mapping is Invalid: device_name ${quote(path ?? null)} must be the absolute path the volume is mounted at inside the server (e.g. /srv/data), not a device: novabox volumes are filesystems`,
      );
    }
    try {
      checkMountPath(path, `device_name ${quote(path)}`);
    } catch (err) {
      throw new BadRequest(`Block Device Mapping is Invalid: ${(err as Error).message}`);
    }
    const found = volume(e.uuid);
    if (!found) throw new BadRequest(`Block Device Mapping is Invalid: failed to get volume ${e.uuid}.`);
    if (found.status !== 'available')
      throw new BadRequest(`Invalid volume: volume ${e.uuid} status must be available, but it is ${found.status} (${found.holder})`);
    out.push(`${e.uuid}:${path}`);
  }
  return out;
}

function schedulerGroup(body: unknown): string | undefined {
  if (!isObject(body)) return undefined;
  const hints = body['os:scheduler_hints'] ?? body['OS-SCH-HNT:scheduler_hints'];
  if (hints === undefined || hints === null) return undefined;
  if (!isObject(hints)) throw new BadRequest('Invalid input for field/attribute os:scheduler_hints: it must be an object');
  // one host: same_host always holds; any other hint would be dropped, so it is refused
  for (const k of Object.keys(hints))
    if (k !== 'group' && k !== 'same_host')
      throw new BadRequest(
        `Invalid input for field/attribute os:scheduler_hints: novabox has one host and cannot honour the hint ${quote(k)}`,
      );
  const g = hints.group;
  if (g === undefined) return undefined;
  if (typeof g !== 'string' || !isUuid(g))
    throw new BadRequest(`Invalid input for field/attribute group. Value: ${JSON.stringify(g)}. It is not a 'uuid'`);
  return g;
}

function checkSecurityGroups(v: unknown): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) throw new BadRequest('Invalid input for field/attribute security_groups: expected a list');
  for (const g of v) {
    if (!isObject(g) || g.name !== 'default') {
      throw new BadRequest(`Security group ${quote(isObject(g) ? g.name : g)} not found: novabox has only "default"`);
    }
  }
}

/**
 * Nova's `networks` at 2.1: absent or "auto" = the bridge network, "none" = no network,
 * or a list of one entry with a `fixed_ip` on it (`--nic v4-fixed-ip=`). There is no
 * Neutron: a network uuid names nothing.
 */
function networksOf(v: unknown, count: number): { network: 'none' | 'novabox'; fixedIp?: string } {
  if (v === undefined || v === 'auto') return { network: 'novabox' };
  if (v === 'none') return { network: 'none' };
  if (!Array.isArray(v)) throw new BadRequest('Invalid input for field/attribute networks: expected a list, "auto" or "none"');
  if (v.length === 0) return { network: 'novabox' };
  if (v.length > 1)
    throw new BadRequest('Invalid input for field/attribute networks: novabox has one network ("novabox"): give at most one entry');
  const n = v[0];
  if (!isObject(n)) throw new BadRequest('Invalid input for field/attribute networks: each entry must be an object');
  if (n.uuid !== undefined || n.port !== undefined) {
    const id = n.uuid ?? n.port;
    if (typeof id !== 'string' || !isUuid(id))
      throw new BadRequest(`Bad networks format: network uuid ${quote(id)} is not in proper format`);
    throw new BadRequest(`Network ${id} could not be found.`);
  }
  const ip = ipAddress(n, 'fixed_ip', 4);
  if (ip === undefined || ip === '') return { network: 'novabox' };
  if (count > 1)
    throw new BadRequest('Invalid input for field/attribute networks: a fixed_ip is for one server, not min_count/max_count > 1');
  return { network: 'novabox', fixedIp: ip };
}
