/**
 * The bridge network as compute sees it: its settings (config file + the subnet chosen
 * on first use), leases in the store, and the attachment the runtime turns into a veth.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { BadRequest, Conflict } from '../errors.js';
import type { Store } from '../store/db.js';
import type { Lease } from '../store/leases.js';
import {
  checkClash,
  checkOwner,
  chooseBridge,
  detach,
  linkExists,
  listHostVeths,
  bridgeOwner,
  natPresent,
  removeBridge,
  syncNat,
  type Attachment,
  type BridgeSpec,
} from '../runtime/network/bridge.js';
import { DEFAULT_BRIDGE, readNetworkConfig, updateNetworkConfig, type NetworkConfig } from '../runtime/network/config.js';
import { stateRoot } from '../util/paths.js';
import {
  broadcastOf,
  chooseDefaultSubnet,
  contains,
  formatIp,
  parseIp,
  formatSubnet,
  gatewayOf,
  capacity,
  parseProcRoutes,
  parseSubnet,
  type Subnet,
} from '../runtime/network/ipam.js';
import { hostIfName, vethAlias } from '../runtime/network/names.js';

const SUBNET_SETTING = 'network.subnet';
const BRIDGE_SETTING = 'network.bridge';

export class NetworkService {
  private cfg: NetworkConfig | undefined;
  private chosen: Subnet | undefined;
  private chosenBridge: string | undefined;
  /** this root, as bridges name their owner */
  readonly root = resolve(stateRoot());

  constructor(private readonly store: Store) {}

  get config(): NetworkConfig {
    this.cfg ??= readNetworkConfig();
    return this.cfg;
  }

  get name(): string {
    return this.config.name;
  }

  /**
   * The configured bridge, or the one chosen on first use (kept in the settings table):
   * never a bridge another state root owns, so two roots never share an address space.
   */
  bridge(): string {
    if (this.config.bridgeSet) return this.config.bridge;
    if (this.chosenBridge) return this.chosenBridge;
    const stored = this.store.getSetting(BRIDGE_SETTING);
    if (stored) return (this.chosenBridge = stored);
    this.chosenBridge = this.store.tx(() => {
      const again = this.store.getSetting(BRIDGE_SETTING);
      if (again) return again;
      // A root from before bridges were chosen has used novabox0 since it chose its subnet.
      const name = this.store.getSetting(SUBNET_SETTING) ? DEFAULT_BRIDGE : chooseBridge(this.root);
      if (!name) {
        throw new Conflict('novabox0 to novabox99 all belong to other novabox state roots', {
          hint: `set "network.bridge" and "network.subnet" in ${this.config.file}`,
        });
      }
      this.store.setSetting(BRIDGE_SETTING, name);
      return name;
    });
    return this.chosenBridge;
  }

  /** The configured subnet, or the one chosen on first use (kept in the settings table). */
  subnet(): Subnet {
    if (this.config.subnet) return this.config.subnet;
    if (this.chosen) return this.chosen;
    const stored = this.store.getSetting(SUBNET_SETTING);
    if (stored) return (this.chosen = parseSubnet(stored));
    this.chosen = this.store.tx(() => {
      const again = this.store.getSetting(SUBNET_SETTING);
      if (again) return parseSubnet(again);
      const routes = parseProcRoutes(readFileSync('/proc/net/route', 'utf8'));
      const s = chooseDefaultSubnet(routes, this.bridge());
      if (!s) {
        throw new Conflict('every default subnet of the bridge network overlaps a host route', {
          hint: `set "network.subnet" in ${this.config.file}`,
        });
      }
      this.store.setSetting(SUBNET_SETTING, formatSubnet(s));
      return s;
    });
    return this.chosen;
  }

  spec(): BridgeSpec {
    const bridge = this.bridge();
    return { bridge, subnet: this.subnet(), nat: this.config.nat, mtu: this.config.mtu, file: this.config.file, owner: this.root };
  }

  /** Before anything is recorded: the config parses and, if the bridge is still to be made, its subnet is free. */
  check(): void {
    const spec = this.spec();
    if (!linkExists(spec.bridge)) checkClash(spec);
    else checkOwner(spec);
  }

  /** The owner's lease (kept across stop/start), allocated on first use; inside a caller's transaction or its own. */
  allocate(kind: Lease['ownerKind'], ownerId: string, fixedIp?: string): Lease {
    const subnet = this.subnet();
    const wanted = fixedIp === undefined ? undefined : this.checkFixedIp(fixedIp);
    // The usual case (a start): the lease exists; a plain read takes no write lock.
    const kept = this.store.leases.get(this.name, ownerId);
    if (kept && contains(subnet, parseIp(kept.address) ?? 0)) return kept;
    return this.store.tx(() => {
      const have = this.store.leases.get(this.name, ownerId);
      // A lease from before the subnet was reconfigured cannot be used any more.
      if (have && !contains(subnet, parseIp(have.address) ?? 0)) this.store.leases.release(ownerId);
      return this.store.leases.allocate(this.name, subnet, kind, ownerId, wanted);
    });
  }

  /** A fixed IP the user asked for: an address of the subnet that is not the network, gateway or broadcast. */
  checkFixedIp(addr: string): number {
    const subnet = this.subnet();
    const n = parseIp(addr);
    if (n === undefined) throw new BadRequest(`invalid fixed IP ${JSON.stringify(addr)}: expected an IPv4 address`);
    if (!contains(subnet, n)) throw new BadRequest(`fixed IP ${addr} is not in the subnet ${formatSubnet(subnet)} of network ${this.name}`);
    if (n === subnet.base || n === gatewayOf(subnet) || n === broadcastOf(subnet)) {
      throw new BadRequest(`fixed IP ${addr} is the network, gateway or broadcast address of ${formatSubnet(subnet)}`);
    }
    return n;
  }

  attachment(lease: Lease): Attachment {
    const spec = this.spec();
    return {
      ...spec,
      network: lease.network,
      address: parseIp(lease.address)!,
      mac: lease.mac,
      hostIf: hostIfName(lease.ownerId),
      alias: vethAlias(spec.bridge, lease.ownerId),
    };
  }

  /** Allocate (or find) the lease and describe it for the runtime. */
  attachmentFor(kind: Lease['ownerKind'], ownerId: string): Attachment {
    return this.attachment(this.allocate(kind, ownerId));
  }

  /** The owner's veth, if any is left (the kernel also removes it with the namespace). */
  detach(ownerId: string): void {
    // a look in sysfs first: a server without a veth (--network none, stopped) needs no
    // netlink, nor the FFI loaded for it (~1.5 ms of a delete)
    const name = hostIfName(ownerId);
    if (linkExists(name)) detach(name);
  }

  /** Veth and lease: what delete (and a failed build, as Nova deallocates) gives back. */
  release(ownerId: string): void {
    this.detach(ownerId);
    this.releaseLease(ownerId);
  }

  /** The lease alone: a `run` undoes its veth in a step of its own (runtime/run.ts). */
  releaseLease(ownerId: string): void {
    this.store.leases.release(ownerId);
  }

  /**
   * Give back the leases of owners of one kind that are gone (a `run` whose CLI was
   * killed). A `run` takes its lease only once its directory exists, which isLive
   * counts as alive while it is being set up.
   */
  releaseGone(kind: Lease['ownerKind'], isLive: (ownerId: string) => boolean): number {
    let n = 0;
    for (const l of this.store.leases.list(this.name)) {
      if (l.ownerKind === kind && !isLive(l.ownerId)) n += this.store.leases.release(l.ownerId);
    }
    return n;
  }

  leasesOf(ownerId: string): Lease[] {
    return this.store.leases.ofOwner(ownerId);
  }

  /** `novabox network show`. */
  show(): Record<string, unknown> {
    const spec = this.spec();
    const leases = this.store.leases.list(this.name);
    const names = new Map<string, string>();
    for (const s of this.store.servers.list({})) names.set(s.id, s.name);
    return {
      name: this.name,
      bridge: spec.bridge,
      subnet: formatSubnet(spec.subnet),
      gateway: formatIp(gatewayOf(spec.subnet)),
      nat: spec.nat,
      mtu: spec.mtu ?? 1500,
      'nat table': natPresent(spec.bridge),
      'bridge present': linkExists(spec.bridge),
      'bridge owner': bridgeOwner(spec.bridge) || null,
      capacity: capacity(spec.subnet),
      'leases in use': leases.length,
      leases: leases.map((l) => ({
        address: l.address,
        mac: l.mac,
        owner: l.ownerKind,
        id: l.ownerId,
        name: names.get(l.ownerId) ?? null,
        device: hostIfName(l.ownerId),
      })),
      config: spec.file,
    };
  }

  /** `network set --nat|--no-nat`: the config file, then the kernel (if the bridge is there and ours). */
  setNat(on: boolean): void {
    this.cfg = updateNetworkConfig({ nat: on });
    const spec = this.spec();
    if (!linkExists(spec.bridge)) return;
    checkOwner(spec);
    syncNat(spec);
  }

  /** `network delete`: the bridge and its NAT table; refused while leases are in use. */
  deleteBridge(): boolean {
    const leases = this.store.leases.list(this.name);
    if (leases.length) {
      throw new Conflict(`cannot delete network ${this.name}: ${leases.length} address(es) in use`, { hint: 'delete its servers first' });
    }
    return removeBridge(this.spec());
  }

  hostVeths() {
    const bridge = this.bridge();
    return listHostVeths().filter((v) => v.bridge === bridge || v.master === bridge);
  }
}
