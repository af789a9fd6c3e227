/** The container monitor's event records (struct nb_event), read from its events pipe. */
import { readSync } from 'node:fs';

/**
 * The monitor's events, NB_EV_* of native-bindings/include/novabox.h: the one table of
 * their numbers (a, b and c mean what the header says per type).
 */
export const MONITOR_EVENT = {
  /** a = the init's pid, b = 1 when it is in its cgroup already */
  PID: 1,
  /** the init's execve succeeded */
  EXEC: 2,
  /** a = op index (-2: the late ops plan was refused), b = errno */
  OPFAIL: 3,
  /** a = the init's wait status, c = OOM kills read before the cgroup's removal, or -1 */
  EXIT: 4,
  /** the monitor failed: a = stage, b = errno, c = cgroup step index */
  ERROR: 5,
  /** after EXIT or ERROR: a = 0 when the monitor removed the cgroup it made */
  CGROUP: 6,
  /** NB_PLAN_DETACH: the init ran its ops and waits for 'G' (a = its pid); the monitor exits */
  GATE: 7,
  /** NB_PLAN_RESTORE, after EXEC: a = the restored root's pid (the init from now on), or -1 with b = criu's wait status */
  RESTORED: 8,
} as const;
export type MonitorEventType = (typeof MONITOR_EVENT)[keyof typeof MONITOR_EVENT];

/** One of the monitor's 16-byte records (struct nb_event). */
export interface MonitorEvent {
  type: MonitorEventType;
  a: number;
  b: number;
  c: number;
}

/**
 * The next record on the monitor's events pipe, read on this thread (blocking), or 'eof'
 * once the monitor closed it. An error other than EINTR/EAGAIN is thrown when `strict`,
 * else it ends the stream too (a descriptor closed already: nothing more to learn).
 */
export function readEvent(fd: number, strict = false): MonitorEvent | 'eof' {
  const b = Buffer.alloc(16);
  let got = 0;
  while (got < 16) {
    let n: number;
    try {
      n = readSync(fd, b, got, 16 - got, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EINTR') continue;
      if (strict) throw err;
      return 'eof';
    }
    if (n === 0) return 'eof';
    got += n;
  }
  return eventOf(b);
}

/** A record's fields, from its 16 bytes. */
export function eventOf(b: Buffer): MonitorEvent {
  return { type: b.readInt32LE(0) as MonitorEventType, a: b.readInt32LE(4), b: b.readInt32LE(8), c: b.readInt32LE(12) };
}
