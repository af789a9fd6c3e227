/**
 * README features, each on real kernel objects through bin/novabox: stop --timeout and
 * the stop signal's escalation, reconcile after an OOM kill and after a host reboot (boot
 * id change), flavor extra specs and the CPU quota in the live cgroup, the ephemeral
 * tmpfs's size, exit status 5, the subnet's auto-choice, doctor removing leases,
 * `server list --long`, `image set/unset`. Census checked after every test.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { census, cgroupParentFor, leasesOf, type Census } from '../helpers/census.js';
import { BIN, IN_GUEST, cliEnv, runCli, tempRoot } from '../helpers/run-cli.js';
import { sh } from '../helpers/image-fixtures.js';
import { missingCommands } from '../helpers/skip.js';

const isRoot = process.getuid?.() === 0;
const Database = createRequire(import.meta.url)('better-sqlite3');

describe.skipIf(!isRoot)('README features (root, real containers)', () => {
  let root: string;
  let removeRoot: () => void;
  let before: Census;
  const nb = (args: string[], timeoutMs?: number) => runCli(args, { root, timeoutMs });
  const show = async (name: string) => {
    const r = await nb(['server', 'show', name, '-f', 'json']);
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout) as Record<string, unknown> & { id: string; pid: number | null; status: string };
  };
  /** a kernel file of a server's cgroup, v1 (per controller) or v2 */
  const cgFile = (id: string, controller: string, v1: string, v2: string): { path: string; v2: boolean } => {
    const parent = cgroupParentFor(root);
    const one = `/sys/fs/cgroup/${controller}/${parent}/${id}/${v1}`;
    if (existsSync(one)) return { path: one, v2: false };
    return { path: `/sys/fs/cgroup/${parent}/${id}/${v2}`, v2: true };
  };
  const read = (p: string) => readFileSync(p, 'utf8').trim();
  const events = async (name: string) =>
    JSON.parse((await nb(['server', 'event', 'list', name, '-f', 'json'])).stdout) as { Action: string; Message: string }[];

  beforeAll(async () => {
    ({ root, remove: removeRoot } = tempRoot('nbx-feat-'));
    expect((await runCli(['run', '--rm', 'busybox', 'true'], { root })).exitCode).toBe(0); // builds the image
  });
  afterAll(() => removeRoot?.());
  beforeEach(() => {
    before = census(root);
  });
  afterEach(async () => {
    for (const s of JSON.parse((await nb(['server', 'list', '-f', 'json'])).stdout || '[]') as { ID: string }[])
      await nb(['server', 'delete', '--force', s.ID]);
    const strip = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')) });
    expect(strip(census(root))).toEqual(strip(before));
    expect(existsSync(`${root}/servers`) ? readdirSync(`${root}/servers`) : []).toEqual([]);
  }, 60_000);

  /**
   * An image of the busybox layer whose server command is `cmd` (the io.novabox.server-cmd
   * label) and whose stop signal is `stopSignal`, made with umoci as an OCI layout.
   */
  async function imageWith(name: string, cmd: string[], stopSignal?: string): Promise<void> {
    const work = mkdtempSync(join(root, 'tmp-oci-'));
    try {
      const layer = readdirSync(`${root}/layers/sha256`)[0];
      const layout = join(work, 'layout');
      sh('umoci', ['init', '--layout', layout]);
      sh('umoci', ['new', '--image', `${layout}:v1`]);
      sh('umoci', ['insert', '--image', `${layout}:v1`, `${root}/layers/sha256/${layer}`, '/']);
      sh('umoci', [
        'config',
        '--image',
        `${layout}:v1`,
        '--config.label',
        `io.novabox.server-cmd=${JSON.stringify(cmd)}`,
        ...(stopSignal ? ['--config.stopsignal', stopSignal] : []),
      ]);
      const r = await nb(['image', 'create', '--file', layout, '--format', 'oci', name], 60_000);
      expect(r.exitCode, r.stderr).toBe(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const noUmoci = missingCommands(['umoci']).length > 0;

  it(
    "stop: the stop signal, then SIGKILL of the cgroup after --timeout; an image's own stop signal is used",
    async (ctx) => {
      ctx.skip(noUmoci, 'no umoci: the test images with a server command are made with it');
      // ignores SIGTERM; exits on SIGUSR1
      const script = 'trap "" TERM; trap "exit 0" USR1; while :; do sleep 0.1; done';
      await imageWith('stubborn', ['/bin/sh', '-c', script]);
      await imageWith('usr1', ['/bin/sh', '-c', script], 'SIGUSR1');
      for (const [name, image] of [
        ['st1', 'stubborn'],
        ['su1', 'usr1'],
      ]) {
        expect((await nb(['server', 'create', '--image', image, '--flavor', 'c1.nano', name])).exitCode).toBe(0);
      }
      // SIGTERM (the default) is ignored: killed after --timeout 1
      let t = Date.now();
      const killed = await nb(['--debug', 'server', 'stop', '--timeout', '1', 'st1']);
      const killedMs = Date.now() - t;
      expect(killed.exitCode, killed.stderr).toBe(0);
      expect(killed.stderr).toContain('novabox: st1: stopped by SIGKILL after the timeout');
      expect(killedMs).toBeGreaterThanOrEqual(1000);
      expect(killedMs).toBeLessThan(IN_GUEST ? 30_000 : 8_000);
      expect(await show('st1')).toMatchObject({ status: 'SHUTOFF', pid: null });
      // the image's SIGUSR1: it ends by itself well before a 30 s timeout
      t = Date.now();
      const signalled = await nb(['--debug', 'server', 'stop', '--timeout', '30', 'su1']);
      expect(signalled.exitCode, signalled.stderr).toBe(0);
      expect(signalled.stderr).toContain('novabox: su1: stopped by the stop signal');
      expect(Date.now() - t).toBeLessThan(IN_GUEST ? 20_000 : 5_000);
      expect(await show('su1')).toMatchObject({ status: 'SHUTOFF', pid: null });
      for (const n of ['st1', 'su1']) expect((await nb(['server', 'delete', n])).exitCode).toBe(0);
      for (const i of ['stubborn', 'usr1']) expect((await nb(['image', 'delete', i])).exitCode).toBe(0);
    },
    IN_GUEST ? 300_000 : 60_000,
  );

  it(
    'reconcile after an OOM kill: the server whose command the kernel killed shows SHUTOFF (Crashed) with an event',
    async (ctx) => {
      ctx.skip(noUmoci, 'no umoci: the test images with a server command are made with it');
      // a 16 MiB flavor (swap off); a subshell's variable outgrows it and the kernel kills
      // it; the command then lives 2 s more (its cgroup, and the kernel's oom_kill count in
      // it, with it) and exits with the subshell's 137
      expect((await nb(['flavor', 'create', '--vcpus', '1', '--ram', '16', 'feat.oom'])).exitCode).toBe(0);
      await imageWith('hog', ['/bin/sh', '-c', 'sleep 0.3; (x=$(head -c 100000000 /dev/zero | tr "\\0" a)); st=$?; sleep 2; exit $st']);
      expect((await nb(['server', 'create', '--image', 'hog', '--flavor', 'feat.oom', 'oom1'])).exitCode).toBe(0);
      const { id, pid } = await show('oom1');
      const oomFile = cgFile(id, 'memory', 'memory.oom_control', 'memory.events');
      let oomKills = 0;
      for (let i = 0; i < 1000 && oomKills === 0 && existsSync(`/proc/${pid}`); i++) {
        try {
          oomKills = Number(/^oom_kill (\d+)$/m.exec(read(oomFile.path))?.[1] ?? 0);
        } catch {
          /* the cgroup went with the server's end */
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      let s = await show('oom1');
      for (let i = 0; i < 200 && s.status === 'ACTIVE'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        s = await show('oom1');
      }
      expect(oomKills, "the kernel OOM-killed in the server's cgroup").toBeGreaterThan(0);
      expect(s).toMatchObject({ status: 'SHUTOFF', 'OS-EXT-STS:power_state': 'Crashed', pid: null });
      expect((await events('oom1'))[0]).toMatchObject({
        Action: 'stop',
        Message: expect.stringMatching(/server stopped by itself: (killed by signal 9|exited with status 137)/),
      });
      expect((await nb(['server', 'delete', 'oom1'])).exitCode).toBe(0);
      expect((await nb(['image', 'delete', 'hog'])).exitCode).toBe(0);
      expect((await nb(['flavor', 'delete', 'feat.oom'])).exitCode).toBe(0);
    },
    IN_GUEST ? 300_000 : 60_000,
  );

  it("reconcile after a host reboot: a recorded boot id that is not this boot's means the server is not running", async () => {
    expect((await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', 'rb1'])).exitCode).toBe(0);
    const { id, pid } = await show('rb1');
    const db = new Database(join(root, 'novabox.db'), { timeout: 10_000 });
    let monitor: number;
    try {
      monitor = (db.prepare('SELECT monitor_pid FROM server_runtime WHERE server_id = ?').get(id) as { monitor_pid: number }).monitor_pid;
      // the record of another boot; its pids still live here, as reused pids would after a
      // reboot: only the boot id can tell
      expect(db.prepare('UPDATE server_runtime SET boot_id = ? WHERE server_id = ?').run(randomUUID(), id).changes).toBe(1);
    } finally {
      db.close();
    }
    const s = await show('rb1');
    expect(s).toMatchObject({ status: 'SHUTOFF', 'OS-EXT-STS:power_state': 'Crashed', pid: null });
    expect((await events('rb1'))[0]).toMatchObject({
      Action: 'stop',
      Message: 'server stopped by itself: its processes are gone (host reboot?)',
    });
    // end the simulation: what a reboot would have ended, then a start on this boot
    for (const p of [monitor, pid!]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone already */
      }
    }
    for (
      let i = 0;
      i < 200 && [monitor, pid!].some((p) => existsSync(`/proc/${p}`) && !/\) Z /.test(readFileSync(`/proc/${p}/stat`, 'utf8')));
      i++
    )
      await new Promise((r) => setTimeout(r, 10));
    expect((await nb(['server', 'start', 'rb1'])).exitCode).toBe(0);
    expect((await show('rb1')).status).toBe('ACTIVE');
  });

  it('flavor extra specs and vcpus reach the live cgroup: CPU quota, cpu shares, pids limit, memory', async () => {
    const f = await nb([
      'flavor',
      'create',
      '--vcpus',
      '2',
      '--ram',
      '96',
      '--property',
      'quota:cpu_shares=512',
      '--property',
      'quota:pids_limit=77',
      'feat.spec',
    ]);
    expect(f.exitCode, f.stderr).toBe(0);
    expect((await nb(['server', 'create', '--image', 'busybox', '--flavor', 'feat.spec', 'fx1'])).exitCode).toBe(0);
    const { id } = await show('fx1');
    const quota = cgFile(id, 'cpu', 'cpu.cfs_quota_us', 'cpu.max');
    if (quota.v2) {
      expect(read(quota.path)).toBe('200000 100000'); // 2 vCPUs
      expect(read(cgFile(id, 'cpu', 'cpu.shares', 'cpu.weight').path)).toBe('20'); // shares 512 as a weight
      expect(read(cgFile(id, 'memory', 'memory.limit_in_bytes', 'memory.max').path)).toBe(String(96 * 2 ** 20));
    } else {
      expect(read(quota.path)).toBe('200000');
      expect(read(cgFile(id, 'cpu', 'cpu.cfs_period_us', 'cpu.max').path)).toBe('100000');
      expect(read(cgFile(id, 'cpu', 'cpu.shares', 'cpu.weight').path)).toBe('512');
      expect(read(cgFile(id, 'memory', 'memory.limit_in_bytes', 'memory.max').path)).toBe(String(96 * 2 ** 20));
    }
    expect(read(cgFile(id, 'pids', 'pids.max', 'pids.max').path)).toBe('77');
    expect((await nb(['server', 'delete', 'fx1'])).exitCode).toBe(0);
    expect((await nb(['flavor', 'delete', 'feat.spec'])).exitCode).toBe(0);
  });

  it("an --ephemeral server's writable layer is a tmpfs of the flavor's disk size (1 GiB at least)", async () => {
    expect((await nb(['flavor', 'create', '--vcpus', '1', '--ram', '64', '--disk', '2', 'feat.eph'])).exitCode).toBe(0);
    for (const [name, flavor, kib] of [
      ['e2', 'feat.eph', 2 * 1024 * 1024],
      ['e0', 'c1.nano', 1024 * 1024],
    ] as const) {
      expect((await nb(['server', 'create', '--ephemeral', '--image', 'busybox', '--flavor', flavor, name])).exitCode).toBe(0);
      // the tmpfs (mounted in the server's mount namespace, under the overlay) holds the
      // writable layer: df of / reports its size
      const df = (await nb(['server', 'exec', name, '--', 'df', '-k', '/'])).stdout.trim().split('\n').at(-1)!.split(/\s+/);
      expect(Number(df[1])).toBe(kib);
    }
    for (const n of ['e2', 'e0']) expect((await nb(['server', 'delete', n])).exitCode).toBe(0);
    expect((await nb(['flavor', 'delete', 'feat.eph'])).exitCode).toBe(0);
  });

  it('exit status 5 and one sentence for a user who is not root; nothing changed', async () => {
    const asNobody = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
        const p = spawn(process.execPath, [BIN, ...args], { env: cliEnv(root), uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d) => (stdout += d));
        p.stderr.on('data', (d) => (stderr += d));
        p.on('close', (code) => done({ code, stdout, stderr }));
      });
    for (const args of [
      ['server', 'list'],
      ['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', 'x'],
      ['image', 'list'],
      ['doctor'],
      ['run', '--rm', 'busybox', 'true'],
    ]) {
      const r = await asNobody(args);
      // `run` keeps podman's statuses (run --help): 1 for novabox's own errors
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(args[0] === 'run' ? 1 : 5);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe('novabox: novabox needs root: run it with sudo (rootless mode is not supported yet)\n');
    }
    expect(JSON.parse((await nb(['server', 'list', '-f', 'json'])).stdout)).toEqual([]);
  });

  it("server list --long: the openstack client's long columns", async () => {
    expect((await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--property', 'k=v', 'lg1'])).exitCode).toBe(0);
    const short = JSON.parse((await nb(['server', 'list', '-f', 'json'])).stdout);
    const long = JSON.parse((await nb(['server', 'list', '--long', '-f', 'json'])).stdout);
    expect(Object.keys(short[0])).toEqual(['ID', 'Name', 'Status', 'Networks', 'Image', 'Flavor']);
    expect(Object.keys(long[0])).toEqual([
      'ID',
      'Name',
      'Status',
      'Task State',
      'Power State',
      'Networks',
      'Image Name',
      'Image ID',
      'Flavor Name',
      'Flavor ID',
      'Availability Zone',
      'Host',
      'Properties',
    ]);
    const { id } = await show('lg1');
    expect(long[0]).toMatchObject({
      ID: id,
      Name: 'lg1',
      Status: 'ACTIVE',
      'Task State': null,
      'Power State': 'Running',
      'Image Name': 'busybox',
      'Flavor Name': 'c1.nano',
      'Availability Zone': 'nova',
    });
    expect(JSON.stringify(long[0].Properties)).toContain('k');
    const text = (await nb(['server', 'list', '--long'])).stdout;
    expect(text).toMatch(/\| Power State \|/);
    expect((await nb(['server', 'delete', 'lg1'])).exitCode).toBe(0);
  });

  it('image set/unset: name, properties, tags and protection; a protected image refuses deletion', async () => {
    const id = (await nb(['image', 'show', 'busybox', '-f', 'value', '-c', 'id'])).stdout.trim();
    const set = await nb([
      'image',
      'set',
      '--property',
      'k1=v1',
      '--property',
      'k2=v2',
      '--tag',
      't1',
      '--name',
      'bb2',
      '--protected',
      'busybox',
    ]);
    expect(set.exitCode, set.stderr).toBe(0);
    let img = JSON.parse((await nb(['image', 'show', id, '-f', 'json'])).stdout);
    expect(img).toMatchObject({ name: 'bb2', protected: true, tags: ['t1'], properties: expect.objectContaining({ k1: 'v1', k2: 'v2' }) });
    const del = await nb(['image', 'delete', 'bb2']);
    expect(del.exitCode).toBe(4);
    expect(del.stderr.split('\n')[0]).toMatch(/^novabox: .*protected/);
    expect((await nb(['image', 'unset', '--property', 'k1', '--tag', 't1', 'bb2'])).exitCode).toBe(0);
    expect((await nb(['image', 'set', '--unprotected', '--name', 'busybox', 'bb2'])).exitCode).toBe(0);
    img = JSON.parse((await nb(['image', 'show', id, '-f', 'json'])).stdout);
    expect(img).toMatchObject({ name: 'busybox', protected: false, tags: [] });
    expect(img.properties).not.toHaveProperty('k1');
    expect(img.properties.k2).toBe('v2');
    expect((await nb(['image', 'unset', '--property', 'k2', 'busybox'])).exitCode).toBe(0);
    expect(JSON.parse((await nb(['image', 'show', id, '-f', 'json'])).stdout).properties).not.toHaveProperty('k2');
  });

  it('doctor removes a lease whose owner is gone, and leaves the live ones', async () => {
    expect((await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', 'lv1'])).exitCode).toBe(0);
    const live = leasesOf(root);
    expect(live).toHaveLength(1);
    // a lease of a server that no longer exists (its CLI died between the row and the lease's release)
    const [a, b, c] = live[0].split(' ')[0].split('.');
    const ghost = `${a}.${b}.${c}.${((Number(live[0].split(' ')[0].split('.')[3]) + 100) % 250) + 2}`;
    const db = new Database(join(root, 'novabox.db'), { timeout: 10_000 });
    try {
      const cols = (db.prepare('PRAGMA table_info(network_leases)').all() as { name: string }[]).map((x) => x.name);
      const row = db.prepare('SELECT * FROM network_leases').get() as Record<string, unknown>;
      const ins = { ...row, address: ghost, owner_id: randomUUID() } as Record<string, unknown>;
      if ('mac' in ins && typeof ins.mac === 'string') ins.mac = ins.mac.replace(/..$/, 'ee');
      db.prepare(`INSERT INTO network_leases (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(
        ...cols.map((k) => ins[k]),
      );
    } finally {
      db.close();
    }
    expect(leasesOf(root)).toHaveLength(2);
    const dry = JSON.parse((await nb(['doctor', '--dry-run', '-f', 'json'])).stdout);
    expect(dry).toEqual([expect.objectContaining({ Kind: 'lease', Name: ghost, Fixed: false })]);
    expect(leasesOf(root)).toHaveLength(2);
    const fix = JSON.parse((await nb(['doctor', '-f', 'json'])).stdout);
    expect(fix).toEqual([expect.objectContaining({ Kind: 'lease', Name: ghost, Fixed: true })]);
    expect(leasesOf(root)).toEqual(live);
    expect((await nb(['doctor'])).stdout).toBe('nothing to fix\n');
    expect((await nb(['server', 'delete', 'lv1'])).exitCode).toBe(0);
  });

  it('without a configured subnet, the first candidate no host route overlaps is chosen and kept', async () => {
    const { root: r2, remove, bridge: b2 } = tempRoot('nbx-feat-auto-');
    try {
      writeFileSync(join(r2, 'config.json'), JSON.stringify({ network: { bridge: b2 } }));
      const routes = readFileSync('/proc/net/route', 'utf8')
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length >= 8);
      const le = (hex: string) => Buffer.from(hex, 'hex').reverse().readUInt32BE(0);
      const ip = (s: string) => s.split('.').reduce((n, x) => ((n << 8) | Number(x)) >>> 0, 0);
      const candidates = [
        '10.89.0.0/16',
        '10.90.0.0/16',
        '10.91.0.0/16',
        '10.92.0.0/16',
        '10.93.0.0/16',
        '172.29.0.0/16',
        '172.30.0.0/16',
        '192.168.251.0/24',
      ];
      const free = candidates.find((c) => {
        const [net, bits] = c.split('/');
        return !routes.some((f) => {
          const mask = le(f[7]);
          if (mask === 0) return false; // the default route overlaps nothing
          const m = (Math.min(mask, bits === '16' ? 0xffff0000 : 0xffffff00) & mask) >>> 0; // the shorter prefix
          return (le(f[1]) & m) >>> 0 === (ip(net) & m) >>> 0;
        });
      });
      expect(free).toBeDefined();
      const c = await runCli(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', 'auto1'], { root: r2 });
      expect(c.exitCode, c.stderr).toBe(0);
      const net = JSON.parse((await runCli(['network', 'show', '-f', 'json'], { root: r2 })).stdout);
      expect(net.subnet).toBe(free);
      // kept: the bridge carries the subnet's gateway, and the next command sees the same
      expect((await runCli(['network', 'show', '-f', 'json'], { root: r2 })).stdout).toContain(free!);
      expect((await runCli(['server', 'delete', 'auto1'], { root: r2 })).exitCode).toBe(0);
      expect((await runCli(['network', 'delete'], { root: r2 })).exitCode).toBe(0);
    } finally {
      remove();
    }
  });
});
