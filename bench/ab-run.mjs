#!/usr/bin/env node
// bench/ab-run.mjs - interleaved A/B of two novabox launchers on the same `run` command,
// with `node -e 0` in the same rounds: wall-time medians, the median of paired
// differences (B - A), and each NOVABOX_TRACE milestone's median delta for A and B.
//
//   node bench/ab-run.mjs A_LAUNCHER B_LAUNCHER [ROUNDS] [-- run options and command]   (as root)
//
// e.g. node bench/ab-run.mjs /work/main/bin/novabox bin/novabox 40
// Each launcher is exec'ed directly (its shebang counts). Default command: the one
// start-latency.sh times (--network none --memory 512m --pids-limit 1024 --rootfs
// <anchor rootfs> true). The order within a round alternates. A private NOVABOX_ROOT
// under /run is made and removed; a run that fails stops the benchmark.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';

const argv = process.argv.slice(2);
const dd = argv.indexOf('--');
const [a, b, rounds = '40'] = dd < 0 ? argv : argv.slice(0, dd);
if (!a || !b) {
  console.error('usage: node bench/ab-run.mjs A_LAUNCHER B_LAUNCHER [ROUNDS] [-- run args]');
  process.exit(2);
}
const rootfs = `${process.env.ANCHOR_DIR ?? '/var/tmp/anchors'}/bundle/rootfs`;
const runArgs = dd < 0 ? ['--network', 'none', '--memory', '512m', '--pids-limit', '1024', '--rootfs', rootfs, 'true'] : argv.slice(dd + 1);
// AB_DIR: where the private NOVABOX_ROOT goes (/run is tmpfs; /var/tmp is the disk, as /var/lib/novabox)
const root = mkdtempSync(`${process.env.AB_DIR ?? '/run'}/novabox-bench-ab-`);
// novabox keeps its cgroup parent (NOVABOX_CGROUP_PARENT, "novabox"): the ones this run
// makes go again at the end, so the host's cgroups are left as they were found
const parentName = process.env.NOVABOX_CGROUP_PARENT || 'novabox';
const cgParents = () =>
  readdirSync('/sys/fs/cgroup')
    .map((h) => `/sys/fs/cgroup/${h}/${parentName}`)
    .concat(`/sys/fs/cgroup/${parentName}`)
    .filter((d) => existsSync(d));
const parentsBefore = new Set(cgParents());
const env = { ...process.env, NOVABOX_ROOT: root };
delete env.NODE_EXTRA_CA_CERTS;
delete env.NODE_OPTIONS;

const median = (v) => {
  const s = [...v].sort((x, y) => x - y);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

function once(cmd, args, trace) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, {
    env: trace ? { ...env, NOVABOX_TRACE: '1' } : env,
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  const marks = new Map();
  const at = new Map();
  for (const line of r.stderr.split('\n')) {
    const m = /^trace\s+(\S+) ms\s+\+\s*([\d.]+)\s+(.*)$/.exec(line);
    if (m) marks.set(m[3], Number(m[2]));
    if (m) at.set(m[3], Number(m[1]));
  }
  return { wall, marks, at };
}

const res = { A: [], B: [], node: [], tA: [], tB: [] };
try {
  // warm-up: writes each side's code cache if a build removed it
  for (const l of [a, b]) once(l, ['run', '--rm', ...runArgs], false);
  for (let i = 0; i < Number(rounds); i++) {
    const order = i % 2 ? ['B', 'A'] : ['A', 'B'];
    for (const side of order) {
      // plain runs for wall time; a traced run for the milestones (tracing costs a little)
      res[side].push(once(side === 'A' ? a : b, ['run', '--rm', ...runArgs], false).wall);
    }
    res.node.push(once(process.execPath, ['-e', '0'], false).wall);
    for (const side of order) res[`t${side}`].push(once(side === 'A' ? a : b, ['run', '--rm', ...runArgs], true));
  }
} finally {
  rmSync(root, { recursive: true, force: true });
  for (const d of cgParents()) {
    try {
      if (!parentsBefore.has(d)) rmdirSync(d);
    } catch {
      /* in use by a container of another root: it stays */
    }
  }
}
const diffs = res.A.map((x, i) => res.B[i] - x);
const f = (x) => x.toFixed(2).padStart(8);
console.log(
  `rounds=${rounds} load=${(await import('node:os'))
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
console.log(`${'A'.padStart(8)}${'B'.padStart(8)}  (wall ms, medians)`);
console.log(`${f(median(res.A))}${f(median(res.B))}  wall`);
console.log(
  `${f(median(res.A) - median(res.node))}${f(median(res.B) - median(res.node))}  above node -e 0 (${median(res.node).toFixed(2)})`,
);
console.log(`median of paired B-A: ${median(diffs).toFixed(2)} ms`);
// AB_SPAN="from..to": a stretch between two milestones, paired per round (much less noisy
// than the wall time on a loaded host when a change moves only that stretch)
const [from, to] = (process.env.AB_SPAN ?? 'monitor spawned..exec event').split('..');
const span = (t) => (t.at.has(from) && t.at.has(to) ? t.at.get(to) - t.at.get(from) : undefined);
const spans = res.tA.map((t, i) => [span(t), span(res.tB[i])]).filter(([x, y]) => x !== undefined && y !== undefined);
if (spans.length) {
  console.log(
    `"${from}" -> "${to}": ${f(median(spans.map(([x]) => x)))}${f(median(spans.map(([, y]) => y)))}  medians; paired B-A: ${median(spans.map(([x, y]) => y - x)).toFixed(2)} ms (${spans.length} rounds)`,
  );
}
for (const k of ['tA', 'tB']) res[k] = res[k].map((t) => t.marks);
const labels = [];
for (const m of [...res.tA, ...res.tB]) for (const k of m.keys()) if (!labels.includes(k)) labels.push(k);
console.log('milestone deltas (medians of traced runs; a label missing on one side shows -):');
for (const l of labels) {
  const col = (t) => {
    const v = t.map((m) => m.get(l)).filter((x) => x !== undefined);
    return v.length ? f(median(v)) : '       -';
  };
  console.log(`${col(res.tA)}${col(res.tB)}  ${l}`);
}
