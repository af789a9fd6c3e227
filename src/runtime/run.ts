/**
 * `novabox run`: one container in the foreground, like `podman run --rm` or
 * `lxc-execute`. stdio passes straight through (or a pty with -t), signals are
 * forwarded to the init, the exit status comes back, and everything the container
 * made is removed when it ends (on every path, errors included).
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import net from 'node:net';
import tty from 'node:tty';
import { constants } from 'node:os';
import { NovaboxError } from '../errors.js';
import * as native from '../sys/native.js';
import type { CgroupDriver, CgroupHandle } from './cgroups/types.js';
import {
  containerDirs, destroyContainer, opFailure, opFailureExitCode, releaseName, reserveName, writeState, type Prepared,
} from './container.js';
import { bootId, readProcStart } from './proc.js';
import { Reverter } from '../util/revert.js';

const EV_EXEC = 2;
const EV_OPFAIL = 3;
const EV_EXIT = 4;

export interface Event {
  type: number;
  a: number;
  b: number;
}

/** Reads the monitor's 16-byte event records from a pipe without blocking the event loop. */
export class EventReader {
  private buf = Buffer.alloc(0);
  private queue: Event[] = [];
  private waiters: ((e: Event | null) => void)[] = [];
  private ended = false;
  private sock: net.Socket;

  constructor(fd: number) {
    this.sock = new net.Socket({ fd, readable: true, writable: false });
    this.sock.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 16) {
        this.push({ type: this.buf.readInt32LE(0), a: this.buf.readInt32LE(4), b: this.buf.readInt32LE(8) });
        this.buf = this.buf.subarray(16);
      }
    });
    const end = () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(null);
    };
    this.sock.on('end', end);
    this.sock.on('error', end);
    this.sock.on('close', end);
  }

  private push(e: Event): void {
    const w = this.waiters.shift();
    if (w) w(e);
    else this.queue.push(e);
  }

  /** The next event, or null once the monitor has closed the pipe. */
  next(): Promise<Event | null> {
    const e = this.queue.shift();
    if (e) return Promise.resolve(e);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.sock.destroy();
  }
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

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
  let ttyDrained: Promise<void> | undefined;

  try {
    reserveName(state.name, state.id);
    undo.add('name', () => {
      if (!keep) releaseName(state.name, state.id);
    });
    mkdirSync(dirs.upper, { recursive: true, mode: 0o755 });
    undo.add('container directory', () => {
      if (!keep) destroyContainer(state, undefined);
    });
    mkdirSync(dirs.work, { mode: 0o700 });
    mkdirSync(dirs.merged, { mode: 0o755 });
    writeState(state);

    cgroup = driver.create(state.cgroupPath, p.limits);
    const cg = cgroup;
    undo.add('cgroup', () => cg.remove());

    const devNull = io.interactive ? -1 : openSync('/dev/null', 'r');
    const useTty = plan.tty;
    try {
      spawned = native.spawn(plan, { stdio: [io.interactive ? 0 : devNull, 1, 2], tty: useTty });
    } finally {
      if (devNull >= 0) closeSync(devNull);
    }
    const sp = spawned;
    events = new EventReader(sp.eventsFd);
    undo.add('monitor', () => {
      // Closing GO without 'G' makes the init exit before its first op.
      try { closeSync(sp.goFd); } catch { /* already closed */ }
      if (sp.consoleFd >= 0) try { closeSync(sp.consoleFd); } catch { /* already closed */ }
      native.reap(sp.monitorPid);
    });

    pidfd = native.pidfdOpen(sp.initPid);
    cgroup.place(sp.initPid);
    Object.assign(state, {
      status: 'running',
      monitorPid: sp.monitorPid,
      monitorStart: readProcStart(sp.monitorPid),
      initPid: sp.initPid,
      initStart: readProcStart(sp.initPid),
      bootId: bootId(),
    });
    writeState(state);

    // Forward signals to the init from now on. (A pid 1 ignores signals it has no handler for.)
    for (const sig of FORWARDED) {
      const h = () => native.pidfdSignal(pidfd, constants.signals[sig]);
      process.on(sig, h);
      cleanups.push(() => process.off(sig, h));
    }
    writeSync(sp.goFd, 'G');
    closeSync(sp.goFd);

    if (useTty) {
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
        const out = process.stdout;
        native.ptyResize(master, (out.isTTY && out.rows) || 24, (out.isTTY && out.columns) || 80);
        const t = attachTty(master, io.interactive);
        cleanups.push(t.detach);
        ttyDrained = t.drained;
      }
    }

    const first = await events.next();
    let failure: NovaboxError | undefined;
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

    const { code, signal } = native.waitStatusToExitCode(exit.a);
    // The last output may still sit in the pty: read it before detaching.
    if (ttyDrained) await Promise.race([ttyDrained, new Promise((r) => setTimeout(r, 1000))]);
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
      const oom = safeStats(cgroup)?.oomKills ?? 0;
      if (oom > 0) {
        io.stderr(`novabox: container ${state.name} was killed: out of memory (limit ${formatBytes(p.limits.memoryBytes)})`);
      }
    }
    return code;
  } finally {
    for (const c of cleanups.reverse()) c();
    events?.close();
    if (pidfd >= 0) closeSync(pidfd);
    // The monitor exits right after the EXIT event; reap it before removing anything.
    const errors = await undo.run();
    for (const e of errors) io.stderr(`novabox: cleanup: ${e.message}`);
  }
}

function safeStats(cg: CgroupHandle) {
  try {
    return cg.stats();
  } catch {
    return undefined;
  }
}

/** Proxy the local terminal to the pty master. `drained` resolves when the pty has no writer left. */
function attachTty(master: number, interactive: boolean): { detach: () => void; drained: Promise<void> } {
  const stream = new tty.ReadStream(master);
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
