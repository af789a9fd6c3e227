/**
 * Published ports: DNAT from a host port to a server's address, in an nftables table of
 * novabox's own per bridge (`novabox_<bridge>_ports`, family ip), apart from the NAT table
 * (`network set --no-nat` leaves published ports alone).
 *
 * The table holds four maps, (host address, port) and port alone (a port published on
 * every host address) for tcp and udp, each to (server address, port), and fixed chains
 * that look them up: prerouting (from outside, from the test namespaces, from servers:
 * hairpin) and output (from the host itself) for a destination the kernel calls local
 * (`fib daddr type local`). A server's ports are elements, added and deleted in one nft
 * transaction each; `create element` fails on a key that is there, so two CLIs never both
 * take one port.
 *
 * The host's own loopback: a connection to 127.0.0.1:PORT is DNATed in output and routed
 * out of the bridge with its source 127.0.0.1, which the kernel drops as martian unless
 * the bridge has `route_localnet` (ip-sysctl.rst); postrouting then masquerades it to the
 * gateway address, so the server answers the bridge. Traffic of a server to its own
 * published port (hairpin) is masqueraded the same way, and needs `hairpin_mode` on its
 * bridge port when br_netfilter makes bridged frames pass these hooks. No userspace proxy:
 * nothing listens, so the host's listening sockets (/proc/net/tcp, udp) tell when a port
 * is taken by a process of the host.
 */
// node:child_process is loaded on first call by the bundle's stand-in (scripts/build.mjs)
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { BadRequest, Conflict } from '../../errors.js';
import { formatSubnet, parseIp, type Subnet } from './ipam.js';
import { natTable } from './names.js';

export type PortProtocol = 'tcp' | 'udp';

export interface PortMapping {
  protocol: PortProtocol;
  /** '' = every address of the host */
  hostIp: string;
  hostPort: number;
  /** the server's port */
  port: number;
}

/** A mapping as the user writes it: `[HOSTIP:]HOSTPORT:PORT/PROTO`, `0.0.0.0` for every address. */
export function formatPort(m: PortMapping): string {
  return `${m.hostIp || '0.0.0.0'}:${m.hostPort}->${m.port}/${m.protocol}`;
}

function portNumber(text: string, what: string, spec: string): number {
  const n = /^[0-9]{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 1 && n <= 65535)) throw new BadRequest(`invalid --publish ${JSON.stringify(spec)}: ${what} must be a number from 1 to 65535`);
  return n;
}

/** `[HOSTIP:]HOSTPORT:PORT[/tcp|udp]` (podman's -p, one port each side). Pure. */
export function parsePublish(spec: string): PortMapping {
  const usage = 'expected [HOSTIP:]HOSTPORT:PORT[/tcp|udp]';
  const slash = spec.lastIndexOf('/');
  const proto = slash < 0 ? 'tcp' : spec.slice(slash + 1);
  if (proto !== 'tcp' && proto !== 'udp') {
    throw new BadRequest(`invalid --publish ${JSON.stringify(spec)}: protocol must be tcp or udp`);
  }
  const parts = (slash < 0 ? spec : spec.slice(0, slash)).split(':');
  if (parts.length < 2 || parts.length > 3) {
    if (parts.length > 3 || spec.includes('['))
      throw new BadRequest(`invalid --publish ${JSON.stringify(spec)}: IPv6 host addresses are not supported; ${usage}`);
    throw new BadRequest(`invalid --publish ${JSON.stringify(spec)}: ${usage}`);
  }
  let hostIp = parts.length === 3 ? parts[0] : '';
  if (hostIp !== '') {
    if (parseIp(hostIp) === undefined)
      throw new BadRequest(`invalid --publish ${JSON.stringify(spec)}: host address "${hostIp}" is not an IPv4 address`);
    if (hostIp === '0.0.0.0') hostIp = '';
  }
  const hostPort = portNumber(parts[parts.length - 2], 'the host port', spec);
  const port = portNumber(parts[parts.length - 1], 'the server port', spec);
  return { protocol: proto, hostIp, hostPort, port };
}

/** Two mappings that would take the same packets: one protocol and port, one address or either on every address. Pure. */
export function overlaps(a: PortMapping, b: Pick<PortMapping, 'protocol' | 'hostIp' | 'hostPort'>): boolean {
  return a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIp === '' || b.hostIp === '' || a.hostIp === b.hostIp);
}

/** Mappings of one request: each (protocol, host port, address) once. Pure. */
export function checkDistinct(ms: PortMapping[]): void {
  for (let i = 0; i < ms.length; i++) {
    for (let j = 0; j < i; j++) {
      if (overlaps(ms[i], ms[j])) throw new BadRequest(`host port ${ms[i].hostPort}/${ms[i].protocol} is published twice`);
    }
  }
}

// ---- the host's listening sockets ---------------------------------------------------

export interface Listener {
  protocol: PortProtocol;
  /** dotted IPv4, '' for the wildcard (0.0.0.0 or ::), or the IPv6 address in hex */
  address: string;
  port: number;
}

const TCP_LISTEN = '0A';
const UDP_UNCONNECTED = '07';

/**
 * Listening sockets of /proc/net/{tcp,udp}{,6} (proc_net_tcp.rst): `local_address` is the
 * address in hex as the kernel stores it (network order read as a host-order word) and the
 * port in hex; `st` 0A is LISTEN, an unconnected udp socket is 07. Pure.
 */
export function parseListeners(text: string, protocol: PortProtocol, v6: boolean): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    if (f[3] !== (protocol === 'tcp' ? TCP_LISTEN : UDP_UNCONNECTED)) continue;
    const [hexAddr, hexPort] = f[1].split(':');
    const port = Number.parseInt(hexPort, 16);
    let address: string;
    if (/^0+$/.test(hexAddr)) address = '';
    else if (!v6) {
      const n = Number.parseInt(hexAddr, 16);
      address = [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
    } else if (/^0{16}FFFF0000/i.test(hexAddr)) {
      const n = Number.parseInt(hexAddr.slice(24), 16); // ::ffff:a.b.c.d
      address = [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
    } else address = hexAddr.toLowerCase();
    out.push({ protocol, address, port });
  }
  return out;
}

/** The host's sockets that would take a mapping's packets (an IPv6-only address never does). */
export function listenersOf(m: PortMapping, listeners: Listener[]): Listener[] {
  return listeners.filter(
    (l) =>
      l.protocol === m.protocol &&
      l.port === m.hostPort &&
      !l.address.includes(':') &&
      !/^[0-9a-f]{32}$/.test(l.address) &&
      (l.address === '' || m.hostIp === '' || l.address === m.hostIp),
  );
}

export function hostListeners(): Listener[] {
  const out: Listener[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    for (const v6 of [false, true]) {
      try {
        out.push(...parseListeners(readFileSync(`/proc/net/${protocol}${v6 ? '6' : ''}`, 'utf8'), protocol, v6));
      } catch {
        /* no IPv6 */
      }
    }
  }
  return out;
}

/** Refuse a mapping whose port a process of the host listens on. */
export function checkHostFree(ms: PortMapping[]): void {
  if (!ms.length) return;
  const all = hostListeners();
  for (const m of ms) {
    const l = listenersOf(m, all)[0];
    if (l) {
      throw new Conflict(`host port ${m.hostPort}/${m.protocol} is taken: a process of the host listens on ${l.address || '*'}:${l.port}`);
    }
  }
}

// ---- nftables -------------------------------------------------------------------------

export function portsTable(bridge: string): string {
  return `${natTable(bridge)}_ports`;
}

function mapOf(m: Pick<PortMapping, 'protocol' | 'hostIp'>): string {
  return `${m.protocol}_${m.hostIp ? 'addr' : 'any'}`;
}

function keyOf(m: Pick<PortMapping, 'hostIp' | 'hostPort'>): string {
  return m.hostIp ? `${m.hostIp} . ${m.hostPort}` : `${m.hostPort}`;
}

/** The table and its fixed chains, made once per bridge: `create table` fails if another CLI just made it. Pure. */
export function portsTableScript(bridge: string, subnet: Subnet): string {
  const t = portsTable(bridge);
  const lines = [`create table ip ${t}`, `table ip ${t} {`];
  for (const p of ['tcp', 'udp']) {
    lines.push(`  map ${p}_addr { type ipv4_addr . inet_service : ipv4_addr . inet_service; }`);
    lines.push(`  map ${p}_any { type inet_service : ipv4_addr . inet_service; }`);
  }
  lines.push('  chain published {');
  for (const p of ['tcp', 'udp']) {
    lines.push(`    meta l4proto ${p} dnat ip to ip daddr . ${p} dport map @${p}_addr`);
    lines.push(`    meta l4proto ${p} dnat ip to ${p} dport map @${p}_any`);
  }
  lines.push(
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    '    fib daddr type local jump published',
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    '    fib daddr type local jump published',
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ct status dnat oifname "${bridge}" ip saddr { 127.0.0.0/8, ${formatSubnet(subnet)} } masquerade`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    ct status dnat oifname "${bridge}" accept`,
    '  }',
    '}',
  );
  return lines.join('\n') + '\n';
}

/** One transaction adding a server's elements; `create` refuses a key that is there. Pure. */
export function addElementsScript(bridge: string, address: string, ms: PortMapping[]): string {
  const t = portsTable(bridge);
  return ms.map((m) => `create element ip ${t} ${mapOf(m)} { ${keyOf(m)} : ${address} . ${m.port} }\n`).join('');
}

export function deleteElementsScript(bridge: string, ms: Pick<PortMapping, 'protocol' | 'hostIp' | 'hostPort'>[]): string {
  const t = portsTable(bridge);
  return ms.map((m) => `delete element ip ${t} ${mapOf(m)} { ${keyOf(m)} }\n`).join('');
}

/** A DNAT element as the kernel holds it. */
export interface PublishedRule extends PortMapping {
  /** the table it is in */
  table: string;
  /** the server's address it leads to */
  address: string;
}

type NftElem = [unknown, unknown];
interface NftMap {
  map?: { family: string; name: string; table: string; elem?: NftElem[] };
}

/** `nft -j list maps ip` → the elements of novabox's ports tables. Pure. */
export function parsePublished(json: string): PublishedRule[] {
  const out: PublishedRule[] = [];
  const doc = JSON.parse(json) as { nftables?: NftMap[] };
  for (const item of doc.nftables ?? []) {
    const m = item.map;
    if (!m || m.family !== 'ip' || !/^novabox_.*_ports$/.test(m.table)) continue;
    const mm = /^(tcp|udp)_(addr|any)$/.exec(m.name);
    if (!mm) continue;
    for (const [key, value] of m.elem ?? []) {
      const k = key as number | { concat: [string, number] };
      const v = value as { concat: [string, number] };
      if (!v?.concat) continue;
      const [hostIp, hostPort] = typeof k === 'number' ? ['', k] : k.concat;
      out.push({ table: m.table, protocol: mm[1] as PortProtocol, hostIp, hostPort, address: v.concat[0], port: v.concat[1] });
    }
  }
  return out;
}

function nft(args: string[], input?: string): string {
  try {
    return execFileSync('nft', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Conflict('published ports need the nft command (Debian package nftables)');
    throw Object.assign(new Error(e.stderr?.toString().trim() || (err as Error).message), { nftFailed: true });
  }
}

/** novabox's ports tables that `nft -j list maps ip` shows (their maps are listed, empty or not). Pure. */
export function parsePortTables(json: string): Set<string> {
  const doc = JSON.parse(json) as { nftables?: NftMap[] };
  return new Set((doc.nftables ?? []).flatMap((i) => (i.map && /^novabox_.*_ports$/.test(i.map.table) ? [i.map.table] : [])));
}

/** What one `nft -j list maps ip` shows: every rule of novabox's ports tables on this host (every root's), and the tables. */
export interface PortsListing {
  rules: PublishedRule[];
  tables: Set<string>;
}

export function listPorts(): PortsListing {
  let json: string;
  try {
    json = nft(['-j', 'list', 'maps', 'ip']);
  } catch (err) {
    if ((err as { nftFailed?: boolean }).nftFailed) return { rules: [], tables: new Set() };
    throw err;
  }
  return { rules: parsePublished(json), tables: parsePortTables(json) };
}

export function listPublished(): PublishedRule[] {
  return listPorts().rules;
}

function portsTablePresent(bridge: string): boolean {
  try {
    nft(['list', 'table', 'ip', portsTable(bridge)]);
    return true;
  } catch (err) {
    if ((err as { nftFailed?: boolean }).nftFailed) return false;
    throw err;
  }
}

/** The bridge's ports table, made once. */
export function ensurePortsTable(bridge: string, subnet: Subnet): void {
  if (portsTablePresent(bridge)) return;
  try {
    nft(['-f', '-'], portsTableScript(bridge, subnet));
  } catch (err) {
    if (!portsTablePresent(bridge)) throw new Conflict(`cannot make the nftables table ${portsTable(bridge)}: ${(err as Error).message}`);
  }
}

/**
 * Add a server's DNAT rules, after checking every novabox ports table of the host (other
 * state roots' too): a key taken by another address is refused in one sentence.
 */
export function publish(bridge: string, subnet: Subnet, address: string, ms: PortMapping[], listing: PortsListing = listPorts()): void {
  if (!ms.length) return;
  const table = portsTable(bridge);
  if (!listing.tables.has(table)) ensurePortsTable(bridge, subnet);
  const present = listing.rules;
  const wanted: PortMapping[] = [];
  for (const m of ms) {
    const held = present.find((r) => overlaps(m, r));
    if (held && held.table === table && held.address === address && held.port === m.port && held.hostIp === m.hostIp) continue; // ours, kept
    if (held) {
      throw new Conflict(
        `host port ${m.hostPort}/${m.protocol} is already published (to ${held.address}:${held.port}${held.table === table ? '' : `, by the table ${held.table} of another novabox state root`})`,
      );
    }
    wanted.push(m);
  }
  if (!wanted.length) return;
  try {
    nft(['-f', '-'], addElementsScript(bridge, address, wanted));
  } catch (err) {
    if (!(err as { nftFailed?: boolean }).nftFailed) throw err;
    throw new Conflict(`cannot publish ${wanted.map(formatPort).join(', ')}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Remove the rules leading to `address` among `ms` (those another server holds stay). Returns how many went. */
export function unpublish(bridge: string, address: string, ms?: Pick<PortMapping, 'protocol' | 'hostIp' | 'hostPort'>[]): number {
  // The usual case in one nft call: every key is there (the root's record gives a key one holder).
  if (ms?.length) {
    try {
      nft(['-f', '-'], deleteElementsScript(bridge, ms));
      return ms.length;
    } catch (err) {
      if (!(err as { nftFailed?: boolean }).nftFailed) throw err;
    }
  }
  const table = portsTable(bridge);
  const present = listPublished().filter((r) => r.table === table && r.address === address);
  const gone = ms
    ? present.filter((r) => ms.some((m) => m.protocol === r.protocol && m.hostIp === r.hostIp && m.hostPort === r.hostPort))
    : present;
  if (!gone.length) return 0;
  nft(['-f', '-'], deleteElementsScript(bridge, gone));
  return gone.length;
}

/** Remove one rule by its key (doctor's orphans). */
export function removeRule(r: PublishedRule): void {
  nft(['-f', '-'], `delete element ip ${r.table} ${mapOf(r)} { ${keyOf(r)} }\n`);
}

export function removePortsTable(bridge: string): boolean {
  try {
    nft(['-f', '-'], `table ip ${portsTable(bridge)} {}\ndelete table ip ${portsTable(bridge)}\n`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Once a server with published ports is on the bridge: `route_localnet` on the bridge
 * (connections to 127.0.0.1 leave by it with their loopback source until postrouting
 * masquerades them), and hairpin mode on the server's bridge port: its own published port
 * through the host's address comes back out of the port it went in by, which the bridge
 * does only in hairpin mode when br_netfilter passes bridged frames through these hooks.
 * And ip_forward, as Docker sets it for published ports (and the NAT table for its
 * masquerade): a server's packet to a published port of the host's address is DNATed to
 * a server, which the host then routes from the bridge back to the bridge; without NAT
 * (`network set --no-nat`) nothing else turns forwarding on, and a host that never had it
 * on dropped them (the pure cgroup v2 guest showed it).
 */
export function afterAttach(bridge: string, hostIf: string): void {
  for (const [file, value] of [
    ['/proc/sys/net/ipv4/ip_forward', '1'],
    [`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, '1'],
    [`/sys/class/net/${hostIf}/brport/hairpin_mode`, '1'],
  ]) {
    try {
      if (readFileSync(file, 'utf8').trim() !== value) writeFileSync(file, `${value}\n`);
    } catch {
      /* gone meanwhile: the server stopped */
    }
  }
}
