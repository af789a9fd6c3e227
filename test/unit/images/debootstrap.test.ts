import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_MIRROR,
  DEFAULT_PACKAGES,
  buildKey,
  checkDebianBuild,
  debootstrapArgs,
  failureOf,
  findDebootstrap,
  osVersion,
  statusOf,
} from '../../../src/images/debootstrap.js';

const SCRIPTS = ['bookworm', 'bullseye', 'trixie', 'sid', 'stable', 'testing'];
const work = mkdtempSync(join(tmpdir(), 'nb-deboot-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('checkDebianBuild', () => {
  it('fills in the defaults: minbase, the system container packages, Debian’s archive, debian-<release>', () => {
    const b = checkDebianBuild({ release: 'bookworm' }, SCRIPTS);
    expect(b.variant).toBe('minbase');
    expect(b.packages).toEqual([...DEFAULT_PACKAGES].sort());
    expect(b.packages).toContain('systemd-sysv');
    expect(b.packages).toContain('cloud-init');
    expect(b.packages).toContain('openssh-server');
    expect(b.mirror).toBe(DEFAULT_MIRROR);
    expect(b.name).toBe('debian-bookworm');
    expect(b.arch).toMatch(/^[a-z0-9]+$/);
  });
  it('adds --include to the defaults, sorted, once each, from commas and repeats', () => {
    const b = checkDebianBuild(
      { release: 'trixie', include: ['vim,curl', ' curl ', 'dbus,'], name: 'x', mirror: 'http://127.0.0.1:3142/debian/' },
      SCRIPTS,
    );
    expect(b.packages).toEqual([...new Set([...DEFAULT_PACKAGES, 'vim', 'curl'])].sort());
    expect(b.mirror).toBe('http://127.0.0.1:3142/debian');
    expect(b.name).toBe('x');
  });
  it('refuses bad input with one sentence', () => {
    expect(() => checkDebianBuild({ release: 'bookwrom' }, SCRIPTS)).toThrow(
      /^unknown Debian release "bookwrom": debootstrap knows .*bookworm/,
    );
    expect(() => checkDebianBuild({ release: '../etc' }, SCRIPTS)).toThrow(/invalid Debian release/);
    expect(() => checkDebianBuild({}, SCRIPTS)).toThrow(/invalid Debian release ""/);
    expect(() => checkDebianBuild({ release: 'bookworm', variant: 'fakechroot' }, SCRIPTS)).toThrow(/invalid --variant "fakechroot"/);
    expect(() => checkDebianBuild({ release: 'bookworm', include: ['vim;rm'] }, SCRIPTS)).toThrow(/invalid package name "vim;rm"/);
    expect(() => checkDebianBuild({ release: 'bookworm', include: ['--foo'] }, SCRIPTS)).toThrow(/invalid package name/);
    expect(() => checkDebianBuild({ release: 'bookworm', mirror: 'ftp://x/debian' }, SCRIPTS)).toThrow(/invalid --mirror/);
    expect(() => checkDebianBuild({ release: 'bookworm', mirror: 'not a url' }, SCRIPTS)).toThrow(/invalid --mirror/);
    expect(() => checkDebianBuild({ release: 'bookworm', mirror: 'http://' }, SCRIPTS)).toThrow(/invalid --mirror/);
  });
  it('accepts a release without the scripts list (debootstrap then says it)', () => {
    expect(checkDebianBuild({ release: 'forky' }).release).toBe('forky');
  });
});

describe('buildKey', () => {
  const base = checkDebianBuild({ release: 'bookworm' }, SCRIPTS);
  it('is the same for the same set in any order, and for another image name', () => {
    const again = { ...base, packages: [...base.packages].reverse(), name: 'other' };
    expect(buildKey(again)).toBe(buildKey(base));
    expect(buildKey(base)).toMatch(/^bookworm-minbase-[a-z0-9]+-[0-9a-f]{16}$/);
  });
  it('changes with the release, variant, packages, mirror and arch', () => {
    const k = buildKey(base);
    expect(buildKey({ ...base, release: 'trixie' })).not.toBe(k);
    expect(buildKey({ ...base, variant: 'buildd' })).not.toBe(k);
    expect(buildKey({ ...base, packages: [...base.packages, 'vim'] })).not.toBe(k);
    expect(buildKey({ ...base, mirror: 'http://127.0.0.1/debian' })).not.toBe(k);
    expect(buildKey({ ...base, arch: 'arm64' })).not.toBe(k);
  });
});

describe('debootstrap', () => {
  it('command line', () => {
    const b = checkDebianBuild({ release: 'bookworm', include: ['vim'] }, SCRIPTS);
    const a = debootstrapArgs(b, '/t/rootfs');
    expect(a[0]).toBe('--variant=minbase');
    expect(a).toContain(`--include=${b.packages.join(',')}`);
    expect(a.slice(-3)).toEqual(['bookworm', '/t/rootfs', DEFAULT_MIRROR]);
    expect(debootstrapArgs({ ...b, variant: 'default' }, '/t').some((x) => x.startsWith('--variant'))).toBe(false);
  });
  it('os_version from /etc/debian_version, else the table', () => {
    expect(osVersion('bookworm', '12.12\n')).toBe('12');
    expect(osVersion('trixie', 'trixie/sid\n')).toBe('13');
    expect(osVersion('sid', 'forky/sid')).toBe('unstable');
    expect(osVersion('bookworm', undefined)).toBe('12');
    expect(osVersion('mystery', 'mystery/sid')).toBe('mystery/sid');
  });
  it('status and failure lines', () => {
    expect(statusOf('I: Retrieving apt 2.6.1')).toBe('Retrieving apt 2.6.1');
    expect(statusOf('I: Configuring systemd...')).toBe('Configuring systemd');
    expect(statusOf('dpkg: warning')).toBeUndefined();
    expect(failureOf("I: x\nE: Couldn't find these debs: nope\n", 1, null)).toBe("debootstrap failed: Couldn't find these debs: nope");
    expect(failureOf('W: Failure while configuring base packages.\n', 1, null)).toBe(
      'debootstrap failed: Failure while configuring base packages.',
    );
    expect(failureOf('', null, 'SIGKILL')).toBe('debootstrap failed: killed by SIGKILL');
  });
  it('finds the program, or says to install it', () => {
    const fake = join(work, 'debootstrap');
    writeFileSync(fake, '#!/bin/sh\n');
    chmodSync(fake, 0o755);
    expect(findDebootstrap({ NOVABOX_DEBOOTSTRAP: fake })).toBe(fake);
    mkdirSync(join(work, 'bin'));
    expect(() => findDebootstrap({ NOVABOX_DEBOOTSTRAP: join(work, 'bin/none') })).toThrow(
      /^image build needs debootstrap, which is not installed \(apt-get install debootstrap\)$/,
    );
  });
});
