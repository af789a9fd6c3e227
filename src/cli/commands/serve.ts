import { createRequire } from 'node:module';
import type { Command } from 'commander';
import { NovaboxError, type ErrorCode } from '../../errors.js';
import { EXIT_CODES, requireRoot, type CliContext } from '../context.js';

/**
 * `novabox serve`. The API (fastify and all of src/api) is its own bundle, loaded only
 * here: no other command pays for it at start-up.
 */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('serve the OpenStack API (Keystone v3, Nova 2.1, Glance v2) over the local servers')
    .option('--listen <host:port>', 'address to listen on ([IPv6]:PORT for IPv6; port 0 picks a free one)', '127.0.0.1:5000')
    .option('--tls-cert <file>', 'PEM certificate chain: serve HTTPS')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--no-access-log', 'do not print one line per request')
    .addHelpText(
      'after',
      `
On first start: creates the user "admin" in the project "admin" (roles admin, member,
reader), with the password from NOVABOX_ADMIN_PASSWORD or a new random one, and writes
$NOVABOX_ROOT/clouds.yaml (mode 0600, cloud "novabox"). Then:
  export OS_CLIENT_CONFIG_FILE=$NOVABOX_ROOT/clouds.yaml OS_CLOUD=novabox
  openstack server create --image busybox --flavor m1.tiny --wait web1
Servers are the same as the CLI's: \`novabox server list\` shows them too. Listening
anywhere but loopback without --tls-cert/--tls-key prints a warning. SIGINT/SIGTERM stop
it after background work (server starts) finishes; a server left in BUILD by a killed
serve is reconciled on the next start.`,
    )
    .action(async (o: { listen: string; tlsCert?: string; tlsKey?: string; accessLog: boolean }) => {
      requireRoot();
      const { serve } = await loadApi();
      try {
        ctx.exitCode = await serve({ ...o, out: ctx.stdout, err: ctx.stderr });
      } catch (err) {
        // The API bundle has its own copy of the error classes: same code, same message.
        const e = err as { code?: unknown; message?: string; hint?: string };
        if (err instanceof Error && !(err instanceof NovaboxError) && typeof e.code === 'string' && Object.hasOwn(EXIT_CODES, e.code)) {
          throw new NovaboxError(e.code as ErrorCode, err.message, { hint: e.hint, cause: err });
        }
        throw err;
      }
    });
}

declare const NOVABOX_VERSION: string | undefined;

/** Bundled: dist/novabox-api.cjs beside this bundle (required: the launcher's vm script has no import()). */
async function loadApi(): Promise<typeof import('../../api/serve.js')> {
  if (typeof NOVABOX_VERSION === 'string')
    return createRequire(import.meta.url)('./novabox-api.cjs') as typeof import('../../api/serve.js');
  return import('../../api/serve.js');
}
