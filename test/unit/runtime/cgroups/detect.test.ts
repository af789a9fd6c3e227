import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { NovaboxError } from '../../../../src/errors.js';
import { cachingDetector, cgroupLines, detectCgroups, parseMountinfo } from '../../../../src/runtime/cgroups/detect.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const noRead = (path: string): string => {
  throw new Error(`unexpected read of ${path}`);
};

describe('parseMountinfo', () => {
  it('reads mount point, root, type and super options, skipping optional fields', () => {
    const [entry] = parseMountinfo('26 24 0:23 / /sys/fs/cgroup rw,nosuid shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate\n');
    expect(entry).toEqual({ root: '/', mountPoint: '/sys/fs/cgroup', fsType: 'cgroup2', superOptions: ['rw', 'nsdelegate'] });
  });

  it('unescapes octal escapes in paths', () => {
    const entries = parseMountinfo(fixture('v2-systemd.mountinfo'));
    expect(entries.map((e) => e.mountPoint)).toContain('/mnt/my disk');
  });

  it('skips blank and malformed lines', () => {
    expect(parseMountinfo('\n\ngarbage line\n')).toEqual([]);
  });
});

describe('detectCgroups', () => {
  it('this host (captured): hybrid, separate cpu and cpuacct, name=systemd tracked apart', () => {
    expect(detectCgroups(fixture('hybrid-this-host.mountinfo'), noRead)).toEqual({
      kind: 'hybrid',
      mounts: {
        cpu: '/sys/fs/cgroup/cpu',
        cpuacct: '/sys/fs/cgroup/cpuacct',
        cpuset: '/sys/fs/cgroup/cpuset',
        memory: '/sys/fs/cgroup/memory',
        devices: '/sys/fs/cgroup/devices',
        freezer: '/sys/fs/cgroup/freezer',
        blkio: '/sys/fs/cgroup/blkio',
        pids: '/sys/fs/cgroup/pids',
      },
      unified: '/sys/fs/cgroup/unified',
      named: { systemd: '/sys/fs/cgroup/systemd' },
    });
  });

  it('hybrid with co-mounted cpu,cpuacct', () => {
    const layout = detectCgroups(fixture('hybrid-ubuntu2004.mountinfo'), noRead);
    expect(layout).toMatchObject({ kind: 'hybrid', unified: '/sys/fs/cgroup/unified' });
    if (layout.kind === 'v2') throw new Error('unreachable');
    expect(layout.mounts.cpu).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(layout.mounts.cpuacct).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(layout.mounts).not.toHaveProperty('name=systemd');
    expect(layout.mounts).not.toHaveProperty('systemd');
  });

  it('pure v1: co-mounts, mount flags are not controllers, /sys/fs/cgroup wins over a second mount', () => {
    const layout = detectCgroups(fixture('v1-centos7.mountinfo'), noRead);
    expect(layout).toEqual({
      kind: 'v1',
      mounts: {
        net_cls: '/sys/fs/cgroup/net_cls,net_prio',
        net_prio: '/sys/fs/cgroup/net_cls,net_prio',
        cpu: '/sys/fs/cgroup/cpu,cpuacct',
        cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
        memory: '/sys/fs/cgroup/memory',
        blkio: '/sys/fs/cgroup/blkio',
        freezer: '/sys/fs/cgroup/freezer',
        pids: '/sys/fs/cgroup/pids',
        devices: '/sys/fs/cgroup/devices',
        cpuset: '/sys/fs/cgroup/cpuset',
        hugetlb: '/sys/fs/cgroup/hugetlb',
        perf_event: '/sys/fs/cgroup/perf_event',
      },
      named: { systemd: '/sys/fs/cgroup/systemd' },
    });
  });

  it('pure v2: controllers from <root>/cgroup.controllers', () => {
    const read = vi.fn((path: string) => {
      expect(path).toBe('/sys/fs/cgroup/cgroup.controllers');
      return 'cpuset cpu io memory hugetlb pids rdma misc\n';
    });
    expect(detectCgroups(fixture('v2-systemd.mountinfo'), read)).toEqual({
      kind: 'v2',
      root: '/sys/fs/cgroup',
      controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'],
    });
  });

  it('v2 at /sys/fs/cgroup wins over a stray v1 mount elsewhere', () => {
    const text = `${fixture('v2-systemd.mountinfo')}90 31 0:40 / /run/netcls rw - cgroup cgroup rw,net_cls\n`;
    expect(detectCgroups(text, () => 'memory')).toMatchObject({ kind: 'v2', root: '/sys/fs/cgroup' });
  });

  it('a lone cgroup2 mount elsewhere is v2 there', () => {
    const text = '30 1 0:30 / /mnt/cg rw - cgroup2 none rw\n';
    expect(detectCgroups(text, () => '')).toEqual({ kind: 'v2', root: '/mnt/cg', controllers: [] });
  });

  it('no cgroup mount at all is an error with a hint', () => {
    const call = () => detectCgroups('27 1 254:0 / / rw - ext4 /dev/vda rw\n', noRead);
    expect(call).toThrow(NovaboxError);
    expect(call).toThrow(/no cgroup file system is mounted/);
  });

  it('reads the real mountinfo once per process', () => {
    const first = detectCgroups();
    expect(detectCgroups()).toBe(first);
  });
});

describe('cgroupLines', () => {
  it('keeps the cgroup and cgroup2 mounts of a table and nothing else', () => {
    const text = fixture('hybrid-this-host.mountinfo');
    const lines = cgroupLines(text);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.flatMap(parseMountinfo)).toEqual(parseMountinfo(text).filter((e) => e.fsType === 'cgroup' || e.fsType === 'cgroup2'));
  });

  it('does not take a type that only starts with "cgroup", and reads a last line without a newline', () => {
    const t = '30 1 0:1 / /a rw - cgroupfs x rw\n31 1 0:2 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids';
    expect(cgroupLines(t)).toEqual(['31 1 0:2 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids']);
  });
});

describe('the cached layout of a long-running process', () => {
  // a hybrid host, then the same with a hugetlb v1 hierarchy mounted (what the anchors'
  // kit and a systemd hybrid boot do) and unmounted again
  const base = [
    '20 1 0:18 / /sys rw - sysfs sysfs rw',
    '25 20 0:22 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755',
    '26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw',
    '28 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
    '29 25 0:26 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids',
  ].join('\n');
  const withHugetlb = `${base}\n90 25 0:60 / /sys/fs/cgroup/hugetlb rw - cgroup cgroup rw,hugetlb\n`;

  it('is reused while the cgroup mounts are the same, and detected again when they change', () => {
    let table = base;
    const reads = vi.fn(() => table);
    const detect = cachingDetector(reads, noRead);
    const first = detect();
    expect(first.kind).toBe('hybrid');
    expect(first.kind !== 'v2' && first.mounts.hugetlb).toBeUndefined();
    table = `${base}\n40 1 0:70 / /mnt rw - ext4 /dev/sdb rw\n`; // not a cgroup mount: same layout
    expect(detect()).toBe(first);
    table = withHugetlb;
    const mounted = detect();
    expect(mounted).not.toBe(first);
    expect(mounted.kind !== 'v2' && mounted.mounts.hugetlb).toBe('/sys/fs/cgroup/hugetlb');
    table = base; // unmounted again: starts must not use the gone hierarchy
    const unmounted = detect();
    expect(unmounted.kind !== 'v2' && unmounted.mounts.hugetlb).toBeUndefined();
    expect(reads).toHaveBeenCalledTimes(4);
  });

  it("reads a pure v2 host's controllers again when they change with the table", () => {
    let controllers = 'cpu memory pids hugetlb\n';
    let table = '25 20 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw';
    const detect = cachingDetector(
      () => table,
      () => controllers,
    );
    expect(detect()).toEqual({ kind: 'v2', root: '/sys/fs/cgroup', controllers: ['cpu', 'memory', 'pids', 'hugetlb'] });
    controllers = 'cpu memory pids\n';
    table = `${table}\n90 25 0:60 / /mnt/hugetlb rw - cgroup cgroup rw,hugetlb`;
    // cgroup2 on /sys/fs/cgroup stays the layout; hugetlb left it for the v1 hierarchy
    expect(detect()).toEqual({ kind: 'v2', root: '/sys/fs/cgroup', controllers: ['cpu', 'memory', 'pids'] });
  });
});
