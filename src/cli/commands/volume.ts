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
  // every volume command first sweeps the copies a killed `volume snapshot create` or
  // `volume create --source/--snapshot` left (their partial data; a server they left
  // frozen is thawed)
  volume.hook('preAction', async () => {
    (await ctx.compute()).volumes.reconcileCopies();
  });

  const create = volume
    .command('create')
    .description(
      'create a volume: empty, or a copy of a snapshot (--snapshot) or of a volume (--source); attach it with server create --volume or server add volume',
    )
    .argument('<name>', 'volume name')
    .option('--description <text>', 'a description')
    .option('--snapshot <snapshot>', 'a copy of this volume snapshot (its kind and size, its files with their owners)')
    .option('--source <volume>', 'a clone of this volume, copied now (frozen for the copy if a running server has it)')
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
  novabox volume create --size 512M scratch
  novabox volume create --snapshot db-monday db-restored
  novabox volume create --source data data-copy`,
    );
  addOutputOptions(create, 'show');
  create.action(async (name: string, o) => {
    const sizeBytes = o.size === undefined ? undefined : parseVolumeSize(o.size);
    const c = await ctx.compute();
    const v = c.volumes.create(name, {
      projectId: c.localCaller().projectId,
      description: o.description,
      sizeBytes,
      snapshot: o.snapshot,
      source: o.source,
    });
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
    .description('delete volumes and their data (refused while attached to a server, or while it has snapshots)')
    .argument('<volume...>', 'names or ids')
    .action(async (names: string[]) => {
      const c = await ctx.compute();
      for (const n of names) c.volumes.delete(n);
    });

  registerSnapshots(volume, ctx);
}

/** `novabox volume snapshot …` (openstack volume snapshot grammar): point-in-time copies, taken only when asked. */
function registerSnapshots(volume: Command, ctx: CliContext): void {
  const snapshot = volume
    .command('snapshot')
    .description('point-in-time copies of volumes, under $NOVABOX_ROOT/volume-snapshots (taken only when asked)');

  const create = snapshot
    .command('create')
    .description("copy a volume as it is now (a running server's volume: copied with the server frozen)")
    .argument('<name>', 'snapshot name')
    .requiredOption('--volume <volume>', 'the volume to copy (name or id)')
    .option('--description <text>', 'a description')
    .addHelpText(
      'after',
      `
A directory volume is copied as a tree (cp -a: owners, modes, xattrs, hard links and
special files kept), a sized volume as its image file (sparse); both share blocks with
the volume where the filesystem can (reflinks on btrfs, xfs). When a running server has
the volume, its processes are frozen for the copy (a sized volume's filesystem is synced
first) and thawed after, as for a server snapshot; a server that is starting or stopping
is not copied from. A server snapshot (server image create) never includes volumes.
Make a volume from a snapshot with "volume create --snapshot SNAP NAME". A volume with
snapshots cannot be deleted until they are.

Examples:
  novabox volume snapshot create --volume db db-monday
  novabox volume create --snapshot db-monday db-restored`,
    );
  addOutputOptions(create, 'show');
  create.action(async (name: string, o) => {
    const c = await ctx.compute();
    const s = c.volumes.snapshot(o.volume, name, { projectId: c.localCaller().projectId, description: o.description });
    ctx.stdout(formatShow(c.volumes.snapshotView(s), outputOptionsFrom(o)));
  });

  const list = snapshot.command('list').description('list volume snapshots').option('--volume <volume>', 'those of this volume only');
  addOutputOptions(list, 'list');
  list.action(async (o) => {
    const c = await ctx.compute();
    ctx.stdout(
      formatList(
        ['ID', 'Name', 'Volume', 'Status', 'Size', 'Created At'],
        c.volumes.listSnapshots(o.volume).map((s) => {
          const view = c.volumes.snapshotView(s);
          return {
            ID: s.id,
            Name: s.name,
            Volume: view.volume ?? s.volumeId,
            Status: s.status,
            Size: view.size ?? '',
            'Created At': s.createdAt,
          };
        }),
        outputOptionsFrom(o),
      ),
    );
  });

  const show = snapshot
    .command('show')
    .description("a volume snapshot's volume, status, path and owner ids")
    .argument('<snapshot>', 'name or id');
  addOutputOptions(show, 'show');
  show.action(async (name: string, o) => {
    const c = await ctx.compute();
    ctx.stdout(formatShow(c.volumes.snapshotView(c.volumes.getSnapshot(name)), outputOptionsFrom(o)));
  });

  snapshot
    .command('delete')
    .description('delete volume snapshots and their copies')
    .argument('<snapshot...>', 'names or ids')
    .action(async (names: string[]) => {
      const c = await ctx.compute();
      for (const n of names) c.volumes.deleteSnapshot(n);
    });
}
