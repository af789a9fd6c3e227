/**
 * Pure: limits in, cgroup file writes out. Whether an optional file exists is decided by
 * the driver at apply time; nothing here touches the file system.
 */
import { BadRequest } from '../../errors.js';
import type { BlockIoThrottle, CgroupLimits, CgroupWrite } from './types.js';
import { quote } from '../../util/text.js';

export const DEFAULT_CPU_PERIOD_US = 100_000;
/** sched/core.c: the CFS bandwidth quota and period must each be at least 1 ms */
const MIN_CPU_QUOTA_US = 1_000;
const CPU_PERIOD_RANGE_US = [1_000, 1_000_000] as const;
const CPU_SHARES_RANGE = [2, 262_144] as const;

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

/** "64m" -> 67108864. Suffixes k/m/g/t (powers of 1024), any case, optional trailing b. */
export function parseMemory(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*$/i.exec(text);
  if (!match) {
    throw new BadRequest(`invalid memory size "${text}": expected bytes or a number with a k, m, g or t suffix (e.g. 512m, 2g)`);
  }
  const bytes = Math.floor(Number(match[1]) * MEMORY_UNITS[match[2].toLowerCase()]);
  if (!Number.isSafeInteger(bytes)) throw new BadRequest(`memory size "${text}" is too large`);
  return bytes;
}

/**
 * 0.5 CPUs -> 50 ms of CPU time every 100 ms. More CPUs than the host has is allowed: the
 * kernel accepts it (the quota then never binds), and flavors may overcommit, as Nova's do.
 */
/** A CPU count as given (`--cpus 0.5`): a number greater than 0. */
export function parseCpus(text: string): number {
  const cpus = /^\s*[0-9.eE+]+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(cpus) || cpus <= 0)
    throw new BadRequest(`invalid CPU count ${quote(text)}: expected a number greater than 0, e.g. 0.5`);
  return cpus;
}

export function cpusToQuota(cpus: number, periodUs: number = DEFAULT_CPU_PERIOD_US): { quotaUs: number; periodUs: number } {
  if (!Number.isFinite(cpus) || cpus <= 0) {
    throw new BadRequest(`invalid CPU count ${cpus}: must be a number greater than 0`);
  }
  const quotaUs = Math.round(cpus * periodUs);
  if (quotaUs < MIN_CPU_QUOTA_US) {
    throw new BadRequest(
      `CPU count ${cpus} is too small: the minimum is ${MIN_CPU_QUOTA_US / periodUs} (1 ms per ${periodUs / 1000} ms period)`,
    );
  }
  return { quotaUs, periodUs };
}

/** runc/crun: cpu.shares [2, 262144] onto cpu.weight [1, 10000], linearly. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262_142);
}

function inRange(value: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): boolean {
  return value === undefined || (Number.isSafeInteger(value) && value >= min && value <= max);
}

type Check = (limits: CgroupLimits) => string | undefined;

const CHECKS: Check[] = [
  (l) => (inRange(l.memoryBytes, 1) ? undefined : `memory limit ${l.memoryBytes} must be a positive whole number of bytes`),
  (l) =>
    inRange(l.cpuQuotaUs, MIN_CPU_QUOTA_US)
      ? undefined
      : `CPU quota ${l.cpuQuotaUs} us must be a whole number of at least ${MIN_CPU_QUOTA_US} us`,
  (l) =>
    inRange(l.cpuPeriodUs, ...CPU_PERIOD_RANGE_US)
      ? undefined
      : `CPU period ${l.cpuPeriodUs} us must be between ${CPU_PERIOD_RANGE_US[0]} and ${CPU_PERIOD_RANGE_US[1]} us`,
  (l) =>
    inRange(l.cpuShares, ...CPU_SHARES_RANGE)
      ? undefined
      : `CPU shares ${l.cpuShares} must be between ${CPU_SHARES_RANGE[0]} and ${CPU_SHARES_RANGE[1]}`,
  (l) => (inRange(l.pidsMax, 1) ? undefined : `pids limit ${l.pidsMax} must be a positive whole number`),
  (l) => {
    for (const h of l.hugetlb ?? []) {
      if (!HUGE_PAGE_SIZE.test(h.pageSize)) return `huge page size ${quote(h.pageSize)} is not a size such as 2MB or 1GB`;
      if (!inRange(h.limitBytes, 0)) return `huge page limit ${h.limitBytes} of ${h.pageSize} pages must be a whole number of bytes`;
    }
    return undefined;
  },
  (l) => {
    for (const t of l.blockIoThrottles ?? []) {
      if (!inRange(t.major, 0, 0xfff) || !inRange(t.minor, 0, 0xfffff)) return `block device ${t.major}:${t.minor} is not a device number`;
      for (const k of THROTTLE_KEYS)
        if (!inRange(t[k], 1)) return `block I/O ${k} ${t[k]} of device ${t.major}:${t.minor} must be a positive whole number`;
    }
    return undefined;
  },
];

/** the kernel's names of huge page sizes in cgroup files (mm/hugetlb_cgroup.c mem_fmt): 2MB, 1GB, 64KB */
export const HUGE_PAGE_SIZE = /^[1-9]\d*[KMG]B$/;

/** Whether the limits need the hugetlb controller. */
export function needsHugetlb(l: CgroupLimits): boolean {
  return (l.hugetlb?.length ?? 0) > 0;
}

const THROTTLE_KEYS = ['readBps', 'writeBps', 'readIops', 'writeIops'] as const;
/** v2 io.max's keys and v1's blkio.throttle files, in THROTTLE_KEYS' order */
const IO_MAX_KEYS = ['rbps', 'wbps', 'riops', 'wiops'];
const BLKIO_FILES = ['read_bps_device', 'write_bps_device', 'read_iops_device', 'write_iops_device'];

/** Whether the limits need the block I/O controller (io on v2, blkio on v1). */
export function needsBlockIo(l: CgroupLimits): boolean {
  return (l.blockIoThrottles?.length ?? 0) > 0;
}

/** io.max's line for one device: every key, "max" where there is no limit (a line replaces the device's). */
function ioMaxLine(t: BlockIoThrottle): string {
  return `${t.major}:${t.minor} ${THROTTLE_KEYS.map((k, i) => `${IO_MAX_KEYS[i]}=${t[k] ?? 'max'}`).join(' ')}`;
}

export function validateLimits(limits: CgroupLimits): void {
  for (const check of CHECKS) {
    const problem = check(limits);
    if (problem) throw new BadRequest(`invalid cgroup limits: ${problem}`);
  }
}

/** The writes that apply `limits`, in the order they must happen. */
export function toCgroupWrites(kind: 'v1' | 'v2', limits: CgroupLimits): CgroupWrite[] {
  validateLimits(limits);
  return kind === 'v2' ? v2Writes(limits) : v1Writes(limits);
}

function v2Writes(l: CgroupLimits): CgroupWrite[] {
  const writes: CgroupWrite[] = [];
  const add = (file: string, value: string | number, optional?: boolean) =>
    writes.push({ controller: '', file, value: String(value), ...(optional ? { optional } : {}) });

  if (l.memoryBytes !== undefined) add('memory.max', l.memoryBytes);
  // memory.swap.max is missing when the kernel does no swap accounting; then there is nothing to stop.
  if (l.swapOff) add('memory.swap.max', 0, true);
  if (l.cpuQuotaUs !== undefined || l.cpuPeriodUs !== undefined) {
    add('cpu.max', `${l.cpuQuotaUs ?? 'max'} ${l.cpuPeriodUs ?? DEFAULT_CPU_PERIOD_US}`);
  }
  if (l.cpuShares !== undefined) add('cpu.weight', sharesToWeight(l.cpuShares));
  if (l.pidsMax !== undefined) add('pids.max', l.pidsMax);
  for (const t of l.blockIoThrottles ?? []) add('io.max', ioMaxLine(t));
  if (l.cpusetCpus !== undefined) add('cpuset.cpus', l.cpusetCpus);
  if (l.cpusetMems !== undefined) add('cpuset.mems', l.cpusetMems);
  // l.deviceAllow: v2 has no devices.allow file; the device program takes them (v2.ts)
  // the reservations' limit too where the kernel has it (5.7+), as runc sets both
  for (const h of l.hugetlb ?? []) {
    add(`hugetlb.${h.pageSize}.max`, h.limitBytes);
    add(`hugetlb.${h.pageSize}.rsvd.max`, h.limitBytes, true);
  }
  return writes;
}

function v1Writes(l: CgroupLimits): CgroupWrite[] {
  const writes: CgroupWrite[] = [];
  const add = (controller: string, file: string, value: string | number, optional?: boolean) =>
    writes.push({ controller, file, value: String(value), ...(optional ? { optional } : {}) });

  if (l.memoryBytes !== undefined) {
    add('memory', 'memory.limit_in_bytes', l.memoryBytes);
    // memory+swap = memory: no swap. Without a memory limit there is no number to give memsw.
    if (l.swapOff) add('memory', 'memory.memsw.limit_in_bytes', l.memoryBytes, true);
  }
  // Period first: the kernel checks quota against the period in force when the quota is written.
  if (l.cpuQuotaUs !== undefined || l.cpuPeriodUs !== undefined) {
    add('cpu', 'cpu.cfs_period_us', l.cpuPeriodUs ?? DEFAULT_CPU_PERIOD_US);
  }
  if (l.cpuQuotaUs !== undefined) add('cpu', 'cpu.cfs_quota_us', l.cpuQuotaUs);
  if (l.cpuShares !== undefined) add('cpu', 'cpu.shares', l.cpuShares);
  if (l.pidsMax !== undefined) add('pids', 'pids.max', l.pidsMax);
  // after the cpuset inheritance (the driver's steps), which a new cpuset needs first
  if (l.cpusetCpus !== undefined) add('cpuset', 'cpuset.cpus', l.cpusetCpus);
  if (l.cpusetMems !== undefined) add('cpuset', 'cpuset.mems', l.cpusetMems);
  for (const d of l.deviceAllow ?? []) add('devices', 'devices.allow', d);
  if (needsHugetlb(l)) throw new BadRequest('huge page limits are set on cgroup v2 only, and this host has cgroup v1 hierarchies');
  // one file per kind, one device per write; 0 removes a device's limit
  for (const t of l.blockIoThrottles ?? [])
    THROTTLE_KEYS.forEach((k, i) => add('blkio', `blkio.throttle.${BLKIO_FILES[i]}`, `${t.major}:${t.minor} ${t[k] ?? 0}`));
  return writes;
}
