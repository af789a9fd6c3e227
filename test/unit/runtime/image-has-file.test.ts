import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { imageHasFile } from '../../../src/runtime/server-files.js';

// A system container boots the image's own /sbin/init: found through merged-/usr symlinks
// across layers as execve would follow them.
const base = mkdtempSync(join(tmpdir(), 'nb-hasfile-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

function layer(name: string, build: (d: string) => void): string {
  const d = join(base, name);
  mkdirSync(d, { recursive: true });
  build(d);
  return d;
}

describe('imageHasFile', () => {
  // Debian bookworm: /sbin -> usr/sbin, /lib -> usr/lib, /usr/sbin/init -> ../lib/systemd/systemd
  const lower = layer('lower', (d) => {
    mkdirSync(join(d, 'usr/sbin'), { recursive: true });
    mkdirSync(join(d, 'usr/lib/systemd'), { recursive: true });
    writeFileSync(join(d, 'usr/lib/systemd/systemd'), '');
    symlinkSync('usr/sbin', join(d, 'sbin'));
    symlinkSync('usr/lib', join(d, 'lib'));
    symlinkSync('../lib/systemd/systemd', join(d, 'usr/sbin/init'));
    symlinkSync('/nowhere', join(d, 'usr/sbin/dangling'));
    symlinkSync('loop2', join(d, 'usr/sbin/loop1'));
    symlinkSync('loop1', join(d, 'usr/sbin/loop2'));
  });
  // a layer above that adds an absolute link
  const upper = layer('upper', (d) => {
    mkdirSync(join(d, 'usr/bin'), { recursive: true });
    symlinkSync('/lib/systemd/systemd', join(d, 'usr/bin/init-abs'));
  });

  it.each<[string, boolean]>([
    ['/sbin/init', true],
    ['/lib/systemd/systemd', true],
    ['/usr/lib/systemd/systemd', true],
    ['/usr/bin/init-abs', true],
    ['/sbin/nonexistent', false],
    ['/usr/sbin/dangling', false],
    ['/usr/sbin/loop1', false],
    ['/usr/lib/systemd', false], // a directory
    ['/../../sbin/init', true], // ".." stops at the root
  ])('%s: %s', (path, want) => {
    expect(imageHasFile([upper, lower], path)).toBe(want);
  });

  it('an image without the file', () => {
    expect(imageHasFile([layer('empty', () => {})], '/sbin/init')).toBe(false);
  });
});
