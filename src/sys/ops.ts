/**
 * The launch plan as TypeScript sees it, and its encoding into the flat C struct of
 * native-bindings/include/novabox.h. Pure: no koffi here, so planners and their unit
 * tests can import it without the native library.
 */

export type MountFlag =
  | 'rdonly' | 'nosuid' | 'nodev' | 'noexec' | 'remount' | 'bind' | 'rec'
  | 'private' | 'slave' | 'shared' | 'relatime' | 'strictatime' | 'noatime';

/** linux/mount.h */
export const MOUNT_FLAGS: Record<MountFlag, number> = {
  rdonly: 0x1,
  nosuid: 0x2,
  nodev: 0x4,
  noexec: 0x8,
  remount: 0x20,
  noatime: 0x400,
  bind: 0x1000,
  rec: 0x4000,
  private: 0x40000,
  slave: 0x80000,
  shared: 0x100000,
  relatime: 0x200000,
  strictatime: 0x1000000,
};

export type Namespace = 'mount' | 'uts' | 'ipc' | 'pid' | 'net' | 'cgroup' | 'user';

/** linux/sched.h CLONE_NEW* */
export const CLONE_FLAGS: Record<Namespace, number> = {
  mount: 0x00020000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  net: 0x40000000,
  cgroup: 0x02000000,
};

/** sys/resource.h */
export const RLIMITS = {
  cpu: 0, fsize: 1, data: 2, stack: 3, core: 4, rss: 5, nproc: 6, nofile: 7,
  memlock: 8, as: 9, locks: 10, sigpending: 11, msgqueue: 12, nice: 13, rtprio: 14, rttime: 15,
} as const;
export type Rlimit = keyof typeof RLIMITS;
export const RLIM_INFINITY = 0xffffffffffffffffn;

/** linux/capability.h */
export const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID',
  'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW',
  'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT',
  'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD',
  'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG',
  'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

export type Op =
  | { op: 'mount'; source?: string; target: string; fstype?: string; flags: MountFlag[]; data?: string; inRoot?: boolean }
  | { op: 'mkdir'; path: string; mode: number; inRoot?: boolean }
  | { op: 'mknod'; path: string; mode: number; type: 'c' | 'file'; major: number; minor: number; inRoot?: boolean }
  | { op: 'symlink'; target: string; path: string; inRoot?: boolean }
  | { op: 'mask'; path: string }
  | { op: 'readonly'; path: string }
  | { op: 'remount-ro'; path: string }
  | { op: 'set-root'; path: string }
  | { op: 'pivot-root' }
  | { op: 'sethostname'; hostname: string }
  | { op: 'setrlimit'; resource: Rlimit; soft: bigint; hard: bigint }
  | { op: 'unshare'; namespaces: Namespace[] }
  | { op: 'cap-bound'; keep: Capability[] }
  | { op: 'setgroups'; gids: number[] }
  | { op: 'setgid'; gid: number }
  | { op: 'setuid'; uid: number }
  | { op: 'capset'; caps: Capability[] }
  | { op: 'no-new-privs' }
  | { op: 'chdir'; path: string }
  | { op: 'console'; ptmx: string; path: string }
  | { op: 'exec'; file: string; searchPath: string; argv: string[]; env: string[] };

export interface LaunchPlan {
  namespaces: Namespace[];
  ops: Op[];
  /** a console socket: the 'console' op sends the pty master back on it */
  tty: boolean;
  /** the monitor copies the init's stdout/stderr into this file (size-bounded) */
  logPath?: string;
  logMaxBytes?: number;
  /** the monitor writes "<wait status> <unix time>" here when the init exits */
  statusPath?: string;
}

/** One line per op for error messages: `mount tmpfs on /dev`, `exec "/nope"`. */
export function describeOp(op: Op): string {
  switch (op.op) {
    case 'mount':
      if (op.flags.includes('remount')) return `remount ${op.target}`;
      if (op.flags.includes('bind')) return `bind ${op.source} on ${shown(op.target, op.inRoot)}`;
      if (!op.fstype) return `set propagation of ${op.target}`;
      return `mount ${op.fstype} on ${shown(op.target, op.inRoot)}`;
    case 'mkdir': return `mkdir ${shown(op.path, op.inRoot)}`;
    case 'mknod': return `mknod ${shown(op.path, op.inRoot)}`;
    case 'symlink': return `symlink ${shown(op.path, op.inRoot)} -> ${op.target}`;
    case 'mask': return `mask ${op.path}`;
    case 'readonly': return `make ${op.path} read-only`;
    case 'remount-ro': return `remount ${op.path} read-only`;
    case 'set-root': return `open rootfs ${op.path}`;
    case 'pivot-root': return 'pivot_root';
    case 'sethostname': return `sethostname ${op.hostname}`;
    case 'setrlimit': return `setrlimit ${op.resource}`;
    case 'unshare': return `unshare ${op.namespaces.join(',')}`;
    case 'cap-bound': return 'drop capabilities from the bounding set';
    case 'setgroups': return `setgroups ${op.gids.join(',')}`;
    case 'setgid': return `setgid ${op.gid}`;
    case 'setuid': return `setuid ${op.uid}`;
    case 'capset': return 'capset';
    case 'no-new-privs': return 'set no_new_privs';
    case 'chdir': return `chdir ${op.path}`;
    case 'console': return `attach a terminal on /${op.path}`;
    case 'exec': return `exec ${JSON.stringify(op.file)}`;
  }
}

function shown(path: string, inRoot?: boolean): string {
  return inRoot && !path.startsWith('/') ? `/${path}` : path;
}

// ---- encoding (see novabox.h) ------------------------------------------------

const MAGIC = 0x3150424e;
const ABI = 1;
const HEADER_BYTES = 64;
const OP_BYTES = 64;
const OPF_IN_ROOT = 0x1;

const KIND: Record<Op['op'], number> = {
  mount: 1, mkdir: 2, mknod: 3, symlink: 4, mask: 5, readonly: 6, 'set-root': 7,
  'pivot-root': 8, sethostname: 9, setrlimit: 10, unshare: 11, 'cap-bound': 12,
  setgroups: 13, setgid: 14, setuid: 15, capset: 16, 'no-new-privs': 17, chdir: 18,
  exec: 19, 'remount-ro': 20, console: 21,
};

const PLAN_TTY = 0x1;
const PLAN_LOG = 0x2;
const S_IFCHR = 0o020000;
const S_IFREG = 0o100000;

function mask<T extends string>(names: readonly T[], table: Record<T, number>): bigint {
  let m = 0n;
  for (const n of names) m |= BigInt(table[n]);
  return m;
}

export function capMask(caps: readonly Capability[]): bigint {
  let m = 0n;
  for (const c of caps) m |= 1n << BigInt(CAPABILITIES.indexOf(c));
  return m;
}

interface RawOp {
  kind: number;
  opFlags: number;
  flags: bigint;
  n: [bigint, bigint, bigint];
  s: [string?, string?, string?, string?];
  list?: string[];
  list2?: string[];
}

function raw(op: Op): RawOp {
  const r: RawOp = { kind: KIND[op.op], opFlags: 0, flags: 0n, n: [0n, 0n, 0n], s: [] };
  switch (op.op) {
    case 'mount':
      r.s = [op.source, op.target, op.fstype, op.data];
      r.flags = mask(op.flags, MOUNT_FLAGS);
      if (op.inRoot) r.opFlags |= OPF_IN_ROOT;
      break;
    case 'mkdir':
      r.s = [undefined, op.path];
      r.n[0] = BigInt(op.mode);
      if (op.inRoot) r.opFlags |= OPF_IN_ROOT;
      break;
    case 'mknod':
      r.s = [undefined, op.path];
      r.n = [BigInt((op.type === 'c' ? S_IFCHR : S_IFREG) | op.mode), BigInt(op.major), BigInt(op.minor)];
      if (op.inRoot) r.opFlags |= OPF_IN_ROOT;
      break;
    case 'symlink':
      r.s = [op.target, op.path];
      if (op.inRoot) r.opFlags |= OPF_IN_ROOT;
      break;
    case 'mask':
    case 'readonly':
    case 'remount-ro':
      r.s = [undefined, op.path];
      r.opFlags |= OPF_IN_ROOT;
      break;
    case 'set-root':
    case 'chdir':
      r.s = [undefined, op.path];
      break;
    case 'pivot-root':
    case 'no-new-privs':
      break;
    case 'sethostname':
      r.s = [op.hostname];
      break;
    case 'setrlimit':
      r.n = [BigInt(RLIMITS[op.resource]), op.soft, op.hard];
      break;
    case 'unshare':
      r.flags = mask(op.namespaces, CLONE_FLAGS);
      break;
    case 'cap-bound':
      r.n[0] = capMask(op.keep);
      break;
    case 'capset':
      r.n[0] = capMask(op.caps);
      break;
    case 'setgroups':
      r.list = op.gids.map(String);
      break;
    case 'setgid':
      r.n[0] = BigInt(op.gid);
      break;
    case 'setuid':
      r.n[0] = BigInt(op.uid);
      break;
    case 'console':
      r.s = [op.ptmx, op.path];
      r.opFlags |= OPF_IN_ROOT;
      break;
    case 'exec':
      r.s = [op.file, op.searchPath];
      r.list = op.argv;
      r.list2 = op.env;
      break;
  }
  return r;
}

/** Encode a plan into the bytes nb_spawn takes. Throws on strings with NUL bytes. */
export function encodePlan(plan: LaunchPlan): Buffer {
  const ops = plan.ops.map(raw);
  const fixed = HEADER_BYTES + OP_BYTES * ops.length;
  const chunks: Buffer[] = [];
  let size = fixed;
  const strings = new Map<string, number>();

  const str = (s: string | undefined): number => {
    if (s === undefined) return 0;
    if (s.includes('\0')) throw new Error(`string contains a NUL byte: ${JSON.stringify(s)}`);
    const known = strings.get(s);
    if (known !== undefined) return known;
    const b = Buffer.from(s + '\0', 'utf8');
    const off = size;
    chunks.push(b);
    size += b.length;
    strings.set(s, off);
    return off;
  };
  const list = (items: string[] | undefined): number => {
    if (items === undefined) return 0;
    const offs = items.map(str);
    const pad = (4 - (size % 4)) % 4;
    if (pad) {
      chunks.push(Buffer.alloc(pad));
      size += pad;
    }
    const b = Buffer.alloc(4 + 4 * offs.length);
    b.writeUInt32LE(offs.length, 0);
    offs.forEach((o, i) => b.writeUInt32LE(o, 4 + 4 * i));
    const off = size;
    chunks.push(b);
    size += b.length;
    return off;
  };

  const opBytes = Buffer.alloc(OP_BYTES * ops.length);
  ops.forEach((r, i) => {
    const o = i * OP_BYTES;
    opBytes.writeUInt32LE(r.kind, o);
    opBytes.writeUInt32LE(r.opFlags, o + 4);
    opBytes.writeBigUInt64LE(r.flags, o + 8);
    r.n.forEach((v, j) => opBytes.writeBigUInt64LE(BigInt.asUintN(64, v), o + 16 + 8 * j));
    for (let j = 0; j < 4; j++) opBytes.writeUInt32LE(str(r.s[j]), o + 40 + 4 * j);
    opBytes.writeUInt32LE(list(r.list), o + 56);
    opBytes.writeUInt32LE(list(r.list2), o + 60);
  });

  const header = Buffer.alloc(HEADER_BYTES);
  const logOff = str(plan.logPath);
  const statusOff = str(plan.statusPath);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(ABI, 4);
  header.writeUInt32LE(size, 8);
  header.writeUInt32LE(ops.length, 12);
  header.writeBigUInt64LE(mask(plan.namespaces, CLONE_FLAGS), 16);
  header.writeUInt32LE((plan.tty ? PLAN_TTY : 0) | (plan.logPath ? PLAN_LOG : 0), 24);
  header.writeUInt32LE(logOff, 28);
  header.writeUInt32LE(statusOff, 32);
  header.writeUInt32LE(plan.logMaxBytes ?? 0, 36);

  // Buffer.alloc (not the shared pool) gives the 8-byte alignment nb_plan_validate checks.
  const out = Buffer.alloc(size);
  header.copy(out, 0);
  opBytes.copy(out, HEADER_BYTES);
  let at = fixed;
  for (const c of chunks) {
    c.copy(out, at);
    at += c.length;
  }
  return out;
}
