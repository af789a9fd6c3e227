/**
 * Stop and delete wait for a server's processes to end (up to the stop timeout, 10 s, for
 * one that ignores its stop signal), and the compute service waits synchronously, as a
 * daemonless CLI may. In the long-lived serve process that would stall every client, so
 * serve runs them on a worker thread with its own store connection: the event loop stays
 * free and the request that asked answers when the action is done.
 */
import { Worker } from 'node:worker_threads';
import { NovaboxError, type ErrorCode } from '../../errors.js';
import type { Caller, ComputeService } from '../../compute/servers.js';

export type BlockingOp =
  | { op: 'stop'; id: string; caller: Caller }
  | { op: 'delete'; id: string; caller: Caller }
  | { op: 'reboot'; id: string; caller: Caller; hard: boolean };

export interface BlockingRunner {
  run(op: BlockingOp): Promise<void>;
  close(): Promise<void>;
}

interface Reply {
  seq: number;
  error?: { code: string; message: string };
}

/** In the calling thread (unit tests; and the fallback when no worker can start). */
export function inlineRunner(compute: ComputeService): BlockingRunner {
  return {
    run: async (o) => {
      if (o.op === 'stop') await compute.stop(o.id, o.caller);
      else if (o.op === 'reboot') await compute.reboot(o.id, o.caller, { hard: o.hard });
      else compute.delete(o.id, o.caller);
    },
    close: async () => {},
  };
}

export const WORKER_TAG = 'novabox-blocking-ops';

/** A worker running `file` (the API bundle), which answers through workerMain(). */
export function workerRunner(file: string): BlockingRunner {
  // trackUnmanagedFds off: the runtime closes fds it opened through the FFI (pidfds), which
  // Node would otherwise warn about as "closed but not opened" on every stop
  const worker = new Worker(file, { workerData: { tag: WORKER_TAG }, trackUnmanagedFds: false });
  const pending = new Map<number, { done: () => void; fail: (e: Error) => void }>();
  let seq = 0;
  let dead: Error | undefined;
  worker.on('message', (r: Reply) => {
    const p = pending.get(r.seq);
    if (!p) return;
    pending.delete(r.seq);
    if (r.error) p.fail(new NovaboxError(r.error.code as ErrorCode, r.error.message));
    else p.done();
  });
  const failAll = (err: Error) => {
    dead = err;
    for (const p of pending.values()) p.fail(err);
    pending.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new NovaboxError('internal', `the worker for stop/delete exited (${code})`)));
  worker.unref();
  return {
    run: (o) =>
      new Promise<void>((done, fail) => {
        if (dead) return fail(dead);
        const n = ++seq;
        pending.set(n, { done, fail });
        worker.postMessage({ ...o, seq: n });
      }),
    close: async () => {
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
}

/** The worker's side: one compute service on its own store connection, one op at a time. */
export async function workerMain(port: import('node:worker_threads').MessagePort): Promise<void> {
  const { openCompute } = await import('../../compute/open.js');
  const compute = openCompute();
  const run = inlineRunner(compute);
  port.on('message', (m: BlockingOp & { seq: number }) => {
    run.run(m).then(
      () => port.postMessage({ seq: m.seq }),
      (err: unknown) => {
        const e = err as { message?: string };
        const code = err instanceof NovaboxError ? err.code : 'internal';
        port.postMessage({ seq: m.seq, error: { code, message: e.message ?? String(err) } });
      },
    );
  });
}
