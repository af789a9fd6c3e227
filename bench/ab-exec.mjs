#!/usr/bin/env node
// bench/ab-exec.mjs - interleaved A/B of two novabox launchers on `server exec SERVER -- true`,
// with `node -e 0` in the same rounds: wall-time medians and the median of paired
// differences (B - A).
//
//   node bench/ab-exec.mjs A_LAUNCHER B_LAUNCHER [ROUNDS]   (as root)
//
// Each side gets its own state root (AB_DIR, default /run) and cgroup parent, and one
// busybox server (--network none) made before the rounds and deleted after them; each
// launcher execs into its own. The order within a round alternates. A failing exec stops
// the benchmark; the servers, roots and cgroup parents it made are removed at the end.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';

const [a, b, rounds = '40'] = process.argv.slice(2);
if (!a || !b) {
  console.error('usage: node bench/ab-exec.mjs A_LAUNCHER B_LAUNCHER [ROUNDS]');
  process.exit(2);
}
const base = { ...process.env };
delete base.NODE_EXTRA_CA_CERTS;
delete base.NODE_OPTIONS;
const sides = [a, b].map((launcher, i) => {
  const root = mkdtempSync(`${process.env.AB_DIR ?? '/run'}/novabox-bench-abx-`);
  const parent = `novabox-bench-abx-${process.pid}-${i}`;
  return { launcher, root, parent, env: { ...base, NOVABOX_ROOT: root, NOVABOX_CGROUP_PARENT: parent }, times: [] };
});

const median = (v) => {
  const s = [...v].sort((x, y) => x - y);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

function run(side, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(side.launcher, args, { env: side.env, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${side.launcher} ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return wall;
}

const nodeTimes = [];
try {
  for (const s of sides) {
    run(s, ['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', '--network', 'none', '--wait', 'abx']);
    run(s, ['server', 'exec', 'abx', '--', 'true']); // warm-up: code caches
  }
  const n = Number(rounds);
  for (let i = 0; i < n; i++) {
    const order = i % 2 ? [1, 0] : [0, 1];
    for (const k of order) sides[k].times.push(run(sides[k], ['server', 'exec', 'abx', '--', 'true']));
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0'], { env: base });
    nodeTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const diffs = sides[0].times.map((t, i) => sides[1].times[i] - t);
  console.log(`server exec -- true, ${n} rounds (ms, medians)`);
  console.log(`A ${a}: ${median(sides[0].times).toFixed(1)}`);
  console.log(`B ${b}: ${median(sides[1].times).toFixed(1)}`);
  console.log(`node -e 0: ${median(nodeTimes).toFixed(1)}`);
  console.log(`median of paired differences (B - A): ${median(diffs).toFixed(2)}`);
} finally {
  for (const s of sides) {
    spawnSync(s.launcher, ['server', 'delete', '--force', 'abx'], { env: s.env, stdio: 'ignore' });
    rmSync(s.root, { recursive: true, force: true });
    for (const h of readdirSync('/sys/fs/cgroup')) {
      const d = `/sys/fs/cgroup/${h}/${s.parent}`;
      if (existsSync(d))
        try {
          rmdirSync(d);
        } catch {
          /* still busy: left for doctor */
        }
    }
    const d2 = `/sys/fs/cgroup/${s.parent}`;
    if (existsSync(d2))
      try {
        rmdirSync(d2);
      } catch {
        /* busy */
      }
  }
}
