/**
 * The host side of the bridge network: the bridge itself (created on first use with the
 * gateway address), optional masquerade in an nftables table of novabox's own, and the
 * per-container veth pair (net.c does the kernel work over rtnetlink).
 */
// node:child_process is loaded on first call (NAT only) by the bundle's stand-in (scripts/build.mjs)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Conflict } from '../../errors.js';
import * as nativeNet from '../../sys/net.js';
import { trace } from '../../util/trace.js';
import { bridgeMac, findClash, formatIp, formatSubnet, gatewayOf, parseProcRoutes, type Subnet } from './ipam.js';
import { VETH_PREFIX, natTable, parseVethAlias } from './names.js';
import { removePortsTable } from './ports.js';

export interface BridgeSpec {
  bridge: string;
  subnet: Subnet;
  nat: boolean;
  /** MTU of the bridge and every veth; undefined: 1500 */
  mtu?: number;
  /** the config file, named in messages */
  file: string;
  /** the state root that owns the bridge (its ifalias says so); undefined: no ownership check */
  owner?: string;
}

/** Everything one container's network needs; made by compute from its lease. */
export interface Attachment extends BridgeSpec {
  /** the Nova network name */
  network: string;
  address: number;
  mac: string;
  hostIf: string;
  alias: string;
}

export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/** Refuse a subnet that a host route (not our bridge's own) overlaps. */
export function checkClash(spec: BridgeSpec): void {
  const clash = findClash(spec.subnet, parseProcRoutes(readFileSync('/proc/net/route', 'utf8')), spec.bridge);
  if (clash) {
    throw new Conflict(
      `subnet ${formatSubnet(spec.subnet)} of bridge ${spec.bridge} overlaps the host's route ${formatSubnet(clash.subnet)} on ${clash.iface}`,
      { hint: `set another "network.subnet" in ${spec.file}` },
    );
  }
}

// ---- ownership: one bridge, one state root ------------------------------------------

const OWNER_PREFIX = 'novabox-root ';

/** ifalias of a bridge: `novabox-root <state root>`. Pure. */
export function ownerAlias(root: string): string {
  return OWNER_PREFIX + root;
}

/**
 * Who owns a bridge, from its ifalias: a state root, '' (a bridge without an owner: made
 * by novabox before bridges had owners, or by someone else), undefined (no such link).
 */
export function bridgeOwner(name: string): string | undefined {
  let alias: string;
  try {
    alias = readFileSync(`/sys/class/net/${name}/ifalias`, 'utf8').trim();
  } catch {
    return undefined;
  }
  return alias.startsWith(OWNER_PREFIX) ? alias.slice(OWNER_PREFIX.length) : '';
}

function claimBridge(name: string, root: string): void {
  writeFileSync(`/sys/class/net/${name}/ifalias`, `${ownerAlias(root)}\n`);
}

function ownedElsewhere(spec: BridgeSpec, other: string): Conflict {
  return new Conflict(
    `bridge ${spec.bridge} belongs to the novabox state root ${other}, not to ${spec.owner}; set another "network.bridge" and "network.subnet" in ${spec.file}`,
  );
}

/**
 * A bridge name for a root that names none: the first of novabox0, novabox1 … that does
 * not exist or that this root owns. A bridge without an owner is skipped: it is another
 * root's from before bridges had owners (that root keeps novabox0: compute/network.ts).
 */
export function chooseBridge(root: string, owner: (name: string) => string | undefined = bridgeOwner): string | undefined {
  for (let i = 0; i < 100; i++) {
    const name = `novabox${i}`;
    const o = owner(name);
    if (o === undefined || o === root) return name;
  }
  return undefined;
}

/** Refuse a bridge another state root owns (before anything is recorded). */
export function checkOwner(spec: BridgeSpec): void {
  if (!spec.owner) return;
  const other = bridgeOwner(spec.bridge);
  if (other && other !== spec.owner) throw ownedElsewhere(spec, other);
}

/**
 * The bridge, its gateway address, up: idempotent and cheap (a few netlink messages).
 * The route check runs only when the bridge is missing, i.e. on first use. The maker
 * writes its state root into the bridge's ifalias (the kernel takes no alias with
 * RTM_NEWLINK's create); a root that finds the bridge owned by another refuses, one that
 * finds it without an owner (made before bridges had owners) takes it.
 */
export function ensureBridge(spec: BridgeSpec): void {
  const present = linkExists(spec.bridge);
  if (present && !existsSync(`/sys/class/net/${spec.bridge}/bridge`)) {
    throw new Conflict(`cannot use ${spec.bridge} as novabox's bridge: a network device of another kind has that name`, {
      hint: `set another "network.bridge" in ${spec.file}`,
    });
  }
  if (!present) checkClash(spec);
  const created = nativeNet.netBridge({
    name: spec.bridge,
    gateway: gatewayOf(spec.subnet),
    prefixLen: spec.subnet.prefixLen,
    mac: bridgeMac(spec.bridge),
    mtu: spec.mtu,
  });
  if (spec.owner) {
    const other = created ? '' : bridgeOwner(spec.bridge);
    if (other && other !== spec.owner) throw ownedElsewhere(spec, other);
    if (other !== spec.owner) claimBridge(spec.bridge, spec.owner);
  }
  // NAT follows the config when the bridge is made (and on `novabox doctor`, `network set`), never per start.
  if (created) syncNat(spec);
  trace('bridge ready');
}

/** Host end into the bridge, peer into the init's netns as eth0, configured. */
export function attach(a: Attachment, pid: number): void {
  ensureBridge(a);
  nativeNet.netAttach({
    bridge: a.bridge,
    hostIf: a.hostIf,
    alias: a.alias,
    pid,
    address: a.address,
    gateway: gatewayOf(a.subnet),
    prefixLen: a.subnet.prefixLen,
    mac: a.mac,
    mtu: a.mtu,
  });
  trace('veth attached');
}

/**
 * A restored server's eth0 (CRIU made the pair, its peer `hostIf` on the bridge, and gave
 * eth0 the addresses and MAC it had on the source): this host's lease, the MAC of that
 * address and its gateway when they differ (connections to the old address are lost then),
 * and the host end's alias, by which
 * novabox knows its owner.
 */
export function readdress(a: Attachment, pid: number): void {
  const inNs = (args: string[]) => {
    const r = spawnSync('nsenter', ['-t', String(pid), '-n', 'ip', ...args], { encoding: 'utf8' });
    if (r.status !== 0)
      throw new Conflict(
        `ip ${args.join(' ')} in the restored server's network namespace failed: ${(r.stderr || r.error?.message || '').trim()}`,
      );
    return r.stdout;
  };
  const want = `${formatIp(a.address)}/${a.subnet.prefixLen}`;
  if (!inNs(['addr', 'show', 'dev', 'eth0']).includes(`inet ${want} `)) {
    // its MAC goes with its address (macFor), as a start on this host gives it: no peer knows
    // the new address yet, so no neighbour cache holds the old MAC for it
    inNs(['link', 'set', 'dev', 'eth0', 'address', a.mac]);
    inNs(['addr', 'flush', 'dev', 'eth0']);
    inNs(['addr', 'add', want, 'dev', 'eth0']);
    inNs(['route', 'replace', 'default', 'via', formatIp(gatewayOf(a.subnet)), 'dev', 'eth0']);
  }
  writeFileSync(`/sys/class/net/${a.hostIf}/ifalias`, a.alias);
}

/** Remove a container's host end (and with it the peer). false: it was already gone. */
export function detach(hostIf: string): boolean {
  return nativeNet.linkDel(hostIf);
}

/** Remove the bridge and its NAT table (nothing may be attached any more). */
export function removeBridge(spec: Pick<BridgeSpec, 'bridge'>): boolean {
  removeNat(spec.bridge);
  removePortsTable(spec.bridge);
  return nativeNet.linkDel(spec.bridge);
}

export interface HostVeth {
  name: string;
  bridge?: string;
  ownerId?: string;
  master?: string;
}

/** Host ends novabox made (by name prefix), with the owner their ifalias names. */
export function listHostVeths(): HostVeth[] {
  let names: string[] = [];
  try {
    names = readdirSync('/sys/class/net').filter((n) => n.startsWith(VETH_PREFIX));
  } catch {
    return [];
  }
  return names.map((name) => {
    let alias = '';
    let master: string | undefined;
    try {
      alias = readFileSync(`/sys/class/net/${name}/ifalias`, 'utf8');
    } catch {
      /* gone meanwhile */
    }
    try {
      master = basename(readlinkSync(`/sys/class/net/${name}/master`));
    } catch {
      /* not on a bridge */
    }
    return { name, master, ...parseVethAlias(alias) };
  });
}

// ---- NAT -------------------------------------------------------------------------

function nft(script: string, check = true): boolean {
  try {
    execFileSync('nft', ['-f', '-'], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
    return true;
  } catch (err) {
    if (!check) return false;
    const e = err as { code?: string; stderr?: Buffer };
    if (e.code === 'ENOENT')
      throw new Conflict('NAT needs the nft command (Debian package nftables)', { hint: 'install nftables, or set "network.nat": false' });
    throw new Conflict(`nft failed: ${e.stderr?.toString().trim() || (err as Error).message}`);
  }
}

/** The masquerade rule of a bridge's subnet, as one atomic nft transaction. Pure. */
export function natScript(spec: Pick<BridgeSpec, 'bridge' | 'subnet'>): string {
  const t = natTable(spec.bridge);
  const net = formatSubnet(spec.subnet);
  return (
    [
      `table ip ${t} {}`,
      `delete table ip ${t}`,
      `table ip ${t} {`,
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    ip saddr ${net} ip daddr != ${net} oifname != "${spec.bridge}" masquerade`,
      '  }',
      '  chain forward {',
      '    type filter hook forward priority filter; policy accept;',
      `    iifname "${spec.bridge}" accept`,
      `    oifname "${spec.bridge}" ct state established,related accept`,
      '  }',
      '}',
    ].join('\n') + '\n'
  );
}

/** Make the kernel match the config: the table and ip_forward with NAT, no table without. */
export function syncNat(spec: BridgeSpec): void {
  if (!spec.nat) {
    removeNat(spec.bridge);
    return;
  }
  if (natPresent(spec.bridge)) return;
  nft(natScript(spec));
  // Routing between the bridge and the uplink; the kernel default is off.
  try {
    if (readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() !== '1') writeFileSync('/proc/sys/net/ipv4/ip_forward', '1\n');
  } catch {
    /* reported by network show */
  }
}

export function natPresent(bridge: string): boolean {
  try {
    execFileSync('nft', ['list', 'table', 'ip', natTable(bridge)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function removeNat(bridge: string): boolean {
  return nft(`table ip ${natTable(bridge)} {}\ndelete table ip ${natTable(bridge)}\n`, false);
}
