/** Admin views of the one host: hypervisors, aggregates, migrations, availability zones. */
import type { FastifyInstance } from 'fastify';
import { statfsSync } from 'node:fs';
import { cpus, freemem, hostname, totalmem, uptime } from 'node:os';
import { NotFound } from '../../errors.js';
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

function diskStats(): { total: number; free: number } {
  try {
    const s = statfsSync(stateRoot());
    return { total: Math.floor((s.blocks * s.bsize) / 2 ** 30), free: Math.floor((s.bavail * s.bsize) / 2 ** 30) };
  } catch {
    return { total: 0, free: 0 };
  }
}
