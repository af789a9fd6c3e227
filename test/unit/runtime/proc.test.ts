import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { bootId, isSameProcess, readProcStart, selfStart } from '../../../src/runtime/proc.js';

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

describe('isSameProcess', () => {
  it('is true for this process with its start time, with or without the boot id', () => {
    expect(isSameProcess(process.pid, selfStart())).toBe(true);
    expect(isSameProcess(process.pid, selfStart(), bootId())).toBe(true);
  });

  it('is false for another start time (a reused pid), another boot, or no record', () => {
    expect(isSameProcess(process.pid, selfStart() + 1)).toBe(false);
    expect(isSameProcess(process.pid, selfStart(), '00000000-0000-0000-0000-000000000000')).toBe(false);
    expect(isSameProcess(null, selfStart())).toBe(false);
    expect(isSameProcess(process.pid, null)).toBe(false);
    expect(isSameProcess(process.pid, undefined)).toBe(false);
  });

  it('is false for a process that has exited', () => {
    const r = spawnSync('sh', ['-c', 'cat /proc/self/stat']);
    const text = r.stdout.toString('latin1');
    const pid = Number(text.split(' ')[0]);
    const start = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
    expect(isSameProcess(pid, start)).toBe(false);
  });
});
