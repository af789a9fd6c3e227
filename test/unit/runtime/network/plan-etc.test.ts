import { describe, expect, it } from 'vitest';
import { DEFAULT_CAPABILITIES, DEFAULT_RLIMITS, planLaunch, type ContainerSpec } from '../../../../src/runtime/plan/index.js';
import { etcPaths } from '../../../../src/runtime/network/etc-files.js';

function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    id: 'c0ffee',
    hostname: 'web',
    rootfs: { mergedDir: '/s/c/rootfs', lowerDirs: ['/s/l/a'], upperDir: '/s/c/upper', workDir: '/s/c/work', readOnly: false },
    process: { args: ['true'], env: [], cwd: '/', uid: 0, gid: 0, additionalGids: [], tty: false },
    network: 'bridge',
    cgroups: { kind: 'v2', root: '/sys/fs/cgroup', controllers: [] },
    capabilities: DEFAULT_CAPABILITIES,
    rlimits: DEFAULT_RLIMITS,
    ...over,
  };
}

describe('bridge network in the plan', () => {
  it('a new network namespace (the CLI moves the veth in before GO)', () => {
    expect(planLaunch(spec()).namespaces).toContain('net');
  });

  it('binds the generated /etc files resolved inside the root, before the volumes, so a -v onto them wins', () => {
    const ops = planLaunch(
      spec({
        etcFiles: etcPaths('/s/c'),
        volumes: [{ source: '/h/hosts', target: '/etc/hosts', readOnly: true, isDir: false }],
      }),
    ).ops;
    const binds = ops.filter((o) => o.op === 'mount' && o.flags.includes('bind') && o.target.startsWith('etc/'));
    expect(binds).toEqual([
      { op: 'mount', source: '/s/c/etc/hosts', target: 'etc/hosts', flags: ['bind'], inRoot: true },
      { op: 'mount', source: '/s/c/etc/hostname', target: 'etc/hostname', flags: ['bind'], inRoot: true },
      { op: 'mount', source: '/s/c/etc/resolv.conf', target: 'etc/resolv.conf', flags: ['bind'], inRoot: true },
      { op: 'mount', source: '/h/hosts', target: 'etc/hosts', flags: ['bind', 'rec'], inRoot: true },
    ]);
    const firstBind = ops.findIndex((o) => o.op === 'mount' && o.target === 'etc/hosts');
    expect(ops[firstBind - 1]).toMatchObject({ op: 'mknod', path: 'etc/hosts', type: 'file', inRoot: true });
    expect(ops.findIndex((o) => o.op === 'pivot-root')).toBeGreaterThan(firstBind);
  });

  it('--network none plans no /etc files', () => {
    expect(planLaunch(spec({ network: 'none' })).ops.some((o) => o.op === 'mount' && o.target === 'etc/hosts')).toBe(false);
  });
});
