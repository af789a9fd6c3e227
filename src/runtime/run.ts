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
import type { CgroupDriver, CgroupHandle } from './cgroups/types.js';
import { applyDeviceFilter } from './cgroups/devices.js';
import { mustPlaceAfterClone } from './cgroups/placement.js';
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

const EV_EXEC = 2;
const EV_OPFAIL = 3;
const EV_EXIT = 4;

export interface Event {
  type: number;
  a: number;
  b: number;
}

/**
 * Reads the monitor's 16-byte event records. fs.read runs in libuv's thread pool, so
 * a blocking pipe read does not block the event loop (signals are still forwarded),
 * and the start path needs neither node:net nor node:stream.
 */
export class EventReader {
  private closed = false;

  constructor(private readonly fd: number) {}

  /** The next event, or null once the monitor has closed the pipe. */
  async next(): Promise<Event | null> {
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
    return { type: b.readInt32LE(0), a: b.readInt32LE(4), b: b.readInt32LE(8) };
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
}

/** Create, start and supervise one container; resolves to the exit code for the CLI. */
export async function runForeground(p: Prepared, driver: CgroupDriver, io: RunIO): Promise<number> {
  const { state, plan } = p;
  const dirs = containerDirs(state.id);
  const undo = new Reverter();
  let cgroup: CgroupHandle | undefined;
  let events: EventReader | undefined;
  let pidfd = -1;
  let spawned: native.SpawnResult | undefined;
  const cleanups: (() => void)[] = [];
  let keep = false; // no --rm and the container ran: keep its writable layer and record
  let removing: Promise<NodeJS.ErrnoException | null> | undefined;
  let initExited = false; // the monitor reported the init's exit
  let reapLast = -1;

  const net = p.network;
  try {
    reserveName(state.name, state.id);
    undo.add('name', () => {
      if (!keep) releaseName(state.name, state.id);
    });
    // registered first: the removal takes a directory made only in part, or not at all
    undo.add('container directory', async () => {
      if (keep) return;
      await finishContainerDir(dirs, removing ?? startRemovingContainerDir(dirs, p.spec.rootfs.volatile === true));
      releaseName(state.name, state.id);
    });
    makeContainerDir(dirs);
    trace('container dirs made');
    // The lease once the directory exists (a concurrent cleanup then counts us as alive).
    const attachment = net?.allocate();
    if (net) undo.add('address lease', net.release);
    if (attachment) writeEtcFiles(dirs.dir, p.spec.hostname, formatIp(attachment.address));
    if (net) trace('address leased');

    // With a cgroup2 directory (pure v2 or hybrid) the monitor clones the init straight
    // into it, so it must exist first; on pure v1 the cgroup is made while the monitor
    // starts, and the init joins it itself after GO (cgroups/placement.ts).
    const makeCgroup = () => {
      cgroup = driver.create(state.cgroupPath, p.limits);
      const cg = cgroup;
      undo.add('cgroup', () => cg.remove());
      applyDeviceFilter(driver.layout, state.cgroupPath);
      trace('cgroup created');
    };
    if (plan.cgroupDir) makeCgroup();

    const devNull = io.interactive ? -1 : openSync('/dev/null', 'r');
    const useTty = plan.tty;
    try {
      spawned = native.spawn(plan, { stdio: [io.interactive ? 0 : devNull, 1, 2], tty: useTty, tag: state.cgroupPath });
    } finally {
      if (devNull >= 0) closeSync(devNull);
    }
    const sp = spawned;
    trace('monitor spawned');
    undo.add('monitor', () => {
      // Closing GO without 'G' makes the init exit before its first op.
      if (sp.goFd >= 0) try { closeSync(sp.goFd); } catch { /* already closed */ }
      if (sp.consoleFd >= 0) try { closeSync(sp.consoleFd); } catch { /* already closed */ }
      if (!events) closeSync(sp.eventsFd);
      // After the exit event the monitor holds nothing the next steps remove (it is in
      // neither the container's cgroup nor its directory): its own exit overlaps them,
      // and it is reaped last. Before it, its exit is what ends the init: wait for it.
      if (!initExited) native.reap(sp.monitorPid);
      else if (native.reap(sp.monitorPid, false) === null) reapLast = sp.monitorPid;
    });
    if (!cgroup) makeCgroup();

    const { placed } = native.awaitInit(sp);
    trace('init cloned');
    events = new EventReader(sp.eventsFd);
    pidfd = native.pidfdOpen(sp.initPid);
    if (mustPlaceAfterClone(plan, placed)) cgroup!.place(sp.initPid);
    trace('placed in cgroup');
    if (attachment) {
      attach(attachment, sp.initPid);
      undo.add('veth', () => void detach(attachment.hostIf));
    }
    Object.assign(state, {
      status: 'running',
      monitorPid: sp.monitorPid,
      monitorStart: readProcStart(sp.monitorPid),
      initPid: sp.initPid,
      initStart: readProcStart(sp.initPid),
      bootId: bootId(),
    });
    writeState(state);
    trace('state written');

    const outcome = await superviseForeground(plan, sp, events, pidfd, io.interactive, cleanups);
    initExited = true;
    trace('exit event');
    const { failure, failureCode } = outcome;
    // The init is gone: its directory goes in the thread pool while the cgroup is removed.
    if (state.remove || failure) removing = startRemovingContainerDir(dirs, p.spec.rootfs.volatile === true);
    const { code, signal } = native.waitStatusToExitCode(outcome.waitStatus);
    if (!state.remove && !failure) {
      keep = true;
      Object.assign(state, { status: 'exited', exitCode: code, finished: new Date().toISOString() });
      writeState(state);
    }
    if (failure) {
      io.stderr(`novabox: ${failure.message}`);
      return failureCode;
    }
    if (signal === constants.signals.SIGKILL && p.limits.memoryBytes !== undefined) {
      const oom = safeStats(cgroup!)?.oomKills ?? 0;
      if (oom > 0) {
        io.stderr(`novabox: container ${state.name} was killed: out of memory (limit ${formatBytes(p.limits.memoryBytes)})`);
      }
    }
    return code;
  } finally {
    for (const c of cleanups.reverse()) c();
    events?.close();
    if (pidfd >= 0) closeSync(pidfd);
    const errors = await undo.run();
    if (reapLast > 0) {
      try {
        native.reap(reapLast);
      } catch (err) {
        errors.push(new Error(`undo monitor: ${(err as Error).message}`, { cause: err }));
      }
      trace('monitor reaped');
    }
    trace('cleaned up');
    for (const e of errors) io.stderr(`novabox: cleanup: ${e.message}`);
  }
}

export interface Outcome {
  /** the init failed before execve: which op, and the exit status to report */
  failure?: OpFailed;
  failureCode: number;
  waitStatus: number;
}

/**
 * The foreground part shared by `run` and `server exec`, once the new process is placed:
 * forward our signals to it, send GO, attach the terminal (the init sends the pty master
 * after GO), then wait for exec and exit, draining the pty before returning.
 */
export async function superviseForeground(
  plan: LaunchPlan,
  sp: native.SpawnResult,
  events: EventReader,
  pidfd: number,
  interactive: boolean,
  cleanups: (() => void)[],
): Promise<Outcome> {
  for (const sig of FORWARDED) {
    const h = () => native.pidfdSignal(pidfd, constants.signals[sig]);
    process.on(sig, h);
    cleanups.push(() => process.off(sig, h));
  }
  writeSync(sp.goFd, 'G');
  closeSync(sp.goFd);
  sp.goFd = -1; // closed: an undo must not close the number again (EBADF, or a reused fd)
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
  const first = await events.next();
  trace('exec event');
  let failure: OpFailed | undefined;
  let failureCode = 0;
  if (first?.type === EV_OPFAIL) {
    failure = opFailure(plan, first.a, first.b);
    failureCode = opFailureExitCode(plan, first.a, first.b);
  } else if (first?.type !== EV_EXEC) {
    throw new NovaboxError('internal', 'the container monitor stopped before the container started');
  }
  let exit = await events.next();
  while (exit && exit.type !== EV_EXIT) exit = await events.next();
  if (!exit) throw new NovaboxError('internal', 'the container monitor stopped without reporting an exit status');
  // The last output may still sit in the pty: read it before detaching.
  if (drained) await Promise.race([drained, new Promise((r) => setTimeout(r, 1000))]);
  return { failure, failureCode, waitStatus: exit.a };
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
