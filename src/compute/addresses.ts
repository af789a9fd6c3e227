/**
 * A server's addresses as Nova shows them (GET /servers/{id}: "addresses"), keyed by
 * network name. One function for the CLI and the API, so both print the same thing:
 *
 *   {"novabox": [{"addr": "10.89.0.2", "version": 4, "OS-EXT-IPS:type": "fixed",
 *                 "OS-EXT-IPS-MAC:mac_addr": "0a:58:0a:59:00:02"}]}
 */
import type { Lease } from '../store/leases.js';

export interface NovaAddress {
  addr: string;
  version: 4 | 6;
  'OS-EXT-IPS:type': 'fixed' | 'floating';
  'OS-EXT-IPS-MAC:mac_addr': string;
}

export function novaAddresses(leases: Lease[]): Record<string, NovaAddress[]> {
  const out: Record<string, NovaAddress[]> = {};
  for (const l of leases) {
    (out[l.network] ??= []).push({
      addr: l.address,
      version: l.address.includes(':') ? 6 : 4,
      'OS-EXT-IPS:type': 'fixed',
      'OS-EXT-IPS-MAC:mac_addr': l.mac,
    });
  }
  return out;
}

/** The openstack client's `Networks` column: `novabox=10.89.0.2` (networks joined by "; "). */
export function networksColumn(addresses: Record<string, NovaAddress[]>): string {
  return Object.entries(addresses)
    .map(([net, list]) => `${net}=${list.map((a) => a.addr).join(', ')}`)
    .join('; ');
}
