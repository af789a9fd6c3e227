import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { etcPaths, writeEtcFiles } from '../../../../src/runtime/network/etc-files.js';

describe('writeEtcFiles', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-etc-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a restart leaves files that already say the same alone (same inode), and rewrites the ones that differ', () => {
    const f = writeEtcFiles(dir, 'web1', '10.89.0.2');
    expect(f).toEqual(etcPaths(dir));
    expect(readFileSync(f.hosts, 'utf8')).toContain('10.89.0.2\tweb1\n');
    const ino = (p: string) => statSync(p).ino;
    const before = [ino(f.hosts), ino(f.hostname), ino(f.resolv)];
    writeEtcFiles(dir, 'web1', '10.89.0.2');
    expect([ino(f.hosts), ino(f.hostname), ino(f.resolv)]).toEqual(before);
    // the server's root edited its hostname, and its address changed: both written anew
    writeFileSync(f.hostname, 'edited\n');
    writeEtcFiles(dir, 'web1', '10.89.0.9');
    expect(readFileSync(f.hostname, 'utf8')).toBe('web1\n');
    expect(readFileSync(f.hosts, 'utf8')).toContain('10.89.0.9\tweb1\n');
    expect(ino(f.resolv)).toBe(before[2]);
  });
});
