import { Command, CommanderError } from 'commander';
import { newContext, reportError } from './context.js';
import { registerList } from './commands/server/list.js';
export { exitNow } from '../util/exit.js';
export { cacheable } from '../util/cache-hint.js';
import { trace } from '../util/trace.js';
trace('main loaded');
export async function main(argv: string[]): Promise<number> {
  const ctx = newContext(argv);
  try {
    const program = new Command('novabox').option('--debug', 'x').enablePositionalOptions().exitOverride();
    const server = program.command('server').description('x');
    registerList(server, ctx);
    trace('program built');
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    return reportError(err, ctx);
  }
}
