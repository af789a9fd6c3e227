import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, type CliContext } from '../../../src/cli/main.js';
import { parseRunArgs, RUN_BOOLEAN_FLAGS, RUN_COLLECTED, RUN_NETWORKS, RUN_USERNS, RUN_VALUE_FLAGS } from '../../../src/cli/run-args.js';

type Parsed = { image?: string; command: string[]; opts: Record<string, unknown> } | 'error';

/** What commander makes of `novabox run <args>`: the action's arguments, or 'error'. */
async function viaCommander(args: string[]): Promise<Parsed> {
  const ctx: CliContext = {
    exitCode: 0,
    stdout: () => {},
    stderr: () => {},
    debug: false,
    compute: () => Promise.reject(new Error('unused')),
  };
  const program = buildProgram(ctx, ['run', ...args]);
  let got: Parsed = 'error';
  runCommand(program).action((image: string | undefined, command: string[], o: Record<string, unknown>) => {
    got = { image, command, opts: { ...o } };
  });
  try {
    await program.parseAsync(['run', ...args], { from: 'user' });
  } catch {
    return 'error';
  }
  return got;
}

function runCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === 'run')!;
}

/** undefined-valued keys dropped: commander's opts() has no key for an absent flag */
function clean(p: ReturnType<typeof parseRunArgs>): Parsed | undefined {
  if (!p) return undefined;
  return { image: p.image, command: p.command, opts: Object.fromEntries(Object.entries(p.opts).filter(([, v]) => v !== undefined)) };
}

const SAME: string[][] = [
  [],
  ['busybox'],
  ['--rm', 'busybox', 'true'],
  ['--rm', '--network', 'none', '--memory', '512m', '--pids-limit', '1024', '--rootfs', '/r', 'true'],
  ['--rm', '--name', 'web', '--hostname', 'h1', '-m', '64m', '--cpus', '0.5', 'busybox', 'sh', '-c', 'echo $$'],
  ['-e', 'A=1', '--env', 'B=2', '-eC=3', '--env=D=4', 'busybox', 'env'],
  ['-v', '/a:/b', '--volume', '/c:/d:ro', '-v/e:/f', '--security-opt', 'seccomp=unconfined', 'busybox'],
  ['-it', 'busybox', 'sh'],
  ['-ti', '--rm', 'busybox', 'sh'],
  ['-i', '-t', '--interactive', '--tty', 'busybox'],
  ['-iew=x', 'busybox'],
  ['--read-only', '--dry-run', '-w', '/tmp', '-u', '1000:1000', 'busybox', 'id'],
  ['--name=a', '--name', 'b', 'busybox'],
  ['--network=host', '--network', 'none', 'busybox'],
  ['--userns', 'host', '--userns=auto', 'busybox', 'true'],
  ['--pids-limit=7', 'busybox'],
  ['--pids-limit', '007', 'busybox'],
  ['--name', '--rm', 'busybox'],
  ['--name', '', 'busybox'],
  ['--name=', 'busybox'],
  ['--rm', '--', 'busybox', 'true'],
  ['--rm', '--', '--weird', 'x'],
  ['--rm', 'busybox', '--', 'sh'],
  ['--rm', 'busybox', '--name', 'x', '-h', '--help'],
  ['--rootfs', '/r', '--', 'sh', '-c', 'true'],
  ['--rm', '-', 'x'],
  ['--rm', '--'],
];

const COMMANDER_ONLY: string[][] = [
  ['--help'],
  ['-h'],
  ['--rm', '--bogus', 'busybox'],
  ['--debug', 'busybox'],
  ['--name'],
  ['-e'],
  ['--pids-limit', '0', 'busybox'],
  ['--pids-limit', 'x', 'busybox'],
  ['--pids-limit=-1', 'busybox'],
  ['--network', 'bridge', 'busybox'],
  ['--userns', 'keep-id', 'busybox'],
  ['--rm=yes', 'busybox'],
  ['-ie', 'A=1', 'busybox'],
  ['-x', 'busybox'],
  ['-1', 'busybox'],
  ['-itz', 'busybox'],
];

describe('run arguments without commander', () => {
  it.each(SAME.map((a) => [a.join(' ') || '(none)', a]))('%s: as commander', async (_, args) => {
    const mine = clean(parseRunArgs(args as string[]));
    expect(mine).toBeDefined();
    expect(mine).toEqual(await viaCommander(args as string[]));
  });

  it.each(COMMANDER_ONLY.map((a) => [a.join(' '), a]))('%s: left to commander', (_, args) => {
    expect(parseRunArgs(args as string[])).toBeUndefined();
  });

  it("has commander's run flags, no more and no fewer, each of the same kind", () => {
    const ctx = { exitCode: 0, stdout: () => {}, stderr: () => {}, debug: false } as unknown as CliContext;
    const cmd = runCommand(buildProgram(ctx, ['run']));
    const theirs: Record<string, string> = {};
    for (const o of cmd.options) {
      const kind = o.required ? (Array.isArray(o.defaultValue) ? 'collected' : 'value') : o.optional ? 'optional' : 'boolean';
      for (const flag of [o.short, o.long]) if (flag && flag !== '-h' && flag !== '--help') theirs[flag] = `${o.attributeName()} ${kind}`;
      if (o.attributeName() === 'network') expect(o.argChoices).toEqual(RUN_NETWORKS);
      if (o.attributeName() === 'userns') expect(o.argChoices).toEqual(RUN_USERNS);
    }
    const mine: Record<string, string> = {};
    for (const [flag, key] of Object.entries(RUN_VALUE_FLAGS)) mine[flag] = `${key} ${RUN_COLLECTED.has(key) ? 'collected' : 'value'}`;
    for (const [flag, key] of Object.entries(RUN_BOOLEAN_FLAGS)) mine[flag] = `${key} boolean`;
    expect(mine).toEqual(theirs);
  });
});
