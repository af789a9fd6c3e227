/**
 * `novabox image build debian` for real: debootstrap from Debian's archive (the only
 * network these tests use besides 127.0.0.1). The build is cached in the default cache
 * dir (/var/cache/novabox/debootstrap, or $NOVABOX_CACHE/debootstrap), so the real
 * debootstrap runs once per machine (a few minutes); later runs import the cached rootfs.
 * NOVABOX_TEST_DEBOOTSTRAP_REBUILD=1 also runs a --no-cache rebuild and compares its file
 * list with the cached one's (another debootstrap: minutes).
 *
 * Also here: /dev device nodes of a rootfs are dropped at import (issue 17, part 4).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { lxcTarball, makeRootfs, ociLayout, tarball } from '../helpers/image-fixtures.js';
import { BIN, cliEnv, runCli, tempRoot } from '../helpers/run-cli.js';
import { missingCommands, skipEachIf } from '../helpers/skip.js';

const isRoot = process.getuid?.() === 0;
const BUILD_MS = 20 * 60_000;

/** Every path below dir with its type (d, f, l -> target, c/b/p), sorted: a file list. */
function fileList(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, r));
      if (st.isDirectory()) {
        out.push(`d ${r}`);
        walk(r);
      } else if (st.isSymbolicLink()) out.push(`l ${r} -> ${readlinkSync(join(dir, r))}`);
      else if (st.isFile()) out.push(`f ${r}`);
      else out.push(`${st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : 'p'} ${r}`);
    }
  };
  walk('');
  return out;
}

/** Device nodes below dir (not the 0/0 overlay whiteouts a layer may hold). */
const devicesIn = (dir: string) => fileList(dir).filter((l) => /^[cb] /.test(l) && lstatSync(join(dir, l.slice(2))).rdev !== 0);

/** A 127.0.0.1 port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe.skipIf(!isRoot)('novabox image build debian (root, debootstrap from Debian’s archive)', () => {
  const missing = isRoot ? missingCommands(['debootstrap', 'unshare', 'setpriv', 'tar']) : [];
  skipEachIf(missing.length ? `missing ${missing.join(', ')}` : undefined);
  let root: string;
  let removeRoot: () => void;
  let work: string;
  let before: Census;
  const nb = (args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) =>
    runCli(args, { root, timeoutMs: opts.timeoutMs ?? 60_000, env: opts.env });
  const show = async (name: string) => {
    const r = await nb(['image', 'show', name, '-f', 'json']);
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout) as { id: string; name: string; status: string; properties: Record<string, string> };
  };
  const layerDir = (diffId: string) => join(root, 'layers/sha256', diffId.slice(7));
  const names = async () =>
    (JSON.parse((await nb(['image', 'list', '-f', 'json'])).stdout) as { Name: string }[]).map((i) => i.Name).sort();
  const tmpLeft = () => (existsSync(join(root, 'tmp')) ? readdirSync(join(root, 'tmp')) : []);
  const mountsUnder = (p: string) =>
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[4]?.startsWith(p));

  beforeAll(() => {
    if (missing.length) return;
    ({ root, remove: removeRoot } = tempRoot('nbx-build-'));
    work = mkdtempSync(join(process.env.NOVABOX_TEST_TMP ?? tmpdir(), 'nbx-buildwork-'));
  });
  // a built Debian tree is tens of thousands of files: its removal outlasts the 30 s default
  // on a loaded host
  afterAll(() => {
    removeRoot?.();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 180_000);
  beforeEach(() => {
    if (root) before = census(root);
  });
  afterEach(() => {
    if (!root) return;
    expect(census(root)).toEqual(before);
    expect(tmpLeft()).toEqual([]);
    expect(mountsUnder(root)).toEqual([]);
  });

  it(
    'builds bookworm (debootstrap once per machine, then cached): a Debian system container image with its properties',
    async () => {
      const r = await nb(['image', 'build', 'debian', '--release', 'bookworm', '-f', 'json'], { timeoutMs: BUILD_MS });
      expect(r.stderr).toBe(''); // quiet when stderr is no terminal
      expect(r.exitCode).toBe(0);
      const img = JSON.parse(r.stdout);
      expect(img).toMatchObject({
        name: 'debian-bookworm',
        status: 'active',
        properties: {
          os_distro: 'debian',
          os_version: '12',
          os_init: 'systemd',
          os_type: 'linux',
          debian_release: 'bookworm',
          debian_variant: 'minbase',
          novabox_source: 'rootfs-dir',
        },
      });
      const [diff, ...more] = img.properties.layers.split(',');
      expect(more).toEqual([]);
      const dir = layerDir(diff);
      // systemd is the init; the packages of a system container are in
      expect(readlinkSync(join(dir, 'sbin'))).toBe('usr/sbin'); // merged /usr
      expect(readlinkSync(join(dir, 'usr/sbin/init'))).toMatch(/systemd$/);
      for (const bin of ['usr/bin/cloud-init', 'usr/sbin/sshd', 'usr/bin/dbus-daemon', 'usr/sbin/ip', 'usr/bin/ps'])
        expect(existsSync(join(dir, bin)), bin).toBe(true);
      expect(readFileSync(join(dir, 'etc/os-release'), 'utf8')).toMatch(/VERSION_CODENAME=bookworm/);
      // normalised: what varies or is the build host's is gone
      expect(devicesIn(join(dir, 'dev'))).toEqual([]);
      expect(existsSync(join(dir, 'dev/pts'))).toBe(true);
      expect(readFileSync(join(dir, 'etc/machine-id'), 'utf8')).toBe('');
      expect(readFileSync(join(dir, 'etc/hostname'), 'utf8')).toBe('localhost\n');
      expect(readFileSync(join(dir, 'etc/resolv.conf'), 'utf8')).toBe('');
      expect(readdirSync(join(dir, 'etc/ssh')).filter((f) => f.startsWith('ssh_host_'))).toEqual([]);
      expect(readFileSync(join(dir, 'etc/systemd/system/ssh.service.d/novabox-host-keys.conf'), 'utf8')).toMatch(
        /ExecStartPre=\/usr\/bin\/ssh-keygen -A/,
      );
      expect(readdirSync(join(dir, 'var/cache/apt/archives'))).toEqual(['partial']);
      expect(readdirSync(join(dir, 'var/lib/apt/lists'))).toEqual(['partial']);
      expect(fileList(join(dir, 'var/log')).filter((l) => !l.startsWith('d '))).toEqual([]);
      expect(existsSync(join(dir, 'debootstrap'))).toBe(false);
    },
    BUILD_MS,
  );

  it('a second build of the same set comes from the cache in seconds: same file list, same layer', async () => {
    const first = await show('debian-bookworm');
    const t0 = Date.now();
    const r = await nb(['image', 'build', 'debian', '--release', 'bookworm', '--name', 'debian-again', '-f', 'json'], {
      timeoutMs: 120_000,
    });
    const seconds = (Date.now() - t0) / 1000;
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const again = JSON.parse(r.stdout);
    expect(again.properties.os_version).toBe('12');
    expect(seconds).toBeLessThan(90); // packing and copying 260 MB: ~12 s here, more on a busy disk
    // the same rootfs packed the same way: the same diff id, one layer stored
    expect(again.properties.layers).toBe(first.properties.layers);
    expect(fileList(layerDir(again.properties.layers))).toEqual(fileList(layerDir(first.properties.layers)));
    // the name is taken now: a build under it is refused before any work
    const taken = await nb(['image', 'build', 'debian', '--release', 'bookworm', '--name', 'debian-again']);
    expect(taken.exitCode).toBe(4);
    expect(taken.stderr).toMatch(/^novabox: an image named "debian-again" exists already/);
    expect((await nb(['image', 'delete', 'debian-again'])).exitCode).toBe(0);
    expect(existsSync(layerDir(first.properties.layers))).toBe(true);
  }, 180_000);

  it(
    'a --no-cache rebuild runs debootstrap again and gives the same file list',
    async (ctx) => {
      ctx.skip(
        process.env.NOVABOX_TEST_DEBOOTSTRAP_REBUILD !== '1',
        'a second debootstrap costs minutes: NOVABOX_TEST_DEBOOTSTRAP_REBUILD=1 runs it (it passed when run so)',
      );
      const first = await show('debian-bookworm');
      const r = await nb(['image', 'build', 'debian', '--release', 'bookworm', '--no-cache', '--name', 'debian-fresh', '-f', 'json'], {
        timeoutMs: BUILD_MS,
      });
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      const fresh = JSON.parse(r.stdout);
      expect(fileList(layerDir(fresh.properties.layers))).toEqual(fileList(layerDir(first.properties.layers)));
      expect((await nb(['image', 'delete', 'debian-fresh'])).exitCode).toBe(0);
    },
    BUILD_MS,
  );

  it('bad input: one sentence, exit 2 or 4, and no image row, staging dir or cache entry left', async () => {
    const cache = join(work, 'cache-bad');
    const before = await names();
    const port = await closedPort();
    const cases: { args: string[]; env?: NodeJS.ProcessEnv; why: RegExp; code?: number }[] = [
      { args: ['--release', 'bookwrom'], why: /^novabox: unknown Debian release "bookwrom": debootstrap knows .*bookworm/ },
      {
        args: ['--release', 'bookworm', '--mirror', `http://127.0.0.1:${port}/debian`],
        why: new RegExp(`^novabox: cannot reach the mirror http://127.0.0.1:${port}/debian: ECONNREFUSED`),
      },
      {
        args: ['--release', 'bookworm'],
        env: { NOVABOX_DEBOOTSTRAP: join(work, 'no-debootstrap') },
        why: /^novabox: image build needs debootstrap, which is not installed \(apt-get install debootstrap\)/,
      },
      { args: ['--release', 'bookworm', '--include', 'vim;reboot'], why: /^novabox: invalid package name "vim;reboot" in --include/ },
      { args: ['--release', 'bookworm', '--variant', 'huge'], why: /^novabox: invalid --variant "huge"/ },
      { args: ['--release', 'bookworm', '--mirror', 'ftp://127.0.0.1/debian'], why: /^novabox: invalid --mirror/ },
    ];
    for (const c of cases) {
      const r = await nb(['image', 'build', 'debian', ...c.args, '--cache-dir', cache, '--name', 'bad-build'], { env: c.env });
      expect(r.exitCode, c.args.join(' ')).toBe(c.code ?? 2);
      expect(r.stderr, c.args.join(' ')).toMatch(c.why);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
    const other = await nb(['image', 'build', 'ubuntu', '--release', 'jammy']);
    expect(other.exitCode).toBe(2);
    expect(other.stderr).toMatch(/^novabox: cannot build "ubuntu": image build knows debian\n$/);
    expect(await names()).toEqual(before);
    expect(existsSync(cache) ? readdirSync(cache) : []).toEqual([]);
  });

  it('SIGINT during debootstrap: exit 130, its processes gone, no staging dir, row or cache entry', async () => {
    const cache = join(work, 'cache-int');
    const before = await names();
    // a debootstrap that is slow to finish: a package set no cache holds
    const child = spawn(
      process.execPath,
      [
        BIN,
        'image',
        'build',
        'debian',
        '--release',
        'bookworm',
        '--include',
        'less',
        '--no-cache',
        '--cache-dir',
        cache,
        '--name',
        'interrupted',
      ],
      { env: cliEnv(root), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    // debootstrap has started writing into the staging dir
    const t0 = Date.now();
    const started = () => tmpLeft().some((d) => d.startsWith('build-') && existsSync(join(root, 'tmp', d, 'rootfs/debootstrap')));
    while (!started() && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 100));
    expect(started()).toBe(true);
    const staging = join(root, 'tmp', tmpLeft()[0]);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toBe('novabox: the build was interrupted; nothing was kept (SIGINT)\n');
    const left = spawnSync('pgrep', ['-f', staging], { encoding: 'utf8' }).stdout.trim();
    expect(left).toBe('');
    expect(tmpLeft()).toEqual([]);
    expect(existsSync(cache) ? readdirSync(cache) : []).toEqual([]);
    expect(await names()).toEqual(before);
  }, 90_000);

  it('drops the device nodes under /dev of a rootfs at import (tar, directory, LXC, OCI), no --trusted; refuses them elsewhere', async () => {
    const rootfs = join(work, 'rootfs-dev');
    makeRootfs(rootfs);
    mkdirSync(join(rootfs, 'dev/pts'));
    mkdirSync(join(rootfs, 'dev/shm'));
    const mknod = (p: string, t: string, ma: number, mi: number) =>
      spawnSync('mknod', ['-m', '666', join(rootfs, p), t, String(ma), String(mi)]);
    mknod('dev/null', 'c', 1, 3);
    mknod('dev/zero', 'c', 1, 5);
    mknod('dev/pts/ptmx', 'c', 5, 2);
    mknod('dev/loop0', 'b', 7, 0);
    spawnSync('ln', ['-s', '/proc/self/fd', join(rootfs, 'dev/fd')]);
    writeFileSync(join(rootfs, 'dev/README'), 'a file under /dev stays\n');
    expect(devicesIn(rootfs)).toHaveLength(4);
    const tar = join(work, 'rootfs-dev.tar');
    tarball(rootfs, tar, 'none');
    lxcTarball(rootfs, join(work, 'lxc-dev'), join(work, 'lxc-dev.tar.xz'));
    const want = fileList(rootfs).filter((l) => !/^[cb] /.test(l));
    for (const [name, file] of [
      ['dev-tar', tar],
      ['dev-dir', rootfs],
      ['dev-lxc', join(work, 'lxc-dev.tar.xz')],
    ]) {
      const r = await nb(['image', 'create', '--file', file, name, '-f', 'json']);
      expect(r.stderr, name).toBe('');
      expect(r.exitCode, name).toBe(0);
      const dir = layerDir(JSON.parse(r.stdout).properties.layers);
      expect(fileList(dir), name).toEqual(want);
      expect(readFileSync(join(dir, 'dev/README'), 'utf8')).toBe('a file under /dev stays\n');
    }
    // an OCI layout (umoci keeps the nodes in its layer tar): left out of the layer too
    if (!missingCommands(['umoci']).length) {
      const layout = join(work, 'oci-dev');
      ociLayout(rootfs, layout, join(work, 'oci-work'));
      const r = await nb(['image', 'create', '--file', layout, '--format', 'oci', 'dev-oci', '-f', 'json']);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      const layers = JSON.parse(r.stdout).properties.layers.split(',') as string[];
      expect(layers.length).toBeGreaterThan(1);
      for (const l of layers) expect(devicesIn(layerDir(l))).toEqual([]);
      expect(readFileSync(join(layerDir(layers[0]), 'dev/README'), 'utf8')).toBe('a file under /dev stays\n');
      expect((await nb(['image', 'delete', 'dev-oci'])).exitCode).toBe(0);
    }
    // elsewhere a device node is still refused without --trusted
    mknod('srv/null', 'c', 1, 3);
    tarball(rootfs, tar, 'none');
    const bad = await nb(['image', 'create', '--file', tar, 'dev-bad']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(
      /^novabox: refusing the archive: entry "\.\/srv\/null": device node \(character 1:3\); import with --trusted/,
    );
    for (const n of ['dev-tar', 'dev-dir', 'dev-lxc']) expect((await nb(['image', 'delete', n])).exitCode).toBe(0);
    expect(await names()).not.toContain('dev-bad');
  });
});
