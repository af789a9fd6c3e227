import type { Command } from 'commander';
import { BadRequest } from '../../../errors.js';
import type { Flavor } from '../../../model/records.js';
import type { CliContext } from '../../context.js';
import { addOutputOptions, formatShow, outputOptionsFrom } from '../../output.js';
import { imageShow } from '../image.js';
import { serverShow } from '../../views.js';
import { trace } from '../../../util/trace.js';
import { collect, keyValues, lockOption, seconds, waitOption } from './common.js';

/** `server image create` (Nova createImage): snapshot a server's writable layer into a new image. */
export function registerImage(server: Command, ctx: CliContext): void {
  const image = server.command('image').description('images made from servers');
  const create = image
    .command('create')
    .description("snapshot a server, running or not: its image's layers plus its writable layer become a new image")
    .argument('<server>', 'name or id')
    .option('--name <name>', 'name of the new image, any text of 1 to 255 characters (default: the server name)')
    .option('--property <key=value>', 'image property (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
A running server is frozen (cgroup freezer) only while its writable layer is synced and
packed, then thawed; a paused server stays paused. The cost grows with what the server
changed, not with the image size. Ephemeral servers cannot be snapshotted.
Volumes are not in the image: they are mounts, not the writable layer (copy a volume
with "novabox volume snapshot create --volume VOL NAME").

Example:
  novabox server image create --name web1-snap --wait web1`,
    );
  waitOption(create);
  addOutputOptions(create, 'show');
  create.action(async (ref: string, o) => {
    const compute = await ctx.compute();
    const { ImageService } = await import('../../../images/service.js');
    const { snapshotServer } = await import('../../../compute/snapshot.js');
    trace('image modules loaded');
    const images = new ImageService(compute.store);
    trace('image service');
    const caller = compute.localCaller();
    const name = o.name ?? compute.find(ref, caller).name;
    const img = await snapshotServer(compute, images, { server: ref, name, properties: keyValues(o.property), inline: true }, caller);
    ctx.stdout(formatShow(imageShow(img), outputOptionsFrom(o)));
    trace('printed');
  });

  const backup = server
    .command('backup')
    .description('rotated backups of servers (Nova createBackup)')
    .command('create')
    .description('back a server up into an image (image_type=backup), keeping only the --rotate newest backups of its --type')
    .argument('<server>', 'name or id')
    .option('--name <name>', 'name of the backup image (default: the server name)')
    .option('--type <type>', 'backup type, e.g. daily or weekly (default: empty)', '')
    .option(
      '--rotate <count>',
      'how many backups of this type to keep, the new one included (0 keeps none)',
      (v: string) => {
        if (!/^\d+$/.test(v)) throw new BadRequest(`invalid --rotate ${JSON.stringify(v)}: expected a whole number >= 0`);
        return Number(v);
      },
      1,
    )
    .option('--property <key=value>', 'image property (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
The backup is a snapshot (see "server image create") with the properties image_type=backup,
backup_type and instance_uuid; after it is active, older backups of the same server and
type beyond --rotate are deleted, oldest first (a backup a server boots from is kept).

Example:
  novabox server backup create --type daily --rotate 7 web1`,
    );
  waitOption(backup);
  addOutputOptions(backup, 'show');
  backup.action(async (ref: string, o) => {
    const compute = await ctx.compute();
    const { ImageService } = await import('../../../images/service.js');
    const { snapshotServer } = await import('../../../compute/snapshot.js');
    const images = new ImageService(compute.store);
    const caller = compute.localCaller();
    const name = o.name ?? compute.find(ref, caller).name;
    const img = await snapshotServer(
      compute,
      images,
      { server: ref, name, properties: keyValues(o.property), inline: true, backup: { type: o.type, rotation: o.rotate } },
      caller,
    );
    const kept = images.repo.get(img.id);
    if (kept) ctx.stdout(formatShow(imageShow(kept), outputOptionsFrom(o)));
  });

  const rebuild = server
    .command('rebuild')
    .description('rebuild a server on a fresh writable layer: same id, name, metadata, key and addresses; same power state')
    .argument('<server>', 'name or id')
    .option('--image <image>', "image name or id (default: the server's current image)")
    .option('--timeout <seconds>', 'grace period of the stop', seconds('--timeout'), 10);
  waitOption(rebuild);
  lockOption(rebuild);
  addOutputOptions(rebuild, 'show');
  rebuild.action(async (ref: string, o) => {
    const compute = await ctx.compute();
    const caller = compute.localCaller({ overrideLock: o.overrideLock });
    const image = o.image ?? compute.find(ref, caller).imageName;
    const s = await compute.rebuild(ref, image, caller, { timeoutMs: o.timeout * 1000 });
    let flavor: Flavor | undefined;
    try {
      flavor = compute.store.flavors.get(s.flavorId);
    } catch {
      flavor = undefined;
    }
    ctx.stdout(
      formatShow(serverShow(s, flavor, compute.facts(s.id)?.initPid ?? null, undefined, compute.idmapField(s)), outputOptionsFrom(o)),
    );
  });
}
