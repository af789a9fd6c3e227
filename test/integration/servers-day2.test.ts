/**
 * Day-two tools on real servers, through bin/novabox: following the console log across
 * its rotation, copying files in and out, usage figures, the event stream, an image's
 * configuration from the command line. Each test leaves the census as it found it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { BIN, IN_GUEST, cliEnv, runCli, tempRoot } from '../helpers/run-cli.js';
import { HOST_ONLY, skipEachIf } from '../helpers/skip.js';

const isRoot = process.getuid?.() === 0;

/** A CLI left running (a follower): its output so far, and its end. */
function startCli(args: string[], root: string) {
  const child: ChildProcess = spawn(process.execPath, [BIN, ...args], { env: cliEnv(root), stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (d) => (out.stdout += d));
  child.stderr?.on('data', (d) => (out.stderr += d));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => r({ code, signal })),
  );
  const until = async (test: () => boolean, withinMs = IN_GUEST ? 60_000 : 10_000) => {
    const end = Date.now() + withinMs;
    while (!test()) {
      if (Date.now() > end) throw new Error(`timed out; stdout so far: ${out.stdout.slice(-500)} stderr: ${out.stderr}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  return { child, out, ended, until };
}

describe.skipIf(!isRoot)('novabox server day-two tools (root, real servers)', () => {
  let root: string;
  let removeRoot: () => void;
  let before: Census;
  const nb = (args: string[], opts: { input?: string; timeoutMs?: number } = {}) => runCli(args, { root, ...opts });
  const show = async (name: string) => {
    const r = await nb(['server', 'show', name, '-f', 'json']);
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };
  const create = async (name: string, extra: string[] = []) => {
    const r = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', ...extra, name]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  };

  beforeAll(async () => {
    ({ root, remove: removeRoot } = tempRoot('nbx-day2-'));
    const r = await runCli(['run', '--rm', 'busybox', 'true'], { root }); // builds the image once
    expect(r.exitCode).toBe(0);
  });
  afterAll(() => removeRoot?.());
  beforeEach(() => {
    before = census(root);
  });
  afterEach(async () => {
    const list = await nb(['server', 'list', '-f', 'json']);
    for (const s of JSON.parse(list.stdout || '[]') as { ID: string }[]) await nb(['server', 'delete', '--force', s.ID]);
    const after = census(root);
    const notServers = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')) });
    expect(notServers(after)).toEqual(notServers(before));
    expect(existsSync(`${root}/servers`) ? readdirSync(`${root}/servers`) : []).toEqual([]);
  }, 120_000);

  describe('logs --follow', () => {
    skipEachIf(IN_GUEST ? HOST_ONLY : undefined);
    it('shows each line as written, across the log rotation, in order and once, and ends when the server stops', async () => {
      await create('f1');
      const id = (await show('f1')).id as string;
      const f = startCli(['server', 'logs', '-f', 'f1'], root);
      await f.until(() => f.out.stdout.includes('server started'));

      // a line of novabox's own (as logLine writes it) shows at once: the 50 ms is
      // bench/day2.sh's figure (median 0.5 ms); here a bound a loaded CI host keeps (a run at
      // load 11 took 53 ms once), still far below a polling follower's 1 s
      const logPath = join(root, 'servers', id, 'console.log');
      const t0 = performance.now();
      appendFileSync(logPath, 'marker-1\n');
      await f.until(() => f.out.stdout.includes('marker-1\n'));
      const latencyMs = performance.now() - t0;
      expect(latencyMs).toBeLessThan(IN_GUEST ? 1000 : 250);

      // 1.29 MB through the server's console: the monitor rotates console.log at 1 MiB
      const w = await nb(['server', 'exec', 'f1', '--', 'sh', '-c', 'seq 1 200000 > /proc/1/fd/1']);
      expect(w.exitCode).toBe(0);
      await f.until(() => f.out.stdout.includes('\n200000\n'));
      expect(existsSync(`${logPath}.1`)).toBe(true);
      const nums = f.out.stdout
        .split('\n')
        .filter((l) => /^\d+$/.test(l))
        .map(Number);
      expect(nums.length).toBe(200000);
      expect(nums.every((n, i) => n === i + 1)).toBe(true);

      expect((await nb(['server', 'stop', 'f1'])).exitCode).toBe(0);
      const end = await Promise.race([f.ended, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
      expect(end).toEqual({ code: 0, signal: null });
      expect(f.out.stdout.trimEnd().split('\n').at(-1)).toMatch(/server stopped \(stop signal/);
      expect(f.out.stderr).toBe('');

      // a stopped server: the log (its last lines), then the end at once
      const s = await nb(['server', 'logs', '--follow', '--lines', '1', 'f1'], { timeoutMs: 5000 });
      expect(s.exitCode).toBe(0);
      expect(s.stdout).toMatch(/^\[novabox [^\]]+\] server stopped \(stop signal[^\n]*\n$/);
    });

    it('ends on SIGTERM and on Ctrl-C (SIGINT) with status 0, leaving the server running', async () => {
      await create('f2');
      for (const sig of ['SIGTERM', 'SIGINT'] as const) {
        const f = startCli(['console', 'log', 'show', '--follow', 'f2'], root);
        await f.until(() => f.out.stdout.includes('server started'));
        f.child.kill(sig);
        const end = await Promise.race([f.ended, new Promise((r) => setTimeout(() => r('still running'), 3000))]);
        expect(end).toEqual({ code: 0, signal: null });
      }
      expect((await show('f2')).status).toBe('ACTIVE');
    });

    it('bad input: one line, a distinct exit status', async () => {
      const cases: [string[], number, RegExp][] = [
        [['server', 'logs', '-f', 'ghost'], 3, /server "ghost" not found/],
        [['console', 'log', 'show', '--follow', 'ghost'], 3, /server "ghost" not found/],
        [['server', 'logs', '--lines', '-3', 'ghost'], 2, /--lines/],
      ];
      for (const [args, code, msg] of cases) {
        const r = await nb(args, { timeoutMs: 5000 });
        expect(r.exitCode, args.join(' ')).toBe(code);
        expect(r.stderr).toMatch(msg);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }
    });
  });

  describe('cp', () => {
    skipEachIf(IN_GUEST ? HOST_ONLY : undefined);
    let work: string;
    beforeEach(() => {
      work = mkdtempSync(join(tmpdir(), 'nbx-cp-'));
    });
    afterEach(() => rmSync(work, { recursive: true, force: true }));

    /** owner, mode and type of paths inside the server, as its processes see them */
    const statInside = async (name: string, ...paths: string[]) => {
      const r = await nb(['server', 'exec', name, '--', 'stat', '-c', '%n %u:%g %a %F', ...paths]);
      expect(r.stderr).toBe('');
      return r.stdout.trim().split('\n');
    };
    const baseOf = async (name: string) => {
      const m = /^uid 0 (\d+) 65536, gid 0 (\d+) 65536$/.exec((await show(name)).idmap as string);
      expect(m).not.toBeNull();
      return { uid: Number(m![1]), gid: Number(m![2]) };
    };
    /** a host tree: d/sub/y (1000:1001 0640), d/run.sh (setuid, 1234:5678 04750), d/link -> /etc/passwd */
    const hostTree = () => {
      const d = join(work, 'd');
      mkdirSync(join(d, 'sub'), { recursive: true });
      writeFileSync(join(d, 'sub', 'y'), 'why\n');
      chownSync(join(d, 'sub', 'y'), 1000, 1001);
      chmodSync(join(d, 'sub', 'y'), 0o640);
      writeFileSync(join(d, 'run.sh'), '#!/bin/sh\n');
      chownSync(join(d, 'run.sh'), 1234, 5678);
      chmodSync(join(d, 'run.sh'), 0o4750);
      symlinkSync('/etc/passwd', join(d, 'link'));
      chmodSync(d, 0o750);
      return d;
    };

    it('copies a tree into a running server and back out, keeping modes, owners (shifted in the writable layer) and symlinks', async () => {
      await create('c1');
      const base = await baseOf('c1');
      const id = (await show('c1')).id as string;
      hostTree();
      const r = await nb(['server', 'cp', join(work, 'd'), 'c1:/root/']);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(await statInside('c1', '/root/d', '/root/d/sub/y', '/root/d/run.sh', '/root/d/link')).toEqual([
        '/root/d 0:0 750 directory',
        '/root/d/sub/y 1000:1001 640 regular file',
        '/root/d/run.sh 1234:5678 4750 regular file',
        '/root/d/link 0:0 777 symbolic link',
      ]);
      expect((await nb(['server', 'exec', 'c1', '--', 'readlink', '/root/d/link'])).stdout).toBe('/etc/passwd\n');
      // the writable layer holds host ids: base + the server's id
      const upper = lstatSync(join(root, 'servers', id, 'upper', 'root', 'd', 'sub', 'y'));
      expect([upper.uid, upper.gid]).toEqual([base.uid + 1000, base.gid + 1001]);

      // out again: the server's ids, a file of the image (ids 0 through the idmapped layer), a file onto a path
      const out = join(work, 'out');
      expect((await nb(['server', 'cp', 'c1:/root/d', out])).exitCode).toBe(0);
      const y = lstatSync(join(out, 'sub', 'y'));
      expect([y.uid, y.gid, y.mode & 0o7777]).toEqual([1000, 1001, 0o640]);
      const sh = lstatSync(join(out, 'run.sh'));
      expect([sh.uid, sh.gid, sh.mode & 0o7777]).toEqual([1234, 5678, 0o4750]);
      expect(readlinkSync(join(out, 'link'))).toBe('/etc/passwd');
      expect((await nb(['server', 'cp', 'c1:/etc/passwd', join(work, 'passwd')])).exitCode).toBe(0);
      expect(readFileSync(join(work, 'passwd'), 'utf8')).toBe((await nb(['server', 'exec', 'c1', '--', 'cat', '/etc/passwd'])).stdout);
      expect(lstatSync(join(work, 'passwd')).uid).toBe(0);
      // "SRC/." copies the contents; an existing directory receives the file under its name
      expect((await nb(['server', 'cp', 'c1:/root/d/.', join(work, 'contents')])).exitCode).toBe(0);
      expect(readdirSync(join(work, 'contents')).sort()).toEqual(['link', 'run.sh', 'sub']);
      expect((await nb(['server', 'cp', 'c1:/etc/passwd', `${work}/`])).exitCode).toBe(0);
    });

    it('a stopped server: reads its layers merged (whiteouts respected), writes into its writable layer only, seen after start', async () => {
      await create('c2');
      const id = (await show('c2')).id as string;
      const base = await baseOf('c2');
      // a whiteout (/etc/group), an opaque directory (/sbin made anew), a directory whited out (/usr)
      const changes = 'rm /etc/group; mkdir /root/kept; echo k > /root/kept/k; rm -rf /sbin /usr; mkdir /sbin; echo o > /sbin/only';
      expect((await nb(['server', 'exec', 'c2', '--', '/bin/sh', '-c', changes])).exitCode).toBe(0);
      expect((await nb(['server', 'stop', 'c2'])).exitCode).toBe(0);
      const layersBefore = readdirSync(join(root, 'layers', 'sha256')).map((l) => [
        l,
        readdirSync(join(root, 'layers', 'sha256', l)).length,
      ]);

      // out: a file of the writable layer (container ids), one of the image, a whited-out one is gone
      expect((await nb(['server', 'cp', 'c2:/root/kept/k', join(work, 'k')])).exitCode).toBe(0);
      expect(readFileSync(join(work, 'k'), 'utf8')).toBe('k\n');
      expect(lstatSync(join(work, 'k')).uid).toBe(0);
      expect((await nb(['server', 'cp', 'c2:/etc/passwd', join(work, 'passwd')])).exitCode).toBe(0);
      expect(readFileSync(join(work, 'passwd'), 'utf8')).toMatch(/^root:/);
      const gone = await nb(['server', 'cp', 'c2:/etc/group', join(work, 'group')]);
      expect(gone.exitCode).toBe(3);
      expect(gone.stderr).toMatch(/no such file or directory/);
      expect(existsSync(join(work, 'group'))).toBe(false);

      // the opaque /sbin shows only what was made in it, none of the image's applets
      expect((await nb(['server', 'cp', 'c2:/sbin/.', join(work, 'sbin')])).exitCode).toBe(0);
      expect(readdirSync(join(work, 'sbin'))).toEqual(['only']);
      expect((await nb(['server', 'cp', 'c2:/usr', join(work, 'usr')])).exitCode).toBe(3);

      // in: a tree under /var (a directory of the image: copied up), a file over the whiteout,
      // a directory where /usr was whited out (opaque: the image's /usr stays hidden)
      hostTree();
      expect((await nb(['server', 'cp', join(work, 'd'), 'c2:/var/d'])).exitCode).toBe(0);
      writeFileSync(join(work, 'group'), 'root:x:0:\n');
      expect((await nb(['server', 'cp', join(work, 'group'), 'c2:/etc/group'])).exitCode).toBe(0);
      expect((await nb(['server', 'cp', join(work, 'd'), 'c2:/usr'])).exitCode).toBe(0);
      const y = lstatSync(join(root, 'servers', id, 'upper', 'var', 'd', 'sub', 'y'));
      expect([y.uid, y.gid]).toEqual([base.uid + 1000, base.gid + 1001]);
      const v = lstatSync(join(root, 'servers', id, 'upper', 'var'));
      expect([v.uid, v.gid]).toEqual([base.uid, base.gid]); // copied up as the image has it: root's
      // the image's layers are untouched
      expect(readdirSync(join(root, 'layers', 'sha256')).map((l) => [l, readdirSync(join(root, 'layers', 'sha256', l)).length])).toEqual(
        layersBefore,
      );

      expect((await nb(['server', 'start', 'c2'])).exitCode).toBe(0);
      expect(await statInside('c2', '/var', '/var/d/sub/y', '/var/d/run.sh', '/etc/group')).toEqual([
        '/var 0:0 755 directory',
        '/var/d/sub/y 1000:1001 640 regular file',
        '/var/d/run.sh 1234:5678 4750 regular file',
        '/etc/group 0:0 644 regular file',
      ]);
      expect((await nb(['server', 'exec', 'c2', '--', 'cat', '/etc/group'])).stdout).toBe('root:x:0:\n');
      expect((await nb(['server', 'exec', 'c2', '--', 'ls', '/usr', '/sbin'])).stdout).toBe('/sbin:\nonly\n\n/usr:\nlink\nrun.sh\nsub\n');
    });

    it('never leaves the root: symlinks out of it resolve inside, running or stopped; a symlink in the way of a write is refused', async () => {
      await create('c3');
      const hostDir = join(work, 'host-side');
      mkdirSync(hostDir);
      writeFileSync(join(work, 'f'), 'payload\n');
      const links = `ln -s /../../../../etc /root/up; ln -s ${hostDir} /root/hostdir; ln -s ${hostDir}/x /root/hostfile; ln -s / /root/slash`;
      expect((await nb(['server', 'exec', 'c3', '--', 'sh', '-c', links])).exitCode).toBe(0);
      const inside = (await nb(['server', 'exec', 'c3', '--', 'cat', '/etc/passwd'])).stdout;
      for (const state of ['running', 'stopped']) {
        if (state === 'stopped') expect((await nb(['server', 'stop', 'c3'])).exitCode).toBe(0);
        for (const via of ['/root/up/passwd', '/root/slash/etc/passwd', '/root/slash/../../etc/passwd']) {
          const out = join(work, `p-${state}`);
          const r = await nb(['server', 'cp', `c3:${via}`, out]);
          expect(r.exitCode, `${state} ${via}: ${r.stderr}`).toBe(0);
          expect(readFileSync(out, 'utf8')).toBe(inside); // the server's passwd, never the host's
          rmSync(out);
        }
        // writes through a symlink naming a host directory: inside the root it does not exist
        const into = await nb(['server', 'cp', join(work, 'f'), 'c3:/root/hostdir/']);
        expect(into.exitCode).toBe(3);
        const onto = await nb(['server', 'cp', join(work, 'f'), 'c3:/root/hostfile']);
        expect(onto.exitCode).toBe(4);
        expect(onto.stderr).toMatch(/symbolic link/);
        expect(readdirSync(hostDir)).toEqual([]);
      }
    });

    it('bad input: one line, a distinct exit status, nothing made on either side', async () => {
      await create('c4');
      const cases: [string[], number, RegExp][] = [
        [['server', 'cp', 'c4:/../etc/passwd', join(work, 'x')], 2, /escapes the server's root/],
        [['server', 'cp', 'c4:/etc/passwd', 'c4:/root/x'], 2, /one of them must be a host path/],
        [['server', 'cp', join(work, 'a'), join(work, 'x')], 2, /neither SRC nor DST names a server/],
        [['server', 'cp', 'ghost:/etc/passwd', join(work, 'x')], 3, /server "ghost" not found/],
        [['server', 'cp', 'c4:/nope', join(work, 'x')], 3, /no such file or directory/],
        [['server', 'cp', join(work, 'nope'), 'c4:/root/x'], 3, /no such file or directory/],
        [['server', 'cp', 'c4:/etc/passwd', join(work, 'no', 'such', 'dir')], 3, /no such file or directory/],
        [['server', 'cp', 'c4:/etc', join(work, 'file')], 4, /cannot copy a directory onto the file/],
      ];
      writeFileSync(join(work, 'file'), 'keep');
      for (const [args, code, msg] of cases) {
        const r = await nb(args);
        expect(r.exitCode, args.join(' ')).toBe(code);
        expect(r.stderr).toMatch(msg);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }
      expect(readdirSync(work)).toEqual(['file']);
      expect(readFileSync(join(work, 'file'), 'utf8')).toBe('keep');
      expect((await nb(['server', 'exec', 'c4', '--', 'ls', '/root'])).stdout).toBe('');
    });
  });

  describe('stats', () => {
    it('CPU, memory against the flavor, pids and veth traffic of running servers; raw numbers in JSON', async () => {
      const c = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', 'busy']);
      expect(c.exitCode).toBe(0);
      await create('idle');
      // a busy loop in the background, and traffic through the veth (a ping of the gateway)
      const gw = (await nb(['server', 'exec', 'busy', '--', 'sh', '-c', "ip route | awk '/default/ {print $3}'"])).stdout.trim();
      expect((await nb(['server', 'exec', 'busy', '--', 'ping', '-c', '2', '-i', '0.2', gw])).exitCode).toBe(0);
      expect(
        (await nb(['server', 'exec', 'busy', '--', 'sh', '-c', '(while :; do :; done) >/dev/null 2>&1 & echo started'])).exitCode,
      ).toBe(0);
      const r = await nb(['server', 'stats', '--no-stream', '-f', 'json']);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      const rows = JSON.parse(r.stdout) as Record<string, number | string | null>[];
      expect(rows.map((x) => x.Name).sort()).toEqual(['busy', 'idle']);
      const busy = rows.find((x) => x.Name === 'busy')!;
      const idle = rows.find((x) => x.Name === 'idle')!;
      expect(busy['CPU %']).toBeGreaterThan(IN_GUEST ? 5 : 30);
      expect(idle['CPU %']).toBeLessThan(10);
      expect(busy['Mem Limit']).toBe(512 * 1024 * 1024); // m1.tiny
      expect(idle['Mem Limit']).toBe(64 * 1024 * 1024); // c1.nano
      expect(busy['Mem Usage']).toBeGreaterThan(0);
      expect(busy['Mem %']).toBeCloseTo(((busy['Mem Usage'] as number) / (busy['Mem Limit'] as number)) * 100, 1);
      expect(busy.PIDs).toBeGreaterThanOrEqual(2);
      expect(busy['Net RX']).toBeGreaterThan(100); // the ping replies
      expect(busy['Net TX']).toBeGreaterThan(100);
      expect(idle['Net RX']).toBeNull(); // --network none: no veth
      expect(busy['Block Read'] === null || typeof busy['Block Read'] === 'number').toBe(true); // null where io is not delegated

      // server show: the same figures from one read (no CPU %)
      expect((await show('busy')).usage).toMatchObject({
        memory_limit_bytes: 512 * 1024 * 1024,
        pids: expect.any(Number),
        net_rx_bytes: expect.any(Number),
        cpu_seconds: expect.any(Number),
      });
      expect(((await show('busy')).usage as { cpu_seconds: number }).cpu_seconds).toBeGreaterThan(0.05);

      // Nova's os-server-diagnostics through `novabox serve`, from the same figures
      const srv = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--no-access-log'], {
        env: cliEnv(root, { NOVABOX_ADMIN_PASSWORD: 'pw-diag' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        let said = '';
        srv.stdout?.on('data', (d) => (said += d));
        for (let i = 0; i < 400 && !/listening on http:\/\/[\d.:]+/.test(said); i++) await new Promise((r) => setTimeout(r, 25));
        const base = /listening on (http:\/\/[\d.:]+)/.exec(said)![1];
        const auth = await fetch(`${base}/identity/v3/auth/tokens`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            auth: {
              identity: { methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password: 'pw-diag' } } },
              scope: { project: { name: 'admin', domain: { id: 'default' } } },
            },
          }),
        });
        const token = auth.headers.get('x-subject-token')!;
        const d = await fetch(`${base}/compute/v2.1/servers/${(await show('busy')).id}/diagnostics`, {
          headers: { 'x-auth-token': token },
        });
        expect(d.status).toBe(200);
        const diag = (await d.json()) as Record<string, unknown> & {
          cpu_details: { time: number }[];
          nic_details: Record<string, unknown>[];
        };
        expect(diag).toMatchObject({ state: 'running', num_cpus: 1, num_nics: 1, memory_details: { maximum: 512 } });
        expect(diag.cpu_details[0].time).toBeGreaterThan(5e7);
        expect(diag.nic_details[0]).toMatchObject({ mac_address: expect.stringMatching(/^[0-9a-f:]{17}$/), rx_octets: expect.any(Number) });
        const off = await fetch(`${base}/compute/v2.1/servers/${(await show('idle')).id}/diagnostics`, {
          headers: { 'x-auth-token': token },
        });
        expect(off.status).toBe(200);
        expect(((await off.json()) as { num_nics: number }).num_nics).toBe(0);
      } finally {
        srv.kill('SIGTERM');
        await new Promise((r) => srv.on('close', r));
        rmSync(join(root, 'clouds.yaml'), { force: true });
      }

      // one server by name, as a table; a stream ends on SIGTERM with status 0
      const t = await nb(['server', 'stats', '--no-stream', 'idle']);
      expect(t.stdout).toMatch(/\| ID +\| Name +\| CPU % +\| Mem Usage/);
      expect(t.stdout).toMatch(/\| idle +\| [\d.]+% +\| [\d.]+[KM]iB +\| 64\.0MiB/);
      const s = startCli(['server', 'stats', '--interval', '0.2', '-f', 'json', 'idle'], root);
      await s.until(() => (s.out.stdout.match(/"Name": "idle"/g) ?? []).length >= 2);
      s.child.kill('SIGTERM');
      expect(await s.ended).toEqual({ code: 0, signal: null });
    });

    it('bad input: one line, a distinct exit status', async () => {
      await create('st1');
      expect((await nb(['server', 'stop', 'st1'])).exitCode).toBe(0);
      const cases: [string[], number, RegExp][] = [
        [['server', 'stats', '--no-stream', 'ghost'], 3, /server "ghost" not found/],
        [['server', 'stats', '--no-stream', 'st1'], 4, /server "st1" is not running: it is SHUTOFF/],
        [['server', 'stats', '--interval', 'x'], 2, /--interval/],
      ];
      for (const [args, code, msg] of cases) {
        const r = await nb(args);
        expect(r.exitCode, args.join(' ')).toBe(code);
        expect(r.stderr).toMatch(msg);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }
      expect((await show('st1')).usage).toBeNull();
      // no running server: an empty list
      expect(JSON.parse((await nb(['server', 'stats', '--no-stream', '-f', 'json'])).stdout)).toEqual([]);
    });
  });

  describe('event list', () => {
    /** a follower is ready once it watches the database (its inotify fd is made after its cursor) */
    const watching = (pid: number) => {
      try {
        return readdirSync(`/proc/${pid}/fd`).some((fd) => {
          try {
            return readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify';
          } catch {
            return false;
          }
        });
      } catch {
        return false;
      }
    };

    it('--follow -f json streams the actions of every server as JSON lines as they happen, with results; SIGTERM ends it', async () => {
      await create('ev0'); // before the follower: not in its stream
      const f = startCli(['event', 'list', '--follow', '-f', 'json'], root);
      await f.until(() => watching(f.child.pid!));
      await create('ev1');
      await create('ev2');
      expect((await nb(['server', 'stop', 'ev1'])).exitCode).toBe(0);
      process.kill((await show('ev2')).pid as number, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      expect((await show('ev2')).status).toBe('SHUTOFF'); // reconciled: a stop action with an Error event
      const records = () =>
        f.out.stdout
          .split('\n')
          .filter((l) => l)
          .map((l) => JSON.parse(l) as Record<string, string | null>);
      await f.until(() => records().filter((r) => r.server_name === 'ev2' && r.action === 'stop' && r.status === 'Error').length === 1);
      const seen = records().map((r) => `${r.server_name} ${r.action} ${r.status}`);
      expect(seen).toEqual([
        'ev1 create started',
        'ev1 create Success',
        'ev2 create started',
        'ev2 create Success',
        'ev1 stop started',
        'ev1 stop Success',
        'ev2 stop started',
        'ev2 stop Error',
      ]);
      expect(records()[5]).toMatchObject({ event: 'compute_stop_instance', request_id: expect.stringMatching(/^req-/) });
      f.child.kill('SIGTERM');
      expect(await f.ended).toEqual({ code: 0, signal: null });
      expect(f.out.stderr).toBe('');

      // without --follow: the whole history, ev0 included
      const all = JSON.parse((await nb(['event', 'list', '-f', 'json'])).stdout) as { Server: string; Action: string; Status: string }[];
      expect(all.filter((r) => r.Server === 'ev0').map((r) => `${r.Action} ${r.Status}`)).toEqual(['create started', 'create Success']);
    });

    it('bad input: one line, exit 2', async () => {
      const r = await nb(['event', 'list', '--follow', '-f', 'csv']);
      expect(r.exitCode).toBe(2);
      expect(r.stderr.trim().split('\n')).toEqual(['novabox: --follow prints json, table or value, not csv']);
    });
  });

  describe('image configuration from the CLI', () => {
    skipEachIf(IN_GUEST ? HOST_ONLY : undefined);
    it('image create/set --command --env --workdir --user --stop-signal --entrypoint: servers and run use them', async () => {
      const work = mkdtempSync(join(tmpdir(), 'nbx-imgcfg-'));
      try {
        expect((await nb(['image', 'save', '--file', join(work, 'bb.tar'), 'busybox'])).exitCode).toBe(0);
        const script = 'trap "echo got INT; exit 0" INT; echo "served by $GREETING from $(pwd) as $(id -u)"; while :; do sleep 0.1; done';
        const c = await nb([
          'image',
          'create',
          '--file',
          join(work, 'bb.tar'),
          '--format',
          'oci',
          '--command',
          JSON.stringify(['sh', '-c', script]),
          '--env',
          'GREETING=hello',
          '--workdir',
          '/tmp',
          '--stop-signal',
          'INT',
          'appimg',
          '-f',
          'json',
        ]);
        expect(c.stderr).toBe('');
        expect(c.exitCode).toBe(0);
        expect(JSON.parse(c.stdout).config).toMatchObject({
          command: ['sh', '-c', script],
          env: expect.arrayContaining(['GREETING=hello']),
          workdir: '/tmp',
          stop_signal: 'SIGINT',
        });

        const r = await nb(['server', 'create', '--image', 'appimg', '--flavor', 'c1.nano', '--network', 'none', 'app1']);
        expect(r.exitCode).toBe(0);
        const log = async () => (await nb(['console', 'log', 'show', 'app1'])).stdout;
        const until = async (re: RegExp) => {
          for (let i = 0; i < 200 && !re.test(await log()); i++) await new Promise((res) => setTimeout(res, 25));
          expect(await log()).toMatch(re);
        };
        await until(/served by hello from \/tmp as 0/);
        expect((await nb(['server', 'stop', 'app1'])).exitCode).toBe(0);
        expect(await log()).toMatch(/got INT/); // the image's stop signal, not SIGTERM

        // set: a server picks the change up at its next start; the OCI label round-trips through save
        const set = await nb(['image', 'set', '--env', 'GREETING=bye', '--user', '1000:1000', 'appimg']);
        expect(set.stderr).toBe('');
        expect(set.exitCode).toBe(0);
        expect((await nb(['server', 'start', 'app1'])).exitCode).toBe(0);
        await until(/served by bye from \/tmp as 1000/);
        expect((await nb(['image', 'save', '--file', join(work, 'app.tar'), 'appimg'])).exitCode).toBe(0);
        const back = await nb(['image', 'create', '--file', join(work, 'app.tar'), '--format', 'oci', 'appimg2', '-f', 'json']);
        expect(JSON.parse(back.stdout).config).toMatchObject({ command: ['sh', '-c', script], user: '1000:1000', stop_signal: 'SIGINT' });

        // --entrypoint: `run IMAGE ARGS` runs it with ARGS; with no ARGS, its default (cleared by the new entrypoint)
        expect((await nb(['image', 'set', '--entrypoint', '["echo", "E"]', '--user', '0', 'appimg2'])).exitCode).toBe(0);
        expect((await nb(['run', '--rm', '--network', 'none', 'appimg2', 'x', 'y'])).stdout).toBe('E x y\n');
        expect((await nb(['run', '--rm', '--network', 'none', 'appimg2'])).stdout).toBe('E\n');
        expect((await nb(['image', 'set', '--cmd', '["dflt"]', 'appimg2'])).exitCode).toBe(0);
        expect((await nb(['run', '--rm', '--network', 'none', 'appimg2'])).stdout).toBe('E dflt\n');

        // bad input: one sentence, exit 2, the configuration and the image list unchanged
        const before = (await nb(['image', 'show', 'appimg', '-f', 'json', '-c', 'config'])).stdout;
        const images = (await nb(['image', 'list', '-f', 'value', '-c', 'Name'])).stdout;
        const cases: [string[], RegExp][] = [
          [['image', 'set', '--workdir', 'srv', 'appimg'], /--workdir/],
          [['image', 'set', '--stop-signal', 'NOPE', 'appimg'], /--stop-signal/],
          [['image', 'set', '--command', '[1, 2]', 'appimg'], /--command/],
          [['image', 'set', '--env', '=x', 'appimg'], /--env/],
          [['image', 'set', '--user', 'a b', '--env', 'OK=1', 'appimg'], /--user/],
          [['image', 'create', '--file', join(work, 'bb.tar'), '--format', 'oci', '--workdir', 'rel', 'appimg3'], /--workdir/],
        ];
        for (const [args, msg] of cases) {
          const b = await nb(args);
          expect(b.exitCode, args.join(' ')).toBe(2);
          expect(b.stderr).toMatch(msg);
          expect(b.stderr.trim().split('\n')).toHaveLength(1);
        }
        expect((await nb(['image', 'show', 'appimg', '-f', 'json', '-c', 'config'])).stdout).toBe(before);
        expect((await nb(['image', 'list', '-f', 'value', '-c', 'Name'])).stdout).toBe(images);
      } finally {
        await nb(['server', 'delete', '--force', 'app1']);
        for (const i of ['appimg', 'appimg2']) await nb(['image', 'delete', i]);
        rmSync(work, { recursive: true, force: true });
      }
    });
  });
});
