import { describe, expect, it } from 'vitest';
import { BadRequest } from '../../../../src/errors.js';
import { describeCgroupStep, type CgroupStep } from '../../../../src/runtime/cgroups/batch.js';
import { CgroupV1Driver } from '../../../../src/runtime/cgroups/v1.js';
import { CgroupV2Driver } from '../../../../src/runtime/cgroups/v2.js';
import { fakeV1, fakeV2 } from './fake-cgroupfs.js';

const LIMITS = { memoryBytes: 536870912, swapOff: true, cpuQuotaUs: 50000, cpuPeriodUs: 100000, pidsMax: 1024 };
const DEVICE_STEPS = (dir: string): CgroupStep[] => [
  { step: 'write', path: `${dir}/devices.deny`, value: 'a' },
  ...['1:3', '1:5', '1:7', '1:8', '1:9', '5:0', '5:1', '5:2', '136:*'].map(
    (d): CgroupStep => ({ step: 'write', path: `${dir}/devices.allow`, value: `c ${d} rwm` }),
  ),
];

/** This host's layout: v1 controllers, cpu and cpuacct co-mounted. */
const V1_MOUNTS = {
  cpuset: '/sys/fs/cgroup/cpuset',
  cpu: '/sys/fs/cgroup/cpu,cpuacct',
  cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
  memory: '/sys/fs/cgroup/memory',
  devices: '/sys/fs/cgroup/devices',
  freezer: '/sys/fs/cgroup/freezer',
  pids: '/sys/fs/cgroup/pids',
};

describe('planCreate, pure cgroup v2', () => {
  const d = new CgroupV2Driver('/sys/fs/cgroup', { controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'] });

  it('enables controllers above each level, makes the levels (the last exclusively), limits, device filter', () => {
    const b = d.planCreate('novabox/abc', LIMITS);
    const enable = (dir: string): CgroupStep => ({
      step: 'enable',
      path: `${dir}/cgroup.subtree_control`,
      controllers: ['memory', 'cpu', 'pids'],
    });
    expect(b.cgroup).toBe('novabox/abc');
    expect(b.create).toEqual([
      enable('/sys/fs/cgroup'),
      { step: 'mkdir', path: '/sys/fs/cgroup/novabox' },
      enable('/sys/fs/cgroup/novabox'),
      { step: 'mkdir', path: '/sys/fs/cgroup/novabox/abc', exclusive: true },
      { step: 'write', path: '/sys/fs/cgroup/novabox/abc/memory.max', value: '536870912' },
      { step: 'write', path: '/sys/fs/cgroup/novabox/abc/memory.swap.max', value: '0', optional: true },
      { step: 'write', path: '/sys/fs/cgroup/novabox/abc/cpu.max', value: '50000 100000' },
      { step: 'write', path: '/sys/fs/cgroup/novabox/abc/pids.max', value: '1024' },
      { step: 'devices', path: '/sys/fs/cgroup/novabox/abc' },
    ]);
    expect(b.remove).toEqual([
      { step: 'oom-count', path: '/sys/fs/cgroup/novabox/abc/memory.events', key: 'oom_kill' },
      { step: 'rmdir', path: '/sys/fs/cgroup/novabox/abc' },
    ]);
  });

  it('enables only what the root offers; no memory: no OOM count', () => {
    const b = new CgroupV2Driver('/cg', { controllers: ['pids'] }).planCreate('x', {});
    expect(b.create).toEqual([
      { step: 'enable', path: '/cg/cgroup.subtree_control', controllers: ['pids'] },
      { step: 'mkdir', path: '/cg/x', exclusive: true },
      { step: 'devices', path: '/cg/x' },
    ]);
    expect(b.remove[0]).toEqual({ step: 'rmdir', path: '/cg/x' });
  });

  it('refuses bad input before anything is planned', () => {
    expect(() => d.planCreate('../escape', {})).toThrow(BadRequest);
    expect(() => d.planCreate('novabox/x', { pidsMax: 0 })).toThrow(BadRequest);
  });
});

describe('planCreate, cgroup v1 and hybrid', () => {
  it('v1: a level in every hierarchy once (co-mounts once), cpuset inherited top down, devices, limits', () => {
    const b = new CgroupV1Driver(V1_MOUNTS).planCreate('novabox/abc', LIMITS);
    const roots = ['cpuset', 'cpu,cpuacct', 'memory', 'devices', 'freezer', 'pids'].map((h) => `/sys/fs/cgroup/${h}`);
    const cs = '/sys/fs/cgroup/cpuset';
    expect(b.create).toEqual([
      ...roots.flatMap((r): CgroupStep[] => [
        { step: 'mkdir', path: `${r}/novabox` },
        { step: 'mkdir', path: `${r}/novabox/abc`, exclusive: true },
      ]),
      { step: 'inherit', path: `${cs}/novabox/cpuset.cpus`, from: `${cs}/cpuset.cpus` },
      { step: 'inherit', path: `${cs}/novabox/cpuset.mems`, from: `${cs}/cpuset.mems` },
      { step: 'inherit', path: `${cs}/novabox/abc/cpuset.cpus`, from: `${cs}/novabox/cpuset.cpus` },
      { step: 'inherit', path: `${cs}/novabox/abc/cpuset.mems`, from: `${cs}/novabox/cpuset.mems` },
      ...DEVICE_STEPS('/sys/fs/cgroup/devices/novabox/abc'),
      { step: 'write', path: '/sys/fs/cgroup/memory/novabox/abc/memory.limit_in_bytes', value: '536870912' },
      { step: 'write', path: '/sys/fs/cgroup/memory/novabox/abc/memory.memsw.limit_in_bytes', value: '536870912', optional: true },
      { step: 'write', path: '/sys/fs/cgroup/cpu,cpuacct/novabox/abc/cpu.cfs_period_us', value: '100000' },
      { step: 'write', path: '/sys/fs/cgroup/cpu,cpuacct/novabox/abc/cpu.cfs_quota_us', value: '50000' },
      { step: 'write', path: '/sys/fs/cgroup/pids/novabox/abc/pids.max', value: '1024' },
    ]);
    expect(b.remove).toEqual([
      { step: 'oom-count', path: '/sys/fs/cgroup/memory/novabox/abc/memory.oom_control', key: 'oom_kill' },
      ...roots.map((r): CgroupStep => ({ step: 'rmdir', path: `${r}/novabox/abc` })),
    ]);
  });

  it('hybrid: the cgroup2 mount gets the directory too (tracking only: no limits, no eBPF)', () => {
    const b = new CgroupV1Driver(V1_MOUNTS, { unified: '/sys/fs/cgroup/unified' }).planCreate('p/q', {});
    const unified = b.create.filter((s) => s.path.startsWith('/sys/fs/cgroup/unified'));
    expect(unified).toEqual([
      { step: 'mkdir', path: '/sys/fs/cgroup/unified/p' },
      { step: 'mkdir', path: '/sys/fs/cgroup/unified/p/q', exclusive: true },
    ]);
    expect(b.create.some((s) => s.step === 'devices' || s.step === 'enable')).toBe(false);
    expect(b.remove.filter((s) => s.path.startsWith('/sys/fs/cgroup/unified'))).toEqual([
      { step: 'rmdir', path: '/sys/fs/cgroup/unified/p/q' },
    ]);
  });

  it('a limit on an unmounted controller is refused at planning time', () => {
    expect(() => new CgroupV1Driver({ memory: '/m' }).planCreate('x', { pidsMax: 5 })).toThrow(/pids controller is not mounted/);
  });
});

describe('create() executes the planned steps', () => {
  it('v2: the same files as the plan, on an imitation of cgroupfs', () => {
    const fs = fakeV2();
    try {
      const d = new CgroupV2Driver(fs.root, { io: fs.io });
      const b = d.planCreate('n/c', { pidsMax: 9 });
      d.create('n/c', { pidsMax: 9 });
      for (const s of b.create) if (s.step === 'mkdir') expect(fs.exists(s.path.slice(fs.root.length + 1))).toBe(true);
      expect(fs.read('n/c/pids.max')).toBe('9');
      expect(fs.devices).toEqual([`${fs.root}/n/c`]);
    } finally {
      fs.cleanup();
    }
  });

  it('v1: cpuset values copied only into empty levels', () => {
    const fs = fakeV1();
    try {
      const d = new CgroupV1Driver(fs.mounts, { io: fs.io });
      d.create('n/c', {});
      expect(fs.read('cpuset/n/c/cpuset.cpus')).toBe('0-3');
      expect(fs.read('cpuset/n/c/cpuset.mems')).toBe('0');
    } finally {
      fs.cleanup();
    }
  });
});

describe('describeCgroupStep', () => {
  it.each<[CgroupStep, string]>([
    [{ step: 'mkdir', path: '/cg/a' }, 'mkdir /cg/a'],
    [{ step: 'write', path: '/cg/a/pids.max', value: '5' }, 'write "5" to /cg/a/pids.max'],
    [
      { step: 'enable', path: '/cg/cgroup.subtree_control', controllers: ['memory', 'pids'] },
      'enable memory, pids in /cg/cgroup.subtree_control',
    ],
    [{ step: 'inherit', path: '/c/a/cpuset.cpus', from: '/c/cpuset.cpus' }, 'copy /c/cpuset.cpus to /c/a/cpuset.cpus'],
    [{ step: 'devices', path: '/cg/a' }, 'attach the device filter to /cg/a'],
    [{ step: 'rmdir', path: '/cg/a' }, 'rmdir /cg/a'],
  ])('%j', (s, text) => expect(describeCgroupStep(s)).toBe(text));
});
