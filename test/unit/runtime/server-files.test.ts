import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkServerPath, idView, resolveUnion, unionRoot } from '../../../src/runtime/server-files.js';

describe('idView', () => {
  const v = idView({ uidBase: 100000, gidBase: 200000, size: 65536 });
  it.each([
    [100000, 200000, 0, 0],
    [101000, 201001, 1000, 1001],
    [0, 0, 65534, 65534], // host root is nobody inside
    [165536, 265536, 65534, 65534],
  ])('host %i:%i reads as %i:%i inside', (hu, hg, u, g) => {
    expect(v.inside(hu, hg)).toEqual({ uid: u, gid: g });
  });
  it.each([
    [0, 0, 100000, 200000],
    [1000, 1001, 101000, 201001],
    [70000, 70000, 100000, 200000], // outside the range: the server's root
  ])('%i:%i inside is stored as %i:%i', (u, g, hu, hg) => {
    expect(v.host(u, g)).toEqual({ uid: hu, gid: hg });
  });
  it('without a user namespace ids are the same on both sides', () => {
    expect(idView(undefined).inside(5, 6)).toEqual({ uid: 5, gid: 6 });
    expect(idView(undefined).host(5, 6)).toEqual({ uid: 5, gid: 6 });
  });
});

describe('checkServerPath', () => {
  it.each([
    ['/etc/passwd', '/etc/passwd'],
    ['etc/passwd', '/etc/passwd'],
    ['/a/../b', '/a/../b'],
    ['/', '/'],
  ])('%j -> %j', (p, out) => expect(checkServerPath(p)).toBe(out));
  it.each(['/..', '../etc', '/a/../../b', 'a/./../..'])('%j escapes the root', (p) => {
    expect(() => checkServerPath(p)).toThrow(/escapes the server's root/);
  });
});

describe('resolveUnion over layers (upper over lowers)', () => {
  let dir: string;
  let upper: string;
  let lower: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-union-'));
    upper = join(dir, 'upper');
    lower = join(dir, 'lower');
    mkdirSync(join(lower, 'etc'), { recursive: true });
    writeFileSync(join(lower, 'etc', 'passwd'), 'lower');
    mkdirSync(join(lower, 'usr', 'lib'), { recursive: true });
    symlinkSync('usr/lib', join(lower, 'lib'));
    mkdirSync(join(upper, 'etc'), { recursive: true });
    writeFileSync(join(upper, 'etc', 'hosts'), 'upper');
    symlinkSync('/../../..', join(upper, 'up'));
    symlinkSync('loop2', join(upper, 'loop1'));
    symlinkSync('loop1', join(upper, 'loop2'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('merges directories and resolves symlinks inside the root', () => {
    const root = unionRoot(upper, [lower], idView(undefined));
    const etc = resolveUnion(root, '/etc/x').dir;
    expect(etc.rel).toBe('etc');
    expect(etc.list()).toEqual(['hosts', 'passwd']);
    expect(etc.path('passwd')).toBe(join(lower, 'etc', 'passwd'));
    expect(etc.path('hosts')).toBe(join(upper, 'etc', 'hosts'));
    expect(resolveUnion(root, '/lib/x').dir.rel).toBe('usr/lib');
    // ".." and an absolute symlink climbing out stop at the root
    expect(resolveUnion(root, '/up/etc/passwd')).toMatchObject({ name: 'passwd' });
    expect(resolveUnion(root, '/up/etc/passwd').dir.rel).toBe('etc');
    expect(resolveUnion(root, '/../../etc/x').dir.rel).toBe('etc');
  });

  it('refuses a symlink loop and a file used as a directory', () => {
    const root = unionRoot(upper, [lower], idView(undefined));
    expect(() => resolveUnion(root, '/loop1/x')).toThrow(/too many levels of symbolic links/);
    expect(() => resolveUnion(root, '/etc/passwd/x')).toThrow(/not a directory/);
    expect(() => resolveUnion(root, '/nope/x')).toThrow(/no such file or directory/);
  });
});
