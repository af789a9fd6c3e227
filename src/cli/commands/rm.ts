import type { Command } from 'commander';
import { requireRoot, type CliContext } from '../context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('rm')
    .description('remove containers kept by `novabox run` without --rm')
    .argument('<container...>', 'names or ids')
    .option('-f, --force', 'also kill and remove running containers')
    .action(async (names: string[], o) => {
      requireRoot();
      const { removeContainer } = await import('../../compute/containers.js');
      for (const n of names) {
        removeContainer(n, Boolean(o.force));
        ctx.stdout(n + '\n');
      }
    });
}
