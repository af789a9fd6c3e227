import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';

const statBuf = Buffer.allocUnsafe(2048);

/**
 * /proc/<pid>/stat as text. One read into a buffer: readFileSync takes its path for files
 * of unknown size (procfs says 0), whose first use in a process costs ~0.4 ms of
 * compilation — the snapshot and start paths read a stat file or three.
 */
function readStat(pid: number): string {
  const fd = openSync(`/proc/${pid}/stat`, 'r');
  try {
    const n = readSync(fd, statBuf, 0, statBuf.length, 0);
    if (n < statBuf.length) return statBuf.toString('latin1', 0, n);
  } finally {
    closeSync(fd);
  }
  return readFileSync(`/proc/${pid}/stat`, 'latin1'); // longer than the buffer: never seen
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined if gone. */
export function readProcStart(pid: number): number | undefined {
  let text: string;
  try {
    text = readStat(pid);
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  return Number(rest[19]);
}

/**
 * The one answer to "is this stored pid still that process?" (never trust a stored pid):
 * the process exists, is not a zombie, and started at `start` (field 22 of its stat);
 * when the record names the boot it was made in (`boot`), that boot is this one. A pid
 * reused after the process died, or a record of an earlier boot, is not that process.
 */
export function isSameProcess(pid: number | null | undefined, start: number | null | undefined, boot?: string): boolean {
  if (!pid || start === undefined || start === null) return false;
  if (boot !== undefined && boot !== bootId()) return false;
  return readProcStart(pid) === start;
}

/** The name (comm, at most 15 bytes) and state letter of a process, or undefined if gone. */
export function readProcState(pid: number): { comm: string; state: string } | undefined {
  let text: string;
  try {
    text = readStat(pid);
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  return { comm: text.slice(text.indexOf('(') + 1, close), state: text[close + 2]! };
}

/**
 * The children of this process: of every thread, as a child started by a worker thread is
 * that thread's (proc(5), /proc/pid/task/tid/children).
 */
export function childPids(): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    let text = '';
    try {
      text = readFileSync(`/proc/self/task/${tid}/children`, 'latin1');
    } catch {
      continue; // the thread ended
    }
    for (const p of text.split(' ')) if (p.trim()) out.push(Number(p));
  }
  return out;
}

let selfStartTime: number | undefined;
/** This process's start time (readProcStart of our own pid, read once). */
export function selfStart(): number {
  selfStartTime ??= readProcStart(process.pid) ?? 0;
  return selfStartTime;
}

/** What another reader of /proc found (the C lease, native-bindings/src/idmap.c): no second read. */
export function knowSelf(start: number, boot: string): void {
  selfStartTime ??= start;
  cachedBootId ??= boot;
}

let cachedBootId: string | undefined;
export function bootId(): string {
  cachedBootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return cachedBootId;
}
