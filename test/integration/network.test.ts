/**
 * The bridge network for real: veths, addresses, routes, leases and NAT of servers and
 * `run` containers, through bin/novabox, as root. Traffic only goes to containers this
 * file made (ping over the test root's own bridge); NAT is checked as a ruleset, never
 * by sending anything out. Each test leaves the census (veths, leases, nft tables, ...)
 * as it found it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { census, leasesOf, nftTablesOf, settledVeths, vethsOf, type Census } from '../helpers/census.js';
import { BIN, IN_GUEST, cliEnv, killCliAt, runCli, tempRoot } from '../helpers/run-cli.js';

const isRoot = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).error === undefined;
const hasNft = has('nft');

/** ping from the host, with busybox's applet (the host may have no iputils). */
function hostPing(addr: string): boolean {
  return spawnSync('busybox', ['ping', '-c', '1', '-W', '2', addr], { stdio: 'ignore' }).status === 0;
}

function inSubnet(addr: string, subnet: string): boolean {
  const [net] = subnet.split('/'); // the test subnets are /24
  return addr.split('.').slice(0, 3).join('.') === net.split('.').slice(0, 3).join('.');
}

describe.skipIf(!isRoot)('bridge network (root, real veths)', () => {
  let root: string;
  let bridge: string;
  let subnet: string;
  let removeRoot: () => void;
  let before: Census;
  const nb = (args: string[], opts: { input?: string; timeoutMs?: number } = {}) => runCli(args, { root, ...opts });
  const show = async (name: string) => {
    const r = await nb(['server', 'show', name, '-f', 'json']);
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout) as Record<string, unknown> & {
      addresses: Record<string, { addr: string; version: number; 'OS-EXT-IPS:type': string; 'OS-EXT-IPS-MAC:mac_addr': string }[]>;
    };
  };
  const addrOf = async (name: string) => (await show(name)).addresses.novabox[0].addr;
  const create = async (name: string, extra: string[] = []) => {
    const r = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', ...extra, name, '-f', 'json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    return JSON.parse(r.stdout);
  };

  beforeAll(async () => {
    ({ root, remove: removeRoot, bridge, subnet } = tempRoot('nbx-net-'));
    const r = await runCli(['run', '--rm', 'busybox', 'true'], { root }); // builds the image, makes the bridge
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });
  afterAll(() => {
    removeRoot?.();
    expect(existsSync(`/sys/class/net/${bridge}`)).toBe(false);
  });
  beforeEach(() => {
    before = census(root);
  });
  afterEach(async () => {
    const list = await nb(['server', 'list', '-f', 'json']);
    await Promise.all(
      (JSON.parse(list.stdout || '[]') as { ID: string }[]).map((s) => nb(['server', 'delete', '--force', s.ID], { timeoutMs: 60_000 })),
    );
    const after = census(root);
    const noServerFiles = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')) });
    expect(noServerFiles(after)).toEqual(noServerFiles(before));
    expect(after.veths).toEqual([]);
    expect(after.leases).toEqual([]);
  }, 120_000);

  it("servers get addresses in Nova's format, reach each other and the host reaches them", async () => {
    const a = await create('web1');
    expect(Object.keys(a.addresses)).toEqual(['novabox']);
    const [entry] = a.addresses.novabox;
    expect(Object.keys(entry)).toEqual(['addr', 'version', 'OS-EXT-IPS:type', 'OS-EXT-IPS-MAC:mac_addr']);
    expect(entry).toMatchObject({ version: 4, 'OS-EXT-IPS:type': 'fixed' });
    expect(entry['OS-EXT-IPS-MAC:mac_addr']).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(inSubnet(entry.addr, subnet)).toBe(true);
    await create('web2');
    const a1 = await addrOf('web1');
    const a2 = await addrOf('web2');
    expect(a1).not.toBe(a2);

    // Inside: lo and eth0, the address, a default route via the gateway (.1 on the bridge).
    const gw = subnet.replace(/0\/24$/, '1');
    const inside = await nb([
      'server',
      'exec',
      'web1',
      '--',
      'sh',
      '-c',
      'ls /sys/class/net; ip -4 -o addr show eth0; ip route; cat /sys/class/net/eth0/address',
    ]);
    expect(inside.stdout).toContain(`inet ${a1}/24`);
    expect(inside.stdout).toContain(`default via ${gw} dev eth0`);
    expect(inside.stdout.split('\n').slice(0, 2)).toEqual(['eth0', 'lo']);
    expect(inside.stdout).toContain(entry['OS-EXT-IPS-MAC:mac_addr']);

    const p12 = await nb(['server', 'exec', 'web1', '--', 'ping', '-c', '1', '-W', '2', a2]);
    expect(p12.exitCode, p12.stdout + p12.stderr).toBe(0);
    const p2gw = await nb(['server', 'exec', 'web2', '--', 'ping', '-c', '1', '-W', '2', gw]);
    expect(p2gw.exitCode).toBe(0);
    expect(hostPing(a1)).toBe(true);
    expect(hostPing(a2)).toBe(true);

    // /etc/hosts, /etc/hostname, /etc/resolv.conf: novabox's, bound over the image's.
    const etc = await nb([
      'server',
      'exec',
      'web1',
      '--',
      'sh',
      '-c',
      'cat /etc/hostname; grep web1 /etc/hosts; head -1 /etc/resolv.conf; grep " /etc/hosts " /proc/self/mountinfo | wc -l',
    ]);
    expect(etc.stdout).toBe(`web1\n${a1}\tweb1\n# written by novabox\n1\n`);

    // The Networks column, and the network's own view.
    // The openstack client's Networks column: a dict of lists in json, network=addr in a table.
    const list = JSON.parse((await nb(['server', 'list', '-f', 'json'])).stdout) as { Name: string; Networks: unknown }[];
    expect(list.find((s) => s.Name === 'web1')?.Networks).toEqual({ novabox: [a1] });
    const table = (await nb(['server', 'list', '--name', '^web1$', '-f', 'value', '-c', 'Networks'])).stdout;
    expect(table).toBe(`novabox=${a1}\n`);
    const net = JSON.parse((await nb(['network', 'show', '-f', 'json'])).stdout);
    expect(net).toMatchObject({ name: 'novabox', bridge, subnet, gateway: gw, nat: false, 'leases in use': 2 });
    expect(net.leases.map((l: { address: string; name: string }) => `${l.name} ${l.address}`).sort()).toEqual([`web1 ${a1}`, `web2 ${a2}`]);
    expect(readFileSync(`/sys/class/net/${bridge}/operstate`, 'utf8').trim()).toBe('up');
  });

  it("--network none has only lo, --network host sees the host's interfaces; neither takes an address", async () => {
    const none = await create('n1', ['--network', 'none']);
    expect(none.addresses).toEqual({});
    expect((await nb(['server', 'exec', 'n1', '--', 'ls', '/sys/class/net'])).stdout.trim().split(/\s+/)).toEqual(['lo']);
    const host = await create('h1', ['--network', 'host']);
    expect(host.addresses).toEqual({});
    const seen = (await nb(['server', 'exec', 'h1', '--', 'ls', '/sys/class/net'])).stdout.trim().split(/\s+/).sort();
    expect(seen).toEqual(
      expect.arrayContaining(
        readdirSync('/sys/class/net')
          .filter((n) => !n.startsWith('nbv'))
          .sort(),
      ),
    );
    expect(leasesOf(root)).toEqual([]);
  });

  it('addresses survive stop/start, reboot and rebuild; a stale veth of the same name does not stop a start', async () => {
    await create('keep');
    const addr = await addrOf('keep');
    const mac = (await show('keep')).addresses.novabox[0]['OS-EXT-IPS-MAC:mac_addr'];
    expect((await nb(['server', 'stop', 'keep'])).exitCode).toBe(0);
    expect(vethsOf(bridge)).toEqual([]);
    expect((await show('keep')).addresses.novabox[0].addr).toBe(addr); // Nova keeps fixed IPs while stopped
    // A leftover host end with the server's name (a crash between create and record):
    const id = (await show('keep')).id as string;
    const hostIf = `nbv${id.replace(/-/g, '').slice(0, 12)}`;
    expect(spawnSync('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', `nbx${id.slice(0, 8)}`]).status).toBe(0);
    const start = await nb(['server', 'start', 'keep']);
    expect(start.stderr).toBe('');
    expect(start.exitCode).toBe(0);
    expect((await show('keep')).addresses.novabox[0]).toMatchObject({ addr, 'OS-EXT-IPS-MAC:mac_addr': mac });
    expect((await nb(['server', 'reboot', '--hard', 'keep'])).exitCode).toBe(0);
    expect(await addrOf('keep')).toBe(addr);
    expect((await nb(['server', 'rebuild', '--image', 'busybox', 'keep'])).exitCode).toBe(0);
    expect(await addrOf('keep')).toBe(addr); // Nova keeps fixed IPs across rebuild
    expect(hostPing(addr)).toBe(true);
  });

  it('a fixed IP on request (--nic v4-fixed-ip), refused when taken or outside the subnet; --ip filters the list', async () => {
    const fixed = subnet.replace(/0\/24$/, '77');
    const a = await create('fixed', ['--nic', `net-id=novabox,v4-fixed-ip=${fixed}`]);
    expect(a.addresses.novabox[0].addr).toBe(fixed);
    expect(hostPing(fixed)).toBe(true);
    const taken = await nb([
      'server',
      'create',
      '--image',
      'busybox',
      '--flavor',
      'c1.nano',
      '--nic',
      `net-id=novabox,v4-fixed-ip=${fixed}`,
      'again',
    ]);
    expect(taken.exitCode).toBe(4);
    expect(taken.stderr).toBe(`novabox: Fixed IP address ${fixed} is already in use on network novabox\n`);
    const outside = await nb([
      'server',
      'create',
      '--image',
      'busybox',
      '--flavor',
      'c1.nano',
      '--nic',
      'net-id=novabox,v4-fixed-ip=192.0.2.200',
      'out',
    ]);
    expect(outside.exitCode).toBe(2);
    expect(outside.stderr).toMatch(/is not in the subnet/);
    const gw = await nb([
      'server',
      'create',
      '--image',
      'busybox',
      '--flavor',
      'c1.nano',
      '--nic',
      `net-id=novabox,v4-fixed-ip=${subnet.replace(/0\/24$/, '1')}`,
      'gw',
    ]);
    expect(gw.exitCode).toBe(2);
    await create('other');
    const byIp = JSON.parse((await nb(['server', 'list', '--ip', `\\.77$`, '-f', 'json'])).stdout) as { Name: string }[];
    expect(byIp.map((s) => s.Name)).toEqual(['fixed']);
    expect(JSON.parse((await nb(['server', 'list', '-f', 'json'])).stdout)).toHaveLength(2); // nothing made by the refusals
  });

  const many = IN_GUEST ? 10 : 30;
  it(`${many} concurrent creates (${many} CLI processes) get ${many} distinct addresses; ${many} deletes release them all`, async () => {
    const creates = await Promise.all(
      Array.from({ length: many }, (_, i) =>
        nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', `c${i}`, '-f', 'json'], { timeoutMs: 60_000 }),
      ),
    );
    for (const c of creates) expect(c.exitCode, c.stderr).toBe(0);
    const addrs = creates.map((c) => JSON.parse(c.stdout).addresses.novabox[0].addr as string);
    expect(new Set(addrs).size).toBe(many);
    for (const a of addrs) expect(inSubnet(a, subnet)).toBe(true);
    expect(leasesOf(root)).toHaveLength(many);
    expect(vethsOf(bridge)).toHaveLength(many);
    const ids = creates.map((c) => JSON.parse(c.stdout).id as string);
    const deletes = await Promise.all(ids.map((id) => nb(['server', 'delete', id], { timeoutMs: 60_000 })));
    for (const d of deletes) expect(d.exitCode, d.stderr).toBe(0);
    expect(leasesOf(root)).toEqual([]);
    expect(vethsOf(bridge)).toEqual([]);
  }, 120_000);

  it('run: an address of its own on the bridge, given back when it exits', async () => {
    const r = await nb(['run', '--rm', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0; cat /etc/hostname']);
    expect(r.exitCode).toBe(0);
    const m = /inet (\d+\.\d+\.\d+\.\d+)\/24/.exec(r.stdout);
    expect(m && inSubnet(m[1], subnet)).toBe(true);
    const failed = await nb(['run', '--rm', 'busybox', '/nope']);
    expect(failed.exitCode).toBe(127);
  });

  it('a run whose CLI and container were killed: the next run gives its lease back', async () => {
    const child = spawn(process.execPath, [BIN, 'run', '--rm', 'busybox', 'sleep', '30'], { env: cliEnv(root), stdio: 'ignore' });
    let state: { initPid?: number } | undefined;
    for (let i = 0; i < 500 && !state?.initPid; i++) {
      await new Promise((r) => setTimeout(r, 10));
      for (const id of existsSync(`${root}/containers`) ? readdirSync(`${root}/containers`) : []) {
        try {
          state = JSON.parse(readFileSync(`${root}/containers/${id}/state.json`, 'utf8'));
        } catch {
          /* not written yet */
        }
      }
    }
    expect(leasesOf(root)).toHaveLength(1);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    process.kill(state!.initPid!, 'SIGKILL');
    for (let i = 0; i < 200 && existsSync(`/proc/${state!.initPid}`); i++) await new Promise((r) => setTimeout(r, 10));
    expect((await nb(['run', '--rm', 'busybox', 'true'])).exitCode).toBe(0);
    expect(leasesOf(root)).toEqual([]);
    expect(settledVeths(root)).toEqual([]);
  });

  it("doctor removes a veth left on this root's bridge and changes nothing else", async () => {
    await create('alive');
    const live = vethsOf(bridge);
    expect(live).toHaveLength(1);
    expect(spawnSync('ip', ['link', 'add', 'nbv0000deadbeef', 'type', 'veth', 'peer', 'name', 'nbx0000deadbeef']).status).toBe(0);
    writeFileSync('/sys/class/net/nbv0000deadbeef/ifalias', `novabox ${bridge} 0000dead-beef-0000-0000-000000000000\n`);
    const dry = await nb(['doctor', '--dry-run', '-f', 'json']);
    expect(JSON.parse(dry.stdout)).toEqual([expect.objectContaining({ Kind: 'veth', Name: 'nbv0000deadbeef', Fixed: false })]);
    const fix = await nb(['doctor', '-f', 'json']);
    expect(JSON.parse(fix.stdout)).toEqual([expect.objectContaining({ Kind: 'veth', Name: 'nbv0000deadbeef', Fixed: true })]);
    expect(existsSync('/sys/class/net/nbv0000deadbeef')).toBe(false);
    expect(vethsOf(bridge)).toEqual(live);
    expect((await nb(['doctor'])).stdout).toBe('nothing to fix\n');
  });
});

describe.skipIf(!isRoot)('bridge network: crashes, clashes and NAT (root)', () => {
  it('kill -9 of the CLI mid-create, its lease recorded and no veth yet: the next command marks it ERROR and releases the lease; delete leaves nothing', async () => {
    const { root, remove } = tempRoot('nbx-netkill-');
    try {
      expect((await runCli(['run', '--rm', 'busybox', 'true'], { root })).exitCode).toBe(0);
      const before = census(root);
      // stopped (SIGSTOP) between the allocation and the veth, then killed (src/util/test-pause.ts)
      await killCliAt('create-recorded', ['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', 'victim'], root);
      expect(leasesOf(root)).toHaveLength(1);
      expect(settledVeths(root)).toEqual([]);
      const s = JSON.parse((await runCli(['server', 'show', 'victim', '-f', 'json'], { root })).stdout);
      expect(s).toMatchObject({ status: 'ERROR', fault: { message: 'the command creating the server stopped during spawning' } });
      // Nova deallocates the network of a build that failed.
      expect(s.addresses).toEqual({});
      expect(leasesOf(root)).toEqual([]);
      expect(settledVeths(root)).toEqual([]);
      expect((await runCli(['server', 'delete', 'victim'], { root })).exitCode).toBe(0);
      const after = census(root);
      expect({ ...after, stateFiles: [] }).toEqual({ ...before, stateFiles: [] });
    } finally {
      remove();
    }
  });

  it('refuses a subnet that overlaps a host route, in one line, and creates nothing', async ({ skip }) => {
    const route = readFileSync('/proc/net/route', 'utf8')
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .find((f) => f.length >= 8 && f[7] !== '00000000' && !/^(nbt|novabox)/.test(f[0])); // not another test root's bridge: it may go away
    if (!route) return skip('this host has only a default route: nothing to clash with'); // reported as skipped, not passed
    const le = (hex: string) => Buffer.from(hex, 'hex').reverse();
    const dest = [...le(route[1])].join('.');
    const bits = le(route[7]).readUInt32BE(0).toString(2).replace(/0+$/, '').length;
    const { root, remove, bridge } = tempRoot('nbx-netclash-');
    try {
      const prefix = Math.min(30, Math.max(16, bits));
      const base = dest.split('.').map(Number);
      const mask = prefix >= 24 ? [255, 255, 255, (0xff << (32 - prefix)) & 0xff] : [255, 255, (0xff << (24 - prefix)) & 0xff, 0];
      const net = base.map((b, i) => b & mask[i]).join('.');
      writeFileSync(`${root}/config.json`, JSON.stringify({ network: { bridge, subnet: `${net}/${prefix}` } }));
      const r = await runCli(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', 'x'], { root });
      expect(r.exitCode).toBe(4);
      // one sentence, what to do in parentheses
      expect(r.stderr).toMatch(
        new RegExp(
          `^novabox: subnet ${net}/${prefix} of bridge ${bridge} overlaps the host's route .* on ${route[0]} \\(set another "network.subnet" in [^\n]*\\)\n$`,
        ),
      );
      expect(JSON.parse((await runCli(['server', 'list', '-f', 'json'], { root })).stdout)).toEqual([]);
      expect(existsSync(`/sys/class/net/${bridge}`)).toBe(false);
      // A config that does not parse: one line naming the file and the key, exit 2, nothing made.
      writeFileSync(`${root}/config.json`, JSON.stringify({ network: { bridge, subnet: '10.1.2.3/24' } }));
      const bad = await runCli(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', 'x'], { root });
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toBe(
        `novabox: invalid ${root}/config.json: "network.subnet": invalid subnet "10.1.2.3/24": host bits are set (did you mean 10.1.2.0/24?)\n`,
      );
      expect(JSON.parse((await runCli(['server', 'list', '-f', 'json'], { root })).stdout)).toEqual([]);
    } finally {
      // should the refusal ever fail, take the server it made down with the root
      await runCli(['server', 'delete', '--force', 'x'], { root });
      remove();
    }
  });

  it('MTU: the bridge, the host end and eth0 get the configured "mtu"; network delete refuses while an address is in use, then removes the bridge', async () => {
    const { root, remove, bridge } = tempRoot('nbx-netmtu-', { mtu: 1400 });
    try {
      const c = await runCli(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', 'small', '-f', 'json'], { root });
      expect(c.exitCode, c.stderr).toBe(0);
      expect((await runCli(['server', 'exec', 'small', '--', 'cat', '/sys/class/net/eth0/mtu'], { root })).stdout).toBe('1400\n');
      expect(readFileSync(`/sys/class/net/${bridge}/mtu`, 'utf8')).toBe('1400\n');
      expect(vethsOf(bridge).map((v) => readFileSync(`/sys/class/net/${v}/mtu`, 'utf8'))).toEqual(['1400\n']);
      const busy = await runCli(['network', 'delete'], { root });
      expect(busy.exitCode).toBe(4);
      expect(busy.stderr).toMatch(/1 address\(es\) in use/);
      expect(existsSync(`/sys/class/net/${bridge}`)).toBe(true);
      expect((await runCli(['server', 'delete', 'small'], { root })).exitCode).toBe(0);
      expect((await runCli(['network', 'delete'], { root })).exitCode).toBe(0);
      expect(existsSync(`/sys/class/net/${bridge}`)).toBe(false);
    } finally {
      remove();
    }
  });

  it("NAT: novabox's own nftables table while configured, removed with the network; nothing sent out", async (ctx) => {
    ctx.skip(!hasNft, 'no nft (nftables): novabox configures NAT with it');
    const { root, remove, bridge } = tempRoot('nbx-netnat-', { nat: true });
    // NAT turns on net.ipv4.ip_forward, as it must; the test puts the host back as it was.
    const forward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    try {
      const c = await runCli(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', 'natted', '-f', 'json'], { root });
      expect(c.exitCode, c.stderr).toBe(0);
      const tables = nftTablesOf(bridge);
      expect(tables).toHaveLength(1);
      const ruleset = spawnSync('nft', ['list', 'table', 'ip', tables[0].split(' ').at(-1)!], { encoding: 'utf8' }).stdout;
      expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()).toBe('1');
      expect(ruleset).toMatch(/type nat hook postrouting priority srcnat/);
      expect(ruleset).toMatch(/masquerade/);
      expect((await runCli(['server', 'delete', 'natted'], { root })).exitCode).toBe(0);
      expect((await runCli(['network', 'delete'], { root })).exitCode).toBe(0);
      expect(nftTablesOf(bridge)).toEqual([]);
      expect(existsSync(`/sys/class/net/${bridge}`)).toBe(false);
      // NAT switched off with a table left over: doctor removes it.
      spawnSync('nft', ['add', 'table', 'ip', tables[0].split(' ').at(-1)!]);
      writeFileSync(
        `${root}/config.json`,
        JSON.stringify({ network: { bridge, subnet: JSON.parse(readFileSync(`${root}/config.json`, 'utf8')).network.subnet, nat: false } }),
      );
      const doc = await runCli(['doctor', '-f', 'json'], { root });
      expect(JSON.parse(doc.stdout)).toEqual([expect.objectContaining({ Kind: 'nat', Fixed: true })]);
      expect(nftTablesOf(bridge)).toEqual([]);
    } finally {
      remove();
      writeFileSync('/proc/sys/net/ipv4/ip_forward', forward);
    }
  });
});
