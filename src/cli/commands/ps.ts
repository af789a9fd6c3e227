import type { Command } from 'commander';
import { requireRoot, type CliContext } from '../context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('ps')
    .description('list containers made by `novabox run` (running ones; -a: also exited ones kept without --rm)')
    .option('-a, --all', 'include exited containers')
    .option('-f, --format <fmt>', 'table or json', 'table')
    .action(async (o) => {
      requireRoot();
      const { listContainers } = await import('../../compute/containers.js');
      const rows = listContainers(Boolean(o.all));
      if (o.format === 'json') {
        ctx.stdout(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      const { formatTable } = await import('../output.js');
      ctx.stdout(
        formatTable(
          ['ID', 'Name', 'Image', 'Command', 'Status', 'Created', 'Ports'],
          rows.map((r) => [
            r.id.slice(0, 12),
            r.name,
            r.image,
            r.command.join(' '),
            r.status === 'exited' ? `exited (${r.exitCode})` : r.status,
            r.created,
            (r.ports ?? []).join(', '),
          ]),
        ),
      );
    });
}
