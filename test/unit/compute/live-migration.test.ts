import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LiveCandidate, liveRefusal, morePreDumps, PREDUMP_SMALL, pagesIn } from '../../../src/compute/migration/live.js';

const ok: LiveCandidate = {
  name: 'web',
  vmState: 'active',
  network: 'none',
  userns: 'host',
  init: 'novabox',
};

describe('liveRefusal: which servers move live, and why not in one sentence', () => {
  it('an ACTIVE server (--userns host or auto) with novabox-init moves (instance data and volumes too), with --network none or on the bridge', () => {
    expect(liveRefusal(ok)).toBeNull();
    expect(liveRefusal({ ...ok, network: 'novabox' })).toBeNull();
    expect(liveRefusal({ ...ok, userns: 'auto' })).toBeNull();
    expect(liveRefusal({ ...ok, userns: 'auto', network: 'novabox' })).toBeNull();
  });

  it.each<[string, Partial<LiveCandidate>, RegExp]>([
    ['SHUTOFF', { vmState: 'stopped' }, /it is not ACTIVE \(vm_state stopped\), and only a running process tree can be dumped/],
    ['PAUSED', { vmState: 'paused' }, /it is not ACTIVE \(vm_state paused\)/],
    [
      'systemd',
      { init: 'systemd' },
      /systemd is its pid 1, and CRIU cannot dump a systemd system \(its services' UTS namespaces of their own, from ProtectHostname=/,
    ],
    ['--network host', { network: 'host' }, /shares this host's network namespace \(--network host\)/],
  ])('%s is refused', (_what, change, why) => {
    const said = liveRefusal({ ...ok, ...change });
    expect(said).toMatch(/^server "web" cannot be migrated live: /);
    expect(said).toMatch(why);
    expect(said).toMatch(/; migrate it without --live \(its writable layer is pre-copied while it runs\)$/);
    expect(said?.split('. ').length).toBe(1);
  });
});

describe('morePreDumps: pre-dump rounds while the dirty set shrinks, at most N', () => {
  const big = 8 * PREDUMP_SMALL;
  it('always a first round when rounds are allowed, none when 0', () => {
    expect(morePreDumps([], 3)).toBe(true);
    expect(morePreDumps([], 0)).toBe(false);
  });
  it('a second round after any first that is not small; more only while each is smaller than the one before', () => {
    expect(morePreDumps([big], 3)).toBe(true);
    expect(morePreDumps([big, big / 2], 3)).toBe(true);
    expect(morePreDumps([big, big], 3)).toBe(false);
    expect(morePreDumps([big, big * 2], 3)).toBe(false);
  });
  it('never more than max rounds', () => {
    expect(morePreDumps([big * 4, big * 2, big], 3)).toBe(false);
    expect(morePreDumps([big * 4], 1)).toBe(false);
    expect(morePreDumps([big * 4, big * 2, big], 5)).toBe(true);
  });
  it('a small dirty set is left to the final dump', () => {
    expect(morePreDumps([PREDUMP_SMALL], 3)).toBe(false);
    expect(morePreDumps([big, PREDUMP_SMALL], 3)).toBe(false);
  });
});

describe('pagesIn: the memory pages a CRIU round wrote', () => {
  it('sums the pages-N.img files only (not pagemap, not other images, not the parent link)', () => {
    const d = mkdtempSync(join(tmpdir(), 'nbx-pages-'));
    try {
      mkdirSync(join(d, 'sub'));
      writeFileSync(join(d, 'pages-1.img'), Buffer.alloc(8192));
      writeFileSync(join(d, 'pages-12.img'), Buffer.alloc(4096));
      writeFileSync(join(d, 'pagemap-1.img'), Buffer.alloc(100));
      writeFileSync(join(d, 'core-1.img'), Buffer.alloc(100));
      symlinkSync('../1', join(d, 'parent'));
      expect(pagesIn(d)).toBe(12288);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
