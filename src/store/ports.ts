/**
 * Published ports, kept with their server from create to delete (compute/ports.ts). The
 * primary key (protocol, host port, host address) refuses a second server on the same
 * key; the overlap of an address with "every address" is checked in the creating
 * transaction (BEGIN IMMEDIATE: the write lock from the first read).
 */
import type { PortMapping } from '../runtime/network/ports.js';
import { statementCache, type Database } from './sqlite.js';

export interface PortRow extends PortMapping {
  serverId: string;
}

const COLUMNS = 'server_id AS serverId, protocol, host_ip AS hostIp, host_port AS hostPort, port';

export class PortRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(db: Database) {
    this.sql = statementCache(db);
  }

  add(serverId: string, m: PortMapping): void {
    this.sql('INSERT INTO server_ports (server_id, protocol, host_ip, host_port, port) VALUES (?, ?, ?, ?, ?)').run(
      serverId,
      m.protocol,
      m.hostIp,
      m.hostPort,
      m.port,
    );
  }

  ofServer(serverId: string): PortRow[] {
    return this.sql<PortRow>(`SELECT ${COLUMNS} FROM server_ports WHERE server_id = ? ORDER BY rowid`).all(serverId);
  }

  /** Rows on one protocol and host port (any address), to check an overlap. */
  onPort(protocol: string, hostPort: number): PortRow[] {
    return this.sql<PortRow>(`SELECT ${COLUMNS} FROM server_ports WHERE protocol = ? AND host_port = ?`).all(protocol, hostPort);
  }

  list(): PortRow[] {
    return this.sql<PortRow>(`SELECT ${COLUMNS} FROM server_ports ORDER BY protocol, host_port, host_ip`).all();
  }

  /** Whether any server of this root publishes a port (a stop of a server without any pays no nft call). */
  has(serverId: string): boolean {
    return this.sql<{ n: number }>('SELECT 1 AS n FROM server_ports WHERE server_id = ? LIMIT 1').get(serverId) !== undefined;
  }

  remove(serverId: string): number {
    return this.sql('DELETE FROM server_ports WHERE server_id = ?').run(serverId).changes;
  }
}
