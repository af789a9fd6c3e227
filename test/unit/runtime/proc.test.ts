import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { bootId, childPids, isSameProcess, readProcStart, readProcState, selfStart } from '../../../src/runtime/proc.js';

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
