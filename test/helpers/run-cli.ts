import { spawn, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cgroupParentFor } from './census.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/novabox');

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
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', fail);
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      done({ exitCode, signal, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** A fresh NOVABOX_ROOT for one test file; the busybox layer is shared through a seeded copy. */
export function tempRoot(prefix = 'nbx-test-'): { root: string; remove: () => void } {
  const root = mkdtempSync(join(process.env.NOVABOX_TEST_TMP ?? tmpdir(), prefix));
  const remove = () => {
    rmSync(root, { recursive: true, force: true });
    // The per-root cgroup parent, in every hierarchy (only if empty: a leak stays visible).
    for (const m of cgroupMounts()) {
      try {
        rmdirSync(join(m, cgroupParentFor(root)));
      } catch {
        /* absent, or not empty */
      }
    }
  };
  return { root, remove };
}

function cgroupMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => ['cgroup', 'cgroup2'].includes(f[f.indexOf('-') + 1]))
    .map((f) => f[4]);
}
