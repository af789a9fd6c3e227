import { Command } from 'commander';
import type { CliContext } from '../../main.js';
import { addOutputOptions, formatShow, outputOptionsFrom } from '../../output.js';
import { imageShow } from '../image.js';
import { serverShow } from '../../views.js';
import { trace } from '../../../util/trace.js';
import { collect, keyValues, seconds, waitOption } from './common.js';

/** `server image create` (Nova createImage): snapshot a server's writable layer into a new image. */
export function registerImage(server: Command, ctx: CliContext): void {
  const image = server.command('image').description('images made from servers');
  const create = image
    .command('create')
    .description("snapshot a server, running or not: its image's layers plus its writable layer become a new image")
    .argument('<server>', 'name or id')
    .option('--name <name>', 'name of the new image, any text of 1 to 255 characters (default: the server name)')
    .option('--property <key=value>', 'image property (repeatable)', collect, [])
    .addHelpText('after', `
A running server is frozen (cgroup freezer) only while its writable layer is synced and
packed, then thawed; a paused server stays paused. The cost grows with what the server
changed, not with the image size. Ephemeral servers cannot be snapshotted.

Example:
  novabox server image create --name web1-snap --wait web1`);
  waitOption(create);
  addOutputOptions(create, 'show');
  create.action(async (ref: string, o) => {
    const compute = await ctx.compute();
    const { ImageService } = await import('../../../images/service.js');
    const { snapshotServer } = await import('../../../images/snapshot.js');
    trace('image modules loaded');
    const images = new ImageService(compute.store);
    trace('image service');
    const caller = compute.localCaller();
    const name = o.name ?? compute.find(ref, caller).name;
    const img = await snapshotServer(compute, images, { server: ref, name, properties: keyValues(o.property), inline: true }, caller);
    ctx.stdout(formatShow(imageShow(img), outputOptionsFrom(o)));
    trace('printed');
  });

  const rebuild = server
    .command('rebuild')
    .description('rebuild a server on a fresh writable layer: same id, name, metadata, key and addresses; same power state')
    .argument('<server>', 'name or id')
    .option('--image <image>', 'image name or id (default: the server\'s current image)')
    .option('--timeout <seconds>', 'grace period of the stop', seconds('--timeout'), 10);
  waitOption(rebuild);
  addOutputOptions(rebuild, 'show');
  rebuild.action(async (ref: string, o) => {
    const compute = await ctx.compute();
    const caller = compute.localCaller();
    const image = o.image ?? compute.find(ref, caller).imageName;
    const s = await compute.rebuild(ref, image, caller, { timeoutMs: o.timeout * 1000 });
    let flavor;
    try {
      flavor = compute.store.flavors.get(s.flavorId);
    } catch {
      flavor = undefined;
    }
    ctx.stdout(formatShow(serverShow(s, flavor, compute.facts(s.id)?.initPid ?? null), outputOptionsFrom(o)));
  });
}
