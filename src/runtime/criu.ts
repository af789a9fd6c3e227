/**
 * CRIU as live migration needs it: whether `criu check` passes on this host, and if not,
 * why, in criu's own words (the first error it printed, without its source location).
 * Debian 12's CRIU 3.17.1 on a 6.18 kernel says "vdso: Unexpected rt vDSO area bounds".
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LaunchPlan, Op } from '../sys/ops.js';
import { DEFAULT_PATH, INIT_PATH } from './plan/spec.js';

export type CriuCheck = { ok: true } | { ok: false; reason: string };

/** The reason in `criu check`'s output (pure): its first error, as "vdso: Unexpected rt vDSO area bounds". */
export function criuCheckReason(output: string, status: number | null): string | null {
  if (status === 0 && /Looks good/i.test(output)) return null;
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const err = lines.find((l) => /^Error\b/.test(l)) ?? lines.find((l) => !/^Warn\b/.test(l)) ?? lines[0];
  const said = err?.replace(/^Error\s*(\([^)]*\))?:\s*/, '').trim();
  return said || `it exited with status ${status ?? 'unknown'} and said nothing`;
}

/**
 * The tables in `nft list tables` output that are CRIU's network lock (pure): `CRIU-<pid>`,
 * named after the pid the tree's root had at the dump.
 */
export function lockTables(listing: string): string[] {
  return listing
    .split('\n')
    .map((l) => /^table (inet|ip|ip6) (CRIU-\d+)\s*$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]} ${m[2]}`);
}

/**
 * A restored tree's network namespace unlocked: the dump's `--network-lock nftables` table
 * comes back with the namespace's rules, and CRIU 3.17.1's restore, which looks for a table
 * named after the root's new pid, leaves it (every packet dropped: sendto says EPERM).
 */
export function unlockNetwork(pid: number): void {
  const nft = (args: string[]) => spawnSync('nsenter', ['-t', String(pid), '-n', 'nft', ...args], { encoding: 'utf8' });
  const l = nft(['list', 'tables']);
  if (l.status !== 0) return; // no nft here: nothing of criu's nftables lock either
  for (const t of lockTables(l.stdout)) {
    const d = nft(['delete', 'table', ...t.split(' ')]);
    if (d.status !== 0) throw new Error(`cannot remove CRIU's network lock (table ${t}) of the restored server: ${d.stderr.trim()}`);
  }
}

/** The environment criu takes from its caller that a restore under the monitor must keep. */
export function criuEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return env.CR_IP_TOOL ? [`CR_IP_TOOL=${env.CR_IP_TOOL}`] : [];
}

/** Runs `criu check` (as root; a few hundred milliseconds). */
export function criuCheck(criu = process.env.NOVABOX_CRIU || 'criu'): CriuCheck {
  const r = spawnSync(criu, ['check'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return {
      ok: false,
      reason: code === 'ENOENT' ? `CRIU is not installed (${criu} not found)` : `criu could not run: ${r.error.message}`,
    };
  }
  const reason = criuCheckReason(`${r.stdout ?? ''}\n${r.stderr ?? ''}`, r.status);
  return reason === null ? { ok: true } : { ok: false, reason };
}

/** One dump round's options (criuDumpArgs). */
export interface DumpOptions {
  images: string;
  pre?: boolean;
  prev?: string;
  leaveRunning?: boolean;
  log?: string;
  etcFiles?: boolean;
  /** where its instance data's seed is bound inside (a directory of this host's state root): recorded under SEED_KEY */
  seed?: string;
  /** its directory volumes: each one's mount point inside, recorded under volumeKey(id) */
  volumes?: { id: string; target: string }[];
}

/**
 * One `criu dump` (or `pre-dump`) of a server's tree, pid 1 as seen from the host, as a
 * live migration takes it (pure). What a novabox server needs of it: its cgroup
 * (--manage-cgroups), its network frozen meanwhile (nftables), the mounts bound from the
 * host (its /dev nodes, pid 1's binary at /dev/.novabox-init) left out of the images as
 * external (`mnt[]`: found again by path on restore; those whose host path differs between
 * hosts under a key each: pid 1's binary, the /etc files, the seed, each volume), and its processes' session
 * kept (--shell-job). A pre-dump (--track-mem) leaves the server running and is the parent
 * of the next round (prev: that round's directory, relative to images, as criu wants it).
 */
export function criuDumpArgs(pid: number, o: DumpOptions): string[] {
  return [
    o.pre ? 'pre-dump' : 'dump',
    '-t',
    String(pid),
    '-D',
    o.images,
    '-o',
    o.log ?? 'dump.log',
    '--track-mem',
    ...(o.prev ? ['--prev-images-dir', o.prev] : []),
    ...(o.leaveRunning && !o.pre ? ['--leave-running'] : []),
    '--manage-cgroups',
    '--network-lock',
    'nftables',
    // pid 1's binary under a name of its own, for the target to bind its own copy there
    '--external',
    `mnt[${INIT_PATH}]:${INIT_KEY}`,
    // a bridged server's /etc files, bound from this host's state root: each under a key
    ...(o.etcFiles ? Object.entries(ETC_KEYS).flatMap(([path, key]) => ['--external', `mnt[${path}]:${key}`]) : []),
    ...(o.seed ? ['--external', `mnt[${o.seed}]:${SEED_KEY}`] : []),
    ...(o.volumes ?? []).flatMap((v) => ['--external', `mnt[${v.target}]:${volumeKey(v.id)}`]),
    '--external',
    'mnt[]',
    '--shell-job',
  ];
}

/** A bridged server's /etc files (bound from its directory on the host) and their keys in a dump. */
export const ETC_KEYS = { '/etc/hosts': 'etc-hosts', '/etc/hostname': 'etc-hostname', '/etc/resolv.conf': 'etc-resolv' } as const;

/** The key under which a dump records pid 1's binary's mount (criuDumpArgs). */
export const INIT_KEY = 'novabox-init';

/** The key under which a dump records the instance data's seed mount (a directory bound from the state root). */
export const SEED_KEY = 'nocloud-seed';

/**
 * The key under which a dump records a volume's bind mount: its id, which the volume keeps
 * on the target (the stream carries it), whose directory there is under another state root.
 */
export function volumeKey(id: string): string {
  return `volume-${id}`;
}

/**
 * `criu restore` of those images under `root` (the server's root file system, mounted
 * again on this host from its layers and writable layer), detached: the restored pid 1's
 * host pid goes into pidfile (pure). The host-bound mounts come back from the same host
 * paths (--ext-mount-map auto), but pid 1's binary from this host's own copy (initCopy: its
 * path differs between hosts with different state roots), and the keyed ones (the /etc
 * files, the seed, the volumes) from this host's state root, the cgroup as it was or under
 * cgroupRoot (this host's cgroup for the server).
 */
export function criuRestoreArgs(o: {
  images: string;
  root: string;
  pidfile: string;
  initCopy: string;
  cgroupRoot?: string;
  log?: string;
  /** `--inherit-fd` values: fd[N]:RESOURCE, as `fd[1]:pipe:[1234]` (the server's log pipe) */
  inheritFds?: string[];
  /** a bridged server: its eth0's peer made as hostIf on this host's bridge, its /etc files this host's */
  veth?: { hostIf: string; bridge: string };
  etcFiles?: { hosts: string; hostname: string; resolv: string };
  /** the instance data's seed directory on this host (written for the arrival as a start writes it) */
  seed?: string;
  /** its volumes' directories on this host, by volume id (the import placed their contents) */
  volumes?: { id: string; source: string }[];
}): string[] {
  return [
    'restore',
    '-d',
    '-D',
    o.images,
    '-o',
    o.log ?? 'restore.log',
    '--root',
    o.root,
    '--ext-mount-map',
    `${INIT_KEY}:${o.initCopy}`,
    ...(o.etcFiles
      ? [
          [ETC_KEYS['/etc/hosts'], o.etcFiles.hosts],
          [ETC_KEYS['/etc/hostname'], o.etcFiles.hostname],
          [ETC_KEYS['/etc/resolv.conf'], o.etcFiles.resolv],
        ].flatMap(([key, file]) => ['--ext-mount-map', `${key}:${file}`])
      : []),
    ...(o.seed ? ['--ext-mount-map', `${SEED_KEY}:${o.seed}`] : []),
    ...(o.volumes ?? []).flatMap((v) => ['--ext-mount-map', `${volumeKey(v.id)}:${v.source}`]),
    '--ext-mount-map',
    'auto',
    ...(o.veth ? ['--external', `veth[eth0]:${o.veth.hostIf}@${o.veth.bridge}`] : []),
    '--manage-cgroups',
    ...(o.cgroupRoot ? ['--cgroup-root', o.cgroupRoot] : []),
    '--shell-job',
    '--pidfile',
    o.pidfile,
    ...(o.inheritFds ?? []).flatMap((f) => ['--inherit-fd', f]),
  ];
}

/**
 * The restored server's stdio pipe (pure): pid 1's fd 1 as /proc names it at the dump
 * (`pipe:[1234]`, its log pipe to the source's monitor) becomes the target monitor's log
 * pipe, criu's own fd 1 there (--inherit-fd, as runc restore hands it its stdio pipes).
 * Anything else (a file, /dev/null) has nothing to inherit.
 */
export function inheritedStdio(fd1Link: string | undefined): string[] {
  return fd1Link && /^pipe:\[\d+\]$/.test(fd1Link) ? [`fd[1]:${fd1Link}`] : [];
}

/**
 * The plan of a server's restore (pure): the monitor clones `criu restore` (NB_PLAN_RESTORE)
 * in a mount namespace of its own, where the server's root is mounted again from its layers
 * and writable layer for --root (gone with criu's namespace once the tree has its own), and
 * adopts the restored tree as its init. Stdio: the monitor's log pipe (inheritedStdio).
 */
export function planRestore(o: {
  criu?: string;
  args: string[];
  pidfile: string;
  merged: string;
  overlay: string;
  logPath: string;
  statusPath: string;
  logMaxBytes?: number;
  /** criu's environment besides PATH (CR_IP_TOOL: the iproute2 ip it restores a network namespace with) */
  env?: string[];
  /**
   * A server in its own user namespace (--userns auto): its maps (the range this host
   * leased for it, the dump's) and its rootfs, which the monitor makes as for a start (each
   * layer idmapped, into a scratch namespace of those maps: criu makes the tree's own) and
   * the init attaches on `merged` ('userns', 'mount-fd') in place of the plain overlay.
   */
  userns?: LaunchPlan['userns'];
  /**
   * Host files and directories criu must reach from inside the restored user namespace: a
   * tmpfs (0755) on `dir` in criu's mount namespace, each [source, target, 'dir' if a
   * directory] bound on a file or directory made there.
   */
  external?: { dir: string; binds: [string, string, 'dir'?][] };
}): LaunchPlan {
  const criu = o.criu ?? 'criu';
  return {
    namespaces: ['mount'],
    ops: [
      // criu's mounts stay in its own namespace, never the host's
      { op: 'mount', target: '/', flags: ['rec', 'private'] },
      ...(o.external
        ? ([
            {
              op: 'mount',
              source: 'tmpfs',
              target: o.external.dir,
              fstype: 'tmpfs',
              flags: ['nosuid', 'nodev'],
              data: 'mode=0755,size=64k',
            },
            ...o.external.binds.flatMap(([source, target, kind]): Op[] => [
              kind === 'dir'
                ? { op: 'mkdir', path: target, mode: 0o555 }
                : { op: 'mknod', path: target, mode: 0o444, type: 'file', major: 0, minor: 0 },
              { op: 'mount', source, target, flags: ['bind'] },
            ]),
          ] satisfies Op[])
        : []),
      ...(o.userns
        ? ([{ op: 'userns' }, { op: 'mount-fd', target: o.merged }] satisfies Op[])
        : ([{ op: 'mount', source: 'overlay', target: o.merged, fstype: 'overlay', flags: [], data: o.overlay }] satisfies Op[])),
      { op: 'exec', file: criu, searchPath: DEFAULT_PATH, argv: [criu, ...o.args], env: [`PATH=${DEFAULT_PATH}`, ...(o.env ?? [])] },
    ],
    ...(o.userns ? { userns: o.userns } : {}),
    tty: false,
    logPath: o.logPath,
    logMaxBytes: o.logMaxBytes ?? 1 << 20,
    statusPath: o.statusPath,
    restorePidfile: o.pidfile,
  };
}

/**
 * Why a dump or restore failed, from its log (pure): the last error criu wrote before its
 * "FAILED" line, without its source location; the iptables probes it logs as errors on a
 * host without iptables (a dump still succeeds) are not the reason.
 */
export function criuLogReason(log: string): string | null {
  const errors = log
    .split('\n')
    .map((l) => l.trim().replace(/^\d+:\s*/, ''))
    .filter((l) => /^Error\b/.test(l))
    .map((l) => l.replace(/^Error\s*(\([^)]*\))?:\s*/, '').trim())
    .filter((l) => !/FAILED\.?$/.test(l) && !/ip6?tables(-legacy)?-save|^exited, status=/.test(l));
  return errors.at(-1) ?? null;
}

export type CriuRun = { ok: true; ms: number } | { ok: false; ms: number; reason: string };

/** Runs criu with these arguments (as root); its log is `log` in `images`. */
export function runCriu(args: string[], images: string, log: string, criu = process.env.NOVABOX_CRIU || 'criu'): CriuRun {
  const t0 = performance.now();
  const r = spawnSync(criu, args, { encoding: 'utf8', timeout: 120_000 });
  const ms = performance.now() - t0;
  if (r.status === 0) return { ok: true, ms };
  let text = '';
  try {
    text = readFileSync(join(images, log), 'utf8');
  } catch {
    /* no log: criu did not start */
  }
  const reason = criuLogReason(text) ?? r.error?.message ?? (`${r.stderr ?? ''}`.trim() || `criu exited with status ${r.status}`);
  return { ok: false, ms, reason };
}
