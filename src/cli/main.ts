/**
 * The novabox command line. Commands register themselves on one commander program;
 * errors map to exit codes in one table. Heavy modules are imported by the command
 * that needs them, so `novabox run` loads neither a database nor an HTTP server.
 */
import { Command, CommanderError } from 'commander';
import { newContext, reportError, type CliContext } from './context.js';
import { register as registerRun } from './commands/run.js';
import { FULL_BUNDLE, runParsedLine } from './run-action.js';
import { register as registerPs } from './commands/ps.js';
import { register as registerRm } from './commands/rm.js';
import { register as registerServer } from './commands/server/index.js';
import { register as registerFlavor } from './commands/flavor.js';
import { register as registerKeypair } from './commands/keypair.js';
import { register as registerConsole } from './commands/console.js';
import { register as registerNetwork } from './commands/network.js';
import { register as registerDoctor } from './commands/doctor.js';
import { register as registerImage } from './commands/image.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerAutostart } from './commands/autostart.js';
import { register as registerEvent } from './commands/event.js';
import { register as registerCompletion } from './commands/completion.js';
import { register as registerVolume } from './commands/volume.js';
import { trace } from '../util/trace.js';
export { exitNow } from '../util/exit.js';
export { cacheable } from '../util/cache-hint.js';

trace('main loaded');

declare const NOVABOX_VERSION: string;
export const VERSION = typeof NOVABOX_VERSION === 'string' ? NOVABOX_VERSION : '0.0.0-dev';

export { EXIT_CODES, requireRoot, type CliContext } from './context.js';

const GROUPS: Record<string, (program: Command, ctx: CliContext, argv: string[]) => void> = {
  run: registerRun,
  ps: registerPs,
  rm: registerRm,
  server: registerServer,
  flavor: registerFlavor,
  keypair: registerKeypair,
  console: registerConsole,
  network: registerNetwork,
  doctor: registerDoctor,
  image: registerImage,
  serve: registerServe,
  autostart: registerAutostart,
  event: registerEvent,
  completion: registerCompletion,
  volume: registerVolume,
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
  // completion describes every group: it builds them all, as help does
  const only =
    word !== undefined && word !== 'completion' && GROUPS[word] && !argv.includes('--help') && !argv.includes('-h') ? word : undefined;
  for (const [name, register] of Object.entries(GROUPS)) if (!only || name === only) register(program, ctx, argv);
  program.addHelpText(
    'after',
    `
Exit status: 0 success; 2 bad input; 3 not found; 4 conflict (wrong state, locked,
name in use); 5 not root; 1 anything else. \`run\` returns the container's own status
(see \`novabox run --help\`).`,
  );
  return program;
}

/**
 * Runs the command line; FULL_BUNDLE when this is one command's bundle (dist/verbs/, see
 * scripts/build.mjs) and the line wanted another command's module while the program was
 * built (help, an unknown verb): nothing was done or printed, bin/novabox runs the line
 * again with the full CLI.
 */
export async function main(argv: string[]): Promise<number | typeof FULL_BUNDLE> {
  // `run` with an ordinary command line skips building commander's program (run-args.ts)
  const fast = runParsedLine(argv);
  // this bundle has every module `run` reaches: a stand-in's FULL_BUNDLE cannot come from it
  if (fast) return fast.then((code) => (code === FULL_BUNDLE ? 1 : code));
  const ctx = newContext(argv);
  try {
    const program = buildProgram(ctx, argv);
    trace('program built');
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    // only buildProgram reaches the stand-ins (the dispatch tables' register functions)
    if ((err as { code?: unknown } | null)?.code === 'NOVABOX_FULL_BUNDLE') return FULL_BUNDLE;
    if (err instanceof CommanderError) {
      // help and version end here with exit code 0; usage errors were already printed
      return err.exitCode === 0 ? 0 : 2;
    }
    return reportError(err, ctx);
  }
}
