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

/** Poll `done` with a backoff (1, 2, 4 … 20 ms) until it holds or timeoutMs passes. */
export function waitFor(done: () => boolean, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  for (let pauseMs = 1; ; pauseMs = Math.min(pauseMs * 2, 20)) {
    if (done()) return true;
    if (Date.now() >= deadline) return false;
    sleepSync(pauseMs);
  }
}
