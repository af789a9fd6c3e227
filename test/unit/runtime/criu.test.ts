import { describe, expect, it } from 'vitest';
import {
  criuCheckReason,
  criuDumpArgs,
  criuLogReason,
  criuEnv,
  criuRestoreArgs,
  inheritedStdio,
  lockTables,
  planRestore,
  volumeKey,
} from '../../../src/runtime/criu.js';
import { encodePlan } from '../../../src/sys/ops.js';

describe('criuCheckReason: why `criu check` fails, in its own words', () => {
  it('passes on "Looks good." with status 0', () => {
    expect(criuCheckReason('Looks good.\n', 0)).toBeNull();
    expect(criuCheckReason('Warn  (criu/kerndat.c:1103): CRIU was built without libnftables support\nLooks good.\n', 0)).toBeNull();
  });

  it("quotes the first error without criu's source location (Debian 12's CRIU 3.17.1 on a 6.18 kernel)", () => {
    const out = [
      'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds',
      'Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable',
      'Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed when initializing kerndat.',
      'Error (criu/crtools.c:260): Could not initialize kernel features detection.',
    ].join('\n');
    expect(criuCheckReason(out, 1)).toBe('vdso: Unexpected rt vDSO area bounds');
  });

  it('skips warnings; a failure without an error line gives its first line, or says it said nothing', () => {
    expect(criuCheckReason('Warn  (criu/cr-check.c:1): something\nUnsupported: tun\n', 1)).toBe('Unsupported: tun');
    expect(criuCheckReason('', 1)).toBe('it exited with status 1 and said nothing');
    expect(criuCheckReason('Looks good.\n', 1)).toBe('Looks good.');
  });
});

describe('criuDumpArgs and criuRestoreArgs: a server as live migration dumps and restores it', () => {
  it('a pre-dump round tracks memory and never stops the server; the final dump names its parent round', () => {
    const pre = criuDumpArgs(42, { images: '/i/1', pre: true, leaveRunning: true });
    expect(pre.slice(0, 5)).toEqual(['pre-dump', '-t', '42', '-D', '/i/1']);
    expect(pre).toContain('--track-mem');
    expect(pre).not.toContain('--leave-running');
    const last = criuDumpArgs(42, { images: '/i/2', prev: '../1' });
    expect(last[0]).toBe('dump');
    expect(last.join(' ')).toContain('--prev-images-dir ../1');
    expect(last).not.toContain('--leave-running');
    // what a novabox server needs: its cgroup, the network frozen, host-bound mounts external, its sessions
    for (const a of ['--manage-cgroups', '--shell-job']) expect(last).toContain(a);
    expect(last.join(' ')).toContain('--network-lock nftables');
    expect(last.join(' ')).toContain('--external mnt[]');
    // pid 1's binary under a key of its own, before the autodetected rest
    expect(last.join(' ')).toContain('--external mnt[/dev/.novabox-init]:novabox-init --external mnt[]');
    expect(criuDumpArgs(42, { images: '/i', leaveRunning: true })).toContain('--leave-running');
  });

  it('restores detached under the rebuilt root, host-bound mounts from the same paths, the pid in a file', () => {
    const r = criuRestoreArgs({
      images: '/i/2',
      root: '/srv/root',
      pidfile: '/i/2/pid',
      initCopy: '/var/lib/novabox/init/novabox-init.1.2',
    });
    expect(r.slice(0, 4)).toEqual(['restore', '-d', '-D', '/i/2']);
    expect(r.join(' ')).toContain('--root /srv/root');
    expect(r.join(' ')).toContain('--ext-mount-map auto');
    expect(r.join(' ')).toContain('--pidfile /i/2/pid');
    expect(r.join(' ')).toContain('--ext-mount-map novabox-init:/var/lib/novabox/init/novabox-init.1.2');
    expect(r).not.toContain('--cgroup-root');
    expect(r).not.toContain('--network-lock'); // criu ignores it on restore, with a warning
    const b = criuRestoreArgs({ images: '/i', root: '/r', pidfile: '/p', initCopy: '/c', cgroupRoot: '/novabox/ID' });
    expect(b.join(' ')).toContain('--cgroup-root /novabox/ID');
    const c = criuRestoreArgs({ images: '/i', root: '/r', pidfile: '/p', initCopy: '/c', inheritFds: ['fd[1]:pipe:[77]'] });
    expect(c.slice(-2)).toEqual(['--inherit-fd', 'fd[1]:pipe:[77]']);
  });
});

describe("inheritedStdio: pid 1's log pipe handed to the restore", () => {
  it.each([
    ['pipe:[4242]', ['fd[1]:pipe:[4242]']],
    ['/dev/null', []],
    ['socket:[1]', []],
    [undefined, []],
  ])('%s -> %j', (link, want) => {
    expect(inheritedStdio(link)).toEqual(want);
  });
});

describe("planRestore: the monitor's plan of a restore (NB_PLAN_RESTORE)", () => {
  it('criu in a mount namespace of its own, the root mounted again there (never on the host), then criu restore as the init; the pidfile in the header', () => {
    const p = planRestore({
      criu: 'criu',
      args: ['restore', '-d'],
      pidfile: '/i/2/restored.pid',
      merged: '/s/rootfs',
      overlay: 'lowerdir=/l,upperdir=/u,workdir=/w',
      logPath: '/s/console.log',
      statusPath: '/s/exit-status',
    });
    expect(p.namespaces).toEqual(['mount']);
    expect(p.ops).toEqual([
      { op: 'mount', target: '/', flags: ['rec', 'private'] },
      { op: 'mount', source: 'overlay', target: '/s/rootfs', fstype: 'overlay', flags: [], data: 'lowerdir=/l,upperdir=/u,workdir=/w' },
      expect.objectContaining({ op: 'exec', file: 'criu', argv: ['criu', 'restore', '-d'] }),
    ]);
    expect(p).toMatchObject({ tty: false, logPath: '/s/console.log', statusPath: '/s/exit-status', restorePidfile: '/i/2/restored.pid' });
    expect(encodePlan(p).readUInt32LE(24) & 0x42).toBe(0x42); // NB_PLAN_RESTORE and NB_PLAN_LOG
    const withIp = planRestore({
      args: [],
      pidfile: '/p',
      merged: '/m',
      overlay: 'o',
      logPath: '/l',
      statusPath: '/s',
      env: criuEnv({ CR_IP_TOOL: '/usr/local/bin/criu-ip' }),
    });
    expect(withIp.ops.at(-1)).toMatchObject({ env: [expect.stringMatching(/^PATH=/), 'CR_IP_TOOL=/usr/local/bin/criu-ip'] });
    expect(criuEnv({})).toEqual([]);
  });

  it("a server in its own user namespace: the rootfs is the monitor's idmapped overlay ('userns', 'mount-fd'), the host files criu reaches from inside bound on a tmpfs of /run first", () => {
    const p = planRestore({
      args: ['restore'],
      pidfile: '/i/2/restored.pid',
      merged: '/s/rootfs',
      overlay: 'unused',
      logPath: '/s/console.log',
      statusPath: '/s/exit-status',
      userns: {
        uidMap: '0 1065536 65536\n',
        gidMap: '0 1065536 65536\n',
        rootfs: { upper: '/s/upper', work: '/s/work', flags: '', stage: '/s/rootfs', lowers: ['/l1', '/l2'] },
      },
      external: {
        dir: '/run/novabox-restore.x',
        binds: [
          ['/st/init/novabox-init.1.2', '/run/novabox-restore.x/novabox-init'],
          ['/st/servers/x/seed', '/run/novabox-restore.x/nocloud-seed', 'dir'],
        ],
      },
    });
    expect(p.namespaces).toEqual(['mount']);
    expect(p.ops).toEqual([
      { op: 'mount', target: '/', flags: ['rec', 'private'] },
      {
        op: 'mount',
        source: 'tmpfs',
        target: '/run/novabox-restore.x',
        fstype: 'tmpfs',
        flags: ['nosuid', 'nodev'],
        data: 'mode=0755,size=64k',
      },
      { op: 'mknod', path: '/run/novabox-restore.x/novabox-init', mode: 0o444, type: 'file', major: 0, minor: 0 },
      { op: 'mount', source: '/st/init/novabox-init.1.2', target: '/run/novabox-restore.x/novabox-init', flags: ['bind'] },
      { op: 'mkdir', path: '/run/novabox-restore.x/nocloud-seed', mode: 0o555 },
      { op: 'mount', source: '/st/servers/x/seed', target: '/run/novabox-restore.x/nocloud-seed', flags: ['bind'] },
      { op: 'userns' },
      { op: 'mount-fd', target: '/s/rootfs' },
      expect.objectContaining({ op: 'exec', file: 'criu' }),
    ]);
    expect(p.userns?.uidMap).toBe('0 1065536 65536\n');
  });
});

describe('criuLogReason: why a dump or restore failed, from its log', () => {
  it('the last error before FAILED, not the iptables probes a dump logs and survives', () => {
    const log = [
      'Warn  (criu/config.c:1051): --network-lock will be ignored in restore command',
      'Error (criu/util.c:627): execvp("iptables-save", ...) failed: No such file or directory',
      'Error (criu/util.c:642): exited, status=1',
      'Error (criu/util.c:1567): iptables-save -V failed',
      '     1: Error (criu/image.c:475): Unable to open tty-info.img: Permission denied',
      'Error (criu/cr-restore.c:2537): Restoring FAILED.',
    ].join('\n');
    expect(criuLogReason(log)).toBe('Unable to open tty-info.img: Permission denied');
    expect(criuLogReason('Error (criu/util.c:1567): ip6tables-legacy-save -V failed\n')).toBeNull();
    expect(criuLogReason('')).toBeNull();
  });
});

describe("lockTables: CRIU's network lock among a namespace's nft tables", () => {
  it('names only the CRIU-<pid> tables, with their family', () => {
    expect(lockTables('table inet CRIU-4242\ntable ip novabox_nbt1\ntable ip6 CRIU-7\ntable inet CRIUX\n')).toEqual([
      'inet CRIU-4242',
      'ip6 CRIU-7',
    ]);
    expect(lockTables('')).toEqual([]);
  });
});

describe('a bridged server: its /etc files and its veth across a dump and a restore', () => {
  it("the dump names the /etc binds under keys, before the autodetected rest; the restore maps those keys to this host's files and makes eth0's peer on its bridge", () => {
    const d = criuDumpArgs(42, { images: '/i/2', etcFiles: true }).join(' ');
    expect(d).toContain(
      '--external mnt[/etc/hosts]:etc-hosts --external mnt[/etc/hostname]:etc-hostname --external mnt[/etc/resolv.conf]:etc-resolv --external mnt[]',
    );
    expect(criuDumpArgs(42, { images: '/i/2' }).join(' ')).not.toContain('etc-hosts');
    const r = criuRestoreArgs({
      images: '/i',
      root: '/r',
      pidfile: '/p',
      initCopy: '/c',
      veth: { hostIf: 'nbv1234', bridge: 'nbt0' },
      etcFiles: { hosts: '/s/etc/hosts', hostname: '/s/etc/hostname', resolv: '/s/etc/resolv.conf' },
    }).join(' ');
    expect(r).toContain(
      '--ext-mount-map etc-hosts:/s/etc/hosts --ext-mount-map etc-hostname:/s/etc/hostname --ext-mount-map etc-resolv:/s/etc/resolv.conf --ext-mount-map auto',
    );
    expect(r).toContain('--external veth[eth0]:nbv1234@nbt0');
  });

  it("the dump names the instance data's seed mount under a key; the restore binds this host's seed directory there", () => {
    expect(criuDumpArgs(42, { images: '/i/2', seed: '/var/lib/cloud/seed/nocloud' }).join(' ')).toContain(
      '--external mnt[/var/lib/cloud/seed/nocloud]:nocloud-seed --external mnt[]',
    );
    expect(criuDumpArgs(42, { images: '/i/2' }).join(' ')).not.toContain('nocloud-seed');
    expect(criuRestoreArgs({ images: '/i', root: '/r', pidfile: '/p', initCopy: '/c', seed: '/s/seed' }).join(' ')).toContain(
      '--ext-mount-map nocloud-seed:/s/seed --ext-mount-map auto',
    );
  });

  it("the dump names each volume's mount under a key of its id (the id it keeps on the target); the restore binds that host's directory of the volume there", () => {
    const vols = [
      { id: '0b6c1a5e-1111-4222-8333-944445555666', target: '/data' },
      { id: '7d1f3c2a-aaaa-4bbb-8ccc-dddddddddddd', target: '/srv/cache' },
    ];
    expect(criuDumpArgs(42, { images: '/i/2', seed: '/var/lib/cloud/seed/nocloud', volumes: vols }).join(' ')).toContain(
      '--external mnt[/var/lib/cloud/seed/nocloud]:nocloud-seed --external mnt[/data]:volume-0b6c1a5e-1111-4222-8333-944445555666 --external mnt[/srv/cache]:volume-7d1f3c2a-aaaa-4bbb-8ccc-dddddddddddd --external mnt[]',
    );
    expect(criuDumpArgs(42, { images: '/i/2' }).join(' ')).not.toContain('volume-');
    const r = criuRestoreArgs({
      images: '/i',
      root: '/r',
      pidfile: '/p',
      initCopy: '/c',
      volumes: vols.map((v) => ({ id: v.id, source: `/b/volumes/${v.id}` })),
    }).join(' ');
    expect(r).toContain(
      '--ext-mount-map volume-0b6c1a5e-1111-4222-8333-944445555666:/b/volumes/0b6c1a5e-1111-4222-8333-944445555666 --ext-mount-map volume-7d1f3c2a-aaaa-4bbb-8ccc-dddddddddddd:/b/volumes/7d1f3c2a-aaaa-4bbb-8ccc-dddddddddddd --ext-mount-map auto',
    );
    expect(volumeKey(vols[0]!.id)).toBe('volume-0b6c1a5e-1111-4222-8333-944445555666');
  });
});
