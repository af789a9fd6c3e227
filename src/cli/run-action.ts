/**
 * `novabox run`'s action, apart from its commander declaration (commands/run.ts): the
 * `run`-only bundle (run-main.ts) calls it with argv parsed by run-args.ts, without
 * commander.
 */
import { BadRequest } from '../errors.js';
import { requireRoot, type CliContext } from './context.js';
import { trace } from '../util/trace.js';
import type { RunCliOptions } from './run-args.js';
import type { RunOptions } from '../runtime/run-command.js';

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
  const { runCommand } = await import('../runtime/run-command.js');
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
      seccomp: securityOpts(o.securityOpt),
      dryRun: Boolean(o.dryRun),
    },
    ctx,
  );
}

