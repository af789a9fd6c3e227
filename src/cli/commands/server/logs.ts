import type { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { consoleOptions, showConsole } from '../console.js';

/** `server logs [-f]`: `console log show` under the name podman users type. */
export function registerLogs(server: Command, ctx: CliContext): void {
  consoleOptions(server.command('logs').description('console output of a server (short for "console log show"), like podman logs'))
    .addHelpText('after', '\nExample:\n  novabox server logs -f web1')
    .action((name: string, o) => showConsole(ctx, name, o));
}
