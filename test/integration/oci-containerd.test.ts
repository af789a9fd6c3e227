/**
 * containerd 1.6 (Debian) drives novabox-oci through containerd-shim-runc-v2, as it
 * drives runc: `ctr run --runc-binary bin/novabox-oci` on an image `novabox image save`
 * wrote and `ctr images import` read. containerd runs here on a private socket, root
 * and state; a containerd namespace of its own names the cgroups (/<namespace>/<id>).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupHierarchyDirs } from '../helpers/census.js';
import { BIN, cliEnv, ROOT } from '../helpers/run-cli.js';
import { missingCommands, skipEachIf } from '../helpers/skip.js';

const OCI = join(ROOT, 'bin/novabox-oci');
const missing = missingCommands(['containerd', 'ctr', 'containerd-shim-runc-v2']);
const skip =
  process.getuid?.() !== 0
    ? 'needs root'
    : missing.length
      ? `containerd is not installed (${missing.join(', ')}: apt-get install containerd)`
      : !existsSync(OCI)
        ? 'bin/novabox-oci is not built (npm run build)'
        : undefined;

// nothing of it may say "novabox": the other tests' census counts the host's mounts that do, and containerd's
// snapshots are host mounts below its root, named by the namespace
const ns = `oci-ctr-${randomBytes(3).toString('hex')}`;
const IMAGE = 'docker.io/library/busybox:busybox';
let work: string;
let sock: string;
let daemon: ChildProcess | undefined;

function ctr(args: string[], timeoutMs = 30_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('ctr', ['-a', sock, '-n', ns, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** What a container of this namespace may leave: its cgroups, processes in them, the shim's runtime state, records. */
function leftovers(): string[] {
  const out: string[] = [];
  for (const d of cgroupHierarchyDirs(ns)) {
    if (!existsSync(d)) continue;
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) out.push(`cgroup ${join(d, e.name)}`);
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${ns}/`)) out.push(`process ${pid}`);
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`\0${ns}\0`)) out.push(`shim ${pid}`);
    } catch {
      /* gone */
    }
  }
  const runtimeRoot = join('/run/containerd/runc', ns);
  if (existsSync(runtimeRoot)) for (const e of readdirSync(runtimeRoot)) out.push(`runtime state ${e}`);
  const containers = ctr(['containers', 'list', '--quiet']).stdout.trim();
  if (containers) out.push(`containers ${containers}`);
  return out;
}

function waitUntil(done: () => boolean, ms = 10_000): boolean {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (done()) return true;
    spawnSync('sleep', ['0.05']);
  }
  return done();
}

describe('novabox-oci under containerd (ctr run --runc-binary)', () => {
  skipEachIf(skip);

  beforeAll(async () => {
    if (skip) return;
    work = mkdtempSync(join(tmpdir(), 'oci-ctr-'));
    sock = join(work, 'containerd.sock');
    // the image: novabox's busybox, as `novabox image save` writes it (an OCI archive)
    const nbRoot = join(work, 'nb-state');
    const archive = join(work, 'busybox.tar');
    const save = spawnSync(process.execPath, [BIN, 'image', 'save', 'busybox', '--file', archive], {
      env: cliEnv(nbRoot),
      encoding: 'utf8',
    });
    expect(save.stderr).toBe('');
    mkdirSync(join(work, 'c'));
    writeFileSync(
      join(work, 'c/config.toml'),
      [
        'version = 2',
        `root = "${work}/c/root"`,
        `state = "${work}/c/state"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = "${sock}"`,
        '[ttrpc]',
        `  address = "${sock}.ttrpc"`,
        '',
      ].join('\n'),
    );
    daemon = spawn('containerd', ['--config', join(work, 'c/config.toml')], { stdio: 'ignore' });
    expect(waitUntil(() => existsSync(sock) && ctr(['version']).code === 0)).toBe(true);
    const imported = ctr(['images', 'import', '--base-name', 'docker.io/library/busybox', archive]);
    expect(imported.code).toBe(0);
    expect(ctr(['images', 'list', '--quiet']).stdout).toContain(IMAGE);
  }, 120_000);

  afterAll(async () => {
    if (skip || !work) return;
    for (const id of ctr(['containers', 'list', '--quiet']).stdout.split('\n').filter(Boolean)) {
      ctr(['task', 'kill', '--signal', 'SIGKILL', id]);
      ctr(['task', 'delete', '--force', id]);
      ctr(['containers', 'delete', id]);
    }
    if (daemon?.pid) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon?.once('exit', r));
    }
    for (const d of cgroupHierarchyDirs(ns)) {
      try {
        rmdirSync(d);
      } catch {
        /* not made, or reported by the tests */
      }
    }
    rmSync(join('/run/containerd/runc', ns), { recursive: true, force: true });
    // containerd's snapshots are overlay mounts below its root: gone with the daemon's own cleanup
    spawnSync('sh', ['-c', `grep -o '${work}/[^ ]*' /proc/self/mountinfo | xargs -r -n1 umount -l`]);
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('runs a command, with its output and exit status, and leaves nothing', () => {
    const r = ctr([
      'run',
      '--rm',
      '--runc-binary',
      OCI,
      IMAGE,
      'hello',
      'sh',
      '-c',
      'echo "hello as $(id -u) in $(cat /proc/self/cgroup | grep -c /hello)"; exit 7',
    ]);
    expect(r.stderr).toBe('');
    // root, in the cgroup containerd named (/<namespace>/hello), in every hierarchy it is placed in
    expect(r.stdout).toMatch(/^hello as 0 in [1-9]\d*\n$/);
    expect(r.code).toBe(7);
    expect(leftovers()).toEqual([]);
  });

  it('a detached task: its memory limit in its cgroup, pause, resume, ps, kill, delete, nothing left', () => {
    const run = ctr(['run', '-d', '--memory-limit', String(48 << 20), '--runc-binary', OCI, IMAGE, 'long', 'sleep', '60']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const tasks = ctr(['task', 'list']).stdout;
    expect(tasks).toMatch(/long\s+\d+\s+RUNNING/);
    const memory = cgroupHierarchyDirs(`${ns}/long`).find(
      (d) => existsSync(join(d, 'memory.max')) || existsSync(join(d, 'memory.limit_in_bytes')),
    );
    expect(memory).toBeDefined();
    const file = existsSync(join(memory!, 'memory.max')) ? 'memory.max' : 'memory.limit_in_bytes';
    expect(readFileSync(join(memory!, file), 'utf8').trim()).toBe(String(48 << 20));
    expect(ctr(['task', 'pause', 'long']).code).toBe(0);
    expect(ctr(['task', 'list']).stdout).toMatch(/long\s+\d+\s+PAUSED/);
    expect(ctr(['task', 'resume', 'long']).code).toBe(0);
    expect(ctr(['task', 'list']).stdout).toMatch(/long\s+\d+\s+RUNNING/);
    // ctr task exec: the shim's `exec --process --detach --pid-file`, its exit status reaped by the shim
    const ex = ctr(['task', 'exec', '--exec-id', 'e1', 'long', 'sh', '-c', 'echo "exec as $(id -u)"; exit 3']);
    expect(ex).toMatchObject({ code: 3, stdout: 'exec as 0\n', stderr: '' });
    // ctr task ps: the shim asks `ps --format json`
    const ps = ctr(['task', 'ps', 'long']);
    expect(ps.stdout).toMatch(/^PID\s+INFO\n\d+\s+-\n$/);
    expect(ctr(['task', 'kill', '--signal', 'SIGKILL', 'long']).code).toBe(0);
    expect(waitUntil(() => /long\s+\d+\s+STOPPED/.test(ctr(['task', 'list']).stdout))).toBe(true);
    expect(ctr(['task', 'delete', 'long']).code).toBe(0);
    expect(ctr(['containers', 'delete', 'long']).code).toBe(0);
    expect(waitUntil(() => leftovers().length === 0)).toBe(true);
  });

  it('ctr run -t: the container gets a pty through the console socket (script(1) gives ctr its terminal)', (ctx) => {
    ctx.skip(missingCommands(['script']).length > 0, 'no script(1) (util-linux) to give ctr a terminal');
    const line = `ctr -a ${sock} -n ${ns} run --rm -t --runc-binary ${OCI} ${IMAGE} tty sh -c 'tty; echo tty ok'`;
    const r = spawnSync('script', ['-qec', line, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    // as with runc on this host: ctr writes a NUL first, the pty turns \n into \r\n
    expect(r.stdout.replace(/^\^@|\0/g, '')).toBe('/dev/pts/0\r\r\ntty ok\r\r\n');
    expect(leftovers()).toEqual([]);
  });

  it('a config novabox-oci refuses reaches ctr as its one sentence, and nothing is left', () => {
    // --apparmor-profile NAME: process.apparmorProfile, which novabox-oci refuses (it has no AppArmor)
    const r = ctr(['run', '--rm', '--apparmor-profile', 'nbx-none', '--runc-binary', OCI, IMAGE, 'refused', 'true']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/config\.json: process\.apparmorProfile is not supported by novabox-oci/);
    ctr(['containers', 'delete', 'refused']);
    expect(leftovers()).toEqual([]);
  });
});
