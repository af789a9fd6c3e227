/**
 * Servers' id ranges, allocated like their addresses: taken when the server is created
 * (its lease link, runtime/userns/leases.ts, decides; the row in idmap_leases is the
 * server's record of it, written in the same transaction), kept across stop, start,
 * reboot and rebuild, given back on delete and on a failed build, and by the reconcile
 * (gc: every `server list`, every create with --userns auto) when the process that took
 * it died before its server was recorded.
 */
import {
  allocateIdmap,
  allocateIdmapOf,
  idmapFree,
  gcContainerLeases,
  leaseCreatedMs,
  leaseDir,
  listLeases,
  releaseLease,
  takerAlive,
  type IdmapLease,
} from '../runtime/userns/index.js';
import type { Idmap } from '../runtime/plan/spec.js';
import { testPause } from '../util/test-pause.js';
import type { Store } from '../store/db.js';
import type { IdmapLeaseRow } from '../store/idmap-leases.js';

/** a lease whose server is not recorded yet is left alone this long while its taker lives (serve) */
const UNRECORDED_GRACE_MS = 60_000;

export class IdmapService {
  constructor(
    private readonly store: Store,
    private readonly notice: (line: string) => void = (line) => void process.stderr.write(`${line}\n`),
  ) {}

  /**
   * The server's range, a lease taken if it has none (a server created with auto whose
   * build failed gets a new one when it boots). Inside a transaction: the caller's, or one of its own.
   */
  leaseFor(serverId: string, seen?: IdmapLease[]): Idmap {
    return this.store.tx(() => {
      const have = this.store.idmaps.ofOwner(serverId);
      if (have) return toIdmap(have);
      const lease = this.allocate(serverId, seen);
      this.record(serverId, lease);
      testPause('server-idmap-leased'); // its link taken, its record written in a transaction not committed yet
      return lease.idmap;
    });
  }

  /**
   * The server's range when it must be exactly `want` (a live migration's arrival: CRIU
   * restores its user namespace with the dumped maps): that range leased and recorded, or
   * false when it is not free on this host (nothing taken then). A server that has a range
   * already keeps it only if it is that one.
   */
  leaseExactly(serverId: string, want: { uidBase: number; gidBase: number }): Idmap | false {
    return this.store.tx(() => {
      const have = this.store.idmaps.ofOwner(serverId);
      if (have) return have.uidBase === want.uidBase && have.gidBase === want.gidBase ? toIdmap(have) : false;
      const lease = allocateIdmapOf('server', serverId, want, this.notice);
      if (!lease) return false;
      this.record(serverId, lease);
      return lease.idmap;
    });
  }

  /** A lease just taken, recorded as the server's; the link given back when the record fails. */
  private record(serverId: string, lease: IdmapLease): void {
    try {
      this.store.idmaps.insert({
        slot: lease.slot,
        uidBase: lease.idmap.uidBase,
        gidBase: lease.idmap.gidBase,
        size: lease.idmap.size,
        ownerKind: 'server',
        ownerId: serverId,
        nonce: lease.nonce,
      });
    } catch (err) {
      releaseLease(lease);
      throw err;
    }
  }

  /** Whether a server arriving live could lease exactly this range here (nothing taken). */
  isFree(want: { uidBase: number; gidBase: number }): boolean {
    return idmapFree(want, this.notice);
  }

  /**
   * A new lease, taken in C when novabox.node is there (runtime/userns; `seen`: the links
   * it read, for a gc() after). When none is left, the ranges of takers that died are freed
   * and it is tried once more: the create that runs into them pays for that, not every one.
   */
  private allocate(serverId: string, seen?: IdmapLease[]): IdmapLease {
    try {
      return allocateIdmap('server', serverId, this.notice, seen, true);
    } catch (err) {
      if (!this.gc().length) throw err;
      return allocateIdmap('server', serverId, this.notice, seen, true);
    }
  }

  /** The server's range, or undefined (--userns host, or none taken yet). */
  idmapOf(serverId: string): Idmap | undefined {
    const row = this.store.idmaps.ofOwner(serverId);
    return row && toIdmap(row);
  }

  /**
   * Give the server's range back: the record first (in the caller's transaction, when
   * there is one), then the link. A crash in between leaves a link without a record,
   * which gc() frees; never a record without its link.
   */
  release(serverId: string): void {
    const row = this.store.idmaps.ofOwner(serverId);
    if (!row) return;
    this.store.idmaps.remove(serverId);
    this.releaseLink(row);
  }

  private releaseLink(row: Pick<IdmapLeaseRow, 'slot' | 'nonce'>): void {
    const lease = listLeases().leases.find((l) => l.slot === row.slot && l.nonce === row.nonce);
    if (lease) releaseLease(lease);
  }

  /**
   * The reconcile after a kill -9: server leases with no record (the creating process
   * died before its transaction committed, or a delete stopped between record and link),
   * records whose server is deleted, and `run` containers' leases whose container is gone.
   * `seen`: the links as a lease just taken read them (no second walk of the directory).
   */
  gc(seen?: IdmapLease[]): IdmapLease[] {
    const freed: IdmapLease[] = [];
    // every `server list` and create with --userns auto runs this: one read, and the write
    // lock (BEGIN IMMEDIATE and its commit) only when there is a record to remove, judged
    // again inside
    let { nonces: recorded, orphans } = this.store.idmaps.nonces();
    if (orphans) {
      this.store.tx(() => {
        for (const row of this.store.idmaps.orphans()) {
          this.store.idmaps.remove(row.ownerId);
          this.releaseLink(row);
        }
      });
      recorded = this.store.idmaps.nonces().nonces;
    }
    const dir = leaseDir();
    const leases = seen ?? listLeases(dir).leases;
    for (const l of leases) {
      if (l.kind !== 'server' || recorded.has(l.nonce)) continue;
      if (takerAlive(l) && Date.now() - leaseCreatedMs(l, dir) < UNRECORDED_GRACE_MS) continue;
      // judged again in a transaction: a record committed since the list is seen, one being written waits
      const done = this.store.tx(() => !this.store.idmaps.ofNonce(l.nonce) && releaseLease(l, dir));
      if (done) freed.push(l);
    }
    freed.push(...gcContainerLeases(leases));
    return freed;
  }
}

function toIdmap(r: Pick<IdmapLeaseRow, 'uidBase' | 'gidBase' | 'size'>): Idmap {
  return { uidBase: r.uidBase, gidBase: r.gidBase, size: r.size };
}
