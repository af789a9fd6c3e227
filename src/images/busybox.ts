/**
 * The default image, built from the host's static busybox (Debian busybox-static),
 * never downloaded. See images/busybox/README.md.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, linkSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NovaboxError } from '../errors.js';
import type { ImageConfig } from './store.js';

export const BUSYBOX_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

function recipeDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const d = join(dir, 'images', 'busybox', 'rootfs');
    if (existsSync(d)) return d;
    dir = dirname(dir);
  }
  throw new Error('cannot find images/busybox/rootfs');
}

export function hostBusybox(): string {
  const candidates = [process.env.NOVABOX_BUSYBOX, '/bin/busybox', '/usr/bin/busybox'].filter(Boolean) as string[];
  for (const c of candidates) if (existsSync(c)) return c;
  throw new NovaboxError(
    'not-found',
    'no busybox binary on this host: install the busybox-static package (apt-get install busybox-static)',
  );
}

export function buildBusyboxLayer(tmpRoot: string): string {
  const bb = hostBusybox();
  const dir = join(tmpRoot, 'rootfs');
  mkdirSync(dir, { recursive: true });
  cpSync(recipeDir(), dir, { recursive: true });
  rmSync(join(dir, 'root', '.keep'), { force: true });
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'run', 'var', 'etc', 'root']) {
    mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
  }
  chmodSync(join(dir, 'root'), 0o700);
  for (const d of ['tmp', 'var/tmp']) {
    mkdirSync(join(dir, d), { recursive: true });
    chmodSync(join(dir, d), 0o1777);
  }
  copyFileSync(bb, join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync(bb, ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) {
    const target = join(dir, a);
    if (a === 'bin/busybox' || existsSync(target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    linkSync(join(dir, 'bin/busybox'), target);
  }
  return dir;
}

/** `run` gets a shell; a server is a system container: an idle init that exec'd commands join. */
export const BUSYBOX_CONFIG: ImageConfig = { cmd: ['sh'], env: BUSYBOX_ENV, workingDir: '/', user: '', serverCmd: [] };
