/**
 * A `run` container's directory, made and removed partly in libuv's thread pool so that
 * the main thread's work overlaps the filesystem's. On ext4 each mkdir/rmdir of the
 * container's scratch directories costs 0.15-0.4 ms (journal), about 1 ms to make them
 * and 1.2-2.5 ms to remove them, on the critical path of every `run --rm`. While the
 * directories are made, the main thread loads koffi, encodes the plan, starts the
 * monitor and makes the cgroup; while they are removed, it removes the cgroup and reaps
 * the monitor. Nothing uses them before GO (the init mounts the overlay after GO), and
 * nothing after the init's exit event (the last process of the container's mount
 * namespace is gone: the kernel unmounted the overlay before reporting the exit).
 */
import { mkdir, mkdirSync, rmdir, rmdirSync, unlink } from 'node:fs';
import { join } from 'node:path';
import { rmTree } from '../util/rmtree.js';
import type { containerDirs } from './container.js';

type Dirs = ReturnType<typeof containerDirs>;

function settle(start: (cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => start((err) => resolve(err)));
}

/**
 * Make the container's directory now (the caller's undo removes it, so it must exist
 * when the undo is registered), and its upper, work and rootfs directories in the
 * thread pool. The promise rejects with the first mkdir error; it is marked handled,
 * so the caller may await it late (before anything uses the directories).
 */
export function makeContainerDir(d: Dirs): Promise<void> {
  mkdirSync(d.dir, { recursive: true, mode: 0o755 });
  const made = Promise.all([
    settle((cb) => mkdir(d.upper, { mode: 0o755 }, cb)),
    settle((cb) => mkdir(d.work, { mode: 0o700 }, cb)),
    settle((cb) => mkdir(d.merged, { mode: 0o755 }, cb)),
  ]).then((errs) => {
    const err = errs.find((e) => e !== null);
    if (err) throw err;
  });
  made.catch(() => {});
  return made;
}

/**
 * Start removing what a `run` container leaves in its directory once its init exited:
 * rootfs, upper, the overlay's work/work (and what a `volatile` mount adds in it) and
 * state.json, in parallel in the thread pool.
 * finishContainerDir() completes the removal.
 */
export function startRemovingContainerDir(d: Dirs): Promise<NodeJS.ErrnoException | null> {
  const gone = (e: NodeJS.ErrnoException | null) => (e?.code === 'ENOENT' ? null : e);
  const work = join(d.work, 'work');
  return Promise.all([
    settle((cb) => rmdir(d.merged, cb)).then(gone),
    settle((cb) => rmdir(d.upper, cb)).then(gone),
    settle((cb) => rmdir(work, cb)).then(async (e) => {
      if (e?.code !== 'ENOTEMPTY') return gone(e);
      // a `volatile` overlay mount leaves work/incompat/volatile/dirty behind
      const volatile = join(work, 'incompat', 'volatile');
      for (const [rm, path] of [[unlink, join(volatile, 'dirty')], [rmdir, volatile], [rmdir, join(work, 'incompat')], [rmdir, work]] as const) {
        const err = gone(await settle((cb) => rm(path, cb)));
        if (err) return err;
      }
      return null;
    }),
    settle((cb) => unlink(d.state, cb)).then(gone),
  ]).then((errs) => errs.find((e) => e !== null) ?? null);
}

/**
 * Remove the rest once every started removal has settled: work and the directory itself;
 * anything unexpected (a non-empty upper layer, the network's /etc files, ENOTEMPTY or
 * any other error) falls back to the general walk of the whole tree.
 */
export async function finishContainerDir(d: Dirs, started: Promise<NodeJS.ErrnoException | null>): Promise<void> {
  const err = await started;
  if (!err) {
    try {
      rmdirSync(d.work);
      rmdirSync(d.dir);
      return;
    } catch {
      /* not the usual layout: walk it */
    }
  }
  rmTree(d.dir);
}
