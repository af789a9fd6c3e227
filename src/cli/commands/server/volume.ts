import type { Command } from 'commander';
import type { CliContext } from '../../context.js';

/** `server add volume` / `server remove volume` (openstack server add volume grammar, with a mount path). */
export function registerVolume(server: Command, ctx: CliContext): void {
  server
    .command('add')
    .description('attach things to a server')
    .command('volume')
    .description(
      'attach a named volume to a server at --mount-path: a running one at once (into its mount namespace), a stopped one from its next start on',
    )
    .argument('<server>', 'name or id')
    .argument('<volume>', 'volume name or id (novabox volume list)')
    .requiredOption('--mount-path <path>', 'absolute path inside the server')
    .option('--read-only', 'mount it read-only')
    .option('--override-lock', 'act on a locked server anyway (as an admin may through the API)')
    .action(async (name: string, volume: string, o) => {
      const c = await ctx.compute();
      c.addVolume(name, volume, o.mountPath, { readOnly: o.readOnly }, c.localCaller({ overrideLock: o.overrideLock }));
    });
  server
    .command('remove')
    .description('detach things from a server')
    .command('volume')
    .description('detach a named volume from a stopped or running server (unmounted inside at once; the volume and its data stay)')
    .argument('<server>', 'name or id')
    .argument('<volume>', 'volume name or id')
    .option('--override-lock', 'act on a locked server anyway (as an admin may through the API)')
    .action(async (name: string, volume: string, o) => {
      const c = await ctx.compute();
      c.removeVolume(name, volume, c.localCaller({ overrideLock: o.overrideLock }));
    });
}
