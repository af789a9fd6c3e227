import type { Command } from 'commander';
import type { Flavor } from '../../../model/records.js';
import type { CliContext } from '../../context.js';
import { addOutputOptions, formatList, formatShow, outputOptionsFrom } from '../../output.js';
import { SERVER_LIST_COLUMNS, SERVER_LIST_LONG_COLUMNS, serverRow, serverShow, addressesField } from '../../views.js';
import { positiveInt } from './common.js';

/** `server list` and `server show`; `only`: the one the command line names (index.ts), the other is not built. */
export function registerList(server: Command, ctx: CliContext, only?: string): void {
  if (only !== 'show') registerListVerb(server, ctx);
  if (only !== 'list') registerShowVerb(server, ctx);
}

function registerListVerb(server: Command, ctx: CliContext): void {
  const list = server
    .command('list')
    .description('list servers')
    .option('--long', 'more columns')
    .option('--quiet', 'ids only')
    .option('--status <status>', 'only servers in this status (ACTIVE, SHUTOFF, PAUSED, ERROR, ...)')
    .option('--name <regex>', 'only servers whose name matches this regular expression')
    .option('--ip <regex>', 'only servers with a fixed address matching this regular expression')
    .option('--limit <n>', 'at most this many', positiveInt('--limit'))
    .option('--marker <id>', 'start after the server with this id')
    .option('--changes-since <time>', 'only servers changed since this ISO time');
  addOutputOptions(list, 'list');
  list.action(async (o) => {
    const compute = await ctx.compute();
    const rows = compute.list(
      { status: o.status?.toUpperCase(), name: o.name, ip: o.ip, limit: o.limit, marker: o.marker, changesSince: o.changesSince },
      compute.localCaller(),
    );
    if (o.quiet) {
      ctx.stdout(rows.map((s) => s.id + '\n').join(''));
      return;
    }
    const flavors = new Map(compute.store.flavors.list({ includePrivate: true }).map((f) => [f.id, f]));
    const addresses = compute.addressesOfMany(rows);
    const out = outputOptionsFrom(o);
    ctx.stdout(
      formatList(
        o.long ? SERVER_LIST_LONG_COLUMNS : SERVER_LIST_COLUMNS,
        rows.map((s) => serverRow(s, flavors, addresses.get(s.id), out.format)),
        out,
      ),
    );
  });
}

function registerShowVerb(server: Command, ctx: CliContext): void {
  const show = server
    .command('show')
    .description('show one server')
    .argument('<server>', 'name or id')
    .option('--quiet', 'print only its id');
  addOutputOptions(show, 'show');
  show.action(async (name: string, o) => {
    const compute = await ctx.compute();
    const s = compute.find(name, compute.localCaller());
    if (o.quiet) {
      ctx.stdout(s.id + '\n');
      return;
    }
    let flavor: Flavor | undefined;
    try {
      flavor = compute.store.flavors.get(s.flavorId);
    } catch {
      flavor = undefined;
    }
    const out = outputOptionsFrom(o);
    ctx.stdout(
      formatShow(
        serverShow(
          s,
          flavor,
          compute.facts(s.id)?.initPid ?? null,
          addressesField(compute.addresses(s), out.format),
          compute.idmapField(s),
          compute.usageOf(s),
          compute.ports.field(s.id),
          compute.volumesField(s.id),
        ),
        out,
      ),
    );
  });
}
