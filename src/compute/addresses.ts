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

/** novaclient's `server.networks`: network name -> its addresses. */
export function networksOf(addresses: Record<string, NovaAddress[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(addresses).map(([net, list]) => [net, list.map((a) => a.addr)]));
}

/**
 * The openstack client's `Networks` column as a table shows it (osc-lib
 * format_dict_of_list): `novabox=10.89.0.2`, networks sorted and joined by "; ",
 * addresses sorted and joined by ", ".
 */
export function networksColumn(addresses: Record<string, NovaAddress[]>): string {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return Object.entries(networksOf(addresses))
    .sort(([a], [b]) => cmp(a, b))
    .map(([net, list]) => `${net}=${[...list].sort(cmp).join(', ')}`)
    .join('; ');
}
