import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { addOutputOptions, formatList, formatShow, outputOptionsFrom } from '../output.js';

/** `novabox volume …` (openstack volume grammar): named directories that outlive servers. */
export function register(program: Command, ctx: CliContext): void {
  const volume = program
    .command('volume')
    .description('named volumes: directories under $NOVABOX_ROOT/volumes that outlive servers (openstack volume ... grammar)');

  const create = volume
    .command('create')
    .description('create an empty volume (attach it with server create --volume or server add volume)')
    .argument('<name>', 'volume name')
    .option('--description <text>', 'a description');
  addOutputOptions(create, 'show');
  create.action(async (name: string, o) => {
    const c = await ctx.compute();
    const v = c.volumes.create(name, { projectId: c.localCaller().projectId, description: o.description });
    ctx.stdout(formatShow(c.volumes.view(v), outputOptionsFrom(o)));
  });

  const list = volume.command('list').description('list volumes: status available or in-use, and where');
  addOutputOptions(list, 'list');
  list.action(async (o) => {
    const c = await ctx.compute();
    ctx.stdout(
      formatList(
        ['ID', 'Name', 'Status', 'Attached to'],
        c.volumes.list().map((v) => ({
          ID: v.id,
          Name: v.name,
          Status: c.volumes.statusOf(v),
          'Attached to': c.volumes.statusOf(v) === 'in-use' ? `${c.volumes.holder(v)} on ${v.mountPath}${v.readOnly ? ' (ro)' : ''}` : '',
        })),
        outputOptionsFrom(o),
      ),
    );
  });

  const show = volume
    .command('show')
    .description("a volume's attachment, path on the host and owner ids")
    .argument('<volume>', 'name or id');
  addOutputOptions(show, 'show');
  show.action(async (name: string, o) => {
    const c = await ctx.compute();
    ctx.stdout(formatShow(c.volumes.view(c.volumes.get(name)), outputOptionsFrom(o)));
  });

  volume
    .command('delete')
    .description('delete volumes and their data (refused while attached to a server)')
    .argument('<volume...>', 'names or ids')
    .action(async (names: string[]) => {
      const c = await ctx.compute();
      for (const n of names) c.volumes.delete(n);
    });
}
