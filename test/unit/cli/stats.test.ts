import { parseNetDev } from '../../../src/runtime/network/counters.js';
import { describe, expect, it } from 'vitest';
import { humanBytes, statsRow } from '../../../src/cli/commands/server/stats.js';
import { toServerStats, type StatsSample } from '../../../src/compute/stats.js';

const cg = (cpuUsageUs: number, extra: Partial<StatsSample['cg']> = {}): StatsSample['cg'] => ({
  memoryCurrentBytes: 50 << 20,
  memoryPeakBytes: null,
  cpuUsageUs,
  pidsCurrent: 3,
  oomKills: 0,
  memoryLimitBytes: 200 << 20,
  ioReadBytes: 10,
  ioWriteBytes: 20,
  ...extra,
});

describe('toServerStats', () => {
  it('CPU % is CPU time over wall time between the samples; memory % of the limit', () => {
    const s = toServerStats(
      { id: 'i', name: 'n' },
      { atUs: 1_000_000, cg: { cpuUsageUs: 0 } }, // the first sample: CPU time alone
      { atUs: 1_100_000, cg: cg(150_000), net: { rxBytes: 5, txBytes: 7 } },
    );
    expect(s).toEqual({
      id: 'i',
      name: 'n',
      cpuPercent: 150,
      memoryBytes: 50 << 20,
      memoryLimitBytes: 200 << 20,
      memoryPercent: 25,
      pids: 3,
      netRxBytes: 5,
      netTxBytes: 7,
      blockReadBytes: 10,
      blockWriteBytes: 20,
    });
  });
  it('no limit, no network, one sample: nulls and 0 %', () => {
    const one: StatsSample = { atUs: 5, cg: cg(9, { memoryLimitBytes: null, ioReadBytes: null, ioWriteBytes: null }), net: null };
    expect(toServerStats({ id: 'i', name: 'n' }, one, one)).toMatchObject({
      cpuPercent: 0,
      memoryLimitBytes: null,
      memoryPercent: null,
      netRxBytes: null,
      blockReadBytes: null,
    });
  });
});

describe('stats output', () => {
  it.each([
    [0, '0B'],
    [1023, '1023B'],
    [1536, '1.50KiB'],
    [50 << 20, '50.0MiB'],
    [512 << 20, '512MiB'],
    [null, '--'],
  ])('humanBytes(%j) = %j', (n, s) => expect(humanBytes(n)).toBe(s));
  it('a table row has units, other formats raw numbers', () => {
    const s = toServerStats({ id: 'i', name: 'n' }, { atUs: 0, cg: { cpuUsageUs: 0 } }, { atUs: 100, cg: cg(50), net: null });
    expect(statsRow(s, true)).toMatchObject({ 'CPU %': '50.00%', 'Mem Usage': '50.0MiB', 'Net RX': '--', 'Mem %': '25.00%' });
    expect(statsRow(s, false)).toMatchObject({ 'CPU %': 50, 'Mem Usage': 50 << 20, 'Net RX': null, 'Mem %': 25 });
  });
});

describe('parseNetDev', () => {
  it("reads /proc/net/dev's counters as the server at the other end sees them (rx and tx swapped)", () => {
    const text = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo:  123456     100    0    0    0     0          0         0   123456     100    0    0    0     0       0          0',
      'nbv0a1b2c3d4e5: 1500 10 0 0 0 0 0 0 98765 20 0 0 0 0 0 0',
      '',
    ].join('\n');
    const m = parseNetDev(text);
    expect(m.get('nbv0a1b2c3d4e5')).toEqual({ rxBytes: 98765, txBytes: 1500 });
    expect(m.get('lo')).toEqual({ rxBytes: 123456, txBytes: 123456 });
    expect(m.size).toBe(2);
  });
});
