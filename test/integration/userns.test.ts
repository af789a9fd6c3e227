/**
 * A container's own user namespace, for real (root, bin/novabox): the kernel's maps inside,
 * the host ids of what a container writes, disjoint ranges, host files bound in that stay
 * the host's, setuid binaries, exec in the server's namespace, snapshots that boot with
 * the same owners in another range and under --userns host, the delegated cgroup on a
 * pure cgroup v2 host, and a layer the kernel cannot idmap refused in one sentence.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { census } from '../helpers/census.js';
import { makeRootfs } from '../helpers/image-fixtures.js';
import { ROOT, runCli, tempRoot } from '../helpers/run-cli.js';

const isRoot = process.getuid?.() === 0;
const SIZE = 65536;

/** "0 <base> <size>" of a uid_map or gid_map line */
function mapOf(text: string): { inside: number; base: number; size: number } {
  const [inside, base, size] = text.trim().split(/\s+/).map(Number);
  return { inside, base, size };
}

const EUID_SOURCE = `#include <stdio.h>
#include <unistd.h>
int main(void) { printf("%d %d\\n", (int)getuid(), (int)geteuid()); return 0; }
`;

/** A static program printing "uid euid" (built with cc once; the guest uses the host's build). */
function euidBinary(): string {
  const dir = join(ROOT, 'test/security/build');
  const bin = join(dir, 'nbx-euid');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const src = join(dir, 'nbx-euid.c');
  writeFileSync(src, EUID_SOURCE);
  execFileSync('cc', ['-static', '-O2', '-o', `${bin}.tmp`, src], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('mv', [`${bin}.tmp`, bin]);
  return bin;
}

function cgroup2Pure(): boolean {
  return !readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.includes(' - cgroup '));
}

describe.skipIf(!isRoot)('a user namespace of its own (root, real containers)', () => {
  let root: string;
  let remove: () => void;
  let scratch: string;
  const nb = (args: string[], input?: string) => runCli(args, { root, timeoutMs: 60_000, ...(input ? { input } : {}) });

  beforeAll(async () => {
    ({ root, remove } = tempRoot('nbx-userns-'));
    scratch = mkdtempSync(join(tmpdir(), 'nbx-userns-fx-'));
    chmodSync(scratch, 0o755);
    const r = await nb(['run', '--rm', '--network', 'none', 'busybox', 'true']);
    expect(r.exitCode, r.stderr).toBe(0);
  });
  afterAll(async () => {
    for (const s of ['ua', 'ub', 'uc', 'ud', 'ue']) await nb(['server', 'delete', '--wait', s]);
    for (const i of ['ushot']) await nb(['image', 'delete', i]);
    remove();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('run and a server get their own maps; what root writes inside is the range base on the host; two servers never share ids', async () => {
    const run = await nb(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u']);
    expect(run.exitCode, run.stderr).toBe(0);
    const [uidLine, gidLine, id] = run.stdout.trim().split('\n');
    expect(mapOf(uidLine)).toMatchObject({ inside: 0, size: SIZE });
    expect(mapOf(uidLine).base).toBeGreaterThan(0);
    expect(mapOf(gidLine)).toMatchObject({ inside: 0, size: SIZE });
    expect(id).toBe('0');

    for (const s of ['ua', 'ub']) {
      const c = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', '--wait', s]);
      expect(c.exitCode, c.stderr).toBe(0);
    }
    const maps: number[] = [];
    for (const s of ['ua', 'ub']) {
      const e = await nb([
        'server',
        'exec',
        s,
        '--',
        'sh',
        '-c',
        'cat /proc/self/uid_map; touch /root/made-inside; mkdir -p /srv/u && chown 1000:1000 /srv/u',
      ]);
      expect(e.exitCode, e.stderr).toBe(0);
      const m = mapOf(e.stdout);
      maps.push(m.base);
      const show = await nb(['server', 'show', s, '-f', 'value', '-c', 'idmap']);
      expect(show.stdout.trim()).toMatch(new RegExp(`^uid 0 ${m.base} ${SIZE}, gid 0 \\d+ ${SIZE}$`));
      const id = (await nb(['server', 'show', s, '-f', 'value', '-c', 'id'])).stdout.trim();
      const upper = join(root, 'servers', id, 'upper');
      expect(statSync(join(upper, 'root/made-inside')).uid).toBe(m.base);
      expect(statSync(join(upper, 'srv/u')).uid).toBe(m.base + 1000);
      // the overlay's / is the upper dir's root: the container's root owns it
      expect(statSync(upper).uid).toBe(m.base);
    }
    expect(Math.abs(maps[0] - maps[1])).toBeGreaterThanOrEqual(SIZE);
  });

  it("lands unprivileged: a host directory bound in with -v stays host root's (nobody inside), and root inside cannot write it", async () => {
    const vol = join(scratch, 'vol');
    mkdirSync(vol, { mode: 0o755 });
    writeFileSync(join(vol, 'host-file'), 'host\n', { mode: 0o644 });
    const r = await nb([
      'run',
      '--rm',
      '--network',
      'none',
      '-v',
      `${vol}:/v`,
      'busybox',
      'sh',
      '-c',
      'stat -c "%u %g" /v/host-file; cat /v/host-file; echo x >> /v/host-file && echo wrote; touch /v/new && echo made; true',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('65534 65534\nhost\n');
    expect(r.stderr).toMatch(/Permission denied/);
    expect(readFileSync(join(vol, 'host-file'), 'utf8')).toBe('host\n');
    expect(existsSync(join(vol, 'new'))).toBe(false);
    // the same with --userns host: root inside is host root there
    const h = await nb([
      'run',
      '--rm',
      '--network',
      'none',
      '--userns',
      'host',
      '-v',
      `${vol}:/v`,
      'busybox',
      'sh',
      '-c',
      'stat -c "%u" /v/host-file',
    ]);
    expect(h.stdout).toBe('0\n');
  });

  it('setuid binaries of an image work inside (no no_new_privs in its own namespace); under --userns host they do not', async () => {
    const rootfs = join(scratch, 'suid-rootfs');
    makeRootfs(rootfs);
    copyFileSync(euidBinary(), join(rootfs, 'bin/euid'));
    chownSync(join(rootfs, 'bin/euid'), 0, 0);
    chmodSync(join(rootfs, 'bin/euid'), 0o4755);
    const own = await nb(['run', '--rm', '--network', 'none', '-u', '1000', '--rootfs', rootfs, '/bin/euid']);
    expect(own.exitCode, own.stderr).toBe(0);
    expect(own.stdout).toBe('1000 0\n');
    const host = await nb(['run', '--rm', '--network', 'none', '--userns', 'host', '-u', '1000', '--rootfs', rootfs, '/bin/euid']);
    expect(host.exitCode, host.stderr).toBe(0);
    expect(host.stdout).toBe('1000 1000\n');
  });

  it('server exec joins the namespace: -u, the maps, the same ids as the init', async () => {
    const e = await nb(['server', 'exec', '-u', '1000', 'ua', '--', 'sh', '-c', 'id -u; cat /proc/self/uid_map; cat /proc/1/uid_map']);
    expect(e.exitCode, e.stderr).toBe(0);
    const [id, mine, init] = e.stdout.trim().split('\n');
    expect(id).toBe('1000');
    expect(mapOf(mine)).toEqual(mapOf(init));
  });

  it('a snapshot holds container ids: it boots with the same owners and modes in another range and under --userns host', async () => {
    const prep = await nb([
      'server',
      'exec',
      'ua',
      '--',
      'sh',
      '-c',
      'mkdir -p /srv/t/d && echo a > /srv/t/a && echo b > /srv/t/d/b && chown 1000:1001 /srv/t/a && chown 5:5 /srv/t/d && chmod 4750 /srv/t/a && chmod 2711 /srv/t/d && ln -s a /srv/t/l && chown -h 7:8 /srv/t/l',
    ]);
    expect(prep.exitCode, prep.stderr).toBe(0);
    const snap = await nb(['server', 'image', 'create', '--name', 'ushot', '--wait', 'ua']);
    expect(snap.exitCode, snap.stderr).toBe(0);
    const list =
      'find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -print | sort | while read f; do stat -c "%n %u %g %a %F" "$f"; done';
    const trees: string[] = [];
    for (const [s, userns] of [
      ['ua', 'auto'],
      ['uc', 'auto'],
      ['ud', 'host'],
    ] as const) {
      if (s !== 'ua') {
        const c = await nb([
          'server',
          'create',
          '--image',
          'ushot',
          '--flavor',
          'c1.nano',
          '--network',
          'none',
          '--userns',
          userns,
          '--wait',
          s,
        ]);
        expect(c.exitCode, c.stderr).toBe(0);
      }
      const t = await nb(['server', 'exec', s, '--', 'sh', '-c', list]);
      expect(t.exitCode, t.stderr).toBe(0);
      // mount points the runtime makes (/etc files with the bridge, /, the init's) are left out
      trees.push(
        t.stdout
          .split('\n')
          .filter((l) => l && !/^\/(etc\/(hosts|hostname|resolv\.conf)|root\/made-inside) /.test(l))
          .join('\n'),
      );
    }
    expect(trees[0]).toContain('/srv/t/a 1000 1001 4750 regular file');
    expect(trees[0]).toContain('/srv/t/d 5 5 2711 directory');
    expect(trees[0]).toContain('/srv/t/l 7 8 777 symbolic link');
    expect(trees[1]).toBe(trees[0]);
    expect(trees[2]).toBe(trees[0]);
    const uc = mapOf((await nb(['server', 'exec', 'uc', '--', 'cat', '/proc/self/uid_map'])).stdout);
    const ua = mapOf((await nb(['server', 'exec', 'ua', '--', 'cat', '/proc/self/uid_map'])).stdout);
    expect(uc.base).not.toBe(ua.base);
    expect((await nb(['server', 'exec', 'ud', '--', 'cat', '/proc/self/uid_map'])).stdout).toMatch(/^\s*0\s+0\s+4294967295/);
  });

  it("pure cgroup v2: the container's root owns its own cgroup (delegated: it may make a subtree)", async (ctx) => {
    ctx.skip(!cgroup2Pure(), 'a host with cgroup v1 hierarchies: delegation is for pure cgroup v2 (the guest runs it)');
    const c = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', '--wait', 'ue']);
    expect(c.exitCode, c.stderr).toBe(0);
    const e = await nb([
      'server',
      'exec',
      'ue',
      '--',
      'sh',
      '-c',
      'stat -c "%u %g" /sys/fs/cgroup /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/cgroup.subtree_control',
    ]);
    expect(e.exitCode, e.stderr).toBe(0);
    expect(e.stdout).toBe('0 0\n0 0\n0 0\n');
    // its limits stay the host's
    expect((await nb(['server', 'exec', 'ue', '--', 'stat', '-c', '%u', '/sys/fs/cgroup/memory.max'])).stdout).toBe('65534\n');
  });

  it('a layer on a filesystem that cannot be idmapped is refused in one sentence naming the feature and --userns host; nothing is left', async () => {
    const ram = join(scratch, 'ramfs');
    mkdirSync(ram);
    execFileSync('mount', ['-t', 'ramfs', 'ramfs', ram]);
    try {
      // busybox alone: ramfs has no xattrs for makeRootfs's fixtures
      mkdirSync(join(ram, 'r/bin'), { recursive: true });
      copyFileSync('/bin/busybox', join(ram, 'r/bin/busybox'));
      chmodSync(join(ram, 'r/bin/busybox'), 0o755);
      execFileSync('ln', ['-s', 'busybox', join(ram, 'r/bin/sh')]);
      const before = census(root);
      const r = await nb(['run', '--rm', '--network', 'none', '--rootfs', join(ram, 'r'), '/bin/sh', '-c', 'true']);
      expect(r.exitCode).toBe(125);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/cannot idmap a mount/);
      expect(r.stderr).toMatch(/--userns host/);
      expect(census(root)).toEqual(before);
      const host = await nb([
        'run',
        '--rm',
        '--network',
        'none',
        '--userns',
        'host',
        '--rootfs',
        join(ram, 'r'),
        '/bin/sh',
        '-c',
        'echo ok',
      ]);
      expect(host.stdout).toBe('ok\n');
    } finally {
      spawnSync('umount', [ram]);
    }
  });
});
