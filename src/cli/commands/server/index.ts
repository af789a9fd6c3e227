import type { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { registerCreate } from './create.js';
import { registerList } from './list.js';
import { registerActions } from './actions.js';
import { registerExec } from './exec.js';
import { registerLogs } from './logs.js';
import { registerCp } from './cp.js';
import { registerStats } from './stats.js';
import { registerEvents } from './event.js';
import { registerImage } from './image.js';

/**
 * `server image ...` / `server rebuild` build only their own verbs (registerImage): the
 * other verbs' commander options cost a cold snapshot ~2 ms. Any other word, or help,
 * gets the whole group. `argv` is the command line after `novabox`.
 */
export function register(program: Command, ctx: CliContext, argv: string[] = []): void {
  const server = program
    .command('server')
    .description('long-lived containers as OpenStack-Nova-style servers (openstack server ... grammar)');
  const words = argv.filter((a) => !a.startsWith('-'));
  const verb = words[0] === 'server' ? words[1] : undefined;
  if ((verb === 'image' || verb === 'rebuild') && !argv.includes('--help') && !argv.includes('-h')) {
    registerImage(server, ctx);
    return;
  }
  registerCreate(server, ctx);
  registerList(server, ctx);
  registerActions(server, ctx);
  registerExec(server, ctx);
  registerLogs(server, ctx);
  registerCp(server, ctx);
  registerStats(server, ctx);
  registerEvents(server, ctx);
  registerImage(server, ctx);
}
