/**
 * The launch plan as TypeScript sees it, and its encoding into the flat C struct of
 * native-bindings/include/novabox.h. Pure: no koffi here, so planners and their unit
 * tests can import it without the native library.
 */

export type MountFlag =
  | 'rdonly'
  | 'nosuid'
  | 'nodev'
  | 'noexec'
  | 'remount'
  | 'bind'
  | 'rec'
  | 'private'
  | 'slave'
  | 'shared'
  | 'unbindable'
  | 'relatime'
  | 'strictatime'
  | 'noatime';

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
  unbindable: 0x20000,
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
  cpu: 0,
  fsize: 1,
  data: 2,
  stack: 3,
  core: 4,
  rss: 5,
  nproc: 6,
  nofile: 7,
  memlock: 8,
  as: 9,
  locks: 10,
  sigpending: 11,
  msgqueue: 12,
  nice: 13,
  rtprio: 14,
  rttime: 15,
} as const;
export type Rlimit = keyof typeof RLIMITS;
export const RLIM_INFINITY = 0xffffffffffffffffn;

/** linux/capability.h */
export const CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

export type Op =
  | { op: 'mount'; source?: string; target: string; fstype?: string; flags: MountFlag[]; data?: string; inRoot?: boolean }
  | { op: 'mkdir'; path: string; mode: number; inRoot?: boolean }
  /** type: a character or block device, a fifo, or an empty file (a mount point) */
  | { op: 'mknod'; path: string; mode: number; type: 'c' | 'b' | 'p' | 'file'; major: number; minor: number; inRoot?: boolean }
  | { op: 'symlink'; target: string; path: string; inRoot?: boolean }
  | { op: 'mask'; path: string }
  | { op: 'readonly'; path: string }
  | { op: 'remount-ro'; path: string }
  | { op: 'set-root'; path: string }
  /** noPivot: move the root mount over / and chroot instead (OCI --no-pivot) */
  /** chroot: no mount moved, a chroot only (no mount namespace of the container's own) */
  | { op: 'pivot-root'; noPivot?: boolean; chroot?: boolean }
  | { op: 'sethostname'; hostname: string }
  | { op: 'setrlimit'; resource: Rlimit; soft: bigint; hard: bigint }
  | { op: 'unshare'; namespaces: Namespace[] }
  | { op: 'cap-bound'; keep: Capability[] }
  | { op: 'setgroups'; gids: number[] }
  | { op: 'setgid'; gid: number }
  /** keepCaps: the permitted set survives the change to a uid other than 0 (PR_SET_KEEPCAPS), for the capset after it */
  | { op: 'setuid'; uid: number; keepCaps?: boolean }
  /** caps: the effective and permitted sets; inheritable; ambient (raised after, each in both) */
  | { op: 'capset'; caps: Capability[]; inheritable?: Capability[]; ambient?: Capability[] }
  | { op: 'no-new-privs' }
  /** system: a system container's variant (systemd as pid 1): the mount family and reboot allowed */
  | { op: 'seccomp'; system?: boolean }
  /** a seccomp filter of the caller's (an OCI profile compiled by runtime/oci/seccomp.ts):
   *  the sock_filter array as hex, seccomp(2)'s SECCOMP_FILTER_FLAG_* bits */
  | { op: 'seccomp-program'; program: string; flags: number }
  /** cgroup v1: write "0" to this `tasks` file, moving the init (one thread) into that cgroup */
  | { op: 'cgroup-join'; path: string }
  /** the plan's user namespace: wait for the monitor's word (maps written, the rootfs it
   *  made) and open the host sources of the later bind mounts (a later setuid(0) makes the
   *  init the namespace's root, the range's base on the host, which may not reach them) */
  | { op: 'userns' }
  /** attach the rootfs the monitor made (received by 'userns') on this host path */
  | { op: 'mount-fd'; target: string }
  /** one write(2) of `data` into an existing file (a sysctl, /proc/self/oom_score_adj) */
  | { op: 'write'; path: string; data: string; inRoot?: boolean }
  /** setns(2) into the namespace file `path` (a host path), of this type */
  | { op: 'setns'; path: string; namespace: Namespace }
  | { op: 'chdir'; path: string }
  | { op: 'console'; ptmx: string; path?: string; rows: number; cols: number }
  /** sealed: execute the plan's execCopy (the monitor's sealed memfd copy of it), not `file` */
  | { op: 'exec'; file: string; searchPath: string; argv: string[]; env: string[]; sealed?: boolean; preserveFds?: number }
  /**
   * An OCI hook run by the init where it is, the state on its stdin: createContainer before
   * pivot_root; startContainer once `start` opened the gate, right before the exec.
   */
  | {
      op: 'hook';
      hook: 'createContainer' | 'startContainer';
      path: string;
      args: string[];
      env: string[];
      state: string;
      timeoutS: number;
    };

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
  | { step: 'devices'; path: string; allow?: string[] }
  /** after the container, before its removal: read `key N` from this file (oom_kill) */
  | { step: 'oom-count'; path: string; key: string }
  /** after the container: rmdir (kill what is left inside first) */
  | { step: 'rmdir'; path: string }
  /** cgroup v2: chown a directory or file to the container's root (a delegated subtree) */
  | { step: 'chown'; path: string; uid: number; gid: number };

export interface LaunchPlan {
  namespaces: Namespace[];
  ops: Op[];
  /** a console socket: the 'console' op sends the pty master back on it */
  tty: boolean;
  /** the monitor copies the init's stdout/stderr into this file (size-bounded) */
  logPath?: string;
  /** with tty and logPath: the console socket is the monitor's own, and what the container
   *  writes to its /dev/console (the pty the 'console' op makes) goes into the log */
  consoleLog?: boolean;
  /** the OCI create/start split (NB_PLAN_DETACH): the init waits at its gate for a 'G' that
   *  `start` writes through /proc/<init>/fd/5; the monitor exits at NB_EV_GATE */
  detach?: boolean;
  logMaxBytes?: number;
  /** the monitor writes "<wait status> <unix time>" here when the init exits */
  statusPath?: string;
  /** a cgroup2 directory (pure v2, or a hybrid host's cgroup2 mount): clone the init
   *  straight into it (CLONE_INTO_CGROUP); see runtime/cgroups/placement.ts */
  cgroupDir?: string;
  /** tests only: clone(2) even where clone3 could place the init, so the monitor's own
   *  placement (a kernel without clone3) is exercised (NOVABOX_TEST_PLAIN_CLONE=1) */
  plainClone?: boolean;
  /** the monitor's plan without the ops (NB_PLAN_LATE_OPS): the whole plan follows on the
   *  ops memfd before 'R' (native.spawn with lateOps, then native.sendOps) */
  lateOps?: boolean;
  /** the monitor makes the container's cgroup before the clone and removes it after the
   *  init was reaped (creation steps first, then removal steps; NB_EV_ERROR and
   *  NB_EV_CGROUP name a step by its index here) */
  cgroupSteps?: CgroupStep[];
  /** a host binary the monitor copies into a sealed memfd before the clone; an 'exec' op
   *  with `sealed` executes that copy (servers' novabox-init: no host file of it inside) */
  execCopy?: string;
  /** exec into a running container: enter these namespaces of this process first */
  join?: { pid: number; namespaces: Namespace[] };
  /** an existing pid namespace's file (OCI namespaces[].path): the monitor enters it before
   *  the clone, so that the init is born there (namespaces then has no 'pid') */
  pidNamespace?: string;
  /** a user namespace joined by path (OCI namespaces[].path of type user; namespaces then
   *  has no 'user'): a child of the monitor enters it (and pidNamespace after it) and
   *  clones the init, so that the namespaces the init makes are owned by it; the maps,
   *  when given, must be the namespace's own (else NB_STAGE_USER_NS, c = 1) */
  userNamespace?: { path: string; uidMap?: string; gidMap?: string };
  /** the init's own user namespace (namespaces has 'user'): the monitor writes these maps
   *  ("0 <host base> <count>") between the clone and the 'userns' op, and makes the
   *  rootfs: an overlay over each lower idmapped into the namespace (novabox.h) */
  userns?: { uidMap: string; gidMap: string; rootfs?: UsernsRootfs };
  /**
   * A program the monitor executes in its own place once the init is reaped, its status
   * written and its cgroup removed (a server's restart policy: `novabox server _exited`):
   * argv (argv[0] an absolute path) and the environment.
   */
  onExit?: { argv: string[]; env: string[] };
  /**
   * Live migration's target (NB_PLAN_RESTORE): the init's exec is `criu restore
   * --restore-detached --pidfile <this>`; once criu exited, the restored root is the init
   * the monitor reaps (NB_EV_RESTORED says its pid).
   */
  restorePidfile?: string;
}

/** The overlay the monitor makes for a container with its own user namespace. */
export interface UsernsRootfs {
  /** host paths, or with tmpfs: names inside the new tmpfs */
  upper: string;
  work: string;
  /** overlay flags, comma-separated ('volatile' or '') */
  flags: string;
  /** tmpfs options ('mode=0755,size=N'): the writable layer is a new tmpfs */
  tmpfs?: string;
  /** the overlay's mount point: where the monitor attaches the layers, in the init's mount
   *  namespace, for a kernel whose overlayfs takes no detached layer (Linux 6.1) */
  stage: string;
  /** the image layers, topmost first */
  lowers: string[];
}

/** One line per op for error messages: `mount tmpfs on /dev`, `exec "/nope"`. */
export function describeOp(op: Op): string {
  switch (op.op) {
    case 'mount':
      if (op.flags.includes('remount')) return `remount ${op.target}`;
      if (op.flags.includes('bind')) return `bind ${op.source} on ${shown(op.target, op.inRoot)}`;
      if (!op.fstype) return `set propagation of ${op.target}`;
      return `mount ${op.fstype} on ${shown(op.target, op.inRoot)}`;
    case 'mkdir':
      return `mkdir ${shown(op.path, op.inRoot)}`;
    case 'mknod':
      return `mknod ${shown(op.path, op.inRoot)}`;
    case 'symlink':
      return `symlink ${shown(op.path, op.inRoot)} -> ${op.target}`;
    case 'mask':
      return `mask ${op.path}`;
    case 'readonly':
      return `make ${op.path} read-only`;
    case 'remount-ro':
      return `remount ${op.path} read-only`;
    case 'set-root':
      return `open rootfs ${op.path}`;
    case 'pivot-root':
      return op.chroot ? 'chroot' : op.noPivot ? 'move the root over / and chroot (--no-pivot)' : 'pivot_root';
    case 'sethostname':
      return `sethostname ${op.hostname}`;
    case 'setrlimit':
      return `setrlimit ${op.resource}`;
    case 'unshare':
      return `unshare ${op.namespaces.join(',')}`;
    case 'cap-bound':
      return 'drop capabilities from the bounding set';
    case 'setgroups':
      return `setgroups ${op.gids.join(',')}`;
    case 'setgid':
      return `setgid ${op.gid}`;
    case 'setuid':
      return `setuid ${op.uid}`;
    case 'capset':
      return 'capset';
    case 'no-new-privs':
      return 'set no_new_privs';
    case 'seccomp':
      return op.system ? "load the system container's seccomp filter" : 'load the seccomp filter';
    case 'seccomp-program':
      return "load config.json's seccomp filter";
    case 'cgroup-join':
      return `join cgroup ${op.path.replace(/\/tasks$/, '')}`;
    case 'userns':
      return "enter the container's user namespace";
    case 'mount-fd':
      return `mount the idmapped root on ${op.target}`;
    case 'write':
      return `write ${JSON.stringify(op.data)} to ${shown(op.path, op.inRoot)}`;
    case 'setns':
      return `join the ${op.namespace} namespace ${op.path}`;
    case 'chdir':
      return `chdir ${op.path}`;
    case 'console':
      return op.path ? `attach a terminal on /${op.path}` : 'open a terminal';
    case 'exec':
      return op.sealed ? `exec ${op.file} (sealed copy)` : `exec ${JSON.stringify(op.file)}`;
    case 'hook':
      return `the ${op.hook} hook ${op.path}`;
  }
}

/** One line for error messages: `write "0" to /sys/fs/cgroup/x/memory.max`. */
export function describeCgroupStep(s: CgroupStep): string {
  switch (s.step) {
    case 'mkdir':
      return `mkdir ${s.path}`;
    case 'enable':
      return `enable ${s.controllers.join(', ')} in ${s.path}`;
    case 'inherit':
      return `copy ${s.from} to ${s.path}`;
    case 'write':
      return `write "${s.value}" to ${s.path}`;
    case 'devices':
      return `attach the device filter${s.allow?.length ? ` (and ${s.allow.join(', ')})` : ''} to ${s.path}`;
    case 'oom-count':
      return `read ${s.key} from ${s.path}`;
    case 'rmdir':
      return `rmdir ${s.path}`;
    case 'chown':
      return `chown ${s.uid}:${s.gid} ${s.path}`;
  }
}

function shown(path: string, inRoot?: boolean): string {
  return inRoot && !path.startsWith('/') ? `/${path}` : path;
}

// ---- encoding (see novabox.h) ------------------------------------------------

const MAGIC = 0x3150424e;
/** NB_ABI_VERSION of native-bindings/include/novabox.h that this code speaks (the plan's and the library's) */
export const ABI = 12;
/** the userns list's first lower layer (novabox.h NB_USERNS_LOWERS) */
const USERNS_LOWERS = 7;
const HEADER_BYTES = 80;
const OP_BYTES = 64;
const CG_STEP_BYTES = 16;
const OPF_IN_ROOT = 0x1;
const OPF_SEALED = 0x2;
const OPF_AFTER_START = 0x4;
const OPF_NO_PIVOT = 0x8;
const OPF_KEEP_CAPS = 0x10;
const OPF_CHROOT = 0x20;

const KIND: Record<Op['op'], number> = {
  mount: 1,
  mkdir: 2,
  mknod: 3,
  symlink: 4,
  mask: 5,
  readonly: 6,
  'set-root': 7,
  'pivot-root': 8,
  sethostname: 9,
  setrlimit: 10,
  unshare: 11,
  'cap-bound': 12,
  setgroups: 13,
  setgid: 14,
  setuid: 15,
  capset: 16,
  'no-new-privs': 17,
  chdir: 18,
  exec: 19,
  'remount-ro': 20,
  console: 21,
  seccomp: 22,
  'seccomp-program': 28,
  'cgroup-join': 23,
  userns: 24,
  'mount-fd': 25,
  write: 26,
  setns: 27,
  hook: 29,
};

const CG_KIND: Record<CgroupStep['step'], number> = {
  mkdir: 1,
  enable: 2,
  inherit: 3,
  write: 4,
  devices: 5,
  'oom-count': 6,
  rmdir: 7,
  chown: 8,
};
const CGF_EXCL = 0x1;
const CGF_OPTIONAL = 0x2;

const PLAN_TTY = 0x1;
const PLAN_LOG = 0x2;
const PLAN_PLAIN_CLONE = 0x4;
const PLAN_LATE_OPS = 0x8;
const PLAN_CONSOLE_LOG = 0x10;
const PLAN_DETACH = 0x20;
const PLAN_RESTORE = 0x40;
const S_IFCHR = 0o020000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

export function capMask(caps: readonly Capability[]): bigint {
  let m = 0n;
  for (const c of caps) m |= 1n << BigInt(CAPABILITIES.indexOf(c));
  return m;
}

function flagBits<T extends string>(names: readonly T[], table: Record<T, number>): number {
  let m = 0;
  for (let i = 0; i < names.length; i++) m += table[names[i]]; // distinct bits below 2^31: addition is OR
  return m;
}

/** A capability mask as two u32 words at w[at] (low) and w[at + 1] (high): no BigInt. */
function putCaps(w: Uint32Array, at: number, caps: readonly Capability[]): void {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < caps.length; i++) {
    // indexOf: a table built at load would cost every start more (41 property additions)
    const b = CAPABILITIES.indexOf(caps[i]);
    if (b < 32) lo |= 1 << b;
    else hi |= 1 << (b - 32);
  }
  w[at] = lo; // the Uint32Array stores the bits of a negative int32 as they are
  w[at + 1] = hi;
}

/** Store a u64 (an rlimit) as two u32 words (little-endian) at word index `at` of `w`. */
function putU64(w: Uint32Array, at: number, v: bigint): void {
  if (v === RLIM_INFINITY) {
    w[at] = 0xffffffff;
    w[at + 1] = 0xffffffff;
    return;
  }
  const x = BigInt.asUintN(64, v);
  w[at] = Number(x & 0xffffffffn);
  w[at + 1] = Number(x >> 32n);
}

/**
 * Encode a plan into the bytes nb_spawn takes (this runs on every container start, once,
 * in the interpreter: one walk over the ops, no object per op, no closure per op).
 * Layout: header, op table, cgroup steps, the string lists (4-aligned), then every
 * distinct string once, NUL-terminated. Throws on strings with NUL bytes.
 *
 * The walk stores the fixed part and the lists as u32 words in a typed array, not through
 * Buffer#writeUInt32LE (~1,200 checked method calls for a ~70-op plan cost ~1 ms in the
 * interpreter); a string's slot first holds the string's number, replaced by its offset
 * once the strings are laid out. Offsets are 4-aligned and the host little-endian
 * (x86-64, arm64), which the typed array relies on.
 */
export function encodePlan(plan: LaunchPlan): Buffer {
  const ops = plan.lateOps ? [] : plan.ops;
  const steps = plan.cgroupSteps ?? [];
  const nOps = ops.length;
  const stepsAt = (HEADER_BYTES + OP_BYTES * nOps) >>> 2;
  const fixedWords = stepsAt + (CG_STEP_BYTES >>> 2) * steps.length;
  let listWords = 0;
  for (let i = 0; i < nOps; i++) {
    const op = ops[i];
    if (op.op === 'exec') listWords += 2 + op.argv.length + op.env.length;
    else if (op.op === 'hook') listWords += 2 + op.args.length + op.env.length;
    else if (op.op === 'setgroups') listWords += 1 + op.gids.length;
  }
  if (plan.userns) listWords += 1 + USERNS_LOWERS + (plan.userns.rootfs?.lowers.length ?? 0);
  if (plan.onExit) listWords += 2 + plan.onExit.argv.length + plan.onExit.env.length;
  if (plan.userNamespace) listWords += 4;
  const w = new Uint32Array(fixedWords + listWords);
  const ids = new Map<string, number>();
  const uniq: string[] = [];
  const refs: number[] = []; // the words that hold a string's number
  const str = (s: string | undefined, at: number): void => {
    if (s === undefined) return;
    let id = ids.get(s);
    if (id === undefined) {
      if (s.includes('\0')) throw new Error(`string contains a NUL byte: ${JSON.stringify(s)}`);
      id = uniq.length;
      ids.set(s, id);
      uniq.push(s);
    }
    w[at] = id;
    refs.push(at);
  };
  let list = fixedWords; // the next list's first word
  const putList = (l: readonly string[], at: number): void => {
    w[at] = list << 2;
    w[list] = l.length;
    for (let i = 0; i < l.length; i++) str(l[i], list + 1 + i);
    list += 1 + l.length;
  };

  for (let i = 0; i < nOps; i++) {
    const op = ops[i];
    const at = (HEADER_BYTES >>> 2) + i * (OP_BYTES >>> 2);
    // words: 0 kind, 1 op flags, 2-3 flags, 4-9 n[3], 10-13 s[4], 14 list, 15 list2
    w[at] = KIND[op.op];
    switch (op.op) {
      case 'mount':
        if (op.inRoot) w[at + 1] = OPF_IN_ROOT;
        w[at + 2] = flagBits(op.flags, MOUNT_FLAGS);
        str(op.source, at + 10);
        str(op.target, at + 11);
        str(op.fstype, at + 12);
        str(op.data, at + 13);
        break;
      case 'mkdir':
        if (op.inRoot) w[at + 1] = OPF_IN_ROOT;
        w[at + 4] = op.mode;
        str(op.path, at + 11);
        break;
      case 'mknod':
        if (op.inRoot) w[at + 1] = OPF_IN_ROOT;
        w[at + 4] = (op.type === 'c' ? S_IFCHR : op.type === 'b' ? S_IFBLK : op.type === 'p' ? S_IFIFO : S_IFREG) | op.mode;
        w[at + 6] = op.major;
        w[at + 8] = op.minor;
        str(op.path, at + 11);
        break;
      case 'symlink':
        if (op.inRoot) w[at + 1] = OPF_IN_ROOT;
        str(op.target, at + 10);
        str(op.path, at + 11);
        break;
      case 'mask':
      case 'readonly':
      case 'remount-ro':
        w[at + 1] = OPF_IN_ROOT;
        str(op.path, at + 11);
        break;
      case 'set-root':
      case 'chdir':
      case 'cgroup-join':
        str(op.path, at + 11);
        break;
      case 'seccomp':
        if (op.system) w[at + 4] = 1;
        break;
      case 'seccomp-program':
        w[at + 6] = op.flags;
        str(op.program, at + 10);
        break;
      case 'pivot-root':
        if (op.chroot) w[at + 1] = OPF_CHROOT;
        else if (op.noPivot) w[at + 1] = OPF_NO_PIVOT;
        break;
      case 'no-new-privs':
      case 'userns':
        break;
      case 'mount-fd':
        str(op.target, at + 11);
        break;
      case 'sethostname':
        str(op.hostname, at + 10);
        break;
      case 'write':
        if (op.inRoot) w[at + 1] = OPF_IN_ROOT;
        str(op.data, at + 10);
        str(op.path, at + 11);
        break;
      case 'setns':
        w[at + 2] = CLONE_FLAGS[op.namespace];
        str(op.path, at + 11);
        break;
      case 'setrlimit':
        w[at + 4] = RLIMITS[op.resource];
        putU64(w, at + 6, op.soft);
        putU64(w, at + 8, op.hard);
        break;
      case 'unshare':
        w[at + 2] = flagBits(op.namespaces, CLONE_FLAGS);
        break;
      case 'cap-bound':
        putCaps(w, at + 4, op.keep);
        break;
      case 'capset':
        putCaps(w, at + 4, op.caps);
        if (op.inheritable) putCaps(w, at + 6, op.inheritable);
        if (op.ambient) putCaps(w, at + 8, op.ambient);
        break;
      case 'setgroups':
        putList(op.gids.map(String), at + 14);
        break;
      case 'setgid':
        w[at + 4] = op.gid;
        break;
      case 'setuid':
        w[at + 4] = op.uid;
        if (op.keepCaps) w[at + 1] = OPF_KEEP_CAPS;
        break;
      case 'console':
        w[at + 1] = OPF_IN_ROOT;
        w[at + 4] = op.rows;
        w[at + 6] = op.cols;
        str(op.ptmx, at + 10);
        str(op.path, at + 11);
        break;
      case 'exec':
        if (op.sealed) w[at + 1] = OPF_SEALED;
        if (op.preserveFds) w[at + 4] = op.preserveFds;
        str(op.file, at + 10);
        str(op.searchPath, at + 11);
        putList(op.argv, at + 14);
        putList(op.env, at + 15);
        break;
      case 'hook':
        if (op.hook === 'startContainer') w[at + 1] = OPF_AFTER_START;
        w[at + 4] = op.timeoutS;
        str(op.path, at + 10);
        str(op.state, at + 11);
        putList(op.args, at + 14);
        putList(op.env, at + 15);
        break;
    }
  }
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    const at = stepsAt + i * (CG_STEP_BYTES >>> 2);
    w[at] = CG_KIND[s.step];
    str(s.path, at + 2);
    switch (s.step) {
      case 'mkdir':
        if (s.exclusive) w[at + 1] = CGF_EXCL;
        break;
      case 'enable':
        str(s.controllers.join(' '), at + 3);
        break;
      case 'inherit':
        str(s.from, at + 3);
        break;
      case 'write':
        if (s.optional) w[at + 1] = CGF_OPTIONAL;
        str(s.value, at + 3);
        break;
      case 'oom-count':
        str(s.key, at + 3);
        break;
      case 'chown':
        str(`${s.uid}:${s.gid}`, at + 3);
        break;
      case 'devices':
        if (s.allow?.length) str(s.allow.join('\n'), at + 3);
        break;
      case 'rmdir':
        break;
    }
  }
  w[0] = MAGIC;
  w[1] = ABI;
  w[3] = nOps;
  w[4] = flagBits(plan.namespaces, CLONE_FLAGS);
  w[6] =
    (plan.tty ? PLAN_TTY : 0) |
    (plan.logPath ? PLAN_LOG : 0) |
    (plan.plainClone ? PLAN_PLAIN_CLONE : 0) |
    (plan.lateOps ? PLAN_LATE_OPS : 0) |
    (plan.consoleLog ? PLAN_CONSOLE_LOG : 0) |
    (plan.detach ? PLAN_DETACH : 0) |
    (plan.restorePidfile ? PLAN_RESTORE : 0);
  str(plan.logPath, 7);
  str(plan.statusPath, 8);
  w[9] = plan.logMaxBytes ?? 0;
  str(plan.cgroupDir, 10);
  w[11] = plan.join?.pid ?? 0;
  w[12] = plan.join ? flagBits(plan.join.namespaces, CLONE_FLAGS) : 0;
  w[13] = steps.length;
  str(plan.execCopy, 14);
  if (plan.userns) {
    const r = plan.userns.rootfs;
    putList(
      [
        plan.userns.uidMap,
        plan.userns.gidMap,
        r?.upper ?? '',
        r?.work ?? '',
        r?.flags ?? '',
        r?.tmpfs ?? '',
        r?.stage ?? '',
        ...(r?.lowers ?? []),
      ],
      15,
    );
  }
  if (plan.onExit) putList([...plan.onExit.argv, '', ...plan.onExit.env], 16);
  str(plan.pidNamespace, 17);
  str(plan.restorePidfile, 18);
  if (plan.userNamespace) putList([plan.userNamespace.path, plan.userNamespace.uidMap ?? '', plan.userNamespace.gidMap ?? ''], 19);

  // The strings: one NUL-separated block, written by one call. Offsets count UTF-16 units
  // when the block is ASCII (the usual case), else bytes, string by string.
  const block = uniq.length ? uniq.join('\0') + '\0' : '';
  const blockAt = w.length << 2;
  const blockBytes = Buffer.byteLength(block);
  const ascii = blockBytes === block.length;
  const offsets = new Uint32Array(uniq.length);
  let o = blockAt;
  for (let i = 0; i < uniq.length; i++) {
    offsets[i] = o;
    o += (ascii ? uniq[i].length : Buffer.byteLength(uniq[i])) + 1;
  }
  for (let i = 0; i < refs.length; i++) w[refs[i]] = offsets[w[refs[i]]];
  const size = blockAt + blockBytes;
  w[2] = size;
  // Buffer.alloc (not the shared pool) gives the alignment nb_plan_validate checks
  const out = Buffer.alloc(size);
  new Uint32Array(out.buffer, out.byteOffset, w.length).set(w);
  out.write(block, blockAt, 'utf8');
  return out;
}
