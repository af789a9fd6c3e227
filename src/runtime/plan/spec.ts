import type { Capability, Namespace } from '../../sys/ops.js';
import type { CgroupLayout } from '../cgroups/types.js';

/** Everything the planner needs to know about one container; no defaults left to fill. */
export interface ContainerSpec {
  id: string;
  hostname: string;
  rootfs: {
    /** overlay mount point, becomes the container's / */
    mergedDir: string;
    /** read-only image layers, topmost first */
    lowerDirs: string[];
    upperDir: string;
    workDir: string;
    readOnly: boolean;
    /**
     * Ephemeral writable layer: a tmpfs mounted on this host path inside the container's
     * own mount namespace (invisible on the host, gone with the namespace); upperDir and
     * workDir are made inside it.
     */
    tmpfs?: { dir: string; sizeBytes?: number };
    /**
     * The writable layer dies with the container (`run --rm`): overlay's `volatile` (Linux
     * 5.10) skips syncing the upper layer's filesystem when the overlay goes away, which
     * otherwise makes every exit wait for the host disk.
     */
    volatile?: boolean;
  };
  process: {
    args: string[];
    env: string[];
    cwd: string;
    uid: number;
    gid: number;
    additionalGids: number[];
    /** a terminal of this size, or none */
    tty: false | { rows: number; cols: number };
  };
  /** bridge: a new network namespace that the CLI gives a veth before GO (runtime/network) */
  network: 'none' | 'host' | 'bridge';
  /** host files bound over /etc/hosts, /etc/hostname and /etc/resolv.conf (bridge network) */
  etcFiles?: { hosts: string; hostname: string; resolv: string };
  /** the host's cgroup layout decides what /sys/fs/cgroup looks like inside */
  cgroups: CgroupLayout;
  capabilities: Capability[];
  rlimits: { resource: 'nofile' | 'nproc' | 'core'; soft: bigint; hard: bigint }[];
  logPath?: string;
  statusPath?: string;
  /** the host's novabox-init: pid 1 executed from the monitor's sealed memfd copy of this
   *  file (nothing of it is mounted inside); servers use initCopy instead (CRIU) */
  initBinary?: string;
  /**
   * A per-host copy of novabox-init (host root's, mode 0555, not a file the host runs),
   * bound read-only at /dev/.novabox-init and executed from there (initBinary is then
   * ignored): a file CRIU can restore pid 1 from (3.17.1 cannot restore a memfd
   * executable), still one the server cannot write (a read-only mount; under --userns auto
   * not its owner either) and never the host's own binary (CVE-2019-5736).
   */
  initCopy?: string;
  /** novabox's default seccomp filter (false: --security-opt seccomp=unconfined) */
  seccomp?: boolean;
  /**
   * A user namespace of its own: ids 0..size-1 inside are uidBase.. and gidBase.. on the
   * host (an isolated range from root's /etc/subuid and /etc/subgid, allocated by the
   * caller). Image layers are idmapped into it, never chowned; the writable layer holds
   * host ids. Absent: --userns host, root inside is root on the host.
   */
  idmap?: Idmap;
  /**
   * A system container: pid 1 is the image's own init (systemd), executed from the image
   * (no novabox-init), with what systemd needs in a container as LXC and Incus give it
   * (see planSystem in ./system.ts): /run and /run/lock tmpfs, a writable delegated cgroup
   * subtree, /dev/console a pty whose output the monitor logs, the system seccomp variant.
   * Only in a user namespace of its own (compute refuses it with --userns host).
   */
  system?: boolean;
  /**
   * A system container's boot id: this host file (one random UUID, new at each start) is
   * bound read-only over /proc/sys/kernel/random/boot_id, as LXC does, so that each start
   * is a boot of its own to systemd and journald (`journalctl -b -1` is the last one).
   */
  bootIdFile?: string;
  /** host directories or files bound into the container (-v SRC:DST[:ro]) */
  volumes?: { source: string; target: string; readOnly: boolean; isDir: boolean }[];
}

/** A container's id range: inside ids 0..size-1 are uidBase+i / gidBase+i on the host. */
export interface Idmap {
  uidBase: number;
  gidBase: number;
  size: number;
}

/** argv[0] of a server's pid 1 */
export const INIT_NAME = 'novabox-init';

/** Where a server's pid 1 runs from with initCopy: the copy, bound read-only. */
export const INIT_PATH = '/dev/.novabox-init';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Podman's default capability set (containers.conf): runc's old default minus
 * AUDIT_WRITE, MKNOD, NET_RAW. Without MKNOD no device node can be made inside, which
 * matters on cgroup v2 where device access is not filtered by a controller file.
 */
export const DEFAULT_CAPABILITIES: Capability[] = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
];

/** Namespaces in clone order; cgroup is unshared by the init itself once placed (see planLaunch). */
export function namespacesFor(spec: ContainerSpec): Namespace[] {
  // the user namespace is made first by clone(2) whatever the order, and owns the others
  const ns: Namespace[] = spec.idmap ? ['user', 'mount', 'uts', 'ipc', 'pid'] : ['mount', 'uts', 'ipc', 'pid'];
  if (spec.network !== 'host') ns.push('net');
  return ns;
}
