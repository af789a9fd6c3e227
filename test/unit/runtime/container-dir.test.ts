import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { releaseName, reserveName } from '../../../src/runtime/container.js';
import { containerDirRemovalCases } from '../../helpers/container-dir-cases.js';
import { rmRunDir } from '../../../src/sys/native.js';

it('removes through build/novabox.node (one job in the thread pool) when it is built', async () => {
  const p = rmRunDir('/nonexistent/novabox-test-dir');
  expect(p).toBeInstanceOf(Promise);
  expect(await p).toBe(0); // a missing directory is no error
  const dir = mkdtempSync(join(tmpdir(), 'nbx-cdir-'));
  writeFileSync(join(dir, 'other'), '');
  expect(await rmRunDir(dir)).toBe(-39); // ENOTEMPTY: the caller walks
  rmSync(dir, { recursive: true });
});

// what overlayfs and writeState leave, with a work/work its owner can enter: the mode-0
// one overlayfs really leaves is removed as root in test/integration/container-dir.test.ts
containerDirRemovalCases(0o700);

describe('the name of a `run` container', () => {
  const saved = process.env.NOVABOX_ROOT;
  afterEach(() => {
    if (saved === undefined) delete process.env.NOVABOX_ROOT;
    else process.env.NOVABOX_ROOT = saved;
  });

  it('is released once per reservation, also when the same name and id are reserved again', () => {
    const root = mkdtempSync(join(tmpdir(), 'nbx-name-'));
    process.env.NOVABOX_ROOT = root;
    try {
      const id = 'b'.repeat(64);
      reserveName('web', id);
      expect(readdirSync(join(root, 'names'))).toEqual(['web']);
      releaseName('web', id);
      releaseName('web', id); // the second undo path: nothing left to do
      expect(readdirSync(join(root, 'names'))).toEqual([]);
      reserveName('web', id);
      releaseName('web', id);
      expect(readdirSync(join(root, 'names'))).toEqual([]);
      reserveName('web', 'c'.repeat(64)); // another container's: never released by this id
      releaseName('web', id);
      expect(readdirSync(join(root, 'names'))).toEqual(['web']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
