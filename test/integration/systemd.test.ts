/**
 * systemd as a server's pid 1 (issue 17 part 3), for real (root, bin/novabox): a Debian
 * rootfs (test/helpers/debian-image.ts) boots to `systemctl is-system-running` = running
 * in its own user namespace, its boot on the console log, the server's name as hostname,
 * a machine id per server kept across restarts, a clean and quick stop on SIGRTMIN+3 (the
 * journal of the last boot says so), start, reboot, `reboot` and `poweroff` inside,
 * setuid tools without no_new_privs, --userns host refused, and nothing left after delete.
 */
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { debianImage, debianImageMissing } from '../helpers/debian-image.js';
import { IN_GUEST, runCli, tempRoot } from '../helpers/run-cli.js';
import { skipEachIf } from '../helpers/skip.js';

const isRoot = process.getuid?.() === 0;
/** the pure cgroup v2 guest emulates its CPU (test/vm): everything takes longer there */
const SLOW = IN_GUEST ? 5 : 1;
/** the guest boots what is cgroup v2's own (boot, exec, stop/start, delete); each boot there is ~60 s of emulated CPU */
const HOST_ONLY = 'not cgroup-specific, run on the host: every boot costs ~60 s of emulated CPU in the guest';
const missing = isRoot ? debianImageMissing() : 'needs root';

describe('systemd as pid 1 (root, a real Debian)', () => {
  skipEachIf(missing);
  let root = '';
  let remove: (() => void) | undefined;
  let image = '';
  let before: Census;
  const nb = (args: string[]) => runCli(args, { root, timeoutMs: 60_000 * SLOW });
  const exec = async (server: string, cmd: string[]) => {
    const r = await nb(['server', 'exec', server, '--', ...cmd]);
    return { ...r, out: r.stdout.trim() };
  };
  /** until is-system-running answers something other than starting/initializing (bounded); ms taken */
  const boot = async (server: string, withinMs = 60_000 * SLOW): Promise<{ state: string; ms: number; err: string }> => {
    const t0 = Date.now();
    let state = '';
    let err = '';
    while (Date.now() - t0 < withinMs) {
      const r = await exec(server, ['systemctl', 'is-system-running']);
      ({ out: state, stderr: err } = r);
      if (state !== '' && state !== 'starting' && state !== 'initializing' && state !== 'offline') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    return { state, ms: Date.now() - t0, err };
  };
  const consoleLog = async (server: string) => (await nb(['console', 'log', 'show', server])).stdout;
  const boots = async (server: string) =>
    (await exec(server, ['journalctl', '--list-boots', '--no-pager', '-q'])).out.split('\n').filter(Boolean).length;

  beforeAll(async () => {
    if (missing) return;
    ({ root, remove } = tempRoot('nbx-systemd-'));
    image = await debianImage(root);
    before = census(root);
  }, 900_000); // a cold `image build debian` is a debootstrap: minutes
  afterAll(async () => {
    if (missing) return;
    for (const s of ['d1', 'd2', 'd3', 'd4']) await nb(['server', 'delete', '--wait', s]);
    remove?.(); // the image's ~20,000 files
  }, 120_000 * SLOW);

  it(
    'boots to running, its boot on the console log, pid 1 the image systemd with container=novabox',
    async () => {
      const c = await nb(['server', 'create', '--image', image, '--flavor', 'm1.small', '--wait', 'd1', '-f', 'value', '-c', 'status']);
      expect(c.stderr).toBe('');
      expect(c.stdout.trim()).toBe('ACTIVE');
      const b = await boot('d1');
      console.log(`d1 (bridge network): running ${b.ms} ms after create returned`);
      expect(b.state, b.err).toBe('running');
      expect((await exec('d1', ['systemctl', '--failed', '--no-legend', '--plain'])).out).toBe('');
      expect((await exec('d1', ['cat', '/proc/1/comm'])).out).toBe('systemd');
      expect((await exec('d1', ['sh', '-c', "tr '\\0' '\\n' </proc/1/environ"])).out.split('\n')).toContain('container=novabox');
      expect((await exec('d1', ['systemd-detect-virt', '--container'])).out).toBe('container-other');
      const log = await consoleLog('d1');
      expect(log).toMatch(/Reached target .*multi-user\.target/);
      expect(log).not.toContain('\r');
    },
    120_000 * SLOW,
  );

  it(
    'has the server name as hostname and a machine id of its own, kept across restarts',
    async (ctx) => {
      ctx.skip(IN_GUEST, HOST_ONLY);
      expect((await exec('d1', ['hostname'])).out).toBe('d1');
      const id1 = (await exec('d1', ['cat', '/etc/machine-id'])).out;
      expect(id1).toMatch(/^[0-9a-f]{32}$/);
      // no bridge: the hostname comes from the writable layer, not a bound host file
      const c = await nb(['server', 'create', '--image', image, '--flavor', 'm1.tiny', '--network', 'none', '--wait', 'd2']);
      expect(c.exitCode, c.stderr).toBe(0);
      expect((await boot('d2')).state).toBe('running');
      expect((await exec('d2', ['hostname'])).out).toBe('d2');
      const id2 = (await exec('d2', ['cat', '/etc/machine-id'])).out;
      expect(id2).toMatch(/^[0-9a-f]{32}$/);
      expect(id2).not.toBe(id1);
      expect((await exec('d1', ['journalctl', '--header', '-q', '-n', '0'])).exitCode).toBe(0);
    },
    120_000 * SLOW,
  );

  it('runs without no_new_privs: su and sudo work inside', async () => {
    expect((await exec('d1', ['sh', '-c', 'grep NoNewPrivs /proc/self/status'])).out).toMatch(/NoNewPrivs:\s+0/);
    expect((await exec('d1', ['sudo', '-u', 'nobody', 'id', '-u'])).out).toBe('65534');
    expect((await exec('d1', ['su', '-s', '/bin/sh', 'nobody', '-c', 'id -u'])).out).toBe('65534');
  });

  it(
    'stops cleanly and quickly on SIGRTMIN+3, and starts again with the same machine id',
    async () => {
      const id = (await exec('d1', ['cat', '/etc/machine-id'])).out;
      const t0 = Date.now();
      const s = await nb(['server', 'stop', 'd1']);
      const stopMs = Date.now() - t0;
      console.log(`d1: stop took ${stopMs} ms`);
      expect(s.exitCode, s.stderr).toBe(0);
      expect(stopMs).toBeLessThan(5000 * SLOW);
      const log = await consoleLog('d1');
      expect(log).toMatch(/Reached target .*shutdown\.target/);
      expect(log).toContain('server stopped (stop signal, systemd halted)');
      const st = await nb(['server', 'start', '--wait', 'd1']);
      expect(st.exitCode, st.stderr).toBe(0);
      expect((await boot('d1')).state).toBe('running');
      expect((await exec('d1', ['cat', '/etc/machine-id'])).out).toBe(id);
      // the last boot's journal ends with systemd's own shutdown
      const last = (await exec('d1', ['journalctl', '-b', '-1', '--no-pager', '-q', '-o', 'cat'])).out;
      expect(last).toContain('Reached target shutdown.target');
      expect(last).toMatch(/Journal stopped|Shutting down/);
    },
    120_000 * SLOW,
  );

  it(
    'reboots from the CLI and from inside; poweroff inside is a clean stop',
    async (ctx) => {
      ctx.skip(IN_GUEST, HOST_ONLY);
      const n = await boots('d1');
      const r = await nb(['server', 'reboot', '--wait', 'd1']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect((await boot('d1')).state).toBe('running');
      expect(await boots('d1')).toBe(n + 1);
      // `systemctl reboot` inside: systemd ends the container with reboot(2), novabox starts it again
      await exec('d1', ['systemctl', 'reboot']);
      let after = n + 1;
      for (let i = 0; i < 100 && after <= n + 1; i++) {
        await new Promise((res) => setTimeout(res, 200));
        if ((await exec('d1', ['true'])).exitCode === 0) after = await boots('d1');
      }
      expect(after).toBe(n + 2);
      expect((await boot('d1')).state).toBe('running');
      await exec('d2', ['systemctl', 'poweroff']);
      let status = '';
      for (let i = 0; i < 100 && status !== 'SHUTOFF'; i++) {
        await new Promise((res) => setTimeout(res, 100));
        status = (await nb(['server', 'show', 'd2', '-f', 'value', '-c', 'status'])).stdout.trim();
      }
      expect(status).toBe('SHUTOFF');
      const events = JSON.parse((await nb(['server', 'event', 'list', 'd2', '-f', 'json'])).stdout) as { Message: string | null }[];
      expect(events.map((e) => e.Message)).toContain('server stopped by itself: systemd halted');
    },
    120_000 * SLOW,
  );

  it(
    'refuses systemd with --userns host in one sentence; --init novabox; a rebuild follows the image',
    async (ctx) => {
      ctx.skip(IN_GUEST, HOST_ONLY);
      const r = await nb(['server', 'create', '--image', image, '--flavor', 'm1.tiny', '--userns', 'host', '--wait', 'd3']);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/systemd as pid 1 needs the server's own user namespace/);
      expect((await nb(['server', 'show', 'd3'])).exitCode).not.toBe(0);
      // and --init novabox boots the same image under novabox-init instead
      const n = await nb([
        'server',
        'create',
        '--image',
        image,
        '--flavor',
        'm1.tiny',
        '--init',
        'novabox',
        '--network',
        'none',
        '--wait',
        'd3',
      ]);
      expect(n.exitCode, n.stderr).toBe(0);
      expect((await exec('d3', ['sh', '-c', "tr '\\0' ' ' </proc/1/cmdline"])).out).toBe('novabox-init');
      expect((await nb(['server', 'show', 'd3', '-f', 'value', '-c', 'init'])).stdout.trim()).toBe('novabox');
      // a rebuild takes the new image's init (this one's os_init=systemd)
      const rb = await nb(['server', 'rebuild', '--image', image, '--wait', 'd3']);
      expect(rb.exitCode, rb.stderr).toBe(0);
      expect((await nb(['server', 'show', 'd3', '-f', 'value', '-c', 'init'])).stdout.trim()).toBe('systemd');
      expect((await boot('d3')).state).toBe('running');
    },
    60_000 * SLOW,
  );

  it(
    'a snapshot boots systemd again, with a machine id of its own',
    async (ctx) => {
      ctx.skip(IN_GUEST, HOST_ONLY);
      const snap = await nb(['server', 'image', 'create', '--name', 'd1-snap', '--wait', 'd1']);
      expect(snap.exitCode, snap.stderr).toBe(0);
      const c = await nb(['server', 'create', '--image', 'd1-snap', '--flavor', 'm1.tiny', '--network', 'none', '--wait', 'd4']);
      expect(c.exitCode, c.stderr).toBe(0);
      expect((await boot('d4')).state).toBe('running');
      expect((await exec('d4', ['hostname'])).out).toBe('d4');
      const id = (await exec('d4', ['cat', '/etc/machine-id'])).out;
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      expect(id).not.toBe((await exec('d1', ['cat', '/etc/machine-id'])).out);
      expect((await nb(['server', 'delete', '--wait', 'd4'])).exitCode).toBe(0);
      expect((await nb(['image', 'delete', 'd1-snap'])).exitCode).toBe(0);
    },
    120_000 * SLOW,
  );

  it(
    'delete leaves nothing behind',
    async () => {
      const made = (await nb(['server', 'list', '-f', 'value', '-c', 'Name'])).stdout.split('\n').filter(Boolean);
      expect(made).toEqual(expect.arrayContaining(IN_GUEST ? ['d1'] : ['d1', 'd2']));
      for (const s of made) {
        const r = await nb(['server', 'delete', '--wait', s]);
        expect(r.exitCode, r.stderr).toBe(0);
      }
      expect(census(root)).toEqual(before);
    },
    60_000 * SLOW,
  );
});

describe('an image without an init (root)', () => {
  skipEachIf(isRoot ? undefined : 'needs root');
  it(
    'is refused for a system container in one sentence, and nothing is made',
    async () => {
      const { root, remove } = tempRoot('nbx-noinit-');
      const dir = mkdtempSync(join(root, 'rootfs-'));
      try {
        mkdirSync(join(dir, 'bin'));
        copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
        symlinkSync('busybox', join(dir, 'bin/sh'));
        const img = await runCli(['image', 'create', '--file', dir, 'noinit'], { root });
        expect(img.exitCode, img.stderr).toBe(0);
        const before = census(root);
        for (const args of [
          ['--init', 'systemd'],
          ['--property', 'x=y', '--init', 'systemd'],
        ]) {
          const r = await runCli(
            ['server', 'create', '--image', 'noinit', '--flavor', 'm1.tiny', '--network', 'none', ...args, '--wait', 'x'],
            { root },
          );
          expect(r.exitCode).toBe(2);
          expect(r.stderr.trim().split('\n')).toEqual([
            'novabox: image "noinit" has no init to boot: /sbin/init is not in it (a system container runs the image\'s own systemd; --init novabox runs novabox\'s)',
          ]);
        }
        expect((await runCli(['server', 'list', '-f', 'value'], { root })).stdout).toBe('');
        expect(census(root)).toEqual(before);
      } finally {
        remove();
      }
    },
    60_000 * SLOW,
  );
});
