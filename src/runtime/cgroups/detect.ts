/**
 * Which cgroup layout does this host have? Read from /proc/self/mountinfo (proc(5)):
 *   v2      /sys/fs/cgroup is cgroup2 (controllers listed in its cgroup.controllers)
 *   v1      only `cgroup` mounts, one per hierarchy; a hierarchy may carry several
 *           controllers (cpu,cpuacct) or none (name=systemd, a named hierarchy)
 *   hybrid  v1 controller mounts plus a cgroup2 mount beside them (/sys/fs/cgroup/unified)
 */
import { readFileSync } from 'node:fs';
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
    const e = parseLine(line);
    if (e) entries.push(e);
  }
  return entries;
}

function parseLine(line: string): MountEntry | undefined {
  const fields = line.trim().split(' ');
  const dash = fields.indexOf('-', 6);
  if (dash < 0 || fields.length < dash + 4) return undefined;
  return {
    root: unescapeOctal(fields[3]),
    mountPoint: unescapeOctal(fields[4]),
    fsType: fields[dash + 1],
    superOptions: fields[dash + 3].split(','),
  };
}

/**
 * Only the lines of cgroup and cgroup2 mounts, found by their " - cgroup" separator (paths
 * cannot hold it: the kernel escapes their spaces), without splitting the whole table:
 * a start parses a handful of lines, not every mount of the host.
 */
export function cgroupLines(text: string): string[] {
  const lines: string[] = [];
  for (let at = text.indexOf(' - cgroup'); at >= 0; at = text.indexOf(' - cgroup', at + 9)) {
    const c = text.charCodeAt(at + 9); // ' ' (cgroup) or '2' (cgroup2), not e.g. a "cgroupfs" type
    if (c !== 32 && !(c === 50 && text.charCodeAt(at + 10) === 32)) continue;
    const start = text.lastIndexOf('\n', at) + 1;
    const end = text.indexOf('\n', at);
    lines.push(text.slice(start, end < 0 ? undefined : end));
  }
  return lines;
}

/** The kernel writes space, tab, newline and backslash in paths as \040 \011 \012 \134. */
function unescapeOctal(s: string): string {
  if (!s.includes('\\')) return s; // the usual path: no regular expression on the start path
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

const readText = (path: string): string => readFileSync(path, 'utf8');

/**
 * A detector that keeps its result and reuses it while the mount table's cgroup lines
 * are the same: a long-running process (`novabox serve`) sees a v1 hierarchy mounted or
 * unmounted later (a hybrid host's hugetlb, by systemd or a benchmark kit) at its next
 * call, where a layout kept forever made every start fail until a restart. Checking
 * costs one read of mountinfo and a scan of it for " - cgroup", a few microseconds.
 */
export function cachingDetector(readMountinfo: () => string, readFile: (path: string) => string = readText): () => CgroupLayout {
  let cached: { key: string; layout: CgroupLayout } | undefined;
  return () => {
    const lines = cgroupLines(readMountinfo());
    const key = lines.join('\n');
    if (cached?.key !== key) cached = { key, layout: layoutFrom(lines, readFile) };
    return cached.layout;
  };
}

const hostLayout = cachingDetector(() => readText('/proc/self/mountinfo'));

/**
 * The host's layout (the same object while it is unchanged: see cachingDetector), or the
 * layout of a given mountinfo text. `readFile` reads `<v2 root>/cgroup.controllers` (a
 * fixture in unit tests).
 */
export function detectCgroups(mountinfo?: string, readFile: (path: string) => string = readText): CgroupLayout {
  if (mountinfo !== undefined) return layoutFrom(cgroupLines(mountinfo), readFile);
  return hostLayout();
}

function layoutFrom(lines: string[], readFile: (path: string) => string): CgroupLayout {
  const mounts: Record<string, string> = {};
  const named: Record<string, string> = {};
  const cgroup2: string[] = [];

  for (const line of lines) {
    const entry = parseLine(line);
    if (!entry) continue;
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
  // one line of names separated by spaces
  return readFile(`${root}/cgroup.controllers`).trim().split(' ').filter(Boolean);
}
