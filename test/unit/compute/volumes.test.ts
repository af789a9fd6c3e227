import { describe, expect, it } from 'vitest';
import { checkMountPath, checkVolumeName, parseVolumeMount } from '../../../src/compute/volumes.js';
import { parseVolumeSize, shiftId, sizeText } from '../../../src/runtime/volumes.js';

describe('parseVolumeMount', () => {
  it.each([
    ['data:/srv/data', { volume: 'data', path: '/srv/data', readOnly: false }],
    ['data:/srv/data:rw', { volume: 'data', path: '/srv/data', readOnly: false }],
    ['data:/srv/data:ro', { volume: 'data', path: '/srv/data', readOnly: true }],
    ['d:/a//b/', { volume: 'd', path: '/a/b', readOnly: false }],
  ])('%s', (spec, want) => {
    expect(parseVolumeMount(spec)).toEqual(want);
  });

  it.each([
    ['data', 'invalid volume "data": expected NAME:/path[:ro]'],
    [':/x', 'invalid volume ":/x": expected NAME:/path[:ro]'],
    ['data:/x:rx', 'invalid volume "data:/x:rx": expected NAME:/path[:ro]'],
    ['data:/x:ro:z', 'invalid volume "data:/x:ro:z": expected NAME:/path[:ro]'],
    ['data:x', 'invalid volume "data:x": the path in the server must be absolute'],
    ['./rel:/x', 'invalid volume "./rel:/x": "./rel" is neither an absolute host path nor a volume name'],
    ['data:/a/../etc', 'invalid volume "data:/a/../etc": "." or ".." in the path in the server'],
    ['data:/./a', 'invalid volume "data:/./a": "." or ".." in the path in the server'],
    ['data:/', `invalid volume "data:/": a volume cannot be mounted on the server's root`],
    ['data:///', `invalid volume "data:///": a volume cannot be mounted on the server's root`],
  ])('refuses %j', (spec, message) => {
    expect(() => parseVolumeMount(spec)).toThrow(message);
  });

  it('checkMountPath for server add volume', () => {
    expect(checkMountPath('/var/lib/x/')).toBe('/var/lib/x');
    expect(() => checkMountPath('var')).toThrow('invalid mount path "var": the path in the server must be absolute');
    expect(() => checkMountPath('/a\nb')).toThrow(/control characters/);
  });
});

describe('volume names', () => {
  it.each(['data', 'a', 'web-1_logs.v2', 'A'.repeat(63)])('accepts %s', (n) => expect(() => checkVolumeName(n)).not.toThrow());
  it.each(['', '../x', '.hidden', '-x', 'a/b', 'a b', 'A'.repeat(64), 'x:y'])('refuses %j', (n) => {
    expect(() => checkVolumeName(n)).toThrow(/^invalid volume name/);
  });
});

describe('shiftId', () => {
  it.each([
    [100000, 100000, 300000, 300000],
    [165535, 100000, 300000, 365535],
    [165536, 100000, 300000, 165536], // past the range: kept
    [99999, 100000, 300000, 99999],
    [1000, 0, 300000, 301000],
    [301000, 300000, 0, 1000],
  ])('%i from %i to %i: %i', (id, from, to, want) => {
    expect(shiftId(id, from, to, 65536)).toBe(want);
  });
});

describe('parseVolumeSize / sizeText', () => {
  it.each([
    ['10', 10 * 2 ** 30],
    ['1.5', 1.5 * 2 ** 30],
    ['512M', 512 * 2 ** 20],
    ['512MiB', 512 * 2 ** 20],
    ['2gb', 2 * 2 ** 30],
    ['1T', 2 ** 40],
    ['16M', 16 * 2 ** 20],
    ['20000000B', 20_000_000 - (20_000_000 % 4096)],
  ])('%j is %d bytes (a multiple of 4 KiB)', (text, bytes) => expect(parseVolumeSize(text)).toBe(bytes));
  it.each([
    ['0', 'a sized volume is at least 16MiB'],
    ['15M', 'a sized volume is at least 16MiB'],
    ['2P', 'at most 1PiB'],
    ['', 'expected a number of GiB or a size with a unit (512M, 2G, 1T)'],
    ['1X', 'expected a number of GiB or a size with a unit (512M, 2G, 1T)'],
    ['-1', 'expected a number of GiB or a size with a unit (512M, 2G, 1T)'],
  ])('%j is refused: %s', (text, why) =>
    expect(() => parseVolumeSize(text)).toThrow(`invalid volume size ${JSON.stringify(text)}: ${why}`),
  );
  it('sizeText', () => {
    expect([sizeText(32 << 20), sizeText(1.5 * 2 ** 30), sizeText(512), sizeText(2 ** 40)]).toEqual(['32MiB', '1.5GiB', '512B', '1TiB']);
  });
});
