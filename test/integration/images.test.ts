/**
 * Image import and export for real: fixtures built locally with GNU tar, umoci, skopeo
 * and python3's tarfile; layers extracted into the store; servers booted from them.
 * Each test leaves the census (mounts, cgroups, monitors, state files) as it found it.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { HOST_ONLY, skipEachIf } from '../helpers/skip.js';
import { BIN, IN_GUEST, cliEnv, runCli, tempRoot } from '../helpers/run-cli.js';
import {
  fixtureToolsMissing,
  getXattr,
  hostileArchives,
  setXattr,
  lxcTarball,
  makeRootfs,
  ociLayout,
  sh,
  tarball,
  treeDigest,
} from '../helpers/image-fixtures.js';

const isRoot = process.getuid?.() === 0;
// GNU tar (novabox extracts with it), umoci, skopeo, zstd, xz and python3 build the
// fixtures: on the host and in CI (.ci/run installs them), not in the busybox-only QEMU guest
const missing = isRoot ? fixtureToolsMissing() : [];
/** The fixtures carry a user.* xattr: tmpfs has none before Linux 6.6 (the QEMU guest's /tmp). */
function userXattrs(): boolean {
  const dir = mkdtempSync(join(process.env.NOVABOX_TEST_TMP ?? tmpdir(), 'nbx-xattr-'));
  try {
    writeFileSync(join(dir, 'f'), '');
    setXattr(join(dir, 'f'), 'user.novabox.probe', '1');
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const noXattrs = isRoot && !missing.length && !userXattrs();

describe.skipIf(!isRoot)('novabox image (root, real layers)', () => {
  const why = IN_GUEST
    ? HOST_ONLY
    : missing.length
      ? `missing ${missing.join(', ')} to build the fixtures`
      : noXattrs
        ? `no user.* xattrs on ${process.env.NOVABOX_TEST_TMP ?? tmpdir()} (tmpfs before Linux 6.6; set NOVABOX_TEST_TMP): the fixtures carry one`
        : undefined;
  skipEachIf(why);
  let root: string;
  let removeRoot: () => void;
  let work: string;
  let rootfs: string;
  let before: Census;
  const nb = (args: string[], r = root) => runCli(args, { root: r, timeoutMs: 60_000 });
  const show = async (name: string, r = root) => {
    const res = await nb(['image', 'show', name, '-f', 'json'], r);
    expect(res.stderr).toBe('');
    return JSON.parse(res.stdout) as { id: string; status: string; properties: Record<string, string>; size: number };
  };
  const layersOf = async (name: string, r = root) => (await show(name, r)).properties.layers.split(',');
  const layerDir = (diffId: string, r = root) => join(r, 'layers/sha256', diffId.slice(7));
  const images = async (r = root) =>
    JSON.parse((await nb(['image', 'list', '-f', 'json'], r)).stdout) as { Name: string; Status: string }[];

  beforeAll(async () => {
    if (why) return;
    ({ root, remove: removeRoot } = tempRoot('nbx-img-'));
    work = mkdtempSync(join(process.env.NOVABOX_TEST_TMP ?? tmpdir(), 'nbx-imgwork-'));
    rootfs = join(work, 'rootfs');
    makeRootfs(rootfs);
    expect((await nb(['image', 'show', 'busybox', '-f', 'value', '-c', 'status'])).stdout).toBe('active\n');
  });
  afterAll(() => {
    removeRoot?.();
    if (work) rmSync(work, { recursive: true, force: true });
  });
  beforeEach(() => {
    before = census(root);
  });
  afterEach(async () => {
    if (why) return;
    for (const s of JSON.parse((await nb(['server', 'list', '-f', 'json'])).stdout || '[]') as { ID: string }[])
      await nb(['server', 'delete', '--force', s.ID]);
    const after = census(root);
    const strip = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')) });
    expect(strip(after)).toEqual(strip(before));
    expect(existsSync(join(root, 'tmp')) ? readdirSync(join(root, 'tmp')) : []).toEqual([]);
  });

  it('imports rootfs tarballs (tar, gzip, zstd, xz, bzip2) keeping modes, owners, xattrs, setuid and hard links', async () => {
    const want = treeDigest(rootfs);
    let first: string | undefined;
    for (const c of ['none', 'gzip', 'zstd', 'xz', 'bzip2'] as const) {
      const file = join(work, `rootfs-${c}.tar`);
      tarball(rootfs, file, c);
      const r = await nb(['image', 'create', '--file', file, '--property', `comp=${c}`, `tb-${c}`, '-f', 'json']);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      const img = JSON.parse(r.stdout);
      expect(img).toMatchObject({
        name: `tb-${c}`,
        status: 'active',
        visibility: 'shared',
        properties: { comp: c, novabox_source: 'tar' },
      });
      const [diff] = img.properties.layers.split(',');
      first ??= diff;
      expect(diff).toBe(first); // same tar inside: same diff id, one layer stored
      const dir = layerDir(diff);
      expect(treeDigest(dir)).toEqual(want);
      expect(getXattr(join(dir, 'srv/data/hello'), 'user.novabox.test')).toBe('kept');
    }
    expect(readdirSync(join(root, 'layers/sha256')).filter((d) => d === first!.slice(7))).toHaveLength(1);
    // a server boots from it and sees the files
    expect((await nb(['server', 'create', '--image', 'tb-zstd', '--flavor', 'm1.tiny', 'tb1'])).exitCode).toBe(0);
    const e = await nb([
      'server',
      'exec',
      'tb1',
      '--',
      'sh',
      '-c',
      'cat /srv/data/hello; stat -c "%a %u:%g" /srv/data/suid /srv/data/owned',
    ]);
    expect(e.stdout).toBe('hello world\n4755 0:0\n640 1000:1000\n');
    for (const c of ['none', 'gzip', 'xz', 'bzip2']) expect((await nb(['image', 'delete', `tb-${c}`])).exitCode).toBe(0);
    const inUse = await nb(['image', 'delete', 'tb-zstd']);
    expect(inUse.exitCode).toBe(4);
    expect(inUse.stderr).toBe('novabox: image "tb-zstd" is in use by 1 server (tb1); delete or rebuild those servers first\n');
    expect(existsSync(layerDir(first!))).toBe(true);
    expect((await nb(['server', 'delete', 'tb1'])).exitCode).toBe(0);
    expect((await nb(['image', 'delete', 'tb-zstd'])).exitCode).toBe(0);
    expect(existsSync(layerDir(first!))).toBe(false);
    expect(existsSync(join(root, 'images/tb-zstd.json'))).toBe(false);
  });

  it('imports a plain rootfs directory: the same tree as its tarball, and a server boots from it', async () => {
    const want = treeDigest(rootfs);
    const r = await nb(['image', 'create', '--file', rootfs, 'plaindir', '-f', 'json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const img = JSON.parse(r.stdout);
    expect(img).toMatchObject({ name: 'plaindir', status: 'active' });
    const layers = img.properties.layers.split(',');
    expect(layers).toHaveLength(1);
    const dir = layerDir(layers[0]);
    expect(treeDigest(dir)).toEqual(want);
    expect(getXattr(join(dir, 'srv/data/hello'), 'user.novabox.test')).toBe('kept');
    expect(treeDigest(rootfs)).toEqual(want); // the source directory is left as it was
    expect((await nb(['server', 'create', '--image', 'plaindir', '--flavor', 'c1.nano', 'pd1'])).exitCode).toBe(0);
    const e = await nb([
      'server',
      'exec',
      'pd1',
      '--',
      'sh',
      '-c',
      'cat /srv/data/hello; stat -c "%a %u:%g" /srv/data/suid /srv/data/owned',
    ]);
    expect(e.stdout).toBe('hello world\n4755 0:0\n640 1000:1000\n');
    expect((await nb(['server', 'delete', 'pd1'])).exitCode).toBe(0);
    expect((await nb(['image', 'delete', 'plaindir'])).exitCode).toBe(0);
    expect(existsSync(dir)).toBe(false);
  });

  it('imports an OCI layout made by umoci (dir and oci-archive) and a docker-archive made by skopeo, whiteouts applied', async () => {
    const layout = join(work, 'oci');
    ociLayout(rootfs, layout, work);
    sh('skopeo', ['copy', '-q', `oci:${layout}:v1`, `oci-archive:${join(work, 'oci.tar')}:v1`]);
    sh('skopeo', ['copy', '-q', `oci:${layout}:v1`, `docker-archive:${join(work, 'docker.tar')}:test/app:v1`]);
    const d = await nb(['image', 'create', '--file', layout, 'ocidir', '-f', 'json']);
    expect(d.stderr).toBe('');
    expect(JSON.parse(d.stdout).properties.novabox_source).toBe('oci');
    const a = await nb(['image', 'create', '--file', join(work, 'oci.tar'), '--format', 'oci', 'ociarc']);
    expect(a.exitCode).toBe(0);
    const k = await nb(['image', 'create', '--file', join(work, 'docker.tar'), 'dockarc', '-f', 'value', '-c', 'properties']);
    expect(k.stderr).toBe('');
    expect(k.stdout).toMatch(/'novabox_source': 'docker-archive'/);
    const layers = await layersOf('ocidir');
    expect(layers).toHaveLength(3);
    expect(await layersOf('ociarc')).toEqual(layers);
    expect(await layersOf('dockarc')).toEqual(layers); // docker-archive: same uncompressed tars
    // layer 3 holds the whiteout of srv/remove-me as an overlay whiteout (0/0 char device)
    const wh = sh('stat', ['-c', '%F %t:%T', join(layerDir(layers[2]), 'srv/remove-me')]).trim();
    expect(wh).toBe('character special file 0:0');
    // the config (cmd, env, workdir) comes along; the server runs the image command
    expect((await nb(['server', 'create', '--image', 'ociarc', '--flavor', 'm1.tiny', 'oc1'])).exitCode).toBe(0);
    const e = await nb([
      'server',
      'exec',
      'oc1',
      '--',
      'sh',
      '-c',
      'pwd; echo $GREETING; cat /srv/added; test -e /srv/remove-me || echo gone; cat /srv/data/hello',
    ]);
    expect(e.stdout).toBe('/srv\nhi\nfrom layer two\ngone\nhello world\n');
    expect((await nb(['server', 'delete', '--force', 'oc1'])).exitCode).toBe(0);
    for (const n of ['ocidir', 'ociarc', 'dockarc']) expect((await nb(['image', 'delete', n])).exitCode).toBe(0);
    expect(layers.some((l) => existsSync(layerDir(l)))).toBe(false);
  });

  it('imports an LXC/Incus unified tarball', async () => {
    const file = join(work, 'lxc.tar.xz');
    lxcTarball(rootfs, work, file);
    const r = await nb(['image', 'create', '--file', file, 'lxcimg', '-f', 'json']);
    expect(r.stderr).toBe('');
    const img = JSON.parse(r.stdout);
    expect(img.properties).toMatchObject({
      novabox_source: 'lxc',
      architecture: 'x86_64',
      description: 'test image',
      os_distro: 'busybox',
      os_version: '1',
    });
    expect(treeDigest(layerDir(img.properties.layers))).toEqual(treeDigest(rootfs));
    expect((await nb(['image', 'delete', 'lxcimg'])).exitCode).toBe(0);
  });

  it('exports an OCI archive that skopeo reads and that round-trips to the same layer digests', async () => {
    const layout = join(work, 'oci-rt');
    mkdirSync(join(work, 'rt'), { recursive: true });
    ociLayout(rootfs, layout, join(work, 'rt'));
    expect((await nb(['image', 'create', '--file', layout, 'rtsrc'])).exitCode).toBe(0);
    const out = join(work, 'saved.tar');
    const s = await nb(['image', 'save', '--file', out, 'rtsrc']);
    expect(s.stderr).toBe('');
    expect(s.stdout).toBe('');
    const inspect = JSON.parse(sh('skopeo', ['inspect', `oci-archive:${out}`]));
    const layers = await layersOf('rtsrc');
    expect(inspect.Layers).toHaveLength(3);
    expect(inspect.Env).toContain('GREETING=hi');
    // into a fresh state root: everything is extracted again from the archive
    const other = tempRoot('nbx-img2-');
    try {
      const r = await nb(['image', 'create', '--file', out, '--format', 'oci', 'rtdst'], other.root);
      expect(r.stderr).toBe('');
      expect(await layersOf('rtdst', other.root)).toEqual(layers);
      expect(treeDigest(layerDir(layers[0], other.root))).toEqual(treeDigest(layerDir(layers[0])));
      // --file - streams the same bytes to stdout
      const child = spawn(process.execPath, [BIN, 'image', 'save', '--file', '-', 'rtsrc'], {
        env: cliEnv(root),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let bytes = 0;
      child.stdout.on('data', (b: Buffer) => (bytes += b.length));
      await new Promise((r2) => child.on('close', r2));
      expect(bytes).toBe(Number(sh('stat', ['-c', '%s', out]).trim()));
    } finally {
      other.remove();
    }
    expect((await nb(['image', 'delete', 'rtsrc'])).exitCode).toBe(0);
  });

  it('refuses hostile archives with one line naming the entry, writing nothing outside', async () => {
    const canaryDir = mkdtempSync(join(work, 'canary-'));
    const canary = join(canaryDir, 'pwned');
    const hdir = join(work, 'hostile');
    mkdirSync(hdir, { recursive: true });
    for (const h of hostileArchives(hdir, canary)) {
      const r = await nb(['image', 'create', '--file', h.file, 'hostile']);
      expect(r.exitCode, h.file).toBe(2);
      expect(r.stderr.split('\n').filter(Boolean), h.file).toHaveLength(1);
      expect(r.stderr).toContain(h.entry);
      expect(r.stderr).toMatch(h.why);
      expect(readdirSync(canaryDir)).toEqual([]);
      expect(existsSync('/etc/shadow-x')).toBe(false);
    }
    expect((await images()).map((i) => i.Name)).toEqual(['busybox']);
    // with --trusted, the device node is accepted
    const dev = await nb(['image', 'create', '--trusted', '--file', join(hdir, 'device.tar'), 'withdev']);
    expect(dev.exitCode).toBe(0);
    expect((await nb(['image', 'delete', 'withdev'])).exitCode).toBe(0);
    // bad input in general: one sentence, exit 2 or 3
    expect((await nb(['image', 'create', '--file', join(work, 'nope.tar'), 'x'])).exitCode).toBe(3);
    writeFileSync(join(work, 'junk'), 'not an archive at all');
    const junk = await nb(['image', 'create', '--file', join(work, 'junk'), 'x']);
    expect(junk.exitCode).toBe(2);
    expect((await nb(['image', 'create', '--file', join(work, 'junk'), 'x'.repeat(256)])).exitCode).toBe(2);
  });

  it('imports sparse files from GNU tar in its default old format (--format=gnu) as in PAX, holes kept', async () => {
    const src = join(work, 'sparse-root');
    mkdirSync(src, { recursive: true });
    const fd = openSync(join(src, 'disk.img'), 'w');
    for (let i = 0; i < 41; i++) writeSync(fd, Buffer.alloc(4096, `stretch ${i} `), 0, 4096, i * (256 << 10));
    ftruncateSync(fd, 16 << 20);
    closeSync(fd);
    const want = sh('sha256sum', [join(src, 'disk.img')]).split(' ')[0];
    for (const format of ['gnu', 'posix']) {
      const file = join(work, `sparse-${format}.tar`);
      sh('tar', ['--sparse', `--format=${format}`, '-C', src, '-cf', file, '.']);
      const r = await nb(['image', 'create', '--file', file, `sparse-${format}`, '-f', 'value', '-c', 'status']);
      expect(r.stderr, format).toBe('');
      expect(r.stdout).toBe('active\n');
      const [layer] = await layersOf(`sparse-${format}`);
      const got = join(layerDir(layer!), 'disk.img');
      expect(sh('sha256sum', [got]).split(' ')[0], format).toBe(want);
      expect(statSync(got).size).toBe(16 << 20);
      expect(statSync(got).blocks * 512).toBeLessThan(2 << 20); // the holes stayed holes
    }
    for (const format of ['gnu', 'posix']) expect((await nb(['image', 'delete', `sparse-${format}`])).exitCode).toBe(0);
  });

  it('an OCI index of 10,000 images, a 100 KB ref and a 100 KB name: one short line each', async () => {
    const layout = join(work, 'many');
    mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
    writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const manifests = Array.from({ length: 10_000 }, (_, i) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 1,
      digest: `sha256:${i.toString(16).padStart(64, '0')}`,
      annotations: { 'org.opencontainers.image.ref.name': `some/long/reference/name-${i}` },
      platform: { os: 'plan9', architecture: 'mips' },
    }));
    writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
    for (const args of [
      ['image', 'create', '--file', layout, 'many'],
      ['image', 'create', '--file', layout, '--ref', 'r'.repeat(100_000), 'many'],
      ['image', 'create', '--file', layout, 'n'.repeat(100_000)],
    ]) {
      const r = await nb(args);
      expect(r.exitCode).toBe(2);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
      expect(r.stderr.length).toBeLessThan(1100);
    }
    expect((await nb(['image', 'create', '--file', layout, 'many'])).stderr).toBe(
      'novabox: the OCI layout holds 10000 images: name one (some/long/reference/name-0, some/long/reference/name-1, ' +
        'some/long/reference/name-2, some/long/reference/name-3, some/long/reference/name-4 and 9995 more)\n',
    );
    expect((await images()).map((i) => i.Name)).toEqual(['busybox']);
  });

  it('shares layers between images and removes one only with its last image', async () => {
    const file = join(work, 'share.tar.gz');
    tarball(rootfs, file, 'gzip');
    expect((await nb(['image', 'create', '--file', file, 'sh-a'])).exitCode).toBe(0);
    expect((await nb(['image', 'create', '--file', file, 'sh-b'])).exitCode).toBe(0);
    const [la] = await layersOf('sh-a');
    expect(await layersOf('sh-b')).toEqual([la]);
    // names may repeat (Glance); a repeated name is then ambiguous and refused, the id is not
    const again = await nb(['image', 'create', '--file', file, 'sh-a', '-f', 'value', '-c', 'id']);
    expect(again.exitCode).toBe(0);
    expect((await nb(['image', 'delete', 'sh-a'])).exitCode).toBe(4);
    expect((await nb(['image', 'delete', again.stdout.trim()])).exitCode).toBe(0);
    expect((await nb(['image', 'delete', 'sh-a'])).exitCode).toBe(0);
    expect(existsSync(layerDir(la))).toBe(true);
    expect((await nb(['server', 'create', '--image', 'sh-b', '--flavor', 'm1.tiny', 'shb1'])).exitCode).toBe(0);
    expect((await nb(['server', 'exec', 'shb1', '--', 'cat', '/srv/data/hello'])).stdout).toBe('hello world\n');
    expect((await nb(['server', 'delete', 'shb1'])).exitCode).toBe(0);
    expect((await nb(['image', 'delete', 'sh-b'])).exitCode).toBe(0);
    expect(existsSync(layerDir(la))).toBe(false);
  });

  it('serves the Glance flow through the image service: queued, upload from a stream, active, download', async () => {
    const saved = process.env.NOVABOX_ROOT;
    process.env.NOVABOX_ROOT = root;
    const { openStore } = await import('../../src/store/db.js');
    const { ImageService } = await import('../../src/images/service.js');
    const store = openStore(join(root, 'novabox.db'));
    try {
      const svc = new ImageService(store);
      const admin = svc.localCaller();
      const other = { projectId: 'p-other', userId: 'u-other', isAdmin: false };
      const file = join(work, 'upload.tar.gz');
      tarball(rootfs, file, 'gzip');
      const rec = svc.createRecord(
        { name: 'glance1', diskFormat: 'raw', containerFormat: 'bare', properties: { os_distro: 'busybox' } },
        admin,
      );
      expect(rec.status).toBe('queued');
      expect(svc.list({ status: 'queued' }, admin).map((i) => i.id)).toContain(rec.id);
      // another project neither sees a shared image of ours nor may upload to it
      expect(() => svc.show(rec.id, other)).toThrow(/not found/);
      expect(svc.list({}, other).map((i) => i.name)).toEqual(['busybox']); // public
      const { createReadStream, readFileSync } = await import('node:fs');
      const img = await svc.upload(rec.id, createReadStream(file), admin);
      expect(img).toMatchObject({ status: 'active', name: 'glance1', osHashAlgo: 'sha256' });
      expect(img.checksum).toBe(sh('md5sum', [file]).split(' ')[0]);
      await expect(svc.upload(rec.id, createReadStream(file), admin)).rejects.toThrow(/only be uploaded once/);
      // data that is no root filesystem novabox reads (here an archive refused for its '..'
      // entry) is kept as given, as Glance keeps it: active, downloadable, never booted
      const bad = svc.createRecord({ name: 'glance-bad' }, admin);
      const hdir = mkdtempSync(join(work, 'hostile-up-'));
      const dotdot = hostileArchives(hdir, join(hdir, 'canary')).find((h) => h.file.endsWith('dotdot.tar'))!;
      const kept = await svc.upload(bad.id, createReadStream(dotdot.file), admin);
      expect(kept).toMatchObject({ status: 'active', size: readFileSync(dotdot.file).length });
      expect(kept.properties.novabox_unbootable).toMatch(/refusing the archive/);
      expect(kept.properties.novabox_unbootable).not.toContain(root);
      const raw: Buffer[] = [];
      for await (const c of svc.download(bad.id, admin).stream) raw.push(c as Buffer);
      expect(Buffer.concat(raw).equals(readFileSync(dotdot.file))).toBe(true);
      expect(readdirSync(hdir).includes('canary')).toBe(false);
      svc.delete(bad.id, admin);
      // download = the OCI archive image save writes
      const d = svc.download('glance1', admin);
      const chunks: Buffer[] = [];
      for await (const c of d.stream) chunks.push(c as Buffer);
      const out = join(work, 'glance1.tar');
      writeFileSync(out, Buffer.concat(chunks));
      expect(Buffer.concat(chunks).length).toBe(d.size);
      expect(JSON.parse(sh('skopeo', ['inspect', `oci-archive:${out}`])).Layers).toHaveLength(1);
      expect(readFileSync(out).length).toBeGreaterThan(0);
      const upd = svc.update('glance1', { properties: { a: '1' }, removeProperties: ['os_distro'], visibility: 'private' }, admin);
      expect(upd.properties).toMatchObject({ a: '1' });
      expect(upd.properties.os_distro).toBeUndefined();
      expect(() => svc.delete('glance1', other)).toThrow(/not found/);
      svc.delete('glance1', admin);
      expect(() => svc.show('glance1', admin)).toThrow(/not found/);
    } finally {
      store.close();
      process.env.NOVABOX_ROOT = saved;
      if (saved === undefined) delete process.env.NOVABOX_ROOT;
    }
  });

  it('kill -9 during an import leaves no active image and no temp dirs after the next command', async () => {
    const big = join(work, 'big');
    mkdirSync(join(big, 'data'), { recursive: true });
    for (let i = 0; i < 8; i++) sh('dd', ['if=/dev/urandom', `of=${join(big, `data/f${i}`)}`, 'bs=1M', 'count=16', 'status=none']);
    const file = join(work, 'big.tar.zst');
    tarball(big, file, 'zstd');
    const child = spawn(process.execPath, [BIN, 'image', 'create', '--file', file, 'killed'], { env: cliEnv(root), stdio: 'ignore' });
    // wait until it is saving, then kill it
    for (let i = 0; i < 200; i++) {
      const l = await images();
      if (l.some((x) => x.Name === 'killed' && x.Status === 'saving')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const l = await images();
    expect(l.find((x) => x.Name === 'killed')?.Status).toBe('killed');
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    expect(existsSync(join(root, 'images/killed.json'))).toBe(false);
    const boot = await nb(['server', 'create', '--image', 'killed', '--flavor', 'm1.tiny', 'k1']);
    expect(boot.exitCode).not.toBe(0);
    expect((await nb(['image', 'delete', 'killed'])).exitCode).toBe(0);
  });
});
