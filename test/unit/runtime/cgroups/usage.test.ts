import { describe, expect, it } from 'vitest';
import { parseBlkioBytes, parseIoStat, parseLimit } from '../../../../src/runtime/cgroups/cgroupfs.js';

describe('cgroup usage files', () => {
  it.each([
    ['max\n', null],
    ['536870912\n', 536870912],
    ['9223372036854771712\n', null], // v1: no limit
    [undefined, null],
  ])('limit %j -> %j', (text, out) => expect(parseLimit(text)).toBe(out));

  it('v2 io.stat sums bytes over devices', () => {
    const text = '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n';
    expect(parseIoStat(text)).toEqual({ read: 4097, write: 8194 });
    expect(parseIoStat('')).toEqual({ read: 0, write: 0 });
    expect(parseIoStat(undefined)).toBeNull();
  });

  it('v1 blkio.throttle.io_service_bytes sums Read and Write over devices, not Total', () => {
    const text = '8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\n8:0 Async 0\n8:0 Total 300\n8:16 Read 1\n8:16 Write 2\nTotal 303\n';
    expect(parseBlkioBytes(text)).toEqual({ read: 101, write: 202 });
    expect(parseBlkioBytes('Total 0\n')).toEqual({ read: 0, write: 0 });
  });
});
