import { describe, expect, it } from 'vitest';
import { BadRequest } from '../../../../src/errors.js';
import { cpusToQuota, parseCpus, parseMemory, sharesToWeight, toCgroupWrites } from '../../../../src/runtime/cgroups/limits.js';
import type { CgroupLimits, CgroupWrite } from '../../../../src/runtime/cgroups/types.js';

const v2 = (file: string, value: string, optional?: boolean): CgroupWrite => ({
  controller: '',
  file,
  value,
  ...(optional ? { optional } : {}),
});
const v1 = (controller: string, file: string, value: string, optional?: boolean): CgroupWrite => ({
  controller,
  file,
  value,
  ...(optional ? { optional } : {}),
});

describe('toCgroupWrites v2', () => {
  it.each<[string, CgroupLimits, CgroupWrite[]]>([
    ['nothing', {}, []],
    ['memory', { memoryBytes: 67108864 }, [v2('memory.max', '67108864')]],
    ['memory without swap', { memoryBytes: 1024, swapOff: true }, [v2('memory.max', '1024'), v2('memory.swap.max', '0', true)]],
    ['swap off alone', { swapOff: true }, [v2('memory.swap.max', '0', true)]],
    ['quota, default period', { cpuQuotaUs: 50000 }, [v2('cpu.max', '50000 100000')]],
    ['quota and period', { cpuQuotaUs: 20000, cpuPeriodUs: 10000 }, [v2('cpu.max', '20000 10000')]],
    ['period alone', { cpuPeriodUs: 50000 }, [v2('cpu.max', 'max 50000')]],
    ['shares 1024 -> weight 39', { cpuShares: 1024 }, [v2('cpu.weight', '39')]],
    ['shares 2 -> weight 1', { cpuShares: 2 }, [v2('cpu.weight', '1')]],
    ['shares 262144 -> weight 10000', { cpuShares: 262144 }, [v2('cpu.weight', '10000')]],
    ['pids', { pidsMax: 32 }, [v2('pids.max', '32')]],
    [
      'everything, in order',
      { memoryBytes: 100, swapOff: true, cpuQuotaUs: 1000, cpuShares: 512, pidsMax: 7 },
      [
        v2('memory.max', '100'),
        v2('memory.swap.max', '0', true),
        v2('cpu.max', '1000 100000'),
        v2('cpu.weight', '20'),
        v2('pids.max', '7'),
      ],
    ],
  ])('%s', (_, limits, writes) => {
    expect(toCgroupWrites('v2', limits)).toEqual(writes);
  });
});

describe('toCgroupWrites v1', () => {
  it.each<[string, CgroupLimits, CgroupWrite[]]>([
    ['nothing', {}, []],
    ['memory', { memoryBytes: 4096 }, [v1('memory', 'memory.limit_in_bytes', '4096')]],
    [
      'memory without swap: memsw = memory, optional',
      { memoryBytes: 4096, swapOff: true },
      [v1('memory', 'memory.limit_in_bytes', '4096'), v1('memory', 'memory.memsw.limit_in_bytes', '4096', true)],
    ],
    ['swap off without a memory limit: nothing to write', { swapOff: true }, []],
    ['quota: period first', { cpuQuotaUs: 50000 }, [v1('cpu', 'cpu.cfs_period_us', '100000'), v1('cpu', 'cpu.cfs_quota_us', '50000')]],
    [
      'quota and period: period first',
      { cpuQuotaUs: 5000, cpuPeriodUs: 10000 },
      [v1('cpu', 'cpu.cfs_period_us', '10000'), v1('cpu', 'cpu.cfs_quota_us', '5000')],
    ],
    ['period alone', { cpuPeriodUs: 20000 }, [v1('cpu', 'cpu.cfs_period_us', '20000')]],
    ['shares', { cpuShares: 512 }, [v1('cpu', 'cpu.shares', '512')]],
    ['pids', { pidsMax: 32 }, [v1('pids', 'pids.max', '32')]],
  ])('%s', (_, limits, writes) => {
    expect(toCgroupWrites('v1', limits)).toEqual(writes);
  });
});

describe('toCgroupWrites: block I/O throttles', () => {
  const throttles = {
    blockIoThrottles: [
      { major: 7, minor: 3, writeBps: 1048576 },
      { major: 8, minor: 0, readBps: 10, readIops: 20, writeIops: 30 },
    ],
  };

  it('v2: one io.max line per device, every key, max where there is no limit', () => {
    expect(toCgroupWrites('v2', throttles)).toEqual([
      v2('io.max', '7:3 rbps=max wbps=1048576 riops=max wiops=max'),
      v2('io.max', '8:0 rbps=10 wbps=max riops=20 wiops=30'),
    ]);
  });

  it('v1: each throttle file per device, 0 (no limit) where there is none', () => {
    expect(toCgroupWrites('v1', { blockIoThrottles: [throttles.blockIoThrottles[0]!] })).toEqual([
      v1('blkio', 'blkio.throttle.read_bps_device', '7:3 0'),
      v1('blkio', 'blkio.throttle.write_bps_device', '7:3 1048576'),
      v1('blkio', 'blkio.throttle.read_iops_device', '7:3 0'),
      v1('blkio', 'blkio.throttle.write_iops_device', '7:3 0'),
    ]);
  });

  it.each<[string, CgroupLimits, RegExp]>([
    [
      'a rate of 0',
      { blockIoThrottles: [{ major: 7, minor: 3, readBps: 0 }] },
      /block I\/O readBps 0 of device 7:3 must be a positive whole number/,
    ],
    ['a fractional rate', { blockIoThrottles: [{ major: 7, minor: 3, writeIops: 1.5 }] }, /writeIops 1\.5/],
    ['a major beyond 4095', { blockIoThrottles: [{ major: 4096, minor: 0, readBps: 1 }] }, /block device 4096:0 is not a device number/],
  ])('refuses %s', (_, limits, message) => {
    expect(() => toCgroupWrites('v2', limits)).toThrow(message);
  });
});

describe('toCgroupWrites: huge page limits', () => {
  it('v2: hugetlb.<size>.max and, where the kernel has it, rsvd.max', () => {
    expect(
      toCgroupWrites('v2', {
        hugetlb: [
          { pageSize: '2MB', limitBytes: 0 },
          { pageSize: '1GB', limitBytes: 1 << 30 },
        ],
      }),
    ).toEqual([
      v2('hugetlb.2MB.max', '0'),
      v2('hugetlb.2MB.rsvd.max', '0', true),
      v2('hugetlb.1GB.max', String(1 << 30)),
      v2('hugetlb.1GB.rsvd.max', String(1 << 30), true),
    ]);
  });

  it('v1: refused in one sentence', () => {
    expect(() => toCgroupWrites('v1', { hugetlb: [{ pageSize: '2MB', limitBytes: 0 }] })).toThrow(
      'huge page limits are set on cgroup v2 only, and this host has cgroup v1 hierarchies',
    );
  });

  it('refuses a page size that is no size', () => {
    expect(() => toCgroupWrites('v2', { hugetlb: [{ pageSize: '2MB/../x', limitBytes: 0 }] })).toThrow(
      /huge page size "2MB\/\.\.\/x" is not a size/,
    );
  });
});

describe('toCgroupWrites rejects', () => {
  it.each<[CgroupLimits, RegExp]>([
    [{ memoryBytes: 0 }, /memory limit 0/],
    [{ memoryBytes: -1 }, /memory limit -1/],
    [{ memoryBytes: 1.5 }, /memory limit 1.5/],
    [{ cpuQuotaUs: 999 }, /CPU quota 999 us/],
    [{ cpuPeriodUs: 999 }, /CPU period 999 us/],
    [{ cpuPeriodUs: 1_000_001 }, /CPU period/],
    [{ cpuShares: 1 }, /CPU shares 1 /],
    [{ cpuShares: 262145 }, /CPU shares/],
    [{ pidsMax: 0 }, /pids limit 0/],
    [{ pidsMax: Number.NaN }, /pids limit NaN/],
  ])('%o', (limits, message) => {
    for (const kind of ['v1', 'v2'] as const) {
      expect(() => toCgroupWrites(kind, limits)).toThrow(BadRequest);
      expect(() => toCgroupWrites(kind, limits)).toThrow(message);
    }
  });
});

describe('sharesToWeight', () => {
  it.each([
    [2, 1],
    [1024, 39],
    [262144, 10000],
  ])('%i -> %i', (shares, weight) => expect(sharesToWeight(shares)).toBe(weight));
});

describe('parseMemory', () => {
  it.each<[string, number]>([
    ['0', 0],
    ['4096', 4096],
    ['512b', 512],
    ['1k', 1024],
    ['64m', 64 * 1024 ** 2],
    ['64M', 64 * 1024 ** 2],
    ['64mb', 64 * 1024 ** 2],
    ['64MB', 64 * 1024 ** 2],
    ['2g', 2 * 1024 ** 3],
    ['1.5G', 1.5 * 1024 ** 3],
    ['1t', 1024 ** 4],
    [' 8 k ', 8192],
  ])('%j -> %i', (text, bytes) => expect(parseMemory(text)).toBe(bytes));

  it.each(['', 'm', 'abc', '-1m', '64x', '64mib', '1e3', '64 m b', '0x10', '1,5g', '99999999999t'])('rejects %j', (text) => {
    expect(() => parseMemory(text)).toThrow(BadRequest);
    expect(() => parseMemory(text)).toThrow(/memory size/);
  });
});

describe('cpusToQuota', () => {
  it.each<[number, number | undefined, { quotaUs: number; periodUs: number }]>([
    [0.5, undefined, { quotaUs: 50000, periodUs: 100000 }],
    [1, undefined, { quotaUs: 100000, periodUs: 100000 }],
    [2.25, undefined, { quotaUs: 225000, periodUs: 100000 }],
    [0.01, undefined, { quotaUs: 1000, periodUs: 100000 }],
    [1024, undefined, { quotaUs: 102400000, periodUs: 100000 }],
    [0.5, 10000, { quotaUs: 5000, periodUs: 10000 }],
  ])('%d CPUs, period %s', (cpus, periodUs, expected) => {
    expect(cpusToQuota(cpus, periodUs)).toEqual(expected);
  });

  it.each<[number, RegExp]>([
    [0, /greater than 0/],
    [-1, /greater than 0/],
    [Number.NaN, /greater than 0/],
    [Number.POSITIVE_INFINITY, /greater than 0/],
    [0.001, /too small: the minimum is 0.01/],
  ])('rejects %d', (cpus, message) => {
    expect(() => cpusToQuota(cpus)).toThrow(BadRequest);
    expect(() => cpusToQuota(cpus)).toThrow(message);
  });
});

describe('parseCpus', () => {
  it.each([
    ['0.5', 0.5],
    ['2', 2],
    [' 1.5 ', 1.5],
    ['.25', 0.25],
    ['1e1', 10],
  ])('reads %j', (text, want) => {
    expect(parseCpus(text)).toBe(want);
  });

  it.each(['abc', '', '-1', '0', 'NaN', 'Infinity', '0x10', '1,5'])('refuses %j naming what was given', (text) => {
    expect(() => parseCpus(text)).toThrow(BadRequest);
    expect(() => parseCpus(text)).toThrow(`invalid CPU count ${JSON.stringify(text)}: expected a number greater than 0, e.g. 0.5`);
  });
});
