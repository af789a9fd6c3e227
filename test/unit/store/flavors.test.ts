import { describe, expect, it } from 'vitest';
import type { NewFlavor } from '../../../src/store/flavors.js';
import { useTempDirs } from './temp-store.js';

const t = useTempDirs();
const small: NewFlavor = { name: 'x1.small', vcpus: 1, ramMiB: 256, diskGiB: 2 };

describe('seeded flavors', () => {
  it('has Nova defaults scaled for containers, ordered by id', () => {
    const s = t.open();
    expect(s.flavors.list().map((f) => [f.id, f.name, f.vcpus, f.ramMiB, f.diskGiB])).toEqual([
      ['1', 'm1.tiny', 1, 512, 1],
      ['2', 'm1.small', 1, 2048, 20],
      ['3', 'm1.medium', 2, 4096, 40],
      ['4', 'm1.large', 4, 8192, 80],
      ['5', 'm1.xlarge', 8, 16384, 160],
      ['6', 'c1.nano', 1, 64, 1],
    ]);
    expect(s.flavors.get('1')).toMatchObject({
      swapMiB: 0,
      ephemeralGiB: 0,
      rxtxFactor: 1,
      isPublic: true,
      disabled: false,
      extraSpecs: {},
    });
    expect(s.flavors.get('1').createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/);
  });
});

describe('FlavorRepo', () => {
  it('creates with defaults and a UUID id, gets by id or name', () => {
    const s = t.open();
    const f = s.flavors.create(small);
    expect(f.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(f).toMatchObject({ ...small, swapMiB: 0, ephemeralGiB: 0, rxtxFactor: 1, isPublic: true, disabled: false });
    expect(s.flavors.get(f.id)).toEqual(f);
    expect(s.flavors.get('x1.small')).toEqual(f);
  });

  it('prefers the id when a name equals another flavor id', () => {
    const s = t.open();
    s.flavors.create({ ...small, id: '42', name: '1' });
    expect(s.flavors.get('1').name).toBe('m1.tiny');
    expect(s.flavors.get('42').name).toBe('1');
  });

  it('stores every field', () => {
    const s = t.open();
    const f = s.flavors.create({
      ...small,
      id: 'big',
      swapMiB: 512,
      ephemeralGiB: 3,
      rxtxFactor: 2.5,
      isPublic: false,
      disabled: true,
      extraSpecs: { 'quota:cpu_shares': '512' },
    });
    expect(s.flavors.get('big')).toEqual(f);
    expect(f).toMatchObject({ swapMiB: 512, ephemeralGiB: 3, rxtxFactor: 2.5, isPublic: false, disabled: true });
  });

  it('says which flavor is missing', () => {
    const s = t.open();
    expect(() => s.flavors.get('nope')).toThrow('flavor "nope" not found');
    expect(() => s.flavors.get('nope')).toThrow(expect.objectContaining({ code: 'not-found' }));
    expect(() => s.flavors.delete('nope')).toThrow(expect.objectContaining({ code: 'not-found' }));
  });

  it.each([
    ['empty name', { name: '' }, /name: expected 1 to 255/],
    ['long name', { name: 'a'.repeat(256) }, /name: expected 1 to 255/],
    ['control char', { name: 'a\tb' }, /unprintable/],
    ['leading space', { name: ' a' }, /white space/],
    ['0 vcpus', { vcpus: 0 }, /vcpus 0: expected a whole number >= 1/],
    ['fractional vcpus', { vcpus: 1.5 }, /vcpus 1.5/],
    ['0 ram', { ramMiB: 0 }, /ram 0: expected a whole number >= 1/],
    ['negative disk', { diskGiB: -1 }, /disk -1: expected a whole number >= 0/],
    ['string ram', { ramMiB: '512' as unknown as number }, /ram 512/],
    ['negative swap', { swapMiB: -1 }, /swap -1/],
    ['zero rxtx', { rxtxFactor: 0 }, /rxtx_factor 0/],
    ['empty id', { id: '' }, /id: expected 1 to 255/],
    ['bad spec key', { extraSpecs: { 'a/b': 'x' } }, /extra spec key "a\/b"/],
  ])('refuses %s', (_what, patch, message) => {
    const s = t.open();
    const err = (() => {
      try {
        s.flavors.create({ ...small, ...patch });
      } catch (e) {
        return e as Error & { code: string };
      }
      throw new Error('no error');
    })();
    expect(err.code).toBe('bad-request');
    expect(err.message).toMatch(message);
    expect(s.flavors.list({ includePrivate: true })).toHaveLength(6);
  });

  it('accepts disk 0', () => {
    expect(t.open().flavors.create({ ...small, diskGiB: 0 }).diskGiB).toBe(0);
  });

  it('refuses a duplicate name or id with a Conflict', () => {
    const s = t.open();
    expect(() => s.flavors.create({ ...small, name: 'm1.tiny' })).toThrow('flavor with name "m1.tiny" already exists');
    expect(() => s.flavors.create({ ...small, id: '1' })).toThrow('flavor with id "1" already exists');
    expect(() => s.flavors.create({ ...small, id: '1' })).toThrow(expect.objectContaining({ code: 'conflict' }));
  });

  it('deletes, and access rows go with the flavor', () => {
    const s = t.open();
    s.flavors.create({ ...small, id: 'p', isPublic: false });
    s.flavors.addAccess('p', 'proj');
    s.flavors.delete('p');
    expect(() => s.flavors.get('p')).toThrow(/not found/);
    expect(s.db.prepare('SELECT count(*) AS n FROM flavor_access').get()).toEqual({ n: 0 });
  });

  it('lists public flavors, private ones by access or for admins, and filters by ram and disk', () => {
    const s = t.open();
    s.flavors.create({ ...small, id: 'p1', name: 'private1', isPublic: false });
    s.flavors.create({ ...small, id: 'p2', name: 'private2', isPublic: false });
    s.flavors.addAccess('p1', 'proj-a');
    const ids = (o?: Parameters<typeof s.flavors.list>[0]) => s.flavors.list(o).map((f) => f.id);
    expect(ids()).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(ids({ projectId: 'proj-a' })).toEqual(['1', '2', '3', '4', '5', '6', 'p1']);
    expect(ids({ projectId: 'proj-b' })).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(ids({ includePrivate: true })).toEqual(['1', '2', '3', '4', '5', '6', 'p1', 'p2']);
    expect(ids({ minRamMiB: 4096 })).toEqual(['3', '4', '5']);
    expect(ids({ minDiskGiB: 40, minRamMiB: 8192 })).toEqual(['4', '5']);
    expect(() => s.flavors.get('p1', { projectId: 'proj-b' })).toThrow('flavor "p1" not found');
    expect(s.flavors.get('p1', { projectId: 'proj-a' }).name).toBe('private1');
    expect(s.flavors.get('private2').id).toBe('p2');
  });

  it('merges, reads and unsets extra specs', () => {
    const s = t.open();
    expect(s.flavors.setExtraSpecs('1', { a: '1', b: '2' })).toEqual({ a: '1', b: '2' });
    expect(s.flavors.setExtraSpecs('1', { b: '3', 'hw:cpu_policy': 'x' })).toEqual({ a: '1', b: '3', 'hw:cpu_policy': 'x' });
    s.flavors.unsetExtraSpec('1', 'a');
    expect(s.flavors.get('1').extraSpecs).toEqual({ b: '3', 'hw:cpu_policy': 'x' });
    expect(() => s.flavors.unsetExtraSpec('1', 'a')).toThrow('flavor "1" has no extra spec "a"');
    expect(() => s.flavors.setExtraSpecs('nope', { a: '1' })).toThrow(/not found/);
    expect(() => s.flavors.setExtraSpecs('1', { a: 'x'.repeat(256) })).toThrow(/at most 255/);
  });

  it('grants and revokes access to private flavors', () => {
    const s = t.open();
    s.flavors.create({ ...small, id: 'p', isPublic: false });
    expect(s.flavors.listAccess('p')).toEqual([]);
    expect(s.flavors.addAccess('p', 'b')).toEqual([{ flavorId: 'p', projectId: 'b' }]);
    expect(s.flavors.addAccess('p', 'a')).toEqual([
      { flavorId: 'p', projectId: 'a' },
      { flavorId: 'p', projectId: 'b' },
    ]);
    expect(() => s.flavors.addAccess('p', 'a')).toThrow(expect.objectContaining({ code: 'conflict' }));
    expect(s.flavors.removeAccess('p', 'a')).toEqual([{ flavorId: 'p', projectId: 'b' }]);
    expect(() => s.flavors.removeAccess('p', 'a')).toThrow(expect.objectContaining({ code: 'not-found' }));
    expect(() => s.flavors.listAccess('1')).toThrow(expect.objectContaining({ code: 'not-found' }));
    expect(() => s.flavors.addAccess('1', 'a')).toThrow(expect.objectContaining({ code: 'conflict' }));
    expect(() => s.flavors.addAccess('nope', 'a')).toThrow(expect.objectContaining({ code: 'not-found' }));
  });
});
