import { describe, expect, it } from 'vitest';
import {
  bridgeMac,
  capacity,
  chooseDefaultSubnet,
  findClash,
  formatIp,
  formatSubnet,
  gatewayOf,
  macFor,
  overlaps,
  parseIp,
  parseProcRoutes,
  parseSubnet,
  pickAddress,
} from '../../../../src/runtime/network/ipam.js';

const ip = (s: string) => parseIp(s)!;

describe('subnet math', () => {
  it.each([
    ['10.89.0.0/16', '10.89.0.1', 65533],
    ['10.231.7.0/24', '10.231.7.1', 253],
    ['192.168.251.0/30', '192.168.251.1', 1],
  ])('%s: gateway %s, %i addresses for containers', (cidr, gw, n) => {
    const s = parseSubnet(cidr);
    expect(formatSubnet(s)).toBe(cidr);
    expect(formatIp(gatewayOf(s))).toBe(gw);
    expect(capacity(s)).toBe(n);
  });

  it.each([
    ['10.89.0.1/16', /host bits are set \(did you mean 10\.89\.0\.0\/16\?\)/],
    ['10.89.0.0/8', /prefix 16 to 30/],
    ['10.89.0.0/31', /prefix 16 to 30/],
    ['10.300.0.0/16', /expected an IPv4 network/],
    ['10.89.0.0', /expected an IPv4 network/],
    ['fd00::/64', /expected an IPv4 network/],
  ])('refuses %s', (cidr, msg) => {
    expect(() => parseSubnet(cidr)).toThrow(msg);
  });

  it.each([
    ['10.0.0.0/8', '10.89.0.0/16', true],
    ['10.89.0.0/16', '10.89.7.0/24', true],
    ['10.89.0.0/16', '10.90.0.0/16', false],
    ['192.168.0.0/24', '192.168.1.0/24', false],
  ])('%s overlaps %s: %s', (a, b, want) => {
    expect(overlaps(parseSubnet16(a), parseSubnet16(b))).toBe(want);
    expect(overlaps(parseSubnet16(b), parseSubnet16(a))).toBe(want);
  });
});

/** parseSubnet allows /16../30 only; overlap tests also need a /8. */
function parseSubnet16(cidr: string) {
  const [a, len] = cidr.split('/');
  return { base: ip(a), prefixLen: Number(len) };
}

describe('address allocation order', () => {
  const s = parseSubnet('10.5.5.0/29'); // .1 gateway, .2 - .6 for containers, .7 broadcast
  it('takes the lowest free address after the gateway, reuses freed ones, and says when full', () => {
    expect(formatIp(pickAddress(s, [])!)).toBe('10.5.5.2');
    expect(formatIp(pickAddress(s, [ip('10.5.5.2'), ip('10.5.5.3')])!)).toBe('10.5.5.4');
    expect(formatIp(pickAddress(s, [ip('10.5.5.2'), ip('10.5.5.4')])!)).toBe('10.5.5.3');
    expect(
      pickAddress(
        s,
        ['2', '3', '4', '5', '6'].map((h) => ip(`10.5.5.${h}`)),
      ),
    ).toBeUndefined();
  });

  it('derives a stable locally administered unicast MAC from the address', () => {
    expect(macFor(ip('10.89.0.2'))).toBe('0a:58:0a:59:00:02');
    const first = parseInt(bridgeMac('novabox0').slice(0, 2), 16);
    expect(first & 1).toBe(0); // unicast
    expect(first & 2).toBe(2); // locally administered
    expect(bridgeMac('novabox0')).toBe(bridgeMac('novabox0'));
    expect(bridgeMac('novabox0')).not.toBe(bridgeMac('novabox1'));
  });
});

describe('clash detection against the host routes', () => {
  const text = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
    'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    'wg0\t0000590A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
    'novabox0\t00005A0A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
  ].join('\n');
  const routes = parseProcRoutes(text);

  it('reads /proc/net/route', () => {
    expect(routes.map((r) => `${r.iface} ${formatSubnet(r.subnet)}`)).toEqual([
      'eth0 0.0.0.0/0',
      'eth0 192.0.2.0/24',
      'wg0 10.89.0.0/16',
      'novabox0 10.90.0.0/16',
    ]);
  });

  it('finds an overlapping route, ignoring the default route and our own bridge', () => {
    expect(findClash(parseSubnet('10.89.3.0/24'), routes, 'novabox0')?.iface).toBe('wg0');
    expect(findClash(parseSubnet('10.90.0.0/16'), routes, 'novabox0')).toBeUndefined();
    expect(findClash(parseSubnet('10.90.0.0/16'), routes, 'other0')?.iface).toBe('novabox0');
    expect(findClash(parseSubnet('172.30.0.0/16'), routes, 'novabox0')).toBeUndefined();
  });

  it('the default subnet is the first candidate no route overlaps', () => {
    expect(formatSubnet(chooseDefaultSubnet(routes, 'novabox0')!)).toBe('10.90.0.0/16');
    expect(formatSubnet(chooseDefaultSubnet(routes, 'x')!)).toBe('10.91.0.0/16');
    expect(formatSubnet(chooseDefaultSubnet([], 'x')!)).toBe('10.89.0.0/16');
  });
});
