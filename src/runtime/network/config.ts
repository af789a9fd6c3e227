/**
 * The bridge network's settings: `network` in $NOVABOX_ROOT/config.json, all optional:
 *
 *   { "network": { "bridge": "novabox0", "subnet": "10.89.0.0/16", "nat": true, "mtu": 1500 } }
 *
 * Without a bridge, the first of novabox0, novabox1 … that no other state root owns (its
 * ifalias names the owner, runtime/network/bridge.ts) is chosen on first use; without a
 * subnet, the first of DEFAULT_SUBNETS that no host route overlaps. Both are kept in the
 * state database (leases depend on them). NAT is on unless "nat" is false.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequest } from '../../errors.js';
import { stateRoot } from '../../util/paths.js';
import { parseSubnet, type Subnet } from './ipam.js';

import type { NetworkMode } from '../../model/records.js';
export type { NetworkMode };

/** The name servers show their addresses under (Nova's network name). */
export const NETWORK_NAME = 'novabox';
export const DEFAULT_BRIDGE = 'novabox0';

export interface NetworkConfig {
  name: string;
  bridge: string;
  /** "network.bridge" was set: use that name or refuse (no other is chosen) */
  bridgeSet: boolean;
  /** as configured; undefined: chosen on first use */
  subnet?: Subnet;
  /** masquerade traffic from the subnet to the outside (nftables) */
  nat: boolean;
  /** MTU of the bridge and the veths (an uplink with a smaller one, e.g. a VPN or VXLAN) */
  mtu?: number;
  /** where it was read from, for messages */
  file: string;
}

const KEYS = new Set(['bridge', 'subnet', 'nat', 'mtu']);
/** IFNAMSIZ is 16 with the NUL; no '/' or spaces (dev_valid_name). */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export function configFile(root = stateRoot()): string {
  return join(root, 'config.json');
}

/** Parse the config text (pure): one clear error per problem. */
export function parseNetworkConfig(text: string | undefined, file: string): NetworkConfig {
  const cfg: NetworkConfig = { name: NETWORK_NAME, bridge: DEFAULT_BRIDGE, bridgeSet: false, nat: true, file };
  if (text === undefined) return cfg;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new BadRequest(`invalid ${file}: ${(err as Error).message}`);
  }
  const net = (doc as { network?: unknown } | null)?.network;
  if (net === undefined) return cfg;
  if (typeof net !== 'object' || net === null || Array.isArray(net)) throw new BadRequest(`invalid ${file}: "network" must be an object`);
  for (const k of Object.keys(net)) {
    if (!KEYS.has(k)) throw new BadRequest(`invalid ${file}: unknown key "network.${k}" (known: ${[...KEYS].join(', ')})`);
  }
  const n = net as { bridge?: unknown; subnet?: unknown; nat?: unknown; mtu?: unknown };
  if (n.bridge !== undefined) {
    if (typeof n.bridge !== 'string' || !IFNAME.test(n.bridge) || n.bridge === '.' || n.bridge === '..') {
      throw new BadRequest(`invalid ${file}: "network.bridge" must be an interface name of 1 to 15 letters, digits, '_', '.' or '-'`);
    }
    cfg.bridge = n.bridge;
    cfg.bridgeSet = true;
  }
  if (n.subnet !== undefined) {
    if (typeof n.subnet !== 'string') throw new BadRequest(`invalid ${file}: "network.subnet" must be a string like "10.89.0.0/16"`);
    try {
      cfg.subnet = parseSubnet(n.subnet);
    } catch (err) {
      throw new BadRequest(`invalid ${file}: "network.subnet": ${(err as Error).message}`);
    }
  }
  if (n.nat !== undefined) {
    if (typeof n.nat !== 'boolean') throw new BadRequest(`invalid ${file}: "network.nat" must be true or false`);
    cfg.nat = n.nat;
  }
  if (n.mtu !== undefined) {
    if (typeof n.mtu !== 'number' || !Number.isInteger(n.mtu) || n.mtu < 576 || n.mtu > 9000) {
      throw new BadRequest(`invalid ${file}: "network.mtu" must be a whole number from 576 to 9000`);
    }
    cfg.mtu = n.mtu;
  }
  return cfg;
}

export function readNetworkConfig(root = stateRoot()): NetworkConfig {
  const file = configFile(root);
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return parseNetworkConfig(text, file);
}

/**
 * Set keys of "network" in the config file, keeping everything else in it; validated
 * first (a bad file is refused and left as it is), written whole (rename).
 */
export function updateNetworkConfig(patch: { nat?: boolean }, root = stateRoot()): NetworkConfig {
  const file = configFile(root);
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  parseNetworkConfig(text, file);
  const doc = (text === undefined ? {} : JSON.parse(text)) as { network?: Record<string, unknown> };
  doc.network = { ...doc.network, ...patch };
  const next = `${JSON.stringify(doc, null, 2)}\n`;
  const cfg = parseNetworkConfig(next, file);
  writeFileSync(`${file}.tmp`, next);
  renameSync(`${file}.tmp`, file);
  return cfg;
}
