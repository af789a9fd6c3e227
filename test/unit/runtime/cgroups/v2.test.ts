import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BadRequest, Conflict, SysError } from '../../../../src/errors.js';
import { CgroupV2Driver } from '../../../../src/runtime/cgroups/v2.js';
import { type FakeCgroupfs, fakeV2 } from './fake-cgroupfs.js';

let fs: FakeCgroupfs;
afterEach(() => fs.cleanup());

function driver(opts: Parameters<typeof fakeV2>[0] = {}) {
  fs = fakeV2(opts);
  return new CgroupV2Driver(fs.root, { io: fs.io, freezeTimeoutMs: 30, removeTimeoutMs: 100 });
}

describe('CgroupV2Driver', () => {
  it('reads controllers from the root', () => {
    expect(driver().layout).toEqual({
      kind: 'v2',
      root: fs.root,
      controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'],
    });
  });

  it('create enables memory, cpu and pids down to the parent and writes the limits', () => {
    const cg = driver().create('novabox/web', { memoryBytes: 67108864, swapOff: true, cpuQuotaUs: 50000, pidsMax: 32 });
    expect(cg.path).toBe('novabox/web');
    expect(cg.dirs()).toEqual([join(fs.root, 'novabox/web')]);
    expect(fs.read('cgroup.subtree_control')).toBe('+memory +cpu +pids');
    expect(fs.read('novabox/cgroup.subtree_control')).toBe('+memory +cpu +pids');
    expect(fs.read('novabox/web/cgroup.subtree_control')).toBe('');
    expect(fs.read('novabox/web/memory.max')).toBe('67108864');
    expect(fs.read('novabox/web/memory.swap.max')).toBe('0');
    expect(fs.read('novabox/web/cpu.max')).toBe('50000 100000');
    expect(fs.read('novabox/web/pids.max')).toBe('32');
  });

  it('enables only what is missing, and nothing when all is enabled', () => {
    const d = driver();
    fs.write('cgroup.subtree_control', 'cpu memory\n');
    d.create('a', {});
    expect(fs.read('cgroup.subtree_control')).toBe('+pids');
    fs.write('cgroup.subtree_control', 'cpuset cpu memory pids\n');
    d.create('b', {});
    expect(fs.read('cgroup.subtree_control')).toBe('cpuset cpu memory pids\n');
  });

  it('enables only controllers the root offers', () => {
    driver({ controllers: ['cpu', 'io'] }).create('x/y', {});
    expect(fs.read('cgroup.subtree_control')).toBe('+cpu');
  });

  it('an existing leaf is a Conflict, and is left alone', () => {
    const d = driver();
    d.create('novabox/web', { pidsMax: 5 });
    expect(() => d.create('novabox/web', {})).toThrow(Conflict);
    expect(() => d.create('novabox/web', {})).toThrow(/cgroup .*novabox\/web already exists/);
    expect(fs.read('novabox/web/pids.max')).toBe('5');
  });

  it('a failed limit undoes the directories it made', () => {
    const d = driver({ controllers: ['cpu', 'memory'] });
    expect(() => d.create('novabox/web', { pidsMax: 3 })).toThrow(SysError);
    expect(() => d.create('novabox/web', { pidsMax: 3 })).toThrow(/open .*novabox\/web\/pids.max: ENOENT/);
    expect(fs.exists('novabox')).toBe(false);
  });

  it('bad input changes nothing', () => {
    const d = driver();
    expect(() => d.create('novabox/web', { memoryBytes: -5 })).toThrow(BadRequest);
    for (const path of ['', '/abs', 'a//b', 'a/../b', './a', 'a/']) {
      expect(() => d.create(path, {})).toThrow(BadRequest);
    }
    expect(fs.exists('novabox')).toBe(false);
  });

  it('skips memory.swap.max without swap accounting', () => {
    driver({ drop: ['memory.swap.max'] }).create('c', { memoryBytes: 4096, swapOff: true });
    expect(fs.read('c/memory.max')).toBe('4096');
    expect(fs.exists('c/memory.swap.max')).toBe(false);
  });

  it('setLimits converts shares to weight', () => {
    const cg = driver().create('c', {});
    cg.setLimits({ cpuShares: 1024, cpuPeriodUs: 20000 });
    expect(fs.read('c/cpu.weight')).toBe('39');
    expect(fs.read('c/cpu.max')).toBe('max 20000');
  });

  it('place writes the pid to cgroup.procs; pids reads it back', () => {
    const cg = driver().create('c', {});
    cg.place(4242);
    expect(fs.read('c/cgroup.procs')).toBe('4242');
    fs.write('c/cgroup.procs', '4242\n4243\n');
    expect(cg.pids()).toEqual([4242, 4243]);
  });

  it('freeze waits for cgroup.events frozen 1; thaw writes 0', () => {
    const cg = driver().create('c', {});
    fs.write('c/cgroup.events', 'populated 1\nfrozen 1\n');
    cg.freeze();
    expect(fs.read('c/cgroup.freeze')).toBe('1');
    cg.thaw();
    expect(fs.read('c/cgroup.freeze')).toBe('0');
  });

  it('freeze gives up after its timeout and thaws back', () => {
    const cg = driver().create('c', {});
    expect(() => cg.freeze()).toThrow(/freeze .*c: ETIMEDOUT \(cgroup.events not frozen after 30 ms\)/);
    expect(fs.read('c/cgroup.freeze')).toBe('0');
  });

  it('stats', () => {
    const cg = driver().create('c', {});
    fs.write('c/memory.current', '1000\n');
    fs.write('c/memory.peak', '2000\n');
    fs.write('c/cpu.stat', 'usage_usec 777\nuser_usec 700\nsystem_usec 77\n');
    fs.write('c/pids.current', '3\n');
    fs.write('c/memory.events', 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n');
    fs.write('c/memory.max', '4096\n');
    fs.write('c/io.stat', '8:0 rbytes=10 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n');
    expect(cg.stats()).toEqual({
      memoryCurrentBytes: 1000,
      memoryPeakBytes: 2000,
      cpuUsageUs: 777,
      pidsCurrent: 3,
      oomKills: 1,
      memoryLimitBytes: 4096,
      ioReadBytes: 10,
      ioWriteBytes: 20,
    });
  });

  it('stats: memory.peak absent (before Linux 5.19) is null; a removed cgroup is ENOENT', () => {
    const d = driver({ drop: ['memory.peak'] });
    const cg = d.create('c', {});
    expect(cg.stats().memoryPeakBytes).toBeNull();
    cg.remove();
    expect(() => cg.stats()).toThrow(/ENOENT/);
  });

  it('killAll uses cgroup.kill for SIGKILL', () => {
    const cg = driver().create('c', {});
    fs.write('c/cgroup.procs', '10\n11\n');
    cg.killAll();
    expect(fs.read('c/cgroup.kill')).toBe('1');
    expect(fs.kills).toEqual([]);
  });

  it('killAll signals each pid without cgroup.kill, and for other signals', () => {
    const cg = driver({ drop: ['cgroup.kill'] }).create('c', {});
    fs.write('c/cgroup.procs', '10\n11\n');
    cg.killAll('SIGTERM');
    expect(fs.kills).toEqual([
      [10, 'SIGTERM'],
      [11, 'SIGTERM'],
    ]);
    cg.killAll();
    expect(fs.kills.slice(2)).toEqual([
      [10, 'SIGKILL'],
      [11, 'SIGKILL'],
    ]);
    expect(cg.pids()).toEqual([]);
  });

  it('remove kills stragglers, removes child cgroups, and is idempotent', () => {
    const d = driver({ drop: ['cgroup.kill'] });
    const cg = d.create('novabox/web', {});
    fs.io.mkdir(join(fs.root, 'novabox/web/init.scope'));
    fs.write('novabox/web/init.scope/cgroup.procs', '20\n');
    fs.write('novabox/web/cgroup.procs', '21\n');
    cg.remove();
    expect(fs.exists('novabox/web')).toBe(false);
    expect(fs.exists('novabox')).toBe(true); // the parent every container shares stays
    expect(fs.kills.map(([pid]) => pid).sort()).toEqual([20, 21]);
    cg.remove();
    d.open('never/made').remove();
  });

  it('remove retries EBUSY, then gives up with a SysError', () => {
    const d = driver();
    d.create('c', {});
    let busy = 2;
    const rmdir = fs.io.rmdir;
    fs.io.rmdir = (path) => {
      if (busy-- > 0) throw Object.assign(new Error('EBUSY'), { code: 'EBUSY', syscall: 'rmdir', path });
      rmdir(path);
    };
    new CgroupV2Driver(fs.root, { io: fs.io }).open('c').remove();
    expect(fs.exists('c')).toBe(false);

    mkdirSync(join(fs.root, 'stuck'));
    fs.io.rmdir = (path) => {
      throw Object.assign(new Error('EBUSY'), { code: 'EBUSY', syscall: 'rmdir', path });
    };
    const started = Date.now();
    expect(() => new CgroupV2Driver(fs.root, { io: fs.io, removeTimeoutMs: 50 }).open('stuck').remove()).toThrow(/rmdir .*stuck: EBUSY/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('remove reports processes that survive SIGKILL', () => {
    const d = driver({ drop: ['cgroup.kill'] });
    const cg = d.create('c', {});
    fs.write('c/cgroup.procs', '30\n');
    fs.io.kill = () => {};
    expect(() => new CgroupV2Driver(fs.root, { io: fs.io, removeTimeoutMs: 30 }).open('c').remove()).toThrow(
      /rmdir .*c: EBUSY \(processes 30 still inside after SIGKILL\)/,
    );
    expect(cg.pids()).toEqual([30]);
  });
});
