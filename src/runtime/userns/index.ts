/** Isolated id ranges for user namespaces: planned in subid.ts, leased in leases.ts. */
import { readdirSync } from 'node:fs';
import { paths } from '../../util/paths.js';
import { loadSubids } from './files.js';
import { idmapTake } from '../../sys/native.js';
import { subidPaths } from './subid.js';
import {
  gcLeases,
  leaseDir,
  leaseFromNative,
  ownedBy,
  takeLease,
  freeSlotOf,
  takeLeaseOf,
  takerAlive,
  type IdmapLease,
  type LeaseOwnerKind,
} from './leases.js';

export { formatIdmap, parseUserns, RANGE_SIZE, USERNS_MODES, type UsernsMode } from './subid.js';
export { usernsMode, readUsernsDefault } from './config.js';
export {
  leaseCreatedMs,
  leaseDir,
  leaseOf,
  listLeases,
  ownedBy,
  releaseLease,
  releaseOwner,
  takerAlive,
  type IdmapLease,
} from './leases.js';

/**
 * A lease for a new owner, root's /etc/subuid and /etc/subgid entry added on first use.
 * `fast`: try the C taker first (native-bindings/src/idmap.c: `run`'s start path, where
 * this in JavaScript cost ~1 ms of cold code); whatever it leaves to us (first use, bad
 * input, none free) takeLease decides, with its sentences.
 */
export function allocateIdmap(
  kind: LeaseOwnerKind,
  ownerId: string,
  notice: (line: string) => void,
  seen?: IdmapLease[],
  fast = false,
): IdmapLease {
  if (fast && !ownerId.includes(' ')) {
    const p = subidPaths();
    const text = idmapTake(leaseDir(), [p.subuid, p.subgid, p.passwd, p.group], `${kind === 'server' ? 's' : 'c'}${ownerId}`);
    if (text !== undefined) return leaseFromNative(kind, ownerId, text, seen);
  }
  return takeLease(kind, ownerId, loadSubids(notice), undefined, seen);
}

/** Whether exactly this range could be leased here now (a live migration's offer; nothing taken). */
export function idmapFree(want: { uidBase: number; gidBase: number }, notice: (line: string) => void): boolean {
  return freeSlotOf(loadSubids(notice), want) !== undefined;
}

/** The lease of exactly this range (a live migration's target), or undefined when it is not free here (leases.ts takeLeaseOf). */
export function allocateIdmapOf(
  kind: LeaseOwnerKind,
  ownerId: string,
  want: { uidBase: number; gidBase: number },
  notice: (line: string) => void,
): IdmapLease | undefined {
  return takeLeaseOf(kind, ownerId, loadSubids(notice), want);
}

/**
 * Leases of `run` containers that are gone: the process that took the lease is dead and
 * the container's directory is gone (removed, or by gcStale after a kill -9). A kept
 * container (no --rm) keeps its range until `novabox rm`, as its writable layer holds
 * ids of that range.
 */
export function gcContainerLeases(seen?: IdmapLease[]): IdmapLease[] {
  // a lease names its container by a prefix of its id: the directory is looked for among
  // all (read once, for the first lease whose taker is dead)
  let ids: string[] | undefined;
  const containerExists = (l: IdmapLease): boolean => {
    try {
      ids ??= readdirSync(paths.containers());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return true; // unsure: the lease stays
      ids = [];
    }
    return ids.some((id) => ownedBy(l, id));
  };
  return gcLeases(['container'], (l) => !takerAlive(l) && !containerExists(l), undefined, seen);
}
