/**
 * One bridge, one owner: two state roots on one host that name no bridge never share one
 * (nor its subnet, nor its leases); a root that names another root's bridge is refused in
 * one sentence naming that root. NAT: on by default, `network set --no-nat|--nat`.
 * Nothing here sends a packet.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { census } from '../helpers/census.js';
import { IN_GUEST, removeNetwork, removeRoot, runCli, tempRoot } from '../helpers/run-cli.js';
import { HOST_ONLY, skipEachIf } from '../helpers/skip.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('network: one bridge, one owner (root)', () => {
  skipEachIf(IN_GUEST ? HOST_ONLY : undefined);
  const cleanups: (() => void)[] = [];
  afterAll(() => {
    for (const c of cleanups.reverse()) c();
  });

  /** A root whose config says only "no NAT": bridge and subnet are chosen on first use. */
  const bareRoot = (prefix: string) => {
    const root = mkdtempSync(join(process.env.NOVABOX_TEST_TMP ?? tmpdir(), prefix));
    writeFileSync(join(root, 'config.json'), '{ "network": { "nat": false } }\n');
    cleanups.push(() => {
      // the bridge this root chose (recorded in its config on first use), then the root
      try {
        removeNetwork(JSON.parse(readFileSync(join(root, 'config.json'), 'utf8')).network?.bridge);
      } catch {
        /* no config left */
      }
      removeRoot(root);
    });
    return root;
  };
  const show = async (root: string) => JSON.parse((await runCli(['network', 'show', '-f', 'json'], { root })).stdout);

  it('two roots without a bridge of their own get two bridges, two subnets; a third naming one is refused', async () => {
    const a = bareRoot('nbx-own-a-');
    const b = bareRoot('nbx-own-b-');
    const ca = await runCli(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--wait', 's'], {
      root: a,
    });
    expect(ca.stderr).toBe('');
    const na = await show(a);
    cleanups.push(() => removeNetwork(na.bridge));
    const cb = await runCli(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--wait', 's'], {
      root: b,
    });
    expect(cb.stderr).toBe('');
    const nb = await show(b);
    cleanups.push(() => removeNetwork(nb.bridge));
    expect(na['bridge owner']).toBe(resolve(a));
    expect(nb['bridge owner']).toBe(resolve(b));
    expect(readFileSync(`/sys/class/net/${na.bridge}/ifalias`, 'utf8').trim()).toBe(`novabox-root ${resolve(a)}`);
    expect(nb.bridge).not.toBe(na.bridge);
    expect(nb.subnet).not.toBe(na.subnet);
    expect(na.leases[0].address).not.toBe(nb.leases[0].address);

    // A third root that names A's bridge: one sentence naming A, exit 4, nothing recorded.
    const { root: c, remove } = tempRoot('nbx-own-c-');
    cleanups.push(remove);
    writeFileSync(join(c, 'config.json'), JSON.stringify({ network: { bridge: na.bridge, subnet: '10.250.7.0/24', nat: false } }));
    const before = census(c);
    const cc = await runCli(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', 'x'], { root: c });
    expect(cc.exitCode).toBe(4);
    expect(cc.stderr).toBe(
      `novabox: bridge ${na.bridge} belongs to the novabox state root ${resolve(a)}, not to ${resolve(c)}; set another "network.bridge" and "network.subnet" in ${c}/config.json\n`,
    );
    expect((await runCli(['server', 'list', '-f', 'json'], { root: c })).stdout).toBe('[]\n');
    expect(census(c)).toEqual(before);
    expect((await show(a))['bridge owner']).toBe(resolve(a));

    for (const r of [a, b]) {
      expect((await runCli(['server', 'delete', 's'], { root: r })).exitCode).toBe(0);
      expect((await runCli(['network', 'delete'], { root: r })).exitCode).toBe(0);
    }
    expect((await show(a))['bridge present']).toBe(false);
    expect((await show(b))['bridge present']).toBe(false);
  }, 60_000);

  it('NAT: on unless "nat" is false; network set --no-nat / --nat change the file and the table; bad input changes nothing', async () => {
    const { root, remove, bridge } = tempRoot('nbx-nat-');
    cleanups.push(remove);
    const cfg = () => JSON.parse(readFileSync(join(root, 'config.json'), 'utf8')).network;
    const table = async () => (await show(root))['nat table'];
    // tempRoot says nat: false; without the key NAT is on
    const { nat: _, ...rest } = cfg();
    writeFileSync(join(root, 'config.json'), JSON.stringify({ network: rest }));
    expect((await show(root)).nat).toBe(true);
    expect((await runCli(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--wait', 'n1'], { root })).exitCode).toBe(0);
    expect(await table()).toBe(true);
    expect((await runCli(['network', 'set', '--no-nat'], { root })).exitCode).toBe(0);
    expect(cfg()).toEqual({ ...rest, nat: false });
    expect(await table()).toBe(false);
    const bad = await runCli(['network', 'set'], { root });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toBe('novabox: nothing to set: give --nat or --no-nat\n');
    expect(cfg()).toEqual({ ...rest, nat: false });
    expect((await runCli(['network', 'set', '--nat'], { root })).exitCode).toBe(0);
    expect(cfg().nat).toBe(true);
    expect(await table()).toBe(true);
    expect((await runCli(['server', 'delete', 'n1'], { root })).exitCode).toBe(0);
    expect((await runCli(['network', 'delete'], { root })).exitCode).toBe(0);
    expect(await table()).toBe(false);
    expect(bridge).toBe(rest.bridge);
  }, 60_000);
});
