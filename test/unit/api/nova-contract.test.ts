/** Issue 16's pure pieces: Nova's is_public parsing, image fit, the image proxy's filters, faults without host paths. */
import { describe, expect, it } from 'vitest';
import { parseIsPublic } from '../../../src/api/compute/flavors.js';
import { filterImages } from '../../../src/api/compute/images.js';
import { withoutHostPaths } from '../../../src/api/faults.js';
import { checkImageFits } from '../../../src/compute/servers.js';
import { checkImageName } from '../../../src/images/store.js';
import type { GlanceImage } from '../../../src/api/image/catalog.js';
import type { Flavor } from '../../../src/store/flavors.js';

describe('issue 16 (pure parts)', () => {
  it('parses is_public as Nova does', () => {
    expect(parseIsPublic(undefined)).toBe(true);
    for (const v of ['none', 'None', ' NONE ']) expect(parseIsPublic(v)).toBeNull();
    for (const v of ['1', 't', 'true', 'On', 'y', 'YES']) expect(parseIsPublic(v)).toBe(true);
    for (const v of ['0', 'f', 'False', 'off', 'n', 'no']) expect(parseIsPublic(v)).toBe(false);
    expect(() => parseIsPublic('maybe')).toThrow(/Invalid is_public filter \[maybe\]/);
    expect(() => parseIsPublic('')).toThrow(/Invalid is_public/);
  });

  it("checks an image's min_ram / min_disk against the flavor (disk 0 has no size to check)", () => {
    const f = { ramMiB: 128, diskGiB: 1 } as Flavor;
    expect(() => checkImageFits({ minRam: 256, minDisk: 0 }, f)).toThrow("Flavor's memory is too small for requested image.");
    expect(() => checkImageFits({ minRam: 0, minDisk: 2 }, f)).toThrow("Flavor's disk is too small for requested image.");
    expect(() => checkImageFits({ minRam: 128, minDisk: 1 }, f)).not.toThrow();
    expect(() => checkImageFits({ minRam: 0, minDisk: 50 }, { ...f, diskGiB: 0 })).not.toThrow();
    expect(() => checkImageFits(undefined, f)).not.toThrow();
  });

  it('takes free-text image names of 1 to 255 characters', () => {
    for (const n of ['Snap ₡ 1', 'a/b/../c', ' spaced ', 'x'.repeat(255), '₡'.repeat(255)]) expect(() => checkImageName(n)).not.toThrow();
    expect(() => checkImageName('')).toThrow(/1 to 255/);
    expect(() => checkImageName('x'.repeat(256))).toThrow(/1 to 255/);
    expect(() => checkImageName('a\0b')).toThrow(/NUL/);
  });

  it("filters the compute image list as Nova's proxy does", () => {
    const img = (id: string, p: Partial<GlanceImage>): GlanceImage => ({
      id,
      name: id,
      status: 'active',
      visibility: 'private',
      protected: false,
      containerFormat: 'bare',
      diskFormat: 'raw',
      size: 1,
      checksum: null,
      minDisk: 0,
      minRam: 0,
      owner: 'p',
      createdAt: '2026-01-01T00:00:00.000000',
      updatedAt: '2026-01-01T00:00:00.000000',
      properties: {},
      ...p,
    });
    const list = [
      img('a', {}),
      img('b', { status: 'saving', properties: { instance_uuid: 's1', image_type: 'snapshot' }, updatedAt: '2026-06-01T00:00:00.000000' }),
      img('c', { properties: { instance_uuid: 's1', image_type: 'backup' }, minRam: 512 }),
    ];
    const ids = (q: Record<string, string>) => filterImages(list, q).map((i) => i.id);
    expect(ids({ status: 'ACTIVE' })).toEqual(['a', 'c']);
    expect(ids({ status: 'SAVING' })).toEqual(['b']);
    expect(ids({ status: 'saving' })).toEqual(['b']);
    expect(ids({ server: 'http://x/compute/v2.1/servers/s1' })).toEqual(['b', 'c']);
    expect(ids({ type: 'backup' })).toEqual(['c']);
    expect(ids({ name: 'a' })).toEqual(['a']);
    expect(ids({ minRam: '256' })).toEqual(['c']);
    expect(ids({ 'changes-since': '2026-03-01T00:00:00Z' })).toEqual(['b']);
    expect(() => ids({ 'changes-since': 'soon' })).toThrow(/changes-since/);
  });

  it('never shows a file of the host in a fault', () => {
    const saved = process.env.NOVABOX_ROOT;
    process.env.NOVABOX_ROOT = '/var/lib/nbx-test';
    try {
      expect(withoutHostPaths('/var/lib/nbx-test/tmp/upload-3113-899c43a4/data is not a tar archive')).toBe(
        '(a file of novabox) is not a tar archive',
      );
      expect(withoutHostPaths('open /var/lib/nbx-test/layers/sha256/abc: ENOENT, and /var/lib/nbx-test/x')).toBe(
        'open (a file of novabox): ENOENT, and (a file of novabox)',
      );
      expect(withoutHostPaths('image "x" not found')).toBe('image "x" not found');
    } finally {
      if (saved === undefined) delete process.env.NOVABOX_ROOT;
      else process.env.NOVABOX_ROOT = saved;
    }
  });
});
