/**
 * Servers as the runtime sees them: long-lived containers started detached under
 * novabox-init, with a console log and an exit-status file kept by their monitor, a
 * writable layer that survives stop/start, and exec through the monitor's join mode.
 * The compute layer decides when; this module knows how.
 */
import {
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { NovaboxError } from '../errors.js';
import * as native from '../sys/native.js';
import { CAPABILITIES, type Capability, type LaunchPlan, type Namespace, type Op } from '../sys/ops.js';
import { cgroupPathOf, paths, stateRoot } from '../util/paths.js';
import { waitFor } from '../util/fs.js';
import { rmFile, rmTree } from '../util/rmtree.js';
import { trace } from '../util/trace.js';
import { randomBytesSync, randomUuid } from '../util/random.js';
import type { ImageConfig } from '../model/records.js';
import type { CgroupDriver, CgroupHandle, CgroupLimits } from './cgroups/types.js';
import {
  DEFAULT_CAPABILITIES,
  DEFAULT_PATH,
  DEFAULT_RLIMITS,
  INIT_NAME,
  clampRlimits,
  parseHardLimits,
  planCredentials,
  planLaunch,
  usernsOf,
  noNewPrivs,
  type ContainerSpec,
  type Idmap,
} from './plan/index.js';
import { bootId, isSameProcess, readProcStart } from './proc.js';
import { resolveUser } from './user.js';
import { EventReader, awaitPlacedInit, goDetached, opFailedFirst, readyEarly, spawnMonitor, superviseForeground } from './launch.js';
import { delegationSteps, placeLaunch, systemDelegation } from './cgroups/placement.js';
import type { NetworkMode } from './network/config.js';
import { attach, detach, ensureBridge, readdress, type Attachment } from './network/bridge.js';
import { writeEtcFiles } from './network/etc-files.js';
import { formatIp } from './network/ipam.js';
import {
  criuEnv,
  criuLogReason,
  criuRestoreArgs,
  ETC_KEYS,
  INIT_KEY,
  inheritedStdio,
  planRestore,
  SEED_KEY,
  volumeKey,
  unlockNetwork,
} from './criu.js';
import { overlayOptions } from './plan/mounts.js';
import { MONITOR_EVENT } from '../sys/events.js';

export interface ServerFacts {
  monitorPid: number;
  monitorStart: number;
  initPid: number;
  initStart: number;
  bootId: string;
  cgroupPath: string;
  startedAt: string;
}

export interface ServerLaunch {
  id: string;
  hostname: string;
  image: { name: string; layerDirs: string[]; config: ImageConfig };
  limits: CgroupLimits;
  network: NetworkMode;
  /** with the bridge network: the lease made into a veth before GO */
  attachment?: Attachment;
  logMaxBytes?: number;
  /** writable layer on a tmpfs inside the server (gone when it stops), at most this many bytes */
  ephemeral?: { sizeBytes: number };
  /** its own user namespace with this id range (the server's lease); none: --userns host */
  idmap?: Idmap;
  /** what the monitor starts once the init is reaped (a restart policy: exitHook) */
  onExit?: LaunchPlan['onExit'];
  /** host directory bound read-only at `target` (the instance data's NoCloud seed) */
  seed?: { source: string; target: string };
  /** bind mounts of its named volumes (compute/volumes.ts) */
  volumes?: ContainerSpec['volumes'];
  /** pid 1: novabox-init (the default), or the image's systemd (a system container; needs idmap) */
  init?: ServerInit;
}

/** Who is a server's pid 1: novabox's own init, or the image's systemd. */
export type ServerInit = 'novabox' | 'systemd';
export const SERVER_INITS: readonly ServerInit[] = ['novabox', 'systemd'];

/** systemd's stop request: SIGRTMIN+3 (glibc's SIGRTMIN is 34), halt and exit in a container. */
export const SIGRTMIN_3 = 37;

/**
 * What a server's exit means. A pid 1 that is systemd ends a container with reboot(2), which
 * the kernel turns into a signal to the pid namespace's init (pid_namespaces(7)): SIGINT for
 * a power-off or halt (`poweroff` inside, or our SIGRTMIN+3), SIGHUP for a reboot. Those
 * are a clean end, not a crash; any other signal or a non-zero status is. Pure.
 */
export function exitMeaning(
  init: ServerInit,
  exit: { code: number; signal?: number } | undefined,
): { crashed: boolean; reboot: boolean; how: string } {
  if (!exit) return { crashed: true, reboot: false, how: 'its processes are gone (host reboot?)' };
  if (init === 'systemd' && exit.signal === constants.signals.SIGINT) return { crashed: false, reboot: false, how: 'systemd halted' };
  if (init === 'systemd' && exit.signal === constants.signals.SIGHUP) return { crashed: false, reboot: true, how: 'systemd rebooted' };
  if (exit.signal !== undefined) return { crashed: true, reboot: false, how: `killed by signal ${exit.signal}` };
  return { crashed: exit.code !== 0, reboot: false, how: `exited with status ${exit.code}` };
}

/** The paths an image's systemd is started from when its command does not name one. */
const SYSTEMD_PATHS = ['/sbin/init', '/lib/systemd/systemd', '/usr/lib/systemd/systemd'];

/**
 * Does an image boot systemd: its `os_init` property (set by `image build debian`), or its
 * command is systemd (/sbin/init, /lib/systemd/systemd). Pure.
 */
export function imageInit(properties: Record<string, string> | undefined, config: Pick<ImageConfig, 'cmd' | 'serverCmd'>): ServerInit {
  if (properties?.os_init === 'systemd') return 'systemd';
  const cmd = config.serverCmd?.length ? config.serverCmd : config.cmd;
  return cmd.length === 1 && SYSTEMD_PATHS.includes(cmd[0]) ? 'systemd' : 'novabox';
}

/** A system container's pid 1: the image's own systemd command, else /sbin/init. */
export function systemdCommand(config: Pick<ImageConfig, 'cmd' | 'serverCmd'>): string[] {
  const cmd = config.serverCmd?.length ? config.serverCmd : config.cmd;
  return cmd.length > 0 && SYSTEMD_PATHS.includes(cmd[0]) ? cmd : ['/sbin/init'];
}

/**
 * A system container's capabilities, in its own user namespace (so over nothing of the
 * host's): all of them but those LXC's default configuration drops (common.conf:
 * mac_admin, mac_override, sys_time, sys_module, sys_rawio); systemd and its units expect
 * a whole machine's (sys_admin for their sandboxes, net_admin for networking, ...).
 */
export const SYSTEM_CAPABILITIES: Capability[] = CAPABILITIES.filter(
  (c) => !['MAC_ADMIN', 'MAC_OVERRIDE', 'SYS_TIME', 'SYS_MODULE', 'SYS_RAWIO'].includes(c),
);

/**
 * `novabox server _exited <id>`, as the monitor starts it after the init's exit: this
 * node and bin/novabox, with the NOVABOX_* settings (the state root, test hooks) and PATH
 * of the process that starts the server.
 */
export function exitHook(id: string): NonNullable<LaunchPlan['onExit']> {
  const env = Object.entries(process.env)
    .filter(([k, v]) => v !== undefined && (k.startsWith('NOVABOX_') || k === 'PATH'))
    .map(([k, v]) => `${k}=${v}`);
  return { argv: [...novaboxCommand(), 'server', '_exited', id], env };
}

/** This node and this build's bin/novabox: a novabox command line for another process. */
export function novaboxCommand(): string[] {
  return [process.execPath, join(native.projectRoot(), 'bin', 'novabox')];
}

/**
 * Servers are system containers: besides podman's set they keep NET_RAW, as LXC, Incus
 * and Docker do, so that ping and other raw-socket tools work (busybox ping has no
 * ICMP datagram-socket fallback). `run` keeps podman's set.
 */
export const SERVER_CAPABILITIES: Capability[] = [...DEFAULT_CAPABILITIES, 'NET_RAW'];

export function serverDirs(id: string) {
  const dir = join(paths.servers(), id);
  return {
    dir,
    upper: join(dir, 'upper'),
    work: join(dir, 'work'),
    merged: join(dir, 'rootfs'),
    /** ephemeral servers: mount point of their tmpfs (inside the server's mount namespace only) */
    eph: join(dir, 'eph'),
    /** the NoCloud seed (compute/instance-data.ts), bound read-only at /var/lib/cloud/seed/nocloud */
    seed: join(dir, 'seed'),
    log: join(dir, 'console.log'),
    status: join(dir, 'exit-status'),
    /** a system container's machine id (made once, kept for the server's life) */
    machineId: join(dir, 'machine-id'),
    /** a system container's boot id (new at each start) */
    bootId: join(dir, 'boot-id'),
  };
}

/**
 * A system container's /etc/machine-id, per server and stable across its restarts: made
 * once (random, as systemd-machine-id-setup does) and kept in the server's directory; it is
 * written into the writable layer when the server's /etc has none of its own yet (the
 * image's, made by debootstrap, would be every server's), owned by the server's root.
 * It is also given as `container_uuid`, which systemd uses when /etc/machine-id is empty
 * (an ephemeral server whose image ships an empty one). Returns the id.
 */
export function ensureMachineId(l: Pick<ServerLaunch, 'id' | 'ephemeral' | 'idmap'>): string {
  const d = serverDirs(l.id);
  let id: string;
  try {
    id = readFileSync(d.machineId, 'utf8').trim();
  } catch {
    id = randomBytesSync(16).toString('hex');
    writeFileSync(d.machineId, `${id}\n`, { mode: 0o444 });
  }
  if (!l.ephemeral) writeOnce(d.upper, 'etc/machine-id', `${id}\n`, 0o444, l.idmap);
  return id;
}

/**
 * A system container's /etc/hostname when no host file is bound over it (--network none or
 * host): the server's name, written into the writable layer on its first start (systemd
 * sets the hostname from it; the image's is debootstrap's host's). Later changes inside stay.
 */
export function ensureHostname(l: Pick<ServerLaunch, 'id' | 'ephemeral' | 'idmap' | 'hostname'>): void {
  if (!l.ephemeral) writeOnce(serverDirs(l.id).upper, 'etc/hostname', `${l.hostname}\n`, 0o644, l.idmap);
}

/** `rel` (etc/NAME) in a writable layer unless the layer has one: the server's root owns it. */
function writeOnce(upper: string, rel: string, text: string, mode: number, idmap: Idmap | undefined): void {
  const file = join(upper, rel);
  try {
    lstatSync(file);
    return;
  } catch {
    /* none yet */
  }
  const uid = idmap?.uidBase ?? 0;
  const gid = idmap?.gidBase ?? 0;
  const dir = join(file, '..');
  if (!existsSync(dir)) {
    mkdirSync(dir, { mode: 0o755 });
    chownSync(dir, uid, gid);
  }
  writeFileSync(file, text, { mode });
  chownSync(file, uid, gid);
}

export function initBinary(): string {
  return join(native.nativeBuildDir(), 'novabox-init');
}

/**
 * The per-host copy of novabox-init a server's pid 1 runs from (spec.ts, initCopy):
 * STATE_ROOT/init/novabox-init.SIZE.MTIME, host root's, mode 0555, in a directory only
 * root enters. Made once per build of novabox-init (a stat and an lstat per start after
 * that); a copy that is not what it should be (owner, mode, size) is made again.
 */
export function initCopy(src = initBinary(), root = stateRoot()): string {
  const st = statSync(src, { bigint: true });
  const dir = join(root, 'init');
  const file = join(dir, `novabox-init.${st.size}.${st.mtimeNs}`);
  const have = lstatSync(file, { throwIfNoEntry: false, bigint: true });
  if (have?.isFile() && have.uid === 0n && (have.mode & 0o7777n) === 0o555n && have.size === st.size) return file;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    copyFileSync(src, tmp);
    chownSync(tmp, 0, 0);
    chmodSync(tmp, 0o555);
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
  // older builds' copies: a running server keeps its own through its mount
  for (const f of readdirSync(dir)) if (join(dir, f) !== file && !f.endsWith('.tmp')) rmSync(join(dir, f), { force: true });
  return file;
}

/** The server's pid 1: novabox-init, running the image's server command or idling. */
export function serverCommand(config: ImageConfig): string[] {
  const cmd = config.serverCmd ?? config.cmd;
  return cmd.length ? [INIT_NAME, '--', ...cmd] : [INIT_NAME];
}

/** A line of novabox's own in the console log, so it is never empty and shows each start/stop. */
export function logLine(id: string, text: string): void {
  try {
    appendFileSync(serverDirs(id).log, `[novabox ${new Date().toISOString()}] ${text}\n`);
  } catch {
    /* the log is best effort */
  }
}

function planServer(l: ServerLaunch, layout: CgroupDriver['layout'], machineId?: string): LaunchPlan {
  const d = serverDirs(l.id);
  const system = l.init === 'systemd';
  // systemd starts as root whatever the image's user
  const user = system ? { uid: 0, gid: 0, additionalGids: [], home: '/root' } : resolveUser(l.image.config.user ?? '', l.image.layerDirs);
  const env = system
    ? // what LXC gives its init; systemd sets up the rest of its units' environment itself
      [`PATH=${DEFAULT_PATH}`, 'container=novabox', ...(machineId ? [`container_uuid=${machineId}`] : [])]
    : [`PATH=${DEFAULT_PATH}`, ...l.image.config.env, `HOSTNAME=${l.hostname}`, `HOME=${user.home}`];
  const spec: ContainerSpec = {
    id: l.id,
    hostname: l.hostname,
    rootfs: l.ephemeral
      ? {
          mergedDir: d.merged,
          lowerDirs: l.image.layerDirs,
          upperDir: join(d.eph, 'upper'),
          workDir: join(d.eph, 'work'),
          readOnly: false,
          tmpfs: { dir: d.eph, sizeBytes: l.ephemeral.sizeBytes },
        }
      : { mergedDir: d.merged, lowerDirs: l.image.layerDirs, upperDir: d.upper, workDir: d.work, readOnly: false },
    process: {
      args: system ? systemdCommand(l.image.config) : serverCommand(l.image.config),
      env: dedupeEnv(env),
      cwd: system ? '/' : l.image.config.workingDir || '/',
      uid: user.uid,
      gid: user.gid,
      additionalGids: user.additionalGids,
      // systemd's /dev/console: a pty whose output the monitor writes into the console log
      tty: system ? { rows: 24, cols: 80 } : false,
    },
    network: l.network === 'novabox' ? 'bridge' : l.network,
    etcFiles: l.attachment
      ? writeEtcFiles(d.dir, l.hostname, formatIp(l.attachment.address), l.idmap && { uid: l.idmap.uidBase, gid: l.idmap.gidBase })
      : undefined,
    cgroups: layout,
    capabilities: system ? SYSTEM_CAPABILITIES : SERVER_CAPABILITIES,
    rlimits: clampRlimits(DEFAULT_RLIMITS, parseHardLimits(readFileSync('/proc/self/limits', 'utf8'))),
    logPath: d.log,
    statusPath: d.status,
    ...(system ? { system: true, bootIdFile: d.bootId } : { initCopy: initCopy() }),
    idmap: l.idmap,
    volumes:
      l.volumes?.length || l.seed
        ? [...(l.volumes ?? []), ...(l.seed ? [{ source: l.seed.source, target: l.seed.target, readOnly: true, isDir: true }] : [])]
        : undefined,
  };
  const plan = planLaunch(spec);
  plan.logMaxBytes = l.logMaxBytes ?? 1 << 20;
  const placed = placeLaunch(plan, layout, cgroupPathOf(l.id));
  if (!system || !l.idmap) return placed;
  // its own directory in name=systemd (v1, hybrid), joined with the controllers' hierarchies
  const joins: Op[] = systemDelegation(layout, cgroupPathOf(l.id), l.idmap.uidBase, l.idmap.gidBase).joins.map((path) => ({
    op: 'cgroup-join',
    path,
  }));
  return joins.length ? { ...placed, ops: [...joins, ...placed.ops] } : placed;
}

function dedupeEnv(entries: string[]): string[] {
  const m = new Map<string, string>();
  for (const e of entries) m.set(e.slice(0, e.indexOf('=')), e);
  return [...m.values()];
}

/** The machine id before the plan (its container_uuid); the file waits for the upper dir. */
function ensureMachineIdEarly(l: ServerLaunch): string {
  mkdirSync(serverDirs(l.id).dir, { recursive: true, mode: 0o700 });
  return ensureMachineId({ ...l, ephemeral: { sizeBytes: 0 } });
}

/**
 * Start a server's container detached. Returns once its command has been exec'd
 * (or throws with the failing op); the monitor stays behind with the console log.
 */
export async function startServer(l: ServerLaunch, driver: CgroupDriver): Promise<ServerFacts> {
  const d = serverDirs(l.id);
  const layout = driver.layout;
  const cgroupPath = cgroupPathOf(l.id);
  if (l.init === 'systemd' && !l.idmap) {
    throw new NovaboxError('bad-request', "systemd as pid 1 needs the server's own user namespace (--userns auto), not --userns host");
  }
  const system = l.init === 'systemd' && l.idmap ? l.idmap : undefined;
  // The monitor makes the cgroup before it clones (as for `run`, docs/design-notes.md);
  // unlike run's, it outlives the start: no removal steps, stopServer removes it.
  const plan: LaunchPlan = {
    ...planServer(l, layout, system ? ensureMachineIdEarly(l) : undefined),
    cgroupSteps: [
      ...driver.planCreate(cgroupPath, l.limits).create,
      ...(l.idmap ? delegationSteps(layout, cgroupPath, l.idmap.uidBase, l.idmap.gidBase) : []),
      ...(system ? systemDelegation(layout, cgroupPath, system.uidBase, system.gidBase).steps : []),
    ],
    ...(l.onExit ? { onExit: l.onExit } : {}),
  };
  // A cgroup left by a crash of an earlier start would make the creation fail: clear it.
  try {
    driver.open(cgroupPath).remove();
  } catch {
    /* nothing there */
  }
  let sp: native.SpawnResult | undefined;
  let events: EventReader | undefined;
  try {
    trace('server planned');
    sp = spawnMonitor(plan, ['null', 'null', 'null'], { tag: cgroupPath });
    trace('monitor spawned');
    // the server's directories while the monitor makes the cgroup and clones (the init
    // needs them from 'R' on)
    // in its own user namespace the writable layer's root belongs to the range's root
    // (the overlay's / is the upper dir's root; the image's own is idmapped the same way)
    if (mkdirSync(d.upper, { recursive: true, mode: 0o755 }) !== undefined && l.idmap) chownSync(d.upper, l.idmap.uidBase, l.idmap.gidBase);
    mkdirSync(d.work, { recursive: true, mode: 0o700 });
    mkdirSync(d.merged, { recursive: true, mode: 0o755 });
    if (l.ephemeral) mkdirSync(d.eph, { recursive: true, mode: 0o700 });
    if (system) {
      writeFileSync(d.bootId, `${randomUuid()}\n`, { mode: 0o444 });
      ensureMachineId(l);
      if (!l.attachment) ensureHostname(l);
    }
    rmFile(d.status);
    trace('server dirs made');
    // its ops may run now, while we attach the veth; its command waits for 'G'
    readyEarly(sp, plan);
    try {
      awaitPlacedInit(sp, plan, driver, cgroupPath);
      if (l.attachment) attach(l.attachment, sp.initPid);
    } catch (err) {
      // The init ran its ops meanwhile: if one failed, that is what went wrong first (its
      // network namespace was gone before the veth could move into it).
      events = new EventReader(sp.eventsFd);
      const failed = await opFailedFirst(plan, sp, () => events!.next());
      throw failed ? failed.failure : err;
    }
    trace('init placed');
    const facts: ServerFacts = {
      monitorPid: sp.monitorPid,
      monitorStart: readProcStart(sp.monitorPid) ?? 0,
      initPid: sp.initPid,
      initStart: readProcStart(sp.initPid) ?? 0,
      bootId: bootId(),
      cgroupPath,
      startedAt: new Date().toISOString(),
    };
    events = new EventReader(sp.eventsFd);
    await goDetached(sp, plan, events);
    trace('init exec');
    return facts;
  } catch (err) {
    undoStart(sp, driver, cgroupPath, l.attachment);
    throw err;
  } finally {
    // The monitor keeps running without us: stop listening. A CLI exits and init adopts it;
    // a process that lives on (serve) reaps it when it exits (reaper.ts).
    events?.close();
    if (sp && !events) closeSync(sp.eventsFd);
  }
}

/**
 * A start or restore that failed, undone: the GO pipe closed (the init, if any, exits at
 * it), the cgroup removed (remove() kills what is left; not when the monitor could not make
 * it: it removed what it made, and an existing cgroup of that path is not ours), the veth
 * detached (the kernel removes it with the namespace otherwise).
 */
function undoStart(sp: native.SpawnResult | undefined, driver: CgroupDriver, cgroupPath: string, attachment: Attachment | undefined): void {
  try {
    if (sp && sp.goFd >= 0) closeSync(sp.goFd);
  } catch {
    /* already closed */
  }
  if (!sp?.cgroupRefused) {
    try {
      driver.open(cgroupPath).remove();
    } catch {
      /* reported by the next reconcile */
    }
  }
  if (attachment) {
    try {
      detach(attachment.hostIf);
    } catch {
      /* gone with the namespace */
    }
  }
}

/**
 * A server's tree restored from CRIU images (live migration's target, or its source taken
 * back): the monitor makes the cgroup, runs `criu restore` (criu.ts planRestore) and adopts
 * the restored pid 1 as its init, so stop, delete, the exit status and the console log work
 * as for a started server. Its writable layer must hold what it held at the dump, and so
 * must its volumes (r.volumes: each one's directory here, bound where the dump's key for its
 * id names it).
 */
export async function restoreServer(
  l: Pick<ServerLaunch, 'id' | 'image' | 'limits' | 'onExit' | 'logMaxBytes' | 'attachment' | 'hostname' | 'idmap' | 'seed'>,
  driver: CgroupDriver,
  r: { images: string; stdio?: string; volumes?: { id: string; source: string }[] },
): Promise<ServerFacts> {
  const d = serverDirs(l.id);
  const cgroupPath = cgroupPathOf(l.id);
  const pidfile = join(r.images, 'restored.pid');
  rmFile(pidfile);
  const criu = process.env.NOVABOX_CRIU || 'criu';
  const a = l.attachment;
  if (a) ensureBridge(a);
  const etc = a && writeEtcFiles(d.dir, l.hostname, formatIp(a.address), l.idmap && { uid: l.idmap.uidBase, gid: l.idmap.gidBase });
  // In its own user namespace criu takes the host-bound mounts (pid 1's binary, the /etc
  // files) from inside it, as the range's root, who may not pass this state root's 0700
  // directories: each is bound, in criu's mount namespace only, on a file of a tmpfs on a
  // directory of /run made for this restore (removed after it), and criu named that.
  const ext = l.idmap ? `/run/novabox-restore.${l.id}` : undefined;
  const binds: [string, string, 'dir'?][] = [];
  const via = (key: string, file: string, dir?: 'dir') => {
    if (!ext) return file;
    binds.push(dir ? [file, join(ext, key), dir] : [file, join(ext, key)]);
    return join(ext, key);
  };
  const args = criuRestoreArgs({
    images: r.images,
    root: d.merged,
    pidfile,
    initCopy: via(INIT_KEY, initCopy()),
    cgroupRoot: `/${cgroupPath}`,
    inheritFds: inheritedStdio(r.stdio),
    ...(l.seed ? { seed: via(SEED_KEY, l.seed.source, 'dir') } : {}),
    ...(r.volumes?.length ? { volumes: r.volumes.map((v) => ({ id: v.id, source: via(volumeKey(v.id), v.source, 'dir') })) } : {}),
    ...(a && etc
      ? {
          veth: { hostIf: a.hostIf, bridge: a.bridge },
          etcFiles: {
            hosts: via(ETC_KEYS['/etc/hosts'], etc.hosts),
            hostname: via(ETC_KEYS['/etc/hostname'], etc.hostname),
            resolv: via(ETC_KEYS['/etc/resolv.conf'], etc.resolv),
          },
        }
      : {}),
  });
  if (ext) mkdirSync(ext, { recursive: true, mode: 0o700 });
  const rootfs = { mergedDir: d.merged, lowerDirs: l.image.layerDirs, upperDir: d.upper, workDir: d.work, readOnly: false };
  // criu opens images from inside the restored user namespace too: before its maps are
  // written (still host uid 0: "timens-0.img") and after (the range's root: "tty-info.img"),
  // so host root's 0700/0600 images say EACCES to the latter. Every round's (the final
  // dump's parent chain) stay host root's, in the range's root group, readable by it only.
  if (l.idmap) shareImages(dirname(r.images), l.idmap.gidBase);
  const plan: LaunchPlan = {
    ...placeLaunch(
      planRestore({
        criu,
        args,
        pidfile,
        merged: d.merged,
        overlay: overlayOptions(rootfs),
        logPath: d.log,
        statusPath: d.status,
        logMaxBytes: l.logMaxBytes,
        env: criuEnv(),
        // the same range the dump's user namespace has (the caller leased it): the rootfs
        // idmapped as a start makes it
        ...(l.idmap ? { userns: usernsOf({ rootfs }, l.idmap) } : {}),
        ...(ext ? { external: { dir: ext, binds } } : {}),
      }),
      driver.layout,
      cgroupPath,
    ),
    cgroupSteps: [
      ...driver.planCreate(cgroupPath, l.limits).create,
      ...(l.idmap ? delegationSteps(driver.layout, cgroupPath, l.idmap.uidBase, l.idmap.gidBase) : []),
    ],
    ...(l.onExit ? { onExit: l.onExit } : {}),
  };
  try {
    driver.open(cgroupPath).remove();
  } catch {
    /* nothing there */
  }
  mkdirSync(d.upper, { recursive: true, mode: 0o755 });
  mkdirSync(d.work, { recursive: true, mode: 0o700 });
  mkdirSync(d.merged, { recursive: true, mode: 0o755 });
  rmFile(d.status);
  let sp: native.SpawnResult | undefined;
  let events: EventReader | undefined;
  try {
    sp = spawnMonitor(plan, ['null', 'null', 'null'], { tag: cgroupPath });
    readyEarly(sp, plan);
    try {
      awaitPlacedInit(sp, plan, driver, cgroupPath);
    } catch (err) {
      events = new EventReader(sp.eventsFd);
      const failed = await opFailedFirst(plan, sp, () => events!.next());
      throw failed ? failed.failure : err;
    }
    events = new EventReader(sp.eventsFd);
    await goDetached(sp, plan, events);
    const e = await events.next();
    if (e?.type !== MONITOR_EVENT.RESTORED || e.a <= 0) {
      let why = '';
      try {
        why = criuLogReason(readFileSync(join(r.images, 'restore.log'), 'utf8')) ?? '';
      } catch {
        /* no log: criu did not start */
      }
      throw new NovaboxError(
        'sys',
        `criu restore of server ${l.id} failed${why ? `: ${why}` : e?.type === MONITOR_EVENT.RESTORED ? ` (wait status ${e.b})` : ''}`,
      );
    }
    unlockNetwork(e.a);
    if (a) readdress(a, e.a);
    return {
      monitorPid: sp.monitorPid,
      monitorStart: readProcStart(sp.monitorPid) ?? 0,
      initPid: e.a,
      initStart: readProcStart(e.a) ?? 0,
      bootId: bootId(),
      cgroupPath,
      startedAt: new Date().toISOString(),
    };
  } catch (err) {
    undoStart(sp, driver, cgroupPath, a);
    throw err;
  } finally {
    events?.close();
    if (sp && !events) closeSync(sp.eventsFd);
    if (ext) rmSync(ext, { recursive: true, force: true }); // empty here: its tmpfs was criu's
  }
}

/** A live migration's image directories (all rounds side by side): group gid, 0750 and 0640 (links left alone). */
function shareImages(base: string, gid: number): void {
  lchownSync(base, 0, gid);
  chmodSync(base, 0o750);
  for (const e of readdirSync(base, { withFileTypes: true })) {
    const p = join(base, e.name);
    if (e.isDirectory()) shareImages(p, gid);
    else if (e.isFile()) {
      lchownSync(p, 0, gid);
      chmodSync(p, 0o640);
    }
  }
}

export function isRunning(f: Pick<ServerFacts, 'initPid' | 'initStart' | 'bootId'> | undefined): boolean {
  return f !== undefined && isSameProcess(f.initPid, f.initStart, f.bootId);
}

function monitorAlive(f: ServerFacts): boolean {
  return isSameProcess(f.monitorPid, f.monitorStart, f.bootId);
}

/** The init's wait status as the monitor recorded it, or undefined. */
/**
 * A dead server's exit once its monitor recorded it: the init is gone as soon as it exited
 * (a zombie is not running), but its monitor writes the status only after it reaped it and
 * drained the console pipe. While that monitor still lives, another process's reconcile
 * waits for it (bounded) rather than read "no status" as the processes gone for good, which
 * named the exit "its processes are gone (host reboot?)" and lost its status.
 */
export function settledExit(
  id: string,
  f: Pick<ServerFacts, 'monitorPid' | 'monitorStart'> | undefined,
  withinMs = 2000,
): ReturnType<typeof recordedExit> {
  let exit = recordedExit(id);
  if (!exit && f && isSameProcess(f.monitorPid, f.monitorStart))
    waitFor(() => (exit = recordedExit(id)) !== undefined || !isSameProcess(f.monitorPid, f.monitorStart), withinMs);
  return exit ?? recordedExit(id);
}

export function recordedExit(id: string): { status: number; code: number; signal?: number } | undefined {
  try {
    const [status] = readFileSync(serverDirs(id).status, 'utf8').trim().split(' ').map(Number);
    return { status, ...native.waitStatusToExitCode(status) };
  } catch {
    return undefined;
  }
}

function signalInit(f: ServerFacts, signal: number): boolean {
  if (!isRunning(f)) return false;
  let fd = -1;
  try {
    fd = native.pidfdOpen(f.initPid);
    // The pidfd names the process we checked unless it died in between: check again.
    if (!isSameProcess(f.initPid, f.initStart)) return false;
    return native.pidfdSignal(fd, signal);
  } catch {
    return false;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

export type StopStep = 'not running' | 'signal' | 'kill';

/**
 * Stop: the stop signal to the init, wait up to timeoutMs, then SIGKILL everything in
 * the cgroup. Waits for the monitor to record the exit, then removes the cgroup.
 */
export function stopServer(f: ServerFacts, driver: CgroupDriver, opts: { timeoutMs: number; signal?: number; force?: boolean }): StopStep {
  const cgroup = driver.open(f.cgroupPath);
  let step: StopStep = 'not running';
  if (isRunning(f)) {
    step = 'signal';
    if (opts.force || !signalInit(f, opts.signal ?? constants.signals.SIGTERM) || !waitFor(() => !isRunning(f), opts.timeoutMs)) {
      step = 'kill';
      killCgroup(cgroup);
      if (!waitFor(() => !isRunning(f), 5000)) {
        throw new NovaboxError('internal', `server process ${f.initPid} did not die after SIGKILL`);
      }
    }
  }
  waitFor(() => !monitorAlive(f), 2000);
  cgroup.remove();
  return step;
}

function killCgroup(cg: CgroupHandle): void {
  try {
    cg.thaw(); // a frozen task ignores SIGKILL until thawed
  } catch {
    /* not frozen, or gone */
  }
  try {
    cg.killAll(constants.signals.SIGKILL);
  } catch {
    /* gone */
  }
}

export function freezeServer(f: ServerFacts, driver: CgroupDriver): void {
  driver.open(f.cgroupPath).freeze();
}

export function thawServer(f: ServerFacts, driver: CgroupDriver): void {
  driver.open(f.cgroupPath).thaw();
}

export function removeServerFiles(id: string): void {
  rmTree(serverDirs(id).dir);
}

// ---- exec -----------------------------------------------------------------------

export interface ExecRequest {
  command: string[];
  env: string[];
  workdir?: string;
  user?: string;
  interactive: boolean;
  tty: boolean;
}

/**
 * Where `server exec` places its process in a system container on pure cgroup v2: a leaf
 * of the server's cgroup (made on first use, as lxc-attach makes its `.lxc` leaf). systemd
 * inside enables controllers in the server's cgroup for its own tree, and cgroup v2 then
 * admits no process there (no internal processes); on v1 and hybrid hosts the server's
 * own directories still take one. Returns the cgroup path to join.
 */
function execLeaf(layout: CgroupDriver['layout'], path: string): string {
  if (layout.kind !== 'v2') return path;
  const leaf = `${path}/novabox-exec`;
  try {
    mkdirSync(join(layout.root, leaf), { mode: 0o755 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return leaf;
}

/** Run a command inside a running server, in the foreground; resolves to its exit code. */
export async function execInServer(
  f: ServerFacts,
  l: Pick<ServerLaunch, 'hostname' | 'image' | 'network' | 'idmap' | 'init'>,
  req: ExecRequest,
  driver: CgroupDriver,
  io: { stderr: (line: string) => void },
): Promise<number> {
  if (!isRunning(f)) throw new NovaboxError('conflict', 'the server is not running');
  const user = resolveUser(req.user ?? l.image.config.user ?? '', l.image.layerDirs);
  const env = dedupeEnv([
    `PATH=${DEFAULT_PATH}`,
    ...l.image.config.env,
    `HOSTNAME=${l.hostname}`,
    `HOME=${user.home}`,
    ...(req.tty ? ['TERM=xterm'] : []),
    ...req.env,
  ]);
  // its user namespace first (setns with a pidfd enters them in the kernel's order anyway):
  // the ids of the setgid/setuid ops below are then the server's own, inside its range
  const namespaces: Namespace[] = l.idmap ? ['user', 'mount', 'uts', 'ipc', 'pid', 'cgroup'] : ['mount', 'uts', 'ipc', 'pid', 'cgroup'];
  if (l.network !== 'host') namespaces.push('net');
  // process.stdout is a stream (node:stream, ~1 ms to build): only a terminal's size reads it
  const out = req.tty ? process.stdout : undefined;
  const bare: LaunchPlan = {
    namespaces: [],
    tty: req.tty,
    join: { pid: f.initPid, namespaces },
    ops: [
      // After setns the monitor's / is the server's root: resolve paths inside it.
      { op: 'set-root', path: '/' },
      ...(req.tty
        ? [{ op: 'console' as const, ptmx: 'dev/pts/ptmx', rows: (out?.isTTY && out.rows) || 24, cols: (out?.isTTY && out.columns) || 80 }]
        : []),
      // as the server's own init: no_new_privs only for a server whose root is the host's
      ...(l.init === 'systemd'
        ? planCredentials(SYSTEM_CAPABILITIES, user, true, noNewPrivs(l), true)
        : planCredentials(SERVER_CAPABILITIES, user, true, noNewPrivs(l))),
      { op: 'chdir', path: req.workdir ?? (l.image.config.workingDir || '/') },
      { op: 'exec', file: req.command[0], searchPath: env.find((e) => e.startsWith('PATH='))!.slice(5), argv: req.command, env },
    ],
  };
  // The new process joins the server's cgroups as its init did (runtime/cgroups/placement.ts):
  // the monitor opens the cgroup2 directory and the v1 tasks files before it enters the
  // server's namespaces, where those host paths do not resolve.
  const cgroupPath = l.init === 'systemd' ? execLeaf(driver.layout, f.cgroupPath) : f.cgroupPath;
  const plan = placeLaunch(bare, driver.layout, cgroupPath);
  const sp = spawnMonitor(plan, [req.interactive ? 0 : 'null', 1, 2], { tty: req.tty, tag: `${f.cgroupPath}/exec` });
  const events = new EventReader(sp.eventsFd);
  const cleanups: (() => void)[] = [];
  let pidfd = -1;
  try {
    awaitPlacedInit(sp, plan, driver, cgroupPath);
    pidfd = native.pidfdOpen(sp.initPid);
    const outcome = await superviseForeground(plan, sp, events, pidfd, req.interactive, cleanups);
    if (outcome.failure) {
      io.stderr(`novabox: ${outcome.failure.message}`);
      return outcome.failureCode;
    }
    return native.waitStatusToExitCode(outcome.waitStatus).code;
  } finally {
    for (const c of cleanups.reverse()) c();
    events.close();
    if (pidfd >= 0) closeSync(pidfd);
    if (sp.consoleFd >= 0) closeSync(sp.consoleFd);
    native.reap(sp.monitorPid);
  }
}
