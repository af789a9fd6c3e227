import type { Command } from 'commander';
import { BadRequest, NotFound } from '../../errors.js';
import type { CliContext } from '../context.js';
import { addOutputOptions, formatList, formatShow, outputOptionsFrom } from '../output.js';

export function register(program: Command, ctx: CliContext): void {
  const network = program
    .command('network')
    .description('the bridge network servers get their fixed addresses on (settings: "network" in $NOVABOX_ROOT/config.json)');

  const show = network
    .command('show')
    .description('bridge name, subnet, gateway, NAT and the leases in use')
    .argument('[network]', 'network name', 'novabox');
  addOutputOptions(show, 'show');
  show.action(async (name: string, o) => {
    const c = await ctx.compute();
    checkName(c.network.name, name);
    ctx.stdout(formatShow(c.network.show(), outputOptionsFrom(o)));
  });

  const list = network.command('list').description('list networks (as `openstack network list`)');
  addOutputOptions(list, 'list');
  list.action(async (o) => {
    const c = await ctx.compute();
    const v = c.network.show();
    ctx.stdout(formatList(['ID', 'Name', 'Subnets'], [{ ID: v.name, Name: v.name, Subnets: v.subnet }], outputOptionsFrom(o)));
  });

  network
    .command('set')
    .description("change the network's settings (kept in $NOVABOX_ROOT/config.json)")
    .argument('[network]', 'network name', 'novabox')
    .option('--nat', 'masquerade traffic from the subnet to the outside (the default)')
    .option('--no-nat', 'no masquerade: servers reach the host and each other only')
    .action(async (name: string, o: { nat?: boolean }) => {
      const c = await ctx.compute();
      checkName(c.network.name, name);
      if (o.nat === undefined) throw new BadRequest('nothing to set: give --nat or --no-nat');
      c.network.setNat(o.nat);
    });

  network
    .command('delete')
    .description('remove the bridge and its NAT table (refused while addresses are in use); made again on next use')
    .argument('[network]', 'network name', 'novabox')
    .action(async (name: string) => {
      const c = await ctx.compute();
      checkName(c.network.name, name);
      c.network.deleteBridge();
    });
}

function checkName(have: string, wanted: string): void {
  if (wanted !== have) {
    throw new NotFound(`network "${wanted}" not found`, { hint: `novabox has one network: "${have}"` });
  }
}
