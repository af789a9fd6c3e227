/**
 * Nova 2.1's JSON for servers, flavors, keypairs, instance actions, limits and images:
 * exactly the fields the 2.1 schemas allow (tempest rejects any other). Pure.
 */
import { createHash } from 'node:crypto';
import { statusOf } from '../../model/states.js';
import type { Server, Flavor, Keypair, ActionEvent, InstanceAction } from '../../model/records.js';
import type { NovaAddress } from '../../compute/addresses.js';
import type { GlanceImage } from '../image/catalog.js';
import { withoutHostPaths } from '../faults.js';

/** The oldest microversion: what a request without a version header gets. */
export const MICROVERSION = '2.1';
/**
 * The newest microversion whose changes novabox implements: 2.2 (key pairs have a `type`,
 * ssh or x509). Above it is Nova's 406.
 */
export const MAX_MICROVERSION = '2.2';

/** a >= b for microversions "2.N" */
export function versionAtLeast(a: string, b: string): boolean {
  const [am, an] = a.split('.').map(Number) as [number, number];
  const [bm, bn] = b.split('.').map(Number) as [number, number];
  return am > bm || (am === bm && an >= bn);
}

/** Nova writes `YYYY-MM-DDTHH:MM:SSZ`; the store keeps microseconds without a zone. */
export function novaTime(stored: string): string;
export function novaTime(stored: string | null): string | null;
export function novaTime(stored: string | null): string | null {
  return stored === null ? null : `${stored.slice(0, 19)}Z`;
}

export function versionDoc(base: string, id: 'v2.0' | 'v2.1') {
  return id === 'v2.0'
    ? {
        id,
        status: 'SUPPORTED',
        version: '',
        min_version: '',
        updated: '2011-01-21T11:33:21Z',
        links: [{ rel: 'self', href: `${base}/compute/v2/` }],
      }
    : {
        id,
        status: 'CURRENT',
        version: MAX_MICROVERSION,
        min_version: MICROVERSION,
        updated: '2013-07-23T11:33:21Z',
        links: [{ rel: 'self', href: `${base}/compute/v2.1/` }],
      };
}

export function versionSingle(base: string, id: 'v2.0' | 'v2.1') {
  return {
    ...versionDoc(base, id),
    'media-types': [{ base: 'application/json', type: `application/vnd.openstack.compute+json;version=${id === 'v2.0' ? '2' : '2.1'}` }],
  };
}

const links = (base: string, kind: string, id: string) => [
  { rel: 'self', href: `${base}/compute/v2.1/${kind}/${id}` },
  { rel: 'bookmark', href: `${base}/compute/${kind}/${id}` },
];

export interface ServerViewContext {
  base: string;
  isAdmin: boolean;
  imageId: string;
  addresses: Record<string, NovaAddress[]>;
  /** ids of its volumes (os-extended-volumes) */
  volumeIds?: string[];
}

function hostId(s: Server): string {
  return s.host
    ? createHash('sha224')
        .update(s.projectId + s.host)
        .digest('hex')
    : '';
}

const PROGRESS_STATES = new Set(['ACTIVE', 'BUILD', 'REBUILD', 'RESIZE', 'VERIFY_RESIZE']);

/** The basic view (PUT /servers/{id}, rebuild): no OS-EXT-*, key_name, security groups. */
export function serverBasic(s: Server, c: ServerViewContext): Record<string, unknown> {
  const status = statusOf(s.vmState, s.taskState);
  const v: Record<string, unknown> = {
    id: s.id,
    name: s.name,
    status,
    tenant_id: s.projectId,
    user_id: s.userId,
    metadata: { ...s.metadata },
    hostId: hostId(s),
    image: { id: c.imageId, links: [{ rel: 'bookmark', href: `${c.base}/compute/images/${c.imageId}` }] },
    flavor: { id: s.flavorId, links: [{ rel: 'bookmark', href: `${c.base}/compute/flavors/${s.flavorId}` }] },
    created: novaTime(s.createdAt),
    updated: novaTime(s.updatedAt),
    addresses: Object.fromEntries(
      Object.entries(c.addresses).map(([net, list]) => [net, list.map((a) => ({ version: a.version, addr: a.addr }))]),
    ),
    accessIPv4: s.accessIpv4,
    accessIPv6: s.accessIpv6,
    links: links(c.base, 'servers', s.id),
    'OS-DCF:diskConfig': 'MANUAL',
  };
  if (PROGRESS_STATES.has(status)) v.progress = status === 'ACTIVE' ? 100 : 0;
  if (s.fault && (status === 'ERROR' || status === 'DELETED'))
    v.fault = { ...s.fault, message: withoutHostPaths(s.fault.message), created: novaTime(s.fault.created) };
  return v;
}

/** GET /servers/{id} and /servers/detail items. */
export function serverDetail(s: Server, c: ServerViewContext): Record<string, unknown> {
  const v = serverBasic(s, c);
  v.addresses = c.addresses;
  Object.assign(v, {
    key_name: s.keyName,
    security_groups: [{ name: 'default' }],
    'OS-EXT-AZ:availability_zone': 'nova',
    'OS-SRV-USG:launched_at': s.launchedAt,
    'OS-SRV-USG:terminated_at': s.terminatedAt,
    'OS-EXT-STS:vm_state': s.vmState,
    'OS-EXT-STS:task_state': s.taskState,
    'OS-EXT-STS:power_state': s.powerState,
    'os-extended-volumes:volumes_attached': (c.volumeIds ?? []).map((id) => ({ id, delete_on_termination: false })),
    config_drive: s.configDrive ? 'True' : '',
  });
  if (c.isAdmin) {
    v['OS-EXT-SRV-ATTR:host'] = s.host || null;
    v['OS-EXT-SRV-ATTR:hypervisor_hostname'] = s.host || null;
    v['OS-EXT-SRV-ATTR:instance_name'] = `instance-${s.id.slice(0, 8)}`;
  }
  return v;
}

export function serverBrief(s: Server, base: string) {
  return { id: s.id, name: s.name, links: links(base, 'servers', s.id) };
}

export function flavorBrief(f: Flavor, base: string) {
  return { id: f.id, name: f.name, links: links(base, 'flavors', f.id) };
}

export function flavorDetail(f: Flavor, base: string) {
  return {
    id: f.id,
    name: f.name,
    ram: f.ramMiB,
    vcpus: f.vcpus,
    disk: f.diskGiB,
    swap: f.swapMiB === 0 ? '' : f.swapMiB,
    'OS-FLV-EXT-DATA:ephemeral': f.ephemeralGiB,
    'OS-FLV-DISABLED:disabled': f.disabled,
    'os-flavor-access:is_public': f.isPublic,
    rxtx_factor: f.rxtxFactor,
    links: links(base, 'flavors', f.id),
  };
}

/** From 2.2 a key pair has its `type`. */
export function keypairBrief(k: Keypair, version = MICROVERSION) {
  return { name: k.name, public_key: k.publicKey, fingerprint: k.fingerprint, ...(versionAtLeast(version, '2.2') ? { type: k.type } : {}) };
}

export function keypairShow(k: Keypair, version = MICROVERSION) {
  return {
    ...keypairBrief(k, version),
    user_id: k.userId,
    deleted: false,
    created_at: novaTime(k.createdAt),
    updated_at: null,
    deleted_at: null,
    id: k.id,
  };
}

export function actionView(a: InstanceAction, serverId: string) {
  return {
    action: a.action,
    request_id: a.requestId,
    user_id: a.userId,
    project_id: a.projectId,
    start_time: novaTime(a.startTime),
    message: a.message,
    instance_uuid: serverId,
  };
}

export function eventView(e: ActionEvent) {
  const v: Record<string, unknown> = {
    event: e.event,
    start_time: novaTime(e.startTime),
    finish_time: novaTime(e.finishTime),
    result: e.result,
  };
  if (e.traceback !== null) v.traceback = e.traceback;
  return v;
}

/** Glance status → the compute image API's. */
export function computeImageStatus(status: string): string {
  switch (status) {
    case 'queued':
    case 'saving':
      return 'SAVING';
    case 'active':
      return 'ACTIVE';
    case 'killed':
      return 'ERROR';
    case 'deleted':
      return 'DELETED';
    default:
      return 'UNKNOWN';
  }
}

export function computeImage(i: GlanceImage, base: string, detail: boolean) {
  const l = [
    ...links(base, 'images', i.id),
    { rel: 'alternate', type: 'application/vnd.openstack.image', href: `${base}/image/v2/images/${i.id}` },
  ];
  if (!detail) return { id: i.id, name: i.name, links: l };
  const v: Record<string, unknown> = {
    id: i.id,
    name: i.name,
    status: computeImageStatus(i.status),
    created: novaTime(i.createdAt),
    updated: novaTime(i.updatedAt),
    minDisk: i.minDisk,
    minRam: i.minRam,
    progress: i.status === 'active' ? 100 : i.status === 'saving' ? 50 : 25,
    metadata: { ...i.properties },
    links: l,
    'OS-EXT-IMG-SIZE:size': i.size,
    'OS-DCF:diskConfig': 'MANUAL',
  };
  const server = i.properties.instance_uuid;
  if (server) v.server = { id: server, links: links(base, 'servers', server) };
  return v;
}
