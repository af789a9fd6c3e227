/**
 * `novabox image build debian`: a Debian system container image from Debian's archive,
 * through debootstrap (images/debootstrap.ts), cached. Registered by `image` (image.ts).
 */
import type { Command } from 'commander';
import { BadRequest } from '../../errors.js';
import type { CliContext } from '../context.js';
import { addOutputOptions, formatShow, outputOptionsFrom } from '../output.js';
import type { ImageRecord } from '../../images/service.js';
import { collect } from './server/common.js';

/** A one-line status on stderr when it is a terminal, with the seconds spent (ticking); nothing otherwise. */
function statusLine(label: string): ((text: string) => void) & { end: () => void } {
  const tty = process.stderr.isTTY;
  const t0 = Date.now();
  let last = '';
  let timer: NodeJS.Timeout | undefined;
  const draw = () => {
    const width = Math.max(20, (process.stderr.columns || 80) - 1);
    const line = `${label} [${Math.round((Date.now() - t0) / 1000)}s] ${last}`;
    process.stderr.write(`\r${line.length > width ? `${line.slice(0, width - 1)}…` : line}\x1b[K`);
  };
  const f = ((text: string) => {
    if (!tty) return;
    last = text;
    draw();
    timer ??= setInterval(draw, 1000).unref();
  }) as ((text: string) => void) & { end: () => void };
  f.end = () => {
    if (!timer) return;
    clearInterval(timer);
    timer = undefined;
    process.stderr.write('\r\x1b[K');
  };
  return f;
}

/** `show` is image.ts's view of a record (passed in: image.ts registers this command). */
export function registerBuild(image: Command, ctx: CliContext, show: (i: ImageRecord) => Record<string, unknown>): void {
  const build = image
    .command('build')
    .description("build an image from a distribution's archive (debian: debootstrap), cached")
    .argument('<distribution>', 'debian')
    .requiredOption('--release <codename>', 'the Debian release: bookworm, trixie, bullseye, ... (or stable, testing)')
    .option('--variant <v>', "debootstrap's variant: minbase (default, as LXC's debian template), buildd, default (debootstrap's own)")
    .option('--include <pkgs>', 'more packages, comma-separated (repeatable), added to the default set', collect, [])
    .option('--mirror <url>', 'the Debian archive (default http://deb.debian.org/debian)')
    .option('--name <name>', 'image name (default debian-<release>)')
    .option(
      '--cache-dir <dir>',
      'where debootstrap results are kept (default $NOVABOX_CACHE/debootstrap, else /var/cache/novabox/debootstrap)',
    )
    .option('--no-cache', 'run debootstrap even when the cache has this build (the new result replaces it)');
  addOutputOptions(build, 'show');
  build.addHelpText(
    'after',
    `
Runs Debian's debootstrap (Debian package debootstrap) into a staging dir under the
state root, then imports the root filesystem as one layer with the image properties
os_distro=debian, os_version (12 for bookworm), os_init=systemd, architecture,
debian_release and debian_variant. Only the archive given by --mirror is used.

Packages: debootstrap's set for the variant plus systemd-sysv, dbus, iproute2, netbase,
procps, openssh-server, cloud-init and python3-cffi-backend (cloud-init's cryptography
needs it: debootstrap does not resolve virtual packages), plus --include.

The result is cached by (release, variant, package set, mirror, architecture): a second
build of the same set imports the cached rootfs in seconds. Before caching, what varies
between two debootstraps is removed, so a rebuild has the same file list: apt's caches and
lists, /var/log's files, the machine id (left empty), ssh host keys (a drop-in of
ssh.service runs ssh-keygen -A before sshd), the host's hostname and resolv.conf, and the
device nodes of /dev (a server's /dev is novabox's own).

A one-line status is shown on stderr when it is a terminal. SIGINT, SIGTERM or SIGHUP
stops debootstrap and removes everything the build made (exit 130, 143, 129).

Examples:
  novabox image build debian --release bookworm
  novabox image build debian --release bookworm --include vim,curl --name deb-tools
  novabox image build debian --release trixie --mirror http://127.0.0.1:3142/debian`,
  );
  build.action(async (distribution: string, o) => {
    if (distribution !== 'debian') throw new BadRequest(`cannot build ${JSON.stringify(distribution)}: image build knows debian`);
    const c = await ctx.compute();
    const { ImageService, DEFAULT_CACHE_DIR, Interrupted } = await import('../../images/service.js');
    const s = new ImageService(c.store);
    const cacheDir =
      (o.cacheDir as string | undefined) ?? (process.env.NOVABOX_CACHE ? `${process.env.NOVABOX_CACHE}/debootstrap` : DEFAULT_CACHE_DIR);
    const status = statusLine(`building ${o.name ?? `debian-${o.release}`}`);
    const abort = new AbortController();
    let signalName = '';
    const onSignal = (sig: NodeJS.Signals) => {
      signalName = sig;
      abort.abort();
    };
    const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const sig of SIGNALS) process.on(sig, onSignal);
    try {
      const r = await s.buildDebian(
        { release: o.release, variant: o.variant, include: o.include, mirror: o.mirror, name: o.name },
        s.localCaller(),
        { cacheDir, noCache: o.cache === false, onStatus: status, signal: abort.signal },
      );
      status.end();
      ctx.stdout(formatShow(show(r.image), outputOptionsFrom(o)));
    } catch (err) {
      status.end();
      if (err instanceof Interrupted) {
        ctx.stderr(`novabox: ${err.message} (${signalName || 'signal'})\n`);
        ctx.exitCode = 128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as Record<string, number>)[signalName || 'SIGINT'];
        return;
      }
      throw err;
    } finally {
      for (const sig of SIGNALS) process.off(sig, onSignal);
    }
  });
}
