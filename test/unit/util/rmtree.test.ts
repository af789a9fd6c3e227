import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rmTree } from '../../../src/util/rmtree.js';

describe('rmTree', () => {
  const made: string[] = [];
  afterEach(() => made.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'nbx-rmtree-'));
    made.push(d);
    return d;
  };

  it('removes a tree of files and directories', () => {
    const d = tmp();
    mkdirSync(join(d, 'a/b/c'), { recursive: true });
    writeFileSync(join(d, 'a/b/f'), 'x');
    writeFileSync(join(d, 'g'), 'y');
    rmTree(d);
    expect(existsSync(d)).toBe(false);
  });

  it('unlinks symlinks without following them', () => {
    const outside = tmp();
    writeFileSync(join(outside, 'keep'), 'z');
    const d = tmp();
    symlinkSync(outside, join(d, 'link'));
    rmTree(d);
    expect(existsSync(join(outside, 'keep'))).toBe(true);
  });

  it('accepts a missing path and a plain file', () => {
    const d = tmp();
    rmTree(join(d, 'nope'));
    writeFileSync(join(d, 'file'), '');
    rmTree(join(d, 'file'));
    expect(existsSync(join(d, 'file'))).toBe(false);
  });
});
