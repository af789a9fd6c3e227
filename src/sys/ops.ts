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
  | { op: 'seccomp' }
  /** cgroup v1: write "0" to this `tasks` file, moving the init (one thread) into that cgroup */
  | { op: 'cgroup-join'; path: string }
  | { op: 'chdir'; path: string }
  | { op: 'console'; ptmx: string; path?: string; rows: number; cols: number }
  | { op: 'exec'; file: string; searchPath: string; argv: string[]; env: string[] };

/**
 * The container's cgroup as steps the monitor runs on the host (native-bindings/src/cgroup.c),
 * planned by the cgroup drivers (runtime/cgroups/batch.ts): paths are absolute.
 */
export type CgroupStep =
  /** one directory level; `exclusive`: it must not exist yet (the cgroup's own level) */
  | { step: 'mkdir'; path: string; exclusive?: boolean }
  /** cgroup v2: `+c` into this cgroup.subtree_control for each controller not listed yet */
  | { step: 'enable'; path: string; controllers: string[] }
  /** cgroup v1 cpuset: copy `from` (the parent's file) into an empty `path` */
  | { step: 'inherit'; path: string; from: string }
  /** one write(2) of `value`; `optional`: skip when the file does not exist */
  | { step: 'write'; path: string; value: string; optional?: boolean }
  /** cgroup v2: attach the device allow-list (eBPF, native-bindings/src/devices.c) */
  | { step: 'devices'; path: string }
  /** after the container, before its removal: read `key N` from this file (oom_kill) */
  | { step: 'oom-count'; path: string; key: string }
  /** after the container: rmdir (kill what is left inside first); `prune`: a parent, best effort */
  | { step: 'rmdir'; path: string; prune?: boolean };

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
  /** a cgroup2 directory (pure v2, or a hybrid host's cgroup2 mount): clone the init
   *  straight into it (CLONE_INTO_CGROUP); see runtime/cgroups/placement.ts */
  cgroupDir?: string;
  /** tests only: clone(2) even where clone3 could place the init, so the monitor's own
   *  placement (a kernel without clone3) is exercised (NOVABOX_TEST_PLAIN_CLONE=1) */
  plainClone?: boolean;
  /** the monitor makes the container's cgroup before the clone and removes it after the
   *  init was reaped (creation steps first, then removal steps; NB_EV_ERROR and
   *  NB_EV_CGROUP name a step by its index here) */
  cgroupSteps?: CgroupStep[];
  /** exec into a running container: enter these namespaces of this process first */
  join?: { pid: number; namespaces: Namespace[] };
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
    case 'seccomp': return 'load the seccomp filter';
    case 'cgroup-join': return `join cgroup ${op.path.replace(/\/tasks$/, '')}`;
    case 'chdir': return `chdir ${op.path}`;
    case 'console': return op.path ? `attach a terminal on /${op.path}` : 'open a terminal';
    case 'exec': return `exec ${JSON.stringify(op.file)}`;
  }
}

/** One line for error messages: `write "0" to /sys/fs/cgroup/x/memory.max`. */
export function describeCgroupStep(s: CgroupStep): string {
  switch (s.step) {
    case 'mkdir': return `mkdir ${s.path}`;
    case 'enable': return `enable ${s.controllers.join(', ')} in ${s.path}`;
    case 'inherit': return `copy ${s.from} to ${s.path}`;
    case 'write': return `write "${s.value}" to ${s.path}`;
    case 'devices': return `attach the device filter to ${s.path}`;
    case 'oom-count': return `read ${s.key} from ${s.path}`;
    case 'rmdir': return `rmdir ${s.path}`;
  }
}

function shown(path: string, inRoot?: boolean): string {
  return inRoot && !path.startsWith('/') ? `/${path}` : path;
}

// ---- encoding (see novabox.h) ------------------------------------------------

const MAGIC = 0x3150424e;
const ABI = 2;
const HEADER_BYTES = 64;
const OP_BYTES = 64;
const CG_STEP_BYTES = 16;
const OPF_IN_ROOT = 0x1;

const KIND: Record<Op['op'], number> = {
  mount: 1, mkdir: 2, mknod: 3, symlink: 4, mask: 5, readonly: 6, 'set-root': 7,
  'pivot-root': 8, sethostname: 9, setrlimit: 10, unshare: 11, 'cap-bound': 12,
  setgroups: 13, setgid: 14, setuid: 15, capset: 16, 'no-new-privs': 17, chdir: 18,
  exec: 19, 'remount-ro': 20, console: 21, seccomp: 22, 'cgroup-join': 23,
};

const CG_KIND: Record<CgroupStep['step'], number> = {
  mkdir: 1, enable: 2, inherit: 3, write: 4, devices: 5, 'oom-count': 6, rmdir: 7,
};
const CGF_EXCL = 0x1;
const CGF_OPTIONAL = 0x2;
const CGF_PRUNE = 0x4;

/** kind, flags, s0, s1 of a cgroup step */
function rawStep(s: CgroupStep): [number, number, string, string | undefined] {
  switch (s.step) {
    case 'mkdir': return [CG_KIND.mkdir, s.exclusive ? CGF_EXCL : 0, s.path, undefined];
    case 'enable': return [CG_KIND.enable, 0, s.path, s.controllers.join(' ')];
    case 'inherit': return [CG_KIND.inherit, 0, s.path, s.from];
    case 'write': return [CG_KIND.write, s.optional ? CGF_OPTIONAL : 0, s.path, s.value];
    case 'devices': return [CG_KIND.devices, 0, s.path, undefined];
    case 'oom-count': return [CG_KIND['oom-count'], 0, s.path, s.key];
    case 'rmdir': return [CG_KIND.rmdir, s.prune ? CGF_PRUNE : 0, s.path, undefined];
  }
}

const PLAN_TTY = 0x1;
const PLAN_LOG = 0x2;
const PLAN_PLAIN_CLONE = 0x4;
const S_IFCHR = 0o020000;
const S_IFREG = 0o100000;

export function capMask(caps: readonly Capability[]): bigint {
  let m = 0n;
  for (const c of caps) m |= 1n << BigInt(CAPABILITIES.indexOf(c));
  return m;
}

interface RawOp {
  kind: number;
  opFlags: number;
  flags: number;
  /** n[] as numbers, or bigints where they may exceed 2^53 (rlimits, capability masks) */
  n: [number | bigint, number | bigint, number | bigint];
  s: [string?, string?, string?, string?];
  list?: string[];
  list2?: string[];
}

function flagBits<T extends string>(names: readonly T[], table: Record<T, number>): number {
  let m = 0;
  for (const n of names) m += table[n]; // distinct bits below 2^31: addition is OR
  return m;
}

function raw(op: Op): RawOp {
  const r: RawOp = { kind: KIND[op.op], opFlags: 0, flags: 0, n: [0, 0, 0], s: [] };
  switch (op.op) {
    case 'mount':
      r.s = [op.source, op.target, op.fstype, op.data];
      r.flags = flagBits(op.flags, MOUNT_FLAGS);
      if (op.inRoot) r.opFlags |= OPF_IN_ROOT;
      break;
    case 'mkdir':
      r.s = [undefined, op.path];
      r.n[0] = op.mode;
      if (op.inRoot) r.opFlags |= OPF_IN_ROOT;
      break;
    case 'mknod':
      r.s = [undefined, op.path];
      r.n = [(op.type === 'c' ? S_IFCHR : S_IFREG) | op.mode, op.major, op.minor];
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
    case 'cgroup-join':
      r.s = [undefined, op.path];
      break;
    case 'pivot-root':
    case 'no-new-privs':
    case 'seccomp':
      break;
    case 'sethostname':
      r.s = [op.hostname];
      break;
    case 'setrlimit':
      r.n = [RLIMITS[op.resource], op.soft, op.hard];
      break;
    case 'unshare':
      r.flags = flagBits(op.namespaces, CLONE_FLAGS);
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
      r.n[0] = op.gid;
      break;
    case 'setuid':
      r.n[0] = op.uid;
      break;
    case 'console':
      r.s = [op.ptmx, op.path];
      r.n = [op.rows, op.cols, 0];
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

/** Store a u64 as two u32 words (little-endian) at word index `w` of `u32`. */
function putU64(u32: Uint32Array, w: number, v: number | bigint): void {
  if (typeof v === 'bigint') {
    const x = BigInt.asUintN(64, v);
    u32[w] = Number(x & 0xffffffffn);
    u32[w + 1] = Number(x >> 32n);
  } else {
    u32[w] = v % 0x100000000;
    u32[w + 1] = Math.floor(v / 0x100000000);
  }
}

/**
 * Encode a plan into the bytes nb_spawn takes: one buffer, sized first, filled once
 * (this runs on every container start). Throws on strings with NUL bytes.
 *
 * The fixed part is stored through a Uint32Array view, not Buffer#writeUInt32LE: a start
 * runs this once, in the interpreter, and ~1,200 checked method calls (a ~70-op plan)
 * cost ~1 ms there, against ~0.1 ms for plain element stores. Offsets are 4-aligned
 * and the host little-endian (x86-64, arm64), which the typed array relies on.
 */
export function encodePlan(plan: LaunchPlan): Buffer {
  const ops = plan.ops.map(raw);
  const steps = (plan.cgroupSteps ?? []).map(rawStep);
  const fixed = HEADER_BYTES + OP_BYTES * ops.length + CG_STEP_BYTES * steps.length;

  // Pass 1: lay out every distinct string, then every list (4-byte aligned). The strings
  // are one NUL-separated block, written by one call; offsets count UTF-16 units when the
  // block is ASCII (the usual case), else bytes, string by string.
  const strings = new Map<string, number>();
  const order: string[] = [];
  const note = (s: string | undefined) => {
    if (s === undefined || strings.has(s)) return;
    if (s.includes('\0')) throw new Error(`string contains a NUL byte: ${JSON.stringify(s)}`);
    strings.set(s, 0);
    order.push(s);
  };
  for (const r of ops) {
    for (const x of r.s) note(x);
    if (r.list) for (const x of r.list) note(x);
    if (r.list2) for (const x of r.list2) note(x);
  }
  for (const st of steps) {
    note(st[2]);
    note(st[3]);
  }
  note(plan.logPath);
  note(plan.statusPath);
  note(plan.cgroupDir);
  const block = order.length ? order.join('\0') + '\0' : '';
  const blockBytes = Buffer.byteLength(block);
  const ascii = blockBytes === block.length;
  let size = fixed;
  for (const s of order) {
    strings.set(s, size);
    size += (ascii ? s.length : Buffer.byteLength(s)) + 1;
  }
  const lists: number[] = [];
  for (const r of ops) {
    for (const l of [r.list, r.list2]) {
      if (!l) continue;
      size = (size + 3) & ~3;
      lists.push(size);
      size += 4 + 4 * l.length;
    }
  }

  // Pass 2: fill. Buffer.alloc (not the shared pool) gives the alignment nb_plan_validate checks.
  const out = Buffer.alloc(size);
  // every u32 stored lies in the op table or a list: 4-aligned, below the last whole word
  const u32 = new Uint32Array(out.buffer, out.byteOffset, size >>> 2);
  out.write(block, fixed, 'utf8');
  const off = (s: string | undefined) => (s === undefined ? 0 : strings.get(s)!);
  let li = 0;
  const writeList = (l: string[] | undefined): number => {
    if (!l) return 0;
    const at = lists[li++];
    const w = at >>> 2;
    u32[w] = l.length;
    for (let i = 0; i < l.length; i++) u32[w + 1 + i] = off(l[i]);
    return at;
  };
  for (let i = 0; i < ops.length; i++) {
    const r = ops[i];
    const w = (HEADER_BYTES + i * OP_BYTES) >>> 2;
    u32[w] = r.kind;
    u32[w + 1] = r.opFlags;
    putU64(u32, w + 2, r.flags);
    putU64(u32, w + 4, r.n[0]);
    putU64(u32, w + 6, r.n[1]);
    putU64(u32, w + 8, r.n[2]);
    for (let j = 0; j < 4; j++) u32[w + 10 + j] = off(r.s[j]);
    u32[w + 14] = writeList(r.list);
    u32[w + 15] = writeList(r.list2);
  }
  for (let i = 0; i < steps.length; i++) {
    const w = (HEADER_BYTES + ops.length * OP_BYTES + i * CG_STEP_BYTES) >>> 2;
    const [kind, flags, s0, s1] = steps[i];
    u32[w] = kind;
    u32[w + 1] = flags;
    u32[w + 2] = off(s0);
    u32[w + 3] = off(s1);
  }
  u32[0] = MAGIC;
  u32[1] = ABI;
  u32[2] = size;
  u32[3] = ops.length;
  putU64(u32, 4, flagBits(plan.namespaces, CLONE_FLAGS));
  u32[6] = (plan.tty ? PLAN_TTY : 0) | (plan.logPath ? PLAN_LOG : 0) | (plan.plainClone ? PLAN_PLAIN_CLONE : 0);
  u32[7] = off(plan.logPath);
  u32[8] = off(plan.statusPath);
  u32[9] = plan.logMaxBytes ?? 0;
  u32[10] = off(plan.cgroupDir);
  u32[11] = plan.join?.pid ?? 0;
  u32[12] = plan.join ? flagBits(plan.join.namespaces, CLONE_FLAGS) : 0;
  u32[13] = steps.length;
  return out;
}
