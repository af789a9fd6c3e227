import { type Dirent, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * rm -rf for our own directories (container scratch): readdir + unlink/rmdir, no
 * lstat per entry and no retry loops (Node 20's rmSync is a JS rimraf that costs
 * milliseconds on the container start/stop path). Never follows symlinks: entries are
 * typed by readdir, and a symlink is unlinked, not entered. Missing paths are fine.
 */
export function rmTree(path: string): void {
  let entries: Dirent[];
  try {
    entries = readdirSync(path, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') {
      unlinkSync(path);
      return;
    }
    throw err;
  }
  for (const e of entries) {
    const p = join(path, e.name);
    if (e.isDirectory()) rmTree(p);
    else unlinkSync(p);
  }
  rmdirSync(path);
}

/** rm -f of one file: unlink, a missing file is fine (Node 20's rmSync would load and run its JS rimraf for it). */
export function rmFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
