import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Op } from '../../../../src/sys/ops.js';
import {
  DEFAULT_CAPABILITIES,
  DEFAULT_RLIMITS,
  MASKED_PATHS,
  READONLY_PATHS,
  overlayOptions,
  planCgroupMounts,
  planLaunch,
  type ContainerSpec,
} from '../../../../src/runtime/plan/index.js';

function spec(over: Partial<ContainerSpec> = {}, proc: Partial<ContainerSpec['process']> = {}): ContainerSpec {
  return {
    id: 'c0ffee',
    hostname: 'web',
    rootfs: { mergedDir: '/s/c/rootfs', lowerDirs: ['/s/l/b', '/s/l/a'], upperDir: '/s/c/upper', workDir: '/s/c/work', readOnly: false },
    process: {
      args: ['sh', '-c', 'true'],
      env: ['PATH=/bin:/usr/bin'],
      cwd: '/tmp',
      uid: 0,
      gid: 0,
      additionalGids: [10],
      tty: false,
      ...proc,
    },
    network: 'none',
    cgroups: { kind: 'v2', root: '/sys/fs/cgroup', controllers: ['cpu', 'memory', 'pids'] },
    capabilities: DEFAULT_CAPABILITIES,
    rlimits: DEFAULT_RLIMITS,
    ...over,
  };
}

const kinds = (ops: Op[]) => ops.map((o) => o.op);
const index = (ops: Op[], pred: (o: Op) => boolean) => ops.findIndex(pred);

describe('planLaunch', () => {
  const plan = planLaunch(spec());
  const ops = plan.ops;

  it('clones every namespace but cgroup, which the init unshares first', () => {
    expect(plan.namespaces).toEqual(['mount', 'uts', 'ipc', 'pid', 'net']);
    expect(ops[0]).toEqual({ op: 'unshare', namespaces: ['cgroup'] });
  });

  it('keeps the network namespace of the host with --network host', () => {
    expect(planLaunch(spec({ network: 'host' })).namespaces).not.toContain('net');
  });

  it('makes mounts private before mounting the overlay root', () => {
    expect(ops[1]).toEqual({ op: 'mount', target: '/', flags: ['rec', 'private'] });
    expect(ops[2]).toMatchObject({ op: 'mount', fstype: 'overlay', target: '/s/c/rootfs' });
    expect(ops[3]).toEqual({ op: 'set-root', path: '/s/c/rootfs' });
  });

  it('orders the steps as the kernel requires', () => {
    const order = [
      'unshare',
      'set-root',
      'pivot-root',
      'sethostname',
      'cap-bound',
      'setgroups',
      'setgid',
      'setuid',
      'capset',
      'no-new-privs',
      'seccomp',
      'chdir',
      'exec',
    ];
    const at = order.map((k) => kinds(ops).indexOf(k as Op['op']));
    expect(at.every((v) => v >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(ops.at(-1)?.op).toBe('exec');
  });

  it('mounts every filesystem before pivot_root, and every mount target inside the root', () => {
    const pivot = kinds(ops).indexOf('pivot-root');
    ops.forEach((o, i) => {
      if (['mount', 'mkdir', 'mknod', 'symlink', 'mask', 'readonly'].includes(o.op)) expect(i).toBeLessThan(pivot);
      if ((o.op === 'mount' || o.op === 'mkdir' || o.op === 'mknod' || o.op === 'symlink') && i > 3) {
        expect(o.inRoot).toBe(true);
      }
    });
  });

  it.each([
    ['proc', 'proc', ['nosuid', 'nodev', 'noexec', 'relatime']],
    ['sys', 'sysfs', ['rdonly', 'nosuid', 'nodev', 'noexec', 'relatime']],
    ['dev', 'tmpfs', ['nosuid', 'strictatime']],
    ['dev/pts', 'devpts', ['nosuid', 'noexec']],
    ['dev/shm', 'tmpfs', ['nosuid', 'nodev', 'noexec']],
    ['dev/mqueue', 'mqueue', ['nosuid', 'nodev', 'noexec']],
    ['sys/fs/cgroup', 'cgroup2', ['rdonly', 'nosuid', 'nodev', 'noexec', 'relatime']],
  ])('mounts %s as %s with %j', (target, fstype, flags) => {
    const m = ops.find((o) => o.op === 'mount' && o.target === target);
    expect(m).toMatchObject({ fstype, flags });
  });

  it('mounts /proc before /sys and /dev before the device nodes', () => {
    const proc = index(ops, (o) => o.op === 'mount' && o.target === 'proc');
    const dev = index(ops, (o) => o.op === 'mount' && o.target === 'dev');
    const nul = index(ops, (o) => o.op === 'mknod' && o.path === 'dev/null');
    const mask = index(ops, (o) => o.op === 'mask');
    expect(proc).toBeLessThan(dev);
    expect(dev).toBeLessThan(nul);
    expect(proc).toBeLessThan(mask);
  });

  it.each(['null', 'zero', 'full', 'random', 'urandom', 'tty'])('makes /dev/%s itself', (name) => {
    expect(ops.some((o) => o.op === 'mknod' && o.path === `dev/${name}` && o.type === 'c')).toBe(true);
  });

  it('links /dev/ptmx to the private devpts instance', () => {
    expect(ops).toContainEqual({ op: 'symlink', target: 'pts/ptmx', path: 'dev/ptmx', inRoot: true });
    const pts = ops.find((o) => o.op === 'mount' && o.target === 'dev/pts');
    expect(pts).toMatchObject({ data: expect.stringContaining('newinstance') });
  });

  it('attaches a console from the private devpts only with a terminal, after devpts is mounted', () => {
    expect(ops.some((o) => o.op === 'console')).toBe(false);
    const tty = planLaunch(spec({}, { tty: { rows: 30, cols: 100 } }));
    expect(tty.tty).toBe(true);
    const consoleAt = tty.ops.findIndex((o) => o.op === 'console');
    const devptsAt = tty.ops.findIndex((o) => o.op === 'mount' && o.target === 'dev/pts');
    const fileAt = tty.ops.findIndex((o) => o.op === 'mknod' && o.path === 'dev/console');
    expect(tty.ops[consoleAt]).toEqual({ op: 'console', ptmx: 'dev/pts/ptmx', path: 'dev/console', rows: 30, cols: 100 });
    expect(devptsAt).toBeLessThan(consoleAt);
    expect(fileAt).toBeLessThan(consoleAt);
    expect(consoleAt).toBeLessThan(tty.ops.findIndex((o) => o.op === 'pivot-root'));
  });

  it.each(MASKED_PATHS)('masks %s', (path) => {
    expect(ops).toContainEqual({ op: 'mask', path });
  });

  it.each(READONLY_PATHS)('makes %s read-only', (path) => {
    expect(ops).toContainEqual({ op: 'readonly', path });
  });

  it('keeps only the allow-list of capabilities, and none for a non-root user', () => {
    expect(ops).toContainEqual({ op: 'cap-bound', keep: DEFAULT_CAPABILITIES });
    expect(ops).toContainEqual({ op: 'capset', caps: DEFAULT_CAPABILITIES });
    const user = planLaunch(spec({}, { uid: 1000, gid: 1000, additionalGids: [] }));
    expect(user.ops).toContainEqual({ op: 'capset', caps: [] });
    expect(user.ops).toContainEqual({ op: 'setuid', uid: 1000 });
    expect(user.ops).toContainEqual({ op: 'setgroups', gids: [1000] });
  });

  it('never grants SYS_ADMIN, NET_RAW or MKNOD by default', () => {
    for (const c of ['SYS_ADMIN', 'NET_RAW', 'MKNOD', 'SYS_MODULE', 'SYS_PTRACE'] as const) {
      expect(DEFAULT_CAPABILITIES).not.toContain(c);
    }
  });

  it('searches the command in the container PATH and passes env and argv', () => {
    expect(ops.at(-1)).toEqual({
      op: 'exec',
      file: 'sh',
      searchPath: '/bin:/usr/bin',
      argv: ['sh', '-c', 'true'],
      env: ['PATH=/bin:/usr/bin'],
    });
  });

  it('with --read-only remounts / read-only after pivot_root and gives tmpfs scratch dirs', () => {
    const ro = planLaunch(spec({ rootfs: { ...spec().rootfs, readOnly: true } })).ops;
    const pivot = kinds(ro).indexOf('pivot-root');
    expect(ro[pivot + 1]).toEqual({ op: 'remount-ro', path: '/' });
    for (const d of ['tmp', 'var/tmp', 'run']) {
      expect(ro.some((o) => o.op === 'mount' && o.target === d && o.fstype === 'tmpfs')).toBe(true);
    }
  });

  it("runs a server's novabox-init from the monitor's sealed copy, with nothing of the host mounted for it", () => {
    const p = planLaunch(spec({ initBinary: '/opt/nb/novabox-init' }, { args: ['novabox-init', '--', 'httpd'] }));
    expect(p.execCopy).toBe('/opt/nb/novabox-init');
    expect(p.ops.at(-1)).toMatchObject({ op: 'exec', file: 'novabox-init', argv: ['novabox-init', '--', 'httpd'], sealed: true });
    expect(p.ops.some((o) => o.op === 'mount' && o.source === '/opt/nb/novabox-init')).toBe(false);
    expect(plan.execCopy).toBeUndefined();
    expect(ops.at(-1)).not.toHaveProperty('sealed');
  });

  it("runs a server's novabox-init from the host's copy bound read-only at /dev/.novabox-init (a file CRIU can restore), not a memfd", () => {
    const p = planLaunch(
      spec(
        { initBinary: '/opt/nb/novabox-init', initCopy: '/var/lib/nb/init/novabox-init.1.2' },
        { args: ['novabox-init', '--', 'httpd'] },
      ),
    );
    expect(p.execCopy).toBeUndefined();
    expect(p.ops.at(-1)).toMatchObject({ op: 'exec', file: '/dev/.novabox-init', argv: ['novabox-init', '--', 'httpd'] });
    expect(p.ops.at(-1)).not.toHaveProperty('sealed');
    const at = p.ops.findIndex((o) => o.op === 'mount' && o.source === '/var/lib/nb/init/novabox-init.1.2');
    expect(p.ops[at]).toEqual({
      op: 'mount',
      source: '/var/lib/nb/init/novabox-init.1.2',
      target: 'dev/.novabox-init',
      flags: ['bind'],
      inRoot: true,
    });
    expect(p.ops[at - 1]).toMatchObject({ op: 'mknod', path: 'dev/.novabox-init', type: 'file' });
    expect(p.ops[at + 1]).toEqual({ op: 'remount-ro', path: 'dev/.novabox-init' });
    // after /dev is made, before pivot_root
    expect(at).toBeGreaterThan(p.ops.findIndex((o) => o.op === 'mount' && o.target === 'dev'));
    expect(at).toBeLessThan(p.ops.findIndex((o) => o.op === 'pivot-root'));
    // never the host's own binary
    expect(p.ops.some((o) => o.op === 'mount' && o.source === '/opt/nb/novabox-init')).toBe(false);
  });

  it('sets the hostname and the rlimits', () => {
    expect(ops).toContainEqual({ op: 'sethostname', hostname: 'web' });
    expect(ops).toContainEqual({ op: 'setrlimit', resource: 'nofile', soft: 1024n, hard: 524288n });
  });
});

describe('overlayOptions', () => {
  it.each([
    [['/a'], '/u', '/w', 'lowerdir=/a,upperdir=/u,workdir=/w'],
    [['/b', '/a'], '/u', '/w', 'lowerdir=/b:/a,upperdir=/u,workdir=/w'],
    [['/x,y', '/p:q'], '/u', '/w', 'lowerdir=/x\\,y:/p\\:q,upperdir=/u,workdir=/w'],
  ])('%j', (lowerDirs, upperDir, workDir, expected) => {
    expect(overlayOptions({ lowerDirs, upperDir, workDir, mergedDir: '/m', readOnly: false })).toBe(expected);
  });

  it('adds volatile for a layer thrown away with the container', () => {
    expect(overlayOptions({ lowerDirs: ['/a'], upperDir: '/u', workDir: '/w', mergedDir: '/m', readOnly: false, volatile: true })).toBe(
      'lowerdir=/a,upperdir=/u,workdir=/w,volatile',
    );
  });
});

describe('planCgroupMounts', () => {
  it('v2: one read-only cgroup2 mount', () => {
    expect(planCgroupMounts({ kind: 'v2', root: '/sys/fs/cgroup', controllers: [] })).toHaveLength(1);
  });

  it('v1/hybrid: a tmpfs, one read-only mount per hierarchy, the unified mount, then the tmpfs read-only', () => {
    const ops = planCgroupMounts({
      kind: 'hybrid',
      mounts: { cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory' },
      unified: '/sys/fs/cgroup/unified',
    });
    expect(ops[0]).toMatchObject({ op: 'mount', fstype: 'tmpfs', target: 'sys/fs/cgroup' });
    const cg = ops.filter((o) => o.op === 'mount' && o.fstype === 'cgroup');
    expect(cg).toEqual([
      expect.objectContaining({ target: 'sys/fs/cgroup/cpu,cpuacct', data: 'cpu,cpuacct', flags: expect.arrayContaining(['rdonly']) }),
      expect.objectContaining({ target: 'sys/fs/cgroup/memory', data: 'memory' }),
    ]);
    expect(ops).toContainEqual(expect.objectContaining({ fstype: 'cgroup2', target: 'sys/fs/cgroup/unified' }));
    expect(ops.at(-1)).toEqual({ op: 'remount-ro', path: 'sys/fs/cgroup' });
  });
});

import { ALL_LIMIT_NAMES, clampRlimits, parseHardLimits } from '../../../../src/runtime/plan/index.js';

describe('rlimits', () => {
  const limits = `Limit                     Soft Limit           Hard Limit           Units
Max core file size        0                    unlimited            bytes
Max processes             95000                95000                processes
Max open files            20000                20000                files
`;
  it('reads hard limits from /proc/self/limits', () => {
    expect(parseHardLimits(limits)).toEqual({ core: 0xffffffffffffffffn, nproc: 95000n, nofile: 20000n });
  });

  it("reads this process's own /proc/self/limits whole, and a file without a header", () => {
    const own = parseHardLimits(readFileSync('/proc/self/limits', 'utf8'));
    expect(Object.keys(own).sort()).toEqual(['core', 'nofile', 'nproc']);
    for (const v of Object.values(own)) expect(typeof v).toBe('bigint');
    expect(parseHardLimits('Max open files            1024                 4096                 files     ')).toEqual({ nofile: 4096n });
    expect(parseHardLimits('Max open filesystems      1                    2                    x\n')).toEqual({});
  });

  it('reads every limit of /proc/self/limits with ALL_LIMIT_NAMES (novabox-oci: any process.rlimits type)', () => {
    const own = parseHardLimits(readFileSync('/proc/self/limits', 'utf8'), ALL_LIMIT_NAMES);
    expect(Object.keys(own).sort()).toEqual([
      'as',
      'core',
      'cpu',
      'data',
      'fsize',
      'locks',
      'memlock',
      'msgqueue',
      'nice',
      'nofile',
      'nproc',
      'rss',
      'rtprio',
      'rttime',
      'sigpending',
      'stack',
    ]);
  });

  it.each([
    [524288n, 1024n, 20000n, { soft: 1024n, hard: 20000n }],
    [524288n, 1024n, 600000n, { soft: 1024n, hard: 524288n }],
    [524288n, 1024n, 512n, { soft: 512n, hard: 512n }],
  ])('hard %s soft %s with host hard %s', (hard, soft, host, expected) => {
    expect(clampRlimits([{ resource: 'nofile', soft, hard }], { nofile: host })[0]).toMatchObject(expected);
  });
});

describe('volumes', () => {
  it('binds recursively inside the root, read-only when asked, before the masks', () => {
    const ops = planLaunch(
      spec({
        volumes: [
          { source: '/h/a', target: '/data', readOnly: false, isDir: true },
          { source: '/h/b', target: '/ro', readOnly: true, isDir: true },
        ],
      }),
    ).ops;
    const at = (pred: (o: Op) => boolean) => ops.findIndex(pred);
    expect(ops).toContainEqual({ op: 'mount', source: '/h/a', target: 'data', flags: ['bind', 'rec'], inRoot: true });
    expect(ops).toContainEqual({ op: 'remount-ro', path: 'ro' });
    expect(ops).not.toContainEqual({ op: 'remount-ro', path: 'data' });
    expect(at((o) => o.op === 'mkdir' && o.path === 'data')).toBeLessThan(at((o) => o.op === 'mount' && o.target === 'data'));
    expect(at((o) => o.op === 'mount' && o.target === 'ro')).toBeLessThan(at((o) => o.op === 'mask'));
  });
});

describe('seccomp', () => {
  it('is on by default, after no_new_privs; off with seccomp: false', () => {
    const ops = planLaunch(spec()).ops.map((o) => o.op);
    expect(ops.indexOf('seccomp')).toBe(ops.indexOf('no-new-privs') + 1);
    expect(planLaunch(spec({ seccomp: false })).ops.some((o) => o.op === 'seccomp')).toBe(false);
  });
});

describe('volume mount points', () => {
  it('makes missing parents, and an empty file for a file source', () => {
    const ops = planLaunch(spec({ volumes: [{ source: '/dev/kmsg', target: '/mnt/dev/kmsg', readOnly: false, isDir: false }] })).ops;
    const made = ops.filter((o) => (o.op === 'mkdir' || o.op === 'mknod') && /^mnt/.test(o.path));
    expect(made).toEqual([
      { op: 'mkdir', path: 'mnt', mode: 0o755, inRoot: true },
      { op: 'mkdir', path: 'mnt/dev', mode: 0o755, inRoot: true },
      { op: 'mknod', path: 'mnt/dev/kmsg', mode: 0o644, type: 'file', major: 0, minor: 0, inRoot: true },
    ]);
  });
});

describe('a user namespace of its own (spec.idmap)', () => {
  const idmap = { uidBase: 1065536, gidBase: 2131072, size: 65536 };
  const plan = planLaunch(
    spec({
      idmap,
      network: 'bridge',
      etcFiles: { hosts: '/s/c/etc/hosts', hostname: '/s/c/etc/hostname', resolv: '/s/c/etc/resolv.conf' },
    }),
  );
  const ops = plan.ops;

  it('clones a user namespace, and the maps and rootfs go to the monitor', () => {
    expect(plan.namespaces[0]).toBe('user');
    expect(plan.userns).toEqual({
      uidMap: '0 1065536 65536\n',
      gidMap: '0 2131072 65536\n',
      rootfs: { upper: '/s/c/upper', work: '/s/c/work', flags: '', stage: '/s/c/rootfs', lowers: ['/s/l/b', '/s/l/a'] },
    });
  });

  it("waits for the maps first, attaches the monitor's overlay, and mounts none itself", () => {
    // its mounts private first (the monitor may attach the layers in its namespace), then the word
    expect(ops[0]).toEqual({ op: 'mount', target: '/', flags: ['rec', 'private'] });
    expect(ops[1]).toEqual({ op: 'userns' });
    expect(ops.filter((o) => o.op === 'mount' && o.target === '/')).toHaveLength(1);
    expect(ops.some((o) => o.op === 'mount' && o.fstype === 'overlay')).toBe(false);
    const attach = index(ops, (o) => o.op === 'mount-fd');
    expect(ops[attach]).toEqual({ op: 'mount-fd', target: '/s/c/rootfs' });
    expect(index(ops, (o) => o.op === 'userns')).toBeLessThan(attach);
  });

  it("becomes the namespace's root right after set-root, before anything is made in the rootfs", () => {
    const setRoot = index(ops, (o) => o.op === 'set-root');
    expect(ops.slice(setRoot + 1, setRoot + 4)).toEqual([
      { op: 'setgroups', gids: [] },
      { op: 'setgid', gid: 0 },
      { op: 'setuid', uid: 0 },
    ]);
    const firstMade = index(ops, (o) => o.op === 'mkdir' || o.op === 'mknod');
    expect(firstMade).toBeGreaterThan(setRoot + 3);
  });

  it.each(['null', 'zero', 'full', 'random', 'urandom', 'tty'])(
    "binds the host's /dev/%s onto an empty file (no mknod in a user namespace)",
    (name) => {
      const i = index(ops, (o) => o.op === 'mknod' && o.path === `dev/${name}`);
      expect(ops[i]).toMatchObject({ type: 'file' });
      expect(ops[i + 1]).toEqual({ op: 'mount', source: `/dev/${name}`, target: `dev/${name}`, flags: ['bind'], inRoot: true });
    },
  );

  it("with --network host binds the host's /sys read-only (a new sysfs needs a network namespace it owns)", () => {
    const host = planLaunch(spec({ idmap, network: 'host' })).ops;
    expect(host.some((o) => o.op === 'mount' && o.fstype === 'sysfs')).toBe(false);
    const i = index(host, (o) => o.op === 'mount' && o.target === 'sys');
    expect(host[i]).toMatchObject({ source: '/sys', flags: ['bind', 'rec'] });
    expect(host[i + 1]).toEqual({ op: 'remount-ro', path: 'sys' });
  });

  it('a tmpfs writable layer is made by the monitor: upper and work are names inside it', () => {
    const eph = planLaunch(
      spec({
        idmap,
        rootfs: {
          mergedDir: '/s/c/rootfs',
          lowerDirs: ['/s/l/a'],
          upperDir: '/s/c/eph/upper',
          workDir: '/s/c/eph/work',
          readOnly: false,
          tmpfs: { dir: '/s/c/eph', sizeBytes: 1 << 30 },
          volatile: true,
        },
      }),
    );
    expect(eph.userns?.rootfs).toEqual({
      upper: 'upper',
      work: 'work',
      flags: 'volatile',
      tmpfs: `mode=0755,size=${1 << 30}`,
      stage: '/s/c/rootfs',
      lowers: ['/s/l/a'],
    });
    expect(eph.ops.some((o) => o.op === 'mount' && o.fstype === 'tmpfs' && o.target === '/s/c/eph')).toBe(false);
  });

  it('sets no no_new_privs (setuid binaries work, as root of the namespace only) and loads seccomp before setuid drops CAP_SYS_ADMIN', () => {
    const user = planLaunch(spec({ idmap }, { uid: 1000, gid: 1000, additionalGids: [] })).ops;
    expect(user.some((o) => o.op === 'no-new-privs')).toBe(false);
    const tail = kinds(user).slice(index(user, (o) => o.op === 'cap-bound'));
    expect(tail).toEqual(['cap-bound', 'seccomp', 'setgroups', 'setgid', 'setuid', 'capset', 'chdir', 'exec']);
    const host = planLaunch(spec({}, { uid: 1000, gid: 1000, additionalGids: [] })).ops;
    expect(kinds(host).slice(index(host, (o) => o.op === 'cap-bound'))).toEqual([
      'cap-bound',
      'setgroups',
      'setgid',
      'setuid',
      'capset',
      'no-new-privs',
      'seccomp',
      'chdir',
      'exec',
    ]);
  });

  it('without idmap nothing of it is planned', () => {
    const p = planLaunch(spec());
    expect(p.userns).toBeUndefined();
    expect(p.ops.some((o) => o.op === 'userns' || o.op === 'mount-fd')).toBe(false);
  });
});
