import { createReadStream, createWriteStream, renameSync, unlinkSync } from 'node:fs';
import type { Command } from 'commander';
import type { Readable } from 'node:stream';
import { BadRequest } from '../../../errors.js';
import type { CliContext } from '../../context.js';
import { addOutputOptions, formatShow, outputOptionsFrom } from '../../output.js';
import { addressesField, serverShow } from '../../views.js';

/** `server export`, `server import`: a server as a self-contained stream (docs/server-stream.md). */
export function registerMigration(server: Command, ctx: CliContext): void {
  server
    .command('export')
    .description('write a SHUTOFF server as a self-contained server stream (record, image, layers, writable layer)')
    .argument('<server>', 'name or id')
    .option('--file <file>', 'where to write the stream; - for standard output', '-')
    .addHelpText(
      'after',
      `
The server must be SHUTOFF (stop it first, or use "server migrate", which stops it). The
stream holds the server's record (id, name, flavor, properties, key, metadata, published
ports), its image's record and layers, its writable layer packed as a snapshot packs it,
and the files of its named volumes. Every part carries
its sha256 digest; "server import" checks them all before it records anything.
Format: docs/server-stream.md. --debug says how many bytes were written.

Examples:
  novabox server export web --file web.nbx
  novabox server export web | ssh hostb novabox server import --file -`,
    )
    .action(async (ref: string, o: { file: string }) => {
      if (o.file === '-' && process.stdout.isTTY) {
        throw new BadRequest('refusing to write a server stream to a terminal: pass --file FILE or redirect standard output');
      }
      const compute = await ctx.compute();
      const { ImageService } = await import('../../../images/service.js');
      const { exportServer } = await import('../../../compute/migration/export.js');
      const images = new ImageService(compute.store);
      const caller = compute.localCaller();
      if (o.file === '-') {
        const r = await exportServer(compute, images, ref, process.stdout, caller);
        if (ctx.debug) ctx.stderr(`novabox: ${r.server.name}: ${r.bytes} bytes sent (writable layer ${r.writableBytes})\n`);
        return;
      }
      // written beside the file and renamed: a failed export leaves no partial stream
      const tmp = `${o.file}.part-${process.pid}`;
      const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
      try {
        const r = await exportServer(compute, images, ref, out, caller);
        await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
        renameSync(tmp, o.file);
        if (ctx.debug) ctx.stderr(`novabox: ${r.server.name}: ${r.bytes} bytes written to ${o.file} (writable layer ${r.writableBytes})\n`);
      } catch (err) {
        out.destroy();
        try {
          unlinkSync(tmp);
        } catch {
          /* never made */
        }
        throw err;
      }
    });

  const imp = server
    .command('import')
    .description('make a server from a server stream (the same id, name, flavor, properties, key and writable layer)')
    .requiredOption('--file <file>', 'the stream; - for standard input')
    .option('--name <name>', 'name of the server here (default: its name in the stream)')
    .option('--start', 'start the server once imported (default: it is SHUTOFF)')
    .addHelpText(
      'after',
      `
The whole stream is read and every digest checked into a staging directory under
$NOVABOX_ROOT/tmp before anything is recorded: a cut or corrupt stream leaves nothing.
The server keeps its id; its name too, unless a server of that name exists here (then
pass --name). It gets an address (the same one when it is free in this host's subnet) and
an id range here, as a create does. Its image is recorded if this host lacks it; layers
this host has are not stored twice.

Examples:
  novabox server import --file web.nbx
  ssh hosta novabox server export web | novabox server import --file - --start`,
    );
  addOutputOptions(imp, 'show');
  imp.action(async (o: { file: string; name?: string; start?: boolean }) => {
    if (o.file === '-' && process.stdin.isTTY) {
      throw new BadRequest('refusing to read a server stream from a terminal: pass --file FILE or redirect standard input');
    }
    const compute = await ctx.compute();
    const { ImageService } = await import('../../../images/service.js');
    const { importServer } = await import('../../../compute/migration/import.js');
    const { ByteReader } = await import('../../../compute/migration/stream.js');
    const images = new ImageService(compute.store);
    const caller = compute.localCaller();
    const input: Readable = o.file === '-' ? process.stdin : createReadStream(o.file, { highWaterMark: 1 << 20 });
    const reader = new ByteReader(input);
    try {
      const { server: s, bytes } = await importServer(compute, images, reader, caller, {
        name: o.name,
        start: Boolean(o.start),
        notice: (l) => ctx.stderr(`novabox: ${l}\n`),
      });
      if (ctx.debug) ctx.stderr(`novabox: ${s.name}: ${bytes} bytes read\n`);
      const out = outputOptionsFrom(o);
      ctx.stdout(
        formatShow(
          serverShow(
            s,
            compute.flavorOfSafe(s),
            compute.facts(s.id)?.initPid ?? null,
            addressesField(compute.addresses(s), out.format),
            compute.idmapField(s),
          ),
          out,
        ),
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && o.file !== '-') throw new BadRequest(`cannot read ${o.file}: no such file`);
      throw err;
    } finally {
      if (o.file !== '-') (input as Readable).destroy();
    }
  });
}

/** `server migrate` and the hidden `server receive` it talks to. */
export function registerMigrate(server: Command, ctx: CliContext): void {
  server
    .command('migrate')
    .description('cold-migrate a server to another host: stop, send what the target lacks, start there, delete here')
    .argument('<server>', 'name or id')
    .requiredOption('--to <target>', 'ssh://[USER@]HOST[:PORT], or exec:COMMAND (a command reaching "novabox server receive")')
    .option('--override-lock', 'migrate a locked server anyway (as an admin may through the API)')
    .option(
      '--live',
      'move the running processes with CRIU (pre-dumps, dump, restore there): needs "criu check" to pass on both hosts, and an ACTIVE server without ports or volumes',
    )
    .option(
      '--predump-rounds <n>',
      'with --live: at most this many CRIU pre-dump rounds while it runs, fewer once its dirty memory stops shrinking (0-10)',
      '3',
    )
    .option(
      '--ssh-option <KEYWORD=VALUE>',
      'an option for ssh (its -o, ssh_config(5)) with an ssh:// target; repeatable',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option(
      '--no-precopy',
      'stop an ACTIVE server before sending anything (default: send its writable layer while it runs, then what changed)',
    )
    .addHelpText(
      'after',
      `
The target first says which image layers it has: only the others are sent. An ACTIVE
server's writable layer is sent while it runs (frozen only while it is packed, as for a
snapshot); then it is stopped, only what changed since is sent, it is started on the
target and only then deleted here. A SHUTOFF server arrives SHUTOFF. If anything fails
before the target confirms (Ctrl-C included), the target keeps nothing and the server
here runs again as before. Its published ports and named volumes go with it (refused up
front if a port or a volume name is taken there; the volumes here are deleted once it
runs there). --debug reports the bytes sent and the downtime. Both hosts
record a "migrate" instance action. Format and protocol: docs/server-stream.md.

--live moves the running process tree with CRIU: its writable layer is pre-copied, its
memory pre-dumped while it runs (round after round, each only the pages dirtied since the
one before, while that shrinks: at most --predump-rounds), then the final dump (only what
was dirtied since the last round) ends it here and the target restores
it under a monitor of its own (the processes keep their state and open files). It works
for an ACTIVE server with --network none or on the bridge network (where it gets the
target's address, and its published ports are made there again), with its instance data
(the target writes its seed) and its directory volumes (their files go as the writable
layer's, open files stay open), not with systemd as pid 1 (CRIU cannot dump a
systemd system); one in its own user
namespace (--userns auto, the default) needs its id range free on the target (CRIU
restores it with the same ids), else it is refused before anything changes; any
other server is refused in one sentence naming why, and so is a host where
"criu check" fails (quoting it), before anything changes. A failure after the final dump
restores the server here from the same images.

Examples:
  novabox server migrate web --to ssh://root@hostb
  novabox server migrate web --to ssh://root@hostb:2222 --ssh-option IdentityFile=/root/.ssh/migrate
  novabox server migrate web --to 'exec:ssh -J bastion root@hostb novabox server receive'`,
    )
    .action(
      async (
        ref: string,
        o: { to: string; precopy: boolean; overrideLock?: boolean; live?: boolean; sshOption: string[]; predumpRounds: string },
      ) => {
        if (!/^(10|[0-9])$/.test(o.predumpRounds))
          throw new BadRequest(`invalid --predump-rounds ${JSON.stringify(o.predumpRounds)}: expected a whole number from 0 to 10`);
        const compute = await ctx.compute();
        const { ImageService } = await import('../../../images/service.js');
        const { migrateServer } = await import('../../../compute/migration/migrate.js');
        const images = new ImageService(compute.store);
        // Ctrl-C or a kill: the migration gives up as on a failure (the server runs here again)
        const abort = new AbortController();
        const stop = () => abort.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        let r: Awaited<ReturnType<typeof migrateServer>>;
        try {
          r = await migrateServer(compute, images, ref, compute.localCaller({ overrideLock: o.overrideLock }), {
            to: o.to,
            sshOptions: o.sshOption,
            precopy: o.precopy,
            live: o.live,
            predumpRounds: Number(o.predumpRounds),
            signal: abort.signal,
          });
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
        for (const n of r.notices) ctx.stderr(`novabox: ${n}\n`);
        if (ctx.debug) {
          ctx.stderr(
            `novabox: ${r.target.name}: ${r.bytes} bytes sent (writable layer ${r.writableBytes}, ${r.layersSkipped} image layers already there)${
              r.deltaBytes === null ? '' : `, a delta of ${r.deltaBytes} bytes after the stop, frozen ${r.frozenMs} ms while packed`
            }${
              r.criu
                ? `, pre-dump ${r.criu.predumpMs} ms (${r.criu.predumpBytes} bytes) in ${r.criu.rounds.length} round${
                    r.criu.rounds.length === 1 ? '' : 's'
                  } (pages ${r.criu.rounds.map((x) => x.pages).join('/') || '-'} bytes), final dump ${r.criu.dumpMs} ms (${r.criu.dumpBytes} bytes, pages ${r.criu.dumpPages} bytes)`
                : ''
            }${r.downtimeMs === null ? '' : `, downtime ${r.downtimeMs} ms`}, total ${r.totalMs} ms\n`,
          );
        }
      },
    );

  server
    .command('receive', { hidden: true })
    .description('the target side of "server migrate": speaks its protocol on standard input and output')
    .action(async () => {
      const compute = await ctx.compute();
      const { ImageService } = await import('../../../images/service.js');
      const { receiveServer } = await import('../../../compute/migration/receive.js');
      const { ByteReader } = await import('../../../compute/migration/stream.js');
      const images = new ImageService(compute.store);
      // a kill (not -9) ends the input: what was received is taken back, as on a cut link
      const abort = new AbortController();
      const stop = () => {
        abort.abort();
        process.stdin.destroy();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await receiveServer(compute, images, new ByteReader(process.stdin), process.stdout, compute.localCaller(), abort.signal);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
