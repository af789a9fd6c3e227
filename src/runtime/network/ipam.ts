/**
 * IPv4 address arithmetic for novabox's bridge network. Pure: no kernel, no database;
 * the store (store/leases.ts) calls pickAddress inside its transaction.
 */
import { BadRequest } from '../../errors.js';

export interface Subnet {
  /** network address, host-order 32-bit number */
  base: number;
  prefixLen: number;
}

export function parseIp(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

export function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (~0 << (32 - prefixLen)) >>> 0;
}

/** "10.89.0.0/16" -> subnet; the address must be the network address, prefix 16..30. */
export function parseSubnet(s: string): Subnet {
  const [ip, len, ...rest] = s.split('/');
  const base = parseIp(ip ?? '');
  const prefixLen = /^\d{1,2}$/.test(len ?? '') ? Number(len) : NaN;
  if (base === undefined || rest.length || !(prefixLen >= 16 && prefixLen <= 30)) {
    throw new BadRequest(`invalid subnet ${JSON.stringify(s)}: expected an IPv4 network like 10.89.0.0/16 (prefix 16 to 30)`);
  }
  if ((base & maskOf(prefixLen)) >>> 0 !== base) {
    throw new BadRequest(
      `invalid subnet ${JSON.stringify(s)}: host bits are set (did you mean ${formatIp((base & maskOf(prefixLen)) >>> 0)}/${prefixLen}?)`,
    );
  }
  return { base, prefixLen };
}

export function formatSubnet(s: Subnet): string {
  return `${formatIp(s.base)}/${s.prefixLen}`;
}

export function contains(s: Subnet, addr: number): boolean {
  return (addr & maskOf(s.prefixLen)) >>> 0 === s.base;
}

/** Two networks overlap when one contains the other's base at the shorter prefix. */
export function overlaps(a: Subnet, b: Subnet): boolean {
  const len = Math.min(a.prefixLen, b.prefixLen);
  const m = maskOf(len);
  return (a.base & m) >>> 0 === (b.base & m) >>> 0;
}

/** The gateway is the first host address, on the bridge (LXC's lxcbr0, podman, Incus do the same). */
export function gatewayOf(s: Subnet): number {
  return s.base + 1;
}

export function broadcastOf(s: Subnet): number {
  return (s.base | ~maskOf(s.prefixLen)) >>> 0;
}

/** How many addresses servers can get: all hosts but the gateway. */
export function capacity(s: Subnet): number {
  return broadcastOf(s) - s.base - 2;
}

/**
 * The lowest free host address after the gateway, or undefined when the subnet is full.
 * Lowest-first keeps addresses small and predictable (Nova's fixed IPs are allocated
 * the same way by neutron's IPAM when no address is asked for).
 */
export function pickAddress(s: Subnet, used: Iterable<number>): number | undefined {
  const taken = new Set(used);
  const last = broadcastOf(s) - 1;
  for (let a = gatewayOf(s) + 1; a <= last; a++) if (!taken.has(a)) return a;
  return undefined;
}

/**
 * A MAC derived from the address, locally administered and unicast (0a:58 as the CNI
 * bridge plugin): the same address always comes with the same MAC, so neighbours'
 * ARP caches stay right across a restart.
 */
export function macFor(addr: number): string {
  const b = [0x0a, 0x58, addr >>> 24, (addr >>> 16) & 0xff, (addr >>> 8) & 0xff, addr & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** A fixed bridge MAC from its name (locally administered, unicast). */
export function bridgeMac(name: string): string {
  let h = 2166136261;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  const b = [0x0a, 0x58, 0xfe, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export interface Route {
  iface: string;
  subnet: Subnet;
}

/** /proc/net/route: Iface, Destination, Gateway, Flags, RefCnt, Use, Metric, Mask (hex, little-endian). */
export function parseProcRoutes(text: string): Route[] {
  const le = (hex: string) => {
    const n = parseInt(hex, 16) >>> 0;
    return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | (n >>> 24)) >>> 0;
  };
  const out: Route[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const mask = le(f[7]);
    const prefixLen = 32 - trailingZeros(mask);
    out.push({ iface: f[0], subnet: { base: le(f[1]), prefixLen } });
  }
  return out;
}

function trailingZeros(mask: number): number {
  let n = 0;
  for (let i = 0; i < 32 && !((mask >>> i) & 1); i++) n++;
  return n;
}

/**
 * A route of the host (not on our own bridge, not the default route) that overlaps the
 * subnet: traffic to part of it would go the wrong way. undefined when there is none.
 */
export function findClash(s: Subnet, routes: Route[], ownBridge: string): Route | undefined {
  return routes.find((r) => r.iface !== ownBridge && r.subnet.prefixLen > 0 && overlaps(s, r.subnet));
}

/** Default subnets to try, in order, when the config names none (podman's 10.88/16 left to podman). */
export const DEFAULT_SUBNETS = [
  '10.89.0.0/16',
  '10.90.0.0/16',
  '10.91.0.0/16',
  '10.92.0.0/16',
  '10.93.0.0/16',
  '172.29.0.0/16',
  '172.30.0.0/16',
  '192.168.251.0/24',
];

/** The first default subnet that clashes with no host route. */
export function chooseDefaultSubnet(routes: Route[], ownBridge: string): Subnet | undefined {
  for (const c of DEFAULT_SUBNETS) {
    const s = parseSubnet(c);
    if (!findClash(s, routes, ownBridge)) return s;
  }
  return undefined;
}
