/**
 * The OCI lifecycle on novabox's start path (runtime-spec "Lifecycle"): create, start,
 * state, kill, delete, one directory per container under the runtime's root.
 *
 *  novabox-oci create                  monitor (C)                 init (C)
 *  planOci(config.json), cgroup steps
 *  nb_spawn(plan with NB_PLAN_DETACH) ▶ cgroup, clone ───────────▶ waits for 'R'
 *  'R' ─────────────────────────────────────────────────────────▶ opens a writer of its own
 *  ◀── NB_EV_PID                                                    GO pipe; ops (mounts,
 *                                                                   pivot_root, ids, caps)
 *  ◀── NB_EV_GATE (or NB_EV_OPFAIL) ── exits: the init is now    ◀── "at the gate"
 *  state.json, pid file; exit            the engine's (subreaper)   waits for 'G'
 *  novabox-oci start
 *  'G' into /proc/<init>/fd/5 ──────────────────────────────────▶ execve
 *
 * No novabox process stays behind the container: as with runc and crun, its init is reaped
 * by the engine's shim (a subreaper), which learns its exit status that way; a monitor
 * between them would keep it from ever seeing it. `delete` removes the cgroup.
 */
import {
  closeSync,
  existsSync,
  rmSync,
  constants as fsConstants,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmdirSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { BadRequest, Conflict, NotFound, NovaboxError } from '../../errors.js';
import { MONITOR_EVENT, readEvent } from '../../sys/events.js';
import * as native from '../../sys/native.js';
import { writeFileAtomic } from '../../util/fs.js';
import { rmTree } from '../../util/rmtree.js';
import { cgroupDriver } from '../cgroups/index.js';
import { placeLaunch } from '../cgroups/placement.js';
import { opFailure } from '../container.js';
import { awaitPlacedInit, readyEarly, spawnMonitor } from '../launch.js';
import { readProcStart, readProcState } from '../proc.js';
import type { LaunchPlan, Namespace } from '../../sys/ops.js';
import { ALL_LIMIT_NAMES, parseHardLimits } from '../plan/index.js';
import {
  type HostRlimits,
  OCI_VERSION,
  ociLimits,
  planOci,
  planOciExec,
  seccompOp,
  type OciConfig,
  type OciHook,
  type OciHooks,
  type OciProcess,
} from './plan.js';
import { execFileSync, spawnSync } from 'node:child_process';

export type OciStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** What `create` records in <root>/<id>/state.json. */
export interface OciRecord {
  id: string;
  bundle: string;
  rootfs: string;
  /** the init (0 while creating) and its start time (/proc/<pid>/stat field 22) */
  pid: number;
  pidStart: number;
  /** the creating CLI, while creating: a dead creator leaves a stopped container */
  creator: number;
  creatorStart: number;
  cgroupPath: string;
  /** every directory of the cgroup (the driver's removalDirs()), and with a relative
   *  cgroupsPath its novabox-oci parents: what bin/novabox-oci's `delete` removes in C */
  cgroupDirs?: string[];
  cgroupParents?: string[];
  /** readlink of the init's GO pipe (/proc/<pid>/fd/5): `start` writes into that pipe only */
  gate: string;
  created: string;
  annotations: Record<string, string>;
  /** poststart and poststop, run by `start` and `delete` */
  hooks?: Pick<OciHooks, 'poststart' | 'poststop'>;
  /**
   * a container without a mount namespace of its own: the mount points under its rootfs
   * before `create` (the engine's), which `delete` keeps while it detaches every other
   * mount there (the ones its init made in the host's namespace)
   */
  hostMountsBefore?: string[];
}

/**
 * A relative cgroupsPath's parents, from the leaf's up to `novabox-oci`, each one's
 * directories (every hierarchy): what `delete` removes once empty. An absolute one: none.
 */
function parentDirs(cgroupPath: string): string[] {
  if (!cgroupPath.startsWith('novabox-oci/')) return [];
  const segments = cgroupPath.split('/');
  const out: string[] = [];
  for (let n = segments.length - 1; n >= 1; n--) out.push(...cgroupDriver().open(segments.slice(0, n).join('/')).dirs());
  return out;
}

/** The mount points below `dir` in this mount namespace, in mountinfo's order (parents first). */
function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  let real: string;
  try {
    real = realpathSync(dir); // mountinfo names the real path ("bundle/." or a symlink resolved)
  } catch {
    return out;
  }
  if (real === '/') return out; // refused by create: the host's own mounts are not the container's
  const prefix = `${real}/`;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const at = line.split(' ')[4];
    if (!at) continue;
    const path = at.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (path.startsWith(prefix)) out.push(path);
  }
  return out;
}

/** Detach the mounts a container without a mount namespace made under its rootfs, last first. */
function undoHostMounts(rootfs: string, before: string[]): void {
  const made = mountsUnder(rootfs).filter((m) => !before.includes(m));
  for (const m of made.reverse()) {
    try {
      execFileSync('umount', ['-l', m], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch {
      /* gone with its parent's detach */
    }
  }
}

/** The OCI state (runtime-spec "State"), as `state` prints it. */
export interface OciState {
  ociVersion: string;
  id: string;
  status: OciStatus;
  pid: number;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;
const GO_FD = 5;

export function checkId(id: string): void {
  if (!ID.test(id)) throw new BadRequest(`invalid container id "${id}": use letters, digits, '_', '.', '+' and '-' (at most 128)`);
}

function dirOf(root: string, id: string): string {
  checkId(id);
  return join(root, id);
}

function readRecord(root: string, id: string): OciRecord {
  const dir = dirOf(root, id);
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as OciRecord;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      // a create between its mkdir and its first record, or one killed there
      try {
        statSync(dir);
      } catch {
        throw new NotFound(`container "${id}" does not exist`);
      }
      return {
        id,
        bundle: '',
        rootfs: '',
        pid: 0,
        pidStart: 0,
        creator: 0,
        creatorStart: 0,
        cgroupPath: '',
        gate: '',
        created: '',
        annotations: {},
      };
    }
    throw new NovaboxError('internal', `cannot read the state of container "${id}": ${(err as Error).message}`);
  }
}

function alive(pid: number, start: number): boolean {
  return pid > 0 && readProcStart(pid) === start;
}

export function statusOf(root: string, r: OciRecord): OciStatus {
  if (r.pid === 0) return r.creator > 0 && alive(r.creator, r.creatorStart) ? 'creating' : 'stopped';
  if (!alive(r.pid, r.pidStart)) return 'stopped';
  if (!existsSync(join(root, r.id, 'started'))) return 'created';
  return existsSync(join(root, r.id, 'paused')) ? 'paused' : 'running';
}

export function ociState(root: string, id: string): OciState {
  const r = readRecord(root, id);
  const status = statusOf(root, r);
  return {
    ociVersion: OCI_VERSION,
    id,
    status,
    pid: status === 'stopped' ? 0 : r.pid,
    bundle: r.bundle,
    rootfs: r.rootfs,
    created: r.created,
    owner: '',
    ...(Object.keys(r.annotations).length ? { annotations: r.annotations } : {}),
  };
}

export function listStates(root: string): OciState[] {
  let ids: string[];
  try {
    ids = readdirSync(root);
  } catch {
    return [];
  }
  const out: OciState[] = [];
  for (const id of ids.sort()) {
    if (!ID.test(id)) continue;
    try {
      out.push(ociState(root, id));
    } catch {
      /* deleted meanwhile */
    }
  }
  return out;
}

/** The bundle's config.json, parsed: one sentence for a missing or invalid one. */
export function readConfig(bundle: string): OciConfig {
  let text: string;
  try {
    text = readFileSync(join(bundle, 'config.json'), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new BadRequest(`the bundle ${bundle} has no config.json`);
    throw new BadRequest(`cannot read ${join(bundle, 'config.json')}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as OciConfig;
  } catch (err) {
    throw new BadRequest(`${join(bundle, 'config.json')} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Whether `path` is the namespace of this type this process runs in (the same nsfs inode). */
function ownNamespace(path: string, type: 'mnt' | 'user'): boolean {
  try {
    const them = statSync(path);
    const us = statSync(`/proc/self/ns/${type}`);
    return them.dev === us.dev && them.ino === us.ino;
  } catch {
    return false; // not there: the join fails with its own sentence
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    throw new BadRequest(`config.json: the bind mount source ${path} does not exist`);
  }
}

export interface CreateRequest {
  root: string;
  id: string;
  bundle: string;
  pidFile?: string;
  /** the engine's unix socket for the pty master (process.terminal) */
  consoleSocket?: string;
  /** a sentence on what novabox-oci changed (an rlimit clamped): the caller's --log */
  warn?: (msg: string) => void;
  /** --preserve-fds: this process's fds 3 .. 3+n-1 become the container process's 3.. */
  preserveFds?: number;
  /** --no-pivot: the root mount moved over / and chrooted into, not pivot_root (a ramdisk rootfs) */
  noPivot?: boolean;
}

/** The plan whose exec gets the caller's fds 3 .. 3+n-1 as its own (--preserve-fds). */
function withPreservedFds(plan: LaunchPlan, n: number | undefined): LaunchPlan {
  if (!n) return plan;
  return { ...plan, ops: plan.ops.map((op) => (op.op === 'exec' ? { ...op, preserveFds: n } : op)) };
}

/** CAP_SYS_RESOURCE (linux/capability.h) */
const CAP_SYS_RESOURCE = 24n;

/** What this host lets a container's init set as its resource limits (HostRlimits). */
export function hostRlimits(): HostRlimits {
  const status = readFileSync('/proc/self/status', 'utf8');
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  let nrOpen: bigint | undefined;
  try {
    nrOpen = BigInt(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
  } catch {
    /* no procfs sysctl: no ceiling of its own */
  }
  return {
    hard: parseHardLimits(readFileSync('/proc/self/limits', 'utf8'), ALL_LIMIT_NAMES),
    canRaise: eff !== undefined && ((BigInt(`0x${eff}`) >> CAP_SYS_RESOURCE) & 1n) === 1n,
    ...(nrOpen !== undefined ? { nrOpen } : {}),
  };
}

/**
 * native.spawn with the caller's umask set to `umask` (process.user.umask): the monitor
 * and its init inherit it, and the init gives it to the process before execve.
 */
function spawnWithUmask(umask: number | undefined, spawn: () => native.SpawnResult): native.SpawnResult {
  if (umask === undefined) return spawn();
  const old = process.umask(umask);
  try {
    return spawn();
  } finally {
    process.umask(old);
  }
}

/**
 * `create`: the container's init runs its ops and waits at its gate; returns once it does
 * (or throws the failing op: nothing is left then).
 */
export function createContainer(req: CreateRequest): OciRecord {
  const dir = dirOf(req.root, req.id);
  const config = readConfig(req.bundle);
  const driver = cgroupDriver();
  const planned = planOci(config, {
    id: req.id,
    bundle: req.bundle,
    layout: driver.layout,
    isDir,
    ownMountNamespace: (path) => ownNamespace(path, 'mnt'),
    ownUserNamespace: (path) => ownNamespace(path, 'user'),
    hostRlimits,
    host: HOST_CHECKS,
  });
  const rootfs = planned.plan.ops.find((op) => op.op === 'set-root');
  const rootPath = rootfs?.op === 'set-root' ? rootfs.path : '';
  try {
    if (!statSync(rootPath).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new BadRequest(`config.json: root.path ${rootPath} is not a directory`);
  }
  if (planned.hostMounts && realpathSync(rootPath) === '/')
    throw new BadRequest("config.json: root.path / needs a mount namespace in linux.namespaces (its mounts would be the host's own)");
  if (planned.plan.tty && !req.consoleSocket)
    throw new BadRequest('process.terminal needs --console-socket: the pty master goes to the engine there');
  if (!planned.plan.tty && req.consoleSocket)
    throw new BadRequest('--console-socket is for a container with a terminal, and config.json has process.terminal false');
  const batch = driver.planCreate(planned.cgroupPath, planned.limits);
  const plan = withPreservedFds(
    placeLaunch(
      {
        ...planned.plan,
        ops: req.noPivot ? planned.plan.ops.map((op) => (op.op === 'pivot-root' ? { ...op, noPivot: true } : op)) : planned.plan.ops,
        cgroupSteps: batch.create,
      },
      driver.layout,
      planned.cgroupPath,
    ),
    req.preserveFds,
  );

  mkdirSync(req.root, { recursive: true, mode: 0o700 });
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Conflict(`container id "${req.id}" is already in use`);
    throw err;
  }
  const record: OciRecord = {
    id: req.id,
    bundle: req.bundle,
    rootfs: rootPath,
    pid: 0,
    pidStart: 0,
    creator: process.pid,
    creatorStart: readProcStart(process.pid) ?? 0,
    cgroupPath: planned.cgroupPath,
    cgroupDirs: driver.open(planned.cgroupPath).removalDirs(),
    cgroupParents: parentDirs(planned.cgroupPath),
    gate: '',
    created: new Date().toISOString(),
    annotations: typeof config.annotations === 'object' && config.annotations ? config.annotations : {},
    hooks: { poststart: planned.hooks.poststart, poststop: planned.hooks.poststop },
    ...(planned.hostMounts ? { hostMountsBefore: mountsUnder(rootPath) } : {}),
  };
  const stateFile = join(dir, 'state.json');
  writeFileAtomic(stateFile, JSON.stringify(record), 0o600, false);
  let sp: native.SpawnResult | undefined;
  try {
    // createContainer hooks are ops of the init's, with the state (the init's pid) on their
    // stdin: its ops are sent once that pid is known (lateOps)
    const inside = planned.hooks.createContainer.length + planned.hooks.startContainer.length > 0;
    const spawned = spawnWithUmask(planned.umask, () =>
      spawnMonitor(plan, [0, 1, 2], { tag: planned.cgroupPath, tty: plan.tty, lateOps: inside, preserveFds: req.preserveFds }),
    );
    sp = spawned;
    // with createRuntime hooks the init waits for them before its first op
    const hooks = planned.hooks.createRuntime;
    if (!hooks.length && !inside) readyEarly(sp, plan);
    awaitPlacedInit(sp, plan, driver, planned.cgroupPath);
    const s = {
      ociVersion: OCI_VERSION,
      id: req.id,
      status: 'creating',
      pid: sp.initPid,
      bundle: req.bundle,
      annotations: record.annotations,
    };
    for (const h of hooks) runHook(h, s, 'createRuntime');
    if (inside) {
      // a startContainer hook runs after `start`: the state of a created container
      const state = { createContainer: JSON.stringify(s), startContainer: JSON.stringify({ ...s, status: 'created' }) };
      native.sendOps(spawned, { ...plan, ops: plan.ops.map((op) => (op.op === 'hook' ? { ...op, state: state[op.hook] } : op)) });
    }
    if (!sp.ready) native.release(sp, 'R');
    let e = readEvent(sp.eventsFd);
    if (e !== 'eof' && e.type === MONITOR_EVENT.OPFAIL) throw opFailure(plan, e.a, e.b, e.c);
    if (e === 'eof' || e.type !== MONITOR_EVENT.GATE) {
      while (e !== 'eof' && e.type !== MONITOR_EVENT.EXIT) e = readEvent(sp.eventsFd);
      throw new NovaboxError('internal', 'the container init exited before it was created');
    }
    if (plan.tty && req.consoleSocket) {
      // the console op ran (the init is at its gate): its master is on our socket
      const master = native.recvFd(sp.consoleFd);
      try {
        native.sendFd(req.consoleSocket, master, '/dev/ptmx');
      } finally {
        closeSync(master);
      }
    }
    record.pid = sp.initPid;
    record.pidStart = readProcStart(sp.initPid) ?? 0;
    record.gate = readlinkSync(`/proc/${sp.initPid}/fd/${GO_FD}`);
    record.creator = 0;
    record.creatorStart = 0;
    writeFileAtomic(stateFile, JSON.stringify(record), 0o600, false);
    if (req.pidFile) writeFileAtomic(req.pidFile, String(sp.initPid), 0o644, false);
    for (const w of planned.warnings) req.warn?.(w);
    return record;
  } catch (err) {
    try {
      driver.open(planned.cgroupPath).remove();
    } catch {
      /* the monitor removed what it made, or nothing was made */
    }
    for (const d of record.cgroupParents ?? []) {
      try {
        rmdirSync(d);
      } catch {
        /* another container's, or not made */
      }
    }
    if (record.hostMountsBefore) undoHostMounts(rootPath, record.hostMountsBefore);
    rmTree(dir);
    throw err;
  } finally {
    if (sp) {
      if (sp.goFd >= 0) closeSync(sp.goFd);
      if (sp.consoleFd >= 0) closeSync(sp.consoleFd);
      closeSync(sp.eventsFd);
      native.reap(sp.monitorPid);
    }
  }
}

function mustExist(root: string, id: string): OciRecord {
  return readRecord(root, id);
}

/** `start`: 'G' to a created container's init, once (the `started` marker is made O_EXCL first). */
export function startContainer(root: string, id: string): void {
  const r = mustExist(root, id);
  const status = statusOf(root, r);
  if (status !== 'created') throw new Conflict(`container "${id}" is ${status}, not created: it cannot be started`);
  let marker: number;
  try {
    marker = openSync(join(root, id, 'started'), fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  } catch {
    throw new Conflict(`container "${id}" is being started already`);
  }
  closeSync(marker);
  const fdPath = `/proc/${r.pid}/fd/${GO_FD}`;
  let fd = -1;
  try {
    // the init's own GO pipe, the one recorded at create (not whatever fd 5 is after an exec)
    if (readlinkSync(fdPath) !== r.gate) throw new Conflict(`container "${id}" is not waiting to be started`);
    fd = openSync(fdPath, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    if (!fstatSync(fd).isFIFO() || !alive(r.pid, r.pidStart)) throw new Conflict(`container "${id}" is not waiting to be started`);
    writeSync(fd, 'G');
  } catch (err) {
    if (err instanceof NovaboxError) throw err;
    throw new Conflict(`container "${id}" exited before it was started`);
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  const s = ociState(root, id);
  for (const h of r.hooks?.poststart ?? []) runHook(h, s, 'poststart');
}

/** `pause`: freeze every process of a running container (the `paused` marker says so). */
export function pauseContainer(root: string, id: string): void {
  const r = mustExist(root, id);
  const status = statusOf(root, r);
  if (status !== 'running') throw new Conflict(`container "${id}" is ${status}, not running: it cannot be paused`);
  cgroupDriver().open(r.cgroupPath).freeze();
  writeFileAtomic(join(root, id, 'paused'), '', 0o600, false);
}

/** `resume`: thaw a paused container. */
export function resumeContainer(root: string, id: string): void {
  const r = mustExist(root, id);
  const status = statusOf(root, r);
  if (status !== 'paused') throw new Conflict(`container "${id}" is ${status}, not paused: it cannot be resumed`);
  cgroupDriver().open(r.cgroupPath).thaw();
  rmSync(join(root, id, 'paused'), { force: true });
}

/** `ps`: the host pids of the container's processes (its cgroup's). */
export function containerPids(root: string, id: string): number[] {
  const r = mustExist(root, id);
  if (!r.cgroupPath) return [];
  return cgroupDriver()
    .open(r.cgroupPath)
    .pids()
    .sort((a, b) => a - b);
}

/** `kill`: a signal to the init, or with `all` to every process of its cgroup. */
export function killContainer(root: string, id: string, signal: NodeJS.Signals | number, all: boolean): void {
  const r = mustExist(root, id);
  const status = statusOf(root, r);
  if (all && r.cgroupPath) {
    cgroupDriver().open(r.cgroupPath).killAll(signal);
    return;
  }
  if (status === 'stopped' || status === 'creating') throw new Conflict(`container "${id}" is ${status}: there is no process to signal`);
  try {
    process.kill(r.pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** `delete`: the cgroup and the state of a stopped (or created) container; `force` kills a running one first
 *  and is content when there is nothing to delete. */
export function deleteContainer(root: string, id: string, force: boolean): void {
  // --force of a container that is gone is done (as runc: containerd's shim deletes once
  // more when it cleans up)
  if (force) {
    try {
      statSync(dirOf(root, id));
    } catch {
      return;
    }
  }
  const r = mustExist(root, id);
  const status = statusOf(root, r);
  if ((status === 'running' || status === 'creating') && !force) {
    throw new Conflict(`container "${id}" is ${status}: stop it first or use delete --force`);
  }
  if (status !== 'stopped' && r.pid > 0) {
    try {
      process.kill(r.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (r.cgroupPath) cgroupDriver().open(r.cgroupPath).remove();
  if (r.hostMountsBefore) undoHostMounts(r.rootfs, r.hostMountsBefore);
  // a relative cgroupsPath's parents, deepest first, once empty
  if (r.cgroupPath.startsWith('novabox-oci/')) {
    for (const dir of r.cgroupParents ?? parentDirs(r.cgroupPath)) {
      try {
        rmdirSync(dir);
      } catch {
        /* another container's, or gone */
      }
    }
  }
  // poststop: after the container is gone, before its record goes; a failure is reported,
  // the deletion still done (runtime-spec: warned, not fatal)
  let failed: unknown;
  if (r.hooks?.poststop.length) {
    const s = { ...ociState(root, id), status: 'stopped' as const, pid: 0 };
    for (const h of r.hooks.poststop) {
      try {
        runHook(h, s, 'poststop');
      } catch (err) {
        failed ??= err;
      }
    }
  }
  rmTree(join(root, id));
  if (failed) throw failed;
}

/** Run one hook with the state on its stdin; a non-zero exit, a signal or its timeout is an error naming it. */
export function runHook(h: OciHook, state: object, kind: string): void {
  const env: Record<string, string> = {};
  for (const e of h.env) {
    const eq = e.indexOf('=');
    if (eq > 0) env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  const r = spawnSync(h.path, h.args.slice(1), {
    argv0: h.args[0],
    env,
    input: JSON.stringify(state),
    stdio: ['pipe', 'ignore', 'pipe'],
    timeout: h.timeoutS ? h.timeoutS * 1000 : undefined,
    encoding: 'utf8',
  });
  // a hook need not read its stdin (EPIPE: it exited first); its status says how it went
  const error = r.error && (r.error as NodeJS.ErrnoException).code !== 'EPIPE' ? r.error : undefined;
  const why = error
    ? error.message
    : r.signal
      ? `killed by ${r.signal}${h.timeoutS ? ` (timeout ${h.timeoutS} s)` : ''}`
      : r.status !== 0
        ? `exit status ${r.status}${r.stderr ? `: ${r.stderr.trim().split('\n').pop()}` : ''}`
        : undefined;
  if (why) throw new NovaboxError('op-failed', `the ${kind} hook ${h.path} failed: ${why}`);
}

/** Wait (bounded) until the init is gone or a zombie: a SIGKILLed init is reaped by its subreaper. */
export function waitStopped(pid: number, start: number, timeoutMs: number): boolean {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const s = readProcState(pid);
    if (!s || s.state === 'Z' || readProcStart(pid) !== start) return true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  }
  return false;
}

const NS_FILES: [string, Namespace][] = [
  ['user', 'user'],
  ['mnt', 'mount'],
  ['uts', 'uts'],
  ['ipc', 'ipc'],
  ['pid', 'pid'],
  ['net', 'net'],
  ['cgroup', 'cgroup'],
];

/** The namespaces of `pid` that are not ours: the ones an exec enters. */
function namespacesOf(pid: number): Namespace[] {
  const out: Namespace[] = [];
  for (const [file, ns] of NS_FILES) {
    try {
      if (readlinkSync(`/proc/${pid}/ns/${file}`) !== readlinkSync(`/proc/self/ns/${file}`)) out.push(ns);
    } catch {
      /* a kernel without it */
    }
  }
  return out;
}

export interface ExecRequest {
  process: OciProcess;
  /** leave the process to the caller's subreaper (the engine's shim) once it runs */
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
  /** as CreateRequest's */
  warn?: (msg: string) => void;
  preserveFds?: number;
}

/**
 * `exec`: a process in a running container's namespaces and cgroup. Detached, it returns
 * once the process runs (the monitor exits: the engine's shim reaps it); else it waits and
 * returns its exit status.
 */
export async function execContainer(root: string, id: string, req: ExecRequest): Promise<number> {
  const r = mustExist(root, id);
  const status = statusOf(root, r);
  if (status !== 'running') throw new Conflict(`container "${id}" is ${status}, not running: nothing can be executed in it`);
  if (req.process.terminal && !req.consoleSocket)
    throw new BadRequest('a terminal needs --console-socket: the pty master goes to the engine there');
  if (!req.process.terminal && req.consoleSocket) throw new BadRequest('--console-socket is for a process with a terminal (--tty)');
  const driver = cgroupDriver();
  // the container's seccomp profile holds for what runs in it (runc's rule): compiled again
  // from the bundle's config.json, which the engine keeps until `delete`
  const linux = readConfig(r.bundle).linux;
  const seccomp = seccompOp(typeof linux === 'object' && linux !== null ? linux.seccomp : undefined);
  const warnings: string[] = [];
  const host = req.process.raw.rlimits ? hostRlimits() : undefined;
  const join = { pid: r.pid, namespaces: namespacesOf(r.pid) };
  const planned = planOciExec(req.process, join, seccomp, host, warnings);
  // in the host's mount namespace (the container has none of its own): its root is the
  // init's, chrooted into, not the host's /
  if (!join.namespaces.includes('mount')) {
    const [setRoot, ...rest] = planned.ops;
    if (setRoot.op !== 'set-root') throw new NovaboxError('internal', 'an exec plan starts with its root');
    planned.ops = [{ op: 'set-root', path: `/proc/${r.pid}/root` }, { op: 'pivot-root', chroot: true }, ...rest];
    // every namespace the host's: the monitor's join mode still, entering the init's uts
    // namespace (its own: no change), so that exec runs as with any other container
    if (join.namespaces.length === 0) planned.join = { ...join, namespaces: ['uts'] };
  }
  const bare = { ...planned, detach: req.detach };
  const plan = withPreservedFds(placeLaunch(bare, driver.layout, r.cgroupPath), req.preserveFds);
  const sp = spawnWithUmask(req.process.umask, () =>
    spawnMonitor(plan, [0, 1, 2], { tty: plan.tty, tag: `${r.cgroupPath}/exec`, preserveFds: req.preserveFds }),
  );
  for (const w of warnings) req.warn?.(w);
  try {
    awaitPlacedInit(sp, plan, driver, r.cgroupPath);
    native.release(sp, 'G');
    if (plan.tty && req.consoleSocket) {
      const master = native.recvFd(sp.consoleFd);
      try {
        native.sendFd(req.consoleSocket, master, '/dev/ptmx');
      } finally {
        closeSync(master);
      }
    }
    let e = readEvent(sp.eventsFd);
    if (e !== 'eof' && e.type === MONITOR_EVENT.GATE) e = readEvent(sp.eventsFd);
    if (e !== 'eof' && e.type === MONITOR_EVENT.OPFAIL) throw opFailure(plan, e.a, e.b, e.c);
    if (e === 'eof' || e.type !== MONITOR_EVENT.EXEC)
      throw new NovaboxError('internal', 'the exec monitor stopped before the process started');
    if (req.pidFile) writeFileAtomic(req.pidFile, String(sp.initPid), 0o644, false);
    if (req.detach) return 0;
    do e = readEvent(sp.eventsFd);
    while (e !== 'eof' && e.type !== MONITOR_EVENT.EXIT);
    if (e === 'eof') throw new NovaboxError('internal', 'the exec monitor stopped without reporting an exit status');
    return native.waitStatusToExitCode(e.a).code;
  } finally {
    if (sp.goFd >= 0) closeSync(sp.goFd);
    if (sp.consoleFd >= 0) closeSync(sp.consoleFd);
    closeSync(sp.eventsFd);
    native.reap(sp.monitorPid);
  }
}

/** The process of the container's own config.json: what `exec` without --process starts from. */
export function configProcess(root: string, id: string): Record<string, unknown> {
  const r = mustExist(root, id);
  const p = readConfig(r.bundle).process;
  return typeof p === 'object' && p !== null ? { ...p } : {};
}

/**
 * A block I/O throttle's device: on this host, and a whole disk (the kernel throttles per
 * disk; its write of a partition's number fails with ENODEV).
 */
function blockDevice(major: number, minor: number): string | undefined {
  const sys = `/sys/dev/block/${major}:${minor}`;
  if (!existsSync(sys)) return `names block device ${major}:${minor}, which this host does not have`;
  if (existsSync(`${sys}/partition`)) return `names ${major}:${minor}, a partition: block I/O throttles apply to whole disks`;
  return undefined;
}

/**
 * This host's huge page sizes as cgroup files name them: /sys/kernel/mm/hugepages/hugepages-2048kB
 * is 2MB (mm/hugetlb_cgroup.c: KB below 1 MB, MB below 1 GB, else GB).
 */
function hugePageSizes(): string[] {
  let names: string[] = [];
  try {
    names = readdirSync('/sys/kernel/mm/hugepages');
  } catch {
    /* no huge pages */
  }
  return names
    .map((n) => /^hugepages-(\d+)kB$/.exec(n)?.[1])
    .filter((kb): kb is string => kb !== undefined)
    .map((text) => {
      const kb = Number(text);
      return kb >= 1 << 20 ? `${kb >> 20}GB` : kb >= 1 << 10 ? `${kb >> 10}MB` : `${kb}KB`;
    });
}

const HOST_CHECKS = { blockDevice, hugePageSizes };

/** `update --resources`: new limits (linux.resources' memory, cpu, pids, block I/O throttles, huge pages) on a live container's cgroup. */
export function updateContainer(root: string, id: string, resources: unknown): void {
  const r = mustExist(root, id);
  const status = statusOf(root, r);
  if (status === 'stopped' || status === 'creating') throw new Conflict(`container "${id}" is ${status}: there is no cgroup to update`);
  cgroupDriver().open(r.cgroupPath).setLimits(ociLimits(resources, HOST_CHECKS));
}

/** `events --stats`: one sample of the container's cgroup, in runc's shape (the fields novabox reads). */
export function containerStats(root: string, id: string): object {
  const r = mustExist(root, id);
  const status = statusOf(root, r);
  if (status === 'stopped' || status === 'creating') throw new Conflict(`container "${id}" is ${status}: it has no statistics`);
  const s = cgroupDriver().open(r.cgroupPath).stats();
  return {
    type: 'stats',
    id,
    data: {
      cpu: { usage: { total: s.cpuUsageUs * 1000 } },
      memory: {
        usage: {
          usage: s.memoryCurrentBytes,
          ...(s.memoryPeakBytes !== null ? { max: s.memoryPeakBytes } : {}),
          ...(s.memoryLimitBytes ? { limit: s.memoryLimitBytes } : {}),
        },
        ...(s.oomKills ? { oom_kill: s.oomKills } : {}),
      },
      pids: { current: s.pidsCurrent },
    },
  };
}
