/**
 * `novabox run`'s action, apart from its commander declaration (commands/run.ts): the
 * `run`-only bundle (run-main.ts) calls it with argv parsed by run-args.ts, without
 * commander.
 */
import { BadRequest } from '../errors.js';
import { newContext, reportError, requireRoot, type CliContext } from './context.js';
import { trace } from '../util/trace.js';
import { parseRunArgs, type RunCliOptions } from './run-args.js';
import type { RunOptions } from '../compute/run.js';

function securityOpts(opts: string[]): boolean {
  let seccomp = true;
  for (const o of opts) {
    if (o === 'seccomp=unconfined') seccomp = false;
    else if (o !== 'no-new-privileges' && o !== 'no-new-privileges:true') {
      throw new BadRequest(`unsupported --security-opt ${JSON.stringify(o)}: only seccomp=unconfined and no-new-privileges`);
    }
  }
  return seccomp;
}

/** The run command's action, also called by main() and run-main.ts with argv parsed by run-args.ts. */
export async function runAction(image: string | undefined, command: string[], o: RunCliOptions, ctx: CliContext): Promise<void> {
  ctx.runStyleExit = true;
  trace('run action');
  const { runCommand } = await import('../compute/run.js');
  if (!o.dryRun) requireRoot();
  if (command[0] === '--') command = command.slice(1);
  if (o.rootfs && image !== undefined) command = image === '--' ? command : [image, ...command];
  else if (!o.rootfs && image === undefined) throw new BadRequest('no image given: try "novabox run --rm busybox echo hello"');
  ctx.exitCode = await runCommand(
    {
      image: o.rootfs ? undefined : image,
      rootfsDir: o.rootfs,
      command,
      name: o.name,
      hostname: o.hostname,
      memory: o.memory,
      cpus: o.cpus,
      pidsLimit: o.pidsLimit,
      env: o.env,
      workdir: o.workdir,
      user: o.user,
      interactive: Boolean(o.interactive),
      tty: Boolean(o.tty),
      network: o.network as RunOptions['network'],
      readOnly: Boolean(o.readOnly),
      remove: Boolean(o.rm),
      volumes: o.volume,
      publish: o.publish,
      seccomp: securityOpts(o.securityOpt),
      userns: o.userns,
      dryRun: Boolean(o.dryRun),
    },
    {
      stdout: ctx.stdout,
      stderr: ctx.stderr,
      network: async () => (await ctx.compute()).network,
      volumes: async () => (await ctx.compute()).volumes,
      ports: async () => (await ctx.compute()).ports,
    },
  );
}

/**
 * The answer of a bundle built without a module the line needs (dist/novabox-run-local.cjs
 * leaves out the store, the compute service and the first-use image paths; see
 * scripts/build.mjs): its stand-in threw NOVABOX_FULL_BUNDLE before `run` changed
 * anything, and bin/novabox runs the line again with dist/novabox-run.cjs.
 */
export const FULL_BUNDLE = 'full';

/**
 * An ordinary `run` line, run without building commander's program: argv (without node
 * and the script) as run-args.ts reads it. undefined: not such a line (another command,
 * help, an unusual or bad option): commander's CLI takes it. Both entries call this:
 * main.ts and the `run`-only bundles (run-main.ts).
 */
export function runParsedLine(argv: string[]): Promise<number | typeof FULL_BUNDLE> | undefined {
  const fast = argv[0] === 'run' ? parseRunArgs(argv.slice(1)) : undefined;
  if (!fast) return undefined;
  trace('run arguments parsed');
  const ctx = newContext(argv);
  ctx.debug = false; // as commander's preAction hook: --debug is an option of the program, before `run`
  return runAction(fast.image, fast.command, fast.opts, ctx).then(
    () => ctx.exitCode,
    (err: unknown) => ((err as { code?: unknown } | null)?.code === 'NOVABOX_FULL_BUNDLE' ? FULL_BUNDLE : reportError(err, ctx)),
  );
}
