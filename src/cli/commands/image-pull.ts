import type { Command } from 'commander';
import { constants } from 'node:os';
import { BadRequest } from '../../errors.js';
import type { CliContext } from '../context.js';
import { addOutputOptions, formatShow, outputOptionsFrom } from '../output.js';
import type { ImageRecord } from '../../images/service.js';

/** What `image pull` borrows from image.ts (passed in: that file registers this one). */
export interface PullHelpers {
  imageShow: (i: ImageRecord) => Record<string, unknown>;
  progress: (label: string) => ((done: number, total: number) => void) & { end: () => void };
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function tlsVerify(v: string | boolean): boolean {
  if (v === true || v === 'true') return true;
  if (v === 'false') return false;
  throw new BadRequest(`invalid --tls-verify ${JSON.stringify(v)}: expected true or false`);
}

export function registerPull(image: Command, ctx: CliContext, helpers: PullHelpers): void {
  const pull = image
    .command('pull')
    .description('copy an image from an OCI registry (or an OCI layout or archive) through skopeo and import it')
    .argument(
      '<reference>',
      'docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST], oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF]',
    )
    .option('--name <name>', "the image's name (default: the repository's last component and its tag, as app:1.0)")
    .option('--creds <user:password>', "credentials for the registry (kept out of skopeo's command line)")
    .option('--authfile <file>', 'a containers-auth.json(5) file, as written by skopeo login or podman login')
    .option('--tls-verify [bool]', "verify the registry's TLS certificate; --tls-verify=false also allows plain HTTP", tlsVerify, true);
  addOutputOptions(pull, 'show').addHelpText(
    'after',
    `
The manifest's digest is asked first: when an image of the name holds it already, that
image is shown and nothing is copied (a repeated pull is idempotent). A name that holds
another image (the tag moved) is refused: delete it or pull with --name. Layers the
store has already are not unpacked again. The image records where it came from in its
properties: novabox_pull_ref, novabox_pull_digest (the manifest's digest; an index's for a
multi-platform image, whose host platform is pulled). Progress is shown on stderr when it
is a terminal. Ctrl-C stops the pull and keeps nothing.

Examples:
  novabox image pull --tls-verify=false docker://127.0.0.1:5000/app:1.0
  novabox image pull docker://registry.example.com/team/app@sha256:<64 hex> --name app
  novabox image pull --creds me:secret docker://registry.example.com/private/app:2
  novabox image pull oci-archive:busybox.tar`,
  );
  pull.action(async (reference: string, o) => {
    const c = await ctx.compute();
    const { ImageService } = await import('../../images/service.js');
    const { pullImage } = await import('../../compute/pull.js');
    const s = new ImageService(c.store);
    const abort = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => abort.abort(sig);
    for (const sig of SIGNALS) process.on(sig, onSignal);
    const bar = helpers.progress('importing');
    try {
      const r = await pullImage(
        s,
        s.localCaller(),
        { reference, name: o.name, creds: o.creds, authfile: o.authfile, tlsVerify: o.tlsVerify },
        { signal: abort.signal, progressFd: process.stderr.isTTY ? 2 : undefined, onProgress: bar },
      );
      bar.end();
      if (r.upToDate && process.stderr.isTTY) ctx.stderr(`image ${JSON.stringify(r.image.name)} is up to date (${r.digest})\n`);
      ctx.stdout(formatShow(helpers.imageShow(r.image), outputOptionsFrom(o)));
    } catch (err) {
      bar.end();
      if (!abort.signal.aborted) throw err;
      ctx.stderr(`novabox: image pull of ${reference} interrupted by ${String(abort.signal.reason)}: nothing was kept\n`);
      ctx.exitCode = 128 + (constants.signals[abort.signal.reason as NodeJS.Signals] ?? 2);
    } finally {
      for (const sig of SIGNALS) process.off(sig, onSignal);
    }
  });
}
