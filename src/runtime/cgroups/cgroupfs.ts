/**
 * Synchronous cgroupfs access shared by the v1 and v2 drivers. Cgroup creation sits on the
 * container start path, so each read or write is open + read/write + close and nothing more.
 */
import { sleepSync, waitFor } from '../../util/fs.js';
import { closeSync, constants, mkdirSync, openSync, readSync, readdirSync, rmdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequest, SysError, fromNodeError } from '../../errors.js';
import type { CgroupWrite } from './types.js';
import { cgroupDevices } from '../../sys/native.js';

/** The effects a driver has outside cgroup files; tests replace them to imitate the kernel. */
export interface CgroupIo {
  /** one directory level; throws EEXIST when it exists */
  mkdir(path: string): void;
  rmdir(path: string): void;
  kill(pid: number, signal: NodeJS.Signals | number): void;
  /** cgroup v2: attach the device allow-list (eBPF) to this directory */
  /** `allow`: devices.allow lines beyond the fixed list (novabox-oci's linux.devices) */
  devices(dir: string, allow?: readonly string[]): void;
}

export interface DriverOptions {
  io?: Partial<CgroupIo>;
  /** how long freeze() waits for the kernel to report frozen (default 2000) */
  freezeTimeoutMs?: number;
  /** how long remove() waits for processes to exit and rmdir to stop failing with EBUSY (default 2000) */
  removeTimeoutMs?: number;
}

export interface ResolvedOptions {
  io: CgroupIo;
  freezeTimeoutMs: number;
  removeTimeoutMs: number;
}

export const realIo: CgroupIo = {
  mkdir: (path) => mkdirSync(path),
  rmdir: (path) => rmdirSync(path),
  kill: (pid, signal) => process.kill(pid, signal),
  devices: (dir, allow) => cgroupDevices(dir, allow),
};

export function resolveOptions(opts: DriverOptions = {}): ResolvedOptions {
  return {
    io: { ...realIo, ...opts.io },
    freezeTimeoutMs: opts.freezeTimeoutMs ?? 2000,
    removeTimeoutMs: opts.removeTimeoutMs ?? 5000,
  };
}

function errnoOf(err: unknown): string | undefined {
  return err instanceof SysError ? err.errno : (err as NodeJS.ErrnoException | undefined)?.code;
}

export function isErrno(err: unknown, code: string): boolean {
  return errnoOf(err) === code;
}

/**
 * One write(2) of the whole value, as cgroup files require. O_TRUNC without O_CREAT (runc's
 * WriteFile): a missing file is ENOENT, never a new regular file.
 */
export function writeCgroupFile(path: string, value: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_TRUNC);
  } catch (err) {
    throw fromNodeError(err, path);
  }
  try {
    writeSync(fd, value);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw e.code ? new SysError('write', e.code, path, `writing "${value}"`) : err;
  } finally {
    closeSync(fd);
  }
}

/** made on first use: `run` reads no cgroup file (the monitor makes and removes its cgroup) */
let readBuffer: Buffer | undefined;

/** Read a whole cgroup file without the fstat readFileSync does (cgroup files report size 0). */
export function readCgroupFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (err) {
    throw fromNodeError(err, path);
  }
  try {
    let text = '';
    readBuffer ??= Buffer.alloc(64 * 1024);
    for (;;) {
      const n = readSync(fd, readBuffer, 0, readBuffer.length, null);
      if (n === 0) return text;
      text += readBuffer.toString('utf8', 0, n);
    }
  } catch (err) {
    throw fromNodeError(err, path);
  } finally {
    closeSync(fd);
  }
}

/** undefined when the file (or its cgroup) does not exist */
export function readOptional(path: string): string | undefined {
  try {
    return readCgroupFile(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** "usage_usec 123\nuser_usec 100" -> 123 for key usage_usec */
export function readKeyed(text: string | undefined, key: string): number | undefined {
  const match = text && new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

export function toNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : undefined;
}

export function readPids(dir: string): number[] {
  const text = readOptional(join(dir, 'cgroup.procs'));
  return text ? text.split('\n').filter(Boolean).map(Number) : [];
}

/** Apply writes; a missing optional file is skipped. */
export function applyWrites(writes: CgroupWrite[], dirOf: (controller: string) => string): void {
  for (const w of writes) {
    try {
      writeCgroupFile(join(dirOf(w.controller), w.file), w.value);
    } catch (err) {
      if (!(w.optional && isErrno(err, 'ENOENT'))) throw err;
    }
  }
}

/** Poll `done` with a growing pause (1 ms up to 20 ms) until it holds or `timeoutMs` passes. */
export { waitFor };

export function isSigkill(signal: NodeJS.Signals | number): boolean {
  return signal === 'SIGKILL' || signal === 9;
}

/**
 * Signal every pid `list()` returns, re-reading until no new pid shows up: a process can
 * fork between the read and the kill.
 */
export function signalAll(list: () => number[], signal: NodeJS.Signals | number, io: CgroupIo): void {
  const signalled = new Set<number>();
  for (let pass = 0; pass < 100; pass++) {
    const fresh = list().filter((pid) => !signalled.has(pid));
    if (fresh.length === 0) return;
    for (const pid of fresh) {
      signalled.add(pid);
      killPid(pid, signal, io);
    }
  }
}

function killPid(pid: number, signal: NodeJS.Signals | number, io: CgroupIo): void {
  try {
    io.kill(pid, signal);
  } catch (err) {
    if (!isErrno(err, 'ESRCH')) throw fromNodeError(err, `pid ${pid}`);
  }
}

/**
 * Remove cgroup directories, children first. The kernel refuses rmdir while a process is
 * inside (EBUSY), so SIGKILL stragglers and wait for cgroup.procs to empty, then rmdir,
 * retrying EBUSY (a dying task can hold the cgroup a moment longer). ENOENT: already gone.
 */
/**
 * The common case costs one rmdir per directory: a container that has exited left its
 * cgroups empty (its pid namespace died with its init). True when every directory is
 * gone; false at the first one the kernel refuses (processes or children left), and the
 * caller takes the slow path (kill, thaw, retry), which finishes what this started.
 */
export function removeIfEmpty(dirs: string[], opts: ResolvedOptions): boolean {
  for (const dir of dirs) {
    try {
      opts.io.rmdir(dir);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) return false;
    }
  }
  return true;
}

export function removeTrees(dirs: string[], opts: ResolvedOptions): void {
  const deadline = Date.now() + opts.removeTimeoutMs;
  for (const dir of dirs) removeTree(dir, deadline, opts.io);
}

/**
 * Run fn again when a level it needs vanished under it (a parent removed concurrently:
 * novabox keeps its parent cgroup, but an administrator, or a novabox older than that,
 * may remove it):
 * ENOENT once it is gone, ENODEV while the kernel is still removing it (a write to the
 * cgroup.subtree_control of a dying cgroup; seen with 30 concurrent creates on v2).
 */
export function retryVanished<T>(fn: () => T, attempts = 5): T {
  for (let i = 1; ; i++) {
    try {
      return fn();
    } catch (err) {
      if (i >= attempts || !(isErrno(err, 'ENOENT') || isErrno(err, 'ENODEV'))) throw err;
    }
  }
}

function removeTree(dir: string, deadline: number, io: CgroupIo): void {
  let children: string[];
  try {
    children = readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join(dir, entry.name));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw fromNodeError(err, dir);
  }
  for (const child of children) removeTree(child, deadline, io);

  const emptied = waitFor(
    () => {
      const pids = readPids(dir);
      for (const pid of pids) killPid(pid, 'SIGKILL', io);
      return pids.length === 0;
    },
    Math.max(0, deadline - Date.now()),
  );
  if (!emptied) {
    throw new SysError('rmdir', 'EBUSY', dir, `processes ${readPids(dir).join(' ')} still inside after SIGKILL`);
  }
  for (;;) {
    try {
      io.rmdir(dir);
      return;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      if (!isErrno(err, 'EBUSY') || Date.now() >= deadline) throw fromNodeError(err, dir);
      sleepSync(5);
    }
  }
}

/**
 * v1 freezer: a frozen task acts on SIGKILL only once thawed, and a frozen ancestor keeps
 * its descendants frozen, so thaw top-down. ENOENT: nothing to thaw.
 */
export function thawTree(dir: string): void {
  const state = join(dir, 'freezer.state');
  const current = readOptional(state)?.trim();
  if (current === undefined) return;
  if (current !== 'THAWED') writeCgroupFile(state, 'THAWED');
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) thawTree(join(dir, entry.name));
  }
}

/** "novabox/0f3c": relative, no empty, "." or ".." segments. */
export function checkCgroupPath(path: string): string[] {
  const segments = path.split('/');
  const bad = path.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..' || /[\0\n]/.test(s));
  if (bad) {
    throw new BadRequest(`invalid cgroup path "${path}": expected a relative path such as novabox/web`);
  }
  return segments;
}

/** Limits at or above this are "no limit" (v1 reports PAGE_COUNTER_MAX pages as bytes). */
const NO_LIMIT = 2 ** 62;

/** memory.max / memory.limit_in_bytes: bytes, or null for none. */
export function parseLimit(text: string | undefined): number | null {
  if (text === undefined || text.trim() === 'max') return null;
  const n = toNumber(text);
  return n === undefined || n >= NO_LIMIT ? null : n;
}

/** v2 io.stat ("8:0 rbytes=1 wbytes=2 …" per device): the sums. */
export function parseIoStat(text: string | undefined): { read: number; write: number } | null {
  if (text === undefined) return null;
  let read = 0;
  let write = 0;
  for (const m of text.matchAll(/\b([rw])bytes=(\d+)/g)) {
    if (m[1] === 'r') read += Number(m[2]);
    else write += Number(m[2]);
  }
  return { read, write };
}

/** v1 blkio.throttle.io_service_bytes ("8:0 Read 1", "8:0 Write 2", …, "Total 3"): the sums over devices. */
export function parseBlkioBytes(text: string | undefined): { read: number; write: number } | null {
  if (text === undefined) return null;
  let read = 0;
  let write = 0;
  for (const m of text.matchAll(/^\S+ (Read|Write) (\d+)$/gm)) {
    if (m[1] === 'Read') read += Number(m[2]);
    else write += Number(m[2]);
  }
  return { read, write };
}
