/**
 * Which cgroup layout does this host have? Read from /proc/self/mountinfo (proc(5)):
 *   v2      /sys/fs/cgroup is cgroup2 (controllers listed in its cgroup.controllers)
 *   v1      only `cgroup` mounts, one per hierarchy; a hierarchy may carry several
 *           controllers (cpu,cpuacct) or none (name=systemd, a named hierarchy)
 *   hybrid  v1 controller mounts plus a cgroup2 mount beside them (/sys/fs/cgroup/unified)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NovaboxError } from '../../errors.js';
import type { CgroupLayout } from './types.js';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** Controllers a v1 `cgroup` mount can carry; its other super options are mount flags. */
export const V1_CONTROLLER_NAMES = new Set([
  'blkio',
  'cpu',
  'cpuacct',
  'cpuset',
  'debug',
  'devices',
  'freezer',
  'hugetlb',
  'memory',
  'misc',
  'net_cls',
  'net_prio',
  'perf_event',
  'pids',
  'rdma',
]);

export interface MountEntry {
  /** path of the mount's root inside its file system ("/" unless bind-mounted or in a cgroup namespace) */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** proc(5): `36 35 98:0 /root /mnt opts [optional...] - fstype source superopts`. */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 4) continue;
    entries.push({
      root: unescapeOctal(fields[3]),
      mountPoint: unescapeOctal(fields[4]),
      fsType: fields[dash + 1],
      superOptions: fields[dash + 3].split(','),
    });
  }
  return entries;
}

/** The kernel writes space, tab, newline and backslash in paths as \040 \011 \012 \134. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

const readText = (path: string): string => readFileSync(path, 'utf8');

let cached: CgroupLayout | undefined;

/**
 * The host's layout; the result for the real /proc/self/mountinfo is cached per process.
 * `readFile` reads `<v2 root>/cgroup.controllers` (a fixture in unit tests).
 */
export function detectCgroups(
  mountinfo?: string,
  readFile: (path: string) => string = readText,
): CgroupLayout {
  if (mountinfo !== undefined) return layoutFrom(parseMountinfo(mountinfo), readFile);
  cached ??= layoutFrom(parseMountinfo(readText('/proc/self/mountinfo')), readFile);
  return cached;
}

function layoutFrom(entries: MountEntry[], readFile: (path: string) => string): CgroupLayout {
  const mounts: Record<string, string> = {};
  const named: Record<string, string> = {};
  const cgroup2: string[] = [];

  for (const entry of entries) {
    if (entry.fsType === 'cgroup2') cgroup2.push(entry.mountPoint);
    if (entry.fsType !== 'cgroup') continue;
    for (const option of entry.superOptions) {
      if (V1_CONTROLLER_NAMES.has(option)) prefer(mounts, option, entry.mountPoint);
      else if (option.startsWith('name=')) prefer(named, option.slice(5), entry.mountPoint);
    }
  }

  const v2Root = cgroup2.includes(CGROUP_ROOT) ? CGROUP_ROOT : undefined;
  const unified = v2Root ?? preferredMount(cgroup2);
  if (v2Root || (Object.keys(mounts).length === 0 && unified)) {
    const root = unified!;
    return { kind: 'v2', root, controllers: readControllers(root, readFile) };
  }
  if (Object.keys(mounts).length === 0) {
    throw new NovaboxError('internal', 'no cgroup file system is mounted (none listed in /proc/self/mountinfo)', {
      hint: 'mount one: mount -t cgroup2 none /sys/fs/cgroup',
    });
  }
  return {
    kind: unified ? 'hybrid' : 'v1',
    mounts,
    ...(unified ? { unified } : {}),
    ...(Object.keys(named).length > 0 ? { named } : {}),
  };
}

/**
 * A hierarchy can be mounted more than once (bind mounts, container tooling): keep the one
 * under /sys/fs/cgroup, else the first; a later mount on the same point shadows the earlier.
 */
function prefer(map: Record<string, string>, key: string, mountPoint: string): void {
  const current = map[key];
  if (current === undefined || current === mountPoint || (!isUnderRoot(current) && isUnderRoot(mountPoint))) {
    map[key] = mountPoint;
  }
}

function preferredMount(mountPoints: string[]): string | undefined {
  return mountPoints.find(isUnderRoot) ?? mountPoints[0];
}

function isUnderRoot(path: string): boolean {
  return path === CGROUP_ROOT || path.startsWith(`${CGROUP_ROOT}/`);
}

function readControllers(root: string, readFile: (path: string) => string): string[] {
  return readFile(join(root, 'cgroup.controllers')).split(/\s+/).filter(Boolean);
}
