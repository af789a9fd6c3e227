import type { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { addOutputOptions, formatList, outputOptionsFrom } from '../../output.js';
import { seconds } from './common.js';
import type { ServerStats } from '../../../compute/stats.js';

const COLUMNS = ['ID', 'Name', 'CPU %', 'Mem Usage', 'Mem Limit', 'Mem %', 'Net RX', 'Net TX', 'Block Read', 'Block Write', 'PIDs'];

/** 1536 -> "1.5KiB" (podman's units) */
export function humanBytes(n: number | null): string {
  if (n === null) return '--';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v}B` : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)}${units[i]}`;
}

/** A row: numbers for json/yaml/csv/value, human units in a table. */
export function statsRow(s: ServerStats, human: boolean): Record<string, unknown> {
  const b = (n: number | null) => (human ? humanBytes(n) : n);
  return {
    ID: s.id,
    Name: s.name,
    'CPU %': human ? `${s.cpuPercent.toFixed(2)}%` : s.cpuPercent,
    'Mem Usage': b(s.memoryBytes),
    'Mem Limit': b(s.memoryLimitBytes),
    'Mem %': human ? (s.memoryPercent === null ? '--' : `${s.memoryPercent.toFixed(2)}%`) : s.memoryPercent,
    'Net RX': b(s.netRxBytes),
    'Net TX': b(s.netTxBytes),
    'Block Read': b(s.blockReadBytes),
    'Block Write': b(s.blockWriteBytes),
    PIDs: s.pids,
  };
}

export function registerStats(server: Command, ctx: CliContext): void {
  const cmd = server
    .command('stats')
    .description('live usage of running servers (podman stats): CPU, memory, network, block I/O, pids')
    .argument('[server...]', 'names or ids (default: every running server)')
    .option('--no-stream', 'print once and exit')
    .option('--interval <seconds>', 'seconds between refreshes while streaming', seconds('--interval'), 1)
    .addHelpText(
      'after',
      `
CPU % is the CPU time used over the wall time between two samples (100% = one CPU busy;
one answer samples over 0.05 s). Memory and pids come from the server's cgroup, block I/O
from its io.stat (v2) or blkio throttle counters (v1), network from the host end of its
veth ("--" for --network none|host). -f json|yaml|csv|value prints raw numbers (bytes).
Streaming ends with Ctrl-C.

Examples:
  novabox server stats --no-stream
  novabox server stats --no-stream -f json web1`,
    );
  addOutputOptions(cmd, 'list');
  cmd.action(async (names: string[], o) => {
    const c = await ctx.compute();
    const out = outputOptionsFrom(o);
    const human = out.format === 'table';
    const print = (stats: ServerStats[]) =>
      ctx.stdout(
        formatList(
          COLUMNS,
          stats.map((s) => statsRow(s, human)),
          { ...out, printEmpty: out.printEmpty || human },
        ),
      );
    let round = await c.stats(names, c.localCaller());
    if (o.stream === false) {
      print(round.stats);
      return;
    }
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const clear = human && process.stdout.isTTY;
    try {
      for (;;) {
        if (clear) ctx.stdout('\x1b[2J\x1b[H');
        print(round.stats);
        await new Promise<void>((r) => {
          const t = setTimeout(r, o.interval * 1000);
          abort.signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
        });
        if (abort.signal.aborted) return;
        round = await c.stats(names, c.localCaller(), { previous: round.samples });
      }
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  });
}
