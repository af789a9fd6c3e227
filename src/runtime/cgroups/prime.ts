/**
 * Writing a pid to cgroup.procs takes the kernel's cgroup threadgroup rwsem for writing;
 * when nobody wrote one for a while, that first write waits out an RCU grace period
 * (8–20 ms measured on this host's v1 hierarchies: rcu_sync_enter). A no-op write of our
 * own pid into the cgroup we are already in, started in libuv's thread pool as soon as a
 * container start begins, pays that wait in parallel with the planning, the spawn and
 * the monitor's clone; the real placement then finds the fast path. cgroup v2 needs
 * none of this: the init is cloned straight into its cgroup (CLONE_INTO_CGROUP).
 */
import { close, openSync, readFileSync, write } from 'node:fs';
import { join } from 'node:path';
import type { CgroupLayout } from './types.js';

export function primeCgroupAttach(layout: CgroupLayout): void {
  if (layout.kind === 'v2') return;
  let own: string | undefined;
  try {
    // "8:pids:/some/path": our cgroup in the pids hierarchy (any v1 hierarchy would do)
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const [, controllers, path] = line.split(':');
      if (controllers?.split(',').includes('pids') && layout.mounts.pids) own = join(layout.mounts.pids, path ?? '/');
    }
  } catch {
    return;
  }
  if (!own) return;
  // Open here, write in the thread pool as ONE request: fs.writeFile would chain open and
  // write through the event loop, which the synchronous start path keeps busy.
  let fd: number;
  try {
    fd = openSync(join(own, 'cgroup.procs'), 'w');
  } catch {
    return;
  }
  write(fd, String(process.pid), () => close(fd, () => {})); // best effort: placement works without it, only slower
}
