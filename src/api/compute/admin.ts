/** Admin views of the one host: hypervisors, aggregates, migrations, availability zones. */
import type { FastifyInstance } from 'fastify';
import { statfsSync } from 'node:fs';
import { cpus, freemem, hostname, totalmem, uptime } from 'node:os';
import { BadRequest, NotFound } from '../../errors.js';
import type { ServerUsage } from '../../compute/servers.js';
import { ApiError } from '../faults.js';
import { statusOf as serverStatus } from '../../model/states.js';
import { stateRoot } from '../../util/paths.js';
import { requireAdmin } from '../request.js';
import type { Json } from '../validate.js';
import { novaTime } from './views.js';
import type { ComputeCtx, Req } from './context.js';

export function registerAdmin(app: FastifyInstance, ctx: ComputeCtx): void {
  const { compute, store, caller } = ctx;
  // ---- hypervisors, aggregates, migrations (admin)
  const hypervisor = (detail: boolean) => {
    const host = hostname();
    const all = compute.list({}, { ...compute.localCaller() });
    const running = all.filter((s) => serverStatus(s.vmState, s.taskState) !== 'SHUTOFF');
    const ramUsed = running.reduce((n, s) => n + (compute.flavorOfSafe(s)?.ramMiB ?? 0), 0);
    const vcpusUsed = running.reduce((n, s) => n + (compute.flavorOfSafe(s)?.vcpus ?? 0), 0);
    const base = { id: 1, hypervisor_hostname: host, state: 'up', status: 'enabled' };
    if (!detail) return base;
    const fs = diskStats();
    return {
      ...base,
      hypervisor_type: 'container',
      hypervisor_version: 1,
      host_ip: '127.0.0.1',
      cpu_info: JSON.stringify({ arch: process.arch, model: cpus()[0]?.model ?? '', topology: { cores: cpus().length } }),
      vcpus: cpus().length,
      vcpus_used: vcpusUsed,
      memory_mb: Math.floor(totalmem() / 2 ** 20),
      memory_mb_used: ramUsed,
      free_ram_mb: Math.floor(freemem() / 2 ** 20),
      local_gb: fs.total,
      local_gb_used: fs.total - fs.free,
      free_disk_gb: fs.free,
      disk_available_least: fs.free,
      current_workload: 0,
      running_vms: running.length,
      service: { host, id: 1, disabled_reason: null },
    };
  };
  app.get(
    '/v2.1/os-hypervisors',
    async (req: Req) => (requireAdmin(caller(req), 'os_compute_api:os-hypervisors:list'), { hypervisors: [hypervisor(false)] }),
  );
  app.get(
    '/v2.1/os-hypervisors/detail',
    async (req: Req) => (requireAdmin(caller(req), 'os_compute_api:os-hypervisors:list-detail'), { hypervisors: [hypervisor(true)] }),
  );
  app.get('/v2.1/os-hypervisors/statistics', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-hypervisors:statistics');
    const h = hypervisor(true) as Json;
    const keys = [
      'current_workload',
      'disk_available_least',
      'free_disk_gb',
      'free_ram_mb',
      'local_gb',
      'local_gb_used',
      'memory_mb',
      'memory_mb_used',
      'running_vms',
      'vcpus',
      'vcpus_used',
    ];
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
  // 2.1's forms: hypervisors whose hostname contains the pattern; with their servers
  const matching = (req: Req, policy: string) => {
    requireAdmin(caller(req), policy);
    const pattern = decodeURIComponent(req.params.id!);
    if (!hostname().includes(pattern)) throw new NotFound(`No hypervisor matching '${pattern}' could be found.`);
    return hypervisor(false);
  };
  app.get('/v2.1/os-hypervisors/:id/search', async (req: Req) => ({
    hypervisors: [matching(req, 'os_compute_api:os-hypervisors:search')],
  }));
  app.get('/v2.1/os-hypervisors/:id/servers', async (req: Req) => {
    const h = matching(req, 'os_compute_api:os-hypervisors:servers');
    const servers = compute.list({}, compute.localCaller()).filter((s) => s.host === hostname() || s.host === '');
    // Nova leaves "servers" out when the host has none
    return { hypervisors: [{ ...h, ...(servers.length ? { servers: servers.map((s) => ({ uuid: s.id, name: s.name })) } : {}) }] };
  });

  // ---- os-simple-tenant-usage: what each project's servers used in [start, end)
  const usageOf = (projectId: string, start: Date, end: Date, list: ServerUsage[], detailed: boolean) => {
    const r2 = (n: number) => n;
    const rows = list.map((u) => ({
      instance_id: u.server.id,
      name: u.server.name,
      hours: r2(u.hours),
      memory_mb: u.flavor?.ramMiB ?? 0,
      local_gb: u.flavor?.diskGiB ?? 0,
      vcpus: u.flavor?.vcpus ?? 0,
      tenant_id: projectId,
      flavor: u.flavor?.name ?? '',
      started_at: usageTime(u.server.launchedAt ?? u.server.createdAt),
      ended_at: u.endedAt === null ? null : usageTime(u.endedAt),
      state: u.server.deleted ? 'terminated' : u.server.vmState,
      uptime: u.uptimeSeconds,
    }));
    const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((n, r) => n + f(r), 0);
    return {
      tenant_id: projectId,
      start: usageTime(start.toISOString()),
      stop: usageTime(end.toISOString()),
      total_hours: sum((r) => r.hours),
      total_vcpus_usage: sum((r) => r.vcpus * r.hours),
      total_memory_mb_usage: sum((r) => r.memory_mb * r.hours),
      total_local_gb_usage: sum((r) => r.local_gb * r.hours),
      ...(detailed ? { server_usages: rows } : {}),
    };
  };
  const period = (req: Req): [Date, Date] => {
    const start = usageDate(req.query.start, 'start');
    const end = usageDate(req.query.end, 'end');
    if (start > end) throw new BadRequest('Invalid start time. The start time cannot occur after the end time.');
    return [start, end];
  };
  app.get('/v2.1/os-simple-tenant-usage', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-simple-tenant-usage:list');
    const [start, end] = period(req);
    const detailed = ['1', 'true', 'True'].includes(req.query.detailed ?? '');
    const byProject = new Map<string, ServerUsage[]>();
    for (const u of compute.usage(start, end)) byProject.set(u.server.projectId, [...(byProject.get(u.server.projectId) ?? []), u]);
    return { tenant_usages: [...byProject].map(([p, list]) => usageOf(p, start, end, list, detailed)) };
  });
  app.get('/v2.1/os-simple-tenant-usage/:id', async (req: Req) => {
    const c = caller(req);
    const projectId = req.params.id!;
    if (!c.isAdmin && projectId !== c.projectId)
      throw new ApiError(403, "Policy doesn't allow os_compute_api:os-simple-tenant-usage:show to be performed.");
    const [start, end] = period(req);
    const list = compute.usage(start, end, projectId);
    return { tenant_usage: list.length ? usageOf(projectId, start, end, list, true) : {} };
  });

  // ---- os-server-diagnostics (2.48's standard form): live figures of a running server
  app.get('/v2.1/servers/:id/diagnostics', async (req: Req) => {
    const c = caller(req);
    requireAdmin(c, 'os_compute_api:os-server-diagnostics');
    const s = compute.find(req.params.id!, c);
    const u = compute.usageOf(s);
    if (!u) throw new ApiError(409, `Cannot 'get_diagnostics' instance ${s.id} while it is in vm_state ${s.vmState}`);
    const f = compute.flavorOfSafe(s);
    const nics = Object.values(compute.addresses(s)).flat();
    return {
      state: 'running',
      driver: 'novabox',
      hypervisor: 'container',
      hypervisor_os: 'linux',
      uptime: u.uptime_seconds ?? 0,
      config_drive: false,
      num_cpus: f?.vcpus ?? 1,
      num_disks: 1,
      num_nics: nics.length,
      memory_details: {
        maximum: u.memory_limit_bytes === null ? (f?.ramMiB ?? 0) : Math.round(u.memory_limit_bytes / 2 ** 20),
        used: Math.round((u.memory_bytes ?? 0) / 2 ** 20),
      },
      cpu_details: [{ id: 0, time: Math.round((u.cpu_seconds ?? 0) * 1e9), utilisation: null }],
      disk_details: [
        { read_bytes: u.block_read_bytes, read_requests: null, write_bytes: u.block_write_bytes, write_requests: null, errors_count: null },
      ],
      nic_details: nics.map((n) => ({
        mac_address: n['OS-EXT-IPS-MAC:mac_addr'],
        rx_octets: u.net_rx_bytes,
        tx_octets: u.net_tx_bytes,
        rx_drop: null,
        rx_errors: null,
        rx_packets: null,
        rx_rate: null,
        tx_drop: null,
        tx_errors: null,
        tx_packets: null,
        tx_rate: null,
      })),
    };
  });

  app.get('/v2.1/os-aggregates', async (req: Req) => (caller(req), { aggregates: [] }));
  app.get('/v2.1/os-migrations', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-migrations:index');
    const q = req.query;
    let list = store.resizes.list({ serverId: q.instance_uuid });
    if (q.status !== undefined) list = list.filter((m) => m.status === q.status);
    if (q.migration_type !== undefined) list = list.filter((m) => m.kind === q.migration_type);
    if (q.source_compute !== undefined) list = list.filter((m) => m.host === q.source_compute);
    return {
      // a resize stays on this host; a migration (`server migrate`) names the target as it named itself
      migrations: list.map((m) => ({
        id: m.id,
        status: m.status,
        instance_uuid: m.serverId,
        source_node: m.host,
        source_compute: m.host,
        dest_node: m.kind === 'resize' ? m.host : m.destCompute,
        dest_compute: m.kind === 'resize' ? m.host : m.destCompute,
        dest_host: m.kind === 'resize' ? '127.0.0.1' : m.destHost,
        old_instance_type_id: m.oldFlavorInt,
        new_instance_type_id: m.newFlavorInt,
        created_at: novaTime(m.createdAt),
        updated_at: novaTime(m.updatedAt),
      })),
    };
  });
  app.get(
    '/v2.1/os-availability-zone',
    async (req: Req) => (caller(req), { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: null }] }),
  );
  app.get('/v2.1/os-availability-zone/detail', async (req: Req) => {
    requireAdmin(caller(req), 'os_compute_api:os-availability-zone:detail');
    const up = { available: true, active: true, updated_at: novaTime(new Date().toISOString().slice(0, 23) + '000') };
    return {
      availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: { [hostname()]: { 'nova-compute': up } } }],
    };
  });
}

/** Nova's usage times: ISO 8601 with microseconds and no zone. */
function usageTime(iso: string): string {
  return iso
    .replace(/Z$/, '')
    .padEnd(26, '0')
    .slice(0, 26)
    .replace(/^(.{19})0{7}$/, '$1.000000');
}

/** Nova's _parse_datetime: absent = now; %Y-%m-%dT%H:%M:%S[.%f] or with a space (UTC). */
function usageDate(v: string | undefined, field: string): Date {
  if (v === undefined) return new Date();
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,6})?Z?$/.exec(v.trim());
  const d = m ? new Date(`${m[1]}T${m[2]}${(m[3] ?? '').slice(0, 4)}Z`) : undefined;
  if (!d || Number.isNaN(d.getTime())) throw new BadRequest(`Invalid ${field} time.`);
  return d;
}

function diskStats(): { total: number; free: number } {
  try {
    const s = statfsSync(stateRoot());
    return { total: Math.floor((s.blocks * s.bsize) / 2 ** 30), free: Math.floor((s.bavail * s.bsize) / 2 ** 30) };
  } catch {
    return { total: 0, free: 0 };
  }
}
