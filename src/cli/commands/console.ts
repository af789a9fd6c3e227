import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { BadRequest } from '../../errors.js';

export function register(program: Command, ctx: CliContext): void {
  const consoleCmd = program.command('console').description('server consoles');
  const log = consoleCmd.command('log').description('console output of servers');
  log
    .command('show')
    .description("a server's console output: what its processes wrote, plus novabox's own start/stop lines")
    .argument('<server>', 'name or id')
    .option('--lines <n>', 'only the last N lines', (v: string) => {
      if (!/^\d+$/.test(v)) throw new BadRequest(`invalid --lines ${JSON.stringify(v)}: expected a whole number`);
      return Number(v);
    })
    .action(async (name: string, o) => {
      const c = await ctx.compute();
      ctx.stdout(c.consoleLog(name, c.localCaller(), o.lines));
    });
}
