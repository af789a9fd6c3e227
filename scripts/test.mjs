#!/usr/bin/env node
// npm test: the native C tests, the unit tests (no root), and as root the integration
// tests on this host and the end-to-end tests (the real openstack client against
// `novabox serve`); then, where QEMU and Debian's cloud kernel are installed, the
// integration tests again inside a pure cgroup-v2 guest (test/vm/run.sh).
// Ends with one line: "N passed, N failed, N skipped".
//
//   node scripts/test.mjs            everything that can run here
//   node scripts/test.mjs --no-vm    skip the guest
//   node scripts/test.mjs --in-vm    what the guest runs: integration tests only
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runGuards } from './guards.mjs';

const args = new Set(process.argv.slice(2));
const inVm = args.has('--in-vm');
const isRoot = process.getuid?.() === 0;
const totals = { passed: 0, failed: 0, skipped: 0 };
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
delete env.NODE_OPTIONS;

function section(title) {
  process.stdout.write(`\n== ${title}\n`);
}

function vitest(label, paths) {
  section(label);
  const dir = mkdtempSync(join(tmpdir(), 'nbx-report-'));
  const report = join(dir, 'report.json');
  const r = spawnSync(
    process.execPath,
    ['node_modules/vitest/vitest.mjs', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...paths],
    { stdio: 'inherit', env },
  );
  let counted = false;
  if (existsSync(report)) {
    const j = JSON.parse(readFileSync(report, 'utf8'));
    totals.passed += j.numPassedTests;
    totals.failed += j.numFailedTests + (j.numFailedTestSuites && !j.numFailedTests ? j.numFailedTestSuites : 0);
    totals.skipped += j.numPendingTests + j.numTodoTests;
    counted = true;
  }
  rmSync(dir, { recursive: true, force: true });
  if (!counted || (r.status !== 0 && totals.failed === 0)) totals.failed += 1;
}

/** Type check, lint, layer check (scripts/guards.mjs): each one that fails fails the run. */
function guards() {
  section('guards: type check, lint, layers');
  totals.failed += runGuards(env).length;
}

function nativeTests() {
  section('native-bindings (C)');
  const r = spawnSync('make', ['-s', '-C', 'native-bindings', 'test'], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const out = r.stdout.toString();
  process.stdout.write(out);
  let failedCount = 0;
  for (const m of out.matchAll(/(\d+) passed, (\d+) failed/g)) {
    totals.passed += Number(m[1]);
    failedCount += Number(m[2]);
  }
  totals.failed += failedCount;
  if (r.status !== 0 && failedCount === 0) totals.failed += 1;
}

function vmTests() {
  const kernels = existsSync('/boot') ? readdirSync('/boot').filter((f) => /^vmlinuz-.*-cloud-amd64$/.test(f)) : [];
  const qemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { env }).status === 0;
  section('integration tests in a pure cgroup v2 guest (test/vm)');
  if (!isRoot || !kernels.length || !qemu) {
    process.stdout.write('skipped: needs root, qemu-system-x86_64 and linux-image-cloud-amd64\n');
    totals.skipped += 1;
    return;
  }
  const r = spawnSync('bash', ['test/vm/run.sh', '--', 'node', 'scripts/test.mjs', '--in-vm'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
    maxBuffer: 64 << 20,
  });
  const out = r.stdout.toString();
  process.stdout.write(out);
  const lines = [...out.matchAll(/^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$/gm)];
  const last = lines.at(-1);
  if (last) {
    totals.passed += Number(last[1]);
    totals.failed += Number(last[2]);
    totals.skipped += Number(last[3] ?? 0);
  }
  if (!last || (r.status !== 0 && Number(last[2]) === 0)) totals.failed += 1;
}

/** The real `openstack` client and openstacksdk against `novabox serve` (host only). */
function e2eTests() {
  const client = spawnSync('sh', ['-c', 'command -v openstack'], { env }).status === 0;
  if (!isRoot || !client) {
    section('end-to-end tests (openstack client)');
    process.stdout.write('skipped: needs root and python3-openstackclient, python3-openstacksdk\n');
    totals.skipped += 1;
    return;
  }
  vitest('end-to-end tests (openstack client against novabox serve)', ['test/e2e']);
}

if (inVm) {
  vitest('integration tests (guest)', ['test/integration']);
} else {
  guards();
  nativeTests();
  vitest('unit tests', ['test/unit']);
  if (isRoot) vitest('integration tests (this host)', ['test/integration']);
  else {
    section('integration tests');
    process.stdout.write('skipped: not root\n');
  }
  e2eTests();
  if (!args.has('--no-vm')) vmTests();
}
process.stdout.write(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`);
process.exit(totals.failed ? 1 : 0);
