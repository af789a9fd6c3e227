/**
 * The per-host copy of novabox-init a server's pid 1 runs from (runtime/server.ts,
 * initCopy): host root's, mode 0555, in a directory only root enters, made once per build
 * and made again when it is not what it should be; never the build's own file.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initCopy } from '../../src/runtime/server.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('initCopy (root)', () => {
  let dir: string;
  let saved: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-initcopy-'));
    saved = process.env.NOVABOX_ROOT;
    process.env.NOVABOX_ROOT = join(dir, 'root');
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.NOVABOX_ROOT;
    else process.env.NOVABOX_ROOT = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies the binary once, read-only and root-owned, into a directory only root enters; a tampered copy is made again; a new build replaces the old copy', () => {
    const src = join(dir, 'novabox-init');
    writeFileSync(src, 'build one');
    const a = initCopy(src);
    expect(a.startsWith(join(dir, 'root', 'init') + '/')).toBe(true);
    const st = statSync(a);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([0, 0, 0o555]);
    expect(statSync(join(dir, 'root', 'init')).mode & 0o777).toBe(0o700);
    expect(st.ino).not.toBe(statSync(src).ino);
    expect(readFileSync(a, 'utf8')).toBe('build one');
    // the same build: the same file, not copied again
    expect(initCopy(src)).toBe(a);
    expect(statSync(a).ino).toBe(st.ino);
    // made writable behind our back: made again
    chmodSync(a, 0o755);
    expect(initCopy(src)).toBe(a);
    expect(statSync(a).mode & 0o7777).toBe(0o555);
    // a new build: its own copy, the old one gone
    writeFileSync(src, 'build two!');
    utimesSync(src, new Date(), new Date(Date.now() + 5000));
    const b = initCopy(src);
    expect(b).not.toBe(a);
    expect(readFileSync(b, 'utf8')).toBe('build two!');
    expect(readdirSync(join(dir, 'root', 'init'))).toEqual([b.split('/').at(-1)]);
  });
});
