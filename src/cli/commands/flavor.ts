import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { addOutputOptions, formatList, formatShow, outputOptionsFrom } from '../output.js';
import { flavorRow, flavorView } from '../views.js';
import { collect, keyValues, positiveInt } from './server/common.js';
import { BadRequest } from '../../errors.js';

function nonNegative(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new BadRequest(`invalid ${name} ${JSON.stringify(v)}: expected a whole number >= 0`);
    return Number(v);
  };
}

export function register(program: Command, ctx: CliContext): void {
  const flavor = program
    .command('flavor')
    .description(
      'flavors: vcpus -> CPU quota, ram -> memory limit (swap off); disk sizes the tmpfs of --ephemeral servers, not yet a disk-backed writable layer',
    );

  const list = flavor
    .command('list')
    .description('list flavors')
    .option('--long', 'more columns')
    .option('--all', 'include private flavors');
  addOutputOptions(list, 'list');
  list.action(async (o) => {
    const c = await ctx.compute();
    const rows = c.store.flavors.list({ includePrivate: Boolean(o.all) }).map(flavorRow);
    const cols = ['ID', 'Name', 'RAM', 'Disk', 'Ephemeral', 'VCPUs', 'Is Public'];
    ctx.stdout(formatList(o.long ? [...cols, 'Swap', 'RXTX Factor', 'Properties'] : cols, rows, outputOptionsFrom(o)));
  });

  const show = flavor.command('show').description('show a flavor').argument('<flavor>', 'name or id');
  addOutputOptions(show, 'show');
  show.action(async (name: string, o) => {
    const c = await ctx.compute();
    ctx.stdout(formatShow(flavorView(c.store.flavors.get(name)), outputOptionsFrom(o)));
  });

  const create = flavor
    .command('create')
    .description('create a flavor')
    .argument('<name>', 'flavor name')
    .option('--id <id>', 'flavor id (default: a new UUID)')
    .option('--vcpus <n>', 'vCPUs (CPU quota)', positiveInt('--vcpus'), 1)
    .option('--ram <MiB>', 'memory limit in MiB', positiveInt('--ram'), 256)
    .option('--disk <GiB>', 'writable layer size in GiB (recorded)', nonNegative('--disk'), 0)
    .option('--private', 'not public')
    .option('--property <key=value>', 'extra spec, e.g. quota:cpu_shares=512 or quota:pids_limit=128 (repeatable)', collect, []);
  addOutputOptions(create, 'show');
  create.action(async (name: string, o) => {
    const c = await ctx.compute();
    const f = c.store.flavors.create({
      id: o.id,
      name,
      vcpus: o.vcpus,
      ramMiB: o.ram,
      diskGiB: o.disk,
      isPublic: !o.private,
    });
    const specs = keyValues(o.property);
    if (Object.keys(specs).length) c.store.flavors.setExtraSpecs(f.id, specs);
    ctx.stdout(formatShow(flavorView(c.store.flavors.get(f.id)), outputOptionsFrom(o)));
  });

  flavor
    .command('delete')
    .description('delete flavors (servers using them keep running)')
    .argument('<flavor...>', 'names or ids')
    .action(async (names: string[]) => {
      const c = await ctx.compute();
      for (const n of names) c.store.flavors.delete(c.store.flavors.get(n).id);
    });

  flavor
    .command('set')
    .description('set extra specs of a flavor')
    .argument('<flavor>', 'name or id')
    .option('--property <key=value>', 'extra spec (repeatable)', collect, [])
    .action(async (name: string, o) => {
      const c = await ctx.compute();
      c.store.flavors.setExtraSpecs(c.store.flavors.get(name).id, keyValues(o.property));
    });

  flavor
    .command('unset')
    .description('remove extra specs of a flavor')
    .argument('<flavor>', 'name or id')
    .option('--property <key>', 'extra spec key (repeatable)', collect, [])
    .action(async (name: string, o) => {
      const c = await ctx.compute();
      const id = c.store.flavors.get(name).id;
      for (const k of o.property) c.store.flavors.unsetExtraSpec(id, k);
    });
}
