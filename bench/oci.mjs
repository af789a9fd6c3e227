#!/usr/bin/env node
// novabox-oci beside runc and crun, round-robin in the same run (issue 19's speed section):
//  1. the bare CLI sequence on one bundle: per container, create -> start -> the init's
//     exit -> delete of /bin/true. The exit is seen the same way for all three
//     (/proc/<pid>/stat gone or a zombie: the init's parent, the creating CLI, has exited).
//  2. end to end under containerd: `ctr run --rm --runc-binary RUNTIME busybox true`, with
//     a private containerd (its own socket, root and state, as test/integration/
//     oci-containerd.test.ts starts one) and novabox's busybox image imported into it.
//  3. end to end under Docker (where dockerd is installed): `docker run --rm --runtime X
//     --network none busybox true`, with a private dockerd (test/integration/oci-docker.test.ts's).
// Run as root, NODE_EXTRA_CA_CERTS unset.
//   node bench/oci.mjs [ROUNDS]      (default 30; RUNTIMES="novabox-oci runc" for a subset;
//                                     CTR=0, DOCKER=0 skip the containerd and Docker parts; OCI_BIN, RUNC_BIN: other
//                                     executables, e.g. a wrapper timing each call)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  closeSync,
  mkdirSync,
  openSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  copyFileSync,
  chmodSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const rounds = Number(process.argv[2] ?? 30);
const all = { 'novabox-oci': process.env.OCI_BIN ?? join(ROOT, 'bin/novabox-oci'), runc: 'runc', crun: 'crun' };
const names = (process.env.RUNTIMES ?? Object.keys(all).join(' ')).split(' ').filter((n) => n in all);
const work = mkdtempSync(join(tmpdir(), 'bench-oci-'));
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
delete env.NODE_OPTIONS;

const bundle = join(work, 'bundle');
for (const d of ['rootfs/bin', 'rootfs/proc', 'rootfs/sys', 'rootfs/dev', 'rootfs/tmp']) mkdirSync(join(bundle, d), { recursive: true });
copyFileSync('/bin/busybox', join(bundle, 'rootfs/bin/busybox'));
chmodSync(join(bundle, 'rootfs/bin/busybox'), 0o755);
for (const a of ['sh', 'true']) symlinkSync('busybox', join(bundle, 'rootfs/bin', a));
execFileSync(all['novabox-oci'], ['spec', '--bundle', bundle], { env });
const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
config.process.args = ['/bin/true'];
writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));

function gone(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat[stat.lastIndexOf(')') + 2] === 'Z';
  } catch {
    return true;
  }
}

// the init keeps create's stdio (as with runc): a file, never a pipe spawnSync would wait on
const errFile = join(work, 'stderr');
function run(cmd, args) {
  const fd = openSync(errFile, 'w');
  const r = spawnSync(cmd, args, { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${readFileSync(errFile, 'utf8')}`);
}

const times = Object.fromEntries(names.map((n) => [n, []]));
/** CPU time of this process's reaped children (/proc/self/stat cutime + cstime, in ms): the runtime's own work,
 *  which the host's load does not inflate as it does the wall time (the container's init is not counted) */
const ticks = 100; // USER_HZ
function childCpuMs() {
  const stat = readFileSync('/proc/self/stat', 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[13]) + Number(f[14])) * 1000) / ticks;
}
const cpu = Object.fromEntries(names.map((n) => [n, 0]));
try {
  for (let i = 0; i < rounds; i++) {
    for (const n of names) {
      const root = join(work, `root-${n}`);
      const id = `bench-${i}`;
      const pidFile = join(work, `${n}.pid`);
      const t0 = process.hrtime.bigint();
      const c0 = childCpuMs();
      run(all[n], ['--root', root, 'create', '--bundle', bundle, '--pid-file', pidFile, id]);
      const pid = Number(readFileSync(pidFile, 'utf8'));
      run(all[n], ['--root', root, 'start', id]);
      while (!gone(pid)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      run(all[n], ['--root', root, 'delete', id]);
      times[n].push(Number(process.hrtime.bigint() - t0) / 1e6);
      cpu[n] += childCpuMs() - c0;
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
function report(title, t, cpuMs) {
  const base = t.runc ? median(t.runc) : undefined;
  console.log(`${title}, ${rounds} rounds, medians${cpuMs ? " (and the CLI processes' CPU time per container, mean)" : ''}:`);
  for (const n of names) {
    const m = median(t[n]);
    const c = cpuMs
      ? `   cpu ${(cpuMs[n] / rounds).toFixed(1).padStart(5)} ms${cpuMs.runc ? ` ${(cpuMs[n] / cpuMs.runc).toFixed(2)}x` : ''}`
      : '';
    console.log(`  ${n.padEnd(12)} ${m.toFixed(1).padStart(7)} ms${base ? `   ${(m / base).toFixed(2)}x runc` : ''}${c}`);
  }
}
console.log(`load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
report('create -> start -> exit -> delete of /bin/true', times, cpu);

if (process.env.CTR !== '0') await underContainerd();
if (process.env.DOCKER !== '0' && spawnSync('sh', ['-c', 'command -v dockerd']).status === 0) await underDocker();

/** The busybox image as `novabox image save` writes it (an OCI archive), into `dir`. */
function saveBusybox(dir) {
  const archive = join(dir, 'busybox.tar');
  const save = spawnSync(join(ROOT, 'bin/novabox'), ['image', 'save', 'busybox', '--file', archive], {
    env: { ...env, NOVABOX_ROOT: join(dir, 'nb') },
    encoding: 'utf8',
  });
  if (save.status !== 0) throw new Error(`novabox image save: ${save.stderr}`);
  return archive;
}

function waitFor(done, what, ms = 30_000) {
  const until = Date.now() + ms;
  while (!done()) {
    if (Date.now() > until) throw new Error(`${what} did not start`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

/**
 * `docker run --rm --runtime X --network none busybox true` with each runtime, in paired
 * rounds, on a dockerd of the bench's own (its own socket, data and exec roots, no bridge,
 * no iptables; cgroupfs under a parent of its own), as test/integration/oci-docker.test.ts
 * starts one. Docker 20.10 loads the image from `novabox image save`'s archive with the
 * manifest.json it reads added.
 */
async function underDocker() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-dk-'));
  const sock = join(dir, 'docker.sock');
  const docker = (args) => spawnSync('docker', ['-H', `unix://${sock}`, ...args], { encoding: 'utf8', env, timeout: 120_000 });
  const parent = `bench-dk-${process.pid}`;
  const runDockerExisted = existsSync('/run/docker');
  const x = join(dir, 'x');
  mkdirSync(x);
  execFileSync('tar', ['-xf', saveBusybox(dir), '-C', x]);
  const blob = (digest) => `blobs/sha256/${digest.split(':')[1]}`;
  const index = JSON.parse(readFileSync(join(x, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(join(x, blob(index.manifests[0].digest)), 'utf8'));
  writeFileSync(
    join(x, 'manifest.json'),
    JSON.stringify([
      { Config: blob(manifest.config.digest), RepoTags: ['busybox:latest'], Layers: manifest.layers.map((l) => blob(l.digest)) },
    ]),
  );
  execFileSync('tar', ['-cf', join(dir, 'busybox-docker.tar'), '-C', x, '.']);
  const runtimes = names
    .filter((n) => n !== 'runc')
    .flatMap((n) => [
      '--add-runtime',
      `${n}=${n === 'crun' ? execFileSync('sh', ['-c', 'command -v crun'], { encoding: 'utf8' }).trim() : all[n]}`,
    ]);
  const daemon = spawn(
    'dockerd',
    [
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '-H',
      `unix://${sock}`,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--exec-opt',
      'native.cgroupdriver=cgroupfs',
      '--cgroup-parent',
      `/${parent}`,
      ...runtimes,
    ],
    { stdio: 'ignore' },
  );
  const t = Object.fromEntries(names.map((n) => [n, []]));
  try {
    waitFor(() => existsSync(sock) && docker(['version']).status === 0, 'dockerd', 60_000);
    const load = docker(['load', '-i', join(dir, 'busybox-docker.tar')]);
    if (load.status !== 0) throw new Error(`docker load: ${load.stderr}`);
    for (let i = 0; i < rounds; i++) {
      for (const n of names) {
        const t0 = process.hrtime.bigint();
        const r = docker(['run', '--rm', '--runtime', n, '--network', 'none', 'busybox', 'true']);
        if (r.status !== 0) throw new Error(`docker run with ${n}: ${r.stderr}`);
        t[n].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    spawnSync('sh', ['-c', `grep -o '${dir}/[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    rmSync(dir, { recursive: true, force: true });
    spawnSync('sh', ['-c', `rmdir /sys/fs/cgroup/*/${parent} /sys/fs/cgroup/${parent} 2>/dev/null`]);
    if (!runDockerExisted) rmSync('/run/docker', { recursive: true, force: true });
  }
  report('docker run --rm --network none busybox true (Docker 20.10)', t);
}

/** `ctr run --rm` with each runtime, in paired rounds, on a containerd of the bench's own. */
async function underContainerd() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-ctr-'));
  const sock = join(dir, 'containerd.sock');
  const ns = `bench-${process.pid}`;
  const ctr = (args) => spawnSync('ctr', ['-a', sock, '-n', ns, ...args], { encoding: 'utf8', env, timeout: 60_000 });
  const archive = saveBusybox(dir);
  mkdirSync(join(dir, 'c'));
  writeFileSync(
    join(dir, 'c/config.toml'),
    `version = 2\nroot = "${dir}/c/root"\nstate = "${dir}/c/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${sock}"\n[ttrpc]\n  address = "${sock}.ttrpc"\n`,
  );
  const daemon = spawn('containerd', ['--config', join(dir, 'c/config.toml')], { stdio: 'ignore' });
  const t = Object.fromEntries(names.map((n) => [n, []]));
  try {
    waitFor(() => existsSync(sock) && ctr(['version']).status === 0, 'containerd', 20_000);
    const imp = ctr(['images', 'import', '--base-name', 'docker.io/library/busybox', archive]);
    if (imp.status !== 0) throw new Error(`ctr images import: ${imp.stderr}`);
    const image = 'docker.io/library/busybox:busybox';
    const bins = { ...all, runc: process.env.RUNC_BIN ?? execFileSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).trim() };
    if (names.includes('crun')) bins.crun = execFileSync('sh', ['-c', 'command -v crun'], { encoding: 'utf8' }).trim();
    for (let i = 0; i < rounds; i++) {
      for (const n of names) {
        const t0 = process.hrtime.bigint();
        const r = ctr(['run', '--rm', '--runc-binary', bins[n], image, `b-${n}-${i}`, 'true']);
        if (r.status !== 0) throw new Error(`ctr run with ${n}: ${r.stderr}`);
        t[n].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    spawnSync('sh', ['-c', `grep -o '${dir}/[^ ]*' /proc/self/mountinfo | xargs -r -n1 umount -l`]);
    rmSync(dir, { recursive: true, force: true });
    // the namespace's parent cgroups (containerd makes /<namespace>/ in each hierarchy)
    spawnSync('sh', ['-c', `rmdir /sys/fs/cgroup/*/${ns} /sys/fs/cgroup/${ns} 2>/dev/null`]);
    rmSync(join('/run/containerd/runc', ns), { recursive: true, force: true });
  }
  report('ctr run --rm busybox true (containerd 1.6, runc shim v2)', t);
}
