#!/usr/bin/env node
// npm test: the native C checks, the unit tests (no root), and as root the integration
// tests on this host and the end-to-end tests (the real openstack client against
// `novabox serve`; Debian's Horizon in headless Chromium against it); then, where QEMU and
// Debian's cloud kernel are installed, the integration tests again inside a pure cgroup-v2
// guest (test/vm/run.sh).
//
// Counts tests, not files: every test that did not run is counted as skipped, with its
// reason (a test's `ctx.skip(cond, reason)`, or the whole section's: not root, no
// openstack client, no Horizon or Chromium packages, no qemu or kernel image). The C checks
// are counted on their own line ("C checks: N passed, N failed"); a failed C check is also
// a failure on the last line.
// With CI=true a section that could not run is a failure: its tests count as failed.
// The last line is always "N passed, N failed, N skipped" (CI reads it).
//
//   node scripts/test.mjs            everything that can run here
//   node scripts/test.mjs --no-vm    skip the guest (counted as skipped, by choice)
//   node scripts/test.mjs --in-vm    what the guest runs: integration tests only
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { runGuards } from './guards.mjs';
import { horizonMissing } from './horizon-needs.mjs';

const args = new Set(process.argv.slice(2));
const inVm = args.has('--in-vm');
const isRoot = process.getuid?.() === 0;
const ci = /^(1|true|yes)$/i.test(process.env.CI ?? '');
// The guest's whole run (emulated CPUs): about 17-20 min on a quiet 2-CPU host for the
// integration suite with the escape corpus; a hang fails here, well inside CI's 90 min.
const VM_TIMEOUT_S = Number(process.env.NOVABOX_VM_TIMEOUT || 2400);
const totals = { passed: 0, failed: 0, skipped: 0 };
const cChecks = { passed: 0, failed: 0 };
/** skip reason -> tests skipped for it */
const skipReasons = new Map();
/** sections that could not run at all: { label, tests, reason } */
const notRun = [];
/** every failed test, a line each, repeated in the summary (CI shows only the output's tail) */
const failures = [];
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
delete env.NODE_OPTIONS;

function section(title) {
  process.stdout.write(`\n== ${title}\n`);
}

function addSkips(reason, n) {
  if (n > 0) skipReasons.set(reason, (skipReasons.get(reason) ?? 0) + n);
}

/**
 * Run vitest on `paths`; with `countOnly` run none of the tests (a name pattern nothing
 * matches) and only count them. Returns the section's counts.
 */
function vitestRun(paths, countOnly) {
  const dir = mkdtempSync(join(tmpdir(), 'nbx-report-'));
  const report = join(dir, 'report.json');
  const skipsFile = join(dir, 'skips.json');
  const reporters = countOnly ? ['--reporter=json'] : ['--reporter=default', '--reporter=json', '--reporter=./scripts/vitest-skips.mjs'];
  const r = spawnSync(
    process.execPath,
    ['node_modules/vitest/vitest.mjs', 'run', ...reporters, `--outputFile.json=${report}`, ...(countOnly ? ['-t', 'a^'] : []), ...paths],
    { stdio: countOnly ? ['ignore', 'ignore', 'inherit'] : 'inherit', env: { ...env, NBX_SKIPS_FILE: skipsFile } },
  );
  let counts;
  if (existsSync(report)) {
    const j = JSON.parse(readFileSync(report, 'utf8'));
    counts = {
      total: j.numTotalTests,
      passed: j.numPassedTests,
      // a file that failed to load has no failed test: count it as one
      failed: j.numFailedTests + (j.numFailedTestSuites && !j.numFailedTests ? j.numFailedTestSuites : 0),
      skipped: j.numPendingTests + j.numTodoTests,
      skips: existsSync(skipsFile) ? JSON.parse(readFileSync(skipsFile, 'utf8')) : [],
      failures: failedTests(j),
    };
  }
  rmSync(dir, { recursive: true, force: true });
  if (!counts) return { total: 0, passed: 0, failed: 1, skipped: 0, skips: [], failures: ['vitest itself failed (no report)'] };
  if (r.status !== 0 && counts.failed === 0 && !countOnly) counts.failed = 1; // this section's, not the running total
  return counts;
}

/** "file > test: first line of the error" for each failed test or file that failed to load */
function failedTests(j) {
  const out = [];
  const first = (msgs) =>
    String(msgs?.[0] ?? '')
      .split('\n')
      .find((l) => l.trim())
      ?.trim()
      .slice(0, 300) ?? '';
  for (const f of j.testResults ?? []) {
    const file = relative(process.cwd(), f.name);
    const failed = (f.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of failed) out.push(`${file} > ${a.fullName ?? a.title}: ${first(a.failureMessages)}`);
    if (!failed.length && f.status === 'failed') out.push(`${file}: ${first([f.message])}`);
  }
  return out;
}

function vitest(label, paths) {
  section(label);
  const c = vitestRun(paths, false);
  for (const f of c.failures) failures.push(`${label}: ${f}`);
  if (c.failed && !c.failures.length) failures.push(`${label}: vitest failed with no test named (see its output above)`);
  totals.passed += c.passed;
  totals.failed += c.failed;
  totals.skipped += c.skipped;
  const noted = c.skips.filter((s) => s.note);
  for (const s of noted) addSkips(s.note, 1);
  const unnoted = c.skipped - noted.length;
  if (unnoted > 0) {
    addSkips('no reason given (a test skipped without one: a defect)', unnoted);
    for (const s of c.skips.filter((x) => !x.note)) process.stdout.write(`skipped without a reason: ${s.file} > ${s.name}\n`);
  }
  process.stdout.write(`${label}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped\n`);
  return c;
}

/** A section that cannot run here: count its tests, and say why. */
function cannotRun(label, tests, reason) {
  section(label);
  process.stdout.write(`not run (${tests} tests): ${reason}\n`);
  notRun.push({ label, tests, reason });
  if (ci) totals.failed += tests;
  else {
    totals.skipped += tests;
    addSkips(`${label}: ${reason}`, tests);
  }
}

let integrationCount;
function countIntegration() {
  integrationCount ??= vitestRun(['test/integration'], true).total;
  return integrationCount;
}

/** Type check, lint, layer check (scripts/guards.mjs): each one that fails fails the run. */
function guards() {
  section('guards: type check, lint, layers');
  const failed = runGuards(env);
  totals.failed += failed.length;
  for (const g of failed) failures.push(`guard: ${g}`);
}

function nativeTests() {
  section('native-bindings (C checks)');
  const r = spawnSync('make', ['-s', '-C', 'native-bindings', 'test'], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const out = r.stdout.toString();
  process.stdout.write(out);
  let failed = 0;
  for (const m of out.matchAll(/(\d+) passed, (\d+) failed/g)) {
    cChecks.passed += Number(m[1]);
    failed += Number(m[2]);
  }
  if (r.status !== 0 && failed === 0) failed = 1; // the build or a check program failed
  cChecks.failed += failed;
  totals.failed += failed;
  if (failed) failures.push(`C checks: ${failed} failed (see the native-bindings section above)`);
  process.stdout.write(`C checks: ${cChecks.passed} passed, ${cChecks.failed} failed\n`);
}

function vmTests() {
  const label = 'integration tests in a pure cgroup v2 guest (test/vm)';
  if (args.has('--no-vm')) {
    // asked for: counted as skipped, not a failure even in CI
    section(label);
    const n = countIntegration();
    process.stdout.write(`not run (${n} tests): --no-vm\n`);
    totals.skipped += n;
    addSkips(`${label}: --no-vm`, n);
    return;
  }
  const kernels = existsSync('/boot') ? readdirSync('/boot').filter((f) => /^vmlinuz-.*-cloud-amd64$/.test(f)) : [];
  const qemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { env }).status === 0;
  const missing = [
    !isRoot && 'not root',
    !qemu && 'no qemu-system-x86_64 (qemu-system-x86)',
    !kernels.length && 'no /boot/vmlinuz-*-cloud-amd64 (linux-image-cloud-amd64)',
  ].filter(Boolean);
  if (missing.length) return cannotRun(label, countIntegration(), missing.join(', '));
  section(label);
  // the host's `image build debian` result goes in as a read-only disk (the guest has no
  // network), with the memory to unpack and import it
  const debian = debianDrive();
  const drive = debian ? ['--drive', `debian=${debian}`, '--mem', String(Math.max(4096, Number(process.env.NOVABOX_VM_MEM || 0)))] : [];
  if (!debian) process.stdout.write('(no `image build debian` cache entry on this host: the guest skips the system container tests)\n');
  const r = spawnSync(
    'bash',
    ['test/vm/run.sh', '--timeout', String(VM_TIMEOUT_S), ...drive, '--', 'node', 'scripts/test.mjs', '--in-vm'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env,
      maxBuffer: 64 << 20,
    },
  );
  const out = r.stdout.toString();
  process.stdout.write(out);
  const last = [...out.matchAll(/^(\d+) passed, (\d+) failed, (\d+) skipped\s*$/gm)].at(-1);
  let failed = 0;
  if (last) {
    totals.passed += Number(last[1]);
    failed = Number(last[2]);
    totals.skipped += Number(last[3]);
    // the guest printed its reasons; carry them into this summary
    for (const m of out.slice(0, last.index).matchAll(/^ {2}(\d+) skipped: (.*)$/gm)) addSkips(`guest: ${m[2]}`, Number(m[1]));
    for (const m of out.slice(0, last.index).matchAll(/^FAILED: (.*)$/gm)) failures.push(`guest: ${m[1]}`);
  }
  if (!last) failures.push(`${label}: the guest printed no summary (exit ${r.status}${r.signal ? `, ${r.signal}` : ''})`);
  if (!last || (r.status !== 0 && failed === 0)) failed += 1;
  totals.failed += failed;
}

/**
 * The cache entry of `novabox image build debian --release bookworm` that the host's
 * integration tests used (test/helpers/debian-image.ts notes its path in
 * <VM dir>/debian-entry), packed for the guest as debian-<key>.tar.zst in the VM's work
 * dir, remade when the entry is newer; undefined when there is none.
 */
function debianDrive() {
  const dir = process.env.NOVABOX_VM_DIR || '/var/tmp/novabox-vm';
  let entry = '';
  try {
    entry = readFileSync(join(dir, 'debian-entry'), 'utf8').trim();
  } catch {
    return undefined;
  }
  if (!entry || !existsSync(join(entry, 'meta.json'))) return undefined;
  const key = entry.split('/').pop();
  const mtime = statSync(join(entry, 'meta.json')).mtimeMs;
  const out = join(dir, `debian-${key}.tar.zst`);
  if (existsSync(out) && statSync(out).mtimeMs >= mtime) return out;
  const tmp = `${out}.${process.pid}`;
  const r = spawnSync('sh', ['-c', 'tar -C "$1" -cf - "$2" | zstd -q -T0 -3 -o "$3" -f', 'sh', join(entry, '..'), key, tmp], {
    stdio: 'inherit',
    env,
  });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    return undefined;
  }
  renameSync(tmp, out);
  // packs of other entries go
  for (const f of readdirSync(dir))
    if (f.startsWith('debian-') && f.endsWith('.tar.zst') && join(dir, f) !== out) rmSync(join(dir, f), { force: true });
  return out;
}

/** The real `openstack` client and openstacksdk against `novabox serve` (host only). */
function e2eTests() {
  const label = 'end-to-end tests (openstack client against novabox serve)';
  const client = spawnSync('sh', ['-c', 'command -v openstack'], { env }).status === 0;
  // openstacksdk on the python the client runs on (its #! line; the e2e test uses the same)
  const bin = client ? spawnSync('sh', ['-c', 'command -v openstack'], { env, encoding: 'utf8' }).stdout.trim() : '';
  const py = (bin && /^#!\s*(\S*python\S*)/.exec(readFileSync(bin, 'utf8').split('\n')[0])?.[1]) || 'python3';
  const sdk = spawnSync(py, ['-c', 'import openstack'], { env, stdio: 'ignore' }).status === 0;
  const missing = [
    !isRoot && 'not root',
    !client && 'no openstack client (python3-openstackclient)',
    !sdk && 'no openstacksdk (python3-openstacksdk)',
  ].filter(Boolean);
  const paths = ['--exclude', HORIZON_TEST, 'test/e2e'];
  if (missing.length) return cannotRun(label, vitestRun(paths, true).total, missing.join(', '));
  vitest(label, paths);
}

const HORIZON_TEST = 'test/e2e/horizon.test.ts';

/** Horizon (Debian's openstack-dashboard) in headless Chromium against `novabox serve` (host only). */
function horizonTests() {
  const label = "end-to-end test of OpenStack's dashboard (Horizon in headless Chromium)";
  const missing = horizonMissing();
  if (missing) return cannotRun(label, vitestRun([HORIZON_TEST], true).total, missing);
  vitest(label, [HORIZON_TEST]);
}

if (inVm) {
  vitest('integration tests (guest)', ['test/integration']);
} else {
  guards();
  nativeTests();
  vitest('unit tests', ['test/unit']);
  if (isRoot) integrationCount = vitest('integration tests (this host)', ['test/integration']).total;
  else cannotRun('integration tests (this host)', countIntegration(), 'not root');
  e2eTests();
  horizonTests();
  vmTests();
}

section('summary');
if (!inVm)
  process.stdout.write(`C checks: ${cChecks.passed} passed, ${cChecks.failed} failed (not in the counts below, but for failures)\n`);
for (const [reason, n] of skipReasons) process.stdout.write(`  ${n} skipped: ${reason}\n`);
for (const f of failures) process.stdout.write(`FAILED: ${f}\n`);
for (const s of notRun) {
  process.stdout.write(
    `NOT RUN: ${s.label}, ${s.tests} tests: ${s.reason}${ci ? ' (CI=true: counted as failed)' : ' (counted as skipped)'}\n`,
  );
}
process.stdout.write(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`);
process.exit(totals.failed ? 1 : 0);
