import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cgroupParentFor } from './census.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/novabox');
/**
 * Inside the QEMU guest of test/vm (set by its init): the CPUs are emulated, so the
 * concurrency tests use fewer processes there. They test SQLite, leases and veths, which
 * the host runs at full size; the guest is there for the cgroup v2 paths.
 */
export const IN_GUEST = process.env.NOVABOX_IN_GUEST === '1';

export interface CliResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function cliEnv(stateRoot: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NOVABOX_ROOT: stateRoot,
    NOVABOX_CGROUP_PARENT: cgroupParentFor(stateRoot),
    ...extra,
  };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.NODE_OPTIONS;
  return env;
}

/** Run bin/novabox to completion. */
export function runCli(
  args: string[],
  opts: { root: string; input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; spawn?: SpawnOptions } = { root: '' },
): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: cliEnv(opts.root, opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      ...opts.spawn,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? (IN_GUEST ? 60_000 : 20_000));
    child.on('error', fail);
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      done({ exitCode, signal, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/**
 * A bridge network of the test root's own: test files run in parallel, and other
 * worktrees' tests on the same host too, so each root gets a bridge `nbt<hex>` and a
 * random 10.x.y.0/24 that no host route (hence no other root's bridge) overlaps.
 */
export function testNetwork(): { bridge: string; subnet: string } {
  const routes = readFileSync('/proc/net/route', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 8);
  const le = (hex: string) => Buffer.from(hex, 'hex').reverse().readUInt32BE(0);
  for (;;) {
    const x = 100 + Math.floor(Math.random() * 150);
    const y = Math.floor(Math.random() * 256);
    const base = ((10 << 24) | (x << 16) | (y << 8)) >>> 0;
    const clash = routes.some((f) => {
      const mask = le(f[7]);
      if (mask === 0) return false;
      const m = (mask & 0xffffff00) >>> 0; // the shorter of the two prefixes
      return (le(f[1]) & m) >>> 0 === (base & m) >>> 0;
    });
    if (!clash) return { bridge: `nbt${randomBytes(4).toString('hex')}`, subnet: `10.${x}.${y}.0/24` };
  }
}

/** Remove a test root's bridge and NAT table (the kernel objects outlive the directory). */
export function removeNetwork(bridge: string | undefined): void {
  if (!bridge) return;
  spawnSync('nft', ['delete', 'table', 'ip', `novabox_${bridge.replace(/[^A-Za-z0-9_]/g, '_')}`], { stdio: 'ignore' });
  spawnSync('nft', ['delete', 'table', 'ip', `novabox_${bridge.replace(/[^A-Za-z0-9_]/g, '_')}_ports`], { stdio: 'ignore' });
  spawnSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
}

/** A fresh NOVABOX_ROOT for one test file, with a bridge network of its own (testNetwork). */
export function tempRoot(
  prefix = 'nbx-test-',
  network: { nat?: boolean; mtu?: number } = {},
): { root: string; remove: () => void; bridge: string; subnet: string } {
  const root = mkdtempSync(join(process.env.NOVABOX_TEST_TMP ?? tmpdir(), prefix));
  const net = testNetwork();
  writeFileSync(
    join(root, 'config.json'),
    JSON.stringify({ network: { ...net, nat: network.nat ?? false, ...(network.mtu ? { mtu: network.mtu } : {}) } }, null, 2) + '\n',
  );
  const remove = () => {
    removeNetwork(net.bridge);
    removeRoot(root);
  };
  return { root, remove, ...net };
}

/** A test root's directory and its cgroup parent, in every hierarchy (only if empty: a leak stays visible). */
export function removeRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
  for (const m of cgroupMounts()) {
    try {
      rmdirSync(join(m, cgroupParentFor(root)));
    } catch {
      /* absent, or not empty */
    }
  }
}

function cgroupMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => ['cgroup', 'cgroup2'].includes(f[f.indexOf('-') + 1]))
    .map((f) => f[4]);
}

/**
 * Start bin/novabox with NOVABOX_TEST_PAUSE=`point` (src/util/test-pause.ts), wait until
 * it stopped itself there, and kill -9 it: a CLI killed at a known point of the real code
 * path. Fails if it exits or does not reach the point within `withinMs`.
 */
export async function killCliAt(
  point: string,
  args: string[],
  root: string,
  withinMs = IN_GUEST ? 60_000 : 15_000,
  env: NodeJS.ProcessEnv = {},
): Promise<void> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: cliEnv(root, { ...env, NOVABOX_TEST_PAUSE: point }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const closed = new Promise<void>((r) => child.on('close', () => r()));
  const state = () => {
    try {
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      return 'gone';
    }
  };
  const until = Date.now() + withinMs;
  let s = state();
  while (s !== 'T' && s !== 'gone' && s !== 'Z' && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 5));
    s = state();
  }
  child.kill('SIGKILL');
  await closed;
  if (s !== 'T') throw new Error(`the CLI did not stop at "${point}" (state ${s}): ${stderr}`);
}
