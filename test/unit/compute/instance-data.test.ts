import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeUserData,
  hasCloudInit,
  parseResolv,
  renderMetaData,
  renderNetworkConfig,
  renderSeed,
  USER_DATA_MAX,
  writeSeed,
  type InstanceData,
} from '../../../src/compute/instance-data.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKJIbxvyK7Mtagad+qip7zcInA4Ky+jGmdVjUKRiA36r me@host';
const base: InstanceData = {
  id: '69bcb57b-a262-4f1c-8c18-7365fd1c3037',
  name: 'web 1',
  hostname: 'web-1',
  metadata: { role: 'web', 'quote"d': 'a: b' },
  keyName: 'me',
  publicKey: KEY,
  configDrive: false,
};
const net = {
  address: '10.89.0.2',
  prefixLen: 16,
  gateway: '10.89.0.1',
  mac: '0a:58:0a:59:00:02',
  nameservers: ['10.0.0.53'],
  search: ['lan'],
};

/** YAML as cloud-init reads it (PyYAML's safe_load), when python3-yaml is there. */
function pyYaml(text: string): unknown {
  try {
    return JSON.parse(
      execFileSync('python3', ['-c', 'import sys,json,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: text }).toString(),
    );
  } catch {
    return undefined;
  }
}

describe('NoCloud seed rendering', () => {
  it('meta-data: instance-id, local-hostname, public-keys and the metadata, as YAML that parses back', () => {
    const text = renderMetaData(base);
    expect(text).toContain('instance-id: "69bcb57b-a262-4f1c-8c18-7365fd1c3037"\nlocal-hostname: "web-1"\n');
    const parsed = pyYaml(text);
    if (parsed !== undefined)
      expect(parsed).toEqual({
        'instance-id': base.id,
        'local-hostname': 'web-1',
        'public-keys': [KEY],
        meta: { role: 'web', 'quote"d': 'a: b' },
      });
    expect(renderMetaData({ ...base, publicKey: null, metadata: {} })).not.toMatch(/public-keys|meta:/);
  });

  it('user-data verbatim, an empty #cloud-config without; vendor-data lets root log in; modes keep user data to root', () => {
    const ud = Buffer.from([0x1f, 0x8b, 0, 1, 2]); // gzip'd user data stays bytes
    const files = Object.fromEntries(renderSeed({ ...base, userData: ud }).map((f) => [f.path, f]));
    expect(Object.keys(files).sort()).toEqual(['meta-data', 'network-config', 'user-data', 'vendor-data']);
    expect(files['user-data']!.data).toEqual(ud);
    expect(files['user-data']!.mode).toBe(0o600);
    expect(files['vendor-data']!.data).toBe('#cloud-config\ndisable_root: false\nlocale: C.UTF-8\n');
    expect(renderSeed(base).find((f) => f.path === 'user-data')!.data).toBe('#cloud-config\n{}\n');
  });

  it('config_drive adds openstack/latest/meta_data.json and user_data', () => {
    const files = renderSeed({ ...base, configDrive: true, userData: Buffer.from('#!/bin/sh\n') });
    const md = JSON.parse(String(files.find((f) => f.path === 'openstack/latest/meta_data.json')!.data));
    expect(md).toMatchObject({ uuid: base.id, name: 'web 1', hostname: 'web-1', public_keys: { me: KEY }, meta: base.metadata });
    expect(files.find((f) => f.path === 'openstack/latest/user_data')!.data.toString()).toBe('#!/bin/sh\n');
  });

  it('network-config v1: eth0 as novabox set it up, manual control; disabled without a bridge address', () => {
    const text = renderNetworkConfig({ ...net, mtu: 1400 });
    const parsed = pyYaml(text);
    if (parsed !== undefined)
      expect(parsed).toEqual({
        version: 1,
        config: [
          { type: 'physical', name: 'lo', subnets: [{ type: 'loopback', control: 'manual' }] },
          {
            type: 'physical',
            name: 'eth0',
            mac_address: net.mac,
            mtu: 1400,
            subnets: [
              {
                type: 'static',
                address: '10.89.0.2/16',
                gateway: '10.89.0.1',
                control: 'manual',
                dns_nameservers: ['10.0.0.53'],
                dns_search: ['lan'],
              },
            ],
          },
        ],
      });
    expect(text).toMatch(/^version: 1\n/);
    expect(renderNetworkConfig(undefined)).toBe('config: disabled\n');
  });

  it('reads name servers and search domains of a resolv.conf', () => {
    expect(parseResolv('# x\nnameserver 1.1.1.1\nsearch a b\ndomain a\nnameserver 8.8.8.8\noptions ndots:2\n')).toEqual({
      nameservers: ['1.1.1.1', '8.8.8.8'],
      search: ['a', 'b'],
    });
  });
});

describe('user_data', () => {
  it('decodes base64 (white space allowed), nothing for null', () => {
    expect(decodeUserData(Buffer.from('#cloud-config\n').toString('base64'))!.toString()).toBe('#cloud-config\n');
    expect(decodeUserData('I2Ns\nb3Vk')!.toString()).toBe('#cloud');
    expect(decodeUserData(undefined)).toBeUndefined();
    expect(decodeUserData(null)).toBeUndefined();
  });

  it.each([
    ['not base64!', /user_data.*is not a base64 string/],
    ['abc', /is not a base64 string/],
    [12, /is not of type 'string'/],
    ['A'.repeat(USER_DATA_MAX + 1), /user_data.*is too long/],
  ])('refuses %j in one sentence', (v, re) => {
    expect(() => decodeUserData(v)).toThrow(re);
  });

  it('takes exactly the limit', () => {
    expect(decodeUserData('A'.repeat(USER_DATA_MAX - (USER_DATA_MAX % 4)))!.length).toBeGreaterThan(49_000);
  });
});

describe('seed on disk', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'nb-seed-'));
    dirs.push(d);
    return d;
  };

  it('writes the files whole, replacing an older seed', () => {
    const dir = join(tmp(), 'seed');
    writeSeed(dir, { ...base, configDrive: true }, undefined);
    writeSeed(dir, { ...base, name: 'renamed', hostname: 'renamed' }, undefined);
    expect(readFileSync(join(dir, 'meta-data'), 'utf8')).toContain('local-hostname: "renamed"');
    expect(() => statSync(join(dir, 'openstack'))).toThrow(); // config drive gone with the rewrite
    expect(statSync(join(dir, 'user-data')).mode & 0o777).toBe(0o600);
  });

  it('finds cloud-init in the top layer that has it, a whiteout hides it', () => {
    const top = tmp();
    const low = tmp();
    expect(hasCloudInit([top, low])).toBe(false);
    mkdirSync(join(low, 'usr/bin'), { recursive: true });
    writeFileSync(join(low, 'usr/bin/cloud-init'), '#!/usr/bin/python3\n');
    expect(hasCloudInit([top, low])).toBe(true);
    if (process.getuid?.() === 0) {
      mkdirSync(join(top, 'usr/bin'), { recursive: true });
      execFileSync('mknod', [join(top, 'usr/bin/cloud-init'), 'c', '0', '0']);
      expect(hasCloudInit([top, low])).toBe(false);
    }
  });
});
