/**
 * The novabox command line. Commands register themselves on one commander program;
 * errors map to exit codes in one table. Heavy modules are imported by the command
 * that needs them, so `novabox run` loads neither a database nor an HTTP server.
 */
import { Command, CommanderError } from 'commander';
import { NovaboxError, type ErrorCode } from '../errors.js';
import { register as registerRun, runAction } from './commands/run.js';
import { parseRunArgs } from './run-args.js';
import { register as registerPs } from './commands/ps.js';
import { register as registerRm } from './commands/rm.js';
import { register as registerServer } from './commands/server/index.js';
import { register as registerFlavor } from './commands/flavor.js';
import { register as registerConsole } from './commands/console.js';
import { register as registerNetwork } from './commands/network.js';
import { register as registerDoctor } from './commands/doctor.js';
import { register as registerImage } from './commands/image.js';
import { register as registerServe } from './commands/serve.js';
import { trace } from '../util/trace.js';
export { exitNow } from '../util/exit.js';

trace('main loaded');

declare const NOVABOX_VERSION: string;
export const VERSION = typeof NOVABOX_VERSION === 'string' ? NOVABOX_VERSION : '0.0.0-dev';

/**
 * One table: error code -> exit status. Documented in `novabox --help`. `run` keeps
 * podman's convention instead (1 for novabox's own errors, 125 for setup failures).
 */
export const EXIT_CODES: Record<ErrorCode, number> = {
  'bad-request': 2,
  'not-found': 3,
  conflict: 4,
  permission: 5,
  sys: 1,
  'op-failed': 125,
  internal: 1,
};

const RUN_EXIT_CODES: Record<ErrorCode, number> = {
  'bad-request': 1, 'not-found': 1, conflict: 1, permission: 1, sys: 1, 'op-failed': 125, internal: 1,
};

export interface CliContext {
  /** set by a command that wants a specific exit status */
  exitCode: number;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  debug: boolean;
  /** `run` maps errors as podman does */
  runStyleExit?: boolean;
  /** the compute service on the state database, opened on first use */
  compute: () => Promise<import('../compute/servers.js').ComputeService>;
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new NovaboxError('permission', 'novabox needs root: run it with sudo (rootless mode is not supported yet)');
  }
}

const GROUPS: Record<string, (program: Command, ctx: CliContext, argv: string[]) => void> = {
  run: registerRun,
  ps: registerPs,
  rm: registerRm,
  server: registerServer,
  flavor: registerFlavor,
  console: registerConsole,
  network: registerNetwork,
  doctor: registerDoctor,
  image: registerImage,
  serve: registerServe,
};

/**
 * The program with the command groups `argv` needs: only the one it names (each group
 * costs start-up time to build), every group for help, version or an unknown word.
 */
export function buildProgram(ctx: CliContext, argv: string[] = []): Command {
  const program = new Command('novabox')
    .description('Linux containers as OpenStack-Nova-style servers')
    .version(VERSION, '-V, --version')
    .option('--debug', 'show stack traces and extra detail on errors')
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout(s),
      writeErr: (s) => ctx.stderr(s),
    });
  program.hook('preAction', (cmd) => {
    ctx.debug = Boolean(cmd.opts().debug);
  });
  const word = argv.find((a) => !a.startsWith('-'));
  const only = word !== undefined && GROUPS[word] && !argv.includes('--help') && !argv.includes('-h') ? word : undefined;
  for (const [name, register] of Object.entries(GROUPS)) if (!only || name === only) register(program, ctx, argv);
  program.addHelpText('after', `
Exit status: 0 success; 2 bad input; 3 not found; 4 conflict (wrong state, locked,
name in use); 5 not root; 1 anything else. \`run\` returns the container's own status
(see \`novabox run --help\`).`);
  return program;
}

function lazyCompute(): CliContext['compute'] {
  let svc: Promise<import('../compute/servers.js').ComputeService> | undefined;
  return () => {
    svc ??= (async () => {
      requireRoot();
      const { openStore } = await import('../store/db.js');
      const { ComputeService } = await import('../compute/servers.js');
      trace('compute loaded');
      const svc = new ComputeService(openStore());
      trace('store open');
      return svc;
    })();
    return svc;
  };
}

/**
 * A reader that went away (`novabox server list | head -1`) must not kill us half way:
 * a `run` still has a container to clean up. Further output is dropped; the command ends
 * normally.
 */
function toleratePipeClose(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

/** process.stdout is built (loading node:stream) on first touch: only when we print. */
function writer(get: () => NodeJS.WriteStream): (s: string) => void {
  let stream: NodeJS.WriteStream | undefined;
  return (s) => {
    if (!stream) {
      stream = get();
      toleratePipeClose(stream);
    }
    stream.write(s);
  };
}

export async function main(argv: string[]): Promise<number> {
  const ctx: CliContext = {
    exitCode: 0,
    stdout: writer(() => process.stdout),
    stderr: writer(() => process.stderr),
    debug: argv.includes('--debug'),
    compute: lazyCompute(),
  };
  // `run` with an ordinary command line skips building commander's program (run-args.ts)
  const fast = argv[0] === 'run' ? parseRunArgs(argv.slice(1)) : undefined;
  try {
    if (fast) {
      trace('run arguments parsed');
      ctx.debug = false; // as commander's preAction hook: --debug is an option of the program, before `run`
      await runAction(fast.image, fast.command, fast.opts, ctx);
      return ctx.exitCode;
    }
    const program = buildProgram(ctx, argv);
    trace('program built');
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version end here with exit code 0; usage errors were already printed
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof NovaboxError) {
      ctx.stderr(`novabox: ${err.message}\n`);
      if (err.hint) ctx.stderr(`hint: ${err.hint}\n`);
      if (ctx.debug && err.stack) ctx.stderr(err.stack + '\n');
      return (ctx.runStyleExit ? RUN_EXIT_CODES : EXIT_CODES)[err.code];
    }
    const e = err as Error;
    ctx.stderr(`novabox: ${e?.message ?? String(err)}\n`);
    if (ctx.debug && e?.stack) ctx.stderr(e.stack + '\n');
    return 1;
  }
}
