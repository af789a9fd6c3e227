/**
 * The escape corpus, part 2: the classic escapes tried from inside a server (`server
 * exec`) and a `run` container, each with the exact failure it must meet — cgroup v1
 * release_agent, core_pattern, sysrq-trigger, uevent_helper, mknod of the host's disk,
 * mount, user namespaces (unshare -U, unshare -Ur, clone), keyctl, bpf,
 * open_by_handle_at (shocker), a chroot climb — plus what the container's programs
 * inherit (no fd beyond stdio) and pid 1's own binary (no host binary the container
 * could reopen, none it can write). The attacker is test/security/escape.c. They run in
 * the default mode, each container in a user namespace of its own: whatever got through
 * would land as an unprivileged id of its range on the host.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { attackerDir, breaches, hostMarker, installAttacker, parseProbe } from '../helpers/escape.js';
import { runCli } from '../helpers/run-cli.js';
import { useRunRoot } from '../helpers/run-root.js';

const isRoot = process.getuid?.() === 0;

/** The host's root disk, for mknod (its major:minor as the kernel numbers it). */
function hostDisk(): [number, number] {
  const dev = statSync('/').dev;
  return [(dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00)];
}

/** errno names each attempt must meet (the attacker prints "name errno"). */
function expected(): Record<string, string | string[]> {
  // read-only in the container where the host has it, and host root's: the container's own
  // namespace root meets the read-only mount (EROFS) or, first on some kernels (Linux 6.1),
  // the permission check (EACCES); either way nothing is written
  const ro = (p: string) => (existsSync(p) ? ['EACCES', 'EROFS'] : 'ENOENT');
  return {
    // a v1 hierarchy's root is not visible (the container sees its own cgroup); mounting one is refused
    'release_agent:/sys/fs/cgroup': 'ENOENT',
    'mount-cgroup-v1': 'EPERM',
    'mount-cgroup-v1-memory': 'EPERM',
    // read-only in the container, and host root's: its own namespace's root is refused
    // at the permission check (EACCES) before the read-only mount says EROFS
    core_pattern: ['EACCES', 'EROFS'],
    'sysrq-trigger': ro('/proc/sysrq-trigger'),
    uevent_helper: ro('/sys/kernel/uevent_helper'),
    modprobe: ro('/proc/sys/kernel/modprobe'),
    'mknod-blk': 'EPERM',
    'mknod-mem': 'EPERM',
    'mount-tmpfs': 'EPERM',
    'mount-bind': 'EPERM',
    'mount-proc': 'EPERM',
    'remount-proc-sys': 'EPERM',
    'umount-proc-sys': 'EPERM',
    'unshare-user': 'EPERM',
    'unshare-user-mnt': 'EPERM',
    'unshare-mnt': 'EPERM',
    'unshare-cgroup': 'EPERM',
    'clone-user': 'EPERM',
    keyctl: 'EPERM',
    add_key: 'EPERM',
    'bpf-map-create': 'EPERM',
    'bpf-prog-load': 'EPERM',
    name_to_handle_at: 'EPERM',
    open_by_handle_at: 'EPERM',
    // the climb out of a chroot ends at the container's own root, where the marker is not
    'chroot-climb': 'ENOENT',
  };
}

describe.skipIf(!isRoot)('escape corpus: classic escapes from inside (root, real containers)', () => {
  let root: string;
  useRunRoot((r) => (root = r));
  const nb = (args: string[]) => runCli(args, { root, timeoutMs: 60_000 });
  // the attacker: bound read-only into `run` containers, copied into servers' writable layers
  let dir = '';
  const bin = (how: 'server' | 'run') => (how === 'server' ? '/bin/nbx-escape' : '/x/nbx-escape');
  const attackerForRun = () => {
    if (!dir) dir = attackerDir();
  };
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  // One busybox server with the attacker for the file's server tests, made before them
  // (in the QEMU guest a create costs seconds): the census around each test includes
  // it, and its delete after the last must leave what was there before it.
  let beforeServer: Census;
  beforeAll(async () => {
    beforeServer = census(root);
    const c = await nb([
      'server',
      'create',
      '--image',
      'busybox',
      '--flavor',
      'm1.tiny',
      '--network',
      'none',
      '--wait',
      'in',
      '-f',
      'value',
      '-c',
      'status',
    ]);
    expect(c.stderr).toBe('');
    expect(c.stdout).toBe('ACTIVE\n');
    await installAttacker(root, 'in');
  }, 120_000);
  afterAll(async () => {
    expect((await nb(['server', 'delete', '--wait', 'in'])).exitCode).toBe(0);
    expect(census(root)).toEqual(beforeServer);
  }, 120_000);
  const withServer = (fn: (name: string) => Promise<void>) => fn('in');
  const inside = (how: 'server' | 'run', cmd: string[]) =>
    how === 'server'
      ? nb(['server', 'exec', 'in', '--', ...cmd])
      : nb(['run', '--rm', '--network', 'none', '-v', `${dir}:/x:ro`, 'busybox', ...cmd]);
  const within = async (how: 'server' | 'run', go: () => Promise<void>) => {
    if (how === 'server') await withServer(go);
    else {
      attackerForRun();
      await go();
    }
  };

  for (const how of ['server', 'run'] as const) {
    it(`${how}: release_agent, core_pattern, sysrq, mknod, mount, user namespaces, keyctl, bpf, open_by_handle_at and a chroot climb all fail with the expected errno`, async () => {
      const go = async () => {
        const marker = hostMarker();
        const corePattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
        try {
          const [maj, min] = hostDisk();
          const r = await inside(how, [bin(how), 'syscalls', marker.name, String(maj), String(min)]);
          expect(r.stderr).toBe('');
          expect(r.exitCode).toBe(0);
          const got = Object.fromEntries(
            r.stdout
              .trim()
              .split('\n')
              .map((l) => l.split(' ') as [string, string]),
          );
          // pid 1's binary: checked below, separately
          delete got['init-binary-write:/proc/1/exe'];
          delete got['init-binary-write:/dev/.novabox-init'];
          // an errno, or one of several where kernels differ in which check comes first
          const want = expected();
          for (const [k, v] of Object.entries(want)) if (Array.isArray(v) && v.includes(got[k])) want[k] = got[k];
          expect(got).toEqual(want);
          expect(readFileSync('/proc/sys/kernel/core_pattern', 'utf8')).toBe(corePattern);
          expect(breaches([], marker)).toEqual([]);
        } finally {
          marker.remove();
        }
      };
      await within(how, go);
    });

    it(`${how}: unshare -U and unshare -Ur (busybox) are refused`, async () => {
      const go = async () => {
        for (const flags of ['-U', '-Ur', '-Urm']) {
          const r = await inside(how, ['unshare', flags, 'true']);
          expect(r.exitCode, flags).toBe(1);
          expect(r.stderr).toBe(`unshare: unshare(${flags === '-Urm' ? '0x10020000' : '0x10000000'}): Operation not permitted\n`);
        }
      };
      await within(how, go);
    });

    it(`${how}: the container's program inherits no fd beyond stdio`, async () => {
      const go = async () => {
        const r = await inside(how, [bin(how), 'fds']);
        expect(r.stderr).toBe('');
        expect(r.stdout).toBe('FDS 0\n');
      };
      await within(how, go);
    });
  }

  it('server: pid 1 runs no host binary the server could reopen (/proc/1/exe), and its binary cannot be written', async () => {
    await withServer(async (name) => {
      const marker = hostMarker();
      try {
        const r = await nb(['server', 'exec', name, '--', '/bin/nbx-escape', 'probe', marker.name, '0']);
        expect(r.exitCode, r.stderr).toBe(0);
        const found = parseProbe(r.stdout).findings;
        // an executable opened for writing or a host binary seen, for pid 1 too
        expect(breaches(found, marker, { pid1: true })).toEqual([]);
        const w = await nb(['server', 'exec', name, '--', '/bin/nbx-escape', 'syscalls', marker.name, '0', '0']);
        const line = (k: string) =>
          w.stdout
            .split('\n')
            .find((l) => l.startsWith(`${k} `))
            ?.split(' ')[1];
        // a host binary: busy (ETXTBSY) or on a read-only mount (EROFS); a sealed memfd: EPERM on write
        expect(['ETXTBSY', 'EROFS', 'EPERM', 'EACCES']).toContain(line('init-binary-write:/proc/1/exe'));
        // the host's copy it runs from (a file CRIU can restore): on a read-only mount
        // (EROFS), and under --userns auto not the server root's to write either (EACCES)
        expect(['ETXTBSY', 'EROFS', 'EACCES']).toContain(line('init-binary-write:/dev/.novabox-init'));
        const mi = await nb(['server', 'exec', name, '--', 'cat', '/proc/1/mountinfo']);
        const at = mi.stdout.split('\n').find((l) => l.split(' ')[4] === '/dev/.novabox-init');
        expect(at?.split(' ')[5].split(',')).toContain('ro');
      } finally {
        marker.remove();
      }
    });
  });

  it('run: pid 1 and the processes of the container expose no host fd, cwd, root or binary', async () => {
    attackerForRun();
    const marker = hostMarker();
    try {
      const r = await nb([
        'run',
        '--rm',
        '--network',
        'none',
        '-v',
        `${dir}:/x:ro`,
        'busybox',
        '/bin/sh',
        '-c',
        `/x/nbx-escape probe ${marker.name} 0`,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      const probe = parseProbe(r.stdout);
      expect(probe.loops).toBe(1);
      expect(breaches(probe.findings, marker, { pid1: true })).toEqual([]);
    } finally {
      marker.remove();
    }
  });
});
