import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { BadRequest, NotFound } from '../../../errors.js';
import { USER_DATA_MAX } from '../../../model/records.js';
import type { CliContext } from '../../context.js';
import { addOutputOptions, formatList, formatShow, outputOptionsFrom } from '../../output.js';
import { serverShow, addressesField } from '../../views.js';
import { collect, keyValues, positiveInt, waitOption } from './common.js';

export function registerCreate(server: Command, ctx: CliContext): void {
  const cmd = server
    .command('create')
    .description('create and start a server (or NAME-1 … NAME-N with --min/--max)')
    .argument('<name>', 'server name (Nova allows duplicates; then use ids)')
    .requiredOption('--image <image>', 'image name (built-in: busybox)')
    .requiredOption('--flavor <flavor>', 'flavor name or id (novabox flavor list)')
    .option('--property <key=value>', 'metadata property (repeatable)', collect, [])
    .option(
      '--key-name <name>',
      "keypair (novabox keypair list) whose public key the server gets: in its NoCloud seed's meta-data for cloud-init, " +
        "and, for an image without cloud-init, in root's ~/.ssh/authorized_keys before its first boot",
    )
    .option(
      '--user-data <file>',
      'user data for cloud-init (e.g. a #cloud-config file), at most 49149 bytes (Nova: 65535 characters of base64); ' +
        'inside the server at /var/lib/cloud/seed/nocloud/user-data',
    )
    .option(
      '--config-drive <bool>',
      'True: the server gets its NoCloud seed at /var/lib/cloud/seed/nocloud even without cloud-init, a key or user data, ' +
        'with the config drive layout openstack/latest/ (meta_data.json, user_data) in it',
      configDriveValue,
    )
    .addOption(
      new Option(
        '--network <network>',
        "novabox: the bridge network, a fixed address (novabox network show); none: only lo; host: the host's",
      )
        .choices(['novabox', 'none', 'host'])
        .default('novabox'),
    )
    .option('--nic <spec>', 'net-id=novabox[,v4-fixed-ip=ADDR], none or auto (openstack client form of --network)')
    .option('--min <count>', 'create at least this many servers', positiveInt('--min'))
    .option('--max <count>', 'create at most this many servers', positiveInt('--max'))
    .option(
      '--ephemeral',
      'writable layer on a tmpfs inside the server (at most the flavor disk), lost when it stops; cannot be snapshotted',
    )
    .addOption(
      new Option(
        '--userns <mode>',
        "auto: a user namespace with an id range of its own from root's /etc/subuid and /etc/subgid; " +
          'host: none, root inside is root on the host (default: "userns" in $NOVABOX_ROOT/config.json, else auto)',
      ).choices(['auto', 'host']),
    )
    .addOption(
      new Option(
        '--init <init>',
        "pid 1: novabox (novabox's own init, running the image's command) or systemd (the image's own systemd, " +
          "booted as a system container; needs --userns auto). Default: systemd when the image's os_init property " +
          'is systemd or its command is /sbin/init or /lib/systemd/systemd, else novabox',
      ).choices(['novabox', 'systemd']),
    )
    .option(
      '--restart <policy>',
      "no (default), always, on-failure or on-failure:N: restart the server's command when it exits (always) or fails, " +
        'after 0.1 s doubling up to 30 s (reset after 10 s of running); at most N times in a row; and at boot (novabox autostart)',
    )
    .option(
      '-p, --publish <[hostip:]hostport:port[/tcp|udp]>',
      "publish the server's PORT on the host's HOSTPORT (every host address, or HOSTIP only; tcp by default), " +
        'by DNAT in nftables while it runs; reachable from the host itself too (repeatable)',
      collect,
      [],
    )
    .option(
      '-v, --volume <name:/path[:ro]>',
      'mount the named volume (novabox volume create) at /path from every start on; :ro read-only (repeatable)',
      collect,
      [],
    )
    .option('--quiet', 'print only the ids of the new servers');
  waitOption(cmd);
  addOutputOptions(cmd, 'show');
  cmd.action(async (name: string, o) => {
    const count = o.max ?? o.min ?? 1;
    if (o.min && o.max && o.min > o.max) throw new BadRequest('--min is larger than --max');
    let network: string = o.network;
    let fixedIp: string | undefined;
    if (o.nic !== undefined) {
      if (cmd.getOptionValueSource('network') !== 'default') throw new BadRequest('give --nic or --network, not both');
      ({ network, fixedIp } = parseNic(o.nic));
    }
    const userData = o.userData === undefined ? undefined : readUserData(o.userData);
    const compute = await ctx.compute();
    const caller = compute.localCaller();
    const servers = await compute.create(
      {
        name,
        image: o.image,
        flavor: o.flavor,
        properties: keyValues(o.property),
        keyName: o.keyName,
        network: network as 'novabox',
        fixedIp,
        count,
        ephemeral: Boolean(o.ephemeral),
        userns: o.userns,
        restart: o.restart,
        userData,
        configDrive: o.configDrive,
        publish: o.publish,
        volumes: o.volume,
        init: o.init,
      },
      caller,
    );
    const failed = servers.filter((s) => s.vmState === 'error');
    const out = outputOptionsFrom(o);
    if (o.quiet) {
      ctx.stdout(servers.map((s) => s.id + '\n').join(''));
    } else if (servers.length === 1) {
      const s = servers[0];
      ctx.stdout(
        formatShow(
          serverShow(
            s,
            compute.store.flavors.get(s.flavorId),
            compute.facts(s.id)?.initPid ?? null,
            addressesField(compute.addresses(s), out.format),
            compute.idmapField(s),
            undefined,
            compute.ports.field(s.id),
            compute.volumesField(s.id),
          ),
          out,
        ),
      );
    } else {
      ctx.stdout(
        formatList(
          ['ID', 'Name', 'Status'],
          servers.map((s) => ({ ID: s.id, Name: s.name, Status: s.vmState === 'error' ? 'ERROR' : 'ACTIVE' })),
          out,
        ),
      );
    }
    if (failed.length) {
      ctx.stderr(`novabox: ${failed.length} of ${servers.length} servers failed: ${failed[0].fault?.message ?? 'unknown error'}\n`);
      ctx.exitCode = 1;
    }
  });
}

/** `--config-drive True|False` (the openstack client's words; a volume name means nothing here) */
function configDriveValue(v: string): boolean {
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  throw new BadRequest(`invalid --config-drive ${JSON.stringify(v)}: expected True or False (novabox has no config drive volumes)`);
}

/** The file's bytes as Nova's user_data (base64); the size is checked by compute. */
function readUserData(file: string): string {
  try {
    const b64 = readFileSync(file).toString('base64');
    if (b64.length > USER_DATA_MAX)
      throw new BadRequest(
        `--user-data ${file} is too big: Nova takes at most ${Math.floor(USER_DATA_MAX / 4) * 3} bytes (${USER_DATA_MAX} characters of base64)`,
      );
    return b64;
  } catch (err) {
    if (err instanceof BadRequest) throw err;
    throw new BadRequest(`cannot read --user-data ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      cause: err,
    });
  }
}

/** `--nic none|auto|net-id=NAME[,v4-fixed-ip=ADDR]`, as the openstack client takes it. */
export function parseNic(spec: string): { network: string; fixedIp?: string } {
  if (spec === 'none') return { network: 'none' };
  if (spec === 'auto') return { network: 'novabox' };
  const out: { network?: string; fixedIp?: string } = {};
  for (const part of spec.split(',')) {
    const [k, v] = [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)];
    if (k === 'net-id' || k === 'net-name') out.network = v;
    else if (k === 'v4-fixed-ip') out.fixedIp = v;
    else throw new BadRequest(`invalid --nic ${JSON.stringify(spec)}: expected net-id=novabox[,v4-fixed-ip=ADDR], none or auto`);
  }
  if (out.network !== 'novabox') {
    throw new NotFound(
      `invalid --nic ${JSON.stringify(spec)}: network "${out.network ?? ''}" not found (novabox has one network: "novabox")`,
    );
  }
  return { network: out.network, fixedIp: out.fixedIp };
}
