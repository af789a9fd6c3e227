import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { autostartUnit, autostartUnitName } from '../../compute/restart.js';
import type { CliContext } from '../context.js';
import { positiveInt } from './server/common.js';

const HELP = `
Servers come back after a host reboot when their restart policy is always or on-failure
(server create --restart, server set --restart). novabox has no daemon: \`autostart
install\` writes a systemd unit (one per state root) that runs \`novabox autostart run\`
once at boot; that records each server that was running as stopped (its processes are
gone) and starts those whose policy asks for it, --parallel at a time. A crash while the
host is up is the server's monitor's business (see server create --help).

Examples:
  novabox autostart install              # /etc/systemd/system, then systemctl enable
  novabox autostart run --parallel 8     # what the unit runs`;

export function register(program: Command, ctx: CliContext): void {
  const autostart = program
    .command('autostart')
    .description('bring servers with a restart policy back after a host reboot (a systemd unit)')
    .addHelpText('after', HELP);

  autostart
    .command('run')
    .description('start the servers that ran before the host went down and whose policy is always or on-failure')
    .option('--parallel <n>', 'servers started at a time', positiveInt('--parallel'), 4)
    .action(async (o: { parallel: number }) => {
      const c = await ctx.compute();
      const r = await c.autostart(o.parallel);
      for (const n of r.started) ctx.stdout(`started ${n}\n`);
      if (r.failed.length) {
        ctx.stderr(`novabox: ${r.failed.length} server(s) failed to start: ${r.failed.join(', ')} (see novabox console log show)\n`);
        ctx.exitCode = 1;
      }
    });

  autostart
    .command('install')
    .description('write the boot unit (novabox autostart run for this state root) and enable it')
    .option('--unit-dir <dir>', 'where systemd units go', '/etc/systemd/system')
    .option('--parallel <n>', 'servers started at a time at boot', positiveInt('--parallel'), 4)
    .option('--no-enable', 'write the unit only (no systemctl daemon-reload / enable)')
    .action(async (o: { unitDir: string; parallel: number; enable: boolean }) => {
      const c = await ctx.compute();
      const root = c.network.root;
      const name = autostartUnitName(root, createHash('sha256').update(root).digest('hex'));
      const file = join(resolve(o.unitDir), name);
      mkdirSync(resolve(o.unitDir), { recursive: true });
      writeFileSync(`${file}.tmp`, autostartUnit(root, c.novaboxCommand(), o.parallel));
      renameSync(`${file}.tmp`, file);
      ctx.stdout(`${file}\n`);
      if (!o.enable) return;
      for (const args of [['daemon-reload'], ['enable', name]]) {
        const r = spawnSync('systemctl', args, { encoding: 'utf8' });
        if (r.error || r.status !== 0) {
          ctx.stderr(
            `novabox: the unit is written, but "systemctl ${args.join(' ')}" failed: ${r.error?.message ?? r.stderr.trim()}; enable ${name} by hand\n`,
          );
          ctx.exitCode = 1;
          return;
        }
      }
    });
}
