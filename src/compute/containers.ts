/** `novabox ps` and `novabox rm`: the use cases on the containers of `run` (not servers). */
import { constants } from 'node:os';
import { Conflict, NotFound } from '../errors.js';
import { cgroupDriver } from '../runtime/cgroups/index.js';
import { destroyContainer, listContainerIds, lookupName, readState, type ContainerState } from '../runtime/container.js';
import { gcStale } from '../runtime/gc.js';
import { gcContainerLeases, releaseOwner } from '../runtime/userns/index.js';
import { isSameProcess } from '../runtime/proc.js';
import { sleepSync } from '../util/fs.js';

export function listContainers(all: boolean): ContainerState[] {
  gcStale(cgroupDriver());
  gcContainerLeases();
  return listContainerIds()
    .map(readState)
    .filter((s): s is ContainerState => s !== undefined && (all || s.status !== 'exited'))
    .sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : 0));
}

export function removeContainer(nameOrId: string, force: boolean): void {
  const driver = cgroupDriver();
  gcStale(driver);
  gcContainerLeases();
  const id = lookupName(nameOrId);
  const s = id ? readState(id) : undefined;
  if (!s) throw new NotFound(`no container named "${nameOrId}"`);
  const running = s.status !== 'exited' && isSameProcess(s.monitorPid, s.monitorStart, s.bootId);
  if (running && !force) throw new Conflict(`container "${s.name}" is running`, { hint: 'stop it first, or pass --force' });
  const cg = driver.open(s.cgroupPath);
  if (running) {
    cg.killAll(constants.signals.SIGKILL);
    for (let i = 0; i < 200 && isSameProcess(s.monitorPid, s.monitorStart, s.bootId); i++) sleepSync(10);
  }
  const errors = destroyContainer(s, cg);
  if (errors.length) throw errors[0];
  releaseOwner(s.id); // its writable layer is gone: so is the need for its id range
}
