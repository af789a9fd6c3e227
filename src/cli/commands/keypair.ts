/**
 * `novabox keypair create/list/show/delete`, as `openstack keypair`: the local user's
 * keypairs (the same rows `serve` shows that user), through compute/keypairs.ts.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import type { CliContext } from '../context.js';
import { BadRequest } from '../../errors.js';
import { addOutputOptions, formatList, formatShow, outputOptionsFrom } from '../output.js';
import type { Keypair } from '../../model/records.js';

async function service(ctx: CliContext) {
  const compute = await ctx.compute();
  const { KeypairService } = await import('../../compute/keypairs.js');
  return { keypairs: new KeypairService(compute.store), caller: compute.localCaller() };
}

function readKey(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new BadRequest(`cannot read --public-key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      cause: err,
    });
  }
}

/** `openstack keypair show`'s fields */
function keypairView(k: Keypair): Record<string, unknown> {
  return {
    created_at: k.createdAt,
    fingerprint: k.fingerprint,
    id: k.name,
    is_deleted: false,
    name: k.name,
    private_key: null,
    type: k.type,
    user_id: k.userId,
  };
}

export function register(program: Command, ctx: CliContext): void {
  const keypair = program
    .command('keypair')
    .description('ssh keypairs for servers (openstack keypair ... grammar): server create --key-name gives one to a server');

  const create = keypair
    .command('create')
    .description('import a public key, or generate an Ed25519 pair and print its private key once (it is not stored)')
    .argument('<name>', 'keypair name (letters, digits, spaces, ".", "_", "-")')
    .option('--public-key <file>', 'an OpenSSH public key to import (e.g. ~/.ssh/id_ed25519.pub)')
    .option('--private-key <file>', 'write the generated private key to this file (mode 0600) instead of printing it')
    .addOption(new Option('--type <type>', 'keypair type').choices(['ssh']).default('ssh'));
  addOutputOptions(create, 'show');
  create.action(async (name: string, o) => {
    if (o.publicKey !== undefined && o.privateKey !== undefined) throw new BadRequest('give --public-key or --private-key, not both');
    const publicKey = o.publicKey === undefined ? undefined : readKey(o.publicKey);
    const { keypairs, caller } = await service(ctx);
    if (o.privateKey !== undefined) {
      // refuse an existing file before the keypair exists: nothing made on bad input
      try {
        writeFileSync(o.privateKey, '', { flag: 'wx', mode: 0o600 });
      } catch (err) {
        throw new BadRequest(
          `cannot write --private-key ${o.privateKey}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
    }
    let made: Awaited<ReturnType<typeof keypairs.create>>;
    try {
      made = await keypairs.create(name, publicKey, caller, o.type, 'ed25519');
    } catch (err) {
      if (o.privateKey !== undefined) rmSync(o.privateKey, { force: true });
      throw err;
    }
    if (made.privateKey === undefined) {
      ctx.stdout(formatShow(keypairView(made), outputOptionsFrom(o)));
    } else if (o.privateKey !== undefined) {
      writeFileSync(o.privateKey, made.privateKey, { mode: 0o600 });
      ctx.stdout(formatShow(keypairView(made), outputOptionsFrom(o)));
    } else {
      ctx.stdout(made.privateKey);
    }
  });

  const list = keypair.command('list').description('list keypairs');
  addOutputOptions(list, 'list');
  list.action(async (o) => {
    const { keypairs, caller } = await service(ctx);
    const rows = keypairs.list(caller).map((k) => ({ Name: k.name, Fingerprint: k.fingerprint, Type: k.type }));
    ctx.stdout(formatList(['Name', 'Fingerprint', 'Type'], rows, outputOptionsFrom(o)));
  });

  const show = keypair
    .command('show')
    .description('show a keypair')
    .argument('<name>', 'keypair name')
    .option('--public-key', 'print only the public key');
  addOutputOptions(show, 'show');
  show.action(async (name: string, o) => {
    const { keypairs, caller } = await service(ctx);
    const k = keypairs.get(name, caller);
    ctx.stdout(o.publicKey ? `${k.publicKey}\n` : formatShow(keypairView(k), outputOptionsFrom(o)));
  });

  keypair
    .command('delete')
    .description('delete keypairs (servers keep the public key they were given)')
    .argument('<name...>', 'keypair names')
    .action(async (names: string[]) => {
      const { keypairs, caller } = await service(ctx);
      for (const n of names) keypairs.delete(n, caller);
    });
}
