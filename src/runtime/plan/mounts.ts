import type { MountFlag, Op } from '../../sys/ops.js';
import type { CgroupLayout } from '../cgroups/types.js';
import { type ContainerSpec, INIT_PATH } from './spec.js';
import { planDev } from './devices.js';
import { MASKED_PATHS, READONLY_PATHS } from './security.js';

/** Escape a path for overlayfs options, where ',' and ':' separate values (overlayfs docs). */
export function overlayPathEscape(p: string): string {
  // the usual path has none of them: no regular expression compiled on the start path
  if (!p.includes('\\') && !p.includes(',') && !p.includes(':')) return p;
  return p.replace(/\\/g, '\\\\').replace(/,/g, '\\,').replace(/:/g, '\\:');
}

export function overlayOptions(rootfs: ContainerSpec['rootfs']): string {
  const lower = rootfs.lowerDirs.map(overlayPathEscape).join(':');
  const base = `lowerdir=${lower},upperdir=${overlayPathEscape(rootfs.upperDir)},workdir=${overlayPathEscape(rootfs.workDir)}`;
  return rootfs.volatile ? `${base},volatile` : base;
}

const RO_CGROUP: MountFlag[] = ['rdonly', 'nosuid', 'nodev', 'noexec', 'relatime'];
const RW_CGROUP: MountFlag[] = ['nosuid', 'nodev', 'noexec', 'relatime'];

/**
 * /sys/fs/cgroup inside: the container's own subtree (cgroup namespace), read-only. For a
 * system container (`writable`, systemd as pid 1) the trees systemd manages are writable,
 * as LXC's cgroup:mixed with a cgroup namespace makes them: on cgroup v2 the whole mount
 * (the server's delegated cgroup); on v1 and hybrid hosts the named `name=systemd`
 * hierarchy and the cgroup2 mount beside it (the controllers stay read-only: the limits
 * are the host's).
 */
export function planCgroupMounts(layout: CgroupLayout, writable = false): Op[] {
  // the ops share their flag arrays (the plan is data, never changed after planning)
  if (layout.kind === 'v2') {
    return [
      { op: 'mount', source: 'cgroup2', target: 'sys/fs/cgroup', fstype: 'cgroup2', flags: writable ? RW_CGROUP : RO_CGROUP, inRoot: true },
    ];
  }
  const ops: Op[] = [
    {
      op: 'mount',
      source: 'tmpfs',
      target: 'sys/fs/cgroup',
      fstype: 'tmpfs',
      flags: ['nosuid', 'nodev', 'noexec'],
      data: 'mode=755,size=64k',
      inRoot: true,
    },
  ];
  // Co-mounted controllers (cpu,cpuacct) share one hierarchy: group them by mount point,
  // kept in mount point order as they come (plain comparison: localeCompare would load
  // ICU collation, ~10 ms, on the start path; no Map, no sort callback per pair)
  const points: string[] = [];
  const controllers: string[][] = [];
  for (const controller in layout.mounts) {
    const mp = layout.mounts[controller];
    let k = points.indexOf(mp);
    if (k < 0) {
      k = 0;
      while (k < points.length && points[k] < mp) k++;
      points.splice(k, 0, mp);
      controllers.splice(k, 0, []);
    }
    controllers[k].push(controller);
  }
  for (let k = 0; k < points.length; k++) {
    const mountpoint = points[k];
    // the last segment of a mountinfo path (no trailing '/'); path.basename's first call costs ~0.2 ms
    const dir = `sys/fs/cgroup/${mountpoint.slice(mountpoint.lastIndexOf('/') + 1)}`;
    ops.push(
      { op: 'mkdir', path: dir, mode: 0o755, inRoot: true },
      {
        op: 'mount',
        source: 'cgroup',
        target: dir,
        fstype: 'cgroup',
        flags: RO_CGROUP,
        data: controllers[k].sort().join(','),
        inRoot: true,
      },
    );
  }
  if (writable && layout.named?.systemd) {
    ops.push(
      { op: 'mkdir', path: 'sys/fs/cgroup/systemd', mode: 0o755, inRoot: true },
      {
        op: 'mount',
        source: 'cgroup',
        target: 'sys/fs/cgroup/systemd',
        fstype: 'cgroup',
        flags: RW_CGROUP,
        data: 'none,name=systemd',
        inRoot: true,
      },
    );
  }
  if (layout.unified) {
    ops.push(
      { op: 'mkdir', path: 'sys/fs/cgroup/unified', mode: 0o755, inRoot: true },
      {
        op: 'mount',
        source: 'cgroup2',
        target: 'sys/fs/cgroup/unified',
        fstype: 'cgroup2',
        flags: writable ? RW_CGROUP : RO_CGROUP,
        inRoot: true,
      },
    );
  }
  ops.push({ op: 'remount-ro', path: 'sys/fs/cgroup' });
  return ops;
}

/**
 * A system container's /run and /run/lock: tmpfs, as systemd expects them in a container
 * (systemd-nspawn, LXC and Incus all mount them before pid 1): systemd does not mount /run
 * itself when it lacks a fresh one and refuses to start without it.
 */
export function planRun(): Op[] {
  return [
    { op: 'mkdir', path: 'run', mode: 0o755, inRoot: true },
    { op: 'mount', source: 'tmpfs', target: 'run', fstype: 'tmpfs', flags: ['nosuid', 'nodev'], data: 'mode=755,size=20%', inRoot: true },
    { op: 'mkdir', path: 'run/lock', mode: 0o1777, inRoot: true },
    {
      op: 'mount',
      source: 'tmpfs',
      target: 'run/lock',
      fstype: 'tmpfs',
      flags: ['nosuid', 'nodev', 'noexec'],
      data: 'mode=1777,size=5120k',
      inRoot: true,
    },
  ];
}

/**
 * Mounts, in order: keep our mounts from propagating to the host, the overlay root,
 * /proc, /sys, /sys/fs/cgroup, /dev, masked and read-only paths. Targets are relative
 * to the new root and resolved inside it by the C side (RESOLVE_IN_ROOT).
 */
export function planMounts(spec: ContainerSpec): Op[] {
  const { rootfs } = spec;
  const userns = spec.idmap !== undefined;
  // (in a user namespace the plan made them private first: see planLaunch)
  const ops: Op[] = userns ? [] : [{ op: 'mount', target: '/', flags: ['rec', 'private'] }];
  if (userns) {
    // the monitor made the overlay (and its tmpfs) over idmapped layers: attach it
    ops.push({ op: 'mount-fd', target: rootfs.mergedDir });
  } else if (rootfs.tmpfs) {
    ops.push(
      {
        op: 'mount',
        source: 'tmpfs',
        target: rootfs.tmpfs.dir,
        fstype: 'tmpfs',
        flags: [],
        data: `mode=0755${rootfs.tmpfs.sizeBytes ? `,size=${rootfs.tmpfs.sizeBytes}` : ''}`,
      },
      { op: 'mkdir', path: rootfs.upperDir, mode: 0o755 },
      { op: 'mkdir', path: rootfs.workDir, mode: 0o700 },
    );
  }
  if (!userns) {
    ops.push({ op: 'mount', source: 'overlay', target: rootfs.mergedDir, fstype: 'overlay', flags: [], data: overlayOptions(rootfs) });
  }
  ops.push({ op: 'set-root', path: rootfs.mergedDir });
  if (userns) {
    // Root of the namespace from here on, host paths behind us (the bind sources were
    // opened by the 'userns' op): what the ops make in the rootfs, /dev and the other new
    // file systems is the container's, owned by ids its namespace maps.
    ops.push({ op: 'setgroups', gids: [] }, { op: 'setgid', gid: 0 }, { op: 'setuid', uid: 0 });
  }
  ops.push(
    { op: 'mkdir', path: 'proc', mode: 0o555, inRoot: true },
    { op: 'mount', source: 'proc', target: 'proc', fstype: 'proc', flags: ['nosuid', 'nodev', 'noexec', 'relatime'], inRoot: true },
    { op: 'mkdir', path: 'sys', mode: 0o555, inRoot: true },
  );
  if (userns && spec.network === 'host') {
    // a new sysfs needs a network namespace the user namespace owns; the host's is not
    ops.push({ op: 'mount', source: '/sys', target: 'sys', flags: ['bind', 'rec'], inRoot: true }, { op: 'remount-ro', path: 'sys' });
  } else {
    ops.push({
      op: 'mount',
      source: 'sysfs',
      target: 'sys',
      fstype: 'sysfs',
      flags: ['rdonly', 'nosuid', 'nodev', 'noexec', 'relatime'],
      inRoot: true,
    });
  }
  if (userns && spec.network === 'host' && spec.cgroups.kind === 'v2') {
    // the host's /sys came with its cgroup2 mount, the superblock a new cgroup2 mount
    // would get too: the kernel refuses one over the other (EBUSY on Linux 6.1)
    ops.push({
      op: 'mount',
      source: 'tmpfs',
      target: 'sys/fs/cgroup',
      fstype: 'tmpfs',
      flags: ['nosuid', 'nodev', 'noexec'],
      data: 'mode=755,size=64k',
      inRoot: true,
    });
  }
  for (const op of planCgroupMounts(spec.cgroups, spec.system)) ops.push(op);
  for (const op of planDev(spec.process.tty, userns)) ops.push(op);
  if (spec.initCopy) {
    // pid 1's binary: the host's copy, read-only (spec.ts, initCopy)
    const target = INIT_PATH.slice(1);
    ops.push(
      { op: 'mknod', path: target, mode: 0o555, type: 'file', major: 0, minor: 0, inRoot: true },
      { op: 'mount', source: spec.initCopy, target, flags: ['bind'], inRoot: true },
      { op: 'remount-ro', path: target },
    );
  }
  if (spec.system) for (const op of planRun()) ops.push(op);
  if (spec.etcFiles) {
    // Before the volumes: a user's -v onto /etc/hosts wins, as with podman.
    ops.push({ op: 'mkdir', path: 'etc', mode: 0o755, inRoot: true });
    for (const [target, source] of [
      ['etc/hosts', spec.etcFiles.hosts],
      ['etc/hostname', spec.etcFiles.hostname],
      ['etc/resolv.conf', spec.etcFiles.resolv],
    ]) {
      ops.push(
        { op: 'mknod', path: target, mode: 0o644, type: 'file', major: 0, minor: 0, inRoot: true },
        { op: 'mount', source, target, flags: ['bind'], inRoot: true },
      );
    }
  }
  for (const v of spec.volumes ?? []) {
    // Recursive bind: what is mounted below the source shows too (docker -v semantics).
    // Missing parents are made; the mount point is a directory or an empty file like its source.
    const parts = v.target.split('/').filter(Boolean);
    const target = parts.join('/');
    for (let i = 1; i < parts.length; i++) ops.push({ op: 'mkdir', path: parts.slice(0, i).join('/'), mode: 0o755, inRoot: true });
    ops.push(
      v.isDir
        ? { op: 'mkdir', path: target, mode: 0o755, inRoot: true }
        : { op: 'mknod', path: target, mode: 0o644, type: 'file', major: 0, minor: 0, inRoot: true },
      { op: 'mount', source: v.source, target, flags: ['bind', 'rec'], inRoot: true },
    );
    if (v.readOnly) ops.push({ op: 'remount-ro', path: target });
  }
  if (rootfs.readOnly) {
    // As podman --read-only: the root is read-only, the usual scratch dirs are tmpfs.
    for (const dir of ['tmp', 'var/tmp', 'run']) {
      ops.push(
        { op: 'mkdir', path: dir, mode: 0o1777, inRoot: true },
        { op: 'mount', source: 'tmpfs', target: dir, fstype: 'tmpfs', flags: ['nosuid', 'nodev'], data: 'mode=1777', inRoot: true },
      );
    }
  }
  for (const path of MASKED_PATHS) ops.push({ op: 'mask', path });
  for (const path of READONLY_PATHS) ops.push({ op: 'readonly', path });
  if (spec.bootIdFile) {
    ops.push(
      { op: 'mount', source: spec.bootIdFile, target: 'proc/sys/kernel/random/boot_id', flags: ['bind'], inRoot: true },
      { op: 'remount-ro', path: 'proc/sys/kernel/random/boot_id' },
    );
  }
  return ops;
}
