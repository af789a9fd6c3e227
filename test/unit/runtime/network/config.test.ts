import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../../../src/runtime/network/config.js';
import { formatSubnet } from '../../../../src/runtime/network/ipam.js';
import { hostIfName, natTable, parseVethAlias, vethAlias } from '../../../../src/runtime/network/names.js';
import { natScript } from '../../../../src/runtime/network/bridge.js';
import { hostsText, resolvText } from '../../../../src/runtime/network/etc-files.js';
import { parseSubnet } from '../../../../src/runtime/network/ipam.js';

const F = '/r/config.json';

describe('network config', () => {
  it('defaults: bridge novabox0 (or another chosen later), subnet chosen later, NAT on', () => {
    expect(parseNetworkConfig(undefined, F)).toEqual({ name: 'novabox', bridge: 'novabox0', bridgeSet: false, nat: true, file: F });
    expect(parseNetworkConfig('{"network": {"nat": false}}', F).nat).toBe(false);
    expect(parseNetworkConfig('{}', F).bridge).toBe('novabox0');
  });

  it('reads bridge, subnet and nat', () => {
    const c = parseNetworkConfig('{"network": {"bridge": "br-lab", "subnet": "10.7.0.0/24", "nat": true, "mtu": 1400}}', F);
    expect(c.mtu).toBe(1400);
    expect(c.bridge).toBe('br-lab');
    expect(c.bridgeSet).toBe(true);
    expect(formatSubnet(c.subnet!)).toBe('10.7.0.0/24');
    expect(c.nat).toBe(true);
  });

  it.each([
    ['{', /invalid \/r\/config\.json: /],
    ['{"network": []}', /"network" must be an object/],
    ['{"network": {"bridg": "x"}}', /unknown key "network\.bridg"/],
    ['{"network": {"bridge": "a-name-far-too-long"}}', /1 to 15/],
    ['{"network": {"bridge": "a/b"}}', /1 to 15/],
    ['{"network": {"subnet": "10.7.0.1/24"}}', /"network\.subnet": invalid subnet "10\.7\.0\.1\/24": host bits/],
    ['{"network": {"nat": "yes"}}', /"network\.nat" must be true or false/],
    ['{"network": {"mtu": 100}}', /"network\.mtu" must be a whole number from 576 to 9000/],
  ])('refuses %s with one clear message', (text, msg) => {
    expect(() => parseNetworkConfig(text, F)).toThrow(msg);
  });
});

describe('names', () => {
  it('host end: nbv + 12 hex digits of the owner id, within IFNAMSIZ', () => {
    expect(hostIfName('d3d73b86-f2a3-4b86-8f93-aaffd5adbf0d')).toBe('nbvd3d73b86f2a3');
    expect(hostIfName('a'.repeat(64))).toHaveLength(15);
    expect(() => hostIfName('short')).toThrow();
  });

  it('ifalias round trip and the NAT table name', () => {
    expect(parseVethAlias(vethAlias('novabox0', 'abc') + '\n')).toEqual({ bridge: 'novabox0', ownerId: 'abc' });
    expect(parseVethAlias('something else')).toBeUndefined();
    expect(natTable('br-lab.1')).toBe('novabox_br_lab_1');
  });

  it('the NAT script replaces the table atomically and masquerades only traffic leaving the subnet', () => {
    const s = natScript({ bridge: 'novabox0', subnet: parseSubnet('10.89.0.0/16') });
    expect(s.split('\n').slice(0, 3)).toEqual([
      'table ip novabox_novabox0 {}',
      'delete table ip novabox_novabox0',
      'table ip novabox_novabox0 {',
    ]);
    expect(s).toContain('ip saddr 10.89.0.0/16 ip daddr != 10.89.0.0/16 oifname != "novabox0" masquerade');
  });
});

describe('/etc files', () => {
  it('hosts names the container on its address', () => {
    expect(hostsText('web1', '10.89.0.2')).toBe('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.89.0.2\tweb1\n');
  });

  it("resolv.conf drops loopback name servers, falling back to systemd-resolved's upstream list", () => {
    expect(resolvText('nameserver 192.0.2.53\nsearch lab\n')).toBe('# written by novabox\nnameserver 192.0.2.53\nsearch lab\n');
    expect(resolvText('nameserver 127.0.0.53\noptions edns0\n', 'nameserver 192.0.2.9\n')).toBe(
      '# written by novabox\noptions edns0\nnameserver 192.0.2.9\n',
    );
    expect(resolvText('nameserver ::1\n')).toBe('# written by novabox\n');
  });
});

describe('bridge owners', () => {
  it('chooses the first novaboxN that is missing or this root own; skips other roots and owner-less bridges', async () => {
    const { chooseBridge, ownerAlias } = await import('../../../../src/runtime/network/bridge.js');
    const links: Record<string, string> = { novabox0: '/var/lib/novabox', novabox1: '', novabox2: '/r' };
    const owner = (n: string) => links[n];
    expect(chooseBridge('/r', owner)).toBe('novabox2');
    expect(chooseBridge('/other', owner)).toBe('novabox3');
    expect(chooseBridge('/var/lib/novabox', owner)).toBe('novabox0');
    expect(chooseBridge('/r', () => '/x')).toBeUndefined();
    expect(ownerAlias('/r')).toBe('novabox-root /r');
  });
});
