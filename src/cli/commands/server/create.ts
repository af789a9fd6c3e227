import { Command, Option } from 'commander';
import { BadRequest } from '../../../errors.js';
import type { CliContext } from '../../main.js';
import { addOutputOptions, formatList, formatShow, outputOptionsFrom } from '../../output.js';
import { serverShow } from '../../views.js';
import { collect, keyValues, positiveInt, waitOption } from './common.js';

export function registerCreate(server: Command, ctx: CliContext): void {
  const cmd = server
    .command('create')
    .description('create and start a server (or NAME-1 … NAME-N with --min/--max)')
    .argument('<name>', 'server name (Nova allows duplicates; then use ids)')
    .requiredOption('--image <image>', 'image name (built-in: busybox)')
    .requiredOption('--flavor <flavor>', 'flavor name or id (novabox flavor list)')
    .option('--property <key=value>', 'metadata property (repeatable)', collect, [])
    .option('--key-name <name>', 'keypair to record with the server')
    .addOption(new Option('--network <mode>', 'network mode').choices(['none', 'host']).default('none'))
    .option('--min <count>', 'create at least this many servers', positiveInt('--min'))
    .option('--max <count>', 'create at most this many servers', positiveInt('--max'))
    .option('--ephemeral', 'writable layer on a tmpfs inside the server (at most the flavor disk), lost when it stops; cannot be snapshotted')
    .option('--quiet', 'print only the ids of the new servers');
  waitOption(cmd);
  addOutputOptions(cmd, 'show');
  cmd.action(async (name: string, o) => {
    const count = o.max ?? o.min ?? 1;
    if (o.min && o.max && o.min > o.max) throw new BadRequest('--min is larger than --max');
    const compute = await ctx.compute();
    const caller = compute.localCaller();
    const servers = await compute.create(
      { name, image: o.image, flavor: o.flavor, properties: keyValues(o.property), keyName: o.keyName, network: o.network, count, ephemeral: Boolean(o.ephemeral) },
      caller,
    );
    const failed = servers.filter((s) => s.vmState === 'error');
    const out = outputOptionsFrom(o);
    if (o.quiet) {
      ctx.stdout(servers.map((s) => s.id + '\n').join(''));
    } else if (servers.length === 1) {
      const s = servers[0];
      ctx.stdout(formatShow(serverShow(s, compute.store.flavors.get(s.flavorId), compute.facts(s.id)?.initPid ?? null), out));
    } else {
      ctx.stdout(formatList(['ID', 'Name', 'Status'], servers.map((s) => ({ ID: s.id, Name: s.name, Status: s.vmState === 'error' ? 'ERROR' : 'ACTIVE' })), out));
    }
    if (failed.length) {
      ctx.stderr(`novabox: ${failed.length} of ${servers.length} servers failed: ${failed[0].fault?.message ?? 'unknown error'}\n`);
      ctx.exitCode = 1;
    }
  });
}
