import { describe, expect, it } from 'vitest';
import type { Op } from '../../../../src/sys/ops.js';
import type { CgroupLayout } from '../../../../src/runtime/cgroups/types.js';
import { defaultSpec } from '../../../../src/runtime/oci/documents.js';
import {
  ociCgroupPath,
  ociLimits,
  planOci,
  planOciExec,
  planOciMount,
  planRlimits,
  readHooks,
  readProcess,
  rlimitCeiling,
  type HostRlimits,
  type OciConfig,
} from '../../../../src/runtime/oci/plan.js';

const V2: CgroupLayout = { kind: 'v2', root: '/sys/fs/cgroup', controllers: ['memory', 'cpu', 'pids'] };
const ctx = {
  id: 'c1',
  bundle: '/b',
  layout: V2,
  isDir: (p: string) => !p.endsWith('.conf'),
  ownMountNamespace: (p: string) => p === '/proc/self/ns/mnt',
};

function config(patch: (c: OciConfig) => void = () => {}): OciConfig {
  const c = JSON.parse(JSON.stringify(defaultSpec())) as OciConfig;
  patch(c);
  return c;
}

function opsOf(c: OciConfig): Op[] {
  return planOci(c, ctx).plan.ops;
}

describe('planOci', () => {
  it('turns the default spec into a detached plan ending in chdir and exec', () => {
    const { plan, cgroupPath, limits, hostname } = planOci(config(), ctx);
    expect(plan.detach).toBe(true);
    expect(plan.tty).toBe(false);
    expect(plan.namespaces).toEqual(['pid', 'net', 'ipc', 'uts', 'mount']);
    expect(plan.ops[0]).toEqual({ op: 'unshare', namespaces: ['cgroup'] });
    expect(cgroupPath).toBe('novabox-oci/c1');
    expect(limits).toEqual({});
    expect(hostname).toBe('novabox');
    const tail = plan.ops.slice(-2);
    expect(tail[0]).toEqual({ op: 'chdir', path: '/' });
    expect(tail[1]).toMatchObject({
      op: 'exec',
      file: 'sh',
      argv: ['sh'],
      searchPath: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    });
  });

  it('binds the root onto itself, relative to the bundle, and pivots after the mounts, masks and read-only paths', () => {
    const ops = opsOf(config());
    const kinds = ops.map((o) => o.op);
    expect(ops).toContainEqual({ op: 'mount', source: '/b/rootfs', target: '/b/rootfs', flags: ['bind', 'rec'] });
    expect(ops).toContainEqual({ op: 'set-root', path: '/b/rootfs' });
    const pivot = kinds.indexOf('pivot-root');
    expect(kinds.lastIndexOf('mount')).toBeLessThan(pivot);
    expect(kinds.lastIndexOf('mask')).toBeLessThan(pivot);
    expect(kinds.lastIndexOf('readonly')).toBeLessThan(pivot);
    // root.readonly
    expect(ops[pivot + 1]).toEqual({ op: 'remount-ro', path: '/' });
    expect(ops).toContainEqual({ op: 'mask', path: '/proc/kcore' });
    expect(ops).toContainEqual({ op: 'readonly', path: '/proc/sys' });
  });

  it('mounts in the config order with their options as flags and data', () => {
    const ops = opsOf(config()).filter((o) => o.op === 'mount' && o.inRoot);
    expect(ops.map((o) => (o.op === 'mount' ? o.target : ''))).toEqual([
      'proc',
      'dev',
      'dev/pts',
      'dev/shm',
      'dev/mqueue',
      'sys',
      'sys/fs/cgroup',
    ]);
    expect(ops[1]).toEqual({
      op: 'mount',
      source: 'tmpfs',
      target: 'dev',
      fstype: 'tmpfs',
      flags: ['nosuid', 'strictatime'],
      data: 'mode=755,size=65536k',
      inRoot: true,
    });
    expect(ops[5]).toMatchObject({ fstype: 'sysfs', flags: ['nosuid', 'noexec', 'nodev', 'rdonly'] });
    expect(ops[6]).toMatchObject({ fstype: 'cgroup2', target: 'sys/fs/cgroup', flags: expect.arrayContaining(['rdonly']) });
  });

  it('makes the default devices in a new /dev tmpfs', () => {
    const ops = opsOf(config());
    expect(ops).toContainEqual({ op: 'mknod', path: 'dev/null', mode: 0o666, type: 'c', major: 1, minor: 3, inRoot: true });
    expect(ops).toContainEqual({ op: 'symlink', target: '/proc/self/fd', path: 'dev/fd', inRoot: true });
  });

  it('binds a file or a directory from the bundle, with a remount for ro', () => {
    const ops = opsOf(
      config((c) => {
        c.mounts.push({ destination: '/etc/app.conf', type: 'bind', source: 'app.conf', options: ['rbind', 'ro', 'rprivate'] });
      }),
    );
    const at = ops.findIndex((o) => o.op === 'mknod' && o.path === 'etc/app.conf');
    expect(ops.slice(at - 1, at + 4)).toEqual([
      { op: 'mkdir', path: 'etc', mode: 0o755, inRoot: true },
      { op: 'mknod', path: 'etc/app.conf', mode: 0o644, type: 'file', major: 0, minor: 0, inRoot: true },
      { op: 'mount', source: '/b/app.conf', target: 'etc/app.conf', flags: ['bind', 'rec'], inRoot: true },
      { op: 'mount', target: 'etc/app.conf', flags: ['remount', 'bind', 'rdonly'], inRoot: true },
      { op: 'mount', target: 'etc/app.conf', flags: ['rec', 'private'], inRoot: true },
    ]);
  });

  it('gives a terminal: a pty of the container devpts as /dev/console, its size from consoleSize', () => {
    const { plan } = planOci(
      config((c) => {
        c.process.terminal = true;
        c.process.consoleSize = { height: 40, width: 120 };
      }),
      ctx,
    );
    expect(plan.tty).toBe(true);
    const at = plan.ops.findIndex((o) => o.op === 'console');
    expect(plan.ops.slice(at - 1, at + 1)).toEqual([
      { op: 'mknod', path: 'dev/console', mode: 0o620, type: 'file', major: 0, minor: 0, inRoot: true },
      { op: 'console', ptmx: 'dev/pts/ptmx', path: 'dev/console', rows: 40, cols: 120 },
    ]);
    expect(at).toBeLessThan(plan.ops.findIndex((o) => o.op === 'pivot-root'));
  });

  it('reads user, capabilities, rlimits and noNewPrivileges', () => {
    const ops = opsOf(
      config((c) => {
        c.process.user = { uid: 0, gid: 10, additionalGids: [20, 10] };
        c.process.capabilities = { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] };
        c.process.rlimits = [{ type: 'RLIMIT_NPROC', soft: 10, hard: 20 }];
      }),
    );
    const at = ops.findIndex((o) => o.op === 'setrlimit');
    expect(ops.slice(at, at + 8)).toEqual([
      { op: 'setrlimit', resource: 'nproc', soft: 10n, hard: 20n },
      { op: 'cap-bound', keep: ['KILL'] },
      { op: 'setgroups', gids: [10, 20] },
      { op: 'setgid', gid: 10 },
      { op: 'setuid', uid: 0 },
      { op: 'capset', caps: ['KILL'] },
      { op: 'no-new-privs' },
      { op: 'chdir', path: '/' },
    ]);
  });

  it('sets the inheritable and ambient sets, and keeps the permitted set through setuid for a user other than root', () => {
    const sets = { bounding: ['CAP_KILL', 'CAP_CHOWN'], effective: ['CAP_KILL', 'CAP_CHOWN'], permitted: ['CAP_KILL', 'CAP_CHOWN'] };
    const root = opsOf(
      config((c) => {
        c.process.capabilities = { ...sets, inheritable: ['CAP_KILL', 'CAP_CHOWN'], ambient: ['CAP_KILL'] };
      }),
    );
    expect(root).toContainEqual({ op: 'setuid', uid: 0 });
    expect(root).toContainEqual({ op: 'capset', caps: ['KILL', 'CHOWN'], inheritable: ['KILL', 'CHOWN'], ambient: ['KILL'] });
    const user = opsOf(
      config((c) => {
        c.process.user = { uid: 10, gid: 10 };
        c.process.capabilities = { ...sets, inheritable: ['CAP_KILL', 'CAP_CHOWN'], ambient: ['CAP_KILL', 'CAP_CHOWN'] };
      }),
    );
    const at = user.findIndex((o) => o.op === 'setuid');
    expect(user.slice(at, at + 2)).toEqual([
      { op: 'setuid', uid: 10, keepCaps: true },
      { op: 'capset', caps: ['KILL', 'CHOWN'], inheritable: ['KILL', 'CHOWN'], ambient: ['KILL', 'CHOWN'] },
    ]);
    // none asked: the capset clears them as before
    const none = config((c) => {
      c.process.user = { uid: 10, gid: 10 };
      c.process.capabilities = {};
    });
    expect(opsOf(none)).toContainEqual({ op: 'capset', caps: [] });
  });

  it('makes block devices and fifos, and allows the devices beyond the default list in the device cgroup', () => {
    const { plan, limits } = planOci(
      config((c) => {
        c.linux.devices = [
          { path: '/dev/test1', type: 'c', major: 10, minor: 666, fileMode: 0o660 },
          { path: '/dev/test2', type: 'b', major: 8, minor: 666 },
          { path: '/dev/test3', type: 'p', major: 8, minor: 666 },
          { path: '/dev/null2', type: 'c', major: 1, minor: 3 },
        ];
      }),
      ctx,
    );
    expect(plan.ops).toContainEqual({ op: 'mknod', path: 'dev/test1', mode: 0o660, type: 'c', major: 10, minor: 666, inRoot: true });
    expect(plan.ops).toContainEqual({ op: 'mknod', path: 'dev/test2', mode: 0o666, type: 'b', major: 8, minor: 666, inRoot: true });
    expect(plan.ops).toContainEqual({ op: 'mknod', path: 'dev/test3', mode: 0o666, type: 'p', major: 0, minor: 0, inRoot: true });
    expect(limits.deviceAllow).toEqual(['c 10:666 rwm', 'b 8:666 rwm']);
  });

  it('reads the cpuset lists', () => {
    const { limits } = planOci(
      config((c) => (c.linux.resources = { cpu: { shares: 1024, cpus: '0-1,3', mems: '0' } })),
      ctx,
    );
    expect(limits).toEqual({ cpuShares: 1024, cpusetCpus: '0-1,3', cpusetMems: '0' });
  });

  it('keeps the root rslave until the pivot and makes it shared after, for a shared rootfsPropagation', () => {
    const ops = opsOf(config((c) => (c.linux.rootfsPropagation = 'rshared')));
    const pivot = ops.findIndex((o) => o.op === 'pivot-root');
    expect(ops).toContainEqual({ op: 'mount', target: '/', flags: ['rec', 'slave'] });
    expect(ops[pivot + 1]).toEqual({ op: 'mount', target: '/', flags: ['rec', 'shared'] });
    // unbindable too: the root could not be bound onto itself
    const unbindable = opsOf(config((c) => (c.linux.rootfsPropagation = 'unbindable')));
    expect(unbindable).toContainEqual({ op: 'mount', target: '/', flags: ['rec', 'slave'] });
    expect(unbindable[unbindable.findIndex((o) => o.op === 'pivot-root') + 1]).toEqual({ op: 'mount', target: '/', flags: ['unbindable'] });
  });

  it('joins a mount namespace by path first, and sets the rootfs up in it', () => {
    const { plan } = planOci(
      config((c) => {
        c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) =>
          n.type === 'mount' ? { type: 'mount', path: '/proc/9/ns/mnt' } : n.type === 'uts' ? { type: 'uts', path: '/proc/9/ns/uts' } : n,
        );
      }),
      ctx,
    );
    expect(plan.namespaces).not.toContain('mount');
    expect(plan.ops.slice(0, 2)).toEqual([
      { op: 'setns', path: '/proc/9/ns/mnt', namespace: 'mount' },
      { op: 'setns', path: '/proc/9/ns/uts', namespace: 'uts' },
    ]);
    expect(plan.ops).toContainEqual({ op: 'pivot-root' });
    expect(plan.ops).toContainEqual({ op: 'sethostname', hostname: 'novabox' });
  });

  it("without namespaces: the host's, no bind of the root, no propagation change, a chroot in place of pivot_root", () => {
    const planned = planOci(
      config((c) => {
        delete c.linux.namespaces;
        delete c.linux.maskedPaths;
        delete c.linux.readonlyPaths;
        delete c.hostname;
        c.root.readonly = false;
      }),
      ctx,
    );
    expect(planned.hostMounts).toBe(true);
    expect(planned.plan.namespaces).toEqual([]);
    expect(planned.plan.ops.filter((o) => o.op === 'mount' && o.target === '/b/rootfs')).toEqual([]);
    expect(planned.plan.ops.filter((o) => o.op === 'mount' && o.target === '/')).toEqual([]);
    expect(planned.plan.ops).toContainEqual({ op: 'pivot-root', chroot: true });
    expect(planned.plan.ops).toContainEqual({ op: 'set-root', path: '/b/rootfs' });
  });

  it("ignores a top-level property the runtime-spec does not have, and says so; refuses the spec's platforms it does not run", () => {
    const { warnings } = planOci(
      config((c) => {
        (c as Record<string, unknown>).unknown = 'unknown';
      }),
      ctx,
    );
    expect(warnings).toEqual(['config.json: unknown is not a runtime-spec property: ignored']);
    expect(() =>
      planOci(
        config((c) => ((c as Record<string, unknown>).windows = { layerFolders: [] })),
        ctx,
      ),
    ).toThrow('config.json: config.windows is not supported by novabox-oci');
  });

  it('ignores file system data on a bind mount and says so, and takes unbindable', () => {
    const { plan, warnings } = planOci(
      config((c) => c.mounts.push({ destination: '/mnt', source: '/etc', options: ['rbind', 'mode=755', 'runbindable'] })),
      ctx,
    );
    expect(warnings).toEqual(['mounts[7].options "mode=755" ignored: a bind mount takes no file system data']);
    expect(plan.ops).toContainEqual({ op: 'mount', target: 'mnt', flags: ['rec', 'unbindable'], inRoot: true });
  });

  it('gives a user namespace its maps and makes the init its root before the mounts', () => {
    const { plan } = planOci(
      config((c) => {
        c.linux.namespaces.push({ type: 'user' });
        c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        c.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
        c.mounts = c.mounts.filter((m: { type: string }) => m.type !== 'sysfs');
      }),
      ctx,
    );
    expect(plan.namespaces[0]).toBe('user');
    expect(plan.userns).toEqual({ uidMap: '0 100000 65536\n', gidMap: '0 200000 65536\n' });
    expect(plan.ops.slice(0, 2)).toEqual([{ op: 'mount', target: '/', flags: ['rec', 'private'] }, { op: 'userns' }]);
  });

  it('joins namespaces by path first, and sets the OOM score, before anything else', () => {
    const { plan } = planOci(
      config((c) => {
        c.linux.namespaces[1] = { type: 'network', path: '/run/netns/cni-1' };
        c.process.oomScoreAdj = 500;
      }),
      ctx,
    );
    expect(plan.namespaces).toEqual(['pid', 'ipc', 'uts', 'mount']);
    expect(plan.ops.slice(0, 3)).toEqual([
      { op: 'setns', path: '/run/netns/cni-1', namespace: 'net' },
      { op: 'write', path: '/proc/self/oom_score_adj', data: '500' },
      { op: 'unshare', namespaces: ['cgroup'] },
    ]);
  });

  it("writes the sysctls of the container's own namespaces under its /proc/sys, before the read-only paths", () => {
    const ops = opsOf(
      config((c) => {
        c.linux.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1', 'fs/mqueue/msg_max': '20' };
      }),
    );
    const writes = ops.filter((o) => o.op === 'write');
    expect(writes).toEqual([
      { op: 'write', path: 'proc/sys/net/ipv4/ip_forward', data: '1', inRoot: true },
      { op: 'write', path: 'proc/sys/kernel/shm_rmid_forced', data: '1', inRoot: true },
      { op: 'write', path: 'proc/sys/fs/mqueue/msg_max', data: '20', inRoot: true },
    ]);
    expect(ops.findIndex((o) => o.op === 'write')).toBeLessThan(ops.findIndex((o) => o.op === 'readonly'));
  });

  it.each<[string, (c: OciConfig) => void, RegExp]>([
    [
      'a host sysctl',
      (c) => (c.linux.sysctl = { 'vm.swappiness': '10' }),
      /linux\.sysctl\["vm\.swappiness"\] is not a sysctl of a namespace the container has/,
    ],
    [
      'a net sysctl without a network namespace',
      (c) => {
        c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'network');
        c.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
      },
      /linux\.sysctl\["net\.ipv4\.ip_forward"\] is not a sysctl of a namespace/,
    ],
    ['a sysctl name with ..', (c) => (c.linux.sysctl = { 'net/../../x': '1' }), /is not a sysctl name/],
    [
      "joining novabox-oci's own mount namespace",
      (c) => {
        c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) =>
          n.type === 'mount' ? { type: 'mount', path: '/proc/self/ns/mnt' } : n,
        );
      },
      /linux\.namespaces\[\d\]\.path is the mount namespace novabox-oci runs in: the container's pivot_root there would move the root of every process in it/,
    ],
    [
      'a user namespace joined by path without a mount namespace',
      (c) => {
        c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'mount');
        c.linux.namespaces.push({ type: 'user', path: '/proc/1/ns/user' });
      },
      /linux\.namespaces with a user namespace must have a mount namespace too/,
    ],
    [
      'a user namespace both joined and made',
      (c) => c.linux.namespaces.push({ type: 'user', path: '/proc/1/ns/user' }, { type: 'user' }),
      /linux\.namespaces\[\d\] lists user twice/,
    ],
    [
      'a relative user namespace path',
      (c) => c.linux.namespaces.push({ type: 'user', path: 'proc/1/ns/user' }),
      /linux\.namespaces\[\d\]\.path must be an absolute path/,
    ],
    [
      'an oomScoreAdj out of range',
      (c) => (c.process.oomScoreAdj = 2000),
      /process\.oomScoreAdj must be a whole number from -1000 to 1000/,
    ],
    ['an unknown major version', (c) => (c.ociVersion = '2.0.0'), /^config\.json: ociVersion "2\.0\.0" is not a version novabox-oci reads/],
    ['no version', (c) => delete c.ociVersion, /ociVersion is missing/],
    ['a hook of no kind the spec has', (c) => (c.hooks = { prestop: [{ path: '/x' }] }), /hooks\.prestop is not supported/],
    ['a relative hook path', (c) => (c.hooks = { poststop: [{ path: 'x' }] }), /hooks\.poststop\[0\]\.path must be an absolute path/],
    [
      'a seccomp agent',
      (c) => (c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/a.sock' }),
      /linux\.seccomp\.listenerPath is not supported by novabox-oci \(no seccomp agent\)/,
    ],
    ['a time namespace', (c) => c.linux.namespaces.push({ type: 'time' }), /linux\.namespaces\[6\]\.type "time" is not supported/],
    [
      'a terminal without devpts',
      (c) => {
        c.process.terminal = true;
        c.mounts = c.mounts.filter((m: { type: string }) => m.type !== 'devpts');
      },
      /process\.terminal needs a devpts mount on \/dev\/pts/,
    ],
    ['an apparmor profile', (c) => (c.process.apparmorProfile = 'x'), /process\.apparmorProfile is not supported/],
    [
      'an inheritable capability not in bounding',
      (c) => (c.process.capabilities.inheritable = ['CAP_SYS_ADMIN']),
      /process\.capabilities\.inheritable has SYS_ADMIN, which is not in bounding/,
    ],
    [
      'an ambient capability not inheritable',
      (c) => (c.process.capabilities.ambient = ['CAP_KILL']),
      /process\.capabilities\.ambient has KILL, which is not in both permitted and inheritable/,
    ],
    [
      'capabilities of a user other than root that are not ambient',
      (c) => (c.process.user = { uid: 10, gid: 10 }),
      /process\.capabilities of a user other than root \(uid 0\) must be its ambient set too/,
    ],
    ['an unknown capability', (c) => (c.process.capabilities.bounding = ['CAP_NOPE']), /unknown capability "CAP_NOPE"/],
    ['no args', (c) => (c.process.args = []), /process\.args must name the program/],
    ['a relative cwd', (c) => (c.process.cwd = 'x'), /process\.cwd must be an absolute path/],
    ['an unknown mount option', (c) => (c.mounts[0].options = ['nosymfollow']), /mounts\[0\]\.options "nosymfollow" is not supported/],
    [
      'an unknown mount type',
      (c) => c.mounts.push({ destination: '/x', type: 'nfs', source: 'h:/x' }),
      /mounts\[7\]\.type "nfs" is not supported/,
    ],
    ['a mount over ..', (c) => c.mounts.push({ destination: '/x/../../y', type: 'tmpfs' }), /must not contain "\.\."/],
    [
      'a user namespace without a mount namespace',
      (c) => (c.linux.namespaces = [{ type: 'user' }]),
      /linux\.namespaces with a user namespace must have a mount namespace too/,
    ],
    [
      'masked paths without a mount namespace',
      (c) => (c.linux.namespaces = [{ type: 'pid' }]),
      /linux\.maskedPaths needs a mount namespace in linux\.namespaces \(without one it would change the host\)/,
    ],
    [
      'a device of no type',
      (c) => (c.linux.devices = [{ path: '/dev/sda', type: 's', major: 8, minor: 0 }]),
      /linux\.devices\[0\]\.type "s" is not a device type/,
    ],
    ['a cpuset list that is none', (c) => (c.linux.resources.cpu = { cpus: 'all' }), /linux\.resources\.cpu\.cpus must be a list/],
    [
      'a device allow rule beyond the default devices',
      (c) => c.linux.resources.devices.push({ allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }),
      /linux\.resources\.devices\[1\] is not supported/,
    ],
    ['a blockIO weight', (c) => (c.linux.resources.blockIO = { weight: 10 }), /linux\.resources\.blockIO\.weight is not supported/],
    ['a systemd cgroupsPath', (c) => (c.linux.cgroupsPath = 'system.slice:docker:abc'), /is a systemd slice path/],
    ['no root', (c) => delete c.root, /root\.path is missing/],
    ['a umask beyond 0777', (c) => (c.process.user.umask = 0o1000), /process\.user\.umask must be a file mode mask from 0 to 0777/],
    [
      'a soft rlimit above its hard one',
      (c) => (c.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 5 }]),
      /process\.rlimits\[0\]\.soft \(10\) must not be above its hard limit \(5\)/,
    ],
  ])('refuses %s in one sentence naming the field', (_what, patch, message) => {
    expect(() => planOci(config(patch), ctx)).toThrow(message);
  });
});

describe('planOciMount: binds, and what a user namespace without a network namespace of its own binds instead', () => {
  const mounts = (m: object, userns: boolean, ownNet: boolean) => planOciMount(m, 0, ctx, userns, ownNet).filter((op) => op.op === 'mount');
  it("a bind: bind and rec first, the mount's other flags with a remount of it", () => {
    expect(mounts({ destination: '/data', type: 'bind', source: '/host/data', options: ['rbind', 'ro', 'nosuid'] }, false, true)).toEqual([
      { op: 'mount', source: '/host/data', target: 'data', flags: ['bind', 'rec'], inRoot: true },
      { op: 'mount', target: 'data', flags: ['remount', 'bind', 'rdonly', 'nosuid'], inRoot: true },
    ]);
  });
  it("sysfs and cgroup: the host's /sys and /sys/fs/cgroup bound, their flags with a remount", () => {
    const sys = { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] };
    const cg = {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
    };
    for (const [m, source, target, rest] of [
      [sys, '/sys', 'sys', ['nosuid', 'noexec', 'nodev', 'rdonly']],
      [cg, '/sys/fs/cgroup', 'sys/fs/cgroup', ['nosuid', 'noexec', 'nodev', 'relatime', 'rdonly']],
    ] as const) {
      expect(mounts(m, true, false)).toEqual([
        { op: 'mount', source, target, flags: ['bind', 'rec'], inRoot: true },
        { op: 'mount', target, flags: ['remount', 'bind', ...rest], inRoot: true },
      ]);
    }
    // with a network namespace of its own: sysfs mounted, not bound
    expect(mounts(sys, true, true)).toEqual([expect.objectContaining({ source: 'sysfs', fstype: 'sysfs', target: 'sys' })]);
  });
});

describe('readHooks', () => {
  it('runs prestart before createRuntime; argv defaults to the path', () => {
    expect(
      readHooks({
        createRuntime: [{ path: '/b', args: ['b', '-x'], env: ['A=1'], timeout: 5 }],
        prestart: [{ path: '/a' }],
        poststop: [{ path: '/c' }],
      }),
    ).toEqual({
      createRuntime: [
        { path: '/a', args: ['/a'], env: [] },
        { path: '/b', args: ['b', '-x'], env: ['A=1'], timeoutS: 5 },
      ],
      createContainer: [],
      startContainer: [],
      poststart: [],
      poststop: [{ path: '/c', args: ['/c'], env: [] }],
    });
  });

  it('plans createContainer hooks as ops of the init, after its mounts and before pivot_root, the state left to fill', () => {
    const ops = opsOf(
      config((c) => {
        c.hooks = {
          createContainer: [{ path: '/usr/bin/ldconfig-hook', args: ['h', 'x'], env: ['K=v'], timeout: 7 }, { path: '/bin/other' }],
        };
      }),
    );
    const at = ops.findIndex((op) => op.op === 'hook');
    expect(ops.slice(at, at + 3)).toEqual([
      { op: 'hook', hook: 'createContainer', path: '/usr/bin/ldconfig-hook', args: ['h', 'x'], env: ['K=v'], state: '', timeoutS: 7 },
      { op: 'hook', hook: 'createContainer', path: '/bin/other', args: ['/bin/other'], env: [], state: '', timeoutS: 0 },
      { op: 'pivot-root' },
    ]);
    expect(ops.findIndex((op) => op.op === 'mount')).toBeLessThan(at);
  });

  it("joins a pid namespace by path through the monitor (the plan's pidNamespace), not by a setns op", () => {
    const { plan } = planOci(
      config((c) => {
        c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) =>
          n.type === 'pid' ? { type: 'pid', path: '/proc/7/ns/pid' } : n,
        );
      }),
      ctx,
    );
    expect(plan.pidNamespace).toBe('/proc/7/ns/pid');
    expect(plan.namespaces).not.toContain('pid');
    expect(plan.ops.some((op) => op.op === 'setns')).toBe(false);
  });

  it("joins a user namespace by path through the monitor (the plan's userNamespace): no maps written, no userns op, the namespace's root as for one of its own", () => {
    const { plan } = planOci(
      config((c) => {
        c.linux.namespaces.push({ type: 'user', path: '/proc/7/ns/user' });
        c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      }),
      ctx,
    );
    expect(plan.userNamespace).toEqual({ path: '/proc/7/ns/user', uidMap: '0 100000 65536\n', gidMap: '' });
    expect(plan.userns).toBeUndefined();
    expect(plan.namespaces).not.toContain('user');
    expect(plan.ops.some((op) => op.op === 'userns' || op.op === 'setns')).toBe(false);
    const root = plan.ops.findIndex((op) => op.op === 'setuid' && op.uid === 0);
    expect(root).toBeGreaterThan(-1);
    expect(root).toBeLessThan(plan.ops.findIndex((op) => op.op === 'pivot-root'));
    // without maps: nothing to compare
    const bare = planOci(
      config((c) => c.linux.namespaces.push({ type: 'user', path: '/proc/7/ns/user' })),
      ctx,
    ).plan;
    expect(bare.userNamespace).toEqual({ path: '/proc/7/ns/user' });
  });

  it("a user namespace path that is novabox-oci's own: nothing to join (a line in --log); maps with it are refused", () => {
    const own = { ...ctx, ownUserNamespace: (p: string) => p === '/proc/1/ns/user' };
    const r = planOci(
      config((c) => c.linux.namespaces.push({ type: 'user', path: '/proc/1/ns/user' })),
      own,
    );
    expect(r.plan.userNamespace).toBeUndefined();
    expect(r.plan.namespaces).not.toContain('user');
    expect(r.warnings).toContainEqual(expect.stringMatching(/is the user namespace novabox-oci runs in: the container stays in it/));
    expect(() =>
      planOci(
        config((c) => {
          c.linux.namespaces.push({ type: 'user', path: '/proc/1/ns/user' });
          c.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 1 }];
        }),
        own,
      ),
    ).toThrow(/linux\.uidMappings cannot map ids in the user namespace novabox-oci runs in/);
  });

  it('plans startContainer hooks as ops of the init right before its exec, after its credentials', () => {
    const ops = opsOf(
      config((c) => {
        c.hooks = { startContainer: [{ path: '/sbin/ldconfig', timeout: 3 }] };
      }),
    );
    expect(ops.slice(-2)).toEqual([
      { op: 'hook', hook: 'startContainer', path: '/sbin/ldconfig', args: ['/sbin/ldconfig'], env: [], state: '', timeoutS: 3 },
      expect.objectContaining({ op: 'exec' }),
    ]);
    expect(ops.findIndex((op) => op.op === 'setuid')).toBeLessThan(ops.length - 2);
  });
});

describe('linux.seccomp in the plan', () => {
  const profile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] };
  const kinds = (ops: Op[]) => ops.map((o) => o.op).filter((k) => ['seccomp-program', 'setuid', 'no-new-privs', 'exec'].includes(k));

  it('without noNewPrivileges the filter is loaded before setuid (it needs CAP_SYS_ADMIN)', () => {
    const c = config((c) => {
      c.linux.seccomp = profile;
      c.process.noNewPrivileges = false;
    });
    const { plan, seccomp } = planOci(c, ctx);
    expect(kinds(plan.ops)).toEqual(['seccomp-program', 'setuid', 'exec']);
    expect(seccomp).toMatchObject({ op: 'seccomp-program', flags: 0 });
    expect(seccomp?.program).toMatch(/^([0-9a-f]{16})+$/);
  });

  it('with noNewPrivileges it is the last thing before exec', () => {
    const c = config((c) => {
      c.linux.seccomp = profile;
      c.process.noNewPrivileges = true;
    });
    expect(kinds(opsOf(c))).toEqual(['setuid', 'no-new-privs', 'seccomp-program', 'exec']);
  });

  it('no profile: no filter (as runc); an exec gets the container’s filter', () => {
    expect(kinds(opsOf(config())).includes('seccomp-program')).toBe(false);
    const { seccomp } = planOci(
      config((c) => (c.linux.seccomp = profile)),
      ctx,
    );
    const exec = planOciExec(readProcess(config().process, 'process'), { pid: 1, namespaces: [] }, seccomp);
    expect(kinds(exec.ops)).toContain('seccomp-program');
  });
});

describe('ociLimits', () => {
  it("takes device rules novabox's allow-list answers: deny all, then the default devices and the ptys", () => {
    const devices = [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', major: 136, access: 'rwm' },
      { allow: true, type: 'c', major: 5, minor: 2, access: 'rw' },
    ];
    expect(ociLimits({ devices })).toEqual({});
    expect(() => ociLimits({ devices: [devices[1]] })).not.toThrow();
    expect(() => ociLimits({ devices: [devices[0], { allow: true, type: 'b', major: 8, access: 'rwm' }] })).toThrow(/devices\[1\]/);
    expect(() => ociLimits({ devices: [devices[0], devices[0]] })).toThrow(/devices\[1\]/);
    // Docker's deny of fuse (10:229) after the allows: novabox does not allow it either
    expect(() => ociLimits({ devices: [devices[0], { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' }] })).not.toThrow();
    // a deny of a device novabox allows would be weaker than asked
    expect(() => ociLimits({ devices: [devices[0], { allow: false, type: 'c', major: 1, minor: 3, access: 'rwm' }] })).toThrow(
      /devices\[1\]/,
    );
  });

  it("takes Docker's blockIO that asks for nothing", () => {
    expect(ociLimits({ blockIO: { weight: 0 } })).toEqual({});
    expect(ociLimits({ blockIO: { weight: 0, weightDevice: [] } })).toEqual({});
    expect(ociLimits({ blockIO: { throttleReadBpsDevice: [{ major: 7, minor: 0, rate: 0 }] } })).toEqual({});
  });

  it("reads blockIO's throttle lists, one entry per device", () => {
    expect(
      ociLimits({
        blockIO: {
          weight: 0,
          throttleReadBpsDevice: [{ major: 7, minor: 0, rate: 1048576 }],
          throttleWriteBpsDevice: [
            { major: 7, minor: 0, rate: 2097152 },
            { major: 8, minor: 16, rate: 6e9 },
          ],
          throttleReadIOPSDevice: [{ major: 8, minor: 16, rate: 100 }],
          throttleWriteIOPSDevice: [],
        },
      }),
    ).toEqual({
      blockIoThrottles: [
        { major: 7, minor: 0, readBps: 1048576, writeBps: 2097152 },
        { major: 8, minor: 16, writeBps: 6e9, readIops: 100 },
      ],
    });
  });

  it.each<[string, unknown, RegExp]>([
    [
      'a weight device',
      { weightDevice: [{ major: 8, minor: 0, weight: 100 }] },
      /blockIO\.weightDevice is not supported by novabox-oci \(only the throttle\*Device lists are\)/,
    ],
    ['a leaf weight', { leafWeight: 10 }, /blockIO\.leafWeight is not supported/],
    ['a throttle that is no list', { throttleReadBpsDevice: { major: 8 } }, /blockIO\.throttleReadBpsDevice must be a list/],
    [
      'a throttle without its minor',
      { throttleReadBpsDevice: [{ major: 8, rate: 1 }] },
      /throttleReadBpsDevice\[0\]\.minor must be a whole number/,
    ],
    [
      'a negative rate',
      { throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: -1 }] },
      /throttleWriteIOPSDevice\[0\]\.rate must be a whole number of bytes or operations per second/,
    ],
    [
      'an unknown key in a throttle',
      { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1, burst: 2 }] },
      /throttleReadBpsDevice\[0\]\.burst/,
    ],
  ])('refuses %s in blockIO in one sentence naming the field', (_, blockIO, message) => {
    expect(() => ociLimits({ blockIO })).toThrow(message);
  });

  it("refuses a throttle of a device the host's check finds wanting, naming the entry", () => {
    const check = (major: number, minor: number) => (major === 8 && minor === 1 ? 'names 8:1, a partition' : undefined);
    expect(() =>
      ociLimits(
        {
          blockIO: {
            throttleWriteBpsDevice: [
              { major: 8, minor: 0, rate: 1 },
              { major: 8, minor: 1, rate: 1 },
            ],
          },
        },
        { blockDevice: check },
      ),
    ).toThrow(/linux\.resources\.blockIO\.throttleWriteBpsDevice\[1\] names 8:1, a partition/);
    expect(ociLimits({ blockIO: { throttleWriteBpsDevice: [{ major: 8, minor: 0, rate: 1 }] } }, { blockDevice: check })).toEqual({
      blockIoThrottles: [{ major: 8, minor: 0, writeBps: 1 }],
    });
  });

  it("reads hugepageLimits, 0 as a limit (kubelet's for sizes a pod did not ask for)", () => {
    const sizes = () => ['2MB', '1GB'];
    expect(
      ociLimits(
        {
          hugepageLimits: [
            { pageSize: '2MB', limit: 4 << 20 },
            { pageSize: '1GB', limit: 0 },
          ],
        },
        { hugePageSizes: sizes },
      ),
    ).toEqual({
      hugetlb: [
        { pageSize: '2MB', limitBytes: 4 << 20 },
        { pageSize: '1GB', limitBytes: 0 },
      ],
    });
    expect(ociLimits({ hugepageLimits: [] })).toEqual({});
  });

  it.each<[string, unknown, RegExp]>([
    ['no list', { pageSize: '2MB', limit: 1 }, /hugepageLimits must be a list/],
    ['a size with no unit', [{ pageSize: '2048', limit: 1 }], /hugepageLimits\[0\]\.pageSize must be a size such as 2MB or 1GB/],
    [
      'a size this host lacks',
      [{ pageSize: '16GB', limit: 1 }],
      /hugepageLimits\[0\]\.pageSize 16GB is not a huge page size of this host \(it has 2MB, 1GB\)/,
    ],
    [
      'a size twice',
      [
        { pageSize: '2MB', limit: 1 },
        { pageSize: '2MB', limit: 2 },
      ],
      /hugepageLimits\[1\] lists page size 2MB twice/,
    ],
    ['a negative limit', [{ pageSize: '2MB', limit: -1 }], /hugepageLimits\[0\]\.limit must be a whole number of bytes/],
  ])('refuses hugepageLimits with %s, naming the field', (_, hugepageLimits, message) => {
    expect(() => ociLimits({ hugepageLimits }, { hugePageSizes: () => ['2MB', '1GB'] })).toThrow(message);
  });

  it('reads memory, swap, cpu and pids', () => {
    expect(
      ociLimits({ memory: { limit: 64 << 20, swap: 64 << 20 }, cpu: { quota: 50000, period: 100000, shares: 512 }, pids: { limit: 32 } }),
    ).toEqual({ memoryBytes: 64 << 20, swapOff: true, cpuQuotaUs: 50000, cpuPeriodUs: 100000, cpuShares: 512, pidsMax: 32 });
  });

  it('takes -1 and 0 as no limit', () => {
    expect(ociLimits({ memory: { limit: -1, swap: -1 }, cpu: { quota: -1, shares: 0 }, pids: { limit: 0 } })).toEqual({});
  });

  it('refuses swap other than none', () => {
    expect(() => ociLimits({ memory: { limit: 100, swap: 200 } })).toThrow(/linux\.resources\.memory\.swap/);
  });
});

describe('ociCgroupPath', () => {
  it.each([
    [undefined, 'novabox-oci/c1'],
    ['/default/c1', 'default/c1'],
    ['mine/c1', 'novabox-oci/mine/c1'],
  ])('%s -> %s', (input, out) => {
    expect(ociCgroupPath(input, 'c1')).toBe(out);
  });

  it('refuses ..', () => {
    expect(() => ociCgroupPath('/a/../b', 'c1')).toThrow(/is not a cgroup path/);
  });
});

describe('process.rlimits where the host refuses a raise (planRlimits)', () => {
  // the CI host: root without CAP_SYS_RESOURCE, hard RLIMIT_NOFILE 20000, RLIMIT_NPROC 96367
  const restricted: HostRlimits = { hard: { nofile: 20000n, nproc: 96367n, core: 0xffffffffffffffffn }, canRaise: false, nrOpen: 1048576n };
  const podman = [
    { type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 },
    { type: 'RLIMIT_NPROC', hard: 32768, soft: 32768 },
  ];

  it("lowers podman's RLIMIT_NOFILE to the caller's hard limit, says so, and keeps what can be set", () => {
    const warnings: string[] = [];
    expect(planRlimits(podman, restricted, false, warnings)).toEqual([
      { op: 'setrlimit', resource: 'nofile', soft: 20000n, hard: 20000n },
      { op: 'setrlimit', resource: 'nproc', soft: 32768n, hard: 32768n },
    ]);
    expect(warnings).toEqual([
      'process.rlimits[0]: RLIMIT_NOFILE hard limit 1048576 is above what novabox-oci can set here ' +
        '(its own hard limit is 20000, no CAP_SYS_RESOURCE): set to soft 20000, hard 20000',
    ]);
  });

  it('keeps a soft limit below the ceiling; unlimited asked of a finite ceiling is lowered too', () => {
    // RLIM_INFINITY as config.json writes it (18446744073709551615), as JSON.parse reads it
    const unlimited = JSON.parse('18446744073709551615');
    const warnings: string[] = [];
    expect(
      planRlimits(
        [
          { type: 'RLIMIT_NOFILE', hard: 65536, soft: 1024 },
          { type: 'RLIMIT_NPROC', hard: unlimited, soft: unlimited },
          { type: 'RLIMIT_CORE', hard: unlimited, soft: 0 },
        ],
        restricted,
        false,
        warnings,
      ),
    ).toEqual([
      { op: 'setrlimit', resource: 'nofile', soft: 1024n, hard: 20000n },
      { op: 'setrlimit', resource: 'nproc', soft: 96367n, hard: 96367n },
      { op: 'setrlimit', resource: 'core', soft: 0n, hard: 0xffffffffffffffffn },
    ]);
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toMatch(/^process\.rlimits\[1\]: RLIMIT_NPROC hard limit unlimited is above .*: set to soft 96367, hard 96367$/);
  });

  it('with CAP_SYS_RESOURCE only fs.nr_open bounds RLIMIT_NOFILE; a user namespace can never raise', () => {
    const root: HostRlimits = { ...restricted, canRaise: true };
    const warnings: string[] = [];
    expect(planRlimits(podman, root, false, warnings).map((o) => o.op === 'setrlimit' && o.hard)).toEqual([1048576n, 32768n]);
    expect(warnings).toEqual([]);
    expect(rlimitCeiling('nofile', root, false)).toEqual({ limit: 1048576n, why: 'fs.nr_open is 1048576' });
    expect(rlimitCeiling('nproc', root, false)).toBeUndefined();
    expect(rlimitCeiling('nofile', root, true)).toEqual({
      limit: 20000n,
      why: 'its own hard limit is 20000, a user namespace cannot raise a hard limit',
    });
    expect(planRlimits([{ type: 'RLIMIT_NOFILE', hard: 2000000, soft: 1 }], root, false, warnings)).toEqual([
      { op: 'setrlimit', resource: 'nofile', soft: 1n, hard: 1048576n },
    ]);
    expect(warnings).toEqual([
      'process.rlimits[0]: RLIMIT_NOFILE hard limit 2000000 is above what novabox-oci can set here (fs.nr_open is 1048576): set to soft 1, hard 1048576',
    ]);
  });

  it('planOci asks the host only when there are rlimits, and returns the sentences', () => {
    let asked = 0;
    const hostRlimits = () => {
      asked++;
      return restricted;
    };
    const none = planOci(
      config((c) => delete c.process.rlimits),
      { ...ctx, hostRlimits },
    );
    expect([asked, none.warnings]).toEqual([0, []]);
    const p = planOci(
      config((c) => (c.process.rlimits = podman)),
      { ...ctx, hostRlimits },
    );
    expect(asked).toBe(1);
    expect(p.warnings).toHaveLength(1);
    expect(p.plan.ops).toContainEqual({ op: 'setrlimit', resource: 'nofile', soft: 20000n, hard: 20000n });
    // without a host to ask (unit callers), the limits go as written
    expect(
      planOci(
        config((c) => (c.process.rlimits = podman)),
        ctx,
      ).plan.ops,
    ).toContainEqual({
      op: 'setrlimit',
      resource: 'nofile',
      soft: 1048576n,
      hard: 1048576n,
    });
  });

  it('an exec is lowered the same way', () => {
    const p = readProcess({ args: ['true'], cwd: '/', user: { uid: 0, gid: 0 }, rlimits: podman }, 'process');
    const warnings: string[] = [];
    const plan = planOciExec(p, { pid: 42, namespaces: ['mount'] }, undefined, restricted, warnings);
    expect(plan.ops).toContainEqual({ op: 'setrlimit', resource: 'nofile', soft: 20000n, hard: 20000n });
    expect(warnings).toHaveLength(1);
  });
});

describe('process.user.umask', () => {
  it("is read into the plan (the caller's umask while it spawns: the init keeps it for the process)", () => {
    expect(
      planOci(
        config((c) => (c.process.user.umask = 0o22)),
        ctx,
      ).umask,
    ).toBe(0o22);
    expect(planOci(config(), ctx).umask).toBeUndefined();
    expect(readProcess({ args: ['true'], cwd: '/', user: { uid: 0, gid: 0, umask: 0o77 } }, 'process').umask).toBe(0o77);
  });
});

describe('planOciExec', () => {
  it('joins the init, resolves inside its root, then credentials, chdir and exec', () => {
    const p = readProcess(
      { args: ['sh', '-c', 'id'], env: ['PATH=/bin'], cwd: '/tmp', user: { uid: 1000, gid: 1000 }, noNewPrivileges: true, terminal: true },
      'process',
    );
    const plan = planOciExec(p, { pid: 42, namespaces: ['mount', 'pid'] });
    expect(plan).toMatchObject({ namespaces: [], join: { pid: 42, namespaces: ['mount', 'pid'] }, tty: true, detach: true });
    expect(plan.ops.map((o) => o.op)).toEqual([
      'set-root',
      'console',
      'cap-bound',
      'setgroups',
      'setgid',
      'setuid',
      'capset',
      'no-new-privs',
      'chdir',
      'exec',
    ]);
    expect(plan.ops.at(-1)).toMatchObject({ file: 'sh', searchPath: '/bin', argv: ['sh', '-c', 'id'] });
  });

  it('names the process field it refuses', () => {
    expect(() => readProcess({ args: [], cwd: '/', user: { uid: 0, gid: 0 } }, 'process')).toThrow(/process\.args must name the program/);
  });
});
