/**
 * cgroup v2: one tree (Documentation/admin-guide/cgroup-v2.rst). A controller works in a
 * cgroup only when every ancestor lists it in cgroup.subtree_control, so create() enables
 * memory, cpu and pids from the root down to the parent. Processes live in leaves only
 * ("no internal processes"): novabox/<id> holds the container, novabox itself none.
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
  isErrno,
  isSigkill,
  makeLevels,
  readCgroupFile,
  readKeyed,
  readOptional,
  readPids,
  removeTrees,
  resolveOptions,
  signalAll,
  toNumber,
  undoCreated,
  waitFor,
  writeCgroupFile,
} from './cgroupfs.js';
import { toCgroupWrites } from './limits.js';
import type { CgroupDriver, CgroupHandle, CgroupLayout, CgroupLimits, CgroupStats } from './types.js';

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
    return retryVanished(() => this.createOnce(path, limits));
  }

  private createOnce(path: string, limits: CgroupLimits): CgroupHandle {
    const segments = checkCgroupPath(path);
    const writes = toCgroupWrites('v2', limits);
    const created: string[] = [];
    try {
      const dir = makeLevels(this.layout.root, segments, this.opts.io, created, (parent, fresh) =>
        this.enableControllers(parent, fresh),
      );
      applyWrites(writes, () => dir);
    } catch (err) {
      undoCreated(created, this.opts.io);
      throw err;
    }
    return this.open(path);
  }

  open(path: string): CgroupHandle {
    checkCgroupPath(path);
    return new CgroupV2(path, join(this.layout.root, path), this.opts);
  }

  /** Write only the controllers not yet enabled; a directory we just made has none. */
  private enableControllers(dir: string, fresh: boolean): void {
    if (this.enable.length === 0) return;
    const file = join(dir, 'cgroup.subtree_control');
    const enabled = fresh ? [] : readCgroupFile(file).split(/\s+/);
    const missing = this.enable.filter((c) => !enabled.includes(c));
    if (missing.length > 0) writeCgroupFile(file, missing.map((c) => `+${c}`).join(' '));
  }
}

class CgroupV2 implements CgroupHandle {
  constructor(
    readonly path: string,
    private readonly dir: string,
    private readonly opts: ResolvedOptions,
  ) {}

  dirs(): string[] {
    return [this.dir];
  }

  place(pid: number): void {
    writeCgroupFile(join(this.dir, 'cgroup.procs'), String(pid));
  }

  setLimits(limits: CgroupLimits): void {
    applyWrites(toCgroupWrites('v2', limits), () => this.dir);
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

  stats(): CgroupStats {
    const file = (name: string) => readOptional(join(this.dir, name));
    const peak = toNumber(file('memory.peak'));
    return {
      memoryCurrentBytes: toNumber(file('memory.current')) ?? 0,
      memoryPeakBytes: peak ?? null,
      // cpu.stat is a core file, present in every cgroup: reading it also proves the cgroup exists
      cpuUsageUs: readKeyed(readCgroupFile(join(this.dir, 'cpu.stat')), 'usage_usec') ?? 0,
      pidsCurrent: toNumber(file('pids.current')) ?? 0,
      oomKills: readKeyed(file('memory.events'), 'oom_kill') ?? 0,
    };
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
