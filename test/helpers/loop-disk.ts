/**
 * A file system of its own on a loop device, for block I/O tests: a sparse file, util-linux's
 * or busybox's losetup (the guest has busybox's), mkfs.ext4 or busybox's mke2fs, mounted.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export interface LoopDisk {
  /** /dev/loopN */
  device: string;
  major: number;
  minor: number;
  /** where its file system is mounted */
  mount: string;
  /** unmounted, detached and its file removed */
  remove(): void;
}

/** A 64 MiB loop disk under `dir`, or the reason there is none here. */
export function loopDisk(dir: string): LoopDisk | { skip: string } {
  const img = join(dir, 'disk.img');
  const mount = join(dir, 'disk');
  mkdirSync(mount, { recursive: true });
  spawnSync('truncate', ['-s', '64M', img]);
  let device = spawnSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).stdout?.trim() ?? '';
  if (!device.startsWith('/dev/loop')) {
    device = spawnSync('losetup', ['-f'], { encoding: 'utf8' }).stdout?.trim() ?? '';
    if (!device.startsWith('/dev/loop') || spawnSync('losetup', [device, img]).status !== 0) device = '';
  }
  if (!device) {
    rmSync(img, { force: true });
    return { skip: 'no loop device here (losetup failed)' };
  }
  const remove = () => {
    spawnSync('umount', [mount]);
    spawnSync('losetup', ['-d', device]);
    rmSync(img, { force: true });
  };
  const made =
    spawnSync('mkfs.ext4', ['-q', '-F', device], { stdio: 'ignore' }).status === 0 ||
    spawnSync('mke2fs', ['-F', device], { stdio: 'ignore' }).status === 0;
  if (!made || spawnSync('mount', [device, mount]).status !== 0) {
    remove();
    throw new Error(`no file system could be made and mounted on ${device} (mkfs.ext4 or mke2fs, mount)`);
  }
  const [major, minor] = readFileSync(`/sys/class/block/${device.slice('/dev/'.length)}/dev`, 'utf8')
    .trim()
    .split(':')
    .map(Number);
  return { device, major: major!, minor: minor!, mount, remove };
}
