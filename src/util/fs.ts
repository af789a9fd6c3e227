import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';

/**
 * Write a file so readers see the old or the new content, never half of it. `durable`
 * adds an fsync (survives a power cut); records of ephemeral containers skip it.
 */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644, durable = true): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    if (typeof data === 'string') writeSync(fd, data);
    else writeSync(fd, data);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** made on first use: a SharedArrayBuffer at load costs every start, and most never sleep */
let sleeper: Int32Array | undefined;
/** Block the thread for ms milliseconds (cleanup loops that must stay synchronous). */
export function sleepSync(ms: number): void {
  Atomics.wait((sleeper ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, ms);
}

/**
 * Poll `done` until it holds or timeoutMs passes. The pause grows with the time waited
 * (1 ms, up to 20 ms, never more than an eighth of the wait so far): what is waited for
 * is most often over within a few milliseconds (a killed init reaped, a cgroup emptied),
 * and a doubling pause (1, 2, 4, 8 …) overshot such an end by up to as long again.
 */
export function waitFor(done: () => boolean, timeoutMs: number): boolean {
  const start = Date.now();
  const deadline = start + timeoutMs;
  for (;;) {
    if (done()) return true;
    const now = Date.now();
    if (now >= deadline) return false;
    sleepSync(Math.min(20, Math.max(1, (now - start) >> 3), deadline - now));
  }
}
