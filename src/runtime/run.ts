/**
 * `novabox run`: one container in the foreground, like `podman run --rm` or
 * `lxc-execute`. stdio passes straight through (or a pty with -t), signals are
 * forwarded to the init, the exit status comes back, and everything the container
 * made is removed when it ends (on every path, errors included).
 */
import { closeSync, openSync, read, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { ReadStream as TtyReadStream } from 'node:tty';
import { NovaboxError, type OpFailed } from '../errors.js';
import type { LaunchPlan } from '../sys/ops.js';
import * as native from '../sys/native.js';
import { MONITOR_EVENT, eventOf, readEvent, type MonitorEvent } from '../sys/events.js';
import type { CgroupDriver, CgroupHandle } from './cgroups/types.js';
import { mustPlaceAfterClone, placesItself } from './cgroups/placement.js';
import {
  containerDirs, opFailure, opFailureExitCode, releaseName, reserveName, writeState, type Prepared,
} from './container.js';
import { finishContainerDir, makeContainerDir, startRemovingContainerDir } from './container-dir.js';
import { bootId, readProcStart } from './proc.js';
import { Reverter } from '../util/revert.js';
import { attach, detach } from './network/bridge.js';
import { writeEtcFiles } from './network/etc-files.js';
import { formatIp } from './network/ipam.js';
import { trace } from '../util/trace.js';
import { isoTime } from '../util/time.js';


export type Event = MonitorEvent;

/**
 * Reads the monitor's 16-byte event records. fs.read runs in libuv's thread pool, so
 * a blocking pipe read does not block the event loop (signals are still forwarded),
 * and the start path needs neither node:net nor node:stream.
 *
 * `blocking`: next() reads on the main thread instead (readSync), for a caller that
 * needs no event loop meanwhile: superviseForeground then forwards signals from C
 * (native.forwardSignals). The thread pool's start costs the main thread 0.7-1.9 ms
 * (its threads, fs.read's first use), all of it on a `run`'s critical path.
 */
export class EventReader {
  private closed = false;

  constructor(
    private readonly fd: number,
    readonly blocking = false,
  ) {}

  /** The next event, or null once the monitor has closed the pipe. */
  async next(): Promise<Event | null> {
    if (this.blocking) return this.nextSync();
    const b = Buffer.alloc(16);
    let got = 0;
    while (got < 16 && !this.closed) {
      const n = await new Promise<number>((resolve) =>
        read(this.fd, b, got, 16 - got, null, (err, bytes) => resolve(err ? 0 : bytes)),
      );
      if (n === 0) return null;
      got += n;
    }
    if (got < 16) return null;
    return eventOf(b);
  }

  private nextSync(): Event | null {
    if (this.closed) return null;
    const e = readEvent(this.fd);
    return e === 'eof' ? null : e;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

export const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

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

  const net = p.network;
  try {
    const batch = driver.planCreate(state.cgroupPath, p.limits);
    const plan: LaunchPlan = { ...p.plan, cgroupSteps: [...batch.create, ...batch.remove] };
    const devNull = io.interactive ? -1 : openSync('/dev/null', 'r');
    try {
      spawned = native.spawn(plan, { stdio: [io.interactive ? 0 : devNull, 1, 2], tty: plan.tty, tag: state.cgroupPath, lateOps: true });
    } finally {
      if (devNull >= 0) closeSync(devNull);
    }
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
    makeContainerDir(dirs);
    trace('container dirs made');
    // The lease once the directory exists (a concurrent cleanup then counts us as alive).
    const attachment = net?.allocate();
    if (net) undo.add('address lease', net.release);
    if (attachment) writeEtcFiles(dirs.dir, p.spec.hostname, formatIp(attachment.address));
    if (net) trace('address leased');
    // The init may run its ops now (they need the directory and the /etc files only): they
    // overlap the rest of this side; its execve waits for GO (superviseForeground).
    const early = placesItself(plan);
    if (early) {
      native.release(sp, 'R');
      trace('ready sent');
    }

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
      if (mustPlaceAfterClone(plan, placed)) {
        driver.open(state.cgroupPath).place(sp.initPid);
        trace('placed in cgroup');
      }
      if (!early) native.release(sp, 'R');
      if (attachment) {
        attach(attachment, sp.initPid);
        undo.add('veth', () => void detach(attachment.hostIf));
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
 * The CLI failed between 'R' and GO: did the init fail an op before that? GO is closed
 * unsent (an init still in its ops stops at its execve gate, status 125, and the monitor
 * then reports NB_EV_EXEC), and the next event says.
 */
export async function opFailedFirst(plan: LaunchPlan, sp: native.SpawnResult, next: () => Promise<Event | null>): Promise<{ failure: OpFailed; code: number } | undefined> {
  if (sp.goFd >= 0) closeSync(sp.goFd);
  sp.goFd = -1;
  const e = await next();
  if (e?.type !== MONITOR_EVENT.OPFAIL) return undefined;
  return { failure: opFailure(plan, e.a, e.b), code: opFailureExitCode(plan, e.a, e.b) };
}

/**
 * Ending a `run` monitor: close GO unsent (an init still waiting exits before its first
 * op, or at its execve), read the monitor's last events until it exits (NB_EV_CGROUP: it removed the
 * cgroup), reap it. Without that confirmation the cgroup is removed here (idempotent),
 * unless the monitor failed to make it (NB_STAGE_CGROUP: it removed what it made, and
 * an existing cgroup of that path is someone else's).
 */
async function stopMonitor(sp: native.SpawnResult, events: EventReader | undefined, cgroup: CgroupHandle, firstRead?: Promise<Event | null>): Promise<void> {
  if (sp.goFd >= 0) try { closeSync(sp.goFd); } catch { /* already closed */ }
  sp.goFd = -1;
  if (sp.consoleFd >= 0) try { closeSync(sp.consoleFd); } catch { /* already closed */ }
  sp.consoleFd = -1;
  if (sp.opsFd >= 0) try { closeSync(sp.opsFd); } catch { /* already closed */ }
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

export interface Outcome {
  /** the init failed before execve: which op, and the exit status to report */
  failure?: OpFailed;
  failureCode: number;
  waitStatus: number;
  /** OOM kills the monitor read before removing the cgroup (NB_EV_EXIT's c) after a SIGKILL, or -1 */
  oomKills: number;
}

/**
 * The foreground part shared by `run` and `server exec`, once the new process is placed:
 * forward our signals to it, send 'G' (its execve; 'R' too unless sent: `run` sent it
 * early, so the ops ran meanwhile), attach the terminal (the init sends the pty master
 * after GO), then wait for exec and exit, draining the pty before returning.
 */
export async function superviseForeground(
  plan: LaunchPlan,
  sp: native.SpawnResult,
  events: EventReader,
  pidfd: number,
  interactive: boolean,
  cleanups: (() => void)[],
  /** the first event's read, when the caller started it already */
  firstEvent?: Promise<Event | null>,
): Promise<Outcome> {
  if (events.blocking) {
    // the event loop does not run while the events are read: a C handler forwards
    cleanups.push(native.forwardSignals(pidfd, FORWARDED.map((sig) => constants.signals[sig])));
  } else {
    for (const sig of FORWARDED) {
      const h = () => native.pidfdSignal(pidfd, constants.signals[sig]);
      process.on(sig, h);
      cleanups.push(() => process.off(sig, h));
    }
  }
  // EPIPE (false): the init is gone already, an op failed; the events say which
  native.release(sp, 'G');
  let drained: Promise<void> | undefined;
  if (plan.tty) {
    // EOF instead of a master: the init failed before its console op; the event says why.
    let master = -1;
    try {
      master = native.recvFd(sp.consoleFd);
    } catch {
      /* reported below */
    }
    closeSync(sp.consoleFd);
    sp.consoleFd = -1;
    if (master >= 0) {
      const t = attachTty(master, interactive);
      cleanups.push(t.detach);
      drained = t.drained;
    }
  }
  trace('GO sent');
  const first = await (firstEvent ?? events.next());
  trace('exec event');
  let failure: OpFailed | undefined;
  let failureCode = 0;
  if (first?.type === MONITOR_EVENT.OPFAIL) {
    failure = opFailure(plan, first.a, first.b);
    failureCode = opFailureExitCode(plan, first.a, first.b);
  } else if (first?.type !== MONITOR_EVENT.EXEC) {
    throw new NovaboxError('internal', 'the container monitor stopped before the container started');
  }
  let exit = await events.next();
  while (exit && exit.type !== MONITOR_EVENT.EXIT) exit = await events.next();
  if (!exit) throw new NovaboxError('internal', 'the container monitor stopped without reporting an exit status');
  // The last output may still sit in the pty: read it before detaching.
  if (drained) await Promise.race([drained, new Promise((r) => setTimeout(r, 1000))]);
  return { failure, failureCode, waitStatus: exit.a, oomKills: exit.c };
}

export function safeStats(cg: CgroupHandle) {
  try {
    return cg.stats();
  } catch {
    return undefined;
  }
}

/** Proxy the local terminal to the pty master. `drained` resolves when the pty has no writer left. */
export function attachTty(master: number, interactive: boolean): { detach: () => void; drained: Promise<void> } {
  const stream = new TtyReadStream(master);
  const out = (chunk: Buffer) => process.stdout.write(chunk);
  stream.on('data', out);
  // EIO on read when the last slave closes: the container is gone and all output was read.
  const drained = new Promise<void>((resolve) => {
    stream.on('error', () => resolve());
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
  });
  const stdin = process.stdin;
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;
  let onInput: ((b: Buffer) => void) | undefined;
  if (interactive) {
    if (stdin.isTTY) stdin.setRawMode(true);
    onInput = (b: Buffer) => {
      try {
        writeSync(master, b);
      } catch {
        /* container gone */
      }
    };
    stdin.on('data', onInput);
    stdin.resume();
  }
  const onResize = () => {
    try {
      native.ptyResize(master, process.stdout.rows || 24, process.stdout.columns || 80);
    } catch {
      /* gone */
    }
  };
  if (process.stdout.isTTY) process.stdout.on('resize', onResize);
  const detach = () => {
    if (onInput) {
      stdin.off('data', onInput);
      stdin.pause();
      if (stdin.isTTY) stdin.setRawMode(wasRaw);
    }
    process.stdout.off('resize', onResize);
    stream.destroy();
  };
  return { detach, drained };
}
