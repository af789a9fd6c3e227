/**
 * cgroup v1 (Documentation/admin-guide/cgroup-v1/): one hierarchy per mount, each with one
 * or more controllers (cpu,cpuacct may share a mount). A container gets the same relative
 * directory in every hierarchy it uses and its processes are placed in each. On a hybrid
 * host the directory is also made in the cgroup2 mount, to track the processes there.
 */
import { join } from 'node:path';
import { SysError } from '../../errors.js';
import {
  type DriverOptions,
  type ResolvedOptions,
  applyWrites,
  retryVanished,
  removeIfEmpty,
  checkCgroupPath,
  isSigkill,
  readCgroupFile,
  readKeyed,
  parseBlkioBytes,
  parseLimit,
  readOptional,
  readPids,
  removeTrees,
  resolveOptions,
  signalAll,
  thawTree,
  toNumber,
  waitFor,
  writeCgroupFile,
} from './cgroupfs.js';
import { toCgroupWrites } from './limits.js';
import { type CgroupBatch, type CgroupStep, executeCreate, pushLevelSteps, pushRemovalSteps, sub, writeStep } from './batch.js';
import type { CgroupDriver, CgroupHandle, CgroupLayout, CgroupLimits, CgroupStats, CgroupWrite } from './types.js';

/** The hierarchies a container joins, when the host mounts them. */
export const V1_CONTROLLERS = ['cpuset', 'cpu', 'cpuacct', 'memory', 'devices', 'freezer', 'blkio', 'pids'];

/**
 * The devices cgroup allow-list: deny all, then the character devices every container
 * gets (the OCI runtime-spec default devices plus the pty multiplexer and its slaves).
 */
export const V1_DEVICE_RULES: CgroupWrite[] = [
  { controller: 'devices', file: 'devices.deny', value: 'a' },
  ...[
    '1:3', // null
    '1:5', // zero
    '1:7', // full
    '1:8', // random
    '1:9', // urandom
    '5:0', // tty
    '5:1', // console
    '5:2', // ptmx
    '136:*', // pts/*
  ].map((dev) => ({ controller: 'devices', file: 'devices.allow', value: `c ${dev} rwm` })),
];

type V1Layout = Exclude<CgroupLayout, { kind: 'v2' }>;

export class CgroupV1Driver implements CgroupDriver {
  readonly layout: V1Layout;
  private readonly opts: ResolvedOptions;
  /** controller -> mount, for the controllers novabox uses */
  private readonly used: Record<string, string>;
  /** each mount once (co-mounted controllers share one), then the cgroup2 mount if hybrid */
  private readonly roots: string[];
  /** the named hierarchies a system container's cgroup may have a directory in (name=systemd) */
  private readonly namedRoots: string[];

  /**
   * `mounts`: controller -> mount point; `unified`: the cgroup2 mount of a hybrid host;
   * `named`: the named hierarchies (name=systemd), where only system containers get a
   * directory (placement.ts systemDelegation); removal looks there too.
   */
  constructor(mounts: Record<string, string>, opts: DriverOptions & { unified?: string; named?: Record<string, string> } = {}) {
    const named = opts.named && Object.keys(opts.named).length > 0 ? { named: opts.named } : {};
    this.layout = opts.unified ? { kind: 'hybrid', mounts, unified: opts.unified, ...named } : { kind: 'v1', mounts, ...named };
    this.namedRoots = opts.named?.systemd ? [opts.named.systemd] : [];
    this.opts = resolveOptions(opts);
    this.used = Object.fromEntries(V1_CONTROLLERS.filter((c) => mounts[c]).map((c) => [c, mounts[c]]));
    this.roots = [...new Set(Object.values(this.used)), ...(opts.unified ? [opts.unified] : [])];
  }

  create(path: string, limits: CgroupLimits): CgroupHandle {
    const batch = this.planCreate(path, limits);
    retryVanished(() => executeCreate(batch, { io: this.opts.io }));
    return this.open(path);
  }

  /**
   * The directory in every hierarchy (and the cgroup2 mount of a hybrid host), the
   * cpuset inheritance, the device allow-list, then the limits; removal: the directories
   * and their parents, after reading the OOM kills from memory.oom_control.
   *
   * The limits of a new cgroup are unlimited, so memory.limit_in_bytes can go before
   * memory.memsw.limit_in_bytes (setLimits on a live cgroup orders them as needed).
   */
  planCreate(path: string, limits: CgroupLimits): CgroupBatch {
    const segments = checkCgroupPath(path);
    const writes = toCgroupWrites('v1', limits);
    const handle = this.open(path);
    const create: CgroupStep[] = [];
    for (const root of this.roots) pushLevelSteps(create, root, segments);
    if (this.used.cpuset) for (const s of inheritCpuset(this.used.cpuset, segments)) create.push(s);
    if (this.used.devices) {
      const dir = handle.dirOf('devices');
      for (const w of V1_DEVICE_RULES) create.push(writeStep(sub(dir, w.file), w.value, w.optional));
    }
    for (const w of writes) create.push(writeStep(sub(handle.dirOf(w.controller), w.file), w.value, w.optional));
    const remove: CgroupStep[] = [];
    if (this.used.memory) remove.push({ step: 'oom-count', path: sub(handle.dirOf('memory'), 'memory.oom_control'), key: 'oom_kill' });
    pushRemovalSteps(remove, handle.dirs());
    return { cgroup: path, create, remove };
  }

  open(path: string): CgroupV1 {
    checkCgroupPath(path);
    return new CgroupV1(path, this.used, this.roots, this.opts, this.namedRoots);
  }
}

/**
 * A new cpuset has empty cpuset.cpus and cpuset.mems, and the kernel refuses tasks until
 * both are set (cgroup-v1/cpusets.rst), unless the parent has cgroup.clone_children.
 * Copy each level's parent values into it when empty, top down.
 */
function inheritCpuset(mount: string, segments: string[]): CgroupStep[] {
  const steps: CgroupStep[] = [];
  let dir = mount;
  for (const segment of segments) {
    const child = sub(dir, segment);
    for (const file of ['cpuset.cpus', 'cpuset.mems']) steps.push({ step: 'inherit', path: sub(child, file), from: sub(dir, file) });
    dir = child;
  }
  return steps;
}

export class CgroupV1 implements CgroupHandle {
  private readonly allDirs: string[];
  /** its directories in named hierarchies, which only a system container has (may be absent) */
  private readonly namedDirs: string[];

  constructor(
    readonly path: string,
    private readonly used: Record<string, string>,
    roots: string[],
    private readonly opts: ResolvedOptions,
    namedRoots: string[] = [],
  ) {
    this.allDirs = roots.map((root) => sub(root, path));
    this.namedDirs = namedRoots.map((root) => sub(root, path));
  }

  dirs(): string[] {
    return [...this.allDirs];
  }

  removalDirs(): string[] {
    return this.namedDirs.length ? [...this.allDirs, ...this.namedDirs] : [...this.allDirs];
  }

  /** The cgroup's directory in the hierarchy carrying `controller`. */
  dirOf(controller: string): string {
    const mount = this.used[controller];
    if (!mount) throw new SysError('open', 'ENOENT', `${controller}:/${this.path}`, `the ${controller} controller is not mounted`);
    return sub(mount, this.path);
  }

  place(pid: number): void {
    for (const dir of this.allDirs) writeCgroupFile(join(dir, 'cgroup.procs'), String(pid));
  }

  setLimits(limits: CgroupLimits): void {
    this.applyLimitWrites(toCgroupWrites('v1', limits));
  }

  /**
   * memory.memsw.limit_in_bytes must stay >= memory.limit_in_bytes (EINVAL otherwise): when
   * raising both, the memsw write has to go first.
   */
  applyLimitWrites(writes: CgroupWrite[]): void {
    const dirOf = (c: string) => this.dirOf(c);
    for (let i = 0; i < writes.length; i++) {
      const [w, next] = [writes[i], writes[i + 1]];
      const pair = w.file === 'memory.limit_in_bytes' && next?.file === 'memory.memsw.limit_in_bytes';
      try {
        applyWrites(pair ? [w, next] : [w], dirOf);
      } catch (err) {
        const limitRefused = err instanceof SysError && err.errno === 'EINVAL' && err.path?.endsWith(w.file);
        if (!pair || !limitRefused) throw err;
        applyWrites([next, w], dirOf);
      }
      if (pair) i++;
    }
  }

  freeze(): void {
    const state = join(this.dirOf('freezer'), 'freezer.state');
    writeCgroupFile(state, 'FROZEN');
    // reads FREEZING until every task is in the refrigerator
    if (!waitFor(() => readCgroupFile(state).trim() === 'FROZEN', this.opts.freezeTimeoutMs)) {
      this.thaw();
      throw new SysError('freeze', 'ETIMEDOUT', state, `not FROZEN after ${this.opts.freezeTimeoutMs} ms`);
    }
  }

  thaw(): void {
    writeCgroupFile(join(this.dirOf('freezer'), 'freezer.state'), 'THAWED');
  }

  cpuUsageUs(): number {
    if (!this.used.cpuacct) return 0;
    const usageNs = readCgroupFile(join(this.dirOf('cpuacct'), 'cpuacct.usage'));
    return usageNs ? Number(BigInt(usageNs.trim()) / 1000n) : 0;
  }

  stats(): CgroupStats {
    const read = (controller: string, file: string) =>
      this.used[controller] ? readCgroupFile(join(this.dirOf(controller), file)) : undefined;
    const usageNs = read('cpuacct', 'cpuacct.usage');
    const optional = (controller: string, file: string) =>
      this.used[controller] ? readOptional(join(this.dirOf(controller), file)) : undefined;
    const io = parseBlkioBytes(
      optional('blkio', 'blkio.throttle.io_service_bytes_recursive') ?? optional('blkio', 'blkio.throttle.io_service_bytes'),
    );
    return {
      memoryCurrentBytes: toNumber(read('memory', 'memory.usage_in_bytes')) ?? 0,
      memoryPeakBytes: toNumber(read('memory', 'memory.max_usage_in_bytes')) ?? null,
      // nanoseconds overflow a double's integers after 104 days of CPU time
      cpuUsageUs: usageNs ? Number(BigInt(usageNs.trim()) / 1000n) : 0,
      pidsCurrent: toNumber(read('pids', 'pids.current')) ?? 0,
      // the oom_kill line exists since Linux 4.13
      oomKills: readKeyed(read('memory', 'memory.oom_control'), 'oom_kill') ?? 0,
      memoryLimitBytes: parseLimit(read('memory', 'memory.limit_in_bytes')),
      ioReadBytes: io?.read ?? null,
      ioWriteBytes: io?.write ?? null,
    };
  }

  pids(): number[] {
    return [...new Set([...this.allDirs, ...this.namedDirs].flatMap(readPids))];
  }

  /**
   * A task frozen by the v1 freezer does not act on SIGKILL until thawed, so thaw after
   * signalling (the frozen tasks could not fork while being signalled).
   */
  killAll(signal: NodeJS.Signals | number = 'SIGKILL'): void {
    signalAll(() => this.pids(), signal, this.opts.io);
    if (!isSigkill(signal) || !this.used.freezer) return;
    const state = join(this.dirOf('freezer'), 'freezer.state');
    const current = readOptional(state)?.trim();
    if (current && current !== 'THAWED') writeCgroupFile(state, 'THAWED');
  }

  /** Signal first, then thaw: the kill is pending before anything frozen can run or fork. */
  remove(): void {
    const dirs = this.removalDirs();
    if (removeIfEmpty(dirs, this.opts)) return;
    this.killAll('SIGKILL');
    if (this.used.freezer) thawTree(this.dirOf('freezer'));
    removeTrees(dirs, this.opts);
  }
}
