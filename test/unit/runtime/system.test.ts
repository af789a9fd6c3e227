/**
 * A system container's planning (systemd as a server's pid 1), pure: which images boot
 * systemd, what a systemd exit means, the plan's differences from a novabox-init server
 * (/run, writable cgroup trees, /dev/console logged, the system seccomp variant, the boot
 * id), and the delegated cgroup directories on v1/hybrid hosts.
 */
import { describe, expect, it } from 'vitest';
import { systemDelegation } from '../../../src/runtime/cgroups/placement.js';
import type { CgroupLayout } from '../../../src/runtime/cgroups/types.js';
import {
  DEFAULT_CAPABILITIES,
  DEFAULT_RLIMITS,
  planCgroupMounts,
  planLaunch,
  planRun,
  type ContainerSpec,
} from '../../../src/runtime/plan/index.js';
import { SYSTEM_CAPABILITIES, exitMeaning, imageInit, systemdCommand } from '../../../src/runtime/server.js';
import { serverInit } from '../../../src/compute/servers.js';
import type { Op } from '../../../src/sys/ops.js';

const HYBRID: CgroupLayout = {
  kind: 'hybrid',
  mounts: { memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' },
  unified: '/sys/fs/cgroup/unified',
  named: { systemd: '/sys/fs/cgroup/systemd' },
};
const V2: CgroupLayout = { kind: 'v2', root: '/sys/fs/cgroup', controllers: ['memory', 'pids'] };

function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    id: 's1',
    hostname: 'd1',
    rootfs: { mergedDir: '/s/rootfs', lowerDirs: ['/l/a'], upperDir: '/s/upper', workDir: '/s/work', readOnly: false },
    process: {
      args: ['/sbin/init'],
      env: ['container=novabox'],
      cwd: '/',
      uid: 0,
      gid: 0,
      additionalGids: [],
      tty: { rows: 24, cols: 80 },
    },
    network: 'none',
    cgroups: HYBRID,
    capabilities: DEFAULT_CAPABILITIES,
    rlimits: DEFAULT_RLIMITS,
    logPath: '/s/console.log',
    idmap: { uidBase: 1_000_000, gidBase: 1_000_000, size: 65536 },
    system: true,
    bootIdFile: '/s/boot-id',
    ...over,
  };
}

const mountOn = (ops: Op[], target: string) => ops.find((o) => o.op === 'mount' && o.target === target) as Extract<Op, { op: 'mount' }>;

describe('which images boot systemd', () => {
  it.each([
    [{ os_init: 'systemd' }, [], 'systemd'],
    [{}, ['/sbin/init'], 'systemd'],
    [{}, ['/lib/systemd/systemd'], 'systemd'],
    [undefined, ['/usr/lib/systemd/systemd'], 'systemd'],
    [{}, ['/bin/sh'], 'novabox'],
    [{}, [], 'novabox'],
    [{ os_init: 'sysvinit' }, [], 'novabox'],
    // an init with arguments is a command novabox-init runs, not a system boot
    [{}, ['/sbin/init', 'single'], 'novabox'],
  ] as const)('properties %j, command %j: %s', (props, cmd, want) => {
    expect(imageInit(props, { cmd: [...cmd] })).toBe(want);
  });

  it('a server command wins over the command', () => {
    expect(imageInit({}, { cmd: ['/bin/sh'], serverCmd: ['/sbin/init'] })).toBe('systemd');
  });

  it("runs the image's own systemd command, else /sbin/init", () => {
    expect(systemdCommand({ cmd: ['/lib/systemd/systemd', '--log-level=debug'] })).toEqual(['/lib/systemd/systemd', '--log-level=debug']);
    expect(systemdCommand({ cmd: ['/bin/sh'] })).toEqual(['/sbin/init']);
    expect(systemdCommand({ cmd: [] })).toEqual(['/sbin/init']);
  });

  it('--init wins; anything else than novabox or systemd is refused in one sentence', () => {
    expect(serverInit('novabox', { os_init: 'systemd' }, { cmd: [] })).toBe('novabox');
    expect(serverInit('systemd', {}, { cmd: ['/bin/sh'] })).toBe('systemd');
    expect(serverInit(undefined, { os_init: 'systemd' }, { cmd: [] })).toBe('systemd');
    expect(() => serverInit('upstart', {}, { cmd: [] })).toThrow('invalid init "upstart": it must be novabox or systemd');
  });
});

describe('what a systemd exit means', () => {
  it.each([
    ['systemd', { code: 130, signal: 2 }, { crashed: false, reboot: false, how: 'systemd halted' }],
    ['systemd', { code: 129, signal: 1 }, { crashed: false, reboot: true, how: 'systemd rebooted' }],
    ['systemd', { code: 137, signal: 9 }, { crashed: true, reboot: false, how: 'killed by signal 9' }],
    ['novabox', { code: 130, signal: 2 }, { crashed: true, reboot: false, how: 'killed by signal 2' }],
    ['novabox', { code: 0 }, { crashed: false, reboot: false, how: 'exited with status 0' }],
    ['systemd', { code: 1 }, { crashed: true, reboot: false, how: 'exited with status 1' }],
    ['systemd', undefined, { crashed: true, reboot: false, how: 'its processes are gone (host reboot?)' }],
  ] as const)('%s, %j', (init, exit, want) => {
    expect(exitMeaning(init, exit)).toEqual(want);
  });
});

describe('a system container plan', () => {
  const plan = planLaunch(spec());
  const ops = plan.ops;

  it("executes the image's systemd (no sealed novabox-init) and logs its console", () => {
    expect(plan.execCopy).toBeUndefined();
    const exec = ops.at(-1) as Extract<Op, { op: 'exec' }>;
    expect(exec).toMatchObject({ op: 'exec', file: '/sbin/init', argv: ['/sbin/init'] });
    expect(exec.sealed).toBeUndefined();
    expect(plan).toMatchObject({ tty: true, consoleLog: true, logPath: '/s/console.log' });
    expect(ops).toContainEqual({ op: 'console', ptmx: 'dev/pts/ptmx', path: 'dev/console', rows: 24, cols: 80 });
    // no /dev/kmsg, no host ttys
    expect(ops.filter((o) => 'path' in o && typeof o.path === 'string' && /^dev\/(kmsg|tty\d)/.test(o.path))).toEqual([]);
  });

  it('/run and /run/lock are tmpfs', () => {
    expect(planRun().filter((o) => o.op === 'mount')).toMatchObject([
      { source: 'tmpfs', target: 'run', fstype: 'tmpfs' },
      { source: 'tmpfs', target: 'run/lock', fstype: 'tmpfs', data: 'mode=1777,size=5120k' },
    ]);
    for (const o of planRun()) expect(ops).toContainEqual(o);
  });

  it('loads the system seccomp variant, without no_new_privs, before setuid', () => {
    expect(ops).toContainEqual({ op: 'seccomp', system: true });
    expect(ops.some((o) => o.op === 'no-new-privs')).toBe(false);
    expect(ops.findIndex((o) => o.op === 'seccomp')).toBeLessThan(ops.findLastIndex((o) => o.op === 'setuid'));
  });

  it('binds its own boot id read-only over the kernel one, after /proc/sys went read-only', () => {
    const bind = ops.findIndex((o) => o.op === 'mount' && o.target === 'proc/sys/kernel/random/boot_id');
    expect(ops[bind]).toMatchObject({ source: '/s/boot-id', flags: ['bind'] });
    expect(ops[bind + 1]).toEqual({ op: 'remount-ro', path: 'proc/sys/kernel/random/boot_id' });
    expect(bind).toBeGreaterThan(ops.findIndex((o) => o.op === 'readonly' && o.path === '/proc/sys'));
  });

  it('v1/hybrid: name=systemd and the unified mount writable, the controllers read-only', () => {
    expect(mountOn(ops, 'sys/fs/cgroup/systemd')).toMatchObject({ fstype: 'cgroup', data: 'none,name=systemd' });
    expect(mountOn(ops, 'sys/fs/cgroup/systemd').flags).not.toContain('rdonly');
    expect(mountOn(ops, 'sys/fs/cgroup/unified').flags).not.toContain('rdonly');
    expect(mountOn(ops, 'sys/fs/cgroup/memory').flags).toContain('rdonly');
    // a novabox-init server sees neither name=systemd nor a writable unified mount
    const plain = planCgroupMounts(HYBRID);
    expect(mountOn(plain, 'sys/fs/cgroup/systemd')).toBeUndefined();
    expect(mountOn(plain, 'sys/fs/cgroup/unified').flags).toContain('rdonly');
  });

  it('v2: its own cgroup2 mount writable', () => {
    expect(planCgroupMounts(V2, true)).toEqual([
      {
        op: 'mount',
        source: 'cgroup2',
        target: 'sys/fs/cgroup',
        fstype: 'cgroup2',
        flags: ['nosuid', 'nodev', 'noexec', 'relatime'],
        inRoot: true,
      },
    ]);
    expect((planCgroupMounts(V2)[0] as Extract<Op, { op: 'mount' }>).flags).toContain('rdonly');
  });

  it('has every capability but those LXC drops', () => {
    for (const c of ['SYS_ADMIN', 'NET_ADMIN', 'SYS_RESOURCE', 'AUDIT_WRITE', 'MKNOD', 'SYS_PTRACE'])
      expect(SYSTEM_CAPABILITIES).toContain(c);
    for (const c of ['SYS_MODULE', 'SYS_TIME', 'SYS_RAWIO', 'MAC_ADMIN', 'MAC_OVERRIDE']) expect(SYSTEM_CAPABILITIES).not.toContain(c);
  });
});

describe('systemDelegation', () => {
  it('hybrid: a name=systemd directory owned by the range root (its tasks left to the init join), the unified one delegated', () => {
    const d = systemDelegation(HYBRID, 'novabox/s1', 1000, 2000);
    expect(d.joins).toEqual(['/sys/fs/cgroup/systemd/novabox/s1/tasks']);
    expect(d.steps).toEqual([
      { step: 'mkdir', path: '/sys/fs/cgroup/systemd/novabox' },
      { step: 'mkdir', path: '/sys/fs/cgroup/systemd/novabox/s1', exclusive: true },
      { step: 'chown', path: '/sys/fs/cgroup/systemd/novabox/s1', uid: 1000, gid: 2000 },
      ...['', '/cgroup.procs', '/cgroup.threads', '/cgroup.subtree_control'].map((f) => ({
        step: 'chown',
        path: `/sys/fs/cgroup/unified/novabox/s1${f}`,
        uid: 1000,
        gid: 2000,
      })),
    ]);
  });

  it('v1 without name=systemd: nothing to make; v2: nothing beyond delegationSteps', () => {
    expect(systemDelegation({ kind: 'v1', mounts: { memory: '/m' } }, 'novabox/s1', 1, 1)).toEqual({ steps: [], joins: [] });
    expect(systemDelegation(V2, 'novabox/s1', 1, 1)).toEqual({ steps: [], joins: [] });
  });
});
