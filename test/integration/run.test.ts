/**
 * `novabox run` for real: namespaces, cgroups, overlay, devices, capabilities, exit
 * codes and signals, as root on this machine. After every test the leak census must
 * match the one taken before it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostname as hostHostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { BIN, cliEnv, runCli } from '../helpers/run-cli.js';
import { useRunRoot } from '../helpers/run-root.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('novabox run (root, real containers)', () => {
  let root: string;
  useRunRoot((r) => (root = r));
  /** A copy of the busybox image's layer (the root's only one) in `dir`, to alter. */
  const copyBusybox = (dir: string) => {
    const layer = readdirSync(`${root}/layers/sha256`)[0];
    execFileSync('cp', ['-a', `${root}/layers/sha256/${layer}/.`, dir]);
  };
  const run = (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) => runCli(['run', ...args], { root, ...opts });

  it('runs the command as pid 1 with its own hostname', async () => {
    const r = await run(['--rm', 'busybox', 'sh', '-c', 'echo $$; hostname']);
    expect(r.exitCode).toBe(0);
    const [pid, name] = r.stdout.trim().split('\n');
    expect(pid).toBe('1');
    expect(name).toMatch(/^[0-9a-f]{12}$/);
    expect(name).not.toBe(hostHostname());
  });

  it('hides host processes and the host mount table', async () => {
    const r = await run(['--rm', 'busybox', 'sh', '-c', 'ls /proc | grep -E "^[0-9]+$"; echo ---; cat /proc/self/mountinfo']);
    const [pids, mounts] = r.stdout.split('---\n');
    // only the shell (1) and ls (a child) exist
    expect(pids.trim().split('\n').length).toBeLessThanOrEqual(3);
    expect(pids.trim().split('\n')).toContain('1');
    // No host mount point shows up inside; the container's own are all there is.
    const points = (text: string) =>
      text
        .trim()
        .split('\n')
        .map((l) => l.split(' ')[4]);
    const inside = new Set(points(mounts));
    const hostOnly = points(readFileSync('/proc/self/mountinfo', 'utf8')).filter((p) => !/^\/(proc|sys|dev)(\/|$)/.test(p) && p !== '/');
    expect(hostOnly.length).toBeGreaterThan(0);
    for (const p of hostOnly) expect(inside.has(p)).toBe(false);
    expect(mounts.split('\n')[0]).toMatch(/ \/ \/ rw,.* - overlay overlay /);
  });

  it('applies hostname, env, workdir and limits together', async () => {
    const r = await run([
      '--rm',
      '--hostname',
      'web',
      '--memory',
      '64m',
      '--cpus',
      '0.5',
      '--pids-limit',
      '64',
      '-e',
      'FOO=bar',
      '-w',
      '/tmp',
      'busybox',
      'sh',
      '-c',
      'env; pwd; hostname',
    ]);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toContain('FOO=bar');
    expect(lines).toContain('HOSTNAME=web');
    expect(lines).toContain('HOME=/root');
    expect(lines.at(-2)).toBe('/tmp');
    expect(lines.at(-1)).toBe('web');
  });

  it('masks /proc paths and keeps /sys and /proc/sys read-only', async () => {
    // the masked files this kernel has (/proc/sched_debug went to debugfs in 5.13): each
    // one the host has must be in the container, and read as empty
    const masked = ['/proc/keys', '/proc/timer_list', '/proc/kcore', '/proc/sched_debug'].filter((f) => existsSync(f));
    expect(masked.length).toBeGreaterThan(0);
    const r = await run([
      '--rm',
      'busybox',
      'sh',
      '-c',
      [
        `for f in ${masked.join(' ')}; do echo "$f:$(head -c 64 $f | wc -c)"; done`,
        'echo acpi:$(ls -A /proc/acpi 2>/dev/null | wc -l)',
        'touch /sys/x 2>&1 || true',
        // the shell reports a failed redirection on its own stderr: a subshell's goes to stdout
        '(echo 1 > /proc/sys/kernel/domainname) 2>&1 || true',
        'cat /proc/sys/kernel/domainname',
        'grep " /sys/fs/cgroup" /proc/self/mountinfo | grep -c " ro,"',
      ].join('; '),
    ]);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('/proc/'))).toEqual(masked.map((f) => `${f}:0`)); // masked: reads as empty
    expect(r.stdout).toContain('acpi:0');
    expect(r.stdout).toMatch(/touch: \/sys\/x: Read-only file system/);
    expect(r.stdout).toMatch(/can't create \/proc\/sys\/kernel\/domainname: Read-only file system/);
    expect(lines.at(-2)).not.toBe('1'); // unchanged
    expect(Number(lines.at(-1))).toBeGreaterThan(0);
  });

  it("gets an ipc namespace of its own: another one than the host's and than another container's", async () => {
    const hostIpc = execFileSync('readlink', ['/proc/self/ns/ipc'], { encoding: 'utf8' }).trim();
    // A lives until B has read its own (a freed namespace's number can be reused): it waits
    // for a file the test makes in a bound host directory
    // written from inside, by the container's root: an unprivileged id on the host
    const dir = mkdtempSync(join(tmpdir(), 'nbx-ipc-'));
    chmodSync(dir, 0o777);
    try {
      const pending = run([
        '--rm',
        '--network',
        'none',
        '-v',
        `${dir}:/x`,
        'busybox',
        'sh',
        '-c',
        'readlink /proc/self/ns/ipc > /x/a; while [ ! -e /x/go ]; do sleep 0.05; done; cat /x/a',
      ]);
      for (let i = 0; i < 400 && !existsSync(join(dir, 'a')); i++) await new Promise((r) => setTimeout(r, 25));
      const b = await run(['--rm', '--network', 'none', 'busybox', 'readlink', '/proc/self/ns/ipc']);
      writeFileSync(join(dir, 'go'), '');
      const a = await pending;
      expect(a.exitCode, a.stderr).toBe(0);
      const [ipcA, ipcB] = [a.stdout.trim(), b.stdout.trim()];
      expect(ipcA).toMatch(/^ipc:\[\d+\]$/);
      expect(ipcB).toMatch(/^ipc:\[\d+\]$/);
      expect(ipcA).not.toBe(hostIpc);
      expect(ipcB).not.toBe(ipcA); // both alive at once: two namespaces
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('makes /dev with exactly its own nodes and links', async () => {
    const r = await run([
      '--rm',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      'cd /dev; for f in $(ls -A); do if [ -L $f ]; then echo "$f -> $(readlink $f)"; elif [ -c $f ]; then echo "$f c $(stat -c "%t:%T %a" $f)"; elif [ -d $f ]; then echo "$f/ $(stat -c %a $f)"; else echo "$f ?"; fi; done; ls -A /dev/pts; ls -A /dev/shm; ls -A /dev/mqueue',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      'core -> /proc/kcore',
      'fd -> /proc/self/fd',
      'full c 1:7 666',
      'mqueue/ 1777',
      'null c 1:3 666',
      'ptmx -> pts/ptmx',
      'pts/ 755',
      'random c 1:8 666',
      'shm/ 1777',
      'stderr -> /proc/self/fd/2',
      'stdin -> /proc/self/fd/0',
      'stdout -> /proc/self/fd/1',
      'tty c 5:0 666',
      'urandom c 1:9 666',
      'zero c 1:5 666',
      'ptmx', // /dev/pts: its own devpts (no pty open), /dev/shm and /dev/mqueue empty
    ]);
  });

  it('drops capabilities to the allow-list; sets no_new_privs only when root inside is host root (--userns host)', async () => {
    for (const [userns, nnp] of [
      ['auto', '0'],
      ['host', '1'],
    ]) {
      const s = await run(['--rm', '--userns', userns, 'busybox', 'cat', '/proc/self/status']);
      const field = (n: string) => new RegExp(`^${n}:\\s+(\\S+)`, 'm').exec(s.stdout)?.[1];
      // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT SETFCAP
      expect(field('CapEff')).toBe('00000000800405fb');
      expect(field('CapPrm')).toBe('00000000800405fb');
      expect(field('CapBnd')).toBe('00000000800405fb');
      expect(field('CapInh')).toBe('0000000000000000');
      expect(field('CapAmb')).toBe('0000000000000000');
      expect(field('NoNewPrivs'), userns).toBe(nnp);
      expect(field('Seccomp'), userns).toBe('2');
    }
  });

  it('loads the default seccomp filter: no user namespaces; ordinary forks still work', async () => {
    const r = await run([
      '--rm',
      'busybox',
      'sh',
      '-c',
      'grep -E "^Seccomp:" /proc/self/status; unshare -U true 2>&1; echo "rc=$?"; (sleep 0.01 & wait) && echo fork-ok',
    ]);
    expect(r.stdout).toMatch(/^Seccomp:\s+2$/m);
    expect(r.stdout).toMatch(/Operation not permitted/);
    expect(r.stdout).toMatch(/^rc=[1-9]/m);
    expect(r.stdout).toContain('fork-ok');
    const off = await run(['--rm', '--security-opt', 'seccomp=unconfined', 'busybox', 'grep', '-E', '^Seccomp:', '/proc/self/status']);
    expect(off.stdout).toMatch(/^Seccomp:\s+0$/m);
    const bad = await run(['--rm', '--security-opt', 'apparmor=x', 'busybox', 'true']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('unsupported --security-opt');
  });

  it('denies device nodes outside the allow-list (v1 devices.allow, v2 eBPF), even when bound in', async () => {
    // A device root opens on the host without any capability, and that is not on the list
    // (loop-control 10:237, else the first VT 4:1); /dev/null is on it.
    const dev = ['/dev/loop-control', '/dev/tty1'].find((d) => existsSync(d))!;
    execFileSync('sh', ['-c', `: < ${dev}`]); // the host can open it
    // --userns host: root inside is host root, so only the device filter stands in the way
    // (in a namespace of its own the node is host root's too: EACCES, checked below)
    const r = await run([
      '--rm',
      '--userns',
      'host',
      '-v',
      `${dev}:/mnt/dev`,
      '-v',
      '/dev/null:/mnt/null',
      'busybox',
      'sh',
      '-c',
      'true < /mnt/dev && echo dev-open || echo dev-denied; echo x > /mnt/null && echo null-ok',
    ]);
    expect(r.stdout).toBe('dev-denied\nnull-ok\n');
    expect(r.stderr).toMatch(/can't open \/mnt\/dev: Operation not permitted/);
    const own = await run(['--rm', '-v', `${dev}:/mnt/dev`, 'busybox', 'sh', '-c', 'true < /mnt/dev && echo dev-open || echo dev-denied']);
    expect(own.stdout).toBe('dev-denied\n');
    expect(own.stderr).toMatch(/can't open \/mnt\/dev: (Permission denied|Operation not permitted)/);
  });

  it('closes every fd beyond stdio before execve', async () => {
    // Give the CLI extra fds (3, 4); the container must not see them.
    const child = spawn(process.execPath, [BIN, 'run', '--rm', 'busybox', 'ls', '-l', '/proc/self/fd'], {
      env: cliEnv(root),
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const code = await new Promise((r) => child.on('close', r));
    expect(code).toBe(0);
    const fds = out
      .split('\n')
      .map((l) => /\s(\d+) -> (.*)$/.exec(l))
      .filter(Boolean) as RegExpExecArray[];
    expect(fds.map((m) => m[1])).toEqual(['0', '1', '2']);
  });

  it('runs a plan with hundreds of mounts under a low fd limit (the executor closes its fds past a bound)', async () => {
    // The executor leaves the fds it is done with to one close_range before execve, but
    // only below fd 256: 300 volumes hold ~1200 fds' worth of ops, the limit here is 400.
    const vol = mkdtempSync(join(tmpdir(), 'nbx-vol-'));
    chmodSync(vol, 0o755); // read inside by the container's root, an unprivileged id here
    try {
      writeFileSync(join(vol, 'marker'), 'vol\n');
      const vs = Array.from({ length: 300 }, (_, i) => `-v ${vol}:/v/d${i}/m:ro`).join(' ');
      const child = spawn(
        'sh',
        [
          '-c',
          `ulimit -n 400 && exec "$0" "$1" run --rm ${vs} busybox sh -c 'cat /v/d0/m/marker /v/d299/m/marker; ls /proc/self/fd'`,
          process.execPath,
          BIN,
        ],
        { env: cliEnv(root), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (err += d));
      const code = await new Promise((r) => child.on('close', r));
      expect(err).toBe('');
      expect(code).toBe(0);
      expect(out).toBe('vol\nvol\n0\n1\n2\n3\n'); // 3: ls's own directory
    } finally {
      rmSync(vol, { recursive: true, force: true });
    }
  });

  it('propagates the exit status', async () => {
    expect((await run(['--rm', 'busybox', 'sh', '-c', 'exit 42'])).exitCode).toBe(42);
    expect((await run(['--rm', 'busybox', 'false'])).exitCode).toBe(1);
  });

  it('starts containers through koffi too (NOVABOX_FFI=koffi: no Node-API module), with the same results', async () => {
    const env = { NOVABOX_FFI: 'koffi' };
    expect((await run(['--rm', 'busybox', 'sh', '-c', 'exit 42'], { env })).exitCode).toBe(42);
    const tty = await run(['--rm', '-t', 'busybox', 'sh', '-c', 'stty size; exit 4'], { env });
    expect(tty.exitCode).toBe(4);
    expect(tty.stdout.trim()).toBe('24 80');
    const missing = await run(['--rm', 'busybox', '/nope'], { env });
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toMatch(/^novabox: exec "\/nope": no such file or directory \(op \d+ of \d+\)\n$/);
  });

  it('removes a container that wrote into its layer entirely: the usual layout in one native job, the rest by the walk', async () => {
    // files, a deep tree, a symlink and a whiteout (an image file deleted) in the upper layer:
    // the native removal stops at the non-empty upper dir and the general walk does the rest
    const script = 'mkdir -p /tmp/a/b/c && echo x > /tmp/a/b/c/f && ln -s /etc/passwd /tmp/a/l && rm /etc/group && echo done';
    for (const env of [{}, { NOVABOX_FFI: 'koffi' }]) {
      const r = await run(['--rm', 'busybox', 'sh', '-c', script], { env });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('done\n');
      expect(readdirSync(join(root, 'containers'))).toEqual([]);
    }
    // the busybox image still has its /etc/group: the whiteout stayed in the removed layer
    expect((await run(['--rm', 'busybox', 'sh', '-c', 'test -f /etc/group && echo kept'])).stdout).toBe('kept\n');
  });

  it('reports 128+signal when the container init is killed from the host', async () => {
    // pid 1 of a pid namespace cannot be killed from inside, so kill it from here.
    const pending = run(['--name', 'victim', '--rm', 'busybox', 'sleep', '30']);
    let initPid: number | undefined;
    for (let i = 0; i < 100 && !initPid; i++) {
      await new Promise((r) => setTimeout(r, 50));
      for (const id of existsSync(`${root}/containers`) ? readdirSync(`${root}/containers`) : []) {
        try {
          initPid = JSON.parse(readFileSync(`${root}/containers/${id}/state.json`, 'utf8')).initPid;
        } catch {
          /* not written yet */
        }
      }
    }
    expect(initPid).toBeGreaterThan(1);
    process.kill(initPid!, 'SIGKILL');
    expect((await pending).exitCode).toBe(137);
  });

  it('is placed in its cgroup2 directory by the monitor when it cannot be cloned into it (no clone3)', async (ctx) => {
    const cg2 = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((l) => / - cgroup2 /.test(l));
    ctx.skip(!cg2, 'no cgroup2 hierarchy mounted (a v1-only host): nothing to be placed in');
    const pending = run(['--name', 'plain', '--rm', 'busybox', 'sleep', '30'], { env: { NOVABOX_TEST_PLAIN_CLONE: '1' } });
    let state: { initPid?: number; cgroupPath?: string } = {};
    for (let i = 0; i < 100 && !state.initPid; i++) {
      await new Promise((r) => setTimeout(r, 50));
      for (const id of existsSync(`${root}/containers`) ? readdirSync(`${root}/containers`) : []) {
        try {
          state = JSON.parse(readFileSync(`${root}/containers/${id}/state.json`, 'utf8'));
        } catch {
          /* not written yet */
        }
      }
    }
    expect(state.initPid).toBeGreaterThan(1);
    const lines = readFileSync(`/proc/${state.initPid}/cgroup`, 'utf8').trim().split('\n');
    process.kill(state.initPid!, 'SIGKILL');
    expect((await pending).exitCode).toBe(137);
    // without clone3 the monitor writes cgroup.procs itself, before the init's first op
    expect(lines.find((l) => l.startsWith('0::'))).toBe(`0::/${state.cgroupPath}`);
  });

  it('says which op failed when the executable is missing, exit 127', async () => {
    const r = await run(['--rm', 'busybox', '/nope']);
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toMatch(/^novabox: exec "\/nope": no such file or directory \(op (\d+) of \1\)\n$/);
    expect(r.stdout).toBe('');
  });

  it('exit 126 when the file is not executable', async () => {
    const r = await run(['--rm', 'busybox', '/etc/passwd']);
    expect(r.exitCode).toBe(126);
    expect(r.stderr).toMatch(/exec "\/etc\/passwd": permission denied/);
  });

  it('finds commands in the container PATH, not the host one', async () => {
    const r = await run(['--rm', '-e', 'PATH=/nowhere', 'busybox', 'ls']);
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toContain('exec "ls": no such file or directory');
  });

  it('reports a failing chdir with its op and errno', async () => {
    const r = await run(['--rm', '-w', '/does/not/exist', 'busybox', 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^novabox: chdir \/does\/not\/exist: no such file or directory \(op \d+ of \d+\)\n$/);
  });

  it('refuses an unknown image with one line and creates nothing', async () => {
    const r = await run(['--rm', 'no-such-image', 'true']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe('novabox: image "no-such-image" not found (the built-in image is "busybox")\n');
    expect(existsSync(`${root}/containers`) ? readdirSync(`${root}/containers`) : []).toEqual([]);
  });

  it.each([
    [['--memory', 'lots'], /invalid memory/i],
    [['--cpus', '0'], /^novabox: invalid CPU count "0": expected a number greater than 0, e.g. 0.5$/],
    [['--cpus', 'abc'], /^novabox: invalid CPU count "abc": expected a number greater than 0, e.g. 0.5$/],
    [['--memory', '-1'], /^novabox: invalid memory size "-1"/],
    [['-v', '/etc:relative'], /^novabox: invalid volume "\/etc:relative": both paths must be absolute$/],
    [['--pids-limit', 'x'], /--pids-limit/],
    [['--name', 'bad name'], /invalid container name/],
    [['-e', 'NOEQUALS'], /invalid environment entry/],
    [['-u', 'nobody-here'], /unknown user/],
    [['--network', 'bridge'], /network/],
  ])('rejects bad input %j with one line', async (args, msg) => {
    const r = await run(['--rm', ...args, 'busybox', 'true']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toMatch(new RegExp(msg.source, 'm'));
    expect(r.stderr.trim().split('\n')).toHaveLength(1); // one sentence, a hint in parentheses
  });

  it('kills the container when it exceeds --memory: exit 137 and a clear message', async () => {
    const r = await run(['--rm', '--memory', '32m', 'busybox', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=200M', 'count=1']);
    expect(r.exitCode).toBe(137);
    expect(r.stderr).toContain('out of memory (limit 32 MiB)');
  });

  it('makes fork fail beyond --pids-limit', async () => {
    const r = await run([
      '--rm',
      '--pids-limit',
      '16',
      'busybox',
      'sh',
      '-c',
      'i=0; while [ $i -lt 30 ]; do sleep 3 & i=$((i+1)); done 2>&1; echo started; kill $(jobs -p) 2>/dev/null; true',
    ]);
    expect(r.stdout + r.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
  });

  it('writes the CPU quota from --cpus', async () => {
    const r = await run([
      '--rm',
      '--cpus',
      '0.5',
      'busybox',
      'sh',
      '-c',
      'cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us',
    ]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim().split(/\s+/)).toEqual(['50000', '100000']);
  });

  it('shows the container its own cgroup only (cgroup namespace)', async () => {
    const r = await run(['--rm', 'busybox', 'cat', '/proc/self/cgroup']);
    for (const line of r.stdout.trim().split('\n')) expect(line).toMatch(/:\/$/);
  });

  it('runs as another user with no capabilities', async () => {
    const r = await run(['--rm', '-u', '1000:1000', 'busybox', 'sh', '-c', 'id; grep CapEff /proc/self/status']);
    expect(r.stdout).toContain('uid=1000 gid=1000');
    expect(r.stdout).toMatch(/CapEff:\s+0000000000000000/);
    const named = await run(['--rm', '-u', 'nobody', 'busybox', 'id', '-u']);
    expect(named.stdout.trim()).toBe('65534');
  });

  it('with --read-only the root cannot be written but /tmp can', async () => {
    const r = await run(['--rm', '--read-only', 'busybox', 'sh', '-c', 'touch /x 2>&1; touch /tmp/x && echo tmp-ok']);
    expect(r.stdout).toContain('Read-only file system');
    expect(r.stdout).toContain('tmp-ok');
  });

  it('writes go to the container layer, never to the image', async () => {
    await run(['--rm', 'busybox', 'sh', '-c', 'echo changed > /etc/hosts; rm /bin/ls']);
    const r = await run(['--rm', 'busybox', 'sh', '-c', 'cat /etc/hosts; ls / >/dev/null && echo ls-ok']);
    expect(r.stdout).toContain('localhost');
    expect(r.stdout).toContain('ls-ok');
  });

  it('binds host paths with -v, read-only with :ro, and refuses bad specs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nbx-vol-'));
    try {
      writeFileSync(join(dir, 'in'), 'from-host\n');
      // --userns host: root inside writes as host root (test/integration/userns.test.ts
      // shows a host directory staying host root's for a container in its own namespace)
      const r = await run([
        '--rm',
        '--userns',
        'host',
        '-v',
        `${dir}:/data`,
        '-v',
        `${dir}:/ro:ro`,
        'busybox',
        'sh',
        '-c',
        'cat /data/in; echo out > /data/out; echo x > /ro/x 2>&1 || echo ro-refused',
      ]);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toContain('from-host');
      expect(r.stdout).toContain('ro-refused');
      expect(readFileSync(join(dir, 'out'), 'utf8')).toBe('out\n');
      for (const bad of ['./relative:/x', `${dir}:rel`, `${dir}:/x:rx`, '/no/such/dir:/x', `${dir}:/a/../b`]) {
        const b = await run(['--rm', '-v', bad, 'busybox', 'true']);
        expect(b.exitCode, bad).toBe(2);
        expect(b.stderr).toMatch(/^novabox: invalid volume/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a hostile image cannot redirect mounts onto the host through symlinks', async () => {
    const host = mkdtempSync(join(tmpdir(), 'nbx-victim-'));
    const vol = mkdtempSync(join(tmpdir(), 'nbx-vol-'));
    chmodSync(vol, 0o755);
    const img = mkdtempSync(join(tmpdir(), 'nbx-evil-'));
    try {
      writeFileSync(join(vol, 'marker'), 'vol\n');
      copyBusybox(img);
      // 1. /proc is a symlink to a host path: refused in one line, nothing happens on the host.
      rmSync(join(img, 'proc'), { recursive: true, force: true });
      symlinkSync(`../../../../../../../..${host}`, join(img, 'proc'));
      const r = await run(['--rm', '--rootfs', img, 'true']);
      expect(r.exitCode).toBe(125);
      expect(r.stderr).toMatch(/^novabox: mkdir \/proc: not a directory \(op \d+ of \d+\)\n$/);
      expect(readdirSync(host)).toEqual([]);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(host);
      // 2. A symlink is resolved inside the root (RESOLVE_IN_ROOT), never on the host:
      //    /data -> /srv (absolute), and a volume on /data/x lands in the container's /srv/x.
      rmSync(join(img, 'proc'));
      execFileSync('mkdir', ['-p', join(img, 'proc'), join(img, 'srv')]);
      symlinkSync('/srv', join(img, 'data'));
      const v = await run(['--rm', '--rootfs', img, '-v', `${vol}:/data/x`, 'cat', '/srv/x/marker']);
      expect(v.stderr).toBe('');
      expect(v.stdout).toBe('vol\n');
      expect(existsSync('/srv/x')).toBe(false);
    } finally {
      for (const d of [host, vol, img]) rmSync(d, { recursive: true, force: true });
    }
  });

  it('resolves nested and symlinked volume targets inside the root, whichever way the executor reuses a directory', async () => {
    // The executor keeps the directory it resolved last and opens siblings from it
    // (native-bindings/src/ops.c): a symlink at any depth must still resolve inside the root.
    const host = mkdtempSync(join(tmpdir(), 'nbx-victim-'));
    const vol = mkdtempSync(join(tmpdir(), 'nbx-vol-'));
    chmodSync(vol, 0o755);
    const img = mkdtempSync(join(tmpdir(), 'nbx-links-'));
    try {
      writeFileSync(join(vol, 'marker'), 'vol\n');
      copyBusybox(img);
      execFileSync('mkdir', ['-p', join(img, 'srv/real'), join(img, 'run')]);
      symlinkSync('/srv/real', join(img, 'srv/lnk')); // absolute, one level down
      // tries to leave the root; inside it, the same path exists: the volume goes there
      symlinkSync(`../../../../../../../..${host}`, join(img, 'srv/esc'));
      execFileSync('mkdir', ['-p', join(img, host)]);
      writeFileSync(join(img, 'run/hosts-real'), 'image\n');
      rmSync(join(img, 'etc/hosts'), { force: true });
      symlinkSync('../run/hosts-real', join(img, 'etc/hosts')); // a file mount point behind a symlink
      const r = await run([
        '--rm',
        '--rootfs',
        img,
        '-v',
        `${vol}:/a/b/c`,
        '-v',
        `${vol}:/a/b/d:ro`,
        '-v',
        `${vol}:/srv/lnk/x`,
        '-v',
        `${vol}:/srv/esc/y`,
        '-v',
        `${join(vol, 'marker')}:/etc/hosts`,
        'sh',
        '-c',
        'cat /a/b/c/marker /a/b/d/marker /srv/real/x/marker /srv/esc/y/marker /run/hosts-real; touch /a/b/d/w 2>/dev/null || echo ro',
      ]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('vol\nvol\nvol\nvol\nvol\nro\n');
      // Nothing was made or mounted on the host side of any link.
      expect(readdirSync(host)).toEqual([]);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(host);
      expect(readFileSync(join(img, 'run/hosts-real'), 'utf8')).toBe('image\n');
    } finally {
      for (const d of [host, vol, img]) rmSync(d, { recursive: true, force: true });
    }
  });

  it('--network none has only lo; --network host sees the host interfaces', async () => {
    const none = await run(['--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net']);
    expect(none.stdout.trim().split(/\s+/)).toEqual(['lo']);
    const host = await run(['--rm', '--network', 'host', 'busybox', 'ls', '/sys/class/net']);
    expect(host.stdout.trim().split(/\s+/).sort()).toEqual(readdirSync('/sys/class/net').sort());
  });

  it('--dry-run prints the plan and creates nothing', async () => {
    const r = await run(['--rm', '--dry-run', '--memory', '64m', 'busybox', 'echo', 'hi']);
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.plan.ops.at(-1)).toMatchObject({ op: 'exec', file: 'echo', argv: ['echo', 'hi'] });
    expect(out.cgroup.writes.length).toBeGreaterThan(0);
    expect(out.cgroup.steps.create).toContainEqual(expect.objectContaining({ step: 'mkdir', exclusive: true }));
    // the container's cgroup goes; the parent every container shares stays
    expect(out.cgroup.steps.remove.at(-1)).toEqual({ step: 'rmdir', path: expect.stringMatching(new RegExp(`/${out.container.id}$`)) });
    // --rm throws the writable layer away: overlay need not sync it at exit (Linux 5.10+)
    const overlay = (plan: { ops: { op: string; fstype?: string; data?: string }[] }) =>
      plan.ops.find((o) => o.op === 'mount' && o.fstype === 'overlay')?.data ?? '';
    expect(overlay(out.plan)).toMatch(/,volatile$/);
    const kept = await run(['--dry-run', 'busybox', 'true']);
    expect(overlay(JSON.parse(kept.stdout).plan)).not.toContain('volatile');
  });

  it('forwards Ctrl-C (SIGINT) to the container and exits with its status', async () => {
    const child = spawn(
      process.execPath,
      [BIN, 'run', '--rm', 'busybox', 'sh', '-c', 'trap "echo got-int; exit 130" INT; echo ready; while :; do sleep 0.1; done'],
      { env: cliEnv(root) },
    );
    let out = '';
    await new Promise<void>((ready) =>
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('ready')) ready();
      }),
    );
    child.kill('SIGINT');
    const code = await new Promise((r) => child.on('close', r));
    expect(out).toContain('got-int');
    expect(code).toBe(130);
  });

  it('passes stdin through with -i', async () => {
    const r = await run(['--rm', '-i', 'busybox', 'sh', '-c', 'read x; echo "got $x"'], { input: 'hello\n' });
    expect(r.stdout).toBe('got hello\n');
  });

  it('gives a pseudo-terminal with -t', async () => {
    const r = await run(['--rm', '-t', 'busybox', 'sh', '-c', 'tty; [ -t 0 ] && echo is-tty; ls -l /dev/console; stty size; exit 4']);
    expect(r.exitCode).toBe(4);
    const lines = r.stdout.split(/\r?\n/);
    expect(lines[0]).toBe('/dev/pts/0'); // from the container's own devpts instance
    expect(lines[1]).toBe('is-tty');
    expect(lines[2]).toMatch(/^crw--w---- .* 136,\s+0 .* \/dev\/console$/);
    expect(lines[3]).toBe('24 80');
  });

  it('keeps a container without --rm until novabox rm', async () => {
    const r = await run(['--name', 'kept', 'busybox', 'sh', '-c', 'echo data > /root/f; exit 3']);
    expect(r.exitCode).toBe(3);
    const ps = await runCli(['ps', '-a', '-f', 'json'], { root });
    const rows = JSON.parse(ps.stdout);
    expect(rows).toEqual([expect.objectContaining({ name: 'kept', status: 'exited', exitCode: 3 })]);
    // the init of a refused run never runs its command (nor any op: it is released once its name is reserved)
    const host = mkdtempSync(join(tmpdir(), 'nbx-dup-'));
    const dup = await run(['--name', 'kept', '-v', `${host}:/mnt`, 'busybox', 'touch', '/mnt/ran']);
    expect(dup.exitCode).toBe(1);
    expect(dup.stderr).toBe('novabox: container name "kept" is already in use (remove it with "novabox rm" or pick another --name)\n');
    expect(readdirSync(host)).toEqual([]);
    rmSync(host, { recursive: true });
    const rm = await runCli(['rm', 'kept'], { root });
    expect(rm.exitCode).toBe(0);
    expect(JSON.parse((await runCli(['ps', '-a', '-f', 'json'], { root })).stdout)).toEqual([]);
  });

  it('refuses to run without root, in one line', async () => {
    const r = await runCli(['run', '--rm', 'busybox', 'true'], { root, spawn: { uid: 65534, gid: 65534 } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe('novabox: novabox needs root: run it with sudo (rootless mode is not supported yet)\n');
  });

  it('records nothing of a --rm container once it has exited', () => {
    const dir = `${root}/containers`;
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(root);
  });
});
