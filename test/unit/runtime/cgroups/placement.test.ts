import { describe, expect, it } from 'vitest';
import { mustPlaceAfterClone, placesItself, placeLaunch, placementFor } from '../../../../src/runtime/cgroups/placement.js';
import type { CgroupLayout } from '../../../../src/runtime/cgroups/types.js';
import type { LaunchPlan } from '../../../../src/sys/ops.js';

const v1Mounts = {
  cpu: '/sys/fs/cgroup/cpu,cpuacct',
  cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
  memory: '/sys/fs/cgroup/memory',
  pids: '/sys/fs/cgroup/pids',
  freezer: '/sys/fs/cgroup/freezer',
  net_cls: '/sys/fs/cgroup/net_cls',
};
const LAYOUTS: Record<string, CgroupLayout> = {
  v2: { kind: 'v2', root: '/sys/fs/cgroup', controllers: ['cpu', 'memory', 'pids'] },
  v1: { kind: 'v1', mounts: v1Mounts },
  hybrid: { kind: 'hybrid', mounts: v1Mounts, unified: '/sys/fs/cgroup/unified' },
};
const plan = (): LaunchPlan => ({
  namespaces: ['mount', 'cgroup'],
  ops: [
    { op: 'unshare', namespaces: ['cgroup'] },
    { op: 'exec', file: 'true', searchPath: '/bin', argv: ['true'], env: [] },
  ],
  tty: false,
});

describe('placementFor', () => {
  it.each([
    ['v2', '/sys/fs/cgroup/novabox/abc', []],
    [
      'v1',
      undefined,
      [
        '/sys/fs/cgroup/cpu,cpuacct/novabox/abc/tasks',
        '/sys/fs/cgroup/memory/novabox/abc/tasks',
        '/sys/fs/cgroup/freezer/novabox/abc/tasks',
        '/sys/fs/cgroup/pids/novabox/abc/tasks',
      ],
    ],
    [
      'hybrid',
      '/sys/fs/cgroup/unified/novabox/abc',
      [
        '/sys/fs/cgroup/cpu,cpuacct/novabox/abc/tasks',
        '/sys/fs/cgroup/memory/novabox/abc/tasks',
        '/sys/fs/cgroup/freezer/novabox/abc/tasks',
        '/sys/fs/cgroup/pids/novabox/abc/tasks',
      ],
    ],
  ])('%s: clone into %s, join %j (each co-mounted hierarchy once, unused ones never)', (kind, cloneInto, selfJoin) => {
    expect(placementFor(LAYOUTS[kind], 'novabox/abc')).toEqual({ cloneInto, selfJoin });
  });
});

describe('placeLaunch', () => {
  it('puts the joins before every other op, so the cgroup namespace is rooted at the container', () => {
    const p = placeLaunch(plan(), LAYOUTS.hybrid, 'novabox/abc');
    expect(p.cgroupDir).toBe('/sys/fs/cgroup/unified/novabox/abc');
    expect(p.ops.map((o) => o.op)).toEqual(['cgroup-join', 'cgroup-join', 'cgroup-join', 'cgroup-join', 'unshare', 'exec']);
  });

  it('leaves the input plan alone', () => {
    const before = plan();
    placeLaunch(before, LAYOUTS.v1, 'novabox/abc');
    expect(before).toEqual(plan());
  });
});

describe('mustPlaceAfterClone', () => {
  it.each([
    ['v2', true, false],
    ['v2', false, true], // not placed (the monitor places or fails): the CLI would write cgroup.procs
    ['hybrid', true, false],
    ['hybrid', false, true],
    ['v1', false, false], // the init joins every hierarchy itself
  ])('%s, cloned into the cgroup: %s -> %s', (kind, cloned, expected) => {
    expect(mustPlaceAfterClone(placeLaunch(plan(), LAYOUTS[kind], 'novabox/abc'), cloned)).toBe(expected);
  });

  it('a plan that places nothing itself (no placeLaunch) needs the CLI', () => {
    expect(mustPlaceAfterClone(plan(), false)).toBe(true);
  });
});

describe('placesItself', () => {
  it.each(['v2', 'hybrid', 'v1'] as const)('%s: the init is placed without the CLI, so it may start its ops early', (kind) => {
    expect(placesItself(placeLaunch(plan(), LAYOUTS[kind], 'novabox/abc'))).toBe(true);
  });

  it('a plan that places nothing itself (no placeLaunch) waits for the CLI', () => {
    expect(placesItself(plan())).toBe(false);
  });
});
