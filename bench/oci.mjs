#!/usr/bin/env node
// novabox-oci beside runc and crun on one bundle, round-robin in the same run: per
// container, create -> start -> the init's exit -> delete of /bin/true (issue 19's bare
// CLI sequence). The exit is seen the same way for all three (/proc/<pid>/stat gone or a
// zombie: the init's parent, the creating CLI, has exited). Run as root.
//   node bench/oci.mjs [ROUNDS]      (default 30; RUNTIMES="novabox-oci runc" for a subset)
import { execFileSync, spawnSync } from 'node:child_process';
import {
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
const all = { 'novabox-oci': join(ROOT, 'bin/novabox-oci'), runc: 'runc', crun: 'crun' };
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
try {
  for (let i = 0; i < rounds; i++) {
    for (const n of names) {
      const root = join(work, `root-${n}`);
      const id = `bench-${i}`;
      const pidFile = join(work, `${n}.pid`);
      const t0 = process.hrtime.bigint();
      run(all[n], ['--root', root, 'create', '--bundle', bundle, '--pid-file', pidFile, id]);
      const pid = Number(readFileSync(pidFile, 'utf8'));
      run(all[n], ['--root', root, 'start', id]);
      while (!gone(pid)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      run(all[n], ['--root', root, 'delete', id]);
      times[n].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const base = times.runc ? median(times.runc) : undefined;
console.log(`create -> start -> exit -> delete of /bin/true, ${rounds} rounds, medians:`);
for (const n of names) {
  const m = median(times[n]);
  console.log(`  ${n.padEnd(12)} ${m.toFixed(1).padStart(7)} ms${base ? `   ${(m / base).toFixed(2)}x runc` : ''}`);
}
