/**
 * The native packer hashes the layer tar while writing it (native-bindings/src/layer.c,
 * sha256.c): the digest it returns must be the sha256 of the bytes in the file, with the
 * SHA-NI code and with the portable code, for sizes around the 64-byte blocks and the
 * 256 KiB write buffer. Needs no root: plain files in a temp dir.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packLayer, packLayerAsync } from '../../../src/images/layers.js';
import { sha256Hex } from '../../../src/sys/layer.js';

describe('native layer packer digest', () => {
  let dir: string;
  let src: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-pack-'));
    src = join(dir, 'src');
    mkdirSync(join(src, 'd/e'), { recursive: true });
    // sizes at the edges of a SHA-256 block, a tar block and the 256 KiB write buffer
    const sizes = [0, 1, 55, 56, 63, 64, 65, 511, 512, 513, 262143, 262144, 262145, 1048576 + 3];
    let seed = 1;
    for (const [i, n] of sizes.entries()) {
      const b = Buffer.alloc(n);
      for (let k = 0; k < n; k++) b[k] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      writeFileSync(join(src, i % 2 ? 'd' : 'd/e', `f${i}`), b);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const sha = (f: string) => `sha256:${createHash('sha256').update(readFileSync(f)).digest('hex')}`;

  it.each([
    ['SHA-NI where the CPU has it', '0'],
    ['portable C', '1'],
  ])('returns the sha256 of the tar it wrote (%s)', async (_label, portable) => {
    process.env.NOVABOX_SHA256_PORTABLE = portable;
    try {
      const a = packLayer(src, join(dir, `a${portable}.tar`), null, false);
      expect(a.diffId).toBe(sha(a.blobFile));
      expect(a.size).toBe(readFileSync(a.blobFile).length);
      expect(a.size % 512).toBe(0);
      const b = await packLayerAsync(src, join(dir, `b${portable}.tar`), null, true); // with the syncfs beside it
      expect(b).toEqual({ ...a, blobFile: b.blobFile });
      expect(readFileSync(b.blobFile).equals(readFileSync(a.blobFile))).toBe(true);
    } finally {
      delete process.env.NOVABOX_SHA256_PORTABLE;
    }
  });

  it.each([
    ['SHA-NI where the CPU has it', '0'],
    ['portable C', '1'],
  ])('hashes buffers as node:crypto does (%s)', (_label, portable) => {
    process.env.NOVABOX_SHA256_PORTABLE = portable;
    try {
      for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 262145]) {
        const b = Buffer.alloc(n, n % 251);
        expect(sha256Hex(b)).toBe(createHash('sha256').update(b).digest('hex'));
      }
    } finally {
      delete process.env.NOVABOX_SHA256_PORTABLE;
    }
  });

  it('reports a missing source as an error, not a digest', async () => {
    await expect(packLayerAsync(join(dir, 'nosuch'), join(dir, 'x.tar'), null, false)).rejects.toThrow(
      /cannot pack the layer: open .*nosuch/,
    );
  });
});
