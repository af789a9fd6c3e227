/**
 * Real image fixtures, built locally (no network): a rootfs directory with the awkward
 * things (setuid, odd owners, xattrs, hard links, symlinks), tarballs of it made by GNU
 * tar, OCI layouts made by umoci, archives converted by skopeo, an LXC unified tarball,
 * and hostile archives crafted with python3's tarfile.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

export function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

// xattrs through libc (koffi, a dependency anyway): no attr or python3 needed, so the
// snapshot tests also run in the QEMU guest, which has busybox and node only
let xattrCalls:
  | { set: (p: string, n: string, v: Buffer, l: number, f: number) => number; get: (p: string, n: string, v: Buffer, l: number) => number }
  | undefined;
function xattrLib() {
  if (!xattrCalls) {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const libc = koffi.load('libc.so.6');
    xattrCalls = {
      set: libc.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)') as never,
      get: libc.func('long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)') as never,
    };
  }
  return xattrCalls;
}

export function setXattr(path: string, name: string, value: string): void {
  const v = Buffer.from(value);
  if (xattrLib().set(path, name, v, v.length, 0) !== 0) throw new Error(`lsetxattr ${path} ${name} failed`);
}

export function getXattr(path: string, name: string): string | undefined {
  const buf = Buffer.alloc(4096);
  const n = Number(xattrLib().get(path, name, buf, buf.length));
  return n < 0 ? undefined : buf.toString('utf8', 0, n);
}

/** Whether the tools the import tests build fixtures with are here (not in the QEMU guest). */
export function fixtureToolsMissing(): string[] {
  const missing = ['umoci', 'skopeo', 'python3', 'zstd', 'xz', 'bzip2'].filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  try {
    if (!execFileSync('tar', ['--version'], { encoding: 'utf8' }).includes('GNU tar')) missing.push('GNU tar');
  } catch {
    missing.push('GNU tar');
  }
  return missing;
}

/** A small rootfs: static busybox, its shell link, and files with every kind of metadata. */
export function makeRootfs(dir: string): void {
  for (const d of ['bin', 'etc', 'root', 'srv/data', 'tmp', 'proc', 'sys', 'dev']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'cat', 'ls', 'stat', 'md5sum', 'sleep', 'mv', 'find', 'test']) symlinkSync('busybox', join(dir, 'bin', a));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/srv:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\napp:x:1000:\n');
  writeFileSync(join(dir, 'srv/data/hello'), 'hello world\n');
  writeFileSync(join(dir, 'srv/data/suid'), '#!/bin/sh\n');
  chmodSync(join(dir, 'srv/data/suid'), 0o4755);
  writeFileSync(join(dir, 'srv/data/owned'), 'owned\n');
  chownSync(join(dir, 'srv/data/owned'), 1000, 1000);
  chmodSync(join(dir, 'srv/data/owned'), 0o640);
  linkSync(join(dir, 'srv/data/hello'), join(dir, 'srv/data/hello-link'));
  symlinkSync('/srv/data/hello', join(dir, 'srv/hello-sym'));
  setXattr(join(dir, 'srv/data/hello'), 'user.novabox.test', 'kept');
  chmodSync(join(dir, 'tmp'), 0o1777);
  writeFileSync(join(dir, 'srv/remove-me'), 'soon gone\n');
}

/** path -> "type mode uid:gid size sha256 | link target" for every entry below dir. */
export function treeDigest(dir: string, skip: (rel: string) => boolean = () => false): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const p = join(dir, r);
      const st = lstatSync(p);
      const head = `${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        out[r] = `${head} dir`;
        walk(r);
      } else if (st.isSymbolicLink()) out[r] = `${head} -> ${readlinkSync(p)}`;
      else if (st.isFile()) out[r] = `${head} ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
      else out[r] = `${head} rdev ${st.rdev}`;
    }
  };
  walk('');
  return out;
}

/**
 * GNU tar's plain archive of `files` in `dir`, compressed by the compressor itself (run
 * without a shell): tar runs -J, -j and --zstd through /bin/sh, which in the QEMU guest is
 * busybox, whose decompress-only xz applet would win over the real one on PATH.
 */
function compressedTar(dir: string, files: string[], out: string, compression: 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2'): void {
  const plain = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-cf', '-', '-C', dir, ...files], {
    maxBuffer: 1 << 30,
  });
  const tool = { none: undefined, gzip: ['gzip', '-c'], zstd: ['zstd', '-q', '-c'], xz: ['xz', '-c'], bzip2: ['bzip2', '-c'] }[compression];
  writeFileSync(out, tool ? execFileSync(tool[0], tool.slice(1), { input: plain, maxBuffer: 1 << 30 }) : plain);
}

export function tarball(dir: string, out: string, compression: 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2'): void {
  compressedTar(dir, ['.'], out, compression);
}

/**
 * An OCI layout made by umoci: layer 1 = the rootfs, layer 2 = a new file, layer 3 = a
 * whiteout of srv/remove-me. Config: cmd and env set by umoci config.
 */
export function ociLayout(rootfs: string, layout: string, work: string, tag = 'v1'): void {
  sh('umoci', ['init', '--layout', layout]);
  sh('umoci', ['new', '--image', `${layout}:${tag}`]);
  sh('umoci', ['insert', '--image', `${layout}:${tag}`, rootfs, '/']);
  mkdirSync(join(work, 'extra'), { recursive: true });
  writeFileSync(join(work, 'extra/added'), 'from layer two\n');
  sh('umoci', ['insert', '--image', `${layout}:${tag}`, join(work, 'extra/added'), '/srv/added']);
  sh('umoci', ['insert', '--whiteout', '--image', `${layout}:${tag}`, '/srv/remove-me']);
  sh('umoci', [
    'config',
    '--image',
    `${layout}:${tag}`,
    '--config.cmd',
    '/bin/sleep',
    '--config.cmd',
    '1000',
    '--config.env',
    'GREETING=hi',
    '--config.workingdir',
    '/srv',
  ]);
}

/** An LXC/Incus unified tarball: metadata.yaml + rootfs/, xz-compressed. */
export function lxcTarball(rootfs: string, work: string, out: string): void {
  const d = join(work, 'lxc');
  mkdirSync(d, { recursive: true });
  writeFileSync(
    join(d, 'metadata.yaml'),
    'architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  description: test image\n  os: busybox\n  release: "1"\n',
  );
  sh('cp', ['-a', rootfs, join(d, 'rootfs')]);
  compressedTar(d, ['metadata.yaml', 'rootfs'], out, 'xz');
}

/** Hostile archives, one per rule; each names the entry the refusal must mention. */
export function hostileArchives(dir: string, canary: string): { file: string; entry: string; why: RegExp }[] {
  const py = `
import io, sys, tarfile
d, canary = sys.argv[1], sys.argv[2]
def add(t, name, kind='file', data=b'x', link='', major=0, minor=0):
    i = tarfile.TarInfo(name)
    if kind == 'file':
        i.size = len(data); t.addfile(i, io.BytesIO(data)); return
    i.type = {'dir': tarfile.DIRTYPE, 'sym': tarfile.SYMTYPE, 'hard': tarfile.LNKTYPE, 'chr': tarfile.CHRTYPE, 'blk': tarfile.BLKTYPE}[kind]
    i.linkname = link; i.devmajor = major; i.devminor = minor
    t.addfile(i)
def make(name, entries):
    with tarfile.open(f'{d}/{name}.tar', 'w', format=tarfile.PAX_FORMAT) as t:
        add(t, 'ok'); [add(t, *e) for e in entries]
make('absolute', [(canary + '-abs',)])
make('dotdot', [('a/../../' + canary.lstrip('/') + '-dotdot',)])
make('symlink', [('escape', 'sym', b'', canary.rsplit('/', 1)[0]), ('escape/' + canary.rsplit('/', 1)[1] + '-sym',)])
make('hardlink', [('h', 'hard', b'', '/etc/shadow')])
make('device', [('lib/mem', 'chr', b'', '', 1, 1)])
`;
  sh('python3', ['-c', py, dir, canary]);
  const base = canary.slice(canary.lastIndexOf('/') + 1);
  return [
    { file: join(dir, 'absolute.tar'), entry: `${canary}-abs`, why: /absolute path/ },
    { file: join(dir, 'dotdot.tar'), entry: 'a/../../', why: /'\.\.' in the path/ },
    { file: join(dir, 'symlink.tar'), entry: `escape/${base}-sym`, why: /through the symlink "escape"/ },
    { file: join(dir, 'hardlink.tar'), entry: 'h', why: /outside the layer/ },
    { file: join(dir, 'device.tar'), entry: 'lib/mem', why: /device node/ },
  ];
}
