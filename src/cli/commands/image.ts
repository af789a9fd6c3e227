import { type Command, Option } from 'commander';
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { BadRequest } from '../../errors.js';
import type { CliContext } from '../context.js';
import { OUTPUT_FORMATS, addOutputOptions, formatList, formatShow, outputOptionsFrom, type OutputFormat } from '../output.js';
import type { ConfigFlags, ImageRecord } from '../../images/service.js';
import { collect, keyValues, positiveInt } from './server/common.js';
import { registerPull } from './image-pull.js';
import { registerBuild } from './image-build.js';

/** Glance's field names, as `openstack image show` prints them. */
export function imageShow(i: ImageRecord): Record<string, unknown> {
  return {
    checksum: i.checksum,
    config: configView(i.config),
    container_format: i.containerFormat,
    created_at: `${i.createdAt.slice(0, 19)}Z`,
    disk_format: i.diskFormat,
    file: `/v2/images/${i.id}/file`,
    id: i.id,
    min_disk: i.minDisk,
    min_ram: i.minRam,
    name: i.name,
    os_hash_algo: i.osHashAlgo,
    os_hash_value: i.osHashValue,
    owner: i.owner,
    properties: { ...i.properties, layers: i.layers.join(',') },
    protected: i.protected,
    schema: '/v2/schemas/image',
    size: i.size,
    status: i.status,
    tags: i.tags,
    updated_at: `${i.updatedAt.slice(0, 19)}Z`,
    virtual_size: i.virtualSize,
    visibility: i.visibility,
  };
}

/** The runtime configuration as `image show` prints it (the names `image set` takes). */
function configView(c: ImageRecord['config']): Record<string, unknown> {
  return {
    command: c.serverCmd ?? null,
    entrypoint: c.entrypoint ?? null,
    cmd: c.cmd.slice(c.entrypoint?.length ?? 0),
    env: c.env,
    workdir: c.workingDir || '/',
    user: c.user || null,
    stop_signal: c.stopSignal ?? null,
  };
}

const CONFIG_HELP = `
Runtime configuration (--command, --entrypoint, --cmd, --env, --workdir, --user,
--stop-signal; shown by "image show" as config): --command is the server command, what
"server create" runs under novabox-init (stored as the OCI label io.novabox.server-cmd;
"" = none: the init idles, as a system container). --entrypoint and --cmd are the OCI
Entrypoint and Cmd that "run" uses: "run IMAGE ARGS" runs the entrypoint with ARGS; a new
entrypoint clears the Cmd unless --cmd is given. A command is a JSON array
('["nginx", "-g", "daemon off;"]') or a string run by /bin/sh -c. --env NAME=VALUE is
repeatable and replaces NAME. --stop-signal is what "server stop" sends first (SIGTERM,
TERM or a number). Servers use the new configuration from their next start.`;

/** The runtime configuration flags of `image set` and `image create`. */
function configOptions(cmd: Command): Command {
  return cmd
    .option('--command <cmd>', "the server command: JSON array or a /bin/sh -c string ('' for none)")
    .option('--entrypoint <cmd>', "the OCI entrypoint: JSON array or a /bin/sh -c string ('' for none)")
    .option('--cmd <cmd>', 'the OCI Cmd (default arguments of the entrypoint, or the default command)')
    .option('--env <NAME=VALUE>', 'environment variable (repeatable)', collect, [])
    .option('--workdir <dir>', 'working directory (absolute)')
    .option('--user <user[:group]>', 'user and group, names or ids')
    .option('--stop-signal <signal>', 'signal "server stop" sends first');
}

function configFlags(o: Record<string, unknown>): ConfigFlags {
  return {
    command: o.command as string | undefined,
    entrypoint: o.entrypoint as string | undefined,
    cmd: o.cmd as string | undefined,
    env: o.env as string[],
    workdir: o.workdir as string | undefined,
    user: o.user as string | undefined,
    stopSignal: o.stopSignal as string | undefined,
  };
}

function imageRow(i: ImageRecord): Record<string, unknown> {
  return {
    ID: i.id,
    Name: i.name,
    Status: i.status,
    'Disk Format': i.diskFormat,
    'Container Format': i.containerFormat,
    Size: i.size,
    Checksum: i.checksum,
    Visibility: i.visibility,
    Protected: i.protected,
    Project: i.owner,
    Tags: i.tags.join(', '),
  };
}

/** A progress line on stderr, only when stderr is a terminal (stdout stays clean). */
export function progress(label: string): ((done: number, total: number) => void) & { end: () => void } {
  const tty = process.stderr.isTTY;
  let last = 0;
  const f = ((done: number, total: number) => {
    if (!tty) return;
    const now = Date.now();
    if (now - last < 100 && done < total) return;
    last = now;
    const mib = (n: number) => (n / 1048576).toFixed(1);
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const bar = total > 0 ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width)}] ${Math.round(frac * 100)}% ` : '';
    process.stderr.write(`\r${label} ${bar}${mib(done)}${total ? `/${mib(total)}` : ''} MiB\x1b[K`);
  }) as ((done: number, total: number) => void) & { end: () => void };
  f.end = () => {
    if (tty && last) process.stderr.write('\r\x1b[K');
  };
  return f;
}

export function register(program: Command, ctx: CliContext): void {
  const image = program
    .command('image')
    .description('images: content-addressed layers, Glance-style records (openstack image ... grammar)');
  const service = async () => {
    const c = await ctx.compute();
    const { ImageService, checkConfigFlags, isEmptyPatch } = await import('../../images/service.js');
    const s = new ImageService(c.store);
    /** the runtime configuration flags checked (one sentence for a bad one), undefined when none is given */
    const configPatch = (f: ConfigFlags) => {
      const p = checkConfigFlags(f);
      return isEmptyPatch(p) ? undefined : p;
    };
    return { s, caller: s.localCaller(), compute: c, configPatch };
  };

  const list = image
    .command('list')
    .description('list images')
    .option('--long', 'more columns')
    .option('--name <name>', 'only images of this name')
    .option('--status <status>', 'only images in this status (queued, saving, active, killed)')
    .option('--public', 'only public images')
    .option('--private', 'only private images')
    .option('--shared', 'only shared images')
    .option('--community', 'only community images')
    .option('--property <key=value>', 'only images with this property (repeatable)', collect, [])
    .option('--limit <n>', 'at most this many', positiveInt('--limit'))
    .option('--marker <id>', 'start after the image with this id');
  addOutputOptions(list, 'list');
  list.action(async (o) => {
    const { s, caller } = await service();
    const visibility = o.public ? 'public' : o.private ? 'private' : o.shared ? 'shared' : o.community ? 'community' : undefined;
    const rows = s.list(
      { name: o.name, status: o.status, visibility, properties: keyValues(o.property), limit: o.limit, marker: o.marker },
      caller,
    );
    const cols = o.long
      ? ['ID', 'Name', 'Disk Format', 'Container Format', 'Size', 'Checksum', 'Status', 'Visibility', 'Protected', 'Project', 'Tags']
      : ['ID', 'Name', 'Status'];
    ctx.stdout(formatList(cols, rows.map(imageRow), outputOptionsFrom(o)));
  });

  const show = image.command('show').description('show one image').argument('<image>', 'name or id');
  addOutputOptions(show, 'show');
  show.action(async (ref: string, o) => {
    const { s, caller } = await service();
    ctx.stdout(formatShow(imageShow(s.show(ref, caller)), outputOptionsFrom(o)));
  });

  const create = image
    .command('create')
    .description(
      'import an image from a rootfs tarball (tar, gz, zstd, xz), an OCI image layout (dir or tar), a `docker save` archive or an LXC/Incus unified tarball',
    )
    .argument(
      '<name>',
      'image name: any text of 1 to 255 characters, as in Glance (names may repeat; a repeated name must then be given as the id)',
    )
    .requiredOption('--file <path>', 'the file or directory to import')
    .option(
      '-f, --format <format>',
      'what the file is: auto (default), tar, oci, docker-archive, lxc; or the output format: table, json, yaml, value, shell (repeat to give both)',
      collect,
      [],
    )
    .option('-c, --column <name>', 'output column(s) to include (repeatable)', collect, [])
    .option('--noindent', 'whether to disable indenting the JSON')
    .option('--prefix <prefix>', 'add a prefix to all variable names', '')
    .option('--ref <name>', 'which image of a multi-image OCI layout or docker archive')
    .option('--property <key=value>', 'image property (repeatable)', collect, [])
    .option('--tag <tag>', 'image tag (repeatable)', collect, [])
    .addOption(new Option('--visibility <v>', 'who sees the image').choices(['public', 'private', 'shared', 'community']).default('shared'))
    .option('--public', 'same as --visibility public')
    .option('--private', 'same as --visibility private')
    .option('--protected', 'refuse deletion until unset')
    .option('--trusted', 'allow device nodes in the archive (they are refused otherwise)')
    .option('--container-format <f>', 'Glance container_format to record', 'bare')
    .option('--disk-format <f>', 'Glance disk_format to record', 'raw');
  configOptions(create).addHelpText(
    'after',
    `
Archives are checked entry by entry before anything is written: absolute paths, '..',
writes through a symlink, hard links out of the image and device nodes (without
--trusted) are refused with the name of the entry. Modes, owners, xattrs and setuid bits
are kept. A progress bar is shown on stderr when it is a terminal.

Examples:
  novabox image create --file rootfs.tar.zst myimg
  novabox image create --file alpine-oci/ --format oci alpine
  novabox image create --file saved.tar --format docker-archive app
  novabox image create --file debian.tar.xz --format lxc debian
  novabox image create --file site.tar --command '["httpd", "-f"]' --workdir /srv site
${CONFIG_HELP}`,
  );
  create.action(async (name: string, o) => {
    const IMPORT = ['auto', 'tar', 'oci', 'docker-archive', 'lxc'];
    const formats = o.format as string[];
    const bad = formats.find((f) => !IMPORT.includes(f) && !OUTPUT_FORMATS.includes(f as OutputFormat));
    if (bad)
      throw new BadRequest(
        `invalid --format ${JSON.stringify(bad)}: expected one of ${IMPORT.join(', ')} (import) or ${OUTPUT_FORMATS.join(', ')} (output)`,
      );
    const importFormat = formats.filter((f) => IMPORT.includes(f)).pop() ?? 'auto';
    const outputFormat = formats.filter((f) => !IMPORT.includes(f)).pop() ?? 'table';
    const { s, caller, configPatch } = await service();
    const config = configPatch(configFlags(o));
    const bar = progress(`importing ${name}`);
    try {
      const img = await s.importFile(
        o.file,
        {
          name,
          properties: keyValues(o.property),
          tags: o.tag,
          visibility: o.public ? 'public' : o.private ? 'private' : o.visibility,
          protected: Boolean(o.protected),
          containerFormat: o.containerFormat,
          diskFormat: o.diskFormat,
        },
        caller,
        { format: importFormat as 'auto', trusted: Boolean(o.trusted), ref: o.ref, onProgress: bar },
      );
      bar.end();
      const shown = config ? s.update(img.id, { config }, caller) : img;
      ctx.stdout(formatShow(imageShow(shown), outputOptionsFrom({ ...o, format: outputFormat })));
    } finally {
      bar.end();
    }
  });

  registerPull(image, ctx, { imageShow, progress });
  registerBuild(image, ctx, imageShow);

  image
    .command('save')
    .description('write an image as an OCI image layout archive (skopeo: oci-archive:FILE)')
    .argument('<image>', 'name or id')
    .requiredOption('--file <path>', 'output file, or - for stdout')
    .action(async (ref: string, o) => {
      const { s, caller } = await service();
      const bar = progress(`saving ${ref}`);
      let done = 0;
      const d = s.download(ref, caller, (n) => bar((done += n), total));
      const total = d.size;
      if (o.file === '-') {
        if (process.stdout.isTTY) throw new BadRequest('refusing to write an archive to a terminal: redirect stdout or use --file PATH');
        await pipeline(d.stream, process.stdout);
      } else {
        const tmp = `${o.file}.tmp-${process.pid}`;
        try {
          await pipeline(d.stream, createWriteStream(tmp, { mode: 0o644 }));
          renameSync(tmp, o.file);
        } catch (err) {
          rmSync(tmp, { force: true });
          throw err;
        }
      }
      bar.end();
    });

  image
    .command('delete')
    .description('delete images (refused while a server uses one); layers no other image uses are removed')
    .argument('<image...>', 'names or ids')
    .action(async (refs: string[]) => {
      const { s, caller } = await service();
      for (const r of refs) s.delete(r, caller);
    });

  const set = image
    .command('set')
    .description('change an image record, or its runtime configuration (command, env, workdir, user, stop signal)')
    .argument('<image>', 'name or id')
    .option('--name <name>', 'new name')
    .option('--property <key=value>', 'property to set (repeatable)', collect, [])
    .option('--tag <tag>', 'tag to add (repeatable)', collect, [])
    .addOption(new Option('--visibility <v>', 'who sees the image').choices(['public', 'private', 'shared', 'community']))
    .option('--protected', 'refuse deletion')
    .option('--unprotected', 'allow deletion')
    .option('--min-disk <GiB>', 'minimum disk', positiveInt('--min-disk'))
    .option('--min-ram <MiB>', 'minimum RAM', positiveInt('--min-ram'));
  configOptions(set)
    .addHelpText(
      'after',
      `${CONFIG_HELP}

Examples:
  novabox image set --command '["httpd", "-f", "-p", "80"]' --stop-signal SIGINT web
  novabox image set --env LANG=C.UTF-8 --workdir /srv --user www-data web`,
    )
    .action(async (ref: string, o) => {
      const { s, caller, configPatch } = await service();
      const config = configPatch(configFlags(o));
      const cur = s.show(ref, caller);
      s.update(
        ref,
        {
          name: o.name,
          properties: keyValues(o.property),
          visibility: o.visibility,
          protected: o.protected ? true : o.unprotected ? false : undefined,
          tags: o.tag.length ? [...new Set([...cur.tags, ...o.tag])] : undefined,
          minDisk: o.minDisk,
          minRam: o.minRam,
          config,
        },
        caller,
      );
    });

  image
    .command('unset')
    .description('remove properties or tags of an image')
    .argument('<image>', 'name or id')
    .option('--property <key>', 'property to remove (repeatable)', collect, [])
    .option('--tag <tag>', 'tag to remove (repeatable)', collect, [])
    .option('--env <NAME>', 'environment variable to remove (repeatable)', collect, [])
    .action(async (ref: string, o) => {
      const { s, caller, configPatch } = await service();
      const config = configPatch({ unsetEnv: o.env });
      const cur = s.show(ref, caller);
      s.update(
        ref,
        {
          removeProperties: o.property,
          tags: o.tag.length ? cur.tags.filter((t) => !o.tag.includes(t)) : undefined,
          config,
        },
        caller,
      );
    });
}
