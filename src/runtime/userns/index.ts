/** Isolated id ranges for user namespaces: planned in subid.ts, leased in leases.ts. */
import { existsSync } from 'node:fs';
import { paths } from '../../util/paths.js';
import { loadSubids } from './files.js';
import { gcLeases, takeLease, takerAlive, type IdmapLease, type LeaseOwnerKind } from './leases.js';

export { formatIdmap, parseUserns, RANGE_SIZE, USERNS_MODES, type UsernsMode } from './subid.js';
export { usernsMode, readUsernsDefault } from './config.js';
export { leaseDir, leaseOf, listLeases, releaseLease, releaseOwner, takerAlive, type IdmapLease } from './leases.js';

/** A lease for a new owner, root's /etc/subuid and /etc/subgid entry added on first use. */
export function allocateIdmap(kind: LeaseOwnerKind, ownerId: string, notice: (line: string) => void, seen?: IdmapLease[]): IdmapLease {
  return takeLease(kind, ownerId, loadSubids(notice), undefined, seen);
}

/**
 * Leases of `run` containers that are gone: the process that took the lease is dead and
 * the container's directory is gone (removed, or by gcStale after a kill -9). A kept
 * container (no --rm) keeps its range until `novabox rm`, as its writable layer holds
 * ids of that range.
 */
export function gcContainerLeases(seen?: IdmapLease[]): IdmapLease[] {
  return gcLeases(['container'], (l) => !takerAlive(l) && !existsSync(paths.container(l.ownerId)), undefined, seen);
}
