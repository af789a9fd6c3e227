/**
 * Docker 20.10 (Debian docker.io) drives novabox-oci as it drives runc: a private dockerd
 * (its own data root, exec root, socket, pid file and cgroup parent; no bridge, no
 * iptables; the containerd it manages itself) with `--add-runtime novabox=bin/novabox-oci`,
 * on busybox loaded by `docker load` from `novabox image save`'s archive. Then a one-node
 * Swarm on the same dockerd, novabox its default runtime, runs a 3-replica service.
 * Network safety: containers use --network none, the service the host's network and runs
 * only sleep; the swarm listens on 127.0.0.1 and its gateway bridge is one of ours.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectCgroups } from '../../src/runtime/cgroups/detect.js';
import { cgroupHierarchyDirs } from '../helpers/census.js';
import { loopDisk } from '../helpers/loop-disk.js';
import { BIN, cliEnv, ROOT } from '../helpers/run-cli.js';
import { missingCommands, skipEachIf } from '../helpers/skip.js';

const OCI = join(ROOT, 'bin/novabox-oci');
// the docker.io client beside its dockerd (another `docker` may come first on PATH)
const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const missing = missingCommands(['dockerd', DOCKER, 'containerd', 'containerd-shim-runc-v2', 'tar']);
const skip =
  process.getuid?.() !== 0
    ? 'needs root'
    : missing.length
      ? `Docker is not installed (${missing.join(', ')}: apt-get install docker.io)`
      : !existsSync(OCI)
        ? 'bin/novabox-oci is not built (npm run build)'
        : undefined;

const rand = randomBytes(3).toString('hex');
/** the cgroup parent of this dockerd's containers (nothing named "novabox": other tests count those) */
const parent = `oci-dk-${rand}`;
let work: string;
let sock: string;
let daemon: ChildProcess | undefined;
let daemonLog = '';
/** dockerd makes /run/docker (plugins) whatever its exec root: removed at the end if it made it */
let runDockerExisted = true;

function docker(args: string[], timeoutMs = 60_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(DOCKER, ['-H', `unix://${sock}`, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function ociState(id: string): { status: string; pid: number } {
  const r = spawnSync(OCI, ['--root', join(work, 'exec/runtime-runc/moby'), 'state', id], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

/** What a removed container may leave: cgroups, processes in them, rootfs mounts, novabox-oci's state. */
function leftovers(): string[] {
  const out: string[] = [];
  for (const d of cgroupHierarchyDirs(parent)) {
    if (!existsSync(d)) continue;
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) out.push(`cgroup ${join(d, e.name)}`);
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${parent}/`)) out.push(`process ${pid}`);
    } catch {
      /* gone */
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const point = line.split(' ')[4] ?? '';
    // the daemon's own: its network namespaces' bind mounts, its data root and overlay2 directory made private
    const own = point.startsWith(`${work}/exec/netns/`) || point === `${work}/data` || point === `${work}/data/overlay2`;
    if (point.startsWith(`${work}/`) && !own) out.push(`mount ${point}`);
  }
  const state = join(work, 'exec/runtime-runc/moby');
  if (existsSync(state)) for (const e of readdirSync(state)) out.push(`novabox-oci state ${e}`);
  return out;
}

function waitUntil(done: () => boolean, ms = 20_000): boolean {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (done()) return true;
    spawnSync('sleep', ['0.2']);
  }
  return done();
}

/** `novabox image save`'s OCI archive plus the manifest.json `docker load` of 20.10 reads. */
function dockerArchive(): string {
  const oci = join(work, 'busybox-oci.tar');
  const save = spawnSync(process.execPath, [BIN, 'image', 'save', 'busybox', '--file', oci], {
    env: cliEnv(join(work, 'nb-state')),
    encoding: 'utf8',
  });
  expect(save.stderr).toBe('');
  const x = join(work, 'archive');
  mkdirSync(x);
  expect(spawnSync('tar', ['-xf', oci, '-C', x]).status).toBe(0);
  const blob = (digest: string) => `blobs/sha256/${digest.split(':')[1]}`;
  const index = JSON.parse(readFileSync(join(x, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(join(x, blob(index.manifests[0].digest)), 'utf8'));
  writeFileSync(
    join(x, 'manifest.json'),
    JSON.stringify([
      {
        Config: blob(manifest.config.digest),
        RepoTags: ['busybox:latest'],
        Layers: manifest.layers.map((l: { digest: string }) => blob(l.digest)),
      },
    ]),
  );
  const out = join(work, 'busybox-docker.tar');
  expect(spawnSync('tar', ['-cf', out, '-C', x, '.']).status).toBe(0);
  return out;
}

async function startDaemon(extra: string[] = []): Promise<void> {
  daemon = spawn(
    'dockerd',
    [
      '--data-root',
      join(work, 'data'),
      '--exec-root',
      join(work, 'exec'),
      '--pidfile',
      join(work, 'dockerd.pid'),
      '-H',
      `unix://${sock}`,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--exec-opt',
      'native.cgroupdriver=cgroupfs',
      '--cgroup-parent',
      `/${parent}`,
      '--add-runtime',
      `novabox=${OCI}`,
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  daemon.stderr?.on('data', (d) => {
    daemonLog = (daemonLog + String(d)).slice(-20_000);
  });
  expect(waitUntil(() => existsSync(sock) && docker(['version']).code === 0, 60_000)).toBe(true);
}

async function stopDaemon(): Promise<void> {
  if (!daemon?.pid || daemon.exitCode !== null) return;
  const d = daemon;
  d.kill('SIGTERM');
  await new Promise((r) => d.once('exit', r));
}

describe('novabox-oci under Docker (dockerd --add-runtime, a one-node Swarm)', () => {
  skipEachIf(skip);

  beforeAll(async () => {
    if (skip) return;
    work = mkdtempSync(join(tmpdir(), 'oci-dk-'));
    runDockerExisted = existsSync('/run/docker');
    sock = join(work, 'docker.sock');
    const archive = dockerArchive();
    await startDaemon();
    const loaded = docker(['load', '-i', archive]);
    expect(loaded.stderr).toBe('');
    expect(loaded.stdout).toContain('busybox:latest');
  }, 180_000);

  afterAll(async () => {
    if (skip || !work) return;
    docker(['swarm', 'leave', '--force']);
    const ids = docker(['ps', '-aq']).stdout.split('\n').filter(Boolean);
    if (ids.length) docker(['rm', '-f', ...ids]);
    docker(['network', 'rm', 'docker_gwbridge']);
    await stopDaemon();
    // the daemon's own leftovers: the swarm's gateway bridge if a failed test left it, its
    // network namespaces' mounts, its cgroup parent
    if (existsSync(`/sys/class/net/nbgw${rand}`)) spawnSync('ip', ['link', 'del', `nbgw${rand}`]);
    const netns = join(work, 'exec/netns');
    for (const e of existsSync(netns) ? readdirSync(netns) : []) spawnSync('umount', ['-l', join(netns, e)]);
    for (const d of cgroupHierarchyDirs(parent)) {
      try {
        rmdirSync(d);
      } catch {
        /* not made, or reported by the tests */
      }
    }
    rmSync(work, { recursive: true, force: true });
    if (!runDockerExisted) rmSync('/run/docker', { recursive: true, force: true });
  }, 120_000);

  it('docker run --rm --runtime novabox: the output, the runtime, and nothing left', () => {
    const r = docker(['run', '--rm', '--runtime', 'novabox', '--network', 'none', 'busybox', 'echo', 'hi']);
    expect(r).toMatchObject({ code: 0, stdout: 'hi\n', stderr: '' });
    // Docker's own seccomp profile is loaded (a filter: mode 2)
    const s = docker(['run', '--rm', '--runtime', 'novabox', '--network', 'none', 'busybox', 'grep', 'Seccomp:', '/proc/self/status']);
    expect(s.stdout).toMatch(/^Seccomp:\s+2\n$/);
    waitUntil(() => leftovers().length === 0);
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it('run -d, exec, pause/unpause, logs, stop, kill, rm: each seen by Docker and by novabox-oci', () => {
    const run = docker([
      'run',
      '-d',
      '--name',
      'life',
      '--runtime',
      'novabox',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      'trap "echo bye; exit 0" TERM; echo started; while :; do sleep 0.2; done',
    ]);
    expect(run.code).toBe(0);
    const id = run.stdout.trim();
    expect(docker(['inspect', '-f', '{{.HostConfig.Runtime}}', id]).stdout.trim()).toBe('novabox');
    expect(ociState(id).status).toBe('running');
    const ex = docker(['exec', 'life', 'sh', '-c', 'echo "in $(hostname)"; exit 3']);
    expect(ex).toMatchObject({ code: 3, stdout: `in ${id.slice(0, 12)}\n` });
    expect(docker(['pause', 'life']).code).toBe(0);
    expect(docker(['inspect', '-f', '{{.State.Status}}', 'life']).stdout.trim()).toBe('paused');
    expect(ociState(id).status).toBe('paused');
    expect(docker(['unpause', 'life']).code).toBe(0);
    expect(ociState(id).status).toBe('running');
    expect(waitUntil(() => docker(['logs', 'life']).stdout.includes('started'))).toBe(true);
    expect(docker(['stop', '-t', '10', 'life']).code).toBe(0);
    expect(docker(['inspect', '-f', '{{.State.ExitCode}}', 'life']).stdout.trim()).toBe('0');
    expect(docker(['logs', 'life']).stdout).toBe('started\nbye\n');
    expect(docker(['rm', 'life']).code).toBe(0);

    const k = docker(['run', '-d', '--name', 'victim', '--runtime', 'novabox', '--network', 'none', 'busybox', 'sleep', '600']);
    expect(k.code).toBe(0);
    expect(docker(['kill', 'victim']).code).toBe(0);
    expect(waitUntil(() => docker(['inspect', '-f', '{{.State.Status}}', 'victim']).stdout.trim() === 'exited')).toBe(true);
    expect(docker(['inspect', '-f', '{{.State.ExitCode}}', 'victim']).stdout.trim()).toBe('137');
    expect(docker(['rm', 'victim']).code).toBe(0);
    waitUntil(() => leftovers().length === 0);
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it('a memory limit is enforced: a process allocating beyond it is OOM-killed (137)', () => {
    const r = docker([
      'run',
      '--name',
      'oom',
      '--runtime',
      'novabox',
      '--network',
      'none',
      '-m',
      '32m',
      '--memory-swap',
      '32m',
      'busybox',
      'sh',
      '-c',
      'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived',
    ]);
    expect(r.code).toBe(137);
    expect(r.stdout).not.toContain('survived');
    expect(docker(['rm', 'oom']).code).toBe(0);
    // the limit is the container's cgroup's, as the host sees it
    const d = docker([
      'run',
      '-d',
      '--runtime',
      'novabox',
      '--network',
      'none',
      '-m',
      '32m',
      '--memory-swap',
      '32m',
      'busybox',
      'sleep',
      '600',
    ]);
    const id = d.stdout.trim();
    const layout = detectCgroups();
    const file =
      layout.kind === 'v2'
        ? join(layout.root, parent, id, 'memory.max')
        : join(layout.mounts.memory ?? '', parent, id, 'memory.limit_in_bytes');
    expect(readFileSync(file, 'utf8').trim()).toBe(String(32 << 20));
    expect(docker(['rm', '-f', id]).code).toBe(0);
    waitUntil(() => leftovers().length === 0);
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it("--device-write-bps: the throttle is the cgroup's, and direct writes to that disk keep to it", (ctx) => {
    const disk = loopDisk(work);
    if ('skip' in disk) return ctx.skip(disk.skip);
    try {
      const d = docker([
        'run',
        '-d',
        '--runtime',
        'novabox',
        '--network',
        'none',
        '--device-write-bps',
        `${disk.device}:1mb`,
        '-v',
        `${disk.mount}:/disk`,
        'busybox',
        'sleep',
        '600',
      ]);
      expect(d.stderr).toBe('');
      const id = d.stdout.trim();
      const layout = detectCgroups();
      const v2 = layout.kind === 'v2';
      const file = v2
        ? join(layout.root, parent, id, 'io.max')
        : join(layout.mounts.blkio ?? '', parent, id, 'blkio.throttle.write_bps_device');
      const dev = `${disk.major}:${disk.minor}`;
      expect(readFileSync(file, 'utf8').trim()).toBe(v2 ? `${dev} rbps=max wbps=1048576 riops=max wiops=max` : `${dev} 1048576`);
      // 2 MiB past the page cache at 1 MiB/s: about 2 s
      const t0 = performance.now();
      const w = docker(['exec', id, 'dd', 'if=/dev/zero', 'of=/disk/f', 'bs=64k', 'count=32', 'oflag=direct']);
      expect(w.code, w.stderr).toBe(0);
      expect(performance.now() - t0).toBeGreaterThan(1400);
      expect(docker(['rm', '-f', id]).code).toBe(0);
    } finally {
      disk.remove();
    }
    waitUntil(() => leftovers().length === 0);
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it("--security-opt seccomp: the profile's errno reaches the process", () => {
    const profile = join(work, 'profile.json');
    writeFileSync(
      profile,
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 122 }],
      }),
    );
    const r = docker([
      'run',
      '--rm',
      '--runtime',
      'novabox',
      '--network',
      'none',
      '--security-opt',
      `seccomp=${profile}`,
      'busybox',
      'sh',
      '-c',
      'mkdir /tmp/x 2>&1; echo rc=$?',
    ]);
    expect(r.stdout).toBe("mkdir: can't create directory '/tmp/x': Disk quota exceeded\nrc=1\n");
    waitUntil(() => leftovers().length === 0);
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it('a one-node Swarm with novabox as the default runtime runs a 3-replica service, removed cleanly', async () => {
    // novabox as the daemon's default runtime: restart it so
    await stopDaemon();
    await startDaemon(['--default-runtime', 'novabox']);
    expect(docker(['info', '-f', '{{.DefaultRuntime}}']).stdout.trim()).toBe('novabox');
    // the swarm's gateway bridge, made by us: its own name, no masquerading
    const gw = docker([
      'network',
      'create',
      '--driver',
      'bridge',
      '--subnet',
      `10.254.${parseInt(rand.slice(0, 2), 16)}.0/24`,
      '--opt',
      `com.docker.network.bridge.name=nbgw${rand}`,
      '--opt',
      'com.docker.network.bridge.enable_ip_masquerade=false',
      'docker_gwbridge',
    ]);
    expect(gw.stderr).toBe('');
    const port = 23000 + (parseInt(rand.slice(2, 6), 16) % 2000);
    const init = docker([
      'swarm',
      'init',
      '--advertise-addr',
      '127.0.0.1',
      '--listen-addr',
      `127.0.0.1:${port}`,
      '--data-path-port',
      String(port + 1),
    ]);
    expect(init.stderr).toBe('');
    const svc = docker([
      'service',
      'create',
      '--detach',
      '--name',
      'sleepers',
      '--replicas',
      '3',
      '--network',
      'host',
      'busybox',
      'sleep',
      '600',
    ]);
    expect(svc.code).toBe(0);
    const running = () =>
      docker(['ps', '--filter', 'label=com.docker.swarm.service.name=sleepers', '--filter', 'status=running', '-q'])
        .stdout.split('\n')
        .filter(Boolean);
    waitUntil(() => running().length === 3, 60_000);
    expect(running().length, `${docker(['service', 'ps', '--no-trunc', 'sleepers']).stdout}\n${daemonLog.slice(-4000)}`).toBe(3);
    for (const id of running()) {
      const full = docker(['inspect', '-f', '{{.Id}} {{.HostConfig.Runtime}}', id]).stdout.trim().split(' ');
      expect(full[1]).toBe('novabox');
      expect(ociState(full[0]).status).toBe('running');
    }
    expect(docker(['service', 'rm', 'sleepers']).code).toBe(0);
    waitUntil(() => docker(['ps', '-aq']).stdout.trim() === '', 60_000);
    expect(docker(['ps', '-a']).stdout.trim().split('\n'), daemonLog.slice(-4000)).toHaveLength(1);
    expect(docker(['swarm', 'leave', '--force']).code).toBe(0);
    expect(docker(['network', 'rm', 'docker_gwbridge']).code).toBe(0);
    expect(existsSync(`/sys/class/net/nbgw${rand}`)).toBe(false);
    waitUntil(() => leftovers().length === 0);
    expect(leftovers()).toEqual([]);
    expect(daemonLog).not.toMatch(/level=(error|fatal).*novabox-oci/);
  }, 240_000);
});
