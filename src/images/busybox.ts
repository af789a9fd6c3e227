/**
 * The default image, built from the host's static busybox (Debian busybox-static),
 * never downloaded. See images/busybox/README.md.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  chmodSync, copyFileSync, cpSync, existsSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, lstatSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NovaboxError } from '../errors.js';
import { paths } from '../util/paths.js';
import { readImage, writeImage, type Image } from './store.js';

const require = createRequire(import.meta.url);

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
  throw new NovaboxError('not-found', 'no busybox binary on this host: install the busybox-static package (apt-get install busybox-static)');
}

/** Every path below dir, sorted, as tar wants them: relative, directories before their contents. */
function walk(dir: string): string[] {
  const out: string[] = [];
  const visit = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name);
      out.push(relative(dir, full));
      if (lstatSync(full).isDirectory()) visit(full);
    }
  };
  visit(dir);
  return out;
}

/** sha256 of the layer's deterministic tar: the OCI diff id. */
export function diffId(dir: string): string {
  const tar = require('tar') as typeof import('tar');
  const hash = createHash('sha256');
  const pack = tar.c({ sync: true, cwd: dir, portable: true, mtime: new Date(0), noDirRecurse: true }, walk(dir));
  pack.on('data', (chunk: Buffer) => hash.update(chunk));
  pack.resume();
  return hash.digest('hex');
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

/** The busybox image, built on first use. Concurrent first uses are safe (rename is atomic). */
export function ensureBusybox(): Image {
  const have = readImage('busybox');
  if (have) return have;
  mkdirSync(paths.tmp(), { recursive: true });
  const tmp = join(paths.tmp(), `busybox-${process.pid}-${Date.now()}`);
  try {
    const dir = buildBusyboxLayer(tmp);
    const hex = diffId(dir);
    mkdirSync(paths.layers(), { recursive: true });
    if (!existsSync(paths.layer(hex))) {
      try {
        renameSync(dir, paths.layer(hex));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
      }
    }
    const image: Image = {
      name: 'busybox',
      layers: [`sha256:${hex}`],
      // `run` gets a shell; a server is a system container: an idle init that exec'd commands join
      config: { cmd: ['sh'], env: BUSYBOX_ENV, workingDir: '/', user: '', serverCmd: [] },
      created: new Date().toISOString(),
    };
    writeImage(image);
    return image;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
