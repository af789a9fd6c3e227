/**
 * The removal of a `run` container's directory, by both removals: shared by the unit test
 * (work/work mode 0700, which its owner can enter: no root needed) and the integration
 * test (mode 0, what overlayfs really leaves, which only root can enter).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { containerDirs } from '../../src/runtime/container.js';
import {
  finishContainerDir,
  makeContainerDir,
  startRemovingContainerDir as startNative,
  startRemovingContainerDirJs,
} from '../../src/runtime/container-dir.js';

export function containerDirRemovalCases(workWorkMode: number): void {
  describe.each([
    ['native', startNative],
    ['fs chain', startRemovingContainerDirJs],
  ])(`the container directory of \`run\` (%s removal, work/work mode ${workWorkMode.toString(8)})`, (_name, startRemovingContainerDir) => {
    let root: string;
    const saved = process.env.NOVABOX_ROOT;
    beforeEach(() => {
      root = mkdtempSync(join(tmpdir(), 'nbx-cdir-'));
      process.env.NOVABOX_ROOT = root;
    });
    afterEach(() => {
      rmSync(root, { recursive: true, force: true });
      if (saved === undefined) delete process.env.NOVABOX_ROOT;
      else process.env.NOVABOX_ROOT = saved;
    });
    const id = 'a'.repeat(64);
    const mode = (p: string) => statSync(p).mode & 0o777;

    /** what overlayfs and writeState leave in it after a run */
    function used(d: ReturnType<typeof containerDirs>): void {
      mkdirSync(join(d.work, 'work'), { mode: workWorkMode });
      writeFileSync(d.state, '{}\n');
    }

    it('makes the directory with upper, work and rootfs, with their modes', () => {
      const d = containerDirs(id);
      makeContainerDir(d);
      expect(readdirSync(d.dir).sort()).toEqual(['rootfs', 'upper', 'work']);
      expect([mode(d.dir), mode(d.upper), mode(d.work), mode(d.merged)]).toEqual([0o755, 0o755, 0o700, 0o755]);
    });

    it('removes the usual layout: rootfs, upper, work/work, state.json', async () => {
      const d = containerDirs(id);
      makeContainerDir(d);
      used(d);
      await finishContainerDir(d, startRemovingContainerDir(d, false));
      expect(existsSync(d.dir)).toBe(false);
      expect(readdirSync(join(root, 'containers'))).toEqual([]);
    });

    it('removes what a volatile overlay mount adds: work/work/incompat/volatile/dirty', async () => {
      const d = containerDirs(id);
      makeContainerDir(d);
      used(d);
      mkdirSync(join(d.work, 'work/incompat/volatile'), { recursive: true });
      writeFileSync(join(d.work, 'work/incompat/volatile/dirty'), '');
      expect(await startRemovingContainerDir(d, true)).toBeNull(); // no fallback needed
      await finishContainerDir(d, Promise.resolve(null));
      expect(existsSync(d.dir)).toBe(false);
    });

    it('falls back to the whole walk for a non-empty upper layer and extra files', async () => {
      const d = containerDirs(id);
      makeContainerDir(d);
      used(d);
      mkdirSync(join(d.upper, 'tmp/deep'), { recursive: true });
      writeFileSync(join(d.upper, 'tmp/deep/f'), 'x');
      writeFileSync(join(d.dir, 'hosts'), '127.0.0.1 localhost\n');
      await finishContainerDir(d, startRemovingContainerDir(d, false));
      expect(existsSync(d.dir)).toBe(false);
    });

    it('is fine with a directory half made or already gone', async () => {
      const d = containerDirs(id);
      mkdirSync(d.dir, { recursive: true });
      await finishContainerDir(d, startRemovingContainerDir(d, true));
      expect(existsSync(d.dir)).toBe(false);
      await finishContainerDir(d, startRemovingContainerDir(d, false));
      expect(existsSync(d.dir)).toBe(false);
    });
  });
}
