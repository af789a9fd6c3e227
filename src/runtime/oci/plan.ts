/**
 * An OCI runtime-spec config.json (the bundle's) read into novabox's own launch plan: the
 * same ops the C executor runs for `run` and servers. Pure: the bundle's files are asked
 * about through `isDir`, so every rule is unit-tested without root.
 *
 * The common subset engines use (containerd, Docker, Podman) is read; anything else the
 * config asks for is refused with one sentence naming the field, never ignored.
 */
import { BadRequest } from '../../errors.js';
import type { Capability, LaunchPlan, MountFlag, Namespace, Op, Rlimit } from '../../sys/ops.js';
import { CAPABILITIES, RLIM_INFINITY, RLIMITS } from '../../sys/ops.js';
import { HUGE_PAGE_SIZE } from '../cgroups/limits.js';
import type { BlockIoThrottle, CgroupLayout, CgroupLimits } from '../cgroups/types.js';
import { DEV_LINKS, DEVICES } from '../plan/devices.js';
import { clampRlimits, planCredentials } from '../plan/index.js';
import { planCgroupMounts } from '../plan/mounts.js';
import { DEFAULT_PATH } from '../plan/spec.js';
import { compileSeccomp } from './seccomp.js';

/** The runtime-spec major version this reads (1.x.y). */
export const OCI_MAJOR = 1;
export const OCI_VERSION = '1.0.2';

/** The parent of containers whose cgroupsPath is relative or absent. */
export const OCI_CGROUP_PARENT = 'novabox-oci';

/** A config.json as parsed JSON; fields are checked where they are read. */
// biome-ignore lint/suspicious/noExplicitAny: untrusted JSON, checked field by field below
export type OciConfig = Record<string, any>;

export interface OciPlan {
  plan: LaunchPlan;
  /** relative cgroup path (the driver's) */
  cgroupPath: string;
  limits: CgroupLimits;
  hostname?: string;
  hooks: OciHooks;
  /** linux.seccomp compiled: what `exec` loads too */
  seccomp?: Extract<Op, { op: 'seccomp-program' }>;
  /** process.user.umask: the caller's umask while it spawns the monitor (the init keeps it) */
  umask?: number;
  /** what novabox-oci changed and says so in --log (an rlimit clamped to what the host allows) */
  warnings: string[];
  /**
   * no mount namespace of its own (none in linux.namespaces, none joined): the init
   * chroots, and its mounts are made in the host's namespace, under the rootfs, where
   * `delete` undoes them (runtime/oci/container.ts)
   */
  hostMounts?: boolean;
}

/** One hook: a host program run with the container's state on its stdin. */
export interface OciHook {
  path: string;
  args: string[];
  env: string[];
  timeoutS?: number;
}

/**
 * The hooks novabox-oci runs, all in the runtime's namespaces: prestart and createRuntime
 * once the container's namespaces exist, before its init runs its first op; poststart
 * after `start`; poststop at `delete`.
 */
export interface OciHooks {
  createRuntime: OciHook[];
  /** run by the init itself, in the container's namespaces after its mounts, before pivot_root (ops 'hook') */
  createContainer: OciHook[];
  /** run by the init itself once `start` opened its gate, right before the exec, with the container's paths and credentials */
  startContainer: OciHook[];
  poststart: OciHook[];
  poststop: OciHook[];
}

/** config.hooks, every kind of the runtime-spec's. */
export function readHooks(v: unknown): OciHooks {
  const out: OciHooks = { createRuntime: [], createContainer: [], startContainer: [], poststart: [], poststop: [] };
  if (v === undefined || v === null) return out;
  if (!isObject(v)) refuse('hooks', 'must be an object');
  onlyKnown(v, ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'], 'hooks');
  const list = (name: string): OciHook[] => {
    const l = v[name];
    if (l === undefined || l === null) return [];
    if (!Array.isArray(l)) refuse(`hooks.${name}`, 'must be a list');
    return l.map((h: unknown, i: number) => {
      const field = `hooks.${name}[${i}]`;
      if (!isObject(h)) refuse(field, 'must be an object');
      onlyKnown(h, ['path', 'args', 'env', 'timeout'], field);
      if (typeof h.path !== 'string' || !h.path.startsWith('/')) refuse(`${field}.path`, 'must be an absolute path');
      if (h.timeout !== undefined && (typeof h.timeout !== 'number' || !Number.isInteger(h.timeout) || h.timeout <= 0)) {
        refuse(`${field}.timeout`, 'must be a positive whole number of seconds');
      }
      const args = stringList(h.args, `${field}.args`);
      return {
        path: h.path,
        args: args.length ? args : [h.path],
        env: stringList(h.env, `${field}.env`),
        ...(h.timeout ? { timeoutS: h.timeout as number } : {}),
      };
    });
  };
  // prestart (deprecated) runs as createRuntime does, before it
  out.createRuntime = [...list('prestart'), ...list('createRuntime')];
  out.createContainer = list('createContainer');
  out.startContainer = list('startContainer');
  out.poststart = list('poststart');
  out.poststop = list('poststop');
  return out;
}

export interface OciContext {
  id: string;
  bundle: string;
  layout: CgroupLayout;
  /** whether a bind mount's host source is a directory (false: a file, made as an empty file) */
  isDir: (path: string) => boolean;
  /** whether a namespace path names the mount namespace novabox-oci itself runs in */
  ownMountNamespace?: (path: string) => boolean;
  /** the same for its user namespace (the host's: `ctr run --with-ns user:/proc/1/ns/user`) */
  ownUserNamespace?: (path: string) => boolean;
  /** what this host lets the init set (asked only when config.json has process.rlimits) */
  hostRlimits?: () => HostRlimits;
  /** whether a block I/O throttle's device can be throttled here, the huge page sizes of this host (asked only when linux.resources has them) */
  host?: OciHostChecks;
}

/** What linux.resources is checked against on this host (none: taken as asked, for unit tests). */
export interface OciHostChecks {
  blockDevice?: BlockDeviceCheck;
  /** the huge page sizes this host has, as cgroup files name them ("2MB", "1GB") */
  hugePageSizes?: () => string[];
}

/**
 * The resource limits novabox-oci may give a container here: raising a hard limit above
 * the caller's own needs CAP_SYS_RESOURCE (in the initial user namespace: never from a
 * container's own), and RLIMIT_NOFILE never goes above fs.nr_open, even with it.
 */
export interface HostRlimits {
  /** the caller's hard limits (/proc/self/limits) */
  hard: Partial<Record<Rlimit, bigint>>;
  /** CAP_SYS_RESOURCE in the caller's effective set */
  canRaise: boolean;
  /** /proc/sys/fs/nr_open */
  nrOpen?: bigint;
}

const NS_TYPES: Record<string, Namespace> = {
  pid: 'pid',
  network: 'net',
  mount: 'mount',
  ipc: 'ipc',
  uts: 'uts',
  user: 'user',
  cgroup: 'cgroup',
};

/** mount(8) option -> flag set; the clearing options (rw, suid, ...) are the default. */
const FLAG_OPTIONS: Record<string, MountFlag[]> = {
  ro: ['rdonly'],
  nosuid: ['nosuid'],
  nodev: ['nodev'],
  noexec: ['noexec'],
  relatime: ['relatime'],
  strictatime: ['strictatime'],
  noatime: ['noatime'],
  bind: ['bind'],
  rbind: ['bind', 'rec'],
};
const CLEARING_OPTIONS = new Set(['rw', 'suid', 'dev', 'exec', 'atime', 'defaults', 'async']);
const PROPAGATION: Record<string, MountFlag[]> = {
  private: ['private'],
  rprivate: ['rec', 'private'],
  slave: ['slave'],
  rslave: ['rec', 'slave'],
  shared: ['shared'],
  rshared: ['rec', 'shared'],
  unbindable: ['unbindable'],
  runbindable: ['rec', 'unbindable'],
};
const PROPAGATION_FLAGS = new Set<MountFlag>(['rec', 'private', 'slave', 'shared', 'unbindable']);
/** options without '=' that are file system data, not flags */
const DATA_WORDS = new Set(['newinstance', 'nr_inodes', 'mpol']);
const FSTYPES = new Set(['proc', 'sysfs', 'tmpfs', 'mqueue', 'devpts', 'cgroup', 'cgroup2', 'bind', 'none']);

function refuse(field: string, why: string): never {
  throw new BadRequest(`config.json: ${field} ${why}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(v: unknown, field: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) refuse(field, 'must be a list of strings');
  return v as string[];
}

function uint(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
    refuse(field, 'must be a whole number from 0 to 4294967295');
  return v;
}

/** Fields of `obj` beyond `known`: each one is something this runtime would otherwise ignore. */
function onlyKnown(obj: Record<string, unknown>, known: string[], field: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k) && obj[k] !== undefined && obj[k] !== null) refuse(`${field}.${k}`, 'is not supported by novabox-oci');
  }
}

/** "1.0.2", "1.1.0-rc.1": major 1 only. */
export function checkVersion(config: OciConfig): void {
  const v = config.ociVersion;
  if (typeof v !== 'string') refuse('ociVersion', 'is missing');
  const major = Number(v.split('.')[0]);
  if (major !== OCI_MAJOR) refuse('ociVersion', `"${v}" is not a version novabox-oci reads (${OCI_MAJOR}.x)`);
}

function joinPath(base: string, p: string): string {
  return p.startsWith('/') ? p : `${base.replace(/\/+$/, '')}/${p}`;
}

/** "/a/b/" -> "a/b"; refuses ".." so nothing resolves outside the root (RESOLVE_IN_ROOT keeps it in anyway). */
function inside(p: string, field: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) refuse(field, `"${p}" must not contain ".."`);
  return parts.join('/');
}

/** mkdir of each parent of `rel`, then the mount point itself (a directory, or an empty file). */
function mountPoint(rel: string, dir: boolean): Op[] {
  const parts = rel.split('/');
  const ops: Op[] = [];
  for (let i = 1; i < parts.length; i++) ops.push({ op: 'mkdir', path: parts.slice(0, i).join('/'), mode: 0o755, inRoot: true });
  ops.push(
    dir
      ? { op: 'mkdir', path: rel, mode: 0o755, inRoot: true }
      : { op: 'mknod', path: rel, mode: 0o644, type: 'file', major: 0, minor: 0, inRoot: true },
  );
  return ops;
}

/** One entry of `mounts`, in the config's order. */
export function planOciMount(
  m: unknown,
  i: number,
  ctx: OciContext,
  userns: boolean,
  /** the container has a network namespace of its own (sysfs in a user namespace needs one) */
  ownNet = true,
  warnings: string[] = [],
): Op[] {
  const field = `mounts[${i}]`;
  if (!isObject(m)) refuse(field, 'must be an object');
  onlyKnown(m, ['destination', 'type', 'source', 'options'], field);
  if (typeof m.destination !== 'string' || !m.destination.startsWith('/')) refuse(`${field}.destination`, 'must be an absolute path');
  const target = inside(m.destination, `${field}.destination`);
  if (target === '') refuse(`${field}.destination`, 'must not be / (root.path is the root)');
  const options = stringList(m.options, `${field}.options`);
  let flags: MountFlag[] = [];
  const propagation: MountFlag[][] = [];
  const data: string[] = [];
  for (const o of options) {
    if (FLAG_OPTIONS[o]) flags = [...flags, ...FLAG_OPTIONS[o].filter((f) => !flags.includes(f))];
    else if (PROPAGATION[o]) propagation.push(PROPAGATION[o]);
    else if (CLEARING_OPTIONS.has(o)) continue;
    else if (o.includes('=') || DATA_WORDS.has(o)) data.push(o);
    else refuse(`${field}.options`, `"${o}" is not supported by novabox-oci`);
  }
  const type = m.type === undefined ? 'none' : m.type;
  if (typeof type !== 'string' || !FSTYPES.has(type)) refuse(`${field}.type`, `"${String(type)}" is not supported by novabox-oci`);
  const isBind = flags.includes('bind');
  if (!isBind && (type === 'bind' || type === 'none')) refuse(`${field}.options`, 'must say bind or rbind for a mount of type bind');
  const ops: Op[] = [];
  if (isBind) {
    if (typeof m.source !== 'string' || m.source === '') refuse(`${field}.source`, 'is needed for a bind mount');
    // mount(2) ignores the data of a bind, as runc and crun pass it: said in --log, not refused
    if (data.length)
      warnings.push(`${field}.options ${data.map((d) => `"${d}"`).join(', ')} ignored: a bind mount takes no file system data`);
    const source = joinPath(ctx.bundle, m.source);
    ops.push(
      ...mountPoint(target, ctx.isDir(source)),
      ...bindOps(
        source,
        target,
        flags.filter((f) => f === 'bind' || f === 'rec'),
        flags,
      ),
    );
  } else if ((type === 'cgroup' || type === 'cgroup2') && userns && !ownNet) {
    // in a user namespace without a network namespace of its own, /sys is the host's, bound
    // (above), and cgroup2 cannot be mounted again where the host has it (EBUSY): the host's
    // cgroup file system, bound, as runc falls back to
    ops.push(...mountPoint(target, true), ...bindOps('/sys/fs/cgroup', target, ['bind', 'rec'], flags));
  } else if (type === 'cgroup' || type === 'cgroup2') {
    // the container's own subtree (its cgroup namespace): novabox's cgroup mounts for this host
    const cg = planCgroupMounts(ctx.layout, !flags.includes('rdonly'));
    ops.push(...mountPoint(target, true));
    for (const op of cg) ops.push(retarget(op, 'sys/fs/cgroup', target));
  } else {
    ops.push(...mountPoint(target, true));
    if (userns && type === 'sysfs' && !ownNet) {
      // sysfs mounts only for the user namespace that owns the network namespace: without a
      // network namespace of its own the container gets the host's /sys, bound (as runc does)
      ops.push(...bindOps('/sys', target, ['bind', 'rec'], flags));
    } else
      ops.push({
        op: 'mount',
        source: typeof m.source === 'string' && m.source !== '' ? m.source : type,
        target,
        fstype: type,
        flags,
        ...(data.length ? { data: data.join(',') } : {}),
        inRoot: true,
      });
  }
  for (const p of propagation) ops.push({ op: 'mount', target, flags: p, inRoot: true });
  return ops;
}

/**
 * A bind of `source` on `target` with `bind` (its bind and rec flags), then the mount's
 * other flags: a bind takes none at first, they come with a remount of the new mount.
 */
function bindOps(source: string, target: string, bind: MountFlag[], flags: MountFlag[]): Op[] {
  const ops: Op[] = [{ op: 'mount', source, target, flags: bind, inRoot: true }];
  const rest = flags.filter((f) => f !== 'bind' && f !== 'rec');
  if (rest.length) ops.push({ op: 'mount', target, flags: ['remount', 'bind', ...rest], inRoot: true });
  return ops;
}

function retarget(op: Op, from: string, to: string): Op {
  const move = (p: string) => (p === from ? to : p.startsWith(`${from}/`) ? to + p.slice(from.length) : p);
  if (op.op === 'mount') return { ...op, target: move(op.target) };
  if (op.op === 'mkdir' || op.op === 'remount-ro') return { ...op, path: move(op.path) };
  return op;
}

/** The default devices (runtime-spec "Default Devices") and /dev's links, when /dev is a new tmpfs. */
function planDefaultDevices(userns: boolean): Op[] {
  const ops: Op[] = [];
  for (const d of DEVICES) {
    if (userns) {
      ops.push(
        { op: 'mknod', path: `dev/${d.name}`, mode: 0o666, type: 'file', major: 0, minor: 0, inRoot: true },
        { op: 'mount', source: `/dev/${d.name}`, target: `dev/${d.name}`, flags: ['bind'], inRoot: true },
      );
    } else {
      ops.push({ op: 'mknod', path: `dev/${d.name}`, mode: 0o666, type: 'c', major: d.major, minor: d.minor, inRoot: true });
    }
  }
  for (const [path, target] of DEV_LINKS) ops.push({ op: 'symlink', target, path, inRoot: true });
  return ops;
}

function planDevices(list: unknown, userns: boolean): Op[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) refuse('linux.devices', 'must be a list');
  const ops: Op[] = [];
  list.forEach((d: unknown, i: number) => {
    const field = `linux.devices[${i}]`;
    if (!isObject(d)) refuse(field, 'must be an object');
    onlyKnown(d, ['path', 'type', 'major', 'minor', 'fileMode', 'uid', 'gid'], field);
    if (d.type !== 'c' && d.type !== 'u' && d.type !== 'b' && d.type !== 'p')
      refuse(`${field}.type`, `"${String(d.type)}" is not a device type (c, u, b or p)`);
    if (userns) refuse(field, 'cannot be made in a user namespace by novabox-oci');
    if ((d.uid !== undefined && d.uid !== 0) || (d.gid !== undefined && d.gid !== 0))
      refuse(field, 'owned by another user than root is not supported by novabox-oci');
    if (typeof d.path !== 'string' || !d.path.startsWith('/dev/')) refuse(`${field}.path`, 'must be a path under /dev');
    const rel = inside(d.path, `${field}.path`);
    const parts = rel.split('/');
    for (let k = 2; k < parts.length; k++) ops.push({ op: 'mkdir', path: parts.slice(0, k).join('/'), mode: 0o755, inRoot: true });
    ops.push({
      op: 'mknod',
      path: rel,
      mode: d.fileMode === undefined ? 0o666 : uint(d.fileMode, `${field}.fileMode`) & 0o7777,
      type: d.type === 'u' ? 'c' : d.type,
      major: d.type === 'p' ? 0 : uint(d.major, `${field}.major`),
      minor: d.type === 'p' ? 0 : uint(d.minor, `${field}.minor`),
      inRoot: true,
    });
  });
  return ops;
}

function capList(v: unknown, field: string): Capability[] {
  return stringList(v, field).map((name) => {
    const cap = name.replace(/^CAP_/, '') as Capability;
    if (!CAPABILITIES.includes(cap)) refuse(field, `names an unknown capability "${name}"`);
    return cap;
  });
}

function sameSet(a: Capability[], b: Capability[]): boolean {
  return a.length === b.length && a.every((c) => b.includes(c));
}

/**
 * process.rlimits -> setrlimit ops. A hard limit the kernel would refuse (above what the
 * host lets the init raise to: HostRlimits) is lowered to that ceiling, its soft limit
 * with it, and a sentence in `warnings` says so (engines ask for more than a restricted
 * host gives: podman's RLIMIT_NOFILE 1048576); without `host` the limits go as asked.
 */
export function planRlimits(list: unknown, host?: HostRlimits, userns = false, warnings: string[] = []): Op[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) refuse('process.rlimits', 'must be a list');
  return list.map((r: unknown, i: number) => {
    const field = `process.rlimits[${i}]`;
    if (!isObject(r) || typeof r.type !== 'string') refuse(field, 'must have a type such as RLIMIT_NOFILE');
    const name = r.type.replace(/^RLIMIT_/, '').toLowerCase() as Rlimit;
    if (!(name in RLIMITS)) refuse(`${field}.type`, `"${r.type}" is not a resource limit`);
    const n = (v: unknown, f: string): bigint => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) refuse(`${field}.${f}`, 'must be a whole number');
      // JSON numbers above 2^53 (RLIM_INFINITY written as 18446744073709551615) read as infinity
      return v >= 2 ** 63 ? RLIM_INFINITY : BigInt(v);
    };
    const asked = { resource: name, soft: n(r.soft, 'soft'), hard: n(r.hard, 'hard') };
    if (asked.soft > asked.hard) refuse(`${field}.soft`, `(${asked.soft}) must not be above its hard limit (${asked.hard})`);
    const ceiling = host ? rlimitCeiling(name, host, userns) : undefined;
    // the same clamp as run's and servers' (never above what the init may set), with a ceiling of our own
    const [set] = ceiling ? clampRlimits([asked], { [name]: ceiling.limit }) : [asked];
    if (ceiling && set!.hard !== asked.hard) {
      warnings.push(
        `${field}: ${r.type} hard limit ${limitText(asked.hard)} is above what novabox-oci can set here (${ceiling.why}): ` +
          `set to soft ${limitText(set!.soft)}, hard ${limitText(set!.hard)}`,
      );
    }
    return { op: 'setrlimit', ...set! } satisfies Op;
  });
}

/** The highest hard limit of `name` the init can set, and why; undefined: no ceiling known. */
export function rlimitCeiling(name: Rlimit, host: HostRlimits, userns: boolean): { limit: bigint; why: string } | undefined {
  const own = host.hard[name];
  const nrOpen = name === 'nofile' ? host.nrOpen : undefined;
  if (own !== undefined && (!host.canRaise || userns)) {
    const why = userns ? 'a user namespace cannot raise a hard limit' : 'no CAP_SYS_RESOURCE';
    const limit = nrOpen !== undefined && nrOpen < own ? nrOpen : own;
    return { limit, why: limit === own ? `its own hard limit is ${limitText(own)}, ${why}` : `fs.nr_open is ${nrOpen}` };
  }
  return nrOpen === undefined ? undefined : { limit: nrOpen, why: `fs.nr_open is ${nrOpen}` };
}

function limitText(v: bigint): string {
  return v === RLIM_INFINITY ? 'unlimited' : String(v);
}

function idMappings(v: unknown, field: string): string {
  if (!Array.isArray(v) || v.length === 0) refuse(field, 'is needed with a user namespace');
  return v
    .map((m: unknown, i: number) => {
      if (!isObject(m)) refuse(`${field}[${i}]`, 'must be an object');
      return `${uint(m.containerID, `${field}[${i}].containerID`)} ${uint(m.hostID, `${field}[${i}].hostID`)} ${uint(m.size, `${field}[${i}].size`)}\n`;
    })
    .join('');
}

/** The character devices novabox's device cgroup allows (major:minor, '*' any minor). */
const ALLOWED_DEVICES = ['1:3', '1:5', '1:7', '1:8', '1:9', '5:0', '5:1', '5:2', '136:*'];

/** A device cgroup rule novabox's fixed allow-list already answers as asked. */
function deviceRuleWithin(r: Record<string, unknown>, i: number): boolean {
  if (r.allow === false) {
    if (i === 0) return (r.type === undefined || r.type === 'a') && r.major === undefined && r.minor === undefined;
    // a later deny (Docker's of 10:229, fuse) of a device the list does not allow says the same
    if (r.type === 'b') return true;
    if (r.type !== 'c' || typeof r.major !== 'number' || typeof r.minor !== 'number' || r.minor < 0) return false;
    return !ALLOWED_DEVICES.includes(`${r.major}:${r.minor}`) && !ALLOWED_DEVICES.includes(`${r.major}:*`);
  }
  if (r.allow !== true || r.type !== 'c' || typeof r.major !== 'number') return false;
  if (typeof r.access === 'string' && /[^rwm]/.test(r.access)) return false;
  const minor = r.minor === undefined || r.minor === null || r.minor === -1 ? '*' : String(r.minor);
  return ALLOWED_DEVICES.includes(`${r.major}:${minor}`) || (minor !== '*' && ALLOWED_DEVICES.includes(`${r.major}:*`));
}

/** linux.devices beyond the default allow-list are allowed in the device cgroup (as runc does). */
function withDevices(limits: CgroupLimits, list: unknown): CgroupLimits {
  if (!Array.isArray(list)) return limits;
  const allow: string[] = [];
  for (const d of list as Record<string, unknown>[]) {
    if (d.type === 'p') continue; // a fifo is no device
    const type = d.type === 'u' ? 'c' : String(d.type);
    if (type === 'c' && (ALLOWED_DEVICES.includes(`${d.major}:${d.minor}`) || ALLOWED_DEVICES.includes(`${d.major}:*`))) continue;
    allow.push(`${type} ${d.major}:${d.minor} rwm`);
  }
  return allow.length ? { ...limits, deviceAllow: allow } : limits;
}

/** linux.resources.blockIO's throttle lists, each device's limits merged into one. */
const THROTTLE_FIELDS = {
  throttleReadBpsDevice: 'readBps',
  throttleWriteBpsDevice: 'writeBps',
  throttleReadIOPSDevice: 'readIops',
  throttleWriteIOPSDevice: 'writeIops',
} as const;

/**
 * The throttles (io.max on v2, blkio.throttle.* on v1). Weights are refused: they need a
 * proportional I/O scheduler (BFQ) this host's block layer may not have. Docker writes
 * {"weight": 0} (no weight): a field asking for nothing is accepted.
 */
/** What is wrong with a block device for a throttle (it is not on this host, a partition), or undefined. */
export type BlockDeviceCheck = (major: number, minor: number) => string | undefined;

function blockIoThrottles(b: unknown, deviceProblem: BlockDeviceCheck): BlockIoThrottle[] {
  if (!isObject(b)) refuse('linux.resources.blockIO', 'must be an object');
  const byDevice = new Map<string, BlockIoThrottle>();
  for (const [k, v] of Object.entries(b)) {
    const field = `linux.resources.blockIO.${k}`;
    const kind = THROTTLE_FIELDS[k as keyof typeof THROTTLE_FIELDS];
    if (!kind) {
      if (v !== undefined && v !== null && v !== 0 && !(Array.isArray(v) && v.length === 0))
        refuse(field, 'is not supported by novabox-oci (only the throttle*Device lists are)');
      continue;
    }
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v)) refuse(field, 'must be a list');
    v.forEach((d: unknown, i: number) => {
      if (!isObject(d)) refuse(`${field}[${i}]`, 'must be an object');
      onlyKnown(d, ['major', 'minor', 'rate'], `${field}[${i}]`);
      const major = uint(d.major, `${field}[${i}].major`);
      const minor = uint(d.minor, `${field}[${i}].minor`);
      const rate = d.rate;
      if (typeof rate !== 'number' || !Number.isSafeInteger(rate) || rate < 0)
        refuse(`${field}[${i}].rate`, 'must be a whole number of bytes or operations per second');
      const problem = deviceProblem(major, minor);
      if (problem) refuse(`${field}[${i}]`, problem);
      const key = `${major}:${minor}`;
      const t = byDevice.get(key) ?? { major, minor };
      // a rate of 0 is no limit, as runc reads it
      if (rate > 0) t[kind] = rate;
      byDevice.set(key, t);
    });
  }
  return [...byDevice.values()].filter((t) => Object.keys(t).length > 2);
}

/**
 * linux.resources.hugepageLimits: a limit per page size (hugetlb.<size>.max on cgroup v2).
 * Kubelet, through containerd's CRI, sends one for every size the host has, 0 for those the
 * pod did not ask for: 0 is a limit (no huge pages of that size), not "none".
 */
function hugepageLimits(v: unknown, sizes: (() => string[]) | undefined): { pageSize: string; limitBytes: number }[] {
  const field = 'linux.resources.hugepageLimits';
  if (!Array.isArray(v)) refuse(field, 'must be a list');
  const seen = new Set<string>();
  let have: string[] | undefined;
  return v.map((h: unknown, i: number) => {
    if (!isObject(h)) refuse(`${field}[${i}]`, 'must be an object');
    onlyKnown(h, ['pageSize', 'limit'], `${field}[${i}]`);
    const size = h.pageSize;
    if (typeof size !== 'string' || !HUGE_PAGE_SIZE.test(size)) refuse(`${field}[${i}].pageSize`, 'must be a size such as 2MB or 1GB');
    if (seen.has(size)) refuse(`${field}[${i}]`, `lists page size ${size} twice`);
    seen.add(size);
    have ??= sizes?.();
    if (have && !have.includes(size))
      refuse(`${field}[${i}].pageSize`, `${size} is not a huge page size of this host (it has ${have.length ? have.join(', ') : 'none'})`);
    const limit = h.limit;
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0)
      refuse(`${field}[${i}].limit`, 'must be a whole number of bytes');
    return { pageSize: size, limitBytes: limit };
  });
}

/** linux.resources -> novabox's cgroup limits. */
export function ociLimits(res: unknown, host: OciHostChecks = {}): CgroupLimits {
  if (res === undefined || res === null) return {};
  if (!isObject(res)) refuse('linux.resources', 'must be an object');
  onlyKnown(res, ['memory', 'cpu', 'pids', 'devices', 'blockIO', 'hugepageLimits'], 'linux.resources');
  const limits: CgroupLimits = {};
  if (res.blockIO !== undefined && res.blockIO !== null) {
    const throttles = blockIoThrottles(res.blockIO, host.blockDevice ?? (() => undefined));
    if (throttles.length) limits.blockIoThrottles = throttles;
  }
  if (res.hugepageLimits !== undefined && res.hugepageLimits !== null) {
    const pages = hugepageLimits(res.hugepageLimits, host.hugePageSizes);
    if (pages.length) limits.hugetlb = pages;
  }
  if (res.devices !== undefined && res.devices !== null) {
    // novabox's device allow-list is always applied: deny all, then the default devices
    // and the ptys (cgroups/v1.ts V1_DEVICE_RULES, devices.c). A config asking for no more
    // than that says the same; anything beyond it is refused.
    const rules = res.devices;
    if (!Array.isArray(rules)) refuse('linux.resources.devices', 'must be a list');
    rules.forEach((r: unknown, i: number) => {
      if (!isObject(r) || !deviceRuleWithin(r, i)) {
        refuse(
          `linux.resources.devices[${i}]`,
          'is not supported by novabox-oci (it allows only the default devices and the ptys, after a rule denying all)',
        );
      }
    });
  }
  if (isObject(res.memory)) {
    const m = res.memory;
    onlyKnown(m, ['limit', 'swap', 'reservation', 'swappiness', 'disableOOMKiller'], 'linux.resources.memory');
    if (m.reservation !== undefined && m.reservation !== null)
      refuse('linux.resources.memory.reservation', 'is not supported by novabox-oci');
    if (m.disableOOMKiller === true) refuse('linux.resources.memory.disableOOMKiller', 'is not supported by novabox-oci');
    if (m.limit !== undefined && m.limit !== null && m.limit !== -1) {
      if (typeof m.limit !== 'number' || m.limit <= 0) refuse('linux.resources.memory.limit', 'must be a positive number of bytes');
      limits.memoryBytes = m.limit;
      if (m.swap !== undefined && m.swap !== null && m.swap !== -1) {
        if (m.swap !== m.limit)
          refuse('linux.resources.memory.swap', 'other than the memory limit (no swap) or -1 is not supported by novabox-oci');
        limits.swapOff = true;
      }
    } else if (m.swap !== undefined && m.swap !== null && m.swap !== -1) {
      refuse('linux.resources.memory.swap', 'needs a memory limit');
    }
  }
  if (isObject(res.cpu)) {
    const c = res.cpu;
    onlyKnown(c, ['shares', 'quota', 'period', 'cpus', 'mems'], 'linux.resources.cpu');
    for (const k of ['cpus', 'mems'] as const) {
      const v = c[k];
      if (v === undefined || v === null || v === '') continue;
      if (typeof v !== 'string' || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(v)) refuse(`linux.resources.cpu.${k}`, 'must be a list like "0-3,5"');
      if (k === 'cpus') limits.cpusetCpus = v;
      else limits.cpusetMems = v;
    }
    if (c.quota !== undefined && c.quota !== null && c.quota !== -1) {
      limits.cpuQuotaUs = uint(c.quota, 'linux.resources.cpu.quota');
      if (c.period !== undefined && c.period !== null) limits.cpuPeriodUs = uint(c.period, 'linux.resources.cpu.period');
    }
    if (c.shares !== undefined && c.shares !== null && c.shares !== 0) limits.cpuShares = uint(c.shares, 'linux.resources.cpu.shares');
  }
  if (isObject(res.pids)) {
    const l = res.pids.limit;
    if (typeof l === 'number' && l > 0) limits.pidsMax = uint(l, 'linux.resources.pids.limit');
  }
  return limits;
}

/**
 * Namespaces the init may join by path (setns of a single-threaded process, for itself).
 * A mount namespace too, first: the rootfs is then set up in it (as runc does), so the
 * container shares that namespace's mounts and adds its own there.
 */
const JOINABLE: Namespace[] = ['mount', 'net', 'ipc', 'uts', 'cgroup'];

/** config.json's top-level properties in the runtime-spec (config.md and its platform sections) */
const SPEC_TOP_LEVEL = [
  'ociVersion',
  'process',
  'root',
  'hostname',
  'domainname',
  'mounts',
  'hooks',
  'annotations',
  'linux',
  'solaris',
  'windows',
  'vm',
  'zos',
  'freebsd',
];

/** The ipc namespace's sysctls (runc's validator: they are per namespace). */
const IPC_SYSCTLS = [
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
];

/**
 * linux.sysctl: writes under the container's /proc/sys, after the mounts. Only the
 * sysctls a namespace of the container's own holds: any other would change the host.
 */
export function planSysctl(v: unknown, ns: { namespaces: Namespace[]; joins: Namespace[]; hasProc: boolean }): Op[] {
  if (v === undefined || v === null) return [];
  if (!isObject(v)) refuse('linux.sysctl', 'must be an object');
  const ops: Op[] = [];
  for (const [key, value] of Object.entries(v)) {
    const field = `linux.sysctl["${key}"]`;
    if (typeof value !== 'string') refuse(field, 'must be a string');
    if (!/^[a-z0-9_-]+([./][a-z0-9_-]+)+$/i.test(key)) refuse(field, 'is not a sysctl name');
    const name = key.replace(/\//g, '.');
    const own = (t: Namespace) => ns.namespaces.includes(t) || ns.joins.includes(t);
    const namespaced =
      IPC_SYSCTLS.includes(name) || name.startsWith('fs.mqueue.')
        ? own('ipc')
        : name === 'kernel.hostname' || name === 'kernel.domainname'
          ? own('uts')
          : name.startsWith('net.')
            ? own('net')
            : false;
    if (!namespaced) refuse(field, "is not a sysctl of a namespace the container has of its own (it would change the host's)");
    if (!ns.hasProc) refuse(field, 'needs a proc mount on /proc');
    ops.push({ op: 'write', path: `proc/sys/${name.replace(/\./g, '/')}`, data: value, inRoot: true });
  }
  return ops;
}

/** cgroupsPath: "/a/b" is that path from the hierarchies' root, "a/b" and none are below novabox-oci. */
export function ociCgroupPath(v: unknown, id: string): string {
  if (v === undefined || v === null || v === '') return `${OCI_CGROUP_PARENT}/${id}`;
  if (typeof v !== 'string') refuse('linux.cgroupsPath', 'must be a string');
  if (v.includes(':'))
    refuse('linux.cgroupsPath', `"${v}" is a systemd slice path, which novabox-oci does not support (cgroupfs paths only)`);
  const rel = v.split('/').filter(Boolean);
  if (rel.length === 0 || rel.some((s) => s === '.' || s === '..')) refuse('linux.cgroupsPath', `"${v}" is not a cgroup path`);
  return v.startsWith('/') ? rel.join('/') : `${OCI_CGROUP_PARENT}/${rel.join('/')}`;
}

/** A process object (config.json's, or `exec --process`'s), checked field by field. */
export interface OciProcess {
  raw: Record<string, unknown> & { cwd: string };
  args: string[];
  env: string[];
  uid: number;
  gid: number;
  additionalGids: number[];
  caps: Capability[];
  /** process.capabilities.inheritable and .ambient (caps is effective = permitted = bounding) */
  capSets: { inheritable: Capability[]; ambient: Capability[] };
  nnp: boolean;
  oomScoreAdj?: number;
  terminal: boolean;
  /** process.user.umask */
  umask?: number;
}

export function readProcess(p: unknown, field: string): OciProcess {
  if (!isObject(p)) refuse(field, 'is missing');

  onlyKnown(
    p,
    ['args', 'env', 'cwd', 'user', 'capabilities', 'rlimits', 'noNewPrivileges', 'terminal', 'oomScoreAdj', 'consoleSize'],
    field,
  );
  let oomScoreAdj: number | undefined;
  if (p.oomScoreAdj !== undefined && p.oomScoreAdj !== null) {
    const adj = p.oomScoreAdj;
    if (typeof adj !== 'number' || !Number.isInteger(adj) || adj < -1000 || adj > 1000)
      refuse(`${field}.oomScoreAdj`, 'must be a whole number from -1000 to 1000');
    oomScoreAdj = adj;
  }
  const args = stringList(p.args, `${field}.args`);
  if (args.length === 0) refuse(`${field}.args`, 'must name the program to run');
  const env = stringList(p.env, `${field}.env`);
  if (typeof p.cwd !== 'string' || !p.cwd.startsWith('/')) refuse(`${field}.cwd`, 'must be an absolute path');
  const user = isObject(p.user) ? p.user : refuse(`${field}.user`, 'is missing');
  onlyKnown(user, ['uid', 'gid', 'additionalGids', 'umask'], `${field}.user`);
  let umask: number | undefined;
  if (user.umask !== undefined && user.umask !== null) {
    umask = uint(user.umask, `${field}.user.umask`);
    if (umask > 0o777) refuse(`${field}.user.umask`, 'must be a file mode mask from 0 to 0777 (511)');
  }
  const uid = uint(user.uid, `${field}.user.uid`);
  const gid = uint(user.gid, `${field}.user.gid`);
  const additionalGids = ((user.additionalGids as unknown[] | undefined) ?? []).map((g, i) =>
    uint(g, `${field}.user.additionalGids[${i}]`),
  );
  let caps: Capability[] = [];
  let inheritable: Capability[] = [];
  let ambient: Capability[] = [];
  if (p.capabilities !== undefined && p.capabilities !== null) {
    const c = isObject(p.capabilities) ? p.capabilities : refuse(`${field}.capabilities`, 'must be an object');
    onlyKnown(c, ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'], `${field}.capabilities`);
    const bounding = capList(c.bounding, `${field}.capabilities.bounding`);
    const effective = capList(c.effective, `${field}.capabilities.effective`);
    const permitted = capList(c.permitted, `${field}.capabilities.permitted`);
    inheritable = capList(c.inheritable, `${field}.capabilities.inheritable`);
    ambient = capList(c.ambient, `${field}.capabilities.ambient`);
    if (!sameSet(effective, permitted))
      refuse(`${field}.capabilities.effective`, 'must equal process.capabilities.permitted in novabox-oci');
    if (!sameSet(bounding, permitted)) refuse(`${field}.capabilities.bounding`, 'must equal process.capabilities.permitted in novabox-oci');
    // the kernel keeps the inheritable set within the bounding set, and raises an ambient
    // capability only if it is permitted and inheritable
    const unbounded = inheritable.find((a) => !bounding.includes(a));
    if (unbounded) refuse(`${field}.capabilities.inheritable`, `has ${unbounded}, which is not in bounding`);
    const outside = ambient.find((a) => !permitted.includes(a) || !inheritable.includes(a));
    if (outside) refuse(`${field}.capabilities.ambient`, `has ${outside}, which is not in both permitted and inheritable`);
    // a user other than root keeps through execve its ambient set only (no file capabilities)
    if (uid !== 0 && permitted.length && !sameSet(permitted, ambient))
      refuse(
        `${field}.capabilities`,
        'of a user other than root (uid 0) must be its ambient set too in novabox-oci (the only set it keeps through execve)',
      );
    caps = permitted;
  }
  const nnp = p.noNewPrivileges === true;

  return {
    raw: p as OciProcess['raw'],
    args,
    env,
    uid,
    gid,
    additionalGids,
    caps,
    capSets: { inheritable, ambient },
    nnp,
    oomScoreAdj,
    terminal: p.terminal === true,
    ...(umask !== undefined ? { umask } : {}),
  };
}

/**
 * config.json -> the launch plan (without its cgroup steps and placement, which the caller
 * adds: runtime/oci/container.ts). Order as runtime/plan's planLaunch: namespaces and
 * mounts, pivot_root, hostname, rlimits, credentials, chdir, execve (behind the gate).
 */
export function planOci(config: OciConfig, ctx: OciContext): OciPlan {
  if (!isObject(config)) refuse('', 'must be a JSON object');
  checkVersion(config);
  const warnings: string[] = [];
  // the runtime-spec's own properties that novabox-oci does not do are refused; one the
  // spec does not have is ignored (runtime-spec: an unknown property is no error), said in --log
  const unknown = Object.keys(config).filter((k) => !SPEC_TOP_LEVEL.includes(k));
  onlyKnown(
    config,
    ['ociVersion', 'process', 'root', 'hostname', 'mounts', 'linux', 'annotations', 'domainname', 'hooks', ...unknown],
    'config',
  );
  for (const k of unknown) warnings.push(`config.json: ${k} is not a runtime-spec property: ignored`);
  const hooks = readHooks(config.hooks);
  if (config.domainname !== undefined && config.domainname !== '') refuse('domainname', 'is not supported by novabox-oci');
  const linux: unknown = config.linux ?? {};
  if (!isObject(linux)) refuse('linux', 'must be an object');
  onlyKnown(
    linux,
    [
      'namespaces',
      'uidMappings',
      'gidMappings',
      'resources',
      'cgroupsPath',
      'maskedPaths',
      'readonlyPaths',
      'devices',
      'rootfsPropagation',
      'sysctl',
      'seccomp',
    ],
    'linux',
  );

  // namespaces
  // none listed: every namespace the host's (runtime-spec: a type not listed is inherited)
  if (linux.namespaces === undefined || linux.namespaces === null) linux.namespaces = [];
  if (!Array.isArray(linux.namespaces)) refuse('linux.namespaces', 'must be a list');
  const namespaces: Namespace[] = [];
  const joins: Extract<Op, { op: 'setns' }>[] = [];
  let cgroupNs = false;
  let pidNamespace: string | undefined;
  let userNamespace: string | undefined;
  let ownUserJoined = false;
  linux.namespaces.forEach((n: unknown, i: number) => {
    if (!isObject(n) || typeof n.type !== 'string') refuse(`linux.namespaces[${i}]`, 'must have a type');
    const ns = NS_TYPES[n.type];
    if (!ns) refuse(`linux.namespaces[${i}].type`, `"${n.type}" is not supported by novabox-oci`);
    if (
      namespaces.includes(ns) ||
      joins.some((j) => j.namespace === ns) ||
      (ns === 'cgroup' && cgroupNs) ||
      (ns === 'pid' && pidNamespace) ||
      (ns === 'user' && userNamespace)
    ) {
      refuse(`linux.namespaces[${i}]`, `lists ${n.type} twice`);
    }
    if (n.path !== undefined && n.path !== '') {
      // setns(2) by the init itself (the network CNI and netavark hand over, mount, ipc,
      // uts, cgroup); a pid namespace by the monitor before the clone (a setns into one is
      // its caller's children's only: a pod's shared pid namespace); a user namespace (a
      // Kubernetes pod's sandbox's) by a child of the monitor, which clones the init in it,
      // so that the namespaces the init makes are owned by it
      if (!JOINABLE.includes(ns) && ns !== 'pid' && ns !== 'user')
        refuse(`linux.namespaces[${i}].path`, `joining an existing ${n.type} namespace is not supported by novabox-oci`);
      if (typeof n.path !== 'string' || !n.path.startsWith('/')) refuse(`linux.namespaces[${i}].path`, 'must be an absolute path');
      // its rootfs is set up in the namespace it joins, and pivot_root there would move the
      // root of every process in it: the host's, when that is novabox-oci's own
      if (ns === 'mount' && ctx.ownMountNamespace?.(n.path))
        refuse(
          `linux.namespaces[${i}].path`,
          "is the mount namespace novabox-oci runs in: the container's pivot_root there would move the root of every process in it",
        );
      if (ns === 'pid') pidNamespace = n.path;
      else if (ns === 'user' && ctx.ownUserNamespace?.(n.path)) {
        // the container is in it already: setns(2) refuses to enter one's own user namespace
        ownUserJoined = true;
        warnings.push(`linux.namespaces[${i}].path is the user namespace novabox-oci runs in: the container stays in it, nothing to join`);
      } else if (ns === 'user') userNamespace = n.path;
      else joins.push({ op: 'setns', path: n.path, namespace: ns });
    } else if (ns === 'cgroup') cgroupNs = true;
    else namespaces.push(ns);
  });
  const mountJoined = joins.some((j) => j.namespace === 'mount');
  // none: the host's, as runc does; chroot instead of pivot_root, mounts on the host
  const hostMounts = !namespaces.includes('mount') && !mountJoined;
  // in a user namespace: one of its own (the maps are written for it) or one joined
  const ownUserns = namespaces.includes('user');
  const userns = ownUserns || userNamespace !== undefined;
  if (hostMounts) {
    const without = 'needs a mount namespace in linux.namespaces (without one it would change the host)';
    if (userns) refuse('linux.namespaces', 'with a user namespace must have a mount namespace too');
    if (stringList(linux.maskedPaths, 'linux.maskedPaths').length) refuse('linux.maskedPaths', without);
    if (stringList(linux.readonlyPaths, 'linux.readonlyPaths').length) refuse('linux.readonlyPaths', without);
    if (isObject(config.root) && config.root.readonly === true) refuse('root.readonly', without);
    if (linux.rootfsPropagation !== undefined && linux.rootfsPropagation !== '') refuse('linux.rootfsPropagation', without);
  }
  // the init joins before it leaves the host's user namespace's privileges behind: a mount
  // namespace owned by the host's cannot be entered from a user namespace of its own
  if (ownUserns && mountJoined) refuse('linux.namespaces', 'cannot join a mount namespace by path and have a user namespace of its own');
  // the joined mount namespace first, so that the other paths resolve in it
  joins.sort((a, b) => Number(b.namespace === 'mount') - Number(a.namespace === 'mount'));
  let userMaps: { uidMap: string; gidMap: string } | undefined;
  if (ownUserns)
    userMaps = { uidMap: idMappings(linux.uidMappings, 'linux.uidMappings'), gidMap: idMappings(linux.gidMappings, 'linux.gidMappings') };
  else if (userNamespace !== undefined) {
    // containerd's CRI names the sandbox's maps too: they must be the joined namespace's
    // own (the monitor compares them with the init's, once it is in it), never written
    if (linux.uidMappings !== undefined || linux.gidMappings !== undefined)
      userMaps = {
        uidMap: linux.uidMappings === undefined ? '' : idMappings(linux.uidMappings, 'linux.uidMappings'),
        gidMap: linux.gidMappings === undefined ? '' : idMappings(linux.gidMappings, 'linux.gidMappings'),
      };
  } else if (ownUserJoined && (linux.uidMappings || linux.gidMappings))
    refuse(
      'linux.uidMappings',
      'cannot map ids in the user namespace novabox-oci runs in, which the container joins (linux.namespaces, type user)',
    );
  else if (linux.uidMappings || linux.gidMappings) refuse('linux.uidMappings', 'needs a user namespace in linux.namespaces');

  // process
  const proc = readProcess(config.process, 'process');
  const { args, env, uid, gid, additionalGids, caps, capSets, nnp, oomScoreAdj } = proc;
  const p = proc.raw;

  // root
  const root = config.root;
  if (!isObject(root) || typeof root.path !== 'string' || root.path === '') refuse('root.path', 'is missing');
  onlyKnown(root, ['path', 'readonly'], 'root');
  const rootPath = joinPath(ctx.bundle, root.path).replace(/\/+$/, '');

  // mounts and the rest of the file system
  const propagation = linux.rootfsPropagation ?? 'rprivate';
  if (typeof propagation !== 'string' || !PROPAGATION[propagation])
    refuse('linux.rootfsPropagation', `"${String(propagation)}" is not supported by novabox-oci`);
  // the joins and the score first, as host root, while host paths resolve
  const ops: Op[] = [...joins];
  if (oomScoreAdj !== undefined) ops.push({ op: 'write', path: '/proc/self/oom_score_adj', data: String(oomScoreAdj) });
  if (userns) ops.push({ op: 'mount', target: '/', flags: ['rec', 'private'] });
  if (ownUserns) ops.push({ op: 'userns' });
  if (cgroupNs) ops.push({ op: 'unshare', namespaces: ['cgroup'] });
  // pivot_root refuses a shared root or parent, and an unbindable root cannot be bound
  // onto itself: such a propagation is made rslave until
  // the pivot and the new root made so after it, as crun does
  const shared = PROPAGATION[propagation].includes('shared') || PROPAGATION[propagation].includes('unbindable');
  if (!userns && !hostMounts) ops.push({ op: 'mount', target: '/', flags: shared ? ['rec', 'slave'] : PROPAGATION[propagation] });
  // the root a mount of its own, so that pivot_root takes it (a plain directory is refused)
  if (!hostMounts) ops.push({ op: 'mount', source: rootPath, target: rootPath, flags: ['bind', 'rec'] });
  ops.push({ op: 'set-root', path: rootPath });
  if (userns) ops.push({ op: 'setgroups', gids: [] }, { op: 'setgid', gid: 0 }, { op: 'setuid', uid: 0 });
  const mounts = config.mounts ?? [];
  if (!Array.isArray(mounts)) refuse('mounts', 'must be a list');
  let devTmpfs = false;
  // each mount's own propagation, again after a shared or unbindable root's (recursive) one
  const mountPropagation: Op[] = [];
  mounts.forEach((m: unknown, i: number) => {
    for (const op of planOciMount(m, i, ctx, userns, namespaces.includes('net'), warnings)) {
      ops.push(op);
      if (op.op === 'mount' && op.source === undefined && op.flags.every((f) => PROPAGATION_FLAGS.has(f))) mountPropagation.push(op);
    }
    if (isObject(m) && m.destination === '/dev' && m.type === 'tmpfs') devTmpfs = true;
  });
  if (devTmpfs) for (const op of planDefaultDevices(userns)) ops.push(op);
  const hasProc = mounts.some((m: unknown) => isObject(m) && m.destination === '/proc' && m.type === 'proc');
  for (const op of planSysctl(linux.sysctl, { namespaces, joins: joins.map((j) => j.namespace), hasProc })) ops.push(op);
  for (const op of planDevices(linux.devices, userns)) ops.push(op);
  const terminal = p.terminal === true;
  if (terminal) {
    // a pty of the container's own devpts: its stdio and /dev/console; the master goes to
    // the engine's console socket (runtime/oci/container.ts)
    if (!mounts.some((m: unknown) => isObject(m) && m.destination === '/dev/pts' && m.type === 'devpts')) {
      refuse('process.terminal', 'needs a devpts mount on /dev/pts');
    }
    const size = isObject(p.consoleSize) ? p.consoleSize : {};
    ops.push(
      { op: 'mknod', path: 'dev/console', mode: 0o620, type: 'file', major: 0, minor: 0, inRoot: true },
      {
        op: 'console',
        ptmx: 'dev/pts/ptmx',
        path: 'dev/console',
        rows: size.height === undefined ? 24 : uint(size.height, 'process.consoleSize.height') & 0xffff,
        cols: size.width === undefined ? 80 : uint(size.width, 'process.consoleSize.width') & 0xffff,
      },
    );
  }
  for (const path of stringList(linux.maskedPaths, 'linux.maskedPaths')) ops.push({ op: 'mask', path });
  for (const path of stringList(linux.readonlyPaths, 'linux.readonlyPaths')) ops.push({ op: 'readonly', path });
  // createContainer hooks: in the container's namespaces, its mounts made, before pivot_root
  // (host paths, as runc runs them); the state on their stdin is filled in once the init's
  // pid is known (runtime/oci/container.ts: the ops are sent late)
  for (const h of hooks.createContainer)
    ops.push({ op: 'hook', hook: 'createContainer', path: h.path, args: h.args, env: h.env, state: '', timeoutS: h.timeoutS ?? 0 });
  ops.push(hostMounts ? { op: 'pivot-root', chroot: true } : { op: 'pivot-root' });
  if (shared && !userns) ops.push({ op: 'mount', target: '/', flags: PROPAGATION[propagation] }, ...mountPropagation);
  if (root.readonly === true) ops.push({ op: 'remount-ro', path: '/' });

  let hostname: string | undefined;
  if (config.hostname !== undefined && config.hostname !== '') {
    if (typeof config.hostname !== 'string') refuse('hostname', 'must be a string');
    // its own uts namespace, or one joined by path (as runc: the joined one's name is set)
    if (!namespaces.includes('uts') && !joins.some((j) => j.namespace === 'uts'))
      refuse('hostname', 'needs a uts namespace in linux.namespaces');
    hostname = config.hostname;
    ops.push({ op: 'sethostname', hostname });
  }
  const hasRlimits = Array.isArray(p.rlimits) && p.rlimits.length > 0;
  for (const op of planRlimits(p.rlimits, hasRlimits ? ctx.hostRlimits?.() : undefined, userns, warnings)) ops.push(op);
  const seccomp = seccompOp(linux.seccomp);
  for (const op of planCredentials(caps, { uid, gid, additionalGids }, seccomp ?? false, nnp, false, capSets)) ops.push(op);
  const path = env.findLast((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  ops.push({ op: 'chdir', path: p.cwd });
  // startContainer hooks: once `start` opened the gate, in the container (its paths, its
  // credentials and seccomp filter, as runc runs them), right before the exec
  for (const h of hooks.startContainer)
    ops.push({ op: 'hook', hook: 'startContainer', path: h.path, args: h.args, env: h.env, state: '', timeoutS: h.timeoutS ?? 0 });
  ops.push({ op: 'exec', file: args[0], searchPath: path, argv: args, env });

  const plan: LaunchPlan = {
    namespaces: ownUserns ? ['user', ...namespaces.filter((n) => n !== 'user')] : namespaces,
    ops,
    tty: terminal,
    detach: true,
    ...(ownUserns && userMaps ? { userns: userMaps } : {}),
    ...(userNamespace !== undefined ? { userNamespace: { path: userNamespace, ...userMaps } } : {}),
    ...(pidNamespace ? { pidNamespace } : {}),
  };
  return {
    plan,
    cgroupPath: ociCgroupPath(linux.cgroupsPath, ctx.id),
    limits: withDevices(ociLimits(linux.resources, ctx.host), linux.devices),
    hostname,
    hooks,
    ...(seccomp ? { seccomp } : {}),
    ...(proc.umask !== undefined ? { umask: proc.umask } : {}),
    warnings,
    ...(hostMounts ? { hostMounts } : {}),
  };
}

/** linux.seccomp -> the op that loads it (none without a profile: no filter, as runc). */
export function seccompOp(v: unknown): Extract<Op, { op: 'seccomp-program' }> | undefined {
  if (v === undefined || v === null) return undefined;
  const f = compileSeccomp(v);
  return { op: 'seccomp-program', program: f.program, flags: f.flags };
}

/**
 * `exec`: a process into a running container. The monitor enters the init's namespaces
 * (`join`) and clones it there; the ops make it the process the object describes.
 */
export function planOciExec(
  p: OciProcess,
  join: { pid: number; namespaces: Namespace[] },
  seccomp?: Extract<Op, { op: 'seccomp-program' }>,
  /** as planOci's: rlimits above these are lowered, with a sentence in `warnings` */
  host?: HostRlimits,
  warnings: string[] = [],
): LaunchPlan {
  const ops: Op[] = [
    // after setns the monitor's / is the container's root: resolve paths inside it
    { op: 'set-root', path: '/' },
  ];
  if (p.oomScoreAdj !== undefined) ops.push({ op: 'write', path: '/proc/self/oom_score_adj', data: String(p.oomScoreAdj) });
  if (p.terminal) {
    const size = isObject(p.raw.consoleSize) ? p.raw.consoleSize : {};
    ops.push({
      op: 'console',
      ptmx: 'dev/pts/ptmx',
      rows: size.height === undefined ? 24 : uint(size.height, 'process.consoleSize.height') & 0xffff,
      cols: size.width === undefined ? 80 : uint(size.width, 'process.consoleSize.width') & 0xffff,
    });
  }
  // the container's user namespace, if it has one, is joined by the monitor: no raising there either
  const userns = join.namespaces.includes('user');
  for (const op of planRlimits(p.raw.rlimits, host, userns, warnings)) ops.push(op);
  for (const op of planCredentials(p.caps, p, seccomp ?? false, p.nnp, false, p.capSets)) ops.push(op);
  const path = p.env.findLast((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  ops.push({ op: 'chdir', path: p.raw.cwd }, { op: 'exec', file: p.args[0], searchPath: path, argv: p.args, env: p.env });
  return { namespaces: [], join, ops, tty: p.terminal, detach: true };
}
