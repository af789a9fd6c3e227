/**
 * `novabox image build debian`: a Debian root filesystem made by Debian's own debootstrap
 * from Debian's archive, normalised and cached, for the image service to import.
 *
 *   checkDebianBuild (pure)   the request: release, variant, packages, mirror, arch
 *   buildKey (pure)           the cache key: (release, variant, sorted packages, mirror, arch)
 *   debianRootfs              the cache entry's rootfs, or debootstrap into a staging dir
 *                             under $NOVABOX_ROOT/tmp, normalised, then moved into the cache
 *
 * debootstrap runs in a mount namespace of its own (`unshare --mount`): the /proc and /sys
 * it mounts in the target vanish with it, whatever ends it, so a staging dir never holds a
 * mount when it is removed. It runs in its own process group, killed as one on SIGINT.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  type Dirent,
  accessSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { BadRequest, NovaboxError } from '../errors.js';
import { readProcStart } from '../runtime/proc.js';
import { randomBytesSync } from '../util/random.js';
import { rmFile, rmTree } from '../util/rmtree.js';
import { quote } from '../util/text.js';
import { hostArch } from './formats.js';
import { Staging, dropDeviceNodes } from './layers.js';

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
export const DEFAULT_CACHE_DIR = '/var/cache/novabox/debootstrap';

/**
 * What a system container needs on top of debootstrap's set, as LXC's debian template and
 * the images.linuxcontainers.org Debian images have it: systemd as init (systemd-sysv),
 * dbus (logind and hostnamectl talk through it), iproute2 and netbase (ip, /etc/services),
 * procps (ps, free), openssh-server, and cloud-init for the server's user data and key.
 * No DHCP client or ifupdown: novabox configures the server's address itself.
 * python3-cffi-backend is there for cloud-init: debootstrap does not resolve virtual
 * packages, and python3-cryptography depends on the virtual python3-cffi-backend-api-*.
 */
export const DEFAULT_PACKAGES = [
  'systemd-sysv',
  'dbus',
  'iproute2',
  'netbase',
  'procps',
  'openssh-server',
  'cloud-init',
  'python3-cffi-backend',
  // cloud-init's default user gets its rights through sudo, as on Debian's cloud images
  'sudo',
];

/** debootstrap's variants; `default` is debootstrap's own (priority important and up). */
export const VARIANTS = ['minbase', 'buildd', 'default'] as const;
export type Variant = (typeof VARIANTS)[number];

/** Debian's release numbers, for os_version (Glance's common image property). */
const VERSIONS: Record<string, string> = {
  jessie: '8',
  stretch: '9',
  buster: '10',
  bullseye: '11',
  bookworm: '12',
  trixie: '13',
  forky: '14',
  duke: '15',
  sid: 'unstable',
  unstable: 'unstable',
};

export interface DebianBuildInput {
  release?: string;
  variant?: string;
  include?: string[];
  mirror?: string;
  name?: string;
  arch?: string;
}

export interface DebianBuild {
  release: string;
  variant: Variant;
  /** every package asked for beyond debootstrap's set: the defaults and --include, sorted, once each */
  packages: string[];
  /** without a trailing slash */
  mirror: string;
  arch: string;
  name: string;
}

const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const RELEASE = /^[a-z][a-z0-9-]*$/;

/** The request checked, with defaults filled in (pure; the release's script is checked by debootstrapScripts). */
export function checkDebianBuild(i: DebianBuildInput, scripts?: string[]): DebianBuild {
  const release = i.release ?? '';
  if (!RELEASE.test(release)) throw new BadRequest(`invalid Debian release ${quote(release)}: expected a codename such as bookworm`);
  if (scripts && !scripts.includes(release)) {
    const known = Object.keys(VERSIONS).filter((r) => scripts.includes(r));
    throw new BadRequest(`unknown Debian release ${quote(release)}: debootstrap knows ${known.join(', ')} (and stable, testing)`);
  }
  const variant = (i.variant ?? 'minbase') as Variant;
  if (!VARIANTS.includes(variant))
    throw new BadRequest(`invalid --variant ${quote(i.variant ?? '')}: expected one of ${VARIANTS.join(', ')}`);
  const extra = (i.include ?? [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  const badPkg = extra.find((p) => !PACKAGE.test(p));
  if (badPkg !== undefined) throw new BadRequest(`invalid package name ${quote(badPkg)} in --include`);
  const packages = [...new Set([...DEFAULT_PACKAGES, ...extra])].sort();
  const mirror = (i.mirror ?? DEFAULT_MIRROR).replace(/\/+$/, '');
  let url: URL | undefined;
  try {
    url = new URL(mirror);
  } catch {
    url = undefined;
  }
  if (!url || !['http:', 'https:', 'file:'].includes(url.protocol) || (url.protocol !== 'file:' && !url.host))
    throw new BadRequest(`invalid --mirror ${quote(i.mirror ?? '')}: expected an http://, https:// or file:// URL of a Debian archive`);
  const arch = i.arch ?? hostArch();
  const name = i.name ?? `debian-${release}`;
  return { release, variant, packages, mirror, arch, name };
}

/** The cache key: what decides debootstrap's result (never the image name). */
export function buildKey(b: Pick<DebianBuild, 'release' | 'variant' | 'packages' | 'mirror' | 'arch'>): string {
  const what = { release: b.release, variant: b.variant, packages: [...new Set(b.packages)].sort(), mirror: b.mirror, arch: b.arch };
  return `${b.release}-${b.variant}-${b.arch}-${createHash('sha256').update(JSON.stringify(what)).digest('hex').slice(0, 16)}`;
}

/** debootstrap's command line (after `debootstrap`). */
export function debootstrapArgs(b: DebianBuild, target: string): string[] {
  return [
    ...(b.variant === 'default' ? [] : [`--variant=${b.variant}`]),
    `--arch=${b.arch}`,
    `--include=${b.packages.join(',')}`,
    '--components=main',
    b.release,
    target,
    b.mirror,
  ];
}

/** os_version: the release's number (12), from the table or the rootfs's /etc/debian_version. */
export function osVersion(release: string, debianVersion: string | undefined): string {
  const major = /^(\d+)/.exec(debianVersion?.trim() ?? '')?.[1];
  return major ?? VERSIONS[release] ?? (debianVersion?.trim() || release);
}

/** The progress text of one line of debootstrap's output ("I: Retrieving apt 2.6.1" -> "Retrieving apt 2.6.1"). */
export function statusOf(line: string): string | undefined {
  const m = /^I: (.+?)\.*$/.exec(line.trim());
  return m ? m[1] : undefined;
}

/** The sentence a failed debootstrap is reported with: its last E: line, else its last W: line. */
export function failureOf(output: string, code: number | null, signal: string | null): string {
  const lines = output.split('\n').map((l) => l.trim());
  const last = (p: string) =>
    lines
      .filter((l) => l.startsWith(p))
      .pop()
      ?.slice(p.length);
  const why = last('E: ') ?? last('W: ') ?? (signal ? `killed by ${signal}` : `exit status ${code}`);
  return `debootstrap failed: ${why.replace(/\s+/g, ' ')}`;
}

// ---- effects ----------------------------------------------------------------------

export interface BuildIo {
  /** one-line progress (debootstrap's I: lines); nothing for quiet runs */
  onStatus?: (text: string) => void;
  /** aborts the build: debootstrap's process group is killed, the staging dir removed */
  signal?: AbortSignal;
}

export interface BuiltRootfs {
  rootfs: string;
  cached: boolean;
  key: string;
}

/** The interruption error: the CLI exits 130 with it. */
export class Interrupted extends NovaboxError {
  constructor(what: string) {
    super('internal', `${what} was interrupted; nothing was kept`);
    this.name = 'Interrupted';
  }
}

/** The program to run: `NOVABOX_DEBOOTSTRAP` (a test hook), else debootstrap on PATH or in /usr/sbin, /sbin. */
export function findDebootstrap(env = process.env): string {
  const candidates = env.NOVABOX_DEBOOTSTRAP
    ? [env.NOVABOX_DEBOOTSTRAP]
    : [...(env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin'].map((d) => join(d, 'debootstrap'));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  throw new BadRequest('image build needs debootstrap, which is not installed (apt-get install debootstrap)');
}

/** The releases debootstrap has scripts for (its scripts directory, DEBOOTSTRAP_DIR as debootstrap reads it). */
export function debootstrapScripts(env = process.env): string[] | undefined {
  try {
    return readdirSync(join(env.DEBOOTSTRAP_DIR ?? '/usr/share/debootstrap', 'scripts'));
  } catch {
    return undefined;
  }
}

/**
 * One request for `dists/<release>/Release` before debootstrap starts, so an unreachable
 * mirror or a release it does not carry is one sentence in a second, not a minute of
 * retries. file:// mirrors are checked on disk.
 */
export async function checkMirror(b: DebianBuild, signal?: AbortSignal, timeoutMs = 15000): Promise<void> {
  const url = `${b.mirror}/dists/${b.release}/Release`;
  if (b.mirror.startsWith('file:')) {
    if (!existsSync(new URL(url)))
      throw new BadRequest(`the mirror ${b.mirror} has no release ${quote(b.release)} (no dists/${b.release}/Release)`);
    return;
  }
  const status = await new Promise<number>((resolve, reject) => {
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    const req = get(url, { timeout: timeoutMs, signal }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)));
    req.on('error', reject);
  }).catch((err: Error & { code?: string }) => {
    if (signal?.aborted) throw new Interrupted('the build');
    throw new BadRequest(`cannot reach the mirror ${b.mirror}: ${err.code ?? err.message}`);
  });
  if (status === 404) throw new BadRequest(`the mirror ${b.mirror} has no release ${quote(b.release)} (dists/${b.release}/Release: 404)`);
  if (status < 200 || status >= 400) throw new BadRequest(`the mirror ${b.mirror} answered ${status} for dists/${b.release}/Release`);
}

/** The rootfs for `b`: the cache's, or a fresh debootstrap (then stored in the cache). */
export async function debianRootfs(b: DebianBuild, cacheDir: string, noCache: boolean, io: BuildIo = {}): Promise<BuiltRootfs> {
  const key = buildKey(b);
  const entry = join(cacheDir, key);
  sweepCache(cacheDir);
  if (!noCache && existsSync(join(entry, 'meta.json')) && existsSync(join(entry, 'rootfs'))) {
    return { rootfs: join(entry, 'rootfs'), cached: true, key };
  }
  const program = findDebootstrap();
  if (io.signal?.aborted) throw new Interrupted('the build');
  await checkMirror(b, io.signal);
  const staging = new Staging('build');
  try {
    const rootfs = staging.path('rootfs');
    await runDebootstrap(program, debootstrapArgs(b, rootfs), io);
    const properties = normalise(rootfs, b);
    if (io.signal?.aborted) throw new Interrupted('the build');
    const meta = { ...b, name: undefined, key, properties, builtAt: new Date().toISOString() };
    writeFileSync(staging.path('meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
    const stored = storeInCache(staging, cacheDir, key, noCache);
    staging.remove();
    return { rootfs: join(stored, 'rootfs'), cached: false, key };
  } catch (err) {
    staging.remove();
    throw err;
  }
}

/** The image properties of a built rootfs (from its cache entry's meta.json, or computed). */
export function rootfsProperties(rootfs: string, b: DebianBuild): Record<string, string> {
  try {
    const meta = JSON.parse(readFileSync(join(rootfs, '..', 'meta.json'), 'utf8')) as { properties?: Record<string, string> };
    if (meta.properties) return meta.properties;
  } catch {
    /* computed below */
  }
  return propertiesOf(rootfs, b);
}

function propertiesOf(rootfs: string, b: DebianBuild): Record<string, string> {
  let debianVersion: string | undefined;
  try {
    debianVersion = readFileSync(join(rootfs, 'etc/debian_version'), 'utf8');
  } catch {
    debianVersion = undefined;
  }
  const props: Record<string, string> = {
    os_distro: 'debian',
    os_version: osVersion(b.release, debianVersion),
    architecture: b.arch,
    os_type: 'linux',
    debian_release: b.release,
    debian_variant: b.variant,
  };
  if (isSystemd(rootfs)) props.os_init = 'systemd';
  return props;
}

/** /sbin/init is systemd's (systemd-sysv's symlink to ../lib/systemd/systemd). */
function isSystemd(rootfs: string): boolean {
  return existsSync(join(rootfs, 'var/lib/dpkg/info/systemd-sysv.list'));
}

function runDebootstrap(program: string, args: string[], io: BuildIo): Promise<void> {
  if (io.signal?.aborted) return Promise.reject(new Interrupted('the build'));
  // setpriv: killed with this process; unshare: debootstrap's mounts live and die in its own namespace
  const argv = ['--pdeathsig', 'KILL', '--', 'unshare', '--mount', '--propagation', 'private', '--kill-child=KILL', '--', program, ...args];
  const child: ChildProcess = spawn('setpriv', argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
  });
  let output = '';
  let partial = '';
  const onData = (d: Buffer) => {
    const text = partial + d.toString('utf8');
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      output += `${l}\n`;
      if (output.length > 1 << 20) output = output.slice(-(1 << 19));
      const s = statusOf(l);
      if (s) io.onStatus?.(s);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const kill = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  io.signal?.addEventListener('abort', kill, { once: true });
  return new Promise<void>((resolve, reject) => {
    child.on('error', (err) => reject(new NovaboxError('sys', `cannot run debootstrap: ${err.message}`)));
    child.on('close', (code, sig) => {
      io.signal?.removeEventListener('abort', kill);
      // the group may hold dpkg's children still: none outlives the build
      kill();
      output += partial;
      if (io.signal?.aborted) reject(new Interrupted('the build'));
      else if (code === 0) resolve();
      else reject(new BadRequest(failureOf(output, code, sig)));
    });
  });
}

/**
 * What varies from one debootstrap to the next, or belongs to the build host, is removed
 * so that a rebuild of the same package set has the same file list: apt's caches, package
 * lists and downloaded .debs, logs, the machine id (empty: systemd makes one per boot, and
 * novabox one per server), the host's hostname and resolv.conf debootstrap copied, the
 * ssh host keys (a drop-in makes sshd generate missing ones at start: Debian's ssh.service
 * does not, and cloud-init may be absent or told not to), and the device nodes of /dev.
 */
export function normalise(rootfs: string, b: DebianBuild): Record<string, string> {
  const r = (p: string) => join(rootfs, p);
  for (const f of list(r('var/cache/apt'))) if (f.isFile() && f.name.endsWith('.bin')) rmFile(r(`var/cache/apt/${f.name}`));
  emptyDir(r('var/cache/apt/archives'), ['partial']);
  emptyDir(r('var/cache/apt/archives/partial'), []);
  emptyDir(r('var/lib/apt/lists'), ['partial']);
  emptyDir(r('var/lib/apt/lists/partial'), []);
  removeFilesUnder(r('var/log'));
  if (existsSync(r('etc/machine-id'))) writeFileSync(r('etc/machine-id'), '');
  const dbusId = lstatSync(r('var/lib/dbus/machine-id'), { throwIfNoEntry: false });
  if (dbusId?.isFile()) rmFile(r('var/lib/dbus/machine-id'));
  writeFileSync(r('etc/hostname'), 'localhost\n');
  const resolv = lstatSync(r('etc/resolv.conf'), { throwIfNoEntry: false });
  if (resolv?.isFile()) writeFileSync(r('etc/resolv.conf'), '');
  for (const f of list(r('etc/ssh'))) if (/^ssh_host_.*_key(\.pub)?$/.test(f.name)) rmFile(r(`etc/ssh/${f.name}`));
  if (existsSync(r('lib/systemd/system/ssh.service'))) {
    mkdirSync(r('etc/systemd/system/ssh.service.d'), { recursive: true, mode: 0o755 });
    writeFileSync(
      r('etc/systemd/system/ssh.service.d/novabox-host-keys.conf'),
      '# novabox image build: the image ships without host keys; make the missing ones before sshd starts\n' +
        '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n',
      { mode: 0o644 },
    );
  }
  dropDeviceNodes(r('dev'));
  return propertiesOf(rootfs, b);
}

function list(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function emptyDir(dir: string, keep: string[]): void {
  for (const f of list(dir)) if (!keep.includes(f.name)) rmTree(join(dir, f.name));
}

/** Files go, directories stay (packages expect /var/log/apt and the like). */
function removeFilesUnder(dir: string): void {
  for (const f of list(dir)) {
    if (f.isDirectory()) removeFilesUnder(join(dir, f.name));
    else rmFile(join(dir, f.name));
  }
}

/** Move the staged result into the cache (`<cache>/<key>/{rootfs,meta.json}`, copied across filesystems). */
function storeInCache(staging: Staging, cacheDir: string, key: string, replace: boolean): string {
  const entry = join(cacheDir, key);
  try {
    mkdirSync(cacheDir, { recursive: true, mode: 0o755 });
    const tmp = join(cacheDir, `tmp-${process.pid}-${randomBytesSync(4).toString('hex')}`);
    try {
      renameSync(staging.dir, tmp);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      // another filesystem: copied (owners, modes, xattrs, hard links); the staging dir is removed by the caller
      const r = spawnSync('cp', ['-a', '--reflink=auto', '--', staging.dir, tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
      if (r.status !== 0) {
        rmTree(tmp);
        throw new Error(r.stderr?.toString().trim().split('\n')[0] || `cp: exit status ${r.status}`);
      }
    }
    // an entry that appeared meanwhile (a build of the same set at the same time) is kept,
    // unless this is --no-cache, which replaces it: out of the way first, then in
    if (existsSync(entry) && !replace) {
      rmTree(tmp);
      if (!existsSync(staging.dir)) mkdirSync(staging.dir, { mode: 0o700 });
      return entry;
    }
    if (existsSync(entry)) {
      const old = join(cacheDir, `tmp-${process.pid}-${randomBytesSync(4).toString('hex')}`);
      renameSync(entry, old);
      rmTree(old);
    }
    renameSync(tmp, entry);
    if (!existsSync(staging.dir)) mkdirSync(staging.dir, { mode: 0o700 });
    return entry;
  } catch (err) {
    throw new NovaboxError('sys', `cannot store the build in the cache ${cacheDir}: ${(err as Error).message}`);
  }
}

/** Remove what a killed build left in the cache (tmp-<pid>-<hex> of a dead process). */
export function sweepCache(cacheDir: string): void {
  for (const f of list(cacheDir)) {
    const m = /^tmp-(\d+)-[0-9a-f]+$/.exec(f.name);
    if (!m || Number(m[1]) === process.pid || readProcStart(Number(m[1])) !== undefined) continue;
    rmTree(join(cacheDir, f.name));
  }
}

/** Remove a cache entry (tests, `--no-cache` of a broken entry). */
export function removeCacheEntry(cacheDir: string, key: string): void {
  rmTree(join(cacheDir, key));
  try {
    rmdirSync(cacheDir);
  } catch {
    /* not empty */
  }
}
