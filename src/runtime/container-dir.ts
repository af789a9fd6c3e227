/**
 * A `run` container's directory. Its removal overlaps the monitor's removal of the cgroup:
 * on ext4 each rmdir of the container's scratch directories costs 0.15-0.4 ms (journal),
 * 1.2-2.5 ms in all on the critical path of every `run --rm`; once the init's exit event
 * came, they go (on the main thread when `run` read its events there, else in libuv's
 * thread pool) while the monitor removes the cgroup. Nothing uses them after that event (the
 * last process of the container's mount namespace is gone: the kernel unmounted the
 * overlay before the exit was reported).
 *
 * Making them the same way did not pay (measured: 60 interleaved rounds): the pool's
 * threads are started on first use, and that start then lands on the critical path
 * instead of in the idle wait for the exec event, for as much as the mkdirs saved.
 */
import { chownSync, mkdirSync, rmdir, unlink } from 'node:fs';
import { join } from 'node:path';
import { rmTree } from '../util/rmtree.js';
import { rmRunDir, rmRunDirSync } from '../sys/native.js';
import type { containerDirs } from './container.js';

type Dirs = ReturnType<typeof containerDirs>;

function settle(start: (cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => start((err) => resolve(err)));
}

/**
 * Make the container's directory with upper, work and rootfs (the overlay's). In its own
 * user namespace the upper dir, the overlay's /, belongs to the range's root.
 */
export function makeContainerDir(d: Dirs, idmap?: { uidBase: number; gidBase: number }): void {
  mkdirSync(d.upper, { recursive: true, mode: 0o755 });
  if (idmap) chownSync(d.upper, idmap.uidBase, idmap.gidBase);
  mkdirSync(d.work, { mode: 0o700 });
  mkdirSync(d.merged, { mode: 0o755 });
}

/**
 * Start removing what a `run` container leaves in its directory once its init exited:
 * rootfs, upper, the overlay's work/work (and, after a `volatile` mount, the
 * incompat/volatile/dirty marker overlay made in it), state.json, work and the directory,
 * in the thread pool. finishContainerDir() walks what is left if that did not do it all.
 */
export function startRemovingContainerDir(d: Dirs, volatile: boolean, onThisThread = false): Promise<NodeJS.ErrnoException | null> {
  // `onThisThread`: a caller that never started the pool (the run's events were read on
  // the main thread) removes it here, meanwhile the monitor removes the cgroup
  const sync = onThisThread ? rmRunDirSync(d.dir) : undefined;
  if (sync !== undefined) return Promise.resolve(errnoError(sync));
  // One job in the pool for the whole layout (build/novabox.node): the chain below costs
  // a return to the event loop per rmdir/unlink, 5-7 of them one after the other.
  const native = rmRunDir(d.dir);
  if (native) return native.then(errnoError);
  return startRemovingContainerDirJs(d, volatile);
}

function errnoError(r: number): NodeJS.ErrnoException | null {
  return r === 0 ? null : Object.assign(new Error(`cannot remove the container directory: errno ${-r}`), { errno: r });
}

/** The same with fs.rmdir/unlink, one after the other where they depend (no novabox.node). */
export function startRemovingContainerDirJs(d: Dirs, volatile: boolean): Promise<NodeJS.ErrnoException | null> {
  const gone = (e: NodeJS.ErrnoException | null) => (e?.code === 'ENOENT' ? null : e);
  const rm = (f: typeof rmdir | typeof unlink, path: string) => settle((cb) => f(path, cb)).then(gone);
  const work = join(d.work, 'work');
  const marker = join(work, 'incompat', 'volatile');
  const steps: [typeof rmdir | typeof unlink, string][] = volatile
    ? [
        [unlink, join(marker, 'dirty')],
        [rmdir, marker],
        [rmdir, join(work, 'incompat')],
        [rmdir, work],
      ]
    : [[rmdir, work]];
  const workGone = steps.reduce<Promise<NodeJS.ErrnoException | null>>(
    (prev, [f, path]) => prev.then((e) => e ?? rm(f, path)),
    Promise.resolve(null),
  );
  // then work and the directory itself, still in the pool (the main thread meanwhile
  // waits for the monitor's end); an error stops the chain and finishContainerDir walks
  const all = Promise.all([rm(rmdir, d.merged), rm(rmdir, d.upper), workGone, rm(unlink, d.state)]).then(
    (errs) => errs.find((e) => e !== null) ?? null,
  );
  return all.then((e) => e ?? rm(rmdir, d.work)).then((e) => e ?? rm(rmdir, d.dir));
}

/**
 * Remove the rest once every started removal has settled: work and the directory itself;
 * anything unexpected (a non-empty upper layer, the network's /etc files, ENOTEMPTY or
 * any other error) falls back to the general walk of the whole tree.
 */
export async function finishContainerDir(d: Dirs, started: Promise<NodeJS.ErrnoException | null>): Promise<void> {
  if ((await started) === null) return;
  rmTree(d.dir); // not the usual layout (or gone in part already): walk what is left
}
