/**
 * The start path shared by `run`, servers and `server exec`: the handshake with the C
 * monitor and the init it clones (native-bindings/include/novabox.h), in this order:
 *
 *   spawnMonitor     nb_spawn: the monitor forks, makes the cgroup, clones the init,
 *                    which waits on its GO pipe
 *   readyEarly       'R' at once when the init is cloned into its cgroup (it runs its
 *                    ops meanwhile); else the caller sends it after the placement
 *   awaitPlacedInit  NB_EV_PID: the init's pid; placed into its cgroup here when the
 *                    monitor could not clone it there (cgroups/placement.ts)
 *   goDetached       'G' (its execve) and NB_EV_EXEC or NB_EV_OPFAIL, for a server;
 *   superviseForeground  the same for `run` and exec, then signals, tty and NB_EV_EXIT
 *
 * EventReader reads the monitor's events; opFailedFirst says whether an op failed when
 * the caller failed between 'R' and 'G'.
 */
import { closeSync, openSync, read, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { ReadStream as TtyReadStream } from 'node:tty';
import { NovaboxError, type OpFailed } from '../errors.js';
import type { LaunchPlan } from '../sys/ops.js';
import * as native from '../sys/native.js';
import { MONITOR_EVENT, eventOf, readEvent, type MonitorEvent } from '../sys/events.js';
import type { CgroupDriver } from './cgroups/types.js';
import { mustPlaceAfterClone, placesItself } from './cgroups/placement.js';
import { opFailure, opFailureExitCode } from './container.js';
import { trace } from '../util/trace.js';

/** One of the child's standard streams: a descriptor of ours, or /dev/null. */
export type Stdio = number | 'null';

/**
 * nb_spawn with the plan (native.spawn): /dev/null, where a stream asks for it, is opened
 * once (read-only when only stdin is, else read-write) and closed once the monitor has it.
 */
export function spawnMonitor(plan: LaunchPlan, stdio: [Stdio, Stdio, Stdio], opts: Omit<native.SpawnOptions, 'stdio'>): native.SpawnResult {
  const nulls = stdio.map((s) => s === 'null');
  const devNull = nulls.some(Boolean) ? openSync('/dev/null', nulls[1] || nulls[2] ? 'r+' : 'r') : -1;
  try {
    return native.spawn(plan, { ...opts, stdio: stdio.map((s) => (s === 'null' ? devNull : s)) as [number, number, number] });
  } finally {
    if (devNull >= 0) closeSync(devNull);
  }
}

/** 'R' now when the init is cloned into its cgroup (its ops overlap the caller's work); true when sent. */
export function readyEarly(sp: native.SpawnResult, plan: LaunchPlan): boolean {
  if (!placesItself(plan)) return false;
  native.release(sp, 'R');
  return true;
}

/** The init into `cgroupPath` when the monitor could not clone it there (`placed`: NB_EV_PID's b); true when placed here. */
export function placeInit(sp: native.SpawnResult, plan: LaunchPlan, placed: boolean, driver: CgroupDriver, cgroupPath: string): boolean {
  if (!mustPlaceAfterClone(plan, placed)) return false;
  driver.open(cgroupPath).place(sp.initPid);
  return true;
}

/** NB_EV_PID (native.awaitInit), then placeInit; returns the init's pid. */
export function awaitPlacedInit(sp: native.SpawnResult, plan: LaunchPlan, driver: CgroupDriver, cgroupPath: string): number {
  const { placed } = native.awaitInit(sp, plan);
  placeInit(sp, plan, placed, driver, cgroupPath);
  return sp.initPid;
}

/**
 * A detached start's end (servers): 'G', then the first event must be NB_EV_EXEC; an op's
 * failure (NB_EV_OPFAIL) is thrown as the op's error.
 */
export async function goDetached(sp: native.SpawnResult, plan: LaunchPlan, events: EventReader): Promise<void> {
  // EPIPE (false): the init is gone (an op failed: the event says which; else it was killed)
  if (!native.release(sp, 'G')) {
    const e = await events.next();
    if (e?.type === MONITOR_EVENT.OPFAIL) throw opFailure(plan, e.a, e.b, e.c);
    throw new NovaboxError('internal', 'the server init exited before it started');
  }
  const first = await events.next();
  if (first?.type === MONITOR_EVENT.OPFAIL) throw opFailure(plan, first.a, first.b, first.c);
  if (first?.type !== MONITOR_EVENT.EXEC) throw new NovaboxError('internal', 'the server monitor stopped before the server started');
}

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
      const n = await new Promise<number>((resolve) => read(this.fd, b, got, 16 - got, null, (err, bytes) => resolve(err ? 0 : bytes)));
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

/**
 * The CLI failed between 'R' and GO: did the init fail an op before that? GO is closed
 * unsent (an init still in its ops stops at its execve gate, status 125, and the monitor
 * then reports NB_EV_EXEC), and the next event says.
 */
export async function opFailedFirst(
  plan: LaunchPlan,
  sp: native.SpawnResult,
  next: () => Promise<Event | null>,
): Promise<{ failure: OpFailed; code: number } | undefined> {
  if (sp.goFd >= 0) closeSync(sp.goFd);
  sp.goFd = -1;
  const e = await next();
  if (e?.type !== MONITOR_EVENT.OPFAIL) return undefined;
  return { failure: opFailure(plan, e.a, e.b, e.c), code: opFailureExitCode(plan, e.a, e.b) };
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
    cleanups.push(
      native.forwardSignals(
        pidfd,
        FORWARDED.map((sig) => constants.signals[sig]),
      ),
    );
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
    failure = opFailure(plan, first.a, first.b, first.c);
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
