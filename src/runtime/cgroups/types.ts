/**
 * One interface over cgroup v1, hybrid (v1 controllers + a cgroup2 mount beside them)
 * and pure v2. Detection picks the driver; the rest of the runtime never asks which.
 */
import type { CgroupStep } from '../../sys/ops.js';

export type CgroupLayout =
  | { kind: 'v2'; root: string; controllers: string[] }
  | {
      kind: 'v1' | 'hybrid';
      /** controller name -> mount point, e.g. memory -> /sys/fs/cgroup/memory */
      mounts: Record<string, string>;
      /** the cgroup2 mount of a hybrid host (/sys/fs/cgroup/unified), used for tracking only */
      unified?: string;
      /** named hierarchies without controllers, e.g. systemd -> /sys/fs/cgroup/systemd (system containers') */
      named?: Record<string, string>;
    };

/** Limits as numbers with units in their names; undefined = leave the kernel default. */
export interface CgroupLimits {
  memoryBytes?: number;
  /** true: no swap beyond memoryBytes (memory.swap.max=0 / memsw = memory) */
  swapOff?: boolean;
  cpuQuotaUs?: number;
  cpuPeriodUs?: number;
  /** relative weight, v1 cpu.shares scale (2..262144, default 1024); v2 converts to cpu.weight */
  cpuShares?: number;
  pidsMax?: number;
  /** block I/O throttles, per whole-disk device (v2 io.max, v1 blkio.throttle.*_device) */
  blockIoThrottles?: BlockIoThrottle[];
  /** huge page limits in bytes by page size ("2MB", "1GB"): v2 hugetlb.<size>.max (0: none may be used) */
  hugetlb?: { pageSize: string; limitBytes: number }[];
  /** cpuset.cpus / cpuset.mems lists ("0-3,5"); unset: the parent's */
  cpusetCpus?: string;
  cpusetMems?: string;
  /**
   * devices allowed beyond the default allow-list, as v1 devices.allow lines ("c 10:200 rwm",
   * "b 8:0 rwm"): novabox-oci's linux.devices. v1 writes them to devices.allow; on v2 the
   * device program allows them too (native-bindings/src/devices.c).
   */
  deviceAllow?: string[];
}

/** One device's throttles: bytes or I/O operations per second; undefined = no limit. */
export interface BlockIoThrottle {
  major: number;
  minor: number;
  readBps?: number;
  writeBps?: number;
  readIops?: number;
  writeIops?: number;
}

export interface CgroupWrite {
  /** v1: controller name ('memory', 'cpu', 'pids', ...); v2: '' (one tree) */
  controller: string;
  file: string;
  value: string;
  /** skip silently when the file does not exist (a kernel without swap accounting) */
  optional?: boolean;
}

export interface CgroupStats {
  memoryCurrentBytes: number;
  memoryPeakBytes: number | null;
  cpuUsageUs: number;
  pidsCurrent: number;
  oomKills: number;
  /** the memory limit; null when there is none */
  memoryLimitBytes?: number | null;
  /** bytes read from and written to block devices (v2 io.stat, v1 blkio throttle counters); null when not accounted */
  ioReadBytes?: number | null;
  ioWriteBytes?: number | null;
}

export interface ReclaimResult {
  beforeBytes: number;
  afterBytes: number;
  /** whether the kernel has memory.reclaim (Linux 5.19) */
  supported: boolean;
}

export interface CgroupHandle {
  /** relative path inside every hierarchy, e.g. novabox/0f3c... */
  readonly path: string;
  /** absolute directories this cgroup occupies (one on v2, one per hierarchy on v1) */
  dirs(): string[];
  /** every directory remove() removes, in its order (v1: named hierarchies' too) */
  removalDirs(): string[];
  place(pid: number): void;
  setLimits(limits: CgroupLimits): void;
  freeze(): void;
  thaw(): void;
  /**
   * Give the cgroup's memory back to the host (a suspended server): cgroup v2 only, where
   * memory.reclaim drops its page cache and, with swap allowed (memory.swap.max=max),
   * pushes its anonymous memory to the host's swap. Absent on v1 (there is no such file).
   */
  reclaim?(): ReclaimResult;
  stats(): CgroupStats;
  /** stats().cpuUsageUs alone: one file read (the first of `server stats`' two samples) */
  cpuUsageUs(): number;
  /** pids currently in the cgroup (all hierarchies, deduplicated) */
  pids(): number[];
  killAll(signal?: NodeJS.Signals | number): void;
  /** kill stragglers, rmdir (retrying EBUSY) every directory; idempotent */
  remove(): void;
}

export interface CgroupDriver {
  readonly layout: CgroupLayout;
  /** mkdir the cgroup in every hierarchy it needs and apply the limits */
  create(path: string, limits: CgroupLimits): CgroupHandle;
  /**
   * The same creation as data, and the removal after the container (pure; batch.ts).
   * create() executes it; `novabox run` gives it to the container monitor.
   */
  planCreate(path: string, limits: CgroupLimits): CgroupBatch;
  /** a handle on an existing cgroup (it may already be gone) */
  open(path: string): CgroupHandle;
}

export interface CgroupBatch {
  /** relative cgroup path, for messages */
  cgroup: string;
  /** mkdir levels, limits, device rules; in order. On failure, the levels made are removed. */
  create: CgroupStep[];
  /** oom-count, then rmdir of each directory of the cgroup (its parent, the cgroup
   *  parent of every container, stays: see pushRemovalSteps) */
  remove: CgroupStep[];
}
