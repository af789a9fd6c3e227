/**
 * `novabox run`: one container in the foreground, like `podman run --rm` or
 * `lxc-execute`. stdio passes straight through (or a pty with -t), signals are
 * forwarded to the init, the exit status comes back, and everything the container
 * made is removed when it ends (on every path, errors included).
 */
import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import type { LaunchPlan } from '../sys/ops.js';
import * as native from '../sys/native.js';
import { MONITOR_EVENT, readEvent } from '../sys/events.js';
import type { CgroupDriver, CgroupHandle } from './cgroups/types.js';
import { EventReader, opFailedFirst, placeInit, readyEarly, spawnMonitor, superviseForeground, type Event } from './launch.js';
import { delegationSteps } from './cgroups/placement.js';
import { containerDirs, releaseName, reserveName, writeState, type Prepared } from './container.js';
import { finishContainerDir, makeContainerDir, startRemovingContainerDir } from './container-dir.js';
import { bootId, readProcStart } from './proc.js';
import { Reverter } from '../util/revert.js';
import { attach, detach } from './network/bridge.js';
import { writeEtcFiles } from './network/etc-files.js';
import { formatIp } from './network/ipam.js';
import { trace } from '../util/trace.js';
import { isoTime } from '../util/time.js';

function formatBytes(n: number): string {
  if (n % (1 << 30) === 0) return `${n / (1 << 30)} GiB`;
  if (n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

export interface RunIO {
  interactive: boolean;
  stderr: (line: string) => void;
  /** work that needs nothing of this container (the gc of stale ones): done while the
   *  monitor makes the cgroup and clones */
  meanwhile?: () => void;
}

/**
 * Create, start and supervise one container; resolves to the exit code for the CLI.
 *
 * The monitor is started first, with the plan but its ops: it makes the container's
 * cgroup (the driver's planned steps) and clones the init into it while this thread, on
 * a second CPU, does io.meanwhile, encodes the whole plan into the init's ops memfd,
 * reserves the name and makes the container's directory; then 'R' lets the init run its
 * ops while this thread writes the record, and 'G' lets it execve. After the init
 * was reaped the monitor removes the cgroup while this thread removes the directory, and
 * says whether it succeeded (NB_EV_CGROUP); if it could not (killed, EBUSY past its bound), the
 * driver's remove() does it here.
 */
export async function runForeground(p: Prepared, driver: CgroupDriver, io: RunIO): Promise<number> {
  const { state } = p;
  const dirs = containerDirs(state.id);
  const undo = new Reverter();
  let events: EventReader | undefined;
  let pidfd = -1;
  let spawned: native.SpawnResult | undefined;
  const cleanups: (() => void)[] = [];
  let keep = false; // no --rm and the container ran: keep its writable layer and record
  let removing: Promise<NodeJS.ErrnoException | null> | undefined;
  let firstRead: Promise<Event | null> | undefined;
  // the monitor saw the container end and its cgroup go: no process is left in its namespaces
  let ended = false;

  const net = p.network;
  try {
    const batch = driver.planCreate(state.cgroupPath, p.limits);
    const idmap = p.spec.idmap;
    const delegated = idmap ? delegationSteps(driver.layout, state.cgroupPath, idmap.uidBase, idmap.gidBase) : [];
    const plan: LaunchPlan = { ...p.plan, cgroupSteps: [...batch.create, ...delegated, ...batch.remove] };
    spawned = spawnMonitor(plan, [io.interactive ? 0 : 'null', 1, 2], { tty: plan.tty, tag: state.cgroupPath, lateOps: true });
    const sp = spawned;
    trace('monitor spawned');
    io.meanwhile?.();
    native.sendOps(sp, p.plan); // the init's: the cgroup steps are the monitor's

    reserveName(state.name, state.id);
    // undone last (after the directory's removal, which may fail): the name is free only
    // once nothing of the container is left
    undo.add('name', () => {
      if (!keep) releaseName(state.name, state.id);
    });
    // registered before the directory is made: the removal takes a directory made only in part
    undo.add('container directory', async () => {
      if (!keep) await finishContainerDir(dirs, removing ?? startRemovingContainerDir(dirs, p.spec.rootfs.volatile === true));
    });
    makeContainerDir(dirs, idmap);
    trace('container dirs made');
    // The lease once the directory exists (a concurrent cleanup then counts us as alive).
    const attachment = net?.allocate();
    if (net) undo.add('address lease', net.release);
    if (attachment)
      writeEtcFiles(dirs.dir, p.spec.hostname, formatIp(attachment.address), idmap && { uid: idmap.uidBase, gid: idmap.gidBase });
    if (net) trace('address leased');
    // The init may run its ops now (they need the directory and the /etc files only): they
    // overlap the rest of this side; its execve waits for GO (superviseForeground).
    const early = readyEarly(sp, plan);
    if (early) trace('ready sent');

    // what the record needs that does not need the init, while the monitor still works
    const monitorStart = readProcStart(sp.monitorPid);
    const boot = bootId();

    const { placed } = native.awaitInit(sp, plan);
    trace('cgroup made, init cloned');
    // Without a terminal nothing needs the event loop until the container ends: the
    // events are read on this thread, and signals forwarded from C. With one, the first
    // read now: libuv's thread pool starts (4 threads) while the init runs its ops, not
    // after GO, when it would stand between the init's execve and our exec event.
    events = new EventReader(sp.eventsFd, !plan.tty && native.canForwardSignals());
    const ev = events;
    const first = ev.blocking ? undefined : (firstRead = ev.next());
    try {
      pidfd = native.pidfdOpen(sp.initPid);
      if (placeInit(sp, plan, placed, driver, state.cgroupPath)) trace('placed in cgroup');
      if (!early) native.release(sp, 'R');
      if (attachment) {
        attach(attachment, sp.initPid);
        net?.attached?.();
        // Once the container ended, its network namespace goes and the kernel removes the
        // pair with it, after we exit; deleting it here waited for the kernel's teardown
        // (docs/design-notes.md). Deleted here only when the container may still run (the
        // start failed, or its end was not confirmed).
        undo.add('veth', () => {
          if (!ended) detach(attachment.hostIf);
        });
      }
      Object.assign(state, {
        status: 'running',
        monitorPid: sp.monitorPid,
        monitorStart,
        initPid: sp.initPid,
        initStart: readProcStart(sp.initPid),
        bootId: boot,
      });
      writeState(state);
      trace('state written');
    } catch (err) {
      // The init ran its ops meanwhile: if one failed, that is what went wrong first
      // (an init gone before its pidfd, a namespace gone before the veth).
      const failed = await opFailedFirst(plan, sp, () => first ?? ev.next());
      if (!failed) throw err;
      io.stderr(`novabox: ${failed.failure.message}`);
      return failed.code;
    }

    const outcome = await superviseForeground(plan, sp, events, pidfd, io.interactive, cleanups, first);
    trace('exit event');
    const { failure, failureCode } = outcome;
    // The init is gone: its directory goes (on this thread when the events are read here,
    // else in the thread pool) while the monitor removes the cgroup.
    if (state.remove || failure) removing = startRemovingContainerDir(dirs, p.spec.rootfs.volatile === true, events.blocking);
    const { code, signal } = native.waitStatusToExitCode(outcome.waitStatus);
    if (!state.remove && !failure) {
      keep = true;
      Object.assign(state, { status: 'exited', exitCode: code, finished: isoTime() });
      writeState(state);
    }
    if (failure) {
      io.stderr(`novabox: ${failure.message}`);
      return failureCode;
    }
    if (signal === constants.signals.SIGKILL && p.limits.memoryBytes !== undefined) {
      const oom = outcome.oomKills >= 0 ? outcome.oomKills : (safeStats(driver.open(state.cgroupPath))?.oomKills ?? 0);
      if (oom > 0) {
        io.stderr(`novabox: container ${state.name} was killed: out of memory (limit ${formatBytes(p.limits.memoryBytes)})`);
      }
    }
    return code;
  } finally {
    for (const c of cleanups.reverse()) c();
    if (pidfd >= 0) closeSync(pidfd);
    // The monitor first: its end is the init's (GO closed unsent, if it still waits), and
    // it removes the cgroup meanwhile; the directory's removal started at the exit event
    // (done already on this thread, or running on in the thread pool).
    const errors: Error[] = [];
    if (spawned) {
      try {
        await stopMonitor(spawned, events, driver.open(state.cgroupPath), firstRead);
        ended = true;
      } catch (err) {
        errors.push(new Error(`undo monitor: ${(err as Error).message}`, { cause: err }));
      }
    }
    errors.push(...(await undo.run()));
    trace('cleaned up');
    for (const e of errors) io.stderr(`novabox: cleanup: ${e.message}`);
  }
}

/**
 * Ending a `run` monitor: close GO unsent (an init still waiting exits before its first
 * op, or at its execve), read the monitor's last events until it exits (NB_EV_CGROUP: it removed the
 * cgroup), reap it. Without that confirmation the cgroup is removed here (idempotent),
 * unless the monitor failed to make it (NB_STAGE_CGROUP: it removed what it made, and
 * an existing cgroup of that path is someone else's).
 */
async function stopMonitor(
  sp: native.SpawnResult,
  events: EventReader | undefined,
  cgroup: CgroupHandle,
  firstRead?: Promise<Event | null>,
): Promise<void> {
  if (sp.goFd >= 0)
    try {
      closeSync(sp.goFd);
    } catch {
      /* already closed */
    }
  sp.goFd = -1;
  if (sp.consoleFd >= 0)
    try {
      closeSync(sp.consoleFd);
    } catch {
      /* already closed */
    }
  sp.consoleFd = -1;
  if (sp.opsFd >= 0)
    try {
      closeSync(sp.opsFd);
    } catch {
      /* already closed */
    }
  sp.opsFd = -1;
  let last: Event[];
  if (events) {
    // In the thread pool (or on this thread, blocking: the directory is gone already).
    last = [];
    // a first read still pending (an error before it was awaited) ends first: one reader at a time
    const e0 = firstRead && (await firstRead);
    if (e0) last.push(e0);
    for (let e = await events.next(); e; e = await events.next()) last.push(e);
    events.close();
  } else {
    last = readRemainingEvents(sp.eventsFd);
    closeSync(sp.eventsFd);
  }
  native.reap(sp.monitorPid);
  trace('monitor exited');
  if (sp.cgroupRefused || last.find((e) => e.type === MONITOR_EVENT.CGROUP)?.a === 0) return;
  cgroup.remove();
  trace('cgroup removed by the CLI');
}

/** Blocking reads of the events pipe until the monitor closes it (its exit). */
function readRemainingEvents(fd: number): Event[] {
  const out: Event[] = [];
  for (let e = readEvent(fd); e !== 'eof'; e = readEvent(fd)) out.push(e);
  return out;
}

export function safeStats(cg: CgroupHandle) {
  try {
    return cg.stats();
  } catch {
    return undefined;
  }
}
