/**
 * The Debian system image (systemd, openssh-server, cloud-init, ...) that the system
 * container tests boot, through this one function, made the way a user makes it:
 * `novabox image build debian --release bookworm`. On the host that is a real debootstrap
 * from Debian's archive the first time, then the build cache
 * (/var/cache/novabox/debootstrap, kept between runs). The QEMU guest has no network: the
 * host's cache entry is handed in as a read-only disk (scripts/test.mjs, test/vm/run.sh
 * --drive debian=...), unpacked into a cache dir of the guest's, and the same command
 * finds it there.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildKey, checkDebianBuild, DEFAULT_CACHE_DIR } from '../../src/images/debootstrap.js';
import { IN_GUEST, runCli } from './run-cli.js';
import { missingCommands } from './skip.js';

export const DEBIAN_RELEASE = 'bookworm';
/** where the guest unpacks the host's cache entry */
const GUEST_CACHE = '/tmp/novabox-debian-cache';
const GUEST_DRIVE = '/run/novabox-vm/drives/debian';

/** Why the image cannot be had here (the tests then skip with this reason), or undefined. */
export function debianImageMissing(): string | undefined {
  if (IN_GUEST) {
    if (!process.env.NOVABOX_VM_DRIVE_DEBIAN_SIZE || !existsSync(GUEST_DRIVE)) {
      return 'no Debian build handed to the guest (the host had no cache entry of `image build debian`: scripts/test.mjs hands it in)';
    }
    return undefined;
  }
  const missing = missingCommands(['debootstrap']);
  return missing.length ? 'debootstrap is not installed (apt-get install debootstrap)' : undefined;
}

/** The guest: the host's cache entry, unpacked once into GUEST_CACHE/debootstrap. */
function guestCache(): string {
  const dir = join(GUEST_CACHE, 'debootstrap');
  if (existsSync(dir) && readdirSync(dir).some((e) => existsSync(join(dir, e, 'meta.json')))) return GUEST_CACHE;
  // unpacked beside, then renamed in: test files in parallel may get here at once
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  mkdirSync(dir, { recursive: true });
  const size = Number(process.env.NOVABOX_VM_DRIVE_DEBIAN_SIZE);
  try {
    execFileSync('sh', ['-c', `head -c ${size} ${GUEST_DRIVE} | zstd -dc | tar -x -C ${tmp}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    for (const e of readdirSync(tmp)) {
      try {
        renameSync(join(tmp, e), join(dir, e));
      } catch {
        /* another file's unpacking won */
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return GUEST_CACHE;
}

/**
 * The image in the state root `root`, named `name`, built by `image build debian` (os_init
 * systemd, cloud-init, openssh-server). Returns its name.
 */
export async function debianImage(root: string, name = `debian-${DEBIAN_RELEASE}`): Promise<string> {
  const env: NodeJS.ProcessEnv = IN_GUEST ? { NOVABOX_CACHE: guestCache() } : {};
  const r = await runCli(['image', 'build', 'debian', '--release', DEBIAN_RELEASE, '--name', name, '-f', 'value', '-c', 'id'], {
    root,
    env,
    // a cold debootstrap takes 2-3 minutes on a 2-core host; the cache ~12 s (minutes under TCG)
    timeoutMs: 900_000,
  });
  if (r.exitCode !== 0) throw new Error(`image build debian (${name}): exit ${r.exitCode}: ${r.stderr.trim()}`);
  if (!IN_GUEST) noteEntry();
  return name;
}

/**
 * Where the build cache entry the tests used is, for scripts/test.mjs to hand to the guest:
 * <VM dir>/debian-entry holds its path (the key of today's default package set).
 */
function noteEntry(): void {
  const cache = process.env.NOVABOX_CACHE ? join(process.env.NOVABOX_CACHE, 'debootstrap') : DEFAULT_CACHE_DIR;
  const entry = join(cache, buildKey(checkDebianBuild({ release: DEBIAN_RELEASE })));
  if (!existsSync(join(entry, 'meta.json'))) return;
  const dir = process.env.NOVABOX_VM_DIR || '/var/tmp/novabox-vm';
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'debian-entry'), `${entry}\n`);
}
