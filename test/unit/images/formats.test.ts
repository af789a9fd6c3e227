import { describe, expect, it } from 'vitest';
import {
  SERVER_CMD_LABEL,
  formatFromDir,
  formatFromEntries,
  parseDockerManifest,
  parseImageConfig,
  parseLxcMetadata,
  parseManifest,
  pickManifest,
} from '../../../src/images/formats.js';
import { compressionOf } from '../../../src/images/layers.js';
import { ociDocuments } from '../../../src/images/service.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;

describe('format detection', () => {
  it('tells archives apart by their first entries', () => {
    expect(formatFromEntries(['blobs', 'blobs/sha256', 'blobs/sha256/aa', 'index.json', 'oci-layout'])).toBe('oci');
    expect(formatFromEntries(['abc/layer.tar', 'abc.json', 'manifest.json', 'repositories'])).toBe('docker-archive');
    expect(formatFromEntries(['blobs/sha256/aa', 'manifest.json'])).toBe('docker-archive');
    expect(formatFromEntries(['metadata.yaml', 'rootfs', 'rootfs/bin'])).toBe('lxc');
    expect(formatFromEntries(['./metadata.yaml', './rootfs/', './rootfs/etc/'])).toBe('lxc');
    expect(formatFromEntries(['.', 'bin', 'bin/sh', 'etc', 'etc/passwd'])).toBe('tar');
    expect(formatFromEntries(['etc/manifest.json'])).toBe('tar');
  });
  it('tells directories apart', () => {
    expect(formatFromDir(['blobs', 'index.json', 'oci-layout'])).toBe('oci');
    expect(formatFromDir(['metadata.yaml', 'rootfs', 'templates'])).toBe('lxc');
    expect(formatFromDir(['manifest.json', 'abc.json'])).toBe('docker-archive');
    expect(formatFromDir(['bin', 'etc', 'usr'])).toBe('rootfs-dir');
  });
  it('reads compression from magic bytes', () => {
    expect(compressionOf(Buffer.from([0x1f, 0x8b, 8]))).toBe('gzip');
    expect(compressionOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(compressionOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))).toBe('xz');
    expect(compressionOf(Buffer.from('BZh9'))).toBe('bzip2');
    expect(compressionOf(Buffer.from('etc/passwd'))).toBe('none');
  });
});

describe('OCI manifests', () => {
  const m = (digest: string, extra: object = {}) => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest,
    size: 1,
    ...extra,
  });
  it('picks the manifest of an index', () => {
    expect(pickManifest({ manifests: [m(D('a'))] }).digest).toBe(D('a'));
    const two = {
      manifests: [
        m(D('a'), { annotations: { 'org.opencontainers.image.ref.name': 'x' }, platform: { os: 'linux', architecture: 'arm64' } }),
        m(D('b'), { platform: { os: 'linux', architecture: 'amd64' } }),
      ],
    };
    expect(pickManifest(two, 'x').digest).toBe(D('a'));
    expect(pickManifest(two, undefined, 'amd64').digest).toBe(D('b'));
    expect(() => pickManifest(two, 'nope')).toThrow(/no image named "nope"/);
    expect(() => pickManifest({ manifests: [] })).toThrow(/lists no manifests/);
    expect(() => pickManifest({ manifests: [{ digest: 'md5:x' }] })).toThrow(/without a sha256 digest/);
    // an index of 10,000 entries: one short line naming five of them
    const many = {
      manifests: Array.from({ length: 10_000 }, (_, i) => ({
        ...m(`sha256:${i.toString(16).padStart(64, '0')}`),
        annotations: { 'org.opencontainers.image.ref.name': `ref-${i}` },
      })),
    };
    let msg = '';
    try {
      pickManifest(many, undefined, 'none');
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toBe('the OCI layout holds 10000 images: name one (ref-0, ref-1, ref-2, ref-3, ref-4 and 9995 more)');
    expect(() => pickManifest(many, 'r'.repeat(100_000))).toThrow(/^the OCI layout has no image named "r{200}"…$/);
  });
  it('parses a manifest and its config', () => {
    const plan = parseManifest({ schemaVersion: 2, config: m(D('c')), layers: [m(D('1')), m(D('2'))] });
    expect(plan.layers.map((l) => l.digest)).toEqual([D('1'), D('2')]);
    expect(() => parseManifest({ manifests: [] })).toThrow(/nested image indexes/);
    const cfg = parseImageConfig({
      architecture: 'amd64',
      os: 'linux',
      config: {
        Entrypoint: ['/init'],
        Cmd: ['-v'],
        Env: ['A=1'],
        WorkingDir: '/srv',
        User: '1000',
        StopSignal: 'SIGINT',
        Labels: { [SERVER_CMD_LABEL]: '[]' },
      },
      rootfs: { type: 'layers', diff_ids: [D('d')] },
    });
    expect(cfg.config).toEqual({
      cmd: ['/init', '-v'],
      entrypoint: ['/init'], // `run IMAGE ARGS` runs /init ARGS
      env: ['A=1'],
      workingDir: '/srv',
      user: '1000',
      stopSignal: 'SIGINT',
      serverCmd: [],
    });
    expect(cfg.diffIds).toEqual([D('d')]);
    expect(() => parseImageConfig({ rootfs: { diff_ids: ['nope'] } })).toThrow(/diff_ids/);
  });
  it('parses docker save manifests and refuses paths out of the archive', () => {
    expect(parseDockerManifest([{ Config: 'c.json', RepoTags: ['a:latest'], Layers: ['1/layer.tar'] }])).toEqual({
      config: 'c.json',
      layers: ['1/layer.tar'],
      tags: ['a:latest'],
    });
    expect(() => parseDockerManifest([{ Config: '../c.json', Layers: [] }])).toThrow(/escapes the archive/);
    expect(() => parseDockerManifest([{ Config: 'c', Layers: ['/etc/x'] }])).toThrow(/escapes the archive/);
    expect(() => parseDockerManifest({})).toThrow(/not a non-empty list/);
  });
  it('maps LXC metadata to image properties', () => {
    const yaml =
      'architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  description: Debian bookworm\n  os: debian\n  release: bookworm\ntemplates:\n  /etc/hostname:\n    when: [create]\n';
    expect(parseLxcMetadata(yaml)).toEqual({
      architecture: 'x86_64',
      lxc_creation_date: '1700000000',
      description: 'Debian bookworm',
      os_distro: 'debian',
      os_version: 'bookworm',
    });
  });
  it('writes deterministic OCI documents that name every layer', () => {
    const img = {
      name: 'x',
      createdAt: '2026-01-01T00:00:00.000000',
      layers: [D('1')],
      config: { cmd: ['sh'], env: [], workingDir: '/', user: '', serverCmd: [] },
    };
    const layers = [{ diffId: D('1'), blobDigest: D('2'), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', blobSize: 10 }];
    const a = ociDocuments(img, layers);
    expect(ociDocuments(img, layers).manifestDigest).toBe(a.manifestDigest);
    const manifest = JSON.parse(a.manifest.toString());
    expect(manifest.layers).toEqual([{ mediaType: layers[0].mediaType, digest: D('2'), size: 10 }]);
    const config = JSON.parse(a.config.toString());
    expect(config.rootfs.diff_ids).toEqual([D('1')]);
    expect(parseImageConfig(config).config.serverCmd).toEqual([]);
    expect(JSON.parse(a.index.toString()).manifests[0].annotations['org.opencontainers.image.ref.name']).toBe('x');
  });
});
