/**
 * src/cli/run-main.ts, the entry of the `run`-only bundle: it takes the lines run-args.ts
 * accepts and gives every other line back (undefined) for bin/novabox to hand to the
 * full CLI. A dry run goes the whole way here without root or a native library.
 */
import { mkdtempSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { output } from '../../../src/cli/context.js';
import { main } from '../../../src/cli/run-main.js';

/** What the command writes to `fd` (src/cli/context.ts writes with output.writeSync). */
function capture(fd: 1 | 2): { text: string } {
  const got = { text: '' };
  const real = writeSync as (...a: unknown[]) => number;
  vi.spyOn(output, 'writeSync').mockImplementation(((f: number, ...rest: unknown[]) => {
    if (f !== fd) return real(f, ...rest);
    const s = String(rest[0]);
    got.text += s;
    return Buffer.byteLength(s);
  }) as typeof output.writeSync);
  return got;
}

describe('the run-only entry', () => {
  const rootfs = mkdtempSync(join(tmpdir(), 'nbx-run-main-'));
  afterAll(() => rmSync(rootfs, { recursive: true, force: true }));
  afterEach(() => vi.restoreAllMocks());

  it.each([
    [['run', '--help']],
    [['run', '-h']],
    [['run', '--bogus', 'busybox']],
    [['run', '--pids-limit', '0', 'busybox']],
    [['run', '--network', 'bridge', 'busybox']],
    [['run', '-ie', 'A=1', 'busybox']],
    [['run', '--memory']],
    [['ps']],
    [['--debug', 'run', 'busybox']],
    [[]],
  ])('gives %j back to the full CLI', (argv) => {
    expect(main(argv)).toBeUndefined();
  });

  it('runs a line it accepts: a dry run prints the plan and returns 0', async () => {
    const out = capture(1);
    const code = await main(['run', '--dry-run', '--network', 'none', '--hostname', 'h1', '-e', 'A=1', '--rootfs', rootfs, 'echo', 'hi']);
    expect(code).toBe(0);
    const plan = JSON.parse(out.text) as { container: { command: string[] }; plan: { ops: { op: string }[] } };
    expect(plan.container.command).toEqual(['echo', 'hi']);
    expect(plan.plan.ops.at(-1)?.op).toBe('exec');
  });

  it("maps a bad request to run's exit status 2 with one line on stderr", async () => {
    const err = capture(2);
    const code = await main(['run', '--dry-run', '--hostname', 'bad_host!', '--rootfs', rootfs, 'true']);
    expect(code).toBe(2);
    expect(err.text).toBe('novabox: invalid hostname "bad_host!"\n');
  });

  it.each([
    ['a file', '/etc/hostname'],
    ['a missing path', '/nonexistent/nbx-rootfs'],
  ])('refuses --rootfs on %s in one line', async (_what, path) => {
    const err = capture(2);
    expect(await main(['run', '--dry-run', '--rootfs', path, 'true'])).toBe(1);
    expect(err.text).toBe(`novabox: rootfs ${path} is not a directory\n`);
  });
});
