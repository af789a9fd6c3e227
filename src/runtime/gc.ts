/**
 * Containers whose CLI was killed (kill -9, host crash) leave a record behind. The
 * next command that looks finds every record whose monitor is no longer alive and
 * cleans up what it held. A kept (no --rm) container that exited is left as it is.
 */
import type { CgroupDriver } from './cgroups/types.js';
import { existsSync, lstatSync, readdirSync, readlinkSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupPathOf, paths } from '../util/paths.js';
import { isoTime } from '../util/time.js';
import { containerDirs, destroyContainer, listContainerIds, readState, writeState, type ContainerState } from './container.js';
import { isSameProcess } from './proc.js';

function ageOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return Date.now();
  }
}

export function gcStale(driver: CgroupDriver): ContainerState[] {
  const cleaned: ContainerState[] = [];
  for (const id of listContainerIds()) {
    const s = readState(id);
    if (!s) {
      // Made by a CLI that died before the monitor started (the record comes with the monitor).
      const dir = containerDirs(id).dir;
      if (Date.now() - ageOf(dir) > 60_000) {
        try {
          driver.open(cgroupPathOf(id)).remove();
        } catch {
          /* retried next time */
        }
        rmSync(dir, { recursive: true, force: true });
      }
      continue;
    }
    if (s.status === 'exited') continue;
    if (s.status === 'running' && isSameProcess(s.monitorPid, s.monitorStart, s.bootId)) continue;
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
      writeState({ ...s, status: 'exited', exitCode: s.exitCode ?? 255, finished: isoTime() });
    }
    cleaned.push(s);
  }
  // Names whose container directory is gone.
  let names: string[] = [];
  try {
    names = readdirSync(paths.names());
  } catch {
    /* none yet */
  }
  for (const n of names) {
    const link = join(paths.names(), n);
    try {
      if (!existsSync(containerDirs(readlinkSync(link)).dir) && Date.now() - lstatSync(link).mtimeMs > 60_000) unlinkSync(link);
    } catch {
      /* raced with another command */
    }
  }
  return cleaned;
}
