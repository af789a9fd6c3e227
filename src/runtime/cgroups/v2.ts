/**
 * cgroup v2: one tree (Documentation/admin-guide/cgroup-v2.rst). A controller works in a
 * cgroup only when every ancestor lists it in cgroup.subtree_control, so create() enables
 * memory, cpu and pids from the root down to the parent. Processes live in leaves only
 * ("no internal processes"): novabox/<id> holds the container, novabox itself none.
 */
import { join } from 'node:path';
import { BadRequest, SysError } from '../../errors.js';
import {
  type DriverOptions,
  type ResolvedOptions,
  applyWrites,
  retryVanished,
  removeIfEmpty,
  checkCgroupPath,
  isErrno,
  isSigkill,
  readCgroupFile,
  readKeyed,
  parseIoStat,
  parseLimit,
  readOptional,
  readPids,
  removeTrees,
  resolveOptions,
  signalAll,
  toNumber,
  waitFor,
  writeCgroupFile,
} from './cgroupfs.js';
import { needsBlockIo, needsHugetlb, toCgroupWrites } from './limits.js';
import { type CgroupBatch, type CgroupStep, executeCreate, pushLevelSteps, pushRemovalSteps, sub, writeStep } from './batch.js';
import type { CgroupDriver, CgroupHandle, CgroupLayout, CgroupLimits, CgroupStats, ReclaimResult } from './types.js';

/** The controllers novabox limits, in the order they are enabled. */
const WANTED_CONTROLLERS = ['memory', 'cpu', 'pids'];

export class CgroupV2Driver implements CgroupDriver {
  readonly layout: Extract<CgroupLayout, { kind: 'v2' }>;
  private readonly opts: ResolvedOptions;
  private readonly enable: string[];

  /** `controllers` defaults to what `<root>/cgroup.controllers` lists. */
  constructor(root: string, opts: DriverOptions & { controllers?: string[] } = {}) {
    const controllers = opts.controllers ?? readCgroupFile(join(root, 'cgroup.controllers')).split(/\s+/).filter(Boolean);
    this.layout = { kind: 'v2', root, controllers };
    this.opts = resolveOptions(opts);
    this.enable = WANTED_CONTROLLERS.filter((c) => controllers.includes(c));
  }

  create(path: string, limits: CgroupLimits): CgroupHandle {
    const batch = this.planCreate(path, limits);
    retryVanished(() => executeCreate(batch, { io: this.opts.io }));
    return this.open(path);
  }

  /**
   * Controllers enabled from the root down to the parent (only those not listed yet),
   * each level made, then the limits and the device filter; removal: the directory and
   * its parent, after reading the OOM kills from memory.events.
   */
  planCreate(path: string, limits: CgroupLimits): CgroupBatch {
    const segments = checkCgroupPath(path);
    const dir = sub(this.layout.root, path);
    const extra = this.extraControllers(limits);
    const controllers = extra.length ? [...this.enable, ...extra] : this.enable;
    const enable = (parent: string): CgroupStep[] =>
      controllers.length ? [{ step: 'enable', path: sub(parent, 'cgroup.subtree_control'), controllers }] : [];
    const create: CgroupStep[] = [];
    pushLevelSteps(create, this.layout.root, segments, enable);
    for (const w of toCgroupWrites('v2', limits)) create.push(writeStep(sub(dir, w.file), w.value, w.optional));
    create.push({ step: 'devices', path: dir, ...(limits.deviceAllow?.length ? { allow: limits.deviceAllow } : {}) });
    const remove: CgroupStep[] = [];
    if (this.enable.includes('memory')) remove.push({ step: 'oom-count', path: sub(dir, 'memory.events'), key: 'oom_kill' });
    pushRemovalSteps(remove, [dir]);
    return { cgroup: path, create, remove };
  }

  open(path: string): CgroupHandle {
    checkCgroupPath(path);
    return new CgroupV2(path, join(this.layout.root, path), this.opts, this.layout.root, (l) => this.extraControllers(l));
  }

  /**
   * The controllers enabled only for a cgroup whose limits need them: io (block I/O
   * throttles) and hugetlb (huge page limits); refused in one sentence where the tree lacks one.
   */
  private extraControllers(limits: CgroupLimits): string[] {
    const want = [
      ...(needsBlockIo(limits) ? [['io', 'block I/O limits']] : []),
      ...(needsHugetlb(limits) ? [['hugetlb', 'huge page limits']] : []),
      ...(limits.cpusetCpus !== undefined || limits.cpusetMems !== undefined ? [['cpuset', 'cpuset lists']] : []),
    ];
    for (const [c, what] of want)
      if (!this.layout.controllers.includes(c!))
        throw new BadRequest(`${what} need the ${c} controller, which ${this.layout.root}/cgroup.controllers does not list`);
    return want.map(([c]) => c!);
  }
}

class CgroupV2 implements CgroupHandle {
  constructor(
    readonly path: string,
    private readonly dir: string,
    private readonly opts: ResolvedOptions,
    private readonly root = '',
    private readonly extraControllers: (limits: CgroupLimits) => string[] = () => [],
  ) {}

  dirs(): string[] {
    return [this.dir];
  }

  removalDirs(): string[] {
    return [this.dir];
  }

  place(pid: number): void {
    writeCgroupFile(join(this.dir, 'cgroup.procs'), String(pid));
  }

  setLimits(limits: CgroupLimits): void {
    const writes = toCgroupWrites('v2', limits);
    const extra = this.root ? this.extraControllers(limits) : [];
    if (extra.length) {
      // a cgroup made without such limits: the controllers from the root down to its parent
      let parent = this.root;
      for (const segment of checkCgroupPath(this.path)) {
        const control = join(parent, 'cgroup.subtree_control');
        const on = readCgroupFile(control).split(/\s+/);
        const missing = extra.filter((c) => !on.includes(c));
        if (missing.length) writeCgroupFile(control, missing.map((c) => `+${c}`).join(' '));
        parent = join(parent, segment);
      }
    }
    applyWrites(writes, () => this.dir);
  }

  freeze(): void {
    writeCgroupFile(join(this.dir, 'cgroup.freeze'), '1');
    const events = join(this.dir, 'cgroup.events');
    if (!waitFor(() => readKeyed(readCgroupFile(events), 'frozen') === 1, this.opts.freezeTimeoutMs)) {
      this.thaw();
      throw new SysError('freeze', 'ETIMEDOUT', this.dir, `cgroup.events not frozen after ${this.opts.freezeTimeoutMs} ms`);
    }
  }

  thaw(): void {
    writeCgroupFile(join(this.dir, 'cgroup.freeze'), '0');
  }

  reclaim(): ReclaimResult {
    const current = () => toNumber(readOptional(join(this.dir, 'memory.current'))) ?? 0;
    const before = current();
    // swap is off for a server (its flavor); while it is suspended its memory may go there
    if (readOptional(join(this.dir, 'memory.swap.max')) !== undefined) writeCgroupFile(join(this.dir, 'memory.swap.max'), 'max');
    let supported = true;
    try {
      writeCgroupFile(join(this.dir, 'memory.reclaim'), String(before));
    } catch (err) {
      // EAGAIN: less than asked could be reclaimed (no swap: anonymous memory stays)
      if (isErrno(err, 'ENOENT')) supported = false;
      else if (!isErrno(err, 'EAGAIN')) throw err;
    }
    return { beforeBytes: before, afterBytes: current(), supported };
  }

  stats(): CgroupStats {
    const file = (name: string) => readOptional(join(this.dir, name));
    const peak = toNumber(file('memory.peak'));
    const io = parseIoStat(file('io.stat'));
    return {
      memoryCurrentBytes: toNumber(file('memory.current')) ?? 0,
      memoryPeakBytes: peak ?? null,
      // cpu.stat is a core file, present in every cgroup: reading it also proves the cgroup exists
      cpuUsageUs: readKeyed(readCgroupFile(join(this.dir, 'cpu.stat')), 'usage_usec') ?? 0,
      pidsCurrent: toNumber(file('pids.current')) ?? 0,
      oomKills: readKeyed(file('memory.events'), 'oom_kill') ?? 0,
      memoryLimitBytes: parseLimit(file('memory.max')),
      ioReadBytes: io?.read ?? null,
      ioWriteBytes: io?.write ?? null,
    };
  }

  cpuUsageUs(): number {
    return readKeyed(readCgroupFile(join(this.dir, 'cpu.stat')), 'usage_usec') ?? 0;
  }

  pids(): number[] {
    return readPids(this.dir);
  }

  /** cgroup.kill (Linux 5.14) kills the whole subtree at once, forks included. */
  killAll(signal: NodeJS.Signals | number = 'SIGKILL'): void {
    if (isSigkill(signal)) {
      try {
        writeCgroupFile(join(this.dir, 'cgroup.kill'), '1');
        return;
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    signalAll(() => this.pids(), signal, this.opts.io);
  }

  remove(): void {
    if (removeIfEmpty([this.dir], this.opts)) return;
    this.killAll('SIGKILL');
    removeTrees([this.dir], this.opts);
  }
}
