import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readProcStart, selfStart } from '../../../src/runtime/proc.js';

describe('readProcStart', () => {
  it("reads field 22 of /proc/<pid>/stat, this process's start time", () => {
    const text = readFileSync(`/proc/${process.pid}/stat`, 'latin1');
    const want = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
    expect(want).toBeGreaterThan(0);
    expect(readProcStart(process.pid)).toBe(want);
    expect(selfStart()).toBe(want);
    expect(readProcStart(1)).toBeGreaterThanOrEqual(0);
  });

  it('is undefined for a pid that does not exist', () => {
    expect(readProcStart(0x7ffffff0)).toBeUndefined();
  });
});
