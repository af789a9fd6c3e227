import type { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { collect } from './common.js';
import { BadRequest } from '../../../errors.js';

export function registerExec(server: Command, ctx: CliContext): void {
  server
    .command('exec')
    .description('run a command inside a running server, like podman exec')
    .argument('<server>', 'name or id')
    .argument('<command...>', 'command and arguments (after --)')
    .option('-i, --interactive', 'keep stdin attached')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('-e, --env <NAME=value>', 'environment variable (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory')
    .option('-u, --user <uid[:gid]>', 'user and group')
    .passThroughOptions()
    .addHelpText(
      'after',
      "\nExit status: the command's own; 126 not executable; 127 not found.\n\nExample:\n  novabox server exec web1 -- sh -c 'echo hi > /root/f'",
    )
    .action(async (name: string, command: string[], o) => {
      if (command[0] === '--') command = command.slice(1);
      if (!command.length) throw new BadRequest('no command given: novabox server exec SERVER -- COMMAND [ARGS...]');
      const c = await ctx.compute();
      ctx.exitCode = await c.exec(
        name,
        { command, env: o.env, workdir: o.workdir, user: o.user, interactive: Boolean(o.interactive), tty: Boolean(o.tty) },
        c.localCaller(),
        { stderr: (l) => ctx.stderr(l + '\n') },
      );
    });
}
