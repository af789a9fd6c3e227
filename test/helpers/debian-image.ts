/**
 * The Debian system image (systemd, openssh-server, cloud-init, ...) that the system
 * container tests boot, through this one function. Today it imports the development
 * rootfs that debootstrap made on this machine (/var/cache/novabox-dev/bookworm, or
 * NOVABOX_DEV_ROOTFS); once `novabox image build debian` is in, it builds through that.
 * Nothing is downloaded here.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { runCli } from './run-cli.js';

const DEFAULT_ROOTFS = '/var/cache/novabox-dev/bookworm';

/** The rootfs directory the image comes from. */
export function debianRootfs(): string {
  return process.env.NOVABOX_DEV_ROOTFS ?? DEFAULT_ROOTFS;
}

/**
 * Why the image cannot be had here (the tests then skip with this reason), or undefined.
 * The default rootfs counts only once its debootstrap finished well (its log ends rc=0).
 */
export function debianImageMissing(): string | undefined {
  const dir = debianRootfs();
  if (!existsSync(join(dir, 'lib/systemd/systemd'))) {
    return `no Debian rootfs with systemd at ${dir} (debootstrap one there, or set NOVABOX_DEV_ROOTFS)`;
  }
  if (process.env.NOVABOX_DEV_ROOTFS === undefined) {
    const log = join(dir, '..', 'debootstrap.log');
    let last = '';
    try {
      last = readFileSync(log, 'utf8').trim().split('\n').pop() ?? '';
    } catch {
      /* no log */
    }
    if (last !== 'rc=0') return `the debootstrap of ${dir} did not finish well (${log} does not end with rc=0)`;
  }
  return undefined;
}

/**
 * The image in the state root `root`, named `name` (os_init=systemd): the rootfs as a
 * tarball without its /dev nodes (a server's /dev is novabox's own). Returns its name.
 */
export async function debianImage(root: string, name = 'debian-bookworm'): Promise<string> {
  const tar = join(root, 'debian-rootfs.tar');
  try {
    execFileSync('tar', ['-C', debianRootfs(), '--exclude=./dev/*', '-cf', tar, '.'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const r = await runCli(['image', 'create', '--file', tar, '--property', 'os_init=systemd', name, '-f', 'value', '-c', 'id'], {
      root,
      timeoutMs: 120_000,
    });
    if (r.exitCode !== 0) throw new Error(`image create ${name}: ${r.stderr}`);
    return name;
  } finally {
    rmSync(tar, { force: true });
  }
}
