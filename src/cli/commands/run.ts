import { type Command, Option } from 'commander';
import { BadRequest } from '../../errors.js';
import type { CliContext } from '../context.js';
import type { RunCliOptions } from '../run-args.js';
import { runAction } from '../run-action.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function int(name: string, min: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < min)
      throw new BadRequest(`invalid ${name} ${JSON.stringify(v)}: expected a whole number >= ${min}`);
    return Number(v);
  };
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('run')
    .description('run a command in a new container in the foreground, like podman run / lxc-execute')
    .argument('[image]', 'image name (the built-in one is busybox); omitted with --rootfs')
    .argument('[command...]', "command and arguments (default: the image's)")
    .option('--rm', 'remove the container when it exits')
    .option('--name <name>', 'container name (default nb-<id>)')
    .option('--hostname <name>', 'hostname inside (default: the first 12 hex digits of the id)')
    .option('-m, --memory <bytes>', 'memory limit, with k/m/g suffix; swap is off')
    .option('--cpus <n>', 'CPU limit as a fraction of CPUs, e.g. 0.5')
    .option('--pids-limit <n>', 'maximum number of processes', int('--pids-limit', 1))
    .option('-e, --env <NAME=value>', 'set an environment variable (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <uid[:gid]>', 'user (uid or name) and group to run as')
    .option('-i, --interactive', 'keep stdin attached')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .addOption(
      new Option(
        '--network <network>',
        "novabox: the bridge network with an address of its own; none: only lo (fastest start); host: the host's",
      )
        .choices(['novabox', 'none', 'host'])
        .default('novabox'),
    )
    .addOption(
      new Option(
        '--userns <mode>',
        "auto: a user namespace with an id range of its own from root's /etc/subuid and /etc/subgid; " +
          'host: none, root inside is root on the host (default: "userns" in $NOVABOX_ROOT/config.json, else auto)',
      ).choices(['auto', 'host']),
    )
    .option('--read-only', 'mount the root filesystem read-only (/tmp, /var/tmp and /run get a tmpfs)')
    .option(
      '-p, --publish <[hostip:]hostport:port[/tcp|udp]>',
      "publish the container's PORT on the host's HOSTPORT while it runs (see server create --help; bridge network only; repeatable)",
      collect,
      [],
    )
    .option(
      '-v, --volume <src:dst[:ro]>',
      'bind a host path (/host/path:/path) or a named volume (NAME:/path, novabox volume create; held by the container while it runs) into the container (repeatable)',
      collect,
      [],
    )
    .option(
      '--security-opt <option>',
      'seccomp=unconfined: no seccomp filter (the default filter denies user namespaces, the keyring, kexec, modules, bpf, mount ...)',
      collect,
      [],
    )
    .option('--rootfs <dir>', 'use this directory as the root filesystem (read-only lower layer) instead of an image')
    .option('--dry-run', 'print the launch plan as JSON and do nothing')
    .passThroughOptions()
    .addHelpText(
      'after',
      `
Exit status: the command's own; 128+N when it was killed by signal N (137: SIGKILL,
e.g. out of memory); 125 when the container could not be set up; 126 when the command
cannot be executed; 127 when it is not found; 2 for bad input (an option, a volume);
1 for novabox's other errors.

Examples:
  novabox run --rm busybox sh -c 'echo $$; hostname'
  novabox run --rm --memory 64m --cpus 0.5 --pids-limit 64 -e FOO=bar -w /tmp busybox env
  novabox run --rm -it busybox sh`,
    )
    .action((image: string | undefined, command: string[], o: RunCliOptions) => runAction(image, command, o, ctx));
}
