import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BadRequest, Conflict, SysError } from '../../../../src/errors.js';
import { CgroupV1Driver, V1_DEVICE_RULES } from '../../../../src/runtime/cgroups/v1.js';
import { type FakeV1, V1_HIERARCHIES, fakeV1 } from './fake-cgroupfs.js';

let fs: FakeV1;
afterEach(() => fs.cleanup());

function driver(opts: Parameters<typeof fakeV1>[0] = { unified: true }) {
  fs = fakeV1(opts);
  return new CgroupV1Driver(fs.mounts, { unified: fs.unified, io: fs.io, freezeTimeoutMs: 30, removeTimeoutMs: 100 });
}

const HIERARCHY_DIRS = ['memory', 'cpu,cpuacct', 'pids', 'freezer', 'cpuset', 'devices', 'blkio'];

describe('CgroupV1Driver', () => {
  it('layout: hybrid with a unified mount, v1 without', () => {
    expect(driver().layout.kind).toBe('hybrid');
    fs.cleanup();
    expect(driver({}).layout).toEqual({ kind: 'v1', mounts: fs.mounts });
  });

  it('create makes the directory once per hierarchy (co-mounts once), plus unified', () => {
    const cg = driver().create('novabox/web', {});
    expect(
      cg
        .dirs()
        .map((d) => d.slice(fs.root.length + 1))
        .sort(),
    ).toEqual([...HIERARCHY_DIRS, 'unified'].map((h) => `${h}/novabox/web`).sort());
    expect(fs.exists('systemd/novabox')).toBe(false);
  });

  it('create writes limits into the right hierarchies', () => {
    driver().create('novabox/web', { memoryBytes: 67108864, swapOff: true, cpuQuotaUs: 50000, cpuShares: 512, pidsMax: 32 });
    expect(fs.read('memory/novabox/web/memory.limit_in_bytes')).toBe('67108864');
    expect(fs.read('memory/novabox/web/memory.memsw.limit_in_bytes')).toBe('67108864');
    expect(fs.read('cpu,cpuacct/novabox/web/cpu.cfs_period_us')).toBe('100000');
    expect(fs.read('cpu,cpuacct/novabox/web/cpu.cfs_quota_us')).toBe('50000');
    expect(fs.read('cpu,cpuacct/novabox/web/cpu.shares')).toBe('512');
    expect(fs.read('pids/novabox/web/pids.max')).toBe('32');
  });

  it('skips memsw without swap accounting', () => {
    driver({ drop: ['memory.memsw.limit_in_bytes'] }).create('c', { memoryBytes: 4096, swapOff: true });
    expect(fs.read('memory/c/memory.limit_in_bytes')).toBe('4096');
    expect(fs.exists('memory/c/memory.memsw.limit_in_bytes')).toBe(false);
  });

  it('copies cpuset.cpus and cpuset.mems into empty levels, keeping a set ancestor', () => {
    const d = driver();
    d.create('novabox/a', {});
    expect(fs.read('cpuset/novabox/cpuset.cpus')).toBe('0-3');
    expect(fs.read('cpuset/novabox/a/cpuset.cpus')).toBe('0-3');
    expect(fs.read('cpuset/novabox/a/cpuset.mems')).toBe('0');
    fs.write('cpuset/novabox/cpuset.cpus', '1\n');
    d.create('novabox/b', {});
    expect(fs.read('cpuset/novabox/b/cpuset.cpus')).toBe('1');
  });

  it('device allow-list: deny all, then the standard character devices', () => {
    expect(V1_DEVICE_RULES[0]).toEqual({ controller: 'devices', file: 'devices.deny', value: 'a' });
    expect(V1_DEVICE_RULES.slice(1).map((r) => r.value)).toEqual([
      'c 1:3 rwm',
      'c 1:5 rwm',
      'c 1:7 rwm',
      'c 1:8 rwm',
      'c 1:9 rwm',
      'c 5:0 rwm',
      'c 5:1 rwm',
      'c 5:2 rwm',
      'c 136:* rwm',
    ]);
    driver().create('c', {});
    expect(fs.read('devices/c/devices.deny')).toBe('a');
    expect(fs.read('devices/c/devices.allow')).toBe('c 136:* rwm');
  });

  it('an existing leaf is a Conflict and the levels made in other hierarchies are undone', () => {
    const d = driver();
    fs.io.mkdir(join(fs.root, 'pids', 'web'));
    expect(() => d.create('web', {})).toThrow(Conflict);
    for (const h of HIERARCHY_DIRS.filter((h) => h !== 'pids')) expect(fs.exists(`${h}/web`)).toBe(false);
    expect(fs.exists('pids/web')).toBe(true);
  });

  it('a limit on an unmounted controller fails and undoes', () => {
    const { pids: _, ...hierarchies } = V1_HIERARCHIES;
    const d = driver({ hierarchies });
    expect(() => d.create('novabox/web', { pidsMax: 4 })).toThrow(SysError);
    expect(() => d.create('novabox/web', { pidsMax: 4 })).toThrow(/pids:\/novabox\/web: ENOENT \(the pids controller is not mounted\)/);
    for (const h of Object.keys(hierarchies)) expect(fs.exists(`${h}/novabox`)).toBe(false);
  });

  it('bad input changes nothing', () => {
    const d = driver();
    expect(() => d.create('c', { cpuShares: 1 })).toThrow(BadRequest);
    expect(() => d.create('../c', {})).toThrow(BadRequest);
    expect(fs.exists('memory/c')).toBe(false);
  });

  it('place writes the pid in every hierarchy and the unified mount; pids deduplicates', () => {
    const cg = driver().create('c', {});
    cg.place(4242);
    for (const h of [...HIERARCHY_DIRS, 'unified']) expect(fs.read(`${h}/c/cgroup.procs`)).toBe('4242');
    fs.write('memory/c/cgroup.procs', '4242\n4243\n');
    expect(cg.pids().sort()).toEqual([4242, 4243]);
  });

  it('freeze writes FROZEN and waits for it; thaw writes THAWED', () => {
    const cg = driver().create('c', {});
    cg.freeze();
    expect(fs.read('freezer/c/freezer.state')).toBe('FROZEN');
    cg.thaw();
    expect(fs.read('freezer/c/freezer.state')).toBe('THAWED');
  });

  it('freeze without a freezer hierarchy says so', () => {
    const { freezer: _, ...hierarchies } = V1_HIERARCHIES;
    const cg = driver({ hierarchies }).create('c', {});
    expect(() => cg.freeze()).toThrow(/the freezer controller is not mounted/);
  });

  it('stats: cpuacct.usage nanoseconds to microseconds, oom_kill from memory.oom_control', () => {
    const cg = driver().create('c', {});
    fs.write('memory/c/memory.usage_in_bytes', '1000\n');
    fs.write('memory/c/memory.max_usage_in_bytes', '3000\n');
    fs.write('cpu,cpuacct/c/cpuacct.usage', '123456789012345678\n');
    fs.write('pids/c/pids.current', '2\n');
    fs.write('memory/c/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 5\n');
    fs.write('memory/c/memory.limit_in_bytes', '9223372036854771712\n');
    fs.write('blkio/c/blkio.throttle.io_service_bytes', '8:0 Read 7\n8:0 Write 9\n8:0 Total 16\nTotal 16\n');
    expect(cg.stats()).toEqual({
      memoryCurrentBytes: 1000,
      memoryPeakBytes: 3000,
      cpuUsageUs: 123456789012345,
      pidsCurrent: 2,
      oomKills: 5,
      memoryLimitBytes: null,
      ioReadBytes: 7,
      ioWriteBytes: 9,
    });
  });

  it('killAll signals every pid once and thaws a frozen cgroup after SIGKILL', () => {
    const cg = driver().create('c', {});
    fs.write('memory/c/cgroup.procs', '10\n11\n');
    fs.write('pids/c/cgroup.procs', '11\n');
    fs.write('freezer/c/freezer.state', 'FROZEN\n');
    cg.killAll('SIGTERM');
    expect(fs.kills).toEqual([
      [10, 'SIGTERM'],
      [11, 'SIGTERM'],
    ]);
    expect(fs.read('freezer/c/freezer.state')).toBe('FROZEN\n');
    cg.killAll();
    expect(fs.kills.slice(2)).toEqual([
      [10, 'SIGKILL'],
      [11, 'SIGKILL'],
    ]);
    expect(fs.read('freezer/c/freezer.state')).toBe('THAWED');
  });

  it('remove thaws frozen cgroups top-down, children included', () => {
    driver().create('novabox/web', {});
    fs.io.mkdir(join(fs.root, 'freezer/novabox/web/inner'));
    fs.write('freezer/novabox/web/freezer.state', 'FROZEN\n');
    fs.write('freezer/novabox/web/inner/freezer.state', 'FREEZING\n');
    const thawed: string[] = [];
    const rmdir = fs.io.rmdir;
    // Every freezer directory that is actually removed must be thawed by then
    // (an attempt the kernel refuses changes nothing).
    fs.io.rmdir = (path) => {
      const state = path.includes('/freezer/novabox/') ? fs.read(`${path.slice(fs.root.length + 1)}/freezer.state`) : undefined;
      rmdir(path);
      if (state !== undefined) thawed.push(state);
    };
    new CgroupV1Driver(fs.mounts, { unified: fs.unified, io: fs.io }).open('novabox/web').remove();
    expect(thawed).toEqual(['THAWED', 'THAWED']);
    expect(fs.exists('freezer/novabox/web')).toBe(false);
  });

  it('remove empties and removes every hierarchy, idempotently', () => {
    const d = driver();
    const cg = d.create('novabox/web', {});
    cg.place(50);
    cg.remove();
    for (const h of [...HIERARCHY_DIRS, 'unified']) {
      expect(fs.exists(`${h}/novabox/web`)).toBe(false);
      // the parent every container shares stays
      expect(fs.exists(`${h}/novabox`)).toBe(true);
    }
    expect(fs.kills).toEqual([[50, 'SIGKILL']]);
    cg.remove();
    d.open('novabox').remove();
    expect(fs.exists('memory/novabox')).toBe(false);
  });

  it('remove keeps the parent, also after the last cgroup under it; create remakes a removed one', () => {
    const d = driver();
    const a = d.create('novabox/a', {});
    d.create('novabox/b', {});
    a.remove();
    expect(fs.exists('memory/novabox/a')).toBe(false);
    expect(fs.exists('memory/novabox/b')).toBe(true);
    d.open('novabox/b').remove();
    expect(fs.exists('memory/novabox/b')).toBe(false);
    expect(fs.exists('memory/novabox')).toBe(true);
    d.open('novabox').remove(); // an administrator's removal
    d.create('novabox/c', {});
    expect(fs.exists('memory/novabox/c')).toBe(true);
  });
});
