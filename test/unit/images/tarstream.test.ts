import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  EntryChecker,
  TarValidator,
  normalizeName,
  parseHeader,
  parsePax,
  parseSparseExtension,
  unsafePath,
  whiteoutTarget,
  type TarEntry,
} from '../../../src/images/tarstream.js';
import { TarSource, fileHeader } from '../../../src/images/archive.js';

function header(name: string, type: string, opts: { linkname?: string; size?: number; major?: number; minor?: number } = {}): Buffer {
  const h = fileHeader(name.length > 100 ? name.slice(0, 100) : name, opts.size ?? 0);
  h[156] = type.charCodeAt(0);
  if (opts.linkname) h.write(opts.linkname, 157, 100, 'utf8');
  h.write((opts.major ?? 0).toString(8).padStart(7, '0') + '\0', 329, 'latin1');
  h.write((opts.minor ?? 0).toString(8).padStart(7, '0') + '\0', 337, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

function entry(name: string, type = '0', extra: Partial<TarEntry> = {}): TarEntry {
  return { name, type, linkname: '', size: 0, mode: 0o644, uid: 0, gid: 0, devMajor: 0, devMinor: 0, ...extra };
}

function pad(b: Buffer): Buffer {
  return b.length % 512 ? Buffer.concat([b, Buffer.alloc(512 - (b.length % 512))]) : b;
}

async function run(chunks: Buffer[], trusted = false): Promise<{ out: Buffer; err?: Error; v: TarValidator }> {
  const v = new TarValidator({ trusted });
  const parts: Buffer[] = [];
  v.on('data', (d: Buffer) => parts.push(d));
  try {
    await new Promise<void>((resolve, reject) => {
      v.on('error', reject);
      v.on('end', resolve);
      Readable.from(chunks).pipe(v);
    });
    return { out: Buffer.concat(parts), v };
  } catch (err) {
    return { out: Buffer.concat(parts), err: err as Error, v };
  }
}

describe('path rules', () => {
  it('normalises names as tar writes them', () => {
    expect(normalizeName('./a/b/')).toBe('a/b');
    expect(normalizeName('.')).toBe('');
    expect(normalizeName('./')).toBe('');
    expect(normalizeName('a//b/./c')).toBe('a/b/c');
  });
  it('refuses absolute paths and ..', () => {
    expect(unsafePath('/etc/passwd')).toBe('absolute path');
    expect(unsafePath('a/../../etc')).toBe("'..' in the path");
    expect(unsafePath('..')).toBe("'..' in the path");
    expect(unsafePath('a/..b/c')).toBeUndefined();
    expect(unsafePath('usr/bin')).toBeUndefined();
  });
});

describe('EntryChecker', () => {
  const c = () => new EntryChecker({ trusted: false });
  it('accepts an ordinary rootfs', () => {
    const k = c();
    for (const e of [
      entry('./', '5'),
      entry('./bin/', '5'),
      entry('./bin/busybox'),
      entry('./bin/sh', '1', { linkname: './bin/busybox' }),
      entry('./lib', '2', { linkname: '/usr/lib' }),
    ])
      k.check(e);
    expect(k.entries).toBe(5);
  });
  it('refuses an entry written through a symlink of the archive', () => {
    const k = c();
    k.check(entry('etc', '2', { linkname: '/etc' }));
    expect(() => k.check(entry('etc/passwd'))).toThrow(/entry "etc\/passwd": it would be written through the symlink "etc"/);
  });
  it('forgets a symlink replaced by a directory', () => {
    const k = c();
    k.check(entry('d', '2', { linkname: '/tmp' }));
    k.check(entry('d', '5'));
    expect(() => k.check(entry('d/f'))).not.toThrow();
  });
  it('refuses hard links out of the layer, through symlinks, or to nothing', () => {
    expect(() => c().check(entry('x', '1', { linkname: '/etc/shadow' }))).toThrow(/hard link to "\/etc\/shadow", outside the layer/);
    expect(() => c().check(entry('x', '1', { linkname: '../../etc/shadow' }))).toThrow(/outside the layer/);
    expect(() => c().check(entry('x', '1', { linkname: 'missing' }))).toThrow(/not earlier in the archive/);
    const k = c();
    k.check(entry('l', '2', { linkname: '/etc' }));
    expect(() => k.check(entry('x', '1', { linkname: 'l/shadow' }))).toThrow(/through the symlink "l"/);
  });
  it('refuses device nodes outside /dev unless trusted, but allows whiteout devices', () => {
    expect(() => c().check(entry('lib/sda', '4', { devMajor: 8, devMinor: 0 }))).toThrow(/device node \(block 8:0\).*--trusted/);
    expect(() => c().check(entry('mem', '3', { devMajor: 1, devMinor: 1 }))).toThrow(/device node/);
    expect(() => c().check(entry('devices/mem', '3', { devMajor: 1, devMinor: 1 }))).toThrow(/device node/);
    expect(() => c().check(entry('rootfs/dev/mem', '3', { devMajor: 1, devMinor: 1 }))).toThrow(/device node/);
    expect(c().check(entry('gone', '3'))).toBe(true);
    expect(new EntryChecker({ trusted: true }).check(entry('lib/null', '3', { devMajor: 1, devMinor: 3 }))).toBe(true);
  });
  it('leaves out device nodes under /dev, trusted or not; the rest of /dev stays', () => {
    for (const trusted of [false, true]) {
      const k = new EntryChecker({ trusted });
      expect(k.check(entry('./dev/', '5'))).toBe(true);
      expect(k.check(entry('./dev/null', '3', { devMajor: 1, devMinor: 3 }))).toBe(false);
      expect(k.check(entry('dev/sda', '4', { devMajor: 8, devMinor: 0 }))).toBe(false);
      expect(k.check(entry('dev/pts/ptmx', '3', { devMajor: 5, devMinor: 2 }))).toBe(false);
      expect(k.check(entry('dev/fd', '2', { linkname: '/proc/self/fd' }))).toBe(true);
      expect(k.check(entry('dev/shm', '5'))).toBe(true);
      expect(k.check(entry('dev/.wh.gone', '0'))).toBe(true);
      // a hard link to a node left out is that node: left out under /dev, refused elsewhere
      expect(k.check(entry('dev/null2', '1', { linkname: 'dev/null' }))).toBe(false);
      expect(() => k.check(entry('etc/null', '1', { linkname: './dev/null' }))).toThrow(/hard link to the device node/);
      // the path rules still hold under /dev
      expect(() => k.check(entry('dev/../../x', '3', { devMajor: 1, devMinor: 3 }))).toThrow(/'\.\.'/);
    }
    // an LXC tarball's rootfs/dev
    const lxc = new EntryChecker({ trusted: false, devDir: 'rootfs/dev/' });
    expect(lxc.check(entry('rootfs/dev/null', '3', { devMajor: 1, devMinor: 3 }))).toBe(false);
    expect(() => lxc.check(entry('dev/null', '3', { devMajor: 1, devMinor: 3 }))).toThrow(/device node/);
  });
  it('records OCI whiteouts and opaque markers', () => {
    const k = c();
    k.check(entry('a/.wh.b'));
    k.check(entry('./d/.wh..wh..opq'));
    expect(k.whiteouts).toEqual(['a/.wh.b']);
    expect(k.opaques).toEqual(['d']);
    expect(() => c().check(entry('a/.wh.b', '5'))).toThrow(/whiteout that is not a regular file/);
  });
  it('refuses unknown entry types', () => {
    expect(() => c().check(entry('x', 'V'))).toThrow(/unsupported entry type 'V'/);
  });
});

describe('TarValidator', () => {
  it('passes a valid archive through byte for byte, in any chunking', async () => {
    const data = Buffer.from('hello\n');
    const tar = Buffer.concat([header('dir/', '5'), header('dir/f', '0', { size: data.length }), pad(data), Buffer.alloc(1024)]);
    for (const size of [1, 7, 512, 513, tar.length]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < tar.length; i += size) chunks.push(tar.subarray(i, i + size));
      const r = await run(chunks);
      expect(r.err).toBeUndefined();
      expect(r.out.equals(tar)).toBe(true);
    }
  });
  it('stops before the hostile entry reaches the extractor', async () => {
    const ok = header('fine', '0');
    const tar = Buffer.concat([ok, header('../evil', '0'), Buffer.alloc(1024)]);
    const r = await run([tar]);
    expect(r.err?.message).toBe('refusing the archive: entry "../evil": \'..\' in the path');
    expect(r.out.equals(ok)).toBe(true);
  });
  it('uses PAX paths: a long hostile name is caught', async () => {
    const rec = (k: string, v: string) => {
      const body = ` ${k}=${v}\n`;
      let len = body.length + 2;
      while (String(len).length + body.length !== len) len = String(len).length + body.length;
      return `${len}${body}`;
    };
    const pax = Buffer.from(rec('path', `/${'a'.repeat(150)}/x`));
    const tar = Buffer.concat([header('PaxHeaders/x', 'x', { size: pax.length }), pad(pax), header('x', '0'), Buffer.alloc(1024)]);
    const r = await run([tar]);
    expect(r.err?.message).toMatch(/absolute path/);
    expect(r.out.length).toBe(0);
  });
  it('uses GNU long names', async () => {
    const long = Buffer.from(`a/${'b'.repeat(200)}\0`);
    const tar = Buffer.concat([header('././@LongLink', 'L', { size: long.length }), pad(long), header('short', '0'), Buffer.alloc(1024)]);
    const names: string[] = [];
    const v = new TarValidator({ trusted: false });
    v.onEntry = (e) => names.push(e.name);
    v.resume();
    await new Promise<void>((resolve, reject) => {
      v.on('finish', resolve);
      v.on('error', reject);
      v.end(tar);
    });
    expect(names).toEqual([`a/${'b'.repeat(200)}`]);
  });
  it('leaves /dev device nodes out of the stream, with their PAX headers, in any chunking', async () => {
    const paxBody = Buffer.from('20 path=dev/console\n');
    const dir = header('dev/', '5');
    const link = header('dev/fd', '2', { linkname: '/proc/self/fd' });
    const data = Buffer.from('x');
    const file = Buffer.concat([header('etc/f', '0', { size: 1 }), pad(data)]);
    const tar = Buffer.concat([
      dir,
      header('dev/null', '3', { major: 1, minor: 3 }),
      header('PaxHeaders/c', 'x', { size: paxBody.length }),
      pad(paxBody),
      header('c', '3', { major: 5, minor: 1 }),
      link,
      header('dev/sda', '4', { major: 8 }),
      file,
      Buffer.alloc(1024),
    ]);
    for (const size of [1, 100, 512, tar.length]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < tar.length; i += size) chunks.push(tar.subarray(i, i + size));
      const r = await run(chunks);
      expect(r.err).toBeUndefined();
      expect(r.out.equals(Buffer.concat([dir, link, file, Buffer.alloc(1024)]))).toBe(true);
    }
  });
  it('refuses truncated and non-tar input', async () => {
    const tar = Buffer.concat([header('f', '0', { size: 2000 }), Buffer.alloc(600)]);
    expect((await run([tar])).err?.message).toMatch(/ends in the middle of an entry/);
    expect((await run([Buffer.alloc(512, 65)])).err?.message).toMatch(/not a tar archive/);
  });
  it('parses headers and PAX records', () => {
    const h = parseHeader(header('x/y', '3', { major: 1, minor: 3 }))!;
    expect(h).toMatchObject({ name: 'x/y', type: '3', devMajor: 1, devMinor: 3 });
    expect(parseHeader(Buffer.alloc(512))).toBeUndefined();
    expect(parsePax(Buffer.from('11 path=ab\n20 SCHILY.xattr.u=v\n'))).toEqual({ path: 'ab', 'SCHILY.xattr.u': 'v' });
  });
});

describe('TarValidator edge cases', () => {
  it('accepts "/" as the root entry and completes an archive without end blocks', async () => {
    const tar = Buffer.concat([header('/', '5'), header('srv/.wh.f', '0')]);
    const r = await run([tar]);
    expect(r.err).toBeUndefined();
    expect(r.out.length).toBe(tar.length + 1024);
    expect(r.v.checker.whiteouts).toEqual(['srv/.wh.f']);
  });
});

describe('whiteout conversion (OCI -> overlay)', () => {
  it('maps .wh.NAME to the hidden path and .wh..wh..opq to an opaque dir', () => {
    expect(whiteoutTarget('./etc/.wh.hosts')).toEqual({ hides: 'etc/hosts' });
    expect(whiteoutTarget('.wh.var')).toEqual({ hides: 'var' });
    expect(whiteoutTarget('usr/lib/.wh..wh..opq')).toEqual({ opaqueDir: 'usr/lib' });
    expect(whiteoutTarget('.wh..wh..opq')).toEqual({ opaqueDir: '' });
    expect(whiteoutTarget('etc/hosts')).toBeUndefined();
    expect(whiteoutTarget('etc/.wh.')).toBeUndefined();
    expect(whiteoutTarget('etc/x.wh.y')).toBeUndefined();
  });
});

describe('GNU sparse files (tar --sparse --format=gnu, the old format)', () => {
  // GNU tar itself makes the archives: a file with 41 stretches of data needs the 4 map
  // entries of the header and two extension blocks of 21
  const made = (() => {
    const dir = mkdtempSync(join(tmpdir(), 'nbx-sparse-'));
    try {
      const make = (name: string, stretches: number) => {
        const fd = openSync(join(dir, 'root', name), 'w');
        for (let i = 0; i < stretches; i++) writeSync(fd, Buffer.alloc(4096, `${name}${i}|`), 0, 4096, i * 65536 + 1000);
        ftruncateSync(fd, stretches * 65536 + 12345);
        closeSync(fd);
        return readFileSync(join(dir, 'root', name));
      };
      mkdirSync(join(dir, 'root'));
      const files = { 'few.img': make('few.img', 2), 'many.img': make('many.img', 41) };
      execFileSync('tar', ['--sparse', '--format=gnu', '-C', join(dir, 'root'), '-cf', join(dir, 'gnu.tar'), '.']);
      return { files, tar: readFileSync(join(dir, 'gnu.tar')) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();

  it('GNU tar wrote S entries, one with extension blocks', () => {
    const types: string[] = [];
    for (let off = 0; off + 512 <= made.tar.length; ) {
      const h = parseHeader(made.tar.subarray(off, off + 512));
      if (!h) break;
      types.push(`${normalizeName(h.name)}:${h.type}:${h.sparse?.extended ?? '-'}`);
      off += 512;
      for (let more = h.sparse?.extended; more; off += 512) more = parseSparseExtension(made.tar.subarray(off, off + 512)).extended;
      off += Math.ceil(h.size / 512) * 512;
    }
    expect(types.sort()).toEqual([':5:-', 'few.img:S:false', 'many.img:S:true']);
  });

  it('passes the archive through unchanged, in any chunking, and sees each file with its real size', async () => {
    for (const step of [made.tar.length, 512, 100, 7]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < made.tar.length; i += step) chunks.push(made.tar.subarray(i, i + step));
      const seen: TarEntry[] = [];
      const v = new TarValidator({ trusted: false });
      v.onEntry = (e) => seen.push(e);
      const parts: Buffer[] = [];
      v.on('data', (d: Buffer) => parts.push(d));
      await new Promise<void>((resolve, reject) => {
        v.on('error', reject);
        v.on('end', resolve);
        Readable.from(chunks).pipe(v);
      });
      expect(Buffer.concat(parts).subarray(0, made.tar.length).equals(made.tar)).toBe(true);
      const sparse = seen.filter((e) => e.sparse).map((e) => [normalizeName(e.name), e.sparse!.realSize, e.sparse!.map.length]);
      expect(sparse.sort()).toEqual([
        ['few.img', made.files['few.img'].length, 3],
        ['many.img', made.files['many.img'].length, 42],
      ]);
    }
  });

  it('reads a sparse member of an archive (TarSource) as the file it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nbx-sparse-src-'));
    try {
      writeFileSync(join(dir, 'a.tar'), made.tar);
      const src = new TarSource(join(dir, 'a.tar'));
      for (const [name, want] of Object.entries(made.files)) {
        expect(src.size(name)).toBe(want.length);
        expect(src.read(name).equals(want)).toBe(true);
        const streamed: Buffer[] = [];
        for await (const c of src.open(name)) streamed.push(c as Buffer);
        expect(Buffer.concat(streamed).equals(want)).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a sparse map that does not add up, or runs past the file', async () => {
    const at = made.tar.indexOf(Buffer.from('few.img'));
    const start = at - (at % 512);
    const broken = (patch: (h: Buffer) => void) => {
      const t = Buffer.from(made.tar);
      const h = t.subarray(start, start + 512);
      patch(h);
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += h[i]!;
      h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
      return [t];
    };
    // the first stretch made 1 byte longer: the map no longer matches the stored data
    const longer = await run(broken((h) => h.write((num(h, 398) + 1).toString(8).padStart(11, '0') + '\0', 398, 'latin1')));
    expect(longer.err?.message).toMatch(/entry "\.\/few\.img": a sparse map of \d+ bytes for \d+ bytes of data/);
    // a real size smaller than the stretches
    const short = await run(broken((h) => h.write('00000000001\0', 483, 'latin1')));
    expect(short.err?.message).toMatch(/stretches past the end of the file/);
  });
});

function num(h: Buffer, at: number): number {
  return parseInt(
    h
      .toString('latin1', at, at + 12)
      .replace(/\0.*$/s, '')
      .trim(),
    8,
  );
}
