import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { BadRequest } from '../../errors.js';

function wholeNumber(v: string): number {
  if (!/^\d+$/.test(v)) throw new BadRequest(`invalid --lines ${JSON.stringify(v)}: expected a whole number`);
  return Number(v);
}

/**
 * Print a server's console log, or follow it (`-f`) until the server stops, Ctrl-C or
 * SIGTERM; an interrupted follow is a normal end (exit 0), as `tail -f` piped into a
 * script expects. Shared by `console log show` and `server logs`.
 */
export async function showConsole(ctx: CliContext, name: string, o: { lines?: number; follow?: boolean }): Promise<void> {
  const c = await ctx.compute();
  if (!o.follow) {
    ctx.stdout(c.consoleLog(name, c.localCaller(), o.lines));
    return;
  }
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await c.followConsole(name, c.localCaller(), { lines: o.lines, write: ctx.stdout, signal: abort.signal });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export function consoleOptions(cmd: Command): Command {
  return cmd
    .argument('<server>', 'name or id')
    .option('--lines <n>', 'only the last N lines', wholeNumber)
    .option('-f, --follow', 'keep printing lines as they are written, until the server stops (or Ctrl-C)');
}

export function register(program: Command, ctx: CliContext): void {
  const consoleCmd = program.command('console').description('server consoles');
  const log = consoleCmd.command('log').description('console output of servers');
  consoleOptions(
    log.command('show').description("a server's console output: what its processes wrote, plus novabox's own start/stop lines"),
  )
    .addHelpText('after', '\nExamples:\n  novabox console log show web1 --lines 20\n  novabox console log show --follow web1')
    .action((name: string, o) => showConsole(ctx, name, o));
}
