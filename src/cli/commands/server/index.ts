import type { Command } from 'commander';
import type { CliContext } from '../../main.js';
import { registerCreate } from './create.js';
import { registerList } from './list.js';
import { registerActions } from './actions.js';
import { registerExec } from './exec.js';
import { registerEvents } from './event.js';
import { registerImage } from './image.js';

export function register(program: Command, ctx: CliContext): void {
  const server = program
    .command('server')
    .description('long-lived containers as OpenStack-Nova-style servers (openstack server ... grammar)');
  registerCreate(server, ctx);
  registerList(server, ctx);
  registerActions(server, ctx);
  registerExec(server, ctx);
  registerEvents(server, ctx);
  registerImage(server, ctx);
}
