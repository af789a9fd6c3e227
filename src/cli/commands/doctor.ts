import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { addOutputOptions, formatList, outputOptionsFrom } from '../output.js';

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('doctor')
    .description(
      'find and remove what crashes left behind: veths, address leases, NAT tables, published-port rules, volume snapshots and clones a killed command left half-copied',
    )
    .option('--dry-run', 'only report');
  addOutputOptions(cmd, 'list');
  cmd.action(async (o) => {
    const c = await ctx.compute();
    // Reconcile every server first: a killed create or a dead init is settled before we judge.
    c.list({}, c.localCaller());
    const { doctor } = await import('../../compute/doctor.js');
    const findings = doctor(c, { dryRun: Boolean(o.dryRun) });
    const out = outputOptionsFrom(o);
    if (!findings.length && out.format === 'table') {
      ctx.stdout('nothing to fix\n');
      return;
    }
    ctx.stdout(
      formatList(
        ['Kind', 'Name', 'Problem', 'Fixed'],
        findings.map((f) => ({ Kind: f.kind, Name: f.name, Problem: f.problem, Fixed: f.fixed })),
        out,
      ),
    );
  });
}
