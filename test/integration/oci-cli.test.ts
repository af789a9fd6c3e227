/**
 * novabox-oci as an engine calls it: the bare runc command line on a busybox bundle
 * (create -> state -> start -> kill -> delete), bad input, and what is left afterwards.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxLayer } from '../../src/images/busybox.js';
import { detectCgroups } from '../../src/runtime/cgroups/detect.js';
import { cgroupHierarchyDirs } from '../helpers/census.js';
import type { OciConfig } from '../../src/runtime/oci/plan.js';
import { loopDisk } from '../helpers/loop-disk.js';
import { ROOT } from '../helpers/run-cli.js';
import { dockerProfile, podmanProfile } from '../helpers/seccomp-profiles.js';
import { skipEachIf } from '../helpers/skip.js';

const OCI = join(ROOT, 'bin/novabox-oci');
const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync(OCI) ? 'bin/novabox-oci is not built (npm run build)' : undefined;

let work: string;
let stateRoot: string;
let bundle: string;
const tag = `t${randomBytes(3).toString('hex')}`;

/**
 * Run novabox-oci. The container's init keeps create's stdio (as runc's does: engines pass
 * fifos), so a create writes into a file here, never into a pipe spawnSync would wait on.
 */
function oci(args: string[], stdio: { out?: number } = {}): { code: number | null; stdout: string; stderr: string } {
  if (args[0] === 'create' && stdio.out === undefined) {
    const file = join(work, `create-${randomBytes(4).toString('hex')}.out`);
    const fd = openSync(file, 'w');
    const r = oci(args, { out: fd });
    closeSync(fd);
    return { ...r, stderr: readFileSync(file, 'utf8') };
  }
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(OCI, ['--root', stateRoot, ...args], {
    encoding: 'utf8',
    env,
    timeout: 20_000,
    stdio: ['ignore', stdio.out ?? 'pipe', stdio.out ?? 'pipe'],
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function state(id: string): { status: string; pid: number; bundle: string; id: string } {
  const r = oci(['state', id]);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

/** Processes whose cgroup (any hierarchy) is below novabox-oci/<tag>-, and monitors tagged so. */
function leftovers(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      if (cg.includes(`/novabox-oci/${tag}-`)) out.push(`process ${pid}`);
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`novabox-oci/${tag}-`)) out.push(`monitor ${pid}`);
    } catch {
      /* gone */
    }
  }
  for (const d of cgroupHierarchyDirs('novabox-oci')) {
    if (!existsSync(d)) continue;
    for (const e of readdirSync(d)) if (e.startsWith(`${tag}-`)) out.push(`cgroup ${join(d, e)}`);
  }
  if (existsSync(stateRoot)) for (const e of readdirSync(stateRoot)) out.push(`state ${e}`);
  return out;
}

function writeConfig(dir: string, patch: (c: OciConfig) => void): void {
  const base = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  patch(base);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(base));
}

function waitUntil(done: () => boolean, ms = 5000): boolean {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (done()) return true;
    spawnSync('sleep', ['0.02']);
  }
  return done();
}

describe('novabox-oci: the runc command line', () => {
  skipEachIf(skip);

  beforeAll(() => {
    if (skip) return;
    work = mkdtempSync(join(tmpdir(), 'oci-cli-'));
    stateRoot = join(work, 'state');
    bundle = join(work, 'bundle');
    spawnSync('mkdir', ['-p', bundle]);
    const rootfs = buildBusyboxLayer(work);
    spawnSync('mv', [rootfs, join(bundle, 'rootfs')]);
    const r = spawnSync(OCI, ['spec', '--bundle', bundle], { encoding: 'utf8' });
    expect(r.status).toBe(0);
  }, 60_000);

  afterAll(() => {
    if (skip || !work) return;
    for (const e of existsSync(stateRoot) ? readdirSync(stateRoot) : []) oci(['delete', '--force', e]);
    rmSync(work, { recursive: true, force: true });
  });

  it('create -> created, start -> running, kill -> stopped, delete -> nothing left', () => {
    const id = `${tag}-life`;
    const dir = join(work, 'life');
    spawnSync('mkdir', ['-p', dir]);
    writeConfig(dir, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.hostname = 'oci-life';
      c.process.args = [
        'sh',
        '-c',
        'trap "exit 3" TERM; echo "hello from $(hostname) as $(id -u)"; cat /proc/self/cgroup; sleep 60 & wait',
      ];
      c.linux.resources.memory = { limit: 64 << 20 };
      c.linux.resources.pids = { limit: 40 };
    });
    const out = join(work, 'life.out');
    const fd = openSync(out, 'w');
    const pidFile = join(work, 'life.pid');
    const created = oci(['create', '--bundle', dir, '--pid-file', pidFile, id], { out: fd });
    closeSync(fd);
    expect(created.code).toBe(0);
    const s1 = state(id);
    expect(s1).toMatchObject({ id, status: 'created', bundle: dir });
    expect(Number(readFileSync(pidFile, 'utf8'))).toBe(s1.pid);
    // the init waits at its gate: nothing of the command ran yet, no novabox process stays
    expect(readFileSync(out, 'utf8')).toBe('');
    expect(readFileSync(`/proc/${s1.pid}/stat`, 'utf8')).toContain('(novabox-monitor)');
    const memory = cgroupHierarchyDirs(`novabox-oci/${id}`).find(
      (d) => existsSync(join(d, 'memory.limit_in_bytes')) || existsSync(join(d, 'memory.max')),
    );
    expect(memory).toBeDefined();
    const limit = existsSync(join(memory!, 'memory.max')) ? 'memory.max' : 'memory.limit_in_bytes';
    expect(readFileSync(join(memory!, limit), 'utf8').trim()).toBe(String(64 << 20));

    expect(oci(['start', id]).code).toBe(0);
    expect(state(id).status).toBe('running');
    // update: new limits on the live cgroup, from linux.resources JSON
    const resources = join(work, 'resources.json');
    writeFileSync(resources, JSON.stringify({ memory: { limit: 32 << 20 }, pids: { limit: 30 } }));
    expect(oci(['update', '--resources', resources, id])).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(join(memory!, limit), 'utf8').trim()).toBe(String(32 << 20));
    writeFileSync(resources, JSON.stringify({ blockIO: { weight: 10 } }));
    expect(oci(['update', '--resources', resources, id]).stderr).toBe(
      'novabox-oci: config.json: linux.resources.blockIO.weight is not supported by novabox-oci (only the throttle*Device lists are)\n',
    );
    expect(waitUntil(() => readFileSync(out, 'utf8').includes('hello'))).toBe(true);
    expect(readFileSync(out, 'utf8')).toContain('hello from oci-life as 0');
    const again = oci(['start', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^novabox-oci: container ".*" is running, not created: it cannot be started\n$/);

    // exec: in the container's namespaces and cgroup; its exit status, or detached its pid
    const ex = oci(['exec', '--env', 'X=y', id, 'sh', '-c', 'echo "$X in $(hostname) as $(id -u)"; exit 5']);
    expect(ex).toMatchObject({ code: 5, stdout: 'y in oci-life as 0\n', stderr: '' });
    const execPid = join(work, 'exec.pid');
    expect(oci(['exec', '--detach', '--pid-file', execPid, id, 'sleep', '60']).code).toBe(0);
    const detached = Number(readFileSync(execPid, 'utf8'));
    expect(readlinkSync(`/proc/${detached}/ns/pid`)).toBe(readlinkSync(`/proc/${s1.pid}/ns/pid`));
    expect(oci(['exec', id, '/no/such/program']).stderr).toMatch(
      /^novabox-oci: exec "\/no\/such\/program": no such file or directory \(op \d+ of \d+\)\n$/,
    );

    // events --stats: one sample of the cgroup
    const stats = JSON.parse(oci(['events', '--stats', id]).stdout);
    expect(stats).toMatchObject({
      type: 'stats',
      id,
      data: { memory: { usage: { limit: 32 << 20 } }, pids: { current: expect.any(Number) } },
    });
    expect(stats.data.memory.usage.usage).toBeGreaterThan(0);
    expect(stats.data.pids.current).toBeGreaterThanOrEqual(2);
    expect(oci(['events', id]).stderr).toMatch(/^novabox-oci: events: only --stats/);

    // pause and resume (the cgroup freezer), ps (the cgroup's processes)
    const pids = JSON.parse(oci(['ps', '--format', 'json', id]).stdout) as number[];
    expect(pids).toContain(s1.pid);
    expect(pids).toContain(detached);
    expect(pids.length).toBeGreaterThanOrEqual(2); // sh and its sleep
    expect(oci(['pause', id]).code).toBe(0);
    expect(state(id).status).toBe('paused');
    expect(oci(['pause', id]).stderr).toMatch(/is paused, not running: it cannot be paused\n$/);
    expect(oci(['resume', id]).code).toBe(0);
    expect(state(id).status).toBe('running');
    expect(oci(['resume', id]).stderr).toMatch(/is running, not paused: it cannot be resumed\n$/);

    const list = oci(['list', '--format', 'json']);
    expect(JSON.parse(list.stdout).map((s: { id: string }) => s.id)).toContain(id);
    expect(oci(['delete', id]).stderr).toMatch(/is running: stop it first or use delete --force/);

    expect(oci(['kill', id, 'TERM']).code).toBe(0);
    expect(waitUntil(() => state(id).status === 'stopped')).toBe(true);
    expect(state(id).pid).toBe(0);
    expect(oci(['delete', id]).code).toBe(0);
    expect(oci(['state', id]).stderr).toBe(`novabox-oci: container "${id}" does not exist\n`);
    expect(waitUntil(() => leftovers().length === 0)).toBe(true);
    expect(leftovers()).toEqual([]);
  });

  it('deletes a created container that never started, and kill --all reaches every process', () => {
    const id = `${tag}-never`;
    expect(oci(['create', '--bundle', bundle, id]).code).toBe(0);
    const { pid } = state(id);
    expect(oci(['delete', id]).code).toBe(0);
    expect(waitUntil(() => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'))).toBe(true);
    expect(leftovers()).toEqual([]);

    const all = `${tag}-all`;
    const dir = join(work, 'all');
    spawnSync('mkdir', ['-p', dir]);
    writeConfig(dir, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.process.args = ['sh', '-c', 'sleep 60 & sleep 60 & wait'];
    });
    expect(oci(['create', '--bundle', dir, all]).code).toBe(0);
    expect(oci(['start', all]).code).toBe(0);
    expect(oci(['kill', '--all', all, 'KILL']).code).toBe(0);
    expect(waitUntil(() => state(all).status === 'stopped')).toBe(true);
    expect(oci(['delete', all]).code).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it('sysctl, oomScoreAdj and a network namespace joined by path, seen from inside', () => {
    const a = `${tag}-neta`;
    const b = `${tag}-netb`;
    const dirA = join(work, 'neta');
    const dirB = join(work, 'netb');
    spawnSync('mkdir', ['-p', dirA, dirB]);
    writeConfig(dirA, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.linux.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1' };
      c.process.oomScoreAdj = 123;
      c.process.args = [
        'sh',
        '-c',
        'cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced /proc/self/oom_score_adj; readlink /proc/self/ns/net; sleep 60 & wait',
      ];
    });
    const outA = join(work, 'neta.out');
    let fd = openSync(outA, 'w');
    expect(oci(['create', '--bundle', dirA, a], { out: fd }).code).toBe(0);
    closeSync(fd);
    const pidA = state(a).pid;
    writeConfig(dirB, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) =>
        n.type === 'network' ? { type: 'network', path: `/proc/${pidA}/ns/net` } : n,
      );
      c.process.args = ['sh', '-c', 'readlink /proc/self/ns/net'];
    });
    const outB = join(work, 'netb.out');
    fd = openSync(outB, 'w');
    expect(oci(['create', '--bundle', dirB, b], { out: fd }).code).toBe(0);
    closeSync(fd);
    expect(oci(['start', a]).code).toBe(0);
    expect(oci(['start', b]).code).toBe(0);
    expect(waitUntil(() => readFileSync(outA, 'utf8').includes('net:[') && readFileSync(outB, 'utf8').includes('net:['))).toBe(true);
    const [forward, rmid, score, netA] = readFileSync(outA, 'utf8').trim().split('\n');
    expect([forward, rmid, score]).toEqual(['1', '1', '123']);
    expect(netA).toBe(readlinkSync(`/proc/${pidA}/ns/net`));
    expect(netA).not.toBe(readlinkSync('/proc/self/ns/net'));
    expect(readFileSync(outB, 'utf8').trim()).toBe(netA);
    expect(oci(['delete', '--force', a]).code).toBe(0);
    expect(waitUntil(() => state(b).status === 'stopped')).toBe(true);
    expect(oci(['delete', b]).code).toBe(0);
    expect(waitUntil(() => leftovers().length === 0)).toBe(true);
  });

  it('linux.resources.blockIO: a write throttle on a loop device holds direct writes to its rate, and update lifts it', (ctx) => {
    const disk = loopDisk(work);
    if ('skip' in disk) return ctx.skip(disk.skip);
    const { major, minor, mount: mnt } = disk;
    const id = `${tag}-blkio`;
    try {
      const dir = join(work, 'blkio');
      spawnSync('mkdir', ['-p', dir]);
      writeConfig(dir, (c) => {
        c.root.path = join(bundle, 'rootfs');
        c.mounts.push({ destination: '/disk', type: 'bind', source: mnt, options: ['rbind', 'rw'] });
        c.linux.resources.blockIO = { weight: 0, throttleWriteBpsDevice: [{ major, minor, rate: 1 << 20 }] };
        c.process.args = ['sleep', '120'];
      });
      expect(oci(['create', '--bundle', dir, id]).code).toBe(0);
      expect(oci(['start', id]).code).toBe(0);
      const blkio = cgroupHierarchyDirs(`novabox-oci/${id}`).find(
        (d) => existsSync(join(d, 'io.max')) || existsSync(join(d, 'blkio.throttle.write_bps_device')),
      );
      expect(blkio, 'the cgroup has io.max or blkio.throttle.write_bps_device').toBeDefined();
      const v2 = existsSync(join(blkio!, 'io.max'));
      const limitNow = () =>
        v2
          ? readFileSync(join(blkio!, 'io.max'), 'utf8').trim()
          : readFileSync(join(blkio!, 'blkio.throttle.write_bps_device'), 'utf8').trim();
      expect(limitNow()).toBe(v2 ? `${major}:${minor} rbps=max wbps=1048576 riops=max wiops=max` : `${major}:${minor} 1048576`);
      // 2 MiB past the page cache at 1 MiB/s: about 2 s (the first slice of the throttle lets a little through at once)
      const write = () => {
        const t0 = performance.now();
        const r = oci(['exec', id, 'dd', 'if=/dev/zero', 'of=/disk/f', 'bs=64k', 'count=32', 'oflag=direct']);
        expect(r.code, r.stderr).toBe(0);
        return performance.now() - t0;
      };
      const throttled = write();
      expect(throttled).toBeGreaterThan(1400);
      const resources = join(work, 'blkio-resources.json');
      writeFileSync(resources, JSON.stringify({ blockIO: { throttleWriteBpsDevice: [{ major, minor, rate: 1 << 30 }] } }));
      expect(oci(['update', '--resources', resources, id])).toMatchObject({ code: 0, stderr: '' });
      expect(limitNow()).toBe(v2 ? `${major}:${minor} rbps=max wbps=1073741824 riops=max wiops=max` : `${major}:${minor} 1073741824`);
      expect(write()).toBeLessThan(throttled / 2);
      // a device that does not exist: the kernel's refusal, in one sentence
      writeFileSync(resources, JSON.stringify({ blockIO: { throttleReadBpsDevice: [{ major: 4095, minor: 1, rate: 1 }] } }));
      const bad = oci(['update', '--resources', resources, id]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toBe(
        'novabox-oci: config.json: linux.resources.blockIO.throttleReadBpsDevice[0] names block device 4095:1, which this host does not have\n',
      );
      expect(limitNow()).toContain('1073741824');
      expect(oci(['delete', '--force', id]).code).toBe(0);
      expect(waitUntil(() => leftovers().length === 0)).toBe(true);
    } finally {
      if (existsSync(join(stateRoot, id))) oci(['delete', '--force', id]);
      disk.remove();
    }
  });

  it("a pid namespace joined by path (a pod's shared one): the init is born in it, not its pid 1, and sees the other container's processes", () => {
    const a = `${tag}-pida`;
    const b = `${tag}-pidb`;
    const dirA = join(work, 'pida');
    const dirB = join(work, 'pidb');
    spawnSync('mkdir', ['-p', dirA, dirB]);
    writeConfig(dirA, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.process.args = ['sleep', '60'];
    });
    expect(oci(['create', '--bundle', dirA, a]).code).toBe(0);
    expect(oci(['start', a]).code).toBe(0);
    const pidA = state(a).pid;
    writeConfig(dirB, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) =>
        n.type === 'pid' ? { type: 'pid', path: `/proc/${pidA}/ns/pid` } : n,
      );
      c.process.args = ['sh', '-c', 'readlink /proc/self/ns/pid; echo $$; cat /proc/1/cmdline | tr "\\0" " "; echo'];
    });
    const outB = join(work, 'pidb.out');
    const fd = openSync(outB, 'w');
    expect(oci(['create', '--bundle', dirB, b], { out: fd }).code).toBe(0);
    closeSync(fd);
    expect(readlinkSync(`/proc/${state(b).pid}/ns/pid`)).toBe(readlinkSync(`/proc/${pidA}/ns/pid`));
    expect(oci(['start', b]).code).toBe(0);
    expect(waitUntil(() => state(b).status === 'stopped')).toBe(true);
    const [ns, self, one] = readFileSync(outB, 'utf8').trim().split('\n');
    expect(ns).toBe(readlinkSync(`/proc/${pidA}/ns/pid`));
    expect(Number(self)).toBeGreaterThan(1);
    expect(one?.trim()).toBe('sleep 60'); // pid 1 there is the other container's init
    // a path that is no pid namespace: the create fails in one sentence, nothing left
    writeConfig(dirB, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) =>
        n.type === 'pid' ? { type: 'pid', path: '/proc/self/ns/net' } : n,
      );
    });
    expect(oci(['delete', b]).code).toBe(0);
    const bad = oci(['create', '--bundle', dirB, b]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.split('\n')).toHaveLength(2);
    expect(oci(['delete', '--force', a]).code).toBe(0);
    expect(waitUntil(() => leftovers().length === 0)).toBe(true);
  });

  it("--preserve-fds: the caller's fds 3.. become the process's own, at create and at exec; a bad count is one sentence", () => {
    const id = `${tag}-pfds`;
    const dir = join(work, 'pfds');
    spawnSync('mkdir', ['-p', dir]);
    writeConfig(dir, (c) => {
      c.root.path = join(bundle, 'rootfs');
      // fd 3 written to, fd 4 read from, nothing more of ours (the shell saves fds from 10 up)
      c.process.args = [
        'sh',
        '-c',
        'echo hi >&3; cat <&4 >&3; for f in 5 6 7 8 9; do [ -e /proc/$$/fd/$f ] && echo "fd $f" >&3; done; sleep 60',
      ];
    });
    writeFileSync(join(dir, 'in'), 'from the engine\n');
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    delete env.NODE_EXTRA_CA_CERTS;
    const withFds = (args: string[], fds: number[]) => {
      const log = openSync(join(dir, 'log'), 'w');
      const r = spawnSync(OCI, ['--root', stateRoot, ...args], {
        encoding: 'utf8',
        env,
        timeout: 20_000,
        stdio: ['ignore', log, log, ...fds],
      });
      closeSync(log);
      return { code: r.status, stderr: readFileSync(join(dir, 'log'), 'utf8') };
    };
    const out = openSync(join(dir, 'out'), 'w');
    const input = openSync(join(dir, 'in'), 'r');
    try {
      expect(withFds(['create', '--preserve-fds', '2', '--bundle', dir, id], [out, input])).toEqual({ code: 0, stderr: '' });
      const { pid } = state(id);
      expect(oci(['start', id]).code).toBe(0);
      // the shell sleeping: its fds are exactly stdio and the two it was given
      const fds = () => readdirSync(`/proc/${pid}/fd`).sort().join(' ');
      expect(waitUntil(() => readFileSync(join(dir, 'out'), 'utf8').includes('engine') && fds() === '0 1 2 3 4')).toBe(true);
      expect(readFileSync(join(dir, 'out'), 'utf8')).toBe('hi\nfrom the engine\n');
      expect([readlinkSync(`/proc/${pid}/fd/3`), readlinkSync(`/proc/${pid}/fd/4`)]).toEqual([join(dir, 'out'), join(dir, 'in')]);
      // exec: one fd for the process exec starts
      const ex = openSync(join(dir, 'exec-out'), 'w');
      const script = 'echo exec >&3; for f in 4 5 6 7 8 9; do [ -e /proc/$$/fd/$f ] && echo "fd $f" >&3; done; true';
      expect(withFds(['exec', '--preserve-fds', '1', id, 'sh', '-c', script], [ex])).toEqual({ code: 0, stderr: '' });
      closeSync(ex);
      expect(readFileSync(join(dir, 'exec-out'), 'utf8')).toBe('exec\n');
      expect(withFds(['exec', '--preserve-fds', 'two', id, 'true'], [])).toEqual({
        code: 1,
        stderr: 'novabox-oci: exec: --preserve-fds must be a number of fds from 0 to 200\n',
      });
      expect(oci(['delete', '--force', id]).code).toBe(0);
      expect(waitUntil(() => leftovers().length === 0)).toBe(true);
    } finally {
      closeSync(out);
      closeSync(input);
      if (existsSync(join(stateRoot, id))) oci(['delete', '--force', id]);
    }
  });

  it('--no-pivot (for a host whose root is a ramdisk, where pivot_root fails): the root mount moved over / and chrooted into; the process sees its rootfs, nothing left', () => {
    const id = `${tag}-nopivot`;
    const dir = join(work, 'nopivot');
    spawnSync('mkdir', ['-p', dir]);
    // a rootfs on a tmpfs of its own, as a ramdisk's would be
    const rootfs = join(dir, 'rootfs');
    spawnSync('mkdir', ['-p', rootfs]);
    expect(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', rootfs]).status).toBe(0);
    try {
      spawnSync('cp', ['-a', `${join(bundle, 'rootfs')}/.`, rootfs]);
      writeFileSync(join(rootfs, 'marker'), 'in the ramdisk\n');
      writeConfig(dir, (c) => {
        c.root.path = rootfs;
        c.process.args = ['sh', '-c', 'cat /marker; ls /proc/self/ns/mnt >/dev/null && echo ok'];
      });
      const out = join(dir, 'out');
      const fd = openSync(out, 'w');
      expect(oci(['create', '--no-pivot', '--bundle', dir, id], { out: fd }).code).toBe(0);
      closeSync(fd);
      expect(oci(['start', id]).code).toBe(0);
      expect(waitUntil(() => state(id).status === 'stopped')).toBe(true);
      expect(readFileSync(out, 'utf8')).toBe('in the ramdisk\nok\n');
      expect(oci(['delete', id]).code).toBe(0);
      expect(waitUntil(() => leftovers().length === 0)).toBe(true);
    } finally {
      if (existsSync(join(stateRoot, id))) oci(['delete', '--force', id]);
      spawnSync('umount', [rootfs]);
    }
  });

  it("linux.seccomp: a denied call fails with the profile's errno inside, by name and by argument, in exec too", () => {
    const id = `${tag}-seccomp`;
    const dir = join(work, 'seccomp');
    spawnSync('mkdir', ['-p', dir]);
    writeConfig(dir, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
        syscalls: [
          // EDQUOT: an errno nothing else here would give
          { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 122 },
          { names: ['chmod'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 0o777, op: 'SCMP_CMP_EQ' }] },
          { names: ['fchmodat'], action: 'SCMP_ACT_ERRNO', args: [{ index: 2, value: 0o777, op: 'SCMP_CMP_EQ' }] },
        ],
      };
      c.process.args = [
        'sh',
        '-c',
        'mkdir /dev/x; echo mkdir=$?; touch /dev/f; chmod 755 /dev/f; echo c755=$?; chmod 777 /dev/f; echo c777=$?; sleep 60 & wait',
      ];
    });
    const out = join(work, 'seccomp.out');
    const fd = openSync(out, 'w');
    expect(oci(['create', '--bundle', dir, id], { out: fd }).code).toBe(0);
    closeSync(fd);
    expect(oci(['start', id]).code).toBe(0);
    expect(waitUntil(() => readFileSync(out, 'utf8').includes('c777='))).toBe(true);
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/mkdir: can't create directory '\/dev\/x': Disk quota exceeded\nmkdir=1\n/);
    expect(text).toContain('c755=0\n');
    expect(text).toMatch(/chmod: \/dev\/f: Operation not permitted\nc777=1\n/);
    // the filter is the kernel's: the init's status says mode 2 (filter)
    expect(readFileSync(`/proc/${state(id).pid}/status`, 'utf8')).toMatch(/^Seccomp:\s+2$/m);
    const ex = oci(['exec', id, 'sh', '-c', 'mkdir /dev/y 2>&1; grep Seccomp: /proc/self/status']);
    expect(ex.stdout).toMatch(/Disk quota exceeded\nSeccomp:\s+2\n/);
    expect(oci(['delete', '--force', id]).code).toBe(0);
    expect(waitUntil(() => leftovers().length === 0)).toBe(true);
  });

  it.each([
    ['Docker 20.10', dockerProfile],
    ['Podman 4.3', podmanProfile],
  ])("%s's default seccomp profile: the kernel takes the filter and a shell runs under it", (_engine, profile) => {
    const id = `${tag}-profile`;
    const dir = join(work, 'profile');
    spawnSync('mkdir', ['-p', dir]);
    writeConfig(dir, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.linux.seccomp = profile();
      c.process.args = ['sh', '-c', 'grep Seccomp: /proc/self/status; ls / >/dev/null; echo ls=$?'];
    });
    const out = join(work, 'profile.out');
    const fd = openSync(out, 'w');
    expect(oci(['create', '--bundle', dir, id], { out: fd }).code).toBe(0);
    closeSync(fd);
    expect(oci(['start', id]).code).toBe(0);
    expect(waitUntil(() => readFileSync(out, 'utf8').includes('ls='))).toBe(true);
    expect(readFileSync(out, 'utf8')).toMatch(/^Seccomp:\s+2\nls=0\n$/);
    expect(waitUntil(() => state(id).status === 'stopped')).toBe(true);
    expect(oci(['delete', id]).code).toBe(0);
    expect(waitUntil(() => leftovers().length === 0)).toBe(true);
  });

  it('a terminal: the pty master goes to the console socket, the process writes on the pty', async () => {
    const id = `${tag}-tty`;
    const dir = join(work, 'tty');
    spawnSync('mkdir', ['-p', dir]);
    writeConfig(dir, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.process.terminal = true;
      c.process.args = ['sh', '-c', 'test -t 0 && test -t 1 && echo "a tty: $(tty)"'];
    });
    const sock = join(work, 'console.sock');
    const receiver = spawn('python3', [join(ROOT, 'test/fixtures/console-socket.py'), sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    receiver.stdout.on('data', (d) => (out += d));
    receiver.stderr.on('data', (d) => (err += d));
    const exited = new Promise((r) => receiver.on('close', r));
    await new Promise<void>((r) => receiver.stdout.once('data', () => r()));
    const noSocket = oci(['create', '--bundle', dir, id]);
    expect(noSocket).toMatchObject({
      code: 1,
      stderr: 'novabox-oci: process.terminal needs --console-socket: the pty master goes to the engine there\n',
    });
    expect(oci(['create', '--bundle', dir, '--console-socket', sock, id]).code).toBe(0);
    expect(oci(['start', id]).code).toBe(0);
    await exited;
    expect(err).toBe('name=/dev/ptmx fds=1\n');
    expect(out).toMatch(/^ready\na tty: \/dev\/pts\/0\r?\n$/);
    expect(waitUntil(() => state(id).status === 'stopped')).toBe(true);
    expect(oci(['delete', id]).code).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it('a user namespace of uidMappings and gidMappings: root inside is the range on the host', () => {
    const id = `${tag}-userns`;
    const dir = join(work, 'userns');
    spawnSync('mkdir', ['-p', dir]);
    // the range's root owns its rootfs (novabox-oci does not shift the bundle's files)
    expect(spawnSync('cp', ['-a', join(bundle, 'rootfs'), join(dir, 'rootfs')]).status).toBe(0);
    expect(spawnSync('chown', ['-R', '200000:200000', join(dir, 'rootfs')]).status).toBe(0);
    writeConfig(dir, (c) => {
      c.root = { path: 'rootfs', readonly: false };
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      // a new sysfs needs a network namespace its user namespace owns: not read yet
      c.mounts = c.mounts.filter((m: { type: string }) => m.type !== 'sysfs');
      c.process.args = ['sh', '-c', 'id -u; cat /proc/self/uid_map; touch /made-inside; sleep 60 & wait'];
    });
    const out = join(work, 'userns.out');
    const fd = openSync(out, 'w');
    expect(oci(['create', '--bundle', dir, id], { out: fd }).code).toBe(0);
    closeSync(fd);
    const { pid } = state(id);
    expect(readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/)).toEqual(['0', '200000', '65536']);
    expect(oci(['start', id]).code).toBe(0);
    expect(waitUntil(() => existsSync(join(dir, 'rootfs/made-inside')))).toBe(true);
    const [uid, map] = readFileSync(out, 'utf8').split('\n');
    expect(uid).toBe('0');
    expect(map.trim().split(/\s+/)).toEqual(['0', '200000', '65536']);
    expect(statSync(join(dir, 'rootfs/made-inside')).uid).toBe(200000);
    expect(oci(['delete', '--force', id]).code).toBe(0);
    expect(waitUntil(() => leftovers().length === 0)).toBe(true);
  });

  it('a create killed before its init was recorded leaves a stopped container that delete removes', () => {
    // what `create` has written when a kill -9 stops it before the init reached its gate:
    // the record without an init, its creator (now dead), and the cgroup it was making
    const id = `${tag}-killed`;
    const dead = spawnSync('true').pid!;
    const cgroupPath = `novabox-oci/${id}`;
    const layout = detectCgroups();
    const made = layout.kind === 'v2' ? [join(layout.root, cgroupPath)] : ['memory', 'pids'].map((c) => join(layout.mounts[c], cgroupPath));
    for (const d of made) spawnSync('mkdir', ['-p', d]);
    spawnSync('mkdir', ['-p', join(stateRoot, id)]);
    writeFileSync(
      join(stateRoot, id, 'state.json'),
      JSON.stringify({
        id,
        bundle,
        rootfs: '',
        pid: 0,
        pidStart: 0,
        creator: dead,
        creatorStart: 1,
        cgroupPath,
        gate: '',
        created: '',
        annotations: {},
      }),
    );
    expect(state(id)).toMatchObject({ status: 'stopped', pid: 0 });
    expect(oci(['start', id]).stderr).toBe(`novabox-oci: container "${id}" is stopped, not created: it cannot be started\n`);
    expect(oci(['delete', id]).code).toBe(0);
    for (const d of made) expect(existsSync(d)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('hooks: createRuntime before the first op, poststart after start, poststop at delete, each with the state', () => {
    const id = `${tag}-hooks`;
    const dir = join(work, 'hooks');
    spawnSync('mkdir', ['-p', dir]);
    const hook = join(dir, 'hook.sh');
    writeFileSync(hook, `#!/bin/sh\ncat > "${dir}/$1.json"\n`, { mode: 0o755 });
    writeConfig(dir, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.process.args = ['sleep', '60'];
      c.hooks = {
        createRuntime: [{ path: hook, args: ['hook.sh', 'createRuntime'] }],
        poststart: [{ path: hook, args: ['hook.sh', 'poststart'] }],
        poststop: [{ path: hook, args: ['hook.sh', 'poststop'] }],
      };
    });
    expect(oci(['create', '--bundle', dir, id]).code).toBe(0);
    const { pid } = state(id);
    const seen = (k: string) => JSON.parse(readFileSync(join(dir, `${k}.json`), 'utf8'));
    expect(seen('createRuntime')).toMatchObject({ id, status: 'creating', pid, bundle: dir });
    expect(existsSync(join(dir, 'poststart.json'))).toBe(false);
    expect(oci(['start', id]).code).toBe(0);
    expect(seen('poststart')).toMatchObject({ id, status: 'running', pid });
    expect(oci(['delete', '--force', id]).code).toBe(0);
    expect(seen('poststop')).toMatchObject({ id, status: 'stopped', pid: 0 });
    expect(leftovers()).toEqual([]);

    // a createRuntime hook that fails fails the create, and nothing is left
    writeFileSync(hook, '#!/bin/sh\necho "no network for you" >&2\nexit 3\n', { mode: 0o755 });
    const r = oci(['create', '--bundle', dir, id]);
    expect(r).toMatchObject({ code: 1, stderr: `novabox-oci: the createRuntime hook ${hook} failed: exit status 3: no network for you\n` });
    expect(leftovers()).toEqual([]);
  });

  it('createContainer hooks: run by the init in its namespaces, its mounts made, before pivot_root, with the state; a failure fails the create and leaves nothing', () => {
    const id = `${tag}-cchooks`;
    const dir = join(work, 'cchooks');
    spawnSync('mkdir', ['-p', dir]);
    const hook = join(dir, 'hook.sh');
    const rootfs = join(bundle, 'rootfs');
    // what the hook sees: its state, its namespaces, the container's proc mounted in the rootfs, its environment
    writeFileSync(
      hook,
      `#!/bin/sh\ncat > "${dir}/$1.json"\n{ readlink /proc/self/ns/mnt; readlink /proc/self/ns/pid; test -d "${rootfs}/proc/self" && echo proc; echo "$K"; } > "${dir}/$1.seen"\n`,
      { mode: 0o755 },
    );
    writeConfig(dir, (c) => {
      c.root.path = rootfs;
      c.process.args = ['sleep', '60'];
      c.hooks = {
        createContainer: [
          { path: hook, args: ['hook.sh', 'first'], env: ['K=v1'] },
          { path: hook, args: ['hook.sh', 'second'], env: ['K=v2'], timeout: 10 },
        ],
      };
    });
    expect(oci(['create', '--bundle', dir, id])).toMatchObject({ code: 0, stderr: '' });
    const { pid } = state(id);
    for (const [k, v] of [
      ['first', 'v1'],
      ['second', 'v2'],
    ] as const) {
      expect(JSON.parse(readFileSync(join(dir, `${k}.json`), 'utf8'))).toMatchObject({ id, status: 'creating', pid, bundle: dir });
      const [mnt, pidNs, proc, env] = readFileSync(join(dir, `${k}.seen`), 'utf8')
        .trim()
        .split('\n');
      expect(mnt).toBe(readlinkSync(`/proc/${pid}/ns/mnt`));
      expect(mnt).not.toBe(readlinkSync('/proc/self/ns/mnt'));
      expect(pidNs).toBe(readlinkSync(`/proc/${pid}/ns/pid`));
      expect([proc, env]).toEqual(['proc', v]);
    }
    expect(oci(['delete', '--force', id]).code).toBe(0);
    expect(waitUntil(() => leftovers().length === 0)).toBe(true);

    // one that fails, one that is missing, one that outlives its timeout: the create fails in one sentence, nothing left
    const fail = (hooks: unknown, stderr: string) => {
      writeConfig(dir, (c) => {
        c.root.path = rootfs;
        c.process.args = ['true'];
        c.hooks = { createContainer: hooks };
      });
      expect(oci(['create', '--bundle', dir, id])).toMatchObject({ code: 1, stderr });
      expect(waitUntil(() => leftovers().length === 0)).toBe(true);
    };
    writeFileSync(hook, '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    fail([{ path: hook }], `novabox-oci: the createContainer hook ${hook} failed: exit status 3\n`);
    fail([{ path: `${dir}/none` }], `novabox-oci: the createContainer hook ${dir}/none failed: no such file or directory\n`);
    writeFileSync(hook, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
    const t0 = performance.now();
    fail(
      [{ path: hook, timeout: 1 }],
      `novabox-oci: the createContainer hook ${hook} failed: it did not end within its timeout of 1 s, and was killed\n`,
    );
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('startContainer hooks: run by the init after start, in the container, before the process; a failure ends the container and says why on its stderr', () => {
    const id = `${tag}-schooks`;
    const dir = join(work, 'schooks');
    const out = join(dir, 'out');
    spawnSync('mkdir', ['-p', out]);
    const rootfs = join(bundle, 'rootfs');
    const inRoot = join(rootfs, 'start-hook.sh');
    const create = (hookScript: string, hooks: unknown) => {
      writeFileSync(inRoot, hookScript, { mode: 0o755 });
      rmSync(join(out, 'order'), { force: true });
      writeConfig(dir, (c) => {
        c.root.path = rootfs;
        c.mounts.push({ destination: '/out', type: 'bind', source: out, options: ['rbind', 'rw'] });
        c.process.args = ['sh', '-c', 'echo process >> /out/order; sleep 60'];
        c.hooks = { startContainer: hooks };
      });
      const log = join(dir, 'container.log');
      const fd = openSync(log, 'w');
      const r = oci(['create', '--bundle', dir, id], { out: fd });
      closeSync(fd);
      expect(r.code).toBe(0);
      return log;
    };
    try {
      create(
        '#!/bin/sh\ncat > /out/state.json\n{ echo "$K"; test -e /start-hook.sh && echo in-root; } > /out/seen\necho hook >> /out/order\n',
        [{ path: '/start-hook.sh', env: ['K=v'], timeout: 10 }],
      );
      const { pid } = state(id);
      expect(existsSync(join(out, 'order'))).toBe(false); // not before start
      expect(oci(['start', id]).code).toBe(0);
      expect(waitUntil(() => existsSync(join(out, 'order')) && readFileSync(join(out, 'order'), 'utf8').includes('process'))).toBe(true);
      expect(readFileSync(join(out, 'order'), 'utf8')).toBe('hook\nprocess\n');
      expect(JSON.parse(readFileSync(join(out, 'state.json'), 'utf8'))).toMatchObject({ id, status: 'created', pid, bundle: dir });
      expect(readFileSync(join(out, 'seen'), 'utf8')).toBe('v\nin-root\n');
      expect(oci(['delete', '--force', id]).code).toBe(0);
      expect(waitUntil(() => leftovers().length === 0)).toBe(true);

      // a failure: `start` has returned (as runc's), the container ends before its process runs, its stderr says why
      const log = create('#!/bin/sh\nexit 3\n', [{ path: '/start-hook.sh' }]);
      expect(oci(['start', id]).code).toBe(0);
      expect(waitUntil(() => state(id).status === 'stopped')).toBe(true);
      expect(readFileSync(log, 'utf8')).toBe('novabox-oci: the startContainer hook /start-hook.sh failed: exit status 3\n');
      expect(existsSync(join(out, 'order'))).toBe(false);
      expect(oci(['delete', id]).code).toBe(0);
      expect(waitUntil(() => leftovers().length === 0)).toBe(true);
    } finally {
      if (existsSync(join(stateRoot, id))) oci(['delete', '--force', id]);
      rmSync(inRoot, { force: true });
    }
  });

  it("linux.resources.hugepageLimits: hugetlb.<size>.max on cgroup v2 (0 for kubelet's unasked sizes), update changes it; on v1 one sentence and nothing left", () => {
    const id = `${tag}-huge`;
    const dir = join(work, 'huge');
    spawnSync('mkdir', ['-p', dir]);
    const sizes = readdirSync('/sys/kernel/mm/hugepages')
      .map((n) => Number(/^hugepages-(\d+)kB$/.exec(n)?.[1]))
      .map((kb) => (kb >= 1 << 20 ? `${kb >> 20}GB` : kb >= 1 << 10 ? `${kb >> 10}MB` : `${kb}KB`));
    expect(sizes).toContain('2MB');
    writeConfig(dir, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.linux.resources.hugepageLimits = sizes.map((pageSize) => ({ pageSize, limit: pageSize === '2MB' ? 8 << 20 : 0 }));
      c.process.args = ['sleep', '120'];
    });
    const layout = detectCgroups();
    const created = oci(['create', '--bundle', dir, id]);
    if (layout.kind !== 'v2') {
      expect(created).toMatchObject({
        code: 1,
        stderr: 'novabox-oci: huge page limits are set on cgroup v2 only, and this host has cgroup v1 hierarchies\n',
      });
      expect(leftovers()).toEqual([]);
      return;
    }
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const cg = join(layout.root, 'novabox-oci', id);
    for (const size of sizes)
      expect(readFileSync(join(cg, `hugetlb.${size}.max`), 'utf8').trim()).toBe(size === '2MB' ? String(8 << 20) : '0');
    const resources = join(work, 'huge-resources.json');
    writeFileSync(resources, JSON.stringify({ hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }] }));
    expect(oci(['update', '--resources', resources, id])).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(join(cg, 'hugetlb.2MB.max'), 'utf8').trim()).toBe(String(4 << 20));
    writeFileSync(resources, JSON.stringify({ hugepageLimits: [{ pageSize: '3MB', limit: 0 }] }));
    expect(oci(['update', '--resources', resources, id]).stderr).toBe(
      `novabox-oci: config.json: linux.resources.hugepageLimits[0].pageSize 3MB is not a huge page size of this host (it has ${sizes.join(', ')})\n`,
    );
    expect(oci(['delete', '--force', id]).code).toBe(0);
    expect(waitUntil(() => leftovers().length === 0)).toBe(true);
  });

  it('an op that fails at create is named, and nothing is left', () => {
    const id = `${tag}-badcwd`;
    const dir = join(work, 'badcwd');
    spawnSync('mkdir', ['-p', dir]);
    writeConfig(dir, (c) => {
      c.root.path = join(bundle, 'rootfs');
      c.process.cwd = '/no/such/dir';
    });
    const r = oci(['create', '--bundle', dir, id]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^novabox-oci: chdir \/no\/such\/dir: .*\(op \d+ of \d+\)\n$/);
    expect(leftovers()).toEqual([]);
  });

  it.each<[string, (dir: string) => void, RegExp]>([
    ['no config.json', () => {}, /^novabox-oci: the bundle .* has no config\.json\n$/],
    [
      'invalid JSON',
      (dir) => writeFileSync(join(dir, 'config.json'), '{"ociVersion": '),
      /^novabox-oci: .*config\.json is not valid JSON: .*\n$/,
    ],
    [
      'an unknown ociVersion major',
      (dir) => writeConfig(dir, (c) => (c.ociVersion = '2.0.0')),
      /^novabox-oci: config\.json: ociVersion "2\.0\.0" is not a version novabox-oci reads \(1\.x\)\n$/,
    ],
    [
      'a field novabox does not support',
      (dir) => writeConfig(dir, (c) => (c.linux.intelRdt = { closID: 'x' })),
      /^novabox-oci: config\.json: linux\.intelRdt is not supported by novabox-oci\n$/,
    ],
    [
      'a seccomp agent',
      (dir) => writeConfig(dir, (c) => (c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock' })),
      /^novabox-oci: config\.json: linux\.seccomp\.listenerPath is not supported by novabox-oci \(no seccomp agent\)\n$/,
    ],
  ])('create with %s: one sentence, exit 1, nothing left', (_what, make, message) => {
    const dir = mkdtempSync(join(work, 'bad-'));
    make(dir);
    const log = join(work, 'bad.log');
    rmSync(log, { force: true });
    const r = oci(['--log', log, '--log-format', 'json', 'create', '--bundle', dir, `${tag}-bad`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    // containerd's go-runc reads the error back from the log's JSON lines
    const lines = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([{ level: 'error', msg: r.stderr.slice('novabox-oci: '.length, -1), time: expect.any(String) }]);
    expect(leftovers()).toEqual([]);
  });

  it('an id in use, a missing container, and refused globals: one sentence each', () => {
    const id = `${tag}-dup`;
    expect(oci(['create', '--bundle', bundle, id]).code).toBe(0);
    const dup = oci(['create', '--bundle', bundle, id]);
    expect(dup).toMatchObject({ code: 1, stderr: `novabox-oci: container id "${id}" is already in use\n` });
    expect(state(id).status).toBe('created');
    expect(oci(['delete', id]).code).toBe(0);
    for (const verb of ['state', 'start', 'kill', 'delete']) {
      expect(oci([verb, `${tag}-none`])).toMatchObject({ code: 1, stderr: `novabox-oci: container "${tag}-none" does not exist\n` });
    }
    expect(oci(['--systemd-cgroup', 'state', id]).stderr).toMatch(/^novabox-oci: --systemd-cgroup is not supported: .*\n$/);
    expect(oci(['state', '../x']).stderr).toMatch(/^novabox-oci: invalid container id "\.\.\/x"/);
    expect(leftovers()).toEqual([]);
  });

  it('features and spec print documents', () => {
    const f = JSON.parse(oci(['features']).stdout);
    expect(f).toMatchObject({ ociVersionMin: '1.0.0', linux: { cgroup: { systemd: false } } });
    const again = oci(['spec', '--bundle', bundle]);
    expect(again.stderr).toMatch(/^novabox-oci: spec: .*config\.json exists already\n$/);
  });
});
