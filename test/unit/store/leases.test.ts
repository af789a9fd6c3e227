import { describe, expect, it } from 'vitest';
import { parseSubnet } from '../../../src/runtime/network/ipam.js';
import { novaAddresses, networksColumn } from '../../../src/compute/addresses.js';
import { newServer, useTempDirs } from './temp-store.js';

const t = useTempDirs();

describe('address leases', () => {
  const net = parseSubnet('10.9.9.0/29');

  it("allocates lowest-first, keeps an owner's lease, reuses a released address, refuses when full", () => {
    const s = t.open();
    const a = s.leases.allocate('novabox', net, 'server', 'a');
    const b = s.leases.allocate('novabox', net, 'server', 'b');
    expect([a.address, b.address]).toEqual(['10.9.9.2', '10.9.9.3']);
    expect(a.mac).toBe('0a:58:0a:09:09:02');
    expect(s.leases.allocate('novabox', net, 'server', 'a')).toEqual(a); // kept across stop/start
    expect(s.leases.release('a')).toBe(1);
    expect(s.leases.allocate('novabox', net, 'container', 'c').address).toBe('10.9.9.2');
    for (const o of ['d', 'e', 'f']) s.leases.allocate('novabox', net, 'server', o);
    expect(() => s.leases.allocate('novabox', net, 'server', 'g')).toThrow(/no free address left in 10\.9\.9\.0\/29/);
    expect(s.leases.list('novabox').map((l) => l.address)).toEqual(['10.9.9.2', '10.9.9.3', '10.9.9.4', '10.9.9.5', '10.9.9.6']);
  });

  it('two connections allocating in turn never share an address', () => {
    const dir = t.dir();
    const one = t.open(`${dir}/n.db`);
    const two = t.open(`${dir}/n.db`);
    const got = [];
    for (let i = 0; i < 5; i++) got.push((i % 2 ? one : two).leases.allocate('novabox', net, 'server', `o${i}`).address);
    expect(new Set(got).size).toBe(5);
  });

  it("Nova's addresses view and the openstack client's Networks column", () => {
    const s = t.open();
    const l = s.leases.allocate('novabox', net, 'server', 'a');
    const view = novaAddresses([l]);
    expect(view).toEqual({
      novabox: [{ addr: '10.9.9.2', version: 4, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': '0a:58:0a:09:09:02' }],
    });
    expect(Object.keys(view.novabox[0])).toEqual(['addr', 'version', 'OS-EXT-IPS:type', 'OS-EXT-IPS-MAC:mac_addr']);
    expect(networksColumn(view)).toBe('novabox=10.9.9.2');
    expect(networksColumn({ b: [view.novabox[0]], a: [{ ...view.novabox[0], addr: '10.9.9.9' }, view.novabox[0]] })).toBe(
      'a=10.9.9.2, 10.9.9.9; b=10.9.9.2',
    );
    expect(networksColumn({})).toBe('');
  });

  it('a wanted address is taken if free, refused if leased; the ip filter of server list follows leases', () => {
    const s = t.open();
    expect(s.leases.allocate('novabox', net, 'server', 'a', ((10 << 24) | (9 << 16) | (9 << 8) | 5) >>> 0).address).toBe('10.9.9.5');
    expect(() => s.leases.allocate('novabox', net, 'server', 'b', ((10 << 24) | (9 << 16) | (9 << 8) | 5) >>> 0)).toThrow(
      /10\.9\.9\.5 is already in use/,
    );
    const x = s.servers.insert(newServer());
    const y = s.servers.insert(newServer());
    s.leases.allocate('novabox', net, 'server', x.id);
    expect(s.servers.list({ ip: '^10\\.9\\.9\\.2$' }).map((r) => r.id)).toEqual([x.id]);
    expect(s.servers.list({ ip: '10\\.9' }).map((r) => r.id)).toEqual([x.id]);
    expect(
      s.servers
        .list({})
        .map((r) => r.id)
        .sort(),
    ).toEqual([x.id, y.id].sort());
    expect(() => s.servers.list({ ip: '(' })).toThrow(/invalid ip filter/);
  });
});
