import type { Capability, LaunchPlan, Op } from '../../sys/ops.js';
import { RLIM_INFINITY } from '../../sys/ops.js';
import { planMounts } from './mounts.js';
import { DEFAULT_PATH, INIT_PATH, namespacesFor, type ContainerSpec, type Idmap } from './spec.js';

export * from './spec.js';
export { planMounts, planCgroupMounts, planRun, overlayOptions } from './mounts.js';
export { planDev, DEVICES } from './devices.js';
export { MASKED_PATHS, READONLY_PATHS } from './security.js';

/** The primary group first, then the others, each once. */
function groupsOf(gid: number, more: number[]): number[] {
  const gids = [gid];
  for (const g of more) if (!gids.includes(g)) gids.push(g);
  return gids;
}

function envValue(env: string[], name: string): string | undefined {
  const hit = env.findLast((e) => e.startsWith(name + '='));
  return hit?.slice(name.length + 1);
}

/**
 * no_new_privs: set for a container whose root is the host's (--userns host), so that no
 * setuid binary in an image can give back what the bounding set took. In a user
 * namespace of its own a setuid root binary gives the namespace's root, an unprivileged
 * id on the host: setuid binaries (su, sudo, ping) work as on any system, as with LXC,
 * Incus and podman's default.
 */
export function noNewPrivs(spec: Pick<ContainerSpec, 'idmap'>): boolean {
  return spec.idmap === undefined;
}

/**
 * Bounding set, ids, capabilities, no_new_privs and seccomp, in the kernel's order: the
 * bounding set while CAP_SETPCAP is there; with no_new_privs the filter goes last (an
 * unprivileged load needs it; our own ops stay unfiltered); without it, the filter needs
 * CAP_SYS_ADMIN in the namespace, so it goes before setuid, which drops that for a
 * non-root user, and capset (runc's order without noNewPrivileges). Root keeps the
 * allow-list; anyone else ends with nothing effective, as with runc.
 */
export function planCredentials(
  caps: ContainerSpec['capabilities'],
  p: { uid: number; gid: number; additionalGids: number[] },
  seccomp: boolean | Extract<Op, { op: 'seccomp-program' }>,
  nnp: boolean,
  system = false,
  /** novabox-oci's process.capabilities inheritable and ambient sets (servers have none) */
  sets?: { inheritable: Capability[]; ambient: Capability[] },
): Op[] {
  const ops: Op[] = [{ op: 'cap-bound', keep: caps }];
  // an object: a filter of the caller's (novabox-oci's, from config.json) in place of ours
  const filter: Op = typeof seccomp === 'object' ? seccomp : system ? { op: 'seccomp', system: true } : { op: 'seccomp' };
  if (seccomp && !nnp) ops.push(filter);
  // a user other than root with ambient or inheritable capabilities keeps the permitted set
  // through setuid (PR_SET_KEEPCAPS) for the capset that sets them
  const keepCaps = p.uid !== 0 && ((sets?.ambient.length ?? 0) > 0 || (sets?.inheritable.length ?? 0) > 0);
  const capset: Op = { op: 'capset', caps: p.uid === 0 || keepCaps ? caps : [] };
  if (sets?.inheritable.length) capset.inheritable = sets.inheritable;
  if (sets?.ambient.length) capset.ambient = sets.ambient;
  ops.push(
    { op: 'setgroups', gids: groupsOf(p.gid, p.additionalGids) },
    { op: 'setgid', gid: p.gid },
    keepCaps ? { op: 'setuid', uid: p.uid, keepCaps } : { op: 'setuid', uid: p.uid },
    capset,
  );
  if (nnp) ops.push({ op: 'no-new-privs' });
  // with no_new_privs last before chdir + execve: our own mounts and pivot_root are behind us
  if (seccomp && nnp) ops.push(filter);
  return ops;
}

/** The maps and the rootfs the monitor makes for a container in its own user namespace. */
export function usernsOf(spec: Pick<ContainerSpec, 'rootfs'>, m: Idmap): NonNullable<LaunchPlan['userns']> {
  const r = spec.rootfs;
  const t = r.tmpfs;
  // with a tmpfs, upper and work are names inside the monitor's new tmpfs
  const inside = (p: string) => (t && p.startsWith(`${t.dir}/`) ? p.slice(t.dir.length + 1) : p);
  return {
    uidMap: `0 ${m.uidBase} ${m.size}\n`,
    gidMap: `0 ${m.gidBase} ${m.size}\n`,
    rootfs: {
      upper: inside(r.upperDir),
      work: inside(r.workDir),
      flags: r.volatile ? 'volatile' : '',
      ...(t ? { tmpfs: `mode=0755${t.sizeBytes ? `,size=${t.sizeBytes}` : ''}` } : {}),
      stage: r.mergedDir,
      lowers: r.lowerDirs,
    },
  };
}

/**
 * spec -> the ordered ops the init runs between 'R' and execve (which waits for 'G'). Pure.
 *
 * Order matters and follows the kernel's rules:
 * - cgroup namespace first: we are in our cgroup before 'R' (the monitor saw to it; v1
 *   joins are the ops before this one), and unshare(2)
 *   roots the new namespace at the current cgroup, so /sys/fs/cgroup shows only ours;
 * - all mounts before pivot_root, while the host's /proc still resolves /proc/self/fd;
 * - bounding set before setuid (PR_CAPBSET_DROP needs CAP_SETPCAP), capset after it;
 * - no_new_privs last before chdir + execve.
 */
export function planLaunch(spec: ContainerSpec): LaunchPlan {
  const p = spec.process;
  // With a user namespace: first wait for the maps and become its root, so that whatever
  // the ops make is the container's (the v1 cgroup joins placeLaunch puts before this
  // still run as host uid 0, which cgroup v1 requires of a task moving itself).
  // Its mounts private first: the monitor may attach the layers in its mount namespace.
  const ops: Op[] = spec.idmap
    ? [{ op: 'mount', target: '/', flags: ['rec', 'private'] }, { op: 'userns' }, { op: 'unshare', namespaces: ['cgroup'] }]
    : [{ op: 'unshare', namespaces: ['cgroup'] }];
  for (const op of planMounts(spec)) ops.push(op);
  ops.push({ op: 'pivot-root' });
  if (spec.rootfs.readOnly) ops.push({ op: 'remount-ro', path: '/' });
  ops.push({ op: 'sethostname', hostname: spec.hostname });
  for (const r of spec.rlimits) ops.push({ op: 'setrlimit', resource: r.resource, soft: r.soft, hard: r.hard });
  for (const op of planCredentials(spec.capabilities, p, spec.seccomp !== false, noNewPrivs(spec), spec.system)) ops.push(op);
  ops.push(
    { op: 'chdir', path: p.cwd },
    {
      op: 'exec',
      file: spec.initCopy ? INIT_PATH : p.args[0],
      searchPath: envValue(p.env, 'PATH') ?? DEFAULT_PATH,
      argv: p.args,
      env: p.env,
      ...(spec.initBinary && !spec.initCopy ? { sealed: true } : {}),
    },
  );
  return {
    ...(spec.initBinary && !spec.initCopy ? { execCopy: spec.initBinary } : {}),
    ...(spec.idmap ? { userns: usernsOf(spec, spec.idmap) } : {}),
    namespaces: namespacesFor(spec),
    ops,
    tty: p.tty !== false,
    ...(spec.system && p.tty !== false && spec.logPath ? { consoleLog: true } : {}),
    logPath: spec.logPath,
    statusPath: spec.statusPath,
  };
}

export const DEFAULT_RLIMITS: ContainerSpec['rlimits'] = [
  { resource: 'nofile', soft: 1024n, hard: 524288n },
  { resource: 'core', soft: 0n, hard: RLIM_INFINITY },
];

/**
 * Raising a hard limit needs CAP_SYS_RESOURCE, which a sandboxed or nested host may
 * not grant even to root; lowering is always allowed. So never ask for more than the
 * caller's own hard limit (podman clamps the same way).
 */
export function clampRlimits<R extends { resource: string; soft: bigint; hard: bigint }>(
  wanted: readonly R[],
  current: Partial<Record<string, bigint>>,
): R[] {
  return wanted.map((r) => {
    const cur = current[r.resource];
    if (cur === undefined || r.hard <= cur) return r;
    return { ...r, hard: cur, soft: r.soft < cur ? r.soft : cur };
  });
}

const LIMIT_NAMES: Record<string, string> = { 'Max open files': 'nofile', 'Max processes': 'nproc', 'Max core file size': 'core' };

/** Every line of /proc/<pid>/limits (fs/proc/base.c's lnames), by its resource. */
export const ALL_LIMIT_NAMES: Record<string, string> = {
  'Max cpu time': 'cpu',
  'Max file size': 'fsize',
  'Max data size': 'data',
  'Max stack size': 'stack',
  'Max core file size': 'core',
  'Max resident set': 'rss',
  'Max processes': 'nproc',
  'Max open files': 'nofile',
  'Max locked memory': 'memlock',
  'Max address space': 'as',
  'Max file locks': 'locks',
  'Max pending signals': 'sigpending',
  'Max msgqueue size': 'msgqueue',
  'Max nice priority': 'nice',
  'Max realtime priority': 'rtprio',
  'Max realtime timeout': 'rttime',
};

/** Hard limits from /proc/self/limits text (those of `names`: nofile, nproc and core unless told). */
export function parseHardLimits(text: string, names: Record<string, string> = LIMIT_NAMES): Partial<Record<string, bigint>> {
  const out: Partial<Record<string, bigint>> = {};
  // only the lines we want, by their label (no regular expression per line on the start path)
  const all = '\n' + text;
  for (const [label, name] of Object.entries(names)) {
    const at = all.indexOf(`\n${label} `);
    if (at < 0) continue;
    const end = all.indexOf('\n', at + 1);
    const [, hard] = all
      .slice(at + 1 + label.length, end < 0 ? undefined : end)
      .split(' ')
      .filter(Boolean);
    if (hard !== undefined) out[name] = hard === 'unlimited' ? RLIM_INFINITY : BigInt(hard);
  }
  return out;
}
