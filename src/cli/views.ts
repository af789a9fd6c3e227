/** How servers and flavors read on the command line (the openstack client's field names). */
import type { Server, Flavor } from '../model/records.js';
import { statusOf } from '../model/states.js';
import { networksColumn, networksOf, type NovaAddress } from '../compute/addresses.js';

/** As the openstack client prints OS-EXT-STS:power_state. */
const POWER_STATE_NAMES: Record<number, string> = {
  0: 'NOSTATE',
  1: 'Running',
  3: 'Paused',
  4: 'Shutdown',
  6: 'Crashed',
  7: 'Suspended',
};

function props(m: Record<string, string>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k}='${v}'`)
    .join(', ');
}

/**
 * `server list`: the openstack client's columns. Networks is a DictListColumn there:
 * `{"novabox": ["10.89.0.2"]}` in json and yaml, `novabox=10.89.0.2` otherwise.
 */
export function serverRow(
  s: Server,
  flavors: Map<string, Flavor>,
  addresses: Record<string, NovaAddress[]> = {},
  format = 'table',
): Record<string, unknown> {
  const f = flavors.get(s.flavorId);
  return {
    ID: s.id,
    Name: s.name,
    Status: statusOf(s.vmState, s.taskState),
    'Task State': s.taskState,
    'Power State': POWER_STATE_NAMES[s.powerState] ?? String(s.powerState),
    Networks: format === 'json' || format === 'yaml' ? networksOf(addresses) : networksColumn(addresses),
    Image: s.imageName,
    'Image Name': s.imageName,
    'Image ID': s.imageRef,
    Flavor: f?.name ?? s.flavorId,
    'Flavor Name': f?.name ?? '',
    'Flavor ID': s.flavorId,
    'Availability Zone': 'nova',
    Host: s.host,
    Properties: props(s.metadata),
  };
}

export const SERVER_LIST_COLUMNS = ['ID', 'Name', 'Status', 'Networks', 'Image', 'Flavor'];
export const SERVER_LIST_LONG_COLUMNS = [
  'ID',
  'Name',
  'Status',
  'Task State',
  'Power State',
  'Networks',
  'Image Name',
  'Image ID',
  'Flavor Name',
  'Flavor ID',
  'Availability Zone',
  'Host',
  'Properties',
];

/**
 * `addresses` as the openstack client prints it: Nova's structure for json and yaml
 * (machine readable), `novabox=10.89.0.2` in a table, value or shell output.
 */
export function addressesField(addresses: Record<string, NovaAddress[]>, format: string): Record<string, NovaAddress[]> | string {
  return format === 'json' || format === 'yaml' ? addresses : networksColumn(addresses);
}

export function serverShow(
  s: Server,
  f: Flavor | undefined,
  pid: number | null,
  addresses: Record<string, NovaAddress[]> | string = {},
  idmap?: string,
  usage?: Record<string, number | null> | null,
  ports?: string[],
  volumes?: { id: string; name: string; path: string; read_only: boolean }[],
): Record<string, unknown> {
  const view: Record<string, unknown> = {
    'OS-DCF:diskConfig': 'MANUAL',
    'OS-EXT-AZ:availability_zone': 'nova',
    'OS-EXT-SRV-ATTR:host': s.host,
    'OS-EXT-SRV-ATTR:hypervisor_hostname': s.host,
    'OS-EXT-STS:power_state': POWER_STATE_NAMES[s.powerState] ?? String(s.powerState),
    'OS-EXT-STS:task_state': s.taskState,
    'OS-EXT-STS:vm_state': s.vmState,
    'OS-SRV-USG:launched_at': s.launchedAt,
    'OS-SRV-USG:terminated_at': s.terminatedAt,
    accessIPv4: s.accessIpv4,
    accessIPv6: s.accessIpv6,
    addresses,
    config_drive: s.configDrive ? 'True' : '',
    created: s.createdAt,
    flavor: f ? `${f.name} (${f.id})` : s.flavorId,
    id: s.id,
    // its id range as Incus shows volatile.idmap (ComputeService.idmapField)
    ...(idmap === undefined ? {} : { idmap }),
    image: `${s.imageName} (${s.imageRef})`,
    // novabox's: pid 1, novabox-init or the image's systemd (server create --init)
    init: s.init,
    key_name: s.keyName,
    locked: s.locked,
    name: s.name,
    pid,
    // published ports, `0.0.0.0:8080->80/tcp` (server create --publish)
    ...(ports === undefined ? {} : { ports }),
    progress: 0,
    project_id: s.projectId,
    properties: { ...s.metadata },
    // novabox's: the restart policy and the restarts in a row so far (server create --restart)
    restart: s.restart === 'no' ? 'no' : `${s.restart} (${s.restartCount} in a row)`,
    status: statusOf(s.vmState, s.taskState),
    updated: s.updatedAt,
    // live figures from its cgroup and veth (server show only; `server stats` for CPU %)
    ...(usage === undefined ? {} : { usage }),
    user_id: s.userId,
    // named volumes (server create --volume, server add volume)
    ...(volumes === undefined ? {} : { volumes_attached: volumes }),
  };
  if (s.fault) view.fault = s.fault;
  return view;
}

export function flavorView(f: Flavor): Record<string, unknown> {
  return {
    'OS-FLV-DISABLED:disabled': f.disabled,
    'OS-FLV-EXT-DATA:ephemeral': f.ephemeralGiB,
    description: null,
    disk: f.diskGiB,
    id: f.id,
    name: f.name,
    'os-flavor-access:is_public': f.isPublic,
    properties: { ...f.extraSpecs },
    ram: f.ramMiB,
    rxtx_factor: f.rxtxFactor,
    swap: f.swapMiB || '',
    vcpus: f.vcpus,
  };
}

export function flavorRow(f: Flavor): Record<string, unknown> {
  return {
    ID: f.id,
    Name: f.name,
    RAM: f.ramMiB,
    Disk: f.diskGiB,
    Ephemeral: f.ephemeralGiB,
    VCPUs: f.vcpus,
    'Is Public': f.isPublic,
    Swap: f.swapMiB || '',
    'RXTX Factor': f.rxtxFactor,
    Properties: props(f.extraSpecs),
  };
}
