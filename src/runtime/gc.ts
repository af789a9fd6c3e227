/**
 * Containers whose CLI was killed (kill -9, host crash) leave a record behind. The
 * next command that looks finds every record whose monitor is no longer alive and
 * cleans up what it held. A kept (no --rm) container that exited is left as it is.
 */
import type { CgroupDriver } from './cgroups/types.js';
import { destroyContainer, isAlive, listContainerIds, readState, writeState, type ContainerState } from './container.js';

export function gcStale(driver: CgroupDriver): ContainerState[] {
  const cleaned: ContainerState[] = [];
  for (const id of listContainerIds()) {
    const s = readState(id);
    if (!s || s.status === 'exited') continue;
    if (s.status === 'running' && isAlive(s.monitorPid, s.monitorStart, s.bootId)) continue;
    if (s.status === 'created' && Date.now() - Date.parse(s.created) < 60_000) continue; // being set up right now
    const cg = driver.open(s.cgroupPath);
    if (s.remove) {
      destroyContainer(s, cg);
    } else {
      try {
        cg.remove();
      } catch {
        /* retried next time */
      }
      writeState({ ...s, status: 'exited', exitCode: s.exitCode ?? 255, finished: new Date().toISOString() });
    }
    cleaned.push(s);
  }
  return cleaned;
}
