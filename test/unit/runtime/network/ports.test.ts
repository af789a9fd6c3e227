import { describe, expect, it } from 'vitest';
import {
  addElementsScript,
  checkDistinct,
  deleteElementsScript,
  formatPort,
  listenersOf,
  overlaps,
  parseListeners,
  parsePublish,
  parsePortTables,
  parsePublished,
  portsTable,
  portsTableScript,
  type PortMapping,
} from '../../../../src/runtime/network/ports.js';
import { parseSubnet } from '../../../../src/runtime/network/ipam.js';

describe('parsePublish', () => {
  it.each([
    ['8080:80', { protocol: 'tcp', hostIp: '', hostPort: 8080, port: 80 }],
    ['8080:80/tcp', { protocol: 'tcp', hostIp: '', hostPort: 8080, port: 80 }],
    ['5353:53/udp', { protocol: 'udp', hostIp: '', hostPort: 5353, port: 53 }],
    ['127.0.0.1:8080:80', { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8080, port: 80 }],
    ['0.0.0.0:1:65535/udp', { protocol: 'udp', hostIp: '', hostPort: 1, port: 65535 }],
  ])('%s', (spec, want) => {
    expect(parsePublish(spec)).toEqual(want);
  });

  it.each([
    ['8080', /expected \[HOSTIP:\]HOSTPORT:PORT\[\/tcp\|udp\]/],
    ['', /expected/],
    ['8080:80/sctp', /protocol must be tcp or udp/],
    ['8080:80/', /protocol must be tcp or udp/],
    ['0:80', /the host port must be a number from 1 to 65535/],
    ['65536:80', /the host port must be a number from 1 to 65535/],
    ['8080:x', /the server port must be a number/],
    ['8080:-1', /the server port must be a number/],
    ['80a:80', /the host port must be a number/],
    ['1.2.3:8080:80', /host address "1.2.3" is not an IPv4 address/],
    ['localhost:8080:80', /host address "localhost" is not an IPv4 address/],
    ['[::1]:8080:80', /IPv6 host addresses are not supported/],
    ['::1:8080:80', /IPv6 host addresses are not supported/],
    ['8000-8010:80', /the host port must be a number/],
  ])('refuses %j in one sentence', (spec, want) => {
    expect(() => parsePublish(spec)).toThrow(want);
    try {
      parsePublish(spec);
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
      expect((err as { code?: string }).code).toBe('bad-request');
    }
  });

  it('formats as podman ps does', () => {
    expect(formatPort(parsePublish('8080:80'))).toBe('0.0.0.0:8080->80/tcp');
    expect(formatPort(parsePublish('127.0.0.1:53:53/udp'))).toBe('127.0.0.1:53->53/udp');
  });
});

describe('overlaps and checkDistinct', () => {
  const m = (s: string) => parsePublish(s);
  it.each([
    ['8080:80', '8080:81', true],
    ['8080:80', '127.0.0.1:8080:81', true],
    ['127.0.0.1:8080:80', '127.0.0.2:8080:80', false],
    ['127.0.0.1:8080:80', '127.0.0.1:8080:80', true],
    ['8080:80', '8080:80/udp', false],
    ['8080:80', '8081:80', false],
  ])('%s and %s: %s', (a, b, want) => {
    expect(overlaps(m(a), m(b))).toBe(want);
    expect(overlaps(m(b), m(a))).toBe(want);
  });

  it('one request publishes each host port once', () => {
    expect(() => checkDistinct([m('8080:80'), m('8080:80/udp'), m('127.0.0.1:8081:80'), m('127.0.0.2:8081:80')])).not.toThrow();
    expect(() => checkDistinct([m('8080:80'), m('127.0.0.1:8080:81')])).toThrow('host port 8080/tcp is published twice');
  });
});

describe('parseListeners', () => {
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0',
    '   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0',
    '   2: 0100007F:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0',
  ].join('\n');
  const tcp6 = [
    '  sl  local_address                         remote_address                        st',
    '   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0',
    '   1: 00000000000000000000000001000000:0051 00000000000000000000000000000000:0000 0A 0',
    '   2: 0000000000000000FFFF00000100007F:0052 00000000000000000000000000000000:0000 0A 0',
  ].join('\n');
  const udp = [
    '  sl  local_address rem_address   st',
    '   0: 00000000:14E9 00000000:0000 07 0',
    '   1: 0100007F:14EA 0200007F:0035 01 0',
  ].join('\n');

  it('reads LISTEN tcp sockets and unconnected udp ones, addresses in the kernel byte order', () => {
    expect(parseListeners(tcp, 'tcp', false)).toEqual([
      { protocol: 'tcp', address: '127.0.0.1', port: 8080 },
      { protocol: 'tcp', address: '', port: 22 },
    ]);
    expect(parseListeners(tcp6, 'tcp', true)).toEqual([
      { protocol: 'tcp', address: '', port: 80 },
      { protocol: 'tcp', address: '00000000000000000000000001000000', port: 81 },
      { protocol: 'tcp', address: '127.0.0.1', port: 82 },
    ]);
    expect(parseListeners(udp, 'udp', false)).toEqual([{ protocol: 'udp', address: '', port: 5353 }]);
  });

  it('a listener takes a mapping on its port and address, or on every address; an IPv6-only one never', () => {
    const ls = [...parseListeners(tcp, 'tcp', false), ...parseListeners(tcp6, 'tcp', true)];
    expect(listenersOf(parsePublish('8080:80'), ls)).toHaveLength(1);
    expect(listenersOf(parsePublish('127.0.0.1:8080:80'), ls)).toHaveLength(1);
    expect(listenersOf(parsePublish('10.0.0.1:8080:80'), ls)).toHaveLength(0);
    expect(listenersOf(parsePublish('10.0.0.1:22:80'), ls)).toHaveLength(1);
    expect(listenersOf(parsePublish('8080:80/udp'), ls)).toHaveLength(0);
    expect(listenersOf(parsePublish('80:80'), ls)).toHaveLength(1); // [::]:80 takes IPv4 too (bindv6only=0)
    expect(listenersOf(parsePublish('81:80'), ls)).toHaveLength(0); // ::1 only
    expect(listenersOf(parsePublish('127.0.0.1:82:80'), ls)).toHaveLength(1);
  });
});

describe('nft scripts', () => {
  const ms: PortMapping[] = [parsePublish('8080:80'), parsePublish('127.0.0.1:5353:53/udp')];

  it('one table per bridge, named after the NAT table', () => {
    expect(portsTable('nbt0a1b')).toBe('novabox_nbt0a1b_ports');
    expect(portsTable('br-x.1')).toBe('novabox_br_x_1_ports');
  });

  it('the table: maps looked up for local destinations in prerouting and output, loopback and hairpin masqueraded', () => {
    const s = portsTableScript('nb0', parseSubnet('10.89.0.0/24'));
    expect(s.startsWith('create table ip novabox_nb0_ports\n')).toBe(true);
    expect(s).toContain('map tcp_addr { type ipv4_addr . inet_service : ipv4_addr . inet_service; }');
    expect(s).toContain('map udp_any { type inet_service : ipv4_addr . inet_service; }');
    expect(s).toContain('meta l4proto tcp dnat ip to ip daddr . tcp dport map @tcp_addr');
    expect(s).toContain('meta l4proto udp dnat ip to udp dport map @udp_any');
    expect(s.match(/fib daddr type local jump published/g)).toHaveLength(2);
    expect(s).toContain('ct status dnat oifname "nb0" ip saddr { 127.0.0.0/8, 10.89.0.0/24 } masquerade');
  });

  it('elements: created (refused if there), deleted by key', () => {
    expect(addElementsScript('nb0', '10.89.0.2', ms)).toBe(
      'create element ip novabox_nb0_ports tcp_any { 8080 : 10.89.0.2 . 80 }\n' +
        'create element ip novabox_nb0_ports udp_addr { 127.0.0.1 . 5353 : 10.89.0.2 . 53 }\n',
    );
    expect(deleteElementsScript('nb0', ms)).toBe(
      'delete element ip novabox_nb0_ports tcp_any { 8080 }\ndelete element ip novabox_nb0_ports udp_addr { 127.0.0.1 . 5353 }\n',
    );
  });

  it("reads back novabox's elements from nft -j, of every root, and nothing else", () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        {
          map: {
            family: 'ip',
            name: 'tcp_addr',
            table: 'novabox_nb0_ports',
            elem: [[{ concat: ['127.0.0.1', 18081] }, { concat: ['10.89.0.2', 80] }]],
          },
        },
        { map: { family: 'ip', name: 'tcp_any', table: 'novabox_nb0_ports', elem: [[18080, { concat: ['10.89.0.3', 81] }]] } },
        { map: { family: 'ip', name: 'udp_any', table: 'novabox_nb1_ports' } },
        { map: { family: 'ip', name: 'udp_any', table: 'novabox_nb2_ports', elem: [[53, { concat: ['10.90.0.2', 53] }]] } },
        { map: { family: 'ip', name: 'tcp_any', table: 'someone_else', elem: [[80, { concat: ['10.0.0.2', 80] }]] } },
        { map: { family: 'ip', name: 'other', table: 'novabox_nb0_ports', elem: [[80, { concat: ['10.0.0.2', 80] }]] } },
      ],
    });
    expect([...parsePortTables(json)].sort()).toEqual(['novabox_nb0_ports', 'novabox_nb1_ports', 'novabox_nb2_ports']);
    expect(parsePublished(json)).toEqual([
      { table: 'novabox_nb0_ports', protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 18081, address: '10.89.0.2', port: 80 },
      { table: 'novabox_nb0_ports', protocol: 'tcp', hostIp: '', hostPort: 18080, address: '10.89.0.3', port: 81 },
      { table: 'novabox_nb2_ports', protocol: 'udp', hostIp: '', hostPort: 53, address: '10.90.0.2', port: 53 },
    ]);
  });
});
