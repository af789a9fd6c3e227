import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConsoleTail, lastLines, watchConsole } from '../../../src/runtime/console-tail.js';

describe('ConsoleTail', () => {
  let dir: string;
  let log: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-tail-'));
    log = join(dir, 'console.log');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the backlog (rotated file first), then only what is new', () => {
    writeFileSync(`${log}.1`, 'a\n');
    writeFileSync(log, 'b\n');
    const t = new ConsoleTail(log);
    expect(t.backlog()).toBe('a\nb\n');
    expect(t.read()).toBe('');
    appendFileSync(log, 'c\n');
    expect(t.read()).toBe('c\n');
    t.close();
  });

  it('follows the rotation as the monitor does it: the rest of the old file, then the new one from its start', () => {
    writeFileSync(log, 'one\n');
    const t = new ConsoleTail(log);
    expect(t.backlog()).toBe('one\n');
    appendFileSync(log, 'two\n'); // written before the rotation, not yet read
    renameSync(log, `${log}.1`);
    expect(t.read()).toBe('two\n'); // between rename and reopen: nothing lost, nothing twice
    writeFileSync(log, 'three\n');
    appendFileSync(log, 'four\n');
    expect(t.read()).toBe('three\nfour\n');
    expect(t.read()).toBe('');
    t.close();
  });

  it('waits for a log that does not exist yet', () => {
    const t = new ConsoleTail(log);
    expect(t.backlog()).toBe('');
    expect(t.read()).toBe('');
    writeFileSync(log, 'late\n');
    expect(t.read()).toBe('late\n');
    t.close();
  });

  it('wakes on a write through inotify, well before its slow timer', async () => {
    writeFileSync(log, '');
    let woke = 0;
    const started = Date.now();
    const stop = watchConsole(log, () => (woke = Date.now()), 60_000);
    try {
      appendFileSync(log, 'x\n');
      for (let i = 0; i < 100 && !woke; i++) await new Promise((r) => setTimeout(r, 5));
      expect(woke).toBeGreaterThan(0);
      expect(woke - started).toBeLessThan(500);
    } finally {
      stop();
    }
  });
});

describe('lastLines', () => {
  it.each([
    ['a\nb\nc\n', undefined, 'a\nb\nc\n'],
    ['a\nb\nc\n', 2, 'b\nc\n'],
    ['a\nb\nc\n', 0, ''],
    ['a\nb\nc\n', 9, 'a\nb\nc\n'],
    ['a\nb', 1, 'b'],
    ['', 3, ''],
  ])('%j, %s lines -> %j', (text, n, out) => {
    expect(lastLines(text, n)).toBe(out);
  });
});
