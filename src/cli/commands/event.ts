import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { addOutputOptions, formatList, outputOptionsFrom } from '../output.js';
import { BadRequest } from '../../errors.js';
import type { ActivityRecord } from '../../compute/events.js';

const COLUMNS = ['Time', 'Server', 'Server ID', 'Action', 'Status', 'Event', 'Request ID', 'Message'];

function row(r: ActivityRecord): Record<string, unknown> {
  return {
    Time: r.time,
    Server: r.server_name,
    'Server ID': r.server_id,
    Action: r.action,
    Status: r.status,
    Event: r.event,
    'Request ID': r.request_id,
    Message: r.message,
  };
}

/** One record as a line of a followed stream: JSON, or the table's columns separated by spaces. */
export function streamLine(r: ActivityRecord, format: 'json' | 'table' | 'value'): string {
  if (format === 'json') return `${JSON.stringify(r)}\n`;
  const cells = [r.time, r.server_name ?? r.server_id, r.action, r.status, r.event ?? '-', r.request_id];
  return `${format === 'table' ? [cells[0], cells[1].padEnd(16), cells[2].padEnd(12), cells[3].padEnd(8), cells[4].padEnd(26), cells[5]].join(' ') : cells.join(' ')}\n`;
}

export function register(program: Command, ctx: CliContext): void {
  const event = program.command('event').description('what happens to servers: their instance actions as one stream (podman events)');
  const list = event
    .command('list')
    .description('instance actions of every server, oldest first; --follow streams new ones as they happen')
    .option('--follow', 'keep printing actions as they happen (one JSON object per line with -f json), until Ctrl-C')
    .addHelpText(
      'after',
      `
Each action gives a "started" record when it is recorded and one record per event of it
when that event finishes, with its result (Success or Error). JSON records have the keys
time, server_id, server_name, request_id, action, status, event, message, project_id,
user_id. The actions of one server, newest first: novabox server event list SERVER.

Examples:
  novabox event list
  novabox event list --follow -f json | jq -r 'select(.status == "Error") | .server_name'`,
    );
  addOutputOptions(list, 'list');
  list.action(async (o) => {
    const out = outputOptionsFrom(o);
    if (o.follow && !['json', 'table', 'value'].includes(out.format))
      throw new BadRequest(`--follow prints json, table or value, not ${out.format}`);
    const c = await ctx.compute();
    const caller = c.localCaller();
    const { EventFeed, followEvents } = await import('../../compute/events.js');
    const feed = new EventFeed(c.store, caller.isAdmin ? undefined : caller.projectId, !o.follow);
    if (!o.follow) {
      ctx.stdout(formatList(COLUMNS, feed.poll().map(row), out));
      return;
    }
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await followEvents(c.store, feed, {
        write: (r) => ctx.stdout(streamLine(r, out.format as 'json' | 'table' | 'value')),
        signal: abort.signal,
      });
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  });
}
