/**
 * A server's monitor outlives the call that started it: the CLI exits and init (or the
 * nearest subreaper) adopts the monitor, but a process that lives on — `novabox serve` — stays
 * its parent, and a monitor that exits (its server stopped, deleted or ended) stays a zombie
 * under it until someone waits for it: serve would run out of pids. That process reaps
 * them: on every SIGCHLD, each child that is an exited novabox-monitor, by its own pid
 * (waitpid(-1) would take the exit of a Node child_process child from libuv).
 *
 * Whoever waits for its monitor itself (`run`, `exec`) loses nothing if this is first:
 * the init's status comes from the monitor's events and status file, never from the
 * monitor's wait status.
 */
import * as native from '../sys/native.js';
import { childPids, readProcState } from './proc.js';

export const MONITOR_COMM = 'novabox-monitor';

/** Wait for every exited monitor among this process's children; returns how many. */
export function reapExitedMonitors(): number {
  let reaped = 0;
  for (const pid of childPids()) {
    const p = readProcState(pid);
    if (p?.comm !== MONITOR_COMM || p.state !== 'Z') continue;
    if (native.reap(pid, false) !== null) reaped++;
  }
  return reaped;
}

/**
 * Reap exited monitors for as long as this process runs (call once, on the main thread:
 * signals reach no worker). Covers the monitors that worker threads start too. Returns
 * the function that stops it.
 */
export function reapMonitorsOnExit(): () => void {
  const onChild = () => {
    try {
      reapExitedMonitors();
    } catch {
      /* a waitpid error names no monitor of ours: the next SIGCHLD scans again */
    }
  };
  process.on('SIGCHLD', onChild);
  onChild();
  return () => process.off('SIGCHLD', onChild);
}
