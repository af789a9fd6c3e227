import type { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { addOutputOptions, formatList, formatShow, outputOptionsFrom } from '../../output.js';

export function registerEvents(server: Command, ctx: CliContext): void {
  const event = server.command('event').description('instance actions of a server (what happened, when, with what result)');
  const list = event
    .command('list')
    .description('list the actions of a server, newest first')
    .argument('<server>', 'name or id')
    .option('--long', 'more columns');
  addOutputOptions(list, 'list');
  list.action(async (name: string, o) => {
    const c = await ctx.compute();
    const s = c.find(name, c.localCaller());
    const rows = c.store.actions.list(s.id).map((a) => ({
      'Request ID': a.requestId,
      'Server ID': s.id,
      Action: a.action,
      'Start Time': a.startTime,
      Message: a.message,
      'Project ID': a.projectId,
      'User ID': a.userId,
    }));
    const cols = ['Request ID', 'Server ID', 'Action', 'Start Time', 'Message'];
    ctx.stdout(formatList(o.long ? [...cols, 'Project ID', 'User ID'] : cols, rows, outputOptionsFrom(o)));
  });
  const show = event
    .command('show')
    .description('one action with its events')
    .argument('<server>', 'name or id')
    .argument('<request-id>', 'request id');
  addOutputOptions(show, 'show');
  show.action(async (name: string, requestId: string, o) => {
    const c = await ctx.compute();
    const s = c.find(name, c.localCaller());
    const a = c.store.actions.get(s.id, requestId);
    ctx.stdout(
      formatShow(
        {
          action: a.action,
          events: a.events,
          instance_uuid: s.id,
          message: a.message,
          project_id: a.projectId,
          request_id: a.requestId,
          start_time: a.startTime,
          user_id: a.userId,
        },
        outputOptionsFrom(o),
      ),
    );
  });
}
