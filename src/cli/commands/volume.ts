import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { addOutputOptions, formatList, formatShow, outputOptionsFrom } from '../output.js';
import { parseVolumeSize } from '../../compute/volumes.js';

/** `novabox volume …` (openstack volume grammar): named directories or sized ext4 images that outlive servers. */
export function register(program: Command, ctx: CliContext): void {
  const volume = program
    .command('volume')
    .description(
      'named volumes: directories, or ext4 images of a fixed size, under $NOVABOX_ROOT/volumes that outlive servers (openstack volume ... grammar)',
    );

  const create = volume
    .command('create')
    .description('create an empty volume (attach it with server create --volume or server add volume)')
    .argument('<name>', 'volume name')
    .option('--description <text>', 'a description')
    .option(
      '--size <size>',
      'an ext4 image of this size instead of a directory: GiB, or with a unit (512M, 2G, 1T); sparse, loop-mounted while its server runs',
    )
    .addHelpText(
      'after',
      `
Without --size a volume is a directory: it grows as far as the host's filesystem lets it.
With --size it is an ext4 filesystem in an image file of that size (sparse: the host's
disk is taken as it is written), which the server cannot fill past its size. The image
is loop-mounted when a server starts with it and the loop device goes when the server's
last process does. Needs loop devices (/dev/loop-control) and mkfs.ext4 (e2fsprogs).

Examples:
  novabox volume create data
  novabox volume create --size 10 db          # 10 GiB
  novabox volume create --size 512M scratch`,
    );
  addOutputOptions(create, 'show');
  create.action(async (name: string, o) => {
    const sizeBytes = o.size === undefined ? undefined : parseVolumeSize(o.size);
    const c = await ctx.compute();
    const v = c.volumes.create(name, { projectId: c.localCaller().projectId, description: o.description, sizeBytes });
    ctx.stdout(formatShow(c.volumes.view(v), outputOptionsFrom(o)));
  });

  const list = volume.command('list').description('list volumes: status available or in-use, and where');
  addOutputOptions(list, 'list');
  list.action(async (o) => {
    const c = await ctx.compute();
    ctx.stdout(
      formatList(
        ['ID', 'Name', 'Status', 'Size', 'Attached to'],
        c.volumes.list().map((v) => ({
          ID: v.id,
          Name: v.name,
          Status: c.volumes.statusOf(v),
          Size: c.volumes.view(v).size ?? '',
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
