import type { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { BadRequest } from '../../../errors.js';

/** `SERVER:PATH`, or a host path (one starting with "/" or ".", or without a colon). */
export function parseCopyArg(arg: string): { server?: string; path: string } {
  if (!arg) throw new BadRequest('empty path: expected SERVER:PATH or a host path');
  if (arg.startsWith('/') || arg.startsWith('.')) return { path: arg };
  const i = arg.indexOf(':');
  if (i < 0) return { path: arg };
  if (i === 0) throw new BadRequest(`invalid ${JSON.stringify(arg)}: no server name before ":"`);
  const path = arg.slice(i + 1);
  return { server: arg.slice(0, i), path: path || '/' };
}

export function registerCp(server: Command, ctx: CliContext): void {
  server
    .command('cp')
    .description('copy files and directories between a server and the host (podman cp), keeping modes, owners and times')
    .argument('<src>', 'SERVER:PATH or a host path')
    .argument('<dst>', 'SERVER:PATH or a host path')
    .addHelpText(
      'after',
      `
One side is SERVER:PATH, the other a host path. The server may be running or stopped
(then its writable layer is read and written directly). Paths in the server are resolved
inside its root: a symlink there never leads out of it; one in the way of a write is
refused. A directory is copied whole; "SRC/." copies its contents. Owners are the
server's own ids on both sides (a copy out shows them; a copy in is owned by them inside;
a host id beyond the server's range becomes its root).
Device nodes, FIFOs and sockets are skipped with a warning; hard links become copies.

Examples:
  novabox server cp web1:/etc/hostname ./hostname
  novabox server cp ./site web1:/srv/          # a directory into /srv/site
  novabox server cp web1:/var/log/. ./logs     # the contents of /var/log into ./logs`,
    )
    .action(async (srcArg: string, dstArg: string) => {
      const src = parseCopyArg(srcArg);
      const dst = parseCopyArg(dstArg);
      if (src.server !== undefined && dst.server !== undefined)
        throw new BadRequest('both SRC and DST name a server: one of them must be a host path');
      const name = src.server ?? dst.server;
      if (name === undefined) throw new BadRequest('neither SRC nor DST names a server: write one as SERVER:PATH');
      const c = await ctx.compute();
      c.copyFiles(
        name,
        { server: src.server !== undefined, path: src.path },
        { server: dst.server !== undefined, path: dst.path },
        c.localCaller(),
        { skipped: (path, what) => ctx.stderr(`novabox: skipped ${path} (${what})\n`) },
      );
    });
}
