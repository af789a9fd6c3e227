/**
 * `server stats`: live usage of running servers from their cgroups (CPU, memory, pids,
 * block I/O) and the host end of their veth (network), as `podman stats` shows it. CPU %
 * is the CPU time used between two samples over the wall time between them (100 % = one
 * CPU busy), so one answer samples twice: the first sample reads cpu.stat alone, the
 * second everything.
 */
import type { CgroupHandle, CgroupStats } from '../runtime/cgroups/types.js';
import { hostIfName } from '../runtime/network/names.js';
import { allVethTraffic, type Traffic } from '../runtime/network/counters.js';

export interface ServerStats {
  id: string;
  name: string;
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes: number | null;
  memoryPercent: number | null;
  pids: number;
  netRxBytes: number | null;
  netTxBytes: number | null;
  blockReadBytes: number | null;
  blockWriteBytes: number | null;
}

export interface StatsSample {
  atUs: number;
  cg: CgroupStats;
  net: { rxBytes: number; txBytes: number } | null;
}

/** What the first of two samples needs: the CPU time and when it was read. */
export interface CpuSample {
  atUs: number;
  cg: Pick<CgroupStats, 'cpuUsageUs'>;
}

export interface StatsTarget {
  id: string;
  name: string;
  network: string;
  cgroup: CgroupHandle;
}

/**
 * One server's figures now. `net`: the host's interface counters (allVethTraffic, one read
 * for every server of a sample); read here when not given.
 */
export function sample(t: StatsTarget, net?: Map<string, Traffic>): StatsSample | null {
  try {
    const cg = t.cgroup.stats();
    const counters = t.network === 'novabox' ? ((net ?? allVethTraffic()).get(hostIfName(t.id)) ?? null) : null;
    return { atUs: Number(process.hrtime.bigint() / 1000n), cg, net: counters };
  } catch {
    return null; // stopped between the list and the read
  }
}

/** The CPU time alone (one file), for the start of a CPU % window; null when stopped. */
export function cpuSample(t: StatsTarget): CpuSample | null {
  try {
    const cpuUsageUs = t.cgroup.cpuUsageUs();
    return { atUs: Number(process.hrtime.bigint() / 1000n), cg: { cpuUsageUs } };
  } catch {
    return null;
  }
}

/** The figures from two samples of one server (pure). */
export function toServerStats(t: Pick<StatsTarget, 'id' | 'name'>, before: CpuSample, after: StatsSample): ServerStats {
  const dt = after.atUs - before.atUs;
  const cpu = dt > 0 ? ((after.cg.cpuUsageUs - before.cg.cpuUsageUs) / dt) * 100 : 0;
  const limit = after.cg.memoryLimitBytes ?? null;
  return {
    id: t.id,
    name: t.name,
    cpuPercent: Math.max(0, Math.round(cpu * 100) / 100),
    memoryBytes: after.cg.memoryCurrentBytes,
    memoryLimitBytes: limit,
    memoryPercent: limit ? Math.round((after.cg.memoryCurrentBytes / limit) * 10000) / 100 : null,
    pids: after.cg.pidsCurrent,
    netRxBytes: after.net?.rxBytes ?? null,
    netTxBytes: after.net?.txBytes ?? null,
    blockReadBytes: after.cg.ioReadBytes ?? null,
    blockWriteBytes: after.cg.ioWriteBytes ?? null,
  };
}
