/**
 * The server stream's framing (compute/migration/stream.ts) and the tar id shift
 * (images/id-shift.ts): pure, no root.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ByteReader, FORMAT, FORMAT_VERSION, MAGIC, checkHeader, encodeFrame, readFrame } from '../../../src/compute/migration/stream.js';
import { TarIdShifter, readTarNumber, writeTarNumber } from '../../../src/images/id-shift.js';
import { type Entry, treeDelta } from '../../../src/compute/migration/precopy.js';
import { targetHost, transportCommand } from '../../../src/compute/migration/migrate.js';

/** the bytes handed over in chunks of the given sizes (the rest in one) */
function chunked(b: Buffer, sizes: number[]): AsyncIterable<Buffer> {
  const parts: Buffer[] = [];
  let off = 0;
  for (const n of sizes) {
    if (off >= b.length) break;
    parts.push(b.subarray(off, off + n));
    off += n;
  }
  if (off < b.length) parts.push(b.subarray(off));
  return Readable.from(parts);
}

const header = { format: FORMAT, version: FORMAT_VERSION, arch: 'x64', os: 'linux', createdAt: 't', serverId: 'x' };

function frames(): Buffer[] {
  return [
    encodeFrame('H', header),
    encodeFrame('L', { diffId: 'd' }, Buffer.from('layer bytes '.repeat(1000))),
    encodeFrame('W', { size: 0 }),
    encodeFrame('E', { frames: 4 }),
  ];
}

function sample(): Buffer {
  return Buffer.concat(frames());
}

async function readAll(src: AsyncIterable<Buffer>) {
  const r = new ByteReader(src);
  const frames: { kind: string; meta: unknown; payload: Buffer; sha: string }[] = [];
  for (;;) {
    const chunks: Buffer[] = [];
    const f = await readFrame(r, (_i, c) => void chunks.push(Buffer.from(c)));
    if (!f) return frames;
    frames.push({ kind: f.kind, meta: f.meta, payload: Buffer.concat(chunks), sha: f.payloadSha256 });
  }
}

describe('server stream frames', () => {
  it.each([[[1]], [[3, 5, 7]], [[17, 4096]], [[100000]], [Array.from({ length: 200 }, () => 1)]])(
    'round-trips whatever the chunking (%j)',
    async (sizes) => {
      const frames = await readAll(chunked(sample(), sizes));
      expect(frames.map((f) => f.kind)).toEqual(['H', 'L', 'W', 'E']);
      expect(frames[0]!.meta).toEqual(header);
      expect(frames[1]!.payload.toString()).toBe('layer bytes '.repeat(1000));
      expect(frames[2]!.sha).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    },
  );

  it('a stream cut anywhere inside a frame is a cut, at every offset', async () => {
    const b = sample();
    const ends = new Set<number>();
    let off = 0;
    for (const f of frames()) ends.add((off += f.length));
    const cuts = [
      ...ends,
      ...Array.from({ length: 300 }, (_, i) => i + 1),
      ...Array.from({ length: 200 }, () => 1 + Math.floor(Math.random() * (b.length - 1))),
    ];
    for (const cut of cuts.filter((c) => c < b.length)) {
      const p = readAll(chunked(b.subarray(0, cut), [7]));
      if (ends.has(cut)) await expect(p).resolves.toBeDefined();
      else await expect(p).rejects.toThrow(/ends early|too short/);
    }
  });

  it('one flipped byte anywhere is found', async () => {
    const b = sample();
    for (let i = 0; i < b.length; i += 37) {
      const bad = Buffer.from(b);
      bad[i] ^= 0x40;
      await expect(readAll(chunked(bad, [4096]))).rejects.toThrow(/corrupt|not a novabox server stream|ends early|too short/);
    }
  });

  it('refuses what is not a stream, and a stream of another format version or architecture', async () => {
    await expect(readAll(Readable.from([Buffer.from('hello world, this is no stream')]))).rejects.toThrow(
      /not a novabox server stream \(it does not start with "NBX1"\)/,
    );
    await expect(readAll(Readable.from([Buffer.from('NB')]))).rejects.toThrow(/not a novabox server stream: it is too short/);
    expect(() => checkHeader(undefined)).toThrow(/it is empty/);
    const f = async (meta: Record<string, unknown>) => readFrame(new ByteReader(Readable.from([encodeFrame('H', meta)])));
    expect(checkHeader(await f(header), 'x64').serverId).toBe('x');
    expect(() => checkHeader(undefined)).toThrow(/empty/);
    await expect(f({ ...header, version: 2 }).then((x) => checkHeader(x, 'x64'))).rejects.toThrow(
      /format version 2; this novabox reads version 1/,
    );
    await expect(f({ ...header, arch: 'arm64' }).then((x) => checkHeader(x, 'x64'))).rejects.toThrow(
      /linux\/arm64 server; this host is linux\/x64/,
    );
    await expect(f({ hello: 1 }).then((x) => checkHeader(x, 'x64'))).rejects.toThrow(/has no header/);
    expect(MAGIC.toString()).toBe('NBX1');
  });

  it('refuses impossible lengths before reading them', async () => {
    const b = encodeFrame('H', header);
    b.writeUInt32BE(0xffffffff, 5);
    await expect(readAll(Readable.from([b]))).rejects.toThrow(/impossible frame lengths/);
  });
});

describe('tar id shift', () => {
  it.each([0, 7, 65535, 2097151, 2097152, 1_000_065_535])('tar numbers: %d round-trips in an 8-byte field', (v) => {
    const b = Buffer.alloc(8);
    writeTarNumber(b, 0, 8, v);
    expect(readTarNumber(b, 0, 8)).toBe(v);
  });

  it('shifts owners of a GNU tar archive and GNU tar reads them back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nbx-shift-'));
    try {
      writeFileSync(join(dir, 'a'), 'x'.repeat(1500));
      const long = 'd'.repeat(120);
      writeFileSync(join(dir, long), 'y');
      const tar = spawnSync(
        'tar',
        ['-c', '-f', '-', '-C', dir, '--format=pax', '--numeric-owner', '--owner=0', '--group=0', '--mode=4755', '--no-xattrs', 'a', long],
        { maxBuffer: 1 << 24 },
      ).stdout;
      // pax headers GNU tar writes for long names carry no uid; the ids are shifted
      const shifted: Buffer[] = [];
      const t = new TarIdShifter({ uidBase: 1_000_000_000, gidBase: 2_000_000, count: 65536 });
      await new Promise<void>((resolve, reject) => {
        t.on('data', (c: Buffer) => shifted.push(c));
        t.on('end', resolve);
        t.on('error', reject);
        for (let i = 0; i < tar.length; i += 333) t.write(tar.subarray(i, i + 333));
        t.end();
      });
      const out = Buffer.concat(shifted);
      expect(out.length).toBe(tar.length);
      const list = spawnSync('tar', ['-tvf', '-', '--numeric-owner'], { input: out }).stdout.toString();
      expect(list).toMatch(/-rwsr-xr-x 1000000000\/2000000 +1500 .* a\n/);
      expect(list).toContain(`1000000000/2000000`);
      expect(list).toContain(long);
      // ids outside the range are refused
      const t2 = new TarIdShifter({ uidBase: 5, gidBase: 5, count: 0 });
      await expect(
        new Promise((resolve, reject) => {
          t2.on('error', reject);
          t2.on('finish', resolve);
          t2.end(tar);
        }),
      ).rejects.toThrow(/outside the 0 ids/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pre-copy delta', () => {
  const e = (ino: number, ctime: number): Entry => ({ ino: BigInt(ino), ctimeNs: BigInt(ctime), uid: 0, gid: 0 });
  const tree = (o: Record<string, [number, number]>) => new Map(Object.entries(o).map(([k, [i, c]]) => [k, e(i, c)]));

  it('names new entries, entries of another inode or ctime, and the topmost gone paths', () => {
    const before = tree({
      a: [1, 1],
      d: [2, 1],
      'd/x': [3, 1],
      'd/y': [4, 1],
      gone: [5, 1],
      'gone/sub': [6, 1],
      'gone/sub/f': [7, 1],
      same: [8, 1],
    });
    const after = tree({ a: [1, 2], d: [2, 3], 'd/x': [9, 1], same: [8, 1], fresh: [10, 1] });
    expect(treeDelta(before, after)).toEqual({ changed: ['a', 'd', 'd/x', 'fresh'], deleted: ['d/y', 'gone'] });
  });

  it('nothing changed: an empty delta', () => {
    const t = tree({ a: [1, 1], 'b/c': [2, 2] });
    expect(treeDelta(t, new Map(t))).toEqual({ changed: [], deleted: [] });
  });
});

describe('migrate --to', () => {
  it.each([
    ['ssh://hostb', [], ['ssh', '-o', 'BatchMode=yes', '--', 'hostb', 'novabox', 'server', 'receive']],
    [
      'ssh://root@10.0.0.2:2222',
      ['IdentityFile=/k', 'UserKnownHostsFile=/kh'],
      [
        'ssh',
        '-o',
        'BatchMode=yes',
        '-o',
        'IdentityFile=/k',
        '-o',
        'UserKnownHostsFile=/kh',
        '-p',
        '2222',
        '--',
        'root@10.0.0.2',
        'novabox',
        'server',
        'receive',
      ],
    ],
    ['exec:ip netns exec b novabox server receive', [], ['sh', '-c', 'ip netns exec b novabox server receive']],
  ])('%s %j runs %j', (to, opts, argv) => {
    expect(transportCommand(to, opts)).toEqual(argv);
  });
  it.each([
    ['ftp://hostb', [], 'invalid --to "ftp://hostb": expected ssh://[USER@]HOST[:PORT] or exec:COMMAND'],
    ['exec:', [], 'invalid --to "exec:": expected exec:COMMAND'],
    ['exec:true', ['IdentityFile=/k'], '--ssh-option applies to an ssh:// target only (an exec: command carries its own options)'],
    [
      'ssh://h',
      ['-oProxyCommand=x'],
      'invalid --ssh-option "-oProxyCommand=x": expected KEYWORD=VALUE as in ssh_config(5), e.g. IdentityFile=/root/.ssh/id_ed25519',
    ],
    [
      'ssh://h',
      ['Port'],
      'invalid --ssh-option "Port": expected KEYWORD=VALUE as in ssh_config(5), e.g. IdentityFile=/root/.ssh/id_ed25519',
    ],
  ])('%s %j is refused in one sentence', (to, opts, msg) => {
    expect(() => transportCommand(to, opts)).toThrow(msg);
  });
  it("names the ssh host as Nova's dest_host", () => {
    expect(targetHost('ssh://root@[fe80::1]:22')).toBe('fe80::1');
    expect(targetHost('exec:true')).toBeNull();
  });
});
