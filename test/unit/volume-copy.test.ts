/**
 * The copy under volume snapshots and clones (runtime/volumes.ts), on a scratch
 * directory: a tree kept whole (modes, hard links, symlinks, fifos), an image sparse, a
 * failed copy leaving nothing, and the space check's one sentence.
 */
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  ftruncateSync,
  lstatSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
  existsSync,
  chmodSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { allocatedBytes, checkSpace, copyVolumeData } from '../../src/runtime/volumes.js';

describe('volume copies', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-volcopy-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('copies a tree with modes, hard links, symlinks and fifos', () => {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'd'), { recursive: true });
    writeFileSync(join(src, 'd', 'f'), 'one');
    chmodSync(join(src, 'd', 'f'), 0o4751);
    linkSync(join(src, 'd', 'f'), join(src, 'd', 'hard'));
    symlinkSync('/nowhere', join(src, 'd', 'sym'));
    execFileSync('mkfifo', [join(src, 'fifo')]);
    const dst = join(dir, 'dst');
    copyVolumeData(src, dst, false);
    const f = lstatSync(join(dst, 'd', 'f'));
    expect(f.mode & 0o7777).toBe(0o4751);
    expect(lstatSync(join(dst, 'd', 'hard')).ino).toBe(f.ino);
    expect(lstatSync(join(dst, 'd', 'sym')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(dst, 'fifo')).isFIFO()).toBe(true);
  });

  it('copies an image sparse, mode 0600', () => {
    const img = join(dir, 'a.img');
    const fd = openSync(img, 'w');
    ftruncateSync(fd, 64 << 20);
    writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 1 << 20);
    closeSync(fd);
    const dst = join(dir, 'b.img');
    copyVolumeData(img, dst, true);
    const st = statSync(dst);
    expect(st.size).toBe(64 << 20);
    expect(st.blocks * 512).toBeLessThan(1 << 20);
    expect(st.mode & 0o777).toBe(0o600);
    expect(allocatedBytes(dst)).toBe(st.blocks * 512);
  });

  it('a copy that fails leaves nothing and says why in one sentence', () => {
    const src = join(dir, 'src');
    mkdirSync(src);
    const dst = join(dir, 'dst');
    expect(() => copyVolumeData(join(dir, 'missing'), dst, false)).toThrow(/^cannot copy .*missing: .*No such file or directory/);
    expect(existsSync(dst)).toBe(false);
  });

  it('refuses a copy larger than the free space in one sentence', () => {
    expect(() => checkSpace(dir, 2 ** 60, 'a snapshot of volume "x"')).toThrow(
      new RegExp(`^no space for a snapshot of volume "x": it takes up to 1024PiB and ${dir} has [\\d.]+[KMGTP]?i?B free$`),
    );
    expect(() => checkSpace(dir, 1, 'a snapshot of volume "x"')).not.toThrow();
  });
});
