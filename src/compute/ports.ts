/**
 * Published ports of servers (`server create --publish`): kept with the server from create
 * to delete, as its address is (a port is refused while another server of this root holds
 * it, running or not); the DNAT rules (runtime/network/ports.ts) are in the kernel from
 * its start to its stop, and a crash's are removed by the reconcile that notices it (or
 * `novabox doctor`).
 */
import { networkInterfaces } from 'node:os';
import { BadRequest, Conflict } from '../errors.js';
import {
  checkDistinct,
  checkHostFree,
  formatPort,
  listPorts,
  listPublished,
  type PortsListing,
  overlaps,
  parsePublish,
  portsTable,
  publish,
  removeRule,
  afterAttach,
  unpublish,
  type PortMapping,
  type PublishedRule,
} from '../runtime/network/ports.js';
import { hostIfName } from '../runtime/network/names.js';
import { isContainerLive } from '../runtime/container.js';
import { isRunning } from '../runtime/server.js';
import type { Store } from '../store/db.js';
import type { NetworkService } from './network.js';

/** An address the host has (any of 127.0.0.0/8 is loopback's). */
function isHostAddress(ip: string): boolean {
  if (ip.startsWith('127.')) return true;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && a.address === ip) return true;
  }
  return false;
}

export class PortService {
  constructor(
    private readonly store: Store,
    private readonly network: NetworkService,
  ) {}

  /**
   * A create's `--publish` specs: parsed, distinct, on an address of this host, and free
   * (no process of the host listens there, no rule of any novabox root holds it).
   */
  parse(specs: string[], opts: { network: string; count: number }): PortMapping[] {
    if (!specs.length) return [];
    const ms = specs.map(parsePublish);
    if (opts.network !== 'novabox') {
      throw new BadRequest(`--publish needs the bridge network "${this.network.name}", not --network ${opts.network}`);
    }
    if (opts.count !== 1) throw new BadRequest('a port can be published by one server only, not with --min/--max');
    checkDistinct(ms);
    this.checkFree(ms);
    return ms;
  }

  /**
   * A migrating server's ports, on the target (`server receive`, `server import`): the
   * same mappings, which must be free here as for a create (on an address of this host,
   * no process listening, no rule or server of any root holding them).
   */
  checkArrival(ports: unknown): PortMapping[] {
    if (ports === undefined) return [];
    if (!Array.isArray(ports)) throw new BadRequest('the server stream is corrupt: its published ports are not a list');
    const ms = ports.map((p: Partial<PortMapping>) =>
      parsePublish(`${p?.hostIp ? `${p.hostIp}:` : ''}${String(p?.hostPort)}:${String(p?.port)}/${String(p?.protocol)}`),
    );
    if (!ms.length) return ms;
    checkDistinct(ms);
    this.checkFree(ms);
    return ms;
  }

  private checkFree(ms: PortMapping[]): void {
    for (const m of ms) {
      if (m.hostIp && !isHostAddress(m.hostIp)) throw new BadRequest(`cannot publish on ${m.hostIp}: it is not an address of this host`);
    }
    this.checkStored(ms);
    checkHostFree(ms);
    const kernel = this.dropStale(listPorts()).rules;
    for (const m of ms) {
      const held = kernel.find((r) => overlaps(m, r));
      if (held)
        throw new Conflict(
          `host port ${m.hostPort}/${m.protocol} is already published (to ${held.address}:${held.port}, nftables table ${held.table})`,
        );
    }
  }

  /**
   * Another server of this root holds the port, or a `run` container while it lives
   * (checked again inside the creating transaction).
   */
  private checkStored(ms: PortMapping[]): void {
    for (const m of ms) {
      for (const held of this.store.ports.onPort(m.protocol, m.hostPort).filter((r) => overlaps(m, r))) {
        const server = this.store.servers.get(held.serverId);
        if (!server && !isContainerLive(held.serverId)) {
          this.store.ports.remove(held.serverId); // a container whose CLI was killed
          continue;
        }
        const who = server ? `server "${server.name}"` : `run container ${held.serverId.slice(0, 12)}`;
        throw new Conflict(`host port ${m.hostPort}/${m.protocol} is already published by ${who} (${formatPort(held)})`);
      }
    }
  }

  /**
   * `run -p`, once its address is leased: recorded and in the kernel (one transaction for
   * the record; the rules refused if another took the port meanwhile).
   */
  publishContainer(id: string, ms: PortMapping[]): void {
    this.store.tx(() => this.record(id, ms));
    try {
      this.publish(id);
    } catch (err) {
      this.forget(id);
      throw err;
    }
  }

  /** Its end: the rules and the record. */
  unpublishContainer(id: string): void {
    this.unpublish(id);
    this.forget(id);
  }

  /** Inside the creating transaction. */
  record(serverId: string, ms: PortMapping[]): void {
    this.checkStored(ms);
    for (const m of ms) this.store.ports.add(serverId, m);
  }

  of(serverId: string): PortMapping[] {
    return this.store.ports.ofServer(serverId).map(({ protocol, hostIp, hostPort, port }) => ({ protocol, hostIp, hostPort, port }));
  }

  /** Mappings as `ps` and `server show` print them. */
  labels(ms: PortMapping[]): string[] {
    return ms.map(formatPort);
  }

  /** As `server show` prints them: `0.0.0.0:8080->80/tcp`. */
  field(serverId: string): string[] {
    return this.of(serverId).map(formatPort);
  }

  private address(serverId: string): string | undefined {
    return this.network.leasesOf(serverId).find((l) => l.network === this.network.name)?.address;
  }

  /** Before the server starts: its rules (a port another takes meanwhile is refused). */
  publish(serverId: string): void {
    const ms = this.of(serverId);
    if (!ms.length) return;
    const address = this.address(serverId);
    if (!address) throw new Conflict('the server has published ports but no address on the bridge network');
    const spec = this.network.spec();
    checkHostFree(ms);
    publish(spec.bridge, spec.subnet, address, ms, this.dropStale(listPorts()));
  }

  /** Once its veth is on the bridge: loopback sources routed out of the bridge, and hairpin. */
  started(serverId: string): void {
    if (this.store.ports.has(serverId)) afterAttach(this.network.bridge(), hostIfName(serverId));
  }

  /** Its rules out of the kernel (stop, crash, delete); the record stays until delete. */
  unpublish(serverId: string): void {
    if (!this.store.ports.has(serverId)) return;
    const address = this.address(serverId);
    if (!address) return;
    try {
      unpublish(this.network.bridge(), address, this.of(serverId));
    } catch {
      /* doctor finds it */
    }
  }

  /** delete: the record (after unpublish). */
  forget(serverId: string): void {
    this.store.ports.remove(serverId);
  }

  /** A server that runs or has an action under way (it may be making its rules), or a `run` container that lives. */
  private isHolderLive(id: string): boolean {
    const s = this.store.servers.get(id);
    if (s) return s.taskState !== null || isRunning(this.store.servers.getRuntime(id));
    return isContainerLive(id);
  }

  /** Rules of this root that nobody holds any more (a `run` whose CLI was killed): out, so they never refuse a port. */
  private dropStale(listing: PortsListing): PortsListing {
    const stale = new Set(this.orphans(undefined, listing.rules));
    for (const r of stale) {
      try {
        removeRule(r);
      } catch {
        /* gone meanwhile */
      }
    }
    return { rules: listing.rules.filter((r) => !stale.has(r)), tables: listing.tables };
  }

  /**
   * doctor: rules of this root's table that no running server or live `run` container of
   * this root holds (a crash nobody reconciled, a CLI killed between its rules and its start).
   */
  orphans(isLive: (ownerId: string) => boolean = (id) => this.isHolderLive(id), listed = listPublished()): PublishedRule[] {
    const table = portsTable(this.network.bridge());
    const rules = listed.filter((r) => r.table === table);
    if (!rules.length) return [];
    const byAddress = new Map(this.store.leases.list(this.network.name).map((l) => [l.address, l.ownerId]));
    return rules.filter((r) => {
      const owner = byAddress.get(r.address);
      if (!owner || !isLive(owner)) return true;
      return !this.of(owner).some(
        (m) => m.protocol === r.protocol && m.hostIp === r.hostIp && m.hostPort === r.hostPort && m.port === r.port,
      );
    });
  }

  /** doctor: records of `run` containers that are gone (their CLI was killed). */
  staleRecords(): string[] {
    const ids = new Set(this.store.ports.list().map((r) => r.serverId));
    return [...ids].filter((id) => !this.store.servers.get(id) && !isContainerLive(id));
  }

  remove(r: PublishedRule): void {
    removeRule(r);
  }
}
