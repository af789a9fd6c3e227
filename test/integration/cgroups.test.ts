/**
 * The cgroup drivers on this host's real hierarchy (root only). The detected driver always
 * runs (v1/hybrid or v2); the v2 driver also runs wherever a cgroup2 mount offers memory,
 * cpu and pids, e.g. a pure-v2 guest.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { detectCgroups, parseMountinfo } from '../../src/runtime/cgroups/detect.js';
import { cgroupDriver } from '../../src/runtime/cgroups/index.js';
import { cpusToQuota, parseMemory } from '../../src/runtime/cgroups/limits.js';
import type { CgroupDriver } from '../../src/runtime/cgroups/types.js';
import { CgroupV1Driver } from '../../src/runtime/cgroups/v1.js';
import { CgroupV2Driver } from '../../src/runtime/cgroups/v2.js';

// this file's own: other test files and worktrees make novabox-test-* cgroups at the same time
const PREFIX = `novabox-test-cg${randomBytes(3).toString('hex')}-`;
const mountinfo = () => parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));

/** every cgroup and cgroup2 mount point: v1 controllers, named hierarchies, unified */
function hierarchyRoots(): string[] {
  return mountinfo()
    .filter((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2')
    .map((m) => m.mountPoint);
}

function cgroup2WithControllers(): string | undefined {
  return mountinfo()
    .filter((m) => m.fsType === 'cgroup2')
    .map((m) => m.mountPoint)
    .find((root) => {
      const controllers = readFileSync(join(root, 'cgroup.controllers'), 'utf8').split(/\s+/);
      return ['memory', 'cpu', 'pids'].every((c) => controllers.includes(c));
    });
}

function leftovers(): string[] {
  return hierarchyRoots().flatMap((root) =>
    readdirSync(root)
      .filter((name) => name.startsWith(PREFIX))
      .map((name) => join(root, name)),
  );
}

/** A kernel file of `path`, in the hierarchy that carries `controller` on v1. */
function kernelFile(driver: CgroupDriver, controller: string, path: string, file: string): string {
  const layout = driver.layout;
  return join(layout.kind === 'v2' ? layout.root : layout.mounts[controller], path, file);
}

const read = (path: string) => readFileSync(path, 'utf8').trim();
const procState = (pid: number) => read(`/proc/${pid}/stat`).split(') ')[1][0];

let cleanups: Array<() => void> = [];

afterEach(() => {
  const errors: unknown[] = [];
  for (const cleanup of cleanups.reverse()) {
    try {
      cleanup();
    } catch (err) {
      errors.push(err);
    }
  }
  cleanups = [];
  if (errors.length > 0) throw new AggregateError(errors, 'cgroup test cleanup failed');
});

async function exercise(driver: CgroupDriver): Promise<void> {
  const top = `${PREFIX}${randomBytes(4).toString('hex')}`;
  const path = `${top}/x`;
  cleanups.push(() => driver.open(top).remove());
  // a shell that, once placed, fills a 2 MB variable (charged to the cgroup) and then
  // waits in read: one process, memory in use
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${#x} is the shell's, not a template
  const child = spawn('sh', ['-c', 'read _; x=$(head -c 2000000 /dev/zero | tr "\\0" a); echo ${#x}; read _'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  cleanups.push(() => child.kill('SIGKILL'));
  const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  const filled = new Promise<string>((resolve) => child.stdout!.once('data', (d) => resolve(String(d).trim())));
  const pid = child.pid!;
  const file = (controller: string, name: string) => kernelFile(driver, controller, path, name);
  const v2 = driver.layout.kind === 'v2';

  const { quotaUs, periodUs } = cpusToQuota(0.5);
  const cg = driver.create(path, {
    memoryBytes: parseMemory('64m'),
    swapOff: true,
    cpuQuotaUs: quotaUs,
    cpuPeriodUs: periodUs,
    pidsMax: 32,
  });
  cg.place(pid);
  expect(cg.pids()).toEqual([pid]);
  expect(read(`/proc/${pid}/cgroup`)).toContain(path);
  child.stdin!.write('\n');
  expect(await filled).toBe('2000000');

  if (v2) {
    expect(read(file('memory', 'memory.max'))).toBe('67108864');
    expect(read(file('cpu', 'cpu.max'))).toBe('50000 100000');
  } else {
    expect(read(file('memory', 'memory.limit_in_bytes'))).toBe('67108864');
    expect(read(file('cpu', 'cpu.cfs_period_us'))).toBe('100000');
    expect(read(file('cpu', 'cpu.cfs_quota_us'))).toBe('50000');
  }
  expect(read(file('pids', 'pids.max'))).toBe('32');

  // raising memory with swap off: v1 must write memsw before the limit
  cg.setLimits({ memoryBytes: parseMemory('128m'), swapOff: true });
  expect(read(file('memory', v2 ? 'memory.max' : 'memory.limit_in_bytes'))).toBe('134217728');

  cg.freeze();
  if (v2) {
    expect(read(file('', 'cgroup.events'))).toMatch(/^frozen 1$/m);
  } else {
    expect(read(file('freezer', 'freezer.state'))).toBe('FROZEN');
    expect(procState(pid)).toBe('D'); // in the v1 refrigerator
  }
  cg.thaw();
  if (v2) await expect.poll(() => read(file('', 'cgroup.events'))).toMatch(/^frozen 0$/m);
  else expect(read(file('freezer', 'freezer.state'))).toBe('THAWED');

  const stats = cg.stats();
  expect(stats.pidsCurrent).toBe(1);
  // the 2 MB string the shell made after place() (pages charged before it stay behind)
  expect(stats.memoryCurrentBytes).toBeGreaterThan(2_000_000);
  expect(stats.memoryCurrentBytes).toBeLessThan(64 * 2 ** 20);
  expect(stats.oomKills).toBe(0);

  cg.killAll();
  expect(await exited).toBe('SIGKILL');
  cg.remove();
  for (const dir of cg.dirs()) expect(existsSync(dir)).toBe(false);
  driver.open(top).remove();
  driver.open(top).remove(); // idempotent
  expect(leftovers()).toEqual([]);
}

describe.skipIf(process.getuid?.() !== 0)('cgroups on this host (root)', () => {
  it('detection follows the mount at /sys/fs/cgroup', () => {
    const top = mountinfo()
      .filter((m) => m.mountPoint === '/sys/fs/cgroup')
      .at(-1);
    const driver = cgroupDriver();
    expect(driver.layout.kind).toBe(detectCgroups().kind);
    if (top?.fsType === 'cgroup2') {
      expect(driver.layout.kind).toBe('v2');
      expect(driver).toBeInstanceOf(CgroupV2Driver);
    } else {
      expect(driver.layout.kind).toMatch(/^(v1|hybrid)$/);
      expect(driver).toBeInstanceOf(CgroupV1Driver);
    }
  });

  it('the detected driver: limits, freeze, stats, kill, remove', async () => {
    await exercise(cgroupDriver());
  });

  it('swap off with the detected driver: no swap beyond the memory limit, also after raising it', (ctx) => {
    const driver = cgroupDriver();
    const v2 = driver.layout.kind === 'v2';
    const swapFile = v2 ? 'memory.swap.max' : 'memory.memsw.limit_in_bytes';
    const top = `${PREFIX}${randomBytes(4).toString('hex')}`;
    cleanups.push(() => driver.open(top).remove());
    const cg = driver.create(`${top}/x`, { memoryBytes: parseMemory('64m'), swapOff: true });
    const swap = kernelFile(driver, 'memory', `${top}/x`, swapFile);
    ctx.skip(!existsSync(swap), `this kernel accounts no swap (no ${swapFile}: swapaccount=0 or CONFIG_MEMCG_SWAP off)`);
    expect(read(swap)).toBe(v2 ? '0' : '67108864');
    // raising memory with swap off: v1 must write memsw before the limit
    cg.setLimits({ memoryBytes: parseMemory('128m'), swapOff: true });
    expect(read(swap)).toBe(v2 ? '0' : '134217728');
    cg.remove();
    driver.open(top).remove();
    expect(leftovers()).toEqual([]);
  });

  it('the v2 driver on a cgroup2 mount with memory, cpu and pids', async (ctx) => {
    const root = cgroup2WithControllers();
    if (!root) return ctx.skip('no cgroup2 mount offers memory, cpu and pids (they are bound to v1 hierarchies)');
    await exercise(new CgroupV2Driver(root));
  });

  it('the v2 driver core (place, freeze, cgroup.kill, remove) on any cgroup2 mount', async (ctx) => {
    const root = mountinfo().find((m) => m.fsType === 'cgroup2')?.mountPoint;
    if (!root) return ctx.skip('no cgroup2 mount');
    const driver = new CgroupV2Driver(root);
    const top = `${PREFIX}${randomBytes(4).toString('hex')}`;
    cleanups.push(() => driver.open(top).remove());
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    cleanups.push(() => child.kill('SIGKILL'));
    const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));

    const cg = driver.create(`${top}/x`, {});
    cg.place(child.pid!);
    expect(cg.pids()).toEqual([child.pid]);
    cg.freeze();
    expect(read(join(root, top, 'x', 'cgroup.events'))).toMatch(/^frozen 1$/m);
    cg.killAll(); // frozen or not, SIGKILL ends it
    expect(await exited).toBe('SIGKILL');
    driver.open(top).remove();
    expect(leftovers()).toEqual([]);
  });

  it('remove of a cgroup that never existed is a no-op', () => {
    cgroupDriver()
      .open(`${PREFIX}${randomBytes(4).toString('hex')}/none`)
      .remove();
    expect(leftovers()).toEqual([]);
  });

  it('a long-running process sees a v1 hierarchy mounted, then unmounted, at its next detection', (ctx) => {
    // what the anchors' kit does on a hybrid host while `novabox serve` runs
    const before = detectCgroups();
    if (before.kind === 'v2') return ctx.skip('a pure cgroup v2 host: no v1 hierarchy can be mounted beside it');
    if (before.mounts.hugetlb) return ctx.skip('hugetlb is mounted as a v1 hierarchy already: nothing to mount');
    if (!existsSync('/proc/sys/vm/nr_hugepages')) return ctx.skip('this kernel has no hugetlb (no /proc/sys/vm/nr_hugepages)');
    const dir = mkdtempSync('/run/novabox-test-hugetlb-');
    try {
      try {
        execFileSync('mount', ['-t', 'cgroup', '-o', 'hugetlb', 'cgroup', dir], { stdio: 'ignore' });
      } catch {
        return ctx.skip('the hugetlb controller is bound to the cgroup2 tree: it cannot be mounted as v1');
      }
      try {
        const mounted = detectCgroups();
        expect(mounted).not.toBe(before);
        expect(mounted.kind !== 'v2' && mounted.mounts.hugetlb).toBe(dir);
      } finally {
        execFileSync('umount', [dir]);
      }
      const after = detectCgroups();
      expect(after.kind !== 'v2' && after.mounts.hugetlb).toBeUndefined();
      expect(after).toEqual(before);
    } finally {
      rmdirSync(dir);
    }
  });
});
