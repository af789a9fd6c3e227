/**
 * One container on this host: spec -> plan -> spawn -> supervise -> clean up.
 * `novabox run` drives it in the foreground; the server layer (compute) will reuse
 * createContainer/startContainer pieces for long-lived servers.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { BadRequest, Conflict, OpFailed } from '../errors.js';
import { errnoName, errnoText } from '../sys/errno.js';
import { describeOp, type LaunchPlan } from '../sys/ops.js';
import type { CgroupHandle, CgroupLayout, CgroupLimits } from './cgroups/types.js';
import { placeLaunch } from './cgroups/placement.js';
import {
  DEFAULT_CAPABILITIES,
  DEFAULT_PATH,
  DEFAULT_RLIMITS,
  clampRlimits,
  parseHardLimits,
  planLaunch,
  type ContainerSpec,
  type Idmap,
} from './plan/index.js';
import { cgroupPathOf, paths } from '../util/paths.js';
import { writeFileAtomic } from '../util/fs.js';
import { randomHex64 } from '../util/random.js';
import { isoTime } from '../util/time.js';
import { rmTree } from '../util/rmtree.js';
import type { ImageConfig } from '../model/records.js';
import { isSameProcess } from './proc.js';
import { resolveUser } from './user.js';
import type { NetworkMode } from './network/config.js';
import type { Attachment } from './network/bridge.js';
import { etcPaths } from './network/etc-files.js';
import { kernelAtLeast } from './kernel.js';

export interface RunRequest {
  /** image name, or undefined with rootfsDir */
  image?: string;
  /** use this directory as the only (read-only) layer, like podman --rootfs */
  rootfsDir?: string;
  command: string[];
  name?: string;
  hostname?: string;
  memoryBytes?: number;
  cpuQuota?: { quotaUs: number; periodUs: number };
  pidsLimit?: number;
  env: string[];
  workdir?: string;
  user?: string;
  interactive: boolean;
  tty: boolean;
  network: NetworkMode;
  readOnly: boolean;
  remove: boolean;
  /** -v SRC:DST[:ro|:rw] */
  volumes?: string[];
  /** --security-opt seccomp=unconfined */
  seccomp?: boolean;
  /** the container's id, when chosen before (its id range lease names it) */
  id?: string;
  /** its own user namespace with this id range (its lease); none: --userns host */
  idmap?: Idmap;
}

export interface ContainerState {
  id: string;
  name: string;
  image: string;
  command: string[];
  created: string;
  remove: boolean;
  cgroupPath: string;
  status: 'created' | 'running' | 'exited';
  monitorPid?: number;
  monitorStart?: number;
  initPid?: number;
  initStart?: number;
  bootId?: string;
  exitCode?: number;
  finished?: string;
  /** published ports, `0.0.0.0:8080->80/tcp` (run -p) */
  ports?: string[];
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/** A container id: 64 hex digits. */
export function newId(): string {
  return randomHex64();
}
const HOSTNAME = /^(?=.{1,64}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*$/;

export function containerDirs(id: string) {
  const dir = paths.container(id); // normalised by join: the rest are plain suffixes
  return {
    dir,
    upper: `${dir}/upper`,
    work: `${dir}/work`,
    merged: `${dir}/rootfs`,
    state: `${dir}/state.json`,
    status: `${dir}/exit-status`,
  };
}

export interface Prepared {
  state: ContainerState;
  spec: ContainerSpec;
  plan: LaunchPlan;
  limits: CgroupLimits;
  /**
   * bridge network: take the lease (called once the container's directory exists, so
   * that a concurrent cleanup counts the owner as alive), and give it back
   */
  network?: { allocate: () => Attachment; release: () => void; attached?: () => void };
}

/** `-v SRC:DST[:ro|:rw]`: an existing absolute host path onto an absolute container path. */
export function parseVolume(spec: string): { source: string; target: string; readOnly: boolean; isDir: boolean } {
  const parts = spec.split(':');
  const mode = parts.length === 3 ? parts[2] : parts.length === 2 ? 'rw' : undefined;
  if (mode === undefined || (mode !== 'ro' && mode !== 'rw')) {
    throw new BadRequest(`invalid volume ${JSON.stringify(spec)}: expected /host/path:/container/path[:ro]`);
  }
  const [source, target] = parts;
  if (!source.startsWith('/') || !target.startsWith('/')) {
    throw new BadRequest(`invalid volume ${JSON.stringify(spec)}: both paths must be absolute`);
  }
  if (target.split('/').includes('..')) throw new BadRequest(`invalid volume ${JSON.stringify(spec)}: ".." in the container path`);
  if (!existsSync(source)) throw new BadRequest(`invalid volume ${JSON.stringify(spec)}: ${source} does not exist`);
  return { source: resolvePath(source), target, readOnly: mode === 'ro', isDir: statSync(source).isDirectory() };
}

/** Checks that need no image: run before anything is resolved, built or created. */
export function validateRequest(req: Pick<RunRequest, 'name' | 'hostname' | 'env' | 'workdir' | 'volumes'>): void {
  for (const v of req.volumes ?? []) parseVolume(v);
  if (req.name !== undefined && !NAME.test(req.name)) {
    throw new BadRequest(`invalid container name ${JSON.stringify(req.name)}: use letters, digits, '_', '.' and '-' (at most 63)`);
  }
  if (req.hostname !== undefined && !HOSTNAME.test(req.hostname)) {
    throw new BadRequest(`invalid hostname ${JSON.stringify(req.hostname)}`);
  }
  for (const e of req.env) {
    if (!/^[^=\0]+=/.test(e)) throw new BadRequest(`invalid environment entry ${JSON.stringify(e)}: expected NAME=value`);
  }
  if (req.workdir !== undefined && !req.workdir.startsWith('/')) {
    throw new BadRequest(`invalid working directory ${JSON.stringify(req.workdir)}: it must be absolute`);
  }
}

/**
 * Plan a request that validateRequest() already accepted (before anything was resolved
 * or built). Pure but for reading the image's /etc/passwd and our limits.
 */
export function prepare(
  req: RunRequest,
  image: { name: string; layerDirs: string[]; config: ImageConfig },
  layout: CgroupLayout,
): Prepared {
  const id = req.id ?? newId();
  const name = req.name ?? `nb-${id.slice(0, 12)}`;
  const hostname = req.hostname ?? id.slice(0, 12);
  const command = req.command.length ? [...(image.config.entrypoint ?? []), ...req.command] : image.config.cmd;
  if (!command.length) throw new BadRequest(`image "${image.name}" has no default command: give one`);

  const user = resolveUser(req.user ?? image.config.user ?? '', image.layerDirs);
  const env = mergeEnv([
    `PATH=${DEFAULT_PATH}`,
    ...image.config.env,
    `HOSTNAME=${hostname}`,
    `HOME=${user.home}`,
    ...(req.tty ? ['TERM=xterm'] : []),
    ...req.env,
  ]);
  const cwd = req.workdir ?? (image.config.workingDir || '/');
  if (!cwd.startsWith('/')) throw new BadRequest(`invalid working directory ${JSON.stringify(cwd)}: it must be absolute`);

  const d = containerDirs(id);
  const spec: ContainerSpec = {
    id,
    hostname,
    rootfs: {
      mergedDir: d.merged,
      lowerDirs: image.layerDirs,
      upperDir: d.upper,
      workDir: d.work,
      readOnly: req.readOnly,
      // overlayfs takes `volatile` since Linux 5.10 (older kernels refuse the mount)
      volatile: req.remove && kernelAtLeast(5, 10),
    },
    process: {
      args: command,
      env,
      cwd,
      uid: user.uid,
      gid: user.gid,
      additionalGids: user.additionalGids,
      tty: req.tty ? terminalSize() : false,
    },
    network: req.network === 'novabox' ? 'bridge' : req.network,
    etcFiles: req.network === 'novabox' ? etcPaths(d.dir) : undefined,
    cgroups: layout,
    capabilities: DEFAULT_CAPABILITIES,
    rlimits: clampRlimits(DEFAULT_RLIMITS, parseHardLimits(readFileSync('/proc/self/limits', 'utf8'))),
    volumes: (req.volumes ?? []).map(parseVolume),
    seccomp: req.seccomp !== false,
    idmap: req.idmap,
  };
  const limits: CgroupLimits = {
    memoryBytes: req.memoryBytes,
    swapOff: req.memoryBytes !== undefined,
    cpuQuotaUs: req.cpuQuota?.quotaUs,
    cpuPeriodUs: req.cpuQuota?.periodUs,
    pidsMax: req.pidsLimit,
  };
  const state: ContainerState = {
    id,
    name,
    image: image.name,
    command,
    created: isoTime(),
    remove: req.remove,
    cgroupPath: cgroupPathOf(id),
    status: 'created',
  };
  const plan = placeLaunch(planLaunch(spec), layout, state.cgroupPath);
  return { state, spec, plan, limits };
}

/** The size of our terminal, or the classic 24x80 when we have none (or it says 0x0). */
function terminalSize(): { rows: number; cols: number } {
  const out = process.stdout;
  return { rows: (out.isTTY && out.rows) || 24, cols: (out.isTTY && out.columns) || 80 };
}

/** Later entries win, as with `docker run -e`. */
function mergeEnv(entries: string[]): string[] {
  const m = new Map<string, string>();
  for (const e of entries) {
    const i = e.indexOf('=');
    m.set(e.slice(0, i), e);
  }
  return [...m.values()];
}

/** The record of a container. Not fsynced: after a host crash its processes are gone too. */
export function writeState(s: ContainerState): void {
  writeFileAtomic(containerDirs(s.id).state, JSON.stringify(s) + '\n', 0o644, false);
}

export function readState(id: string): ContainerState | undefined {
  try {
    return JSON.parse(readFileSync(containerDirs(id).state, 'utf8')) as ContainerState;
  } catch {
    return undefined;
  }
}

/** Reserve a name atomically: symlink(2) fails with EEXIST if another container has it. */
export function reserveName(name: string, id: string): void {
  mkdirSync(paths.names(), { recursive: true });
  try {
    symlinkSync(id, join(paths.names(), name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new Conflict(`container name "${name}" is already in use`, { hint: 'remove it with "novabox rm" or pick another --name' });
    }
    throw err;
  }
}

export function releaseName(name: string, id: string): void {
  const link = join(paths.names(), name);
  try {
    if (readlinkSafe(link) === id) unlinkSync(link);
  } catch {
    /* already gone */
  }
}

function readlinkSafe(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

export function lookupName(nameOrId: string): string | undefined {
  const link = readlinkSafe(join(paths.names(), nameOrId));
  if (link) return link;
  if (/^[0-9a-f]{6,64}$/.test(nameOrId)) {
    const hits = listContainerIds().filter((id) => id.startsWith(nameOrId));
    if (hits.length > 1) throw new Conflict(`"${nameOrId}" matches ${hits.length} containers: give more of the id`);
    return hits[0];
  }
  return undefined;
}

export function listContainerIds(): string[] {
  try {
    return readdirSync(paths.containers()).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    return [];
  }
}

/**
 * Does a container still own what it holds (its veth, its address lease)? Yes while its
 * monitor lives, and while it is being set up (no record yet, or "created" for < 60 s).
 */
export function isContainerLive(id: string): boolean {
  const s = readState(id);
  if (!s) return existsSync(containerDirs(id).dir) && Date.now() - dirAge(containerDirs(id).dir) < 60_000;
  if (s.status === 'created') return Date.now() - Date.parse(s.created) < 60_000;
  return s.status === 'running' && isSameProcess(s.monitorPid, s.monitorStart, s.bootId);
}

function dirAge(dir: string): number {
  try {
    return statSync(dir).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Remove what a container made: its cgroup, its directory, its name. Idempotent.
 * Mounts need no undo: the overlay and everything else were mounted inside the
 * container's own mount namespace, which the kernel drops with its last process.
 */
export function destroyContainer(s: ContainerState, cgroup: CgroupHandle | undefined): Error[] {
  const errors: Error[] = [];
  try {
    cgroup?.remove();
  } catch (err) {
    errors.push(err as Error);
  }
  try {
    rmTree(containerDirs(s.id).dir);
  } catch (err) {
    errors.push(err as Error);
  }
  releaseName(s.name, s.id);
  return errors;
}

/** NB_EV_OPFAIL's op index when the init refused the plan sent after the spawn (lateOps) */
const OPFAIL_PLAN = -2;

/** An op failure from the init, explained with the plan that TypeScript made. */
/** What the monitor was doing for the 'userns' op when it failed (NB_EV_OPFAIL's c - 1, userns.c). */
const USERNS_STEPS = ['', 'idmap an image layer', 'mount the overlay', 'make its tmpfs', 'hand over its rootfs'];

/**
 * `monitorStep`: NB_EV_OPFAIL's c, 1 + the step of the monitor's own work for the op
 * (the 'userns' op's rootfs), 0 when the op itself failed.
 */
export function opFailure(plan: LaunchPlan, opIndex: number, errno: number, monitorStep = 0): OpFailed {
  const name = errnoName(errno);
  if (plan.ops[opIndex]?.op === 'userns' && monitorStep > 0) {
    const step = monitorStep - 1;
    if (step === 1 && (name === 'EINVAL' || name === 'ENOSYS' || name === 'EPERM' || name === 'EOPNOTSUPP')) {
      return new OpFailed(
        `cannot give the container its own user namespace: this kernel or the filesystem of the image's layers cannot idmap a mount (mount_setattr with MOUNT_ATTR_IDMAP, Linux 5.12; overlayfs over idmapped layers, Linux 5.19): ${errnoText(errno)}; use --userns host (root inside is then root on the host), or keep the state directory on ext4, xfs or btrfs`,
        opIndex,
        name,
      );
    }
    return new OpFailed(
      `cannot set up the container's user namespace: ${USERNS_STEPS[step] ?? 'its rootfs'}: ${errnoText(errno)}`,
      opIndex,
      name,
    );
  }
  if (opIndex === OPFAIL_PLAN) {
    return new OpFailed(`the container init refused its launch plan: ${errnoText(errno)}`, opIndex, name);
  }
  if (opIndex < 0) {
    return new OpFailed(`cannot attach the terminal: ${errnoText(errno)}`, opIndex, name);
  }
  const op = plan.ops[opIndex];
  const what = op ? describeOp(op) : `op ${opIndex}`;
  if (op?.op === 'hook') {
    // native-bindings/include/novabox.h NB_HOOK_EXITED, NB_HOOK_KILLED
    // worded as the createRuntime hooks' failures are (runtime/oci/container.ts runHook)
    const why =
      errno >= 0x20000
        ? `killed by signal ${errno & 0xffff}`
        : errno >= 0x10000
          ? `exit status ${errno & 0xffff}`
          : name === 'ETIMEDOUT'
            ? `it did not end within its timeout of ${op.timeoutS} s, and was killed`
            : errnoText(errno);
    return new OpFailed(`${what} failed: ${why}`, opIndex, errno >= 0x10000 ? 'EHOOK' : name);
  }
  return new OpFailed(`${what}: ${errnoText(errno)} (op ${opIndex + 1} of ${plan.ops.length})`, opIndex, name);
}

/** Exit status for a failed op: 127 command not found, 126 not executable, 125 anything else (as podman). */
export function opFailureExitCode(plan: LaunchPlan, opIndex: number, errno: number): number {
  const op = plan.ops[opIndex];
  if (op?.op === 'exec') {
    const n = errnoName(errno);
    if (n === 'ENOENT' || n === 'ENOTDIR') return 127;
    if (n === 'EACCES' || n === 'ENOEXEC' || n === 'EISDIR') return 126;
  }
  return 125;
}
