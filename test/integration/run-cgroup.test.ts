/**
 * `novabox run`'s cgroup is made and removed by the container monitor (the plan's cgroup
 * steps, native-bindings/src/cgroup.c), for real, as root: the limits are in place while
 * the container runs, its failure is one sentence with nothing left behind, and when
 * the monitor cannot confirm the removal the CLI does it. The census after every test
 * must match the one before it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { census, cgroupParentFor } from '../helpers/census.js';
import { BIN, cliEnv, runCli } from '../helpers/run-cli.js';
import { useRunRoot } from '../helpers/run-root.js';

const isRoot = process.getuid?.() === 0;

/** The cgroup2 mount (pure v2: /sys/fs/cgroup; hybrid: /sys/fs/cgroup/unified), if any. */
function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[f.indexOf('-') + 1] === 'cgroup2') return f[4];
  }
  return undefined;
}

async function waitFor<T>(get: () => T | undefined, ms = 5000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) {
    const v = get();
    if (v !== undefined) return v;
  }
  throw new Error('timed out');
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The init pid of the one container under root once the CLI recorded it running. */
function runningInit(root: string): number | undefined {
  for (const id of existsSync(join(root, 'containers')) ? readdirSync(join(root, 'containers')) : []) {
    try {
      const s = JSON.parse(readFileSync(join(root, 'containers', id, 'state.json'), 'utf8')) as { status: string; initPid?: number };
      if (s.status === 'running' && s.initPid) return s.initPid;
    } catch {
      /* not written yet */
    }
  }
  return undefined;
}

describe.skipIf(!isRoot)('run: the monitor makes and removes the cgroup (root)', () => {
  let root: string;
  useRunRoot((r) => (root = r));
  const run = (args: string[]) => runCli(['run', ...args], { root });

  it('the limits are in place while the container runs; the cgroup goes with it, --rm or not', async () => {
    const child = spawn(BIN, ['run', '--name', 'kept', '--pids-limit', '7', 'busybox', 'sleep', '30'], {
      env: cliEnv(root),
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // a failed expectation must not leave the container running into the next tests:
    // SIGTERM to the CLI reaches the container, and the CLI then removes everything
    onTestFinished(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    });
    // the monitor makes the cgroup before the clone; the init joins the v1 hierarchies as
    // its first ops once the CLI lets it go (cgroup2: born there): wait for all of them
    const procsOf = (dirs: string[]) => dirs.map((d) => readOptional(join(d, 'cgroup.procs'))?.trim());
    const dirs = await waitFor(() => {
      const c = census(root).cgroups;
      const init = runningInit(root);
      return c.some((d) => existsSync(join(d, 'pids.max'))) && init && procsOf(c).every((p) => p === String(init)) ? c : undefined;
    });
    const pidsMax = dirs.map((d) => join(d, 'pids.max')).find(existsSync)!;
    expect(readFileSync(pidsMax, 'utf8').trim()).toBe('7');
    // every hierarchy holds the init, and only it
    const procs = procsOf(dirs);
    expect(new Set(procs).size).toBe(1);
    expect(Number(procs[0])).toBe(runningInit(root));
    process.kill(Number(procs[0]), 'SIGKILL');
    expect(await exited).toBe(137);
    expect(census(root).cgroups).toEqual([]);
    const r = await runCli(['rm', 'kept'], { root });
    expect(r.exitCode).toBe(0);
  });

  it('a cgroup the kernel refuses: one sentence, exit 1, nothing left', async (ctx) => {
    ctx.skip(!cgroup2Mount(), "no cgroup2 hierarchy mounted: cgroup.max.descendants is cgroup2's");
    // cgroup.max.descendants = 0 on the parent: the container's mkdir fails with EAGAIN,
    // after the monitor made the levels of the hierarchies before it (v1), if any.
    const parent = join(cgroup2Mount()!, cgroupParentFor(root));
    mkdirSync(parent, { recursive: true });
    try {
      writeFileSync(join(parent, 'cgroup.max.descendants'), '0');
      const r = await run(['--rm', '--memory', '64m', 'busybox', 'true']);
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(
        new RegExp(
          `^novabox: cannot set up the container's cgroup: mkdir ${parent}/[0-9a-f]+: resource temporarily unavailable \\(EAGAIN\\)\\n$`,
        ),
      );
      expect(readdirSync(join(root, 'containers'))).toEqual([]);
    } finally {
      rmdirSync(parent);
    }
  });

  it('a monitor killed mid-run: the CLI removes the cgroup itself', async () => {
    const child = spawn(BIN, ['run', '--rm', 'busybox', 'sleep', '30'], { env: cliEnv(root), stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const monitor = await waitFor(() => {
      const c = census(root);
      return c.monitors.length === 1 && c.cgroups.length > 0 ? c.monitors[0] : undefined;
    });
    process.kill(monitor, 'SIGKILL');
    // the container's init survives its monitor: the CLI's remove() kills it with the cgroup
    expect(await exited).not.toBe(0);
    expect(census(root).cgroups).toEqual([]);
  });
});
