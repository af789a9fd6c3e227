import type { Op } from '../../sys/ops.js';

/** The device nodes every container gets, made by us on a fresh tmpfs: never the image's /dev. */
export const DEVICES = [
  { name: 'null', major: 1, minor: 3 },
  { name: 'zero', major: 1, minor: 5 },
  { name: 'full', major: 1, minor: 7 },
  { name: 'random', major: 1, minor: 8 },
  { name: 'urandom', major: 1, minor: 9 },
  { name: 'tty', major: 5, minor: 0 },
] as const;

export const DEV_LINKS: [string, string][] = [
  ['dev/fd', '/proc/self/fd'],
  ['dev/stdin', '/proc/self/fd/0'],
  ['dev/stdout', '/proc/self/fd/1'],
  ['dev/stderr', '/proc/self/fd/2'],
  ['dev/core', '/proc/kcore'],
  ['dev/ptmx', 'pts/ptmx'],
];

/**
 * /dev as a tmpfs with our own nodes, devpts (its own instance), shm, mqueue; console = the pty.
 * In a user namespace of its own (`bound`) no device node can be made (mknod needs
 * CAP_MKNOD over the host's namespace): each is the host's node bound onto an empty file,
 * as LXC and runc do for unprivileged containers.
 */
export function planDev(tty: false | { rows: number; cols: number }, bound = false): Op[] {
  const ops: Op[] = [
    { op: 'mkdir', path: 'dev', mode: 0o755, inRoot: true },
    {
      op: 'mount',
      source: 'tmpfs',
      target: 'dev',
      fstype: 'tmpfs',
      flags: ['nosuid', 'strictatime'],
      data: 'mode=755,size=65536k',
      inRoot: true,
    },
  ];
  for (const d of DEVICES) {
    if (bound) {
      ops.push(
        { op: 'mknod', path: `dev/${d.name}`, mode: 0o666, type: 'file', major: 0, minor: 0, inRoot: true },
        { op: 'mount', source: `/dev/${d.name}`, target: `dev/${d.name}`, flags: ['bind'], inRoot: true },
      );
    } else {
      ops.push({ op: 'mknod', path: `dev/${d.name}`, mode: 0o666, type: 'c', major: d.major, minor: d.minor, inRoot: true });
    }
  }
  ops.push(
    { op: 'mkdir', path: 'dev/pts', mode: 0o755, inRoot: true },
    {
      op: 'mount',
      source: 'devpts',
      target: 'dev/pts',
      fstype: 'devpts',
      flags: ['nosuid', 'noexec'],
      data: 'newinstance,ptmxmode=0666,mode=0620,gid=5',
      inRoot: true,
    },
    { op: 'mkdir', path: 'dev/shm', mode: 0o1777, inRoot: true },
    {
      op: 'mount',
      source: 'shm',
      target: 'dev/shm',
      fstype: 'tmpfs',
      flags: ['nosuid', 'nodev', 'noexec'],
      data: 'mode=1777,size=65536k',
      inRoot: true,
    },
    { op: 'mkdir', path: 'dev/mqueue', mode: 0o755, inRoot: true },
    { op: 'mount', source: 'mqueue', target: 'dev/mqueue', fstype: 'mqueue', flags: ['nosuid', 'nodev', 'noexec'], inRoot: true },
  );
  for (const [path, target] of DEV_LINKS) ops.push({ op: 'symlink', target, path, inRoot: true });
  if (tty) {
    // A pty of the container's own devpts becomes stdio and /dev/console (see ops.c op_console).
    ops.push(
      { op: 'mknod', path: 'dev/console', mode: 0o620, type: 'file', major: 0, minor: 0, inRoot: true },
      { op: 'console', ptmx: 'dev/pts/ptmx', path: 'dev/console', rows: tty.rows, cols: tty.cols },
    );
  }
  return ops;
}
