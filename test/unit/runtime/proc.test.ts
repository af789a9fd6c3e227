import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { childPids, readProcStart, readProcState, selfStart } from '../../../src/runtime/proc.js';

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

describe('children and their state', () => {
  it('lists a child of this process with its name and state; none for a gone pid', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn('sleep', ['5'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      for (let i = 0; i < 100 && readProcState(child.pid!)?.comm !== 'sleep'; i++) await new Promise((r) => setTimeout(r, 10));
      expect(childPids()).toContain(child.pid);
      expect(readProcState(child.pid!)).toEqual({ comm: 'sleep', state: expect.stringMatching(/^[SR]$/) });
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((r) => child.once('exit', r));
    expect(childPids()).not.toContain(child.pid);
    expect(readProcState(0x7ffffff0)).toBeUndefined();
  });
});
