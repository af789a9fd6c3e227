/**
 * Address leases of the bridge network (IPAM). Many CLI processes allocate at once:
 * the choice and the insert happen in one BEGIN IMMEDIATE transaction, which holds the
 * database's write lock from the first read, so two processes can never pick the same
 * address; the primary key (network, address) would refuse it anyway.
 */
import { Conflict } from '../errors.js';
import { formatIp, macFor, parseIp, pickAddress, type Subnet, formatSubnet } from '../runtime/network/ipam.js';
import { statementCache, type Database, type Tx } from './sqlite.js';
import { nowIso } from './time.js';

export interface Lease {
  network: string;
  address: string;
  mac: string;
  ownerKind: 'server' | 'container';
  ownerId: string;
  createdAt: string;
}

const COLUMNS = 'network, address, mac, owner_kind AS ownerKind, owner_id AS ownerId, created_at AS createdAt';

export class LeaseRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(
    db: Database,
    private readonly tx: Tx,
  ) {
    this.sql = statementCache(db);
  }

  /**
   * The owner's lease on the network, allocating if it has none: `wanted` (a fixed IP the
   * user asked for, already checked to be a host address of the subnet) or the lowest free.
   */
  allocate(network: string, subnet: Subnet, ownerKind: Lease['ownerKind'], ownerId: string, wanted?: number): Lease {
    return this.tx(() => {
      const have = this.get(network, ownerId);
      if (have) return have;
      const used = this.sql<{ address: string }>('SELECT address FROM network_leases WHERE network = ?')
        .all(network)
        .map((r) => parseIp(r.address))
        .filter((a): a is number => a !== undefined);
      if (wanted !== undefined && used.includes(wanted)) {
        throw new Conflict(`Fixed IP address ${formatIp(wanted)} is already in use on network ${network}`);
      }
      const addr = wanted ?? pickAddress(subnet, used);
      if (addr === undefined) {
        throw new Conflict(`no free address left in ${formatSubnet(subnet)} of network ${network}`, {
          hint: 'delete servers, or configure a larger "network.subnet"',
        });
      }
      const lease: Lease = { network, address: formatIp(addr), mac: macFor(addr), ownerKind, ownerId, createdAt: nowIso() };
      this.sql('INSERT INTO network_leases (network, address, mac, owner_kind, owner_id, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
        lease.network,
        lease.address,
        lease.mac,
        lease.ownerKind,
        lease.ownerId,
        lease.createdAt,
      );
      return lease;
    });
  }

  get(network: string, ownerId: string): Lease | undefined {
    return this.sql<Lease>(`SELECT ${COLUMNS} FROM network_leases WHERE network = ? AND owner_id = ?`).get(network, ownerId);
  }

  /** Every lease of an owner (one per network). */
  ofOwner(ownerId: string): Lease[] {
    return this.sql<Lease>(`SELECT ${COLUMNS} FROM network_leases WHERE owner_id = ? ORDER BY network`).all(ownerId);
  }

  /** Leases of many owners at once (server list). */
  ofOwners(ownerIds: string[]): Map<string, Lease[]> {
    const out = new Map<string, Lease[]>();
    if (!ownerIds.length) return out;
    const wanted = new Set(ownerIds);
    for (const l of this.list()) if (wanted.has(l.ownerId)) out.set(l.ownerId, [...(out.get(l.ownerId) ?? []), l]);
    return out;
  }

  list(network?: string): Lease[] {
    const rows =
      network === undefined
        ? this.sql<Lease>(`SELECT ${COLUMNS} FROM network_leases`).all()
        : this.sql<Lease>(`SELECT ${COLUMNS} FROM network_leases WHERE network = ?`).all(network);
    return rows.sort((a, b) => (parseIp(a.address) ?? 0) - (parseIp(b.address) ?? 0));
  }

  /** Release every lease of an owner; returns how many there were. */
  release(ownerId: string): number {
    return this.sql('DELETE FROM network_leases WHERE owner_id = ?').run(ownerId).changes;
  }
}
