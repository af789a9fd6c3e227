/**
 * Named volumes for real, through bin/novabox, as root: data that outlives a server's
 * delete, read-only mounts, one attachment at a time, deletion refused while attached,
 * a user-namespaced server's root writing to its volume (files stored in its range's ids,
 * shifted when another range or --userns host takes the volume). Servers on --network
 * none: no traffic. Each test leaves the census as it found it.
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { shiftTree } from '../../src/runtime/volumes.js';
import { census, type Census } from '../helpers/census.js';
import { BIN, cliEnv, killCliAt, runCli, tempRoot } from '../helpers/run-cli.js';

const isRoot = process.getuid?.() === 0;
/** whether `cp` is GNU coreutils' (the QEMU guest's is busybox's, which keeps no xattrs) */
const gnuCp = (() => {
  try {
    return execFileSync('cp', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('GNU coreutils');
  } catch {
    return false;
  }
})();
/** sized volumes need loop devices and mkfs.ext4 (a guest kernel may have neither) */
const canLoop =
  existsSync('/dev/loop-control') && ['/usr/sbin/mkfs.ext4', '/sbin/mkfs.ext4', '/usr/bin/mkfs.ext4'].some((p) => existsSync(p));
const NO_LOOP = `sized volumes need ${existsSync('/dev/loop-control') ? 'mkfs.ext4 (apt-get install e2fsprogs)' : 'loop devices (/dev/loop-control: modprobe loop)'}`;

describe.skipIf(!isRoot)('named volumes (root, real servers)', () => {
  let root: string;
  let removeRoot: () => void;
  let before: Census;
  const nb = (args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) => runCli(args, { root, ...opts });
  const ok = async (args: string[]) => {
    const r = await nb(args);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    return r.stdout;
  };
  const create = (name: string, extra: string[]) =>
    ok(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', ...extra, name]);
  const inside = (name: string, script: string) => nb(['server', 'exec', name, '--', 'sh', '-c', script]);
  const volume = async (name: string) =>
    JSON.parse(await ok(['volume', 'show', name, '-f', 'json'])) as Record<string, unknown> & { path: string };
  const snapshotFiles = () => (existsSync(join(root, 'volume-snapshots')) ? readdirSync(join(root, 'volume-snapshots')).sort() : []);
  const volumeDirs = () => (existsSync(join(root, 'volumes')) ? readdirSync(join(root, 'volumes')).sort() : []);
  /** Whether the server's cgroup is frozen: cgroup v2's cgroup.events, or a v1 hierarchy's freezer.state (a hybrid host). */
  const freezer = async (server: string) => {
    const pid = (JSON.parse(await ok(['server', 'show', server, '-f', 'json'])) as { pid: number }).pid;
    const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    const v1 = /^\d+:freezer:(.*)$/m.exec(cgroups)?.[1];
    return () =>
      v1 !== undefined
        ? readFileSync(join('/sys/fs/cgroup/freezer', v1, 'freezer.state'), 'utf8').trim() !== 'THAWED'
        : /^frozen 1$/m.test(readFileSync(join('/sys/fs/cgroup', /^0::(.*)$/m.exec(cgroups)![1], 'cgroup.events'), 'utf8'));
  };

  beforeAll(async () => {
    ({ root, remove: removeRoot } = tempRoot('nbx-vol-'));
    const r = await runCli(['run', '--rm', '--network', 'none', 'busybox', 'true'], { root }); // builds the image
    expect(r.exitCode).toBe(0);
  });
  afterAll(() => removeRoot?.());
  beforeEach(() => {
    before = census(root);
  });
  afterEach(async () => {
    const list = await nb(['server', 'list', '-f', 'json']);
    for (const s of JSON.parse(list.stdout || '[]') as { ID: string }[])
      await nb(['server', 'delete', '--force', s.ID], { timeoutMs: 60_000 });
    const snaps = await nb(['volume', 'snapshot', 'list', '-f', 'json']);
    for (const v of JSON.parse(snaps.stdout || '[]') as { ID: string }[]) await ok(['volume', 'snapshot', 'delete', v.ID]);
    expect(snapshotFiles()).toEqual([]);
    const vols = await nb(['volume', 'list', '-f', 'json']);
    for (const v of JSON.parse(vols.stdout || '[]') as { ID: string }[]) await ok(['volume', 'delete', v.ID]);
    expect(volumeDirs()).toEqual([]);
    const after = census(root);
    const files = (c: Census) => ({
      ...c,
      stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/') && !f.startsWith('volumes') && !f.startsWith('volume-snapshots')),
    });
    expect(files(after)).toEqual(files(before));
  }, 120_000);

  it("persists across the server's delete and a new server; a user-namespaced root writes it, stored in its range's ids", async () => {
    await ok(['volume', 'create', 'data']);
    expect((await volume('data')).status).toBe('available');
    const out = JSON.parse(await create('v1', ['-v', 'data:/srv/data', '-f', 'json'])) as {
      id: string;
      volumes_attached: unknown;
      idmap: string;
    };
    expect(out.volumes_attached).toEqual([{ id: (await volume('data')).id, name: 'data', path: '/srv/data', read_only: false }]);
    expect(out.idmap).toMatch(/^uid 0 \d+ 65536/);
    const base = Number(/^uid 0 (\d+)/.exec(out.idmap)![1]);

    const w = await inside(
      'v1',
      'id -u && mkdir /srv/data/dir && echo kept > /srv/data/dir/f && chown 1000:1000 /srv/data/dir/f && ls -ln /srv/data/dir',
    );
    expect(w.stderr).toBe('');
    expect(w.stdout).toMatch(/^0\n.* 1000 +1000 .* f\n$/s);
    const v = await volume('data');
    expect(v.status).toBe('in-use');
    expect(statSync(join(v.path, 'dir', 'f')).uid).toBe(base + 1000);
    expect(statSync(v.path).uid).toBe(base);

    // survives stop/start and a rebuild
    await ok(['server', 'stop', 'v1']);
    await ok(['server', 'start', 'v1']);
    await ok(['server', 'rebuild', 'v1', '--image', 'busybox']);
    expect((await inside('v1', 'cat /srv/data/dir/f')).stdout).toBe('kept\n');

    await ok(['server', 'delete', 'v1']);
    expect((await volume('data')).status).toBe('available');
    // a new server with --userns host: the files move to host ids 0…
    await create('v2', ['--userns', 'host', '--volume', 'data:/mnt/d']);
    const r = await inside('v2', 'cat /mnt/d/dir/f && stat -c "%u %g" /mnt/d/dir/f && echo more >> /mnt/d/dir/f');
    expect(r.stdout).toBe('kept\n1000 1000\n');
    expect(statSync(join(v.path, 'dir', 'f')).uid).toBe(1000);
    expect((await volume('data')).owner).toBe('host ids');
  });

  it('read-only is enforced; add and remove on a running server (into its mount namespace) and a stopped one; refused while paused', async () => {
    await ok(['volume', 'create', 'ro']);
    const dir = (await volume('ro')).path;
    writeFileSync(join(dir, 'seed'), 'seed\n');
    await create('r1', ['-v', 'ro:/ro:ro']);
    const w = await inside('r1', 'cat /ro/seed; echo x > /ro/new');
    expect(w.stdout).toBe('seed\n');
    expect(w.stderr).toMatch(/Read-only file system/);
    expect(w.exitCode).not.toBe(0);
    expect(existsSync(join(dir, 'new'))).toBe(false);

    // running: detached inside at once, then attached elsewhere (the directories made), writable
    await ok(['server', 'remove', 'volume', 'r1', 'ro']);
    expect((await inside('r1', 'grep -c " /ro " /proc/mounts; ls -A /ro | wc -l')).stdout).toBe('0\n0\n');
    await ok(['server', 'add', 'volume', 'r1', 'ro', '--mount-path', '/rw/deep']);
    const hot = await inside('r1', 'echo y > /rw/deep/new && ls /rw/deep && stat -c "%u" /rw /rw/deep/new');
    expect(hot.stderr).toBe('');
    expect(hot.stdout).toBe('new\nseed\n0\n0\n'); // the new directory is the server root's
    expect(existsSync(join(dir, 'new'))).toBe(true);
    const show = JSON.parse(await ok(['server', 'show', 'r1', '-f', 'json']));
    expect(show.volumes_attached).toEqual([{ id: (await volume('ro')).id, name: 'ro', path: '/rw/deep', read_only: false }]);
    // a path that cannot be a mount point: one sentence, nothing recorded
    expect((await inside('r1', 'touch /afile')).exitCode).toBe(0);
    await ok(['volume', 'create', 'other']);
    const notDir = await nb(['server', 'add', 'volume', 'r1', 'other', '--mount-path', '/afile']);
    expect(notDir.exitCode).toBe(4);
    expect(notDir.stderr).toBe(
      'novabox: cannot attach volume "other" to running server "r1": the mount path in the server: Not a directory\n',
    );
    expect((await volume('other')).status).toBe('available');

    // kept across a stop and start; stopped: detached and attached for the next start
    await ok(['server', 'stop', 'r1']);
    await ok(['server', 'start', 'r1']);
    expect((await inside('r1', 'cat /rw/deep/new')).stdout).toBe('y\n');
    await ok(['server', 'stop', 'r1']);
    await ok(['server', 'remove', 'volume', 'r1', 'ro']);
    await ok(['server', 'add', 'volume', 'r1', 'ro', '--mount-path', '/again', '--read-only']);
    await ok(['server', 'start', 'r1']);
    expect((await inside('r1', 'ls /again; ls -A /rw/deep | wc -l')).stdout).toBe('new\nseed\n0\n');

    await ok(['server', 'pause', 'r1']);
    const paused = await nb(['server', 'remove', 'volume', 'r1', 'ro']);
    expect(paused.exitCode).toBe(4);
    expect(paused.stderr).toBe(
      'novabox: cannot detach a volume from server "r1": it is PAUSED (a volume is attached to a stopped or running server: wait for it, or unpause it)\n',
    );
    await ok(['server', 'unpause', 'r1']);
  });

  it('run -v NAME:/path: the container holds the volume while it runs, in its own range; a server holding it refuses the run', async () => {
    await ok(['volume', 'create', 'rv']);
    const dir = (await volume('rv')).path;
    const r = await nb(['run', '--rm', '--network', 'none', '-v', 'rv:/data', 'busybox', 'sh', '-c', 'echo from-run > /data/f && id -u']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('0\n');
    expect(statSync(join(dir, 'f')).uid).not.toBe(0); // the container's range
    expect((await volume('rv')).status).toBe('available'); // given back at its end
    const ro = await nb(['run', '--rm', '--network', 'none', '-v', 'rv:/data:ro', 'busybox', 'sh', '-c', 'cat /data/f; echo x > /data/g']);
    expect(ro.stdout).toBe('from-run\n');
    expect(ro.stderr).toMatch(/Read-only file system/);
    expect(ro.exitCode).not.toBe(0);

    await create('holder', ['-v', 'rv:/data']);
    expect((await inside('holder', 'cat /data/f')).stdout).toBe('from-run\n');
    const refused = await nb(['run', '--rm', '--network', 'none', '-v', 'rv:/data', 'busybox', 'true']);
    expect(refused.stderr).toBe(
      'novabox: volume "rv" is in use by server "holder" (at /data); a volume is attached to one server or container at a time\n',
    );
    expect(refused.exitCode).not.toBe(0);
    const missing = await nb(['run', '--rm', '--network', 'none', '-v', 'nosuch:/data', 'busybox', 'true']);
    expect(missing.stderr).toBe('novabox: volume "nosuch" not found (novabox volume list)\n');
  });

  it('one server at a time; deleting an attached volume is refused; bad input: one sentence, nothing changed', async () => {
    await ok(['volume', 'create', 'shared']);
    await create('a1', ['-v', 'shared:/s']);
    const listBefore = await ok(['server', 'list', '-f', 'value', '-c', 'Name']);
    const taken = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', '-v', 'shared:/s', 'a2']);
    expect(taken.exitCode).toBe(4);
    expect(taken.stderr).toBe(
      'novabox: volume "shared" is in use by server "a1" (at /s); a volume is attached to one server or container at a time\n',
    );
    const del = await nb(['volume', 'delete', 'shared']);
    expect(del.exitCode).toBe(4);
    expect(del.stderr).toBe(
      'novabox: cannot delete volume "shared": it is in use by server "a1" (at /s); detach it first ("novabox server remove volume a1 shared") or delete the server\n',
    );
    expect(volumeDirs()).toHaveLength(1);

    for (const [args, code, message] of [
      [['-v', 'nosuch:/x'], 3, 'volume "nosuch" not found (novabox volume list)'],
      [['-v', 'shared'], 2, 'invalid volume "shared": expected NAME:/path[:ro]'],
      [['-v', 'shared:rel'], 2, 'invalid volume "shared:rel": the path in the server must be absolute'],
      [['-v', 'shared:/a/../b'], 2, 'invalid volume "shared:/a/../b": "." or ".." in the path in the server'],
      [['-v', 'shared:/'], 2, `invalid volume "shared:/": a volume cannot be mounted on the server's root`],
      [['-v', 'shared:/x:rx'], 2, 'invalid volume "shared:/x:rx": expected NAME:/path[:ro]'],
    ] as [string[], number, string][]) {
      const r = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', ...args, 'bad']);
      expect(r.stderr).toBe(`novabox: ${message}\n`);
      expect(r.exitCode).toBe(code);
    }
    const dup = await nb(['volume', 'create', 'shared']);
    expect(dup.stderr).toBe('novabox: volume "shared" already exists\n');
    expect(dup.exitCode).toBe(4);
    const badName = await nb(['volume', 'create', '../x']);
    expect(badName.exitCode).toBe(2);
    expect(badName.stderr).toMatch(/^novabox: invalid volume name "..\/x": /);
    expect(await ok(['server', 'list', '-f', 'value', '-c', 'Name'])).toBe(listBefore);
    expect(volumeDirs()).toHaveLength(1);
  });

  it('volume snapshot: a copy taken only when asked (a running server frozen for it), volumes made from it and cloned; a server image leaves volumes out; bad input', async () => {
    await ok(['volume', 'create', 'data']);
    const out = JSON.parse(await create('s1', ['-v', 'data:/srv/data', '-f', 'json'])) as { idmap: string };
    const base = Number(/^uid 0 (\d+)/.exec(out.idmap)![1]);
    const w = await inside(
      's1',
      'mkdir /srv/data/d && echo one > /srv/data/d/f && ln /srv/data/d/f /srv/data/d/hard && ln -s f /srv/data/d/sym && mkfifo /srv/data/d/fifo && chown 1000:1001 /srv/data/d/f && chmod 640 /srv/data/d/f',
    );
    expect(w.stderr).toBe('');
    const vpath = (await volume('data')).path;
    mknod(join(vpath, 'd', 'null'));
    const xattr = setXattr(join(vpath, 'd', 'f'), 'user.novabox', 'kept');
    // a writer runs in the server while the copy is made
    await inside('s1', 'while [ ! -e /tmp/stop ]; do date >> /srv/data/log; done > /dev/null 2>&1 &');

    const made = await nb(['volume', 'snapshot', 'create', '--volume', 'data', 'snap1', '-f', 'json'], { env: { NOVABOX_TRACE: '1' } });
    expect(made.exitCode).toBe(0);
    // the copy is made inside the server's freeze, thawed after
    expect(made.stderr.match(/volume: [a-z ]+/g)).toEqual(['volume: server frozen', 'volume: copied', 'volume: server thawed']);
    const snap = JSON.parse(made.stdout) as Record<string, string>;
    expect(snap).toMatchObject({
      name: 'snap1',
      volume: 'data',
      status: 'available',
      kind: 'directory',
      owner: `ids from ${base}:${base}`,
    });
    expect(snap.path).toBe(join(root, 'volume-snapshots', snap.id));
    // thawed: the server runs on, its writer too
    expect((JSON.parse(await ok(['server', 'show', 's1', '-f', 'json'])) as { status: string }).status).toBe('ACTIVE');
    const n1 = (await inside('s1', 'wc -l < /srv/data/log')).stdout;
    await new Promise((r) => setTimeout(r, 200));
    expect(Number((await inside('s1', 'wc -l < /srv/data/log')).stdout)).toBeGreaterThan(Number(n1));
    expect((await ok(['volume', 'snapshot', 'list', '-f', 'value', '-c', 'Name', '-c', 'Volume', '-c', 'Status'])).trim()).toBe(
      'snap1 data available',
    );
    expect((await ok(['volume', 'snapshot', 'list', '--volume', 'data', '-f', 'value', '-c', 'Name'])).trim()).toBe('snap1');

    // the volume changes after; the snapshot does not
    await inside('s1', 'echo two > /srv/data/d/f');
    await ok(['volume', 'create', '--snapshot', 'snap1', 'restored']);
    const r = await volume('restored');
    expect(r).toMatchObject({ status: 'available', kind: 'directory', owner: `ids from ${base}:${base}` });
    const f = lstatSync(join(r.path, 'd', 'f'));
    expect(readFileSync(join(r.path, 'd', 'f'), 'utf8')).toBe('one\n');
    expect([f.uid, f.gid, f.mode & 0o7777, f.nlink]).toEqual([base + 1000, base + 1001, 0o640, 2]);
    expect(lstatSync(join(r.path, 'd', 'hard')).ino).toBe(f.ino);
    expect(lstatSync(join(r.path, 'd', 'sym')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(r.path, 'd', 'fifo')).isFIFO()).toBe(true);
    expect(lstatSync(join(r.path, 'd', 'null')).isCharacterDevice()).toBe(true);
    // xattrs travel with GNU cp -a (a Debian host's coreutils); the guest's busybox cp drops them
    if (xattr && gnuCp) expect(getXattr(join(r.path, 'd', 'f'), 'user.novabox')).toBe('kept');
    // a clone of the volume as it is now (the server frozen for it)
    await ok(['volume', 'create', '--source', 'data', 'clone']);
    expect(readFileSync(join((await volume('clone')).path, 'd', 'f'), 'utf8')).toBe('two\n');
    // the restored volume in a server of another range: shifted there as any volume
    await create('s2', ['-v', 'restored:/r']);
    expect((await inside('s2', 'cat /r/d/f; stat -c "%u %g" /r/d/f')).stdout).toBe('one\n1000 1001\n');

    // a server snapshot leaves its volumes out: they are mounts, not its writable layer
    await inside('s1', 'echo layer > /etc/in-layer; touch /tmp/stop');
    await ok(['server', 'image', 'create', '--name', 's1-img', '--wait', 's1']);
    await ok(['server', 'create', '--image', 's1-img', '--flavor', 'c1.nano', '--network', 'none', 's3']);
    expect((await inside('s3', 'cat /etc/in-layer; ls -A /srv/data 2>/dev/null | wc -l')).stdout).toBe('layer\n0\n');
    await ok(['server', 'delete', 's3']);
    await ok(['image', 'delete', 's1-img']);

    // deleting a volume with snapshots is refused, naming them (Cinder)
    const files = snapshotFiles();
    const del = await nb(['volume', 'delete', 'data']);
    expect(del.stderr).toBe(
      'novabox: cannot delete volume "data": it is in use by server "s1" (at /srv/data); detach it first ("novabox server remove volume s1 data") or delete the server\n',
    );
    await ok(['server', 'delete', 's1']);
    const del2 = await nb(['volume', 'delete', 'data']);
    expect(del2.exitCode).toBe(4);
    expect(del2.stderr).toBe(
      'novabox: cannot delete volume "data": it has snapshots (snap1); delete them first ("novabox volume snapshot delete snap1")\n',
    );

    // bad input: one sentence, nothing changed
    for (const [args, code, message] of [
      [['volume', 'snapshot', 'create', '--volume', 'nosuch', 'x'], 3, 'volume "nosuch" not found (novabox volume list)'],
      [['volume', 'snapshot', 'create', '--volume', 'data', 'snap1'], 4, 'volume snapshot "snap1" already exists'],
      [
        ['volume', 'snapshot', 'create', '--volume', 'data', '../x'],
        2,
        "invalid volume snapshot name \"../x\": use letters, digits, '_', '.' and '-' (at most 63, not starting with a symbol)",
      ],
      [['volume', 'create', '--snapshot', 'nosuch', 'x'], 3, 'volume snapshot "nosuch" not found'],
      [['volume', 'create', '--source', 'nosuch', 'x'], 3, 'volume "nosuch" not found (novabox volume list)'],
      [['volume', 'create', '--snapshot', 'snap1', 'clone'], 4, 'volume "clone" already exists'],
      [
        ['volume', 'create', '--snapshot', 'snap1', '--size', '1', 'x'],
        2,
        '--size cannot be given with --snapshot or --source: the new volume is the size of what it copies',
      ],
      [
        ['volume', 'create', '--snapshot', 'snap1', '--source', 'data', 'x'],
        2,
        'a volume is made from a snapshot or from a volume, not both (--snapshot, --source)',
      ],
      [['volume', 'snapshot', 'delete', 'nosuch'], 3, 'volume snapshot "nosuch" not found'],
    ] as [string[], number, string][]) {
      const b = await nb(args);
      expect(b.stderr).toBe(`novabox: ${message}\n`);
      expect(b.exitCode).toBe(code);
    }
    expect(snapshotFiles()).toEqual(files);
    expect(volumeDirs()).toHaveLength(3);

    await ok(['volume', 'snapshot', 'delete', 'snap1']);
    expect(snapshotFiles()).toEqual([]);
    await ok(['volume', 'delete', 'data']);
  }, 180_000);

  it("volume snapshot of a paused server's volume leaves it paused; of a server in a task (a start, a stop): refused, nothing made", async () => {
    await ok(['volume', 'create', 'pv']);
    const id = (JSON.parse(await create('p1', ['-v', 'pv:/p', '-f', 'json'])) as { id: string }).id;
    await inside('p1', 'echo x > /p/f');
    await ok(['server', 'pause', 'p1']);
    const paused = await nb(['volume', 'snapshot', 'create', '--volume', 'pv', 'ps'], { env: { NOVABOX_TRACE: '1' } });
    expect(paused.exitCode).toBe(0);
    expect(paused.stderr).not.toMatch(/volume: server frozen/); // nothing runs in it: no freeze of ours, no thaw
    expect((JSON.parse(await ok(['server', 'show', 'p1', '-f', 'json'])) as { status: string }).status).toBe('PAUSED');
    await ok(['server', 'unpause', 'p1']);
    const files = snapshotFiles();
    expect(files).toHaveLength(1);

    const { openStore } = await import('../../src/store/db.js');
    const store = openStore(join(root, 'novabox.db'));
    try {
      store.servers.update(id, { taskState: 'powering-off' }); // as a stop in progress holds it
      const r = await nb(['volume', 'snapshot', 'create', '--volume', 'pv', 'ps2']);
      expect(r.stderr).toBe('novabox: cannot snapshot volume "pv": server "p1" is busy (powering-off); try again when it is done\n');
      expect(r.exitCode).toBe(4);
      const c = await nb(['volume', 'create', '--source', 'pv', 'pv2']);
      expect(c.stderr).toBe('novabox: cannot clone volume "pv": server "p1" is busy (powering-off); try again when it is done\n');
      expect(c.exitCode).toBe(4);
    } finally {
      store.servers.update(id, { taskState: null });
      store.close();
    }
    expect(snapshotFiles()).toEqual(files);
    expect(volumeDirs()).toHaveLength(1);
    expect((await ok(['volume', 'snapshot', 'list', '-f', 'value', '-c', 'Name'])).trim()).toBe('ps');
  }, 120_000);

  it('a volume snapshot create killed (kill -9) mid-copy, its server frozen: the next volume command (or doctor) thaws the server and removes the creating record and its partial copy', async () => {
    await ok(['volume', 'create', 'kv']);
    const id = (JSON.parse(await create('k1', ['-v', 'kv:/k', '-f', 'json'])) as { id: string }).id;
    expect((await inside('k1', 'mkdir /k/d && echo one > /k/d/f')).stderr).toBe('');
    const frozen = await freezer('k1');
    const { openStore } = await import('../../src/store/db.js');
    const killed = async (name: string) => {
      // stopped with the copy made and the server still frozen, then SIGKILLed
      await killCliAt('volume-copied', ['volume', 'snapshot', 'create', '--volume', 'kv', name], root);
      expect(frozen()).toBe(true);
      expect(snapshotFiles()).toHaveLength(1);
      const store = openStore(join(root, 'novabox.db'));
      try {
        expect(store.volumeSnapshots.find(name)).toMatchObject({ status: 'creating', frozenServer: id });
        expect(store.volumeSnapshots.find(name)!.ownerPid).toBeGreaterThan(0);
      } finally {
        store.close();
      }
    };
    const thawed = async () => {
      await expect.poll(frozen).toBe(false);
      expect(snapshotFiles()).toEqual([]);
      expect((JSON.parse(await ok(['server', 'show', 'k1', '-f', 'json'])) as { status: string }).status).toBe('ACTIVE');
      expect((await inside('k1', 'cat /k/d/f')).stdout).toBe('one\n'); // it runs again
    };

    await killed('ks');
    // the next volume command sweeps it: no creating record, no partial copy, the server thawed
    expect(JSON.parse(await ok(['volume', 'snapshot', 'list', '-f', 'json']))).toEqual([]);
    await thawed();

    // doctor finds it too
    await killed('ks2');
    const found = (JSON.parse(await ok(['doctor', '-f', 'json'])) as { Kind: string; Name: string; Fixed: boolean }[]).filter(
      (f) => f.Kind === 'volume-snapshot',
    );
    expect(found).toEqual([expect.objectContaining({ Kind: 'volume-snapshot', Name: 'ks2', Fixed: true })]);
    await thawed();
    expect(JSON.parse(await ok(['volume', 'snapshot', 'list', '-f', 'json']))).toEqual([]);
    // and a snapshot after it is made whole
    await ok(['volume', 'snapshot', 'create', '--volume', 'kv', 'ks']);
    expect((await ok(['volume', 'snapshot', 'list', '-f', 'value', '-c', 'Name', '-c', 'Status'])).trim()).toBe('ks available');
  }, 120_000);

  it('a volume create --source killed (kill -9) mid-copy, its server frozen, or --snapshot: the next volume command (or doctor) thaws the server and removes the partial volume and its record', async () => {
    await ok(['volume', 'create', 'cv']);
    const id = (JSON.parse(await create('c1', ['-v', 'cv:/c', '-f', 'json'])) as { id: string }).id;
    expect((await inside('c1', 'mkdir /c/d && echo one > /c/d/f')).stderr).toBe('');
    const cvId = (await volume('cv')).id as string;
    const frozen = await freezer('c1');
    const { openStore } = await import('../../src/store/db.js');
    const copies = () => {
      const store = openStore(join(root, 'novabox.db'));
      try {
        return store.volumeCopies.list();
      } finally {
        store.close();
      }
    };
    const killed = async (args: string[], name: string, frozenServer: string | null) => {
      // stopped with the copy made (the server still frozen for a clone), then SIGKILLed
      await killCliAt('volume-copied', ['volume', 'create', ...args, name], root);
      expect(frozen()).toBe(frozenServer !== null);
      const partial = volumeDirs().filter((d) => d !== cvId);
      expect(partial).toHaveLength(1);
      expect(readFileSync(join(root, 'volumes', partial[0]!, 'd', 'f'), 'utf8')).toBe('one\n');
      expect(copies()).toEqual([expect.objectContaining({ volumeId: partial[0], name, frozenServer })]);
      expect(copies()[0]!.ownerPid).toBeGreaterThan(0);
    };
    const swept = async () => {
      await expect.poll(frozen).toBe(false);
      expect(volumeDirs()).toEqual([cvId]);
      expect(copies()).toEqual([]);
      expect((JSON.parse(await ok(['server', 'show', 'c1', '-f', 'json'])) as { status: string }).status).toBe('ACTIVE');
      expect((await inside('c1', 'cat /c/d/f')).stdout).toBe('one\n'); // it runs again
    };

    await killed(['--source', 'cv'], 'cc', id);
    // the next volume command sweeps it: no partial volume, no record, the server thawed
    expect((await ok(['volume', 'list', '-f', 'value', '-c', 'Name'])).trim()).toBe('cv');
    await swept();

    // doctor finds it too
    await killed(['--source', 'cv'], 'cc2', id);
    const found = (JSON.parse(await ok(['doctor', '-f', 'json'])) as { Kind: string; Name: string; Fixed: boolean }[]).filter((f) =>
      f.Kind.startsWith('volume-'),
    );
    expect(found).toEqual([expect.objectContaining({ Kind: 'volume-copy', Name: 'cc2', Fixed: true })]);
    await swept();

    // a volume from a snapshot (no freeze) killed mid-copy: swept the same way
    await ok(['volume', 'snapshot', 'create', '--volume', 'cv', 'cs']);
    await killed(['--snapshot', 'cs'], 'cc3', null);
    expect((await ok(['volume', 'list', '-f', 'value', '-c', 'Name'])).trim()).toBe('cv');
    await swept();

    // and a clone after it is made whole, its record gone
    await ok(['volume', 'create', '--source', 'cv', 'cc']);
    expect((await ok(['volume', 'list', '-f', 'value', '-c', 'Name'])).trim().split('\n').sort()).toEqual(['cc', 'cv']);
    expect(readFileSync(join((await volume('cc')).path, 'd', 'f'), 'utf8')).toBe('one\n');
    expect(copies()).toEqual([]);
    expect(frozen()).toBe(false);
  }, 120_000);

  it('a sized volume snapshot: its image copied sparse, synced from the running server; a volume from it mounts', async (ctx) => {
    ctx.skip(!canLoop, NO_LOOP);
    await ok(['volume', 'create', '--size', '32M', 'sz']);
    await create('z1', ['-v', 'sz:/data']);
    // written without a sync: the snapshot syncs the server's filesystem before its copy
    expect((await inside('z1', 'echo one > /data/f')).stderr).toBe('');
    const snap = JSON.parse(await ok(['volume', 'snapshot', 'create', '--volume', 'sz', 'zs', '-f', 'json'])) as Record<string, string>;
    expect(snap).toMatchObject({ kind: 'ext4 image', size: '32MiB', status: 'available' });
    expect(snap.path).toBe(join(root, 'volume-snapshots', `${snap.id}.img`));
    expect(statSync(snap.path).size).toBe(32 << 20);
    expect(statSync(snap.path).blocks * 512).toBeLessThan(32 << 20); // sparse
    expect(loops(snap.path)).toEqual([]);
    expect(mountedUnder(root)).toEqual([]);

    await ok(['volume', 'create', '--snapshot', 'zs', 'sz2']);
    await ok(['volume', 'create', '--source', 'sz', 'sz3']);
    expect((await volume('sz2')).kind).toBe('ext4 image');
    await ok(['server', 'add', 'volume', 'z1', 'sz2', '--mount-path', '/copy']);
    await ok(['server', 'add', 'volume', 'z1', 'sz3', '--mount-path', '/clone']);
    expect((await inside('z1', 'cat /copy/f /clone/f')).stdout).toBe('one\none\n');
    await ok(['server', 'delete', 'z1']);
    await until(() => loopsOfRoot().length === 0);
    await ok(['volume', 'snapshot', 'delete', 'zs']);
    expect(snapshotFiles()).toEqual([]);
  }, 120_000);

  /** the loop devices backed by a file (losetup -j): none once no server runs with it */
  const loops = (file: string) => execFileSync('losetup', ['-j', file], { encoding: 'utf8' }).split('\n').filter(Boolean);
  const loopsOfRoot = () =>
    execFileSync('losetup', ['-l', '-n', '-O', 'BACK-FILE'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(root));
  const mountedUnder = (dir: string) =>
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[4]?.startsWith(dir));
  const until = async (what: () => boolean, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!what()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('a sized volume: an ext4 image, full at its size, loop-mounted only while its server runs (stop, crash, run, delete)', async (ctx) => {
    ctx.skip(!canLoop, NO_LOOP);
    const shown = JSON.parse(await ok(['volume', 'create', '--size', '32M', 'sized', '-f', 'json'])) as Record<string, string>;
    expect(shown).toMatchObject({ kind: 'ext4 image', size: '32MiB', status: 'available' });
    const img = shown.path;
    expect(img).toBe(join(root, 'volumes', `${shown.id}.img`));
    expect(statSync(img).size).toBe(32 << 20);
    expect(statSync(img).blocks * 512).toBeLessThan(32 << 20); // sparse
    expect(loops(img)).toEqual([]);
    expect((await ok(['volume', 'list', '-f', 'value', '-c', 'Name', '-c', 'Size'])).trim()).toBe('sized 32MiB');

    await create('z1', ['-v', 'sized:/data']);
    const w = await inside(
      'z1',
      'df -k /data | tail -1; echo kept > /data/f; dd if=/dev/zero of=/data/big bs=1M count=64 2>&1 | grep -o "No space left on device"; rm /data/big; id -u; stat -c "%u" /data/f',
    );
    const total = Number(w.stdout.split('\n')[0]!.trim().split(/\s+/)[1]);
    expect(total).toBeGreaterThan(20_000);
    expect(total).toBeLessThanOrEqual(32 * 1024);
    expect(w.stdout).toMatch(/No space left on device\n0\n0\n$/);
    // one loop device, held by the server alone: nothing mounted on the host for it
    expect(loops(img)).toHaveLength(1);
    expect(mountedUnder(join(root, 'volumes'))).toEqual([]);

    await ok(['server', 'stop', 'z1']);
    await until(() => loops(img).length === 0);
    await ok(['server', 'start', 'z1']);
    expect((await inside('z1', 'cat /data/f')).stdout).toBe('kept\n');
    expect(loops(img)).toHaveLength(1);
    // its command killed: the namespace goes, and the loop device with it
    process.kill((JSON.parse(await ok(['server', 'show', 'z1', '-f', 'json'])) as { pid: number }).pid, 'SIGKILL');
    await until(() => loops(img).length === 0);

    // a start killed half-way left the image mounted on the host: the next start detaches it
    const stage = join(root, 'volumes', `${shown.id}.mnt`);
    mkdirSync(stage);
    execFileSync('mount', ['-o', 'loop', img, stage]);
    await ok(['server', 'start', 'z1']);
    expect((await inside('z1', 'cat /data/f')).stdout).toBe('kept\n');
    expect(mountedUnder(join(root, 'volumes'))).toEqual([]);
    expect(existsSync(stage)).toBe(false);
    await ok(['server', 'delete', 'z1']);
    await until(() => loops(img).length === 0);

    // run -v: the same, for the container's life
    const r = await nb(['run', '--rm', '--network', 'none', '-v', 'sized:/d', 'busybox', 'cat', '/d/f']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('kept\n');
    await until(() => loops(img).length === 0);
    expect(mountedUnder(join(root, 'volumes'))).toEqual([]);

    // a start that fails after the image was mounted (the mount point is a file): nothing left
    const failed = await nb([
      'server',
      'create',
      '--image',
      'busybox',
      '--flavor',
      'c1.nano',
      '--network',
      'none',
      '-v',
      'sized:/etc/passwd',
      'zf',
    ]);
    expect(failed.exitCode).toBe(1);
    expect(failed.stderr).toMatch(/mkdir \/etc\/passwd: not a directory/);
    await until(() => loops(img).length === 0);
    expect(mountedUnder(join(root, 'volumes'))).toEqual([]);
    await ok(['server', 'delete', 'zf']);

    // attached to a running server and detached again: the loop device lives in between only
    await create('z2', []);
    await ok(['server', 'add', 'volume', 'z2', 'sized', '--mount-path', '/hot', '--read-only']);
    expect(loops(img)).toHaveLength(1);
    expect(mountedUnder(join(root, 'volumes'))).toEqual([]);
    const ro = await inside('z2', 'cat /hot/f; touch /hot/x');
    expect(ro.stdout).toBe('kept\n');
    expect(ro.stderr).toMatch(/Read-only file system/);
    await ok(['server', 'remove', 'volume', 'z2', 'sized']);
    await until(() => loops(img).length === 0);
    await ok(['server', 'delete', 'z2']);

    await ok(['volume', 'delete', 'sized']);
    expect(existsSync(img)).toBe(false);
    expect(loopsOfRoot()).toEqual([]);
  }, 120_000);

  it("Nova's block_device_mapping_v2 at POST /servers attaches a volume at device_name", async () => {
    const vol = JSON.parse(await ok(['volume', 'create', 'apivol', '-f', 'json'])) as { id: string; path: string };
    const imageId = (JSON.parse(await ok(['image', 'show', 'busybox', '-f', 'json'])) as { id: string }).id;
    const srv = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--no-access-log'], {
      env: cliEnv(root, { NOVABOX_ADMIN_PASSWORD: 'pw-bdm' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let said = '';
      srv.stdout?.on('data', (d) => (said += d));
      for (let i = 0; i < 400 && !/listening on http:\/\/[\d.:]+/.test(said); i++) await new Promise((r) => setTimeout(r, 25));
      const base = /listening on (http:\/\/[\d.:]+)/.exec(said)![1];
      const auth = await fetch(`${base}/identity/v3/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          auth: {
            identity: { methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password: 'pw-bdm' } } },
            scope: { project: { name: 'admin', domain: { id: 'default' } } },
          },
        }),
      });
      const headers = { 'x-auth-token': auth.headers.get('x-subject-token')!, 'content-type': 'application/json' };
      const bdm = [{ source_type: 'volume', destination_type: 'volume', uuid: vol.id, device_name: '/srv/api', boot_index: -1 }];
      const r = await fetch(`${base}/compute/v2.1/servers`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          server: { name: 'bdm1', imageRef: imageId, flavorRef: '1', networks: 'none', block_device_mapping_v2: bdm },
        }),
      });
      expect(r.status).toBe(202);
      const id = ((await r.json()) as { server: { id: string } }).server.id;
      await until(
        () =>
          /ACTIVE|ERROR/.test(
            execFileSync(process.execPath, [BIN, 'server', 'show', id, '-f', 'value', '-c', 'status'], {
              env: cliEnv(root),
              encoding: 'utf8',
            }),
          ),
        30_000,
      );
      expect((await inside('bdm1', 'echo via-api > /srv/api/f && grep -c " /srv/api " /proc/mounts')).stdout).toBe('1\n');
      expect(readFileSync(join(vol.path, 'f'), 'utf8')).toBe('via-api\n');
      const att = await fetch(`${base}/compute/v2.1/servers/${id}/os-volume_attachments`, { headers });
      expect(((await att.json()) as { volumeAttachments: unknown[] }).volumeAttachments).toEqual([
        { id: vol.id, volumeId: vol.id, serverId: id, device: '/srv/api', tag: null, delete_on_termination: false },
      ]);
      // the same volume again: in use, Nova's 400, and no server made
      const again = await fetch(`${base}/compute/v2.1/servers`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          server: { name: 'bdm2', imageRef: imageId, flavorRef: '1', networks: 'none', block_device_mapping_v2: bdm },
        }),
      });
      expect(again.status).toBe(400);
      expect(((await again.json()) as { badRequest: { message: string } }).badRequest.message).toBe(
        `Invalid volume: volume ${vol.id} status must be available, but it is in-use (server "bdm1")`,
      );
    } finally {
      srv.kill('SIGTERM');
      await new Promise((r) => srv.on('close', r));
      rmSync(join(root, 'clouds.yaml'), { force: true });
    }
    expect(await ok(['server', 'list', '-f', 'value', '-c', 'Name'])).toBe('bdm1\n');
    await ok(['server', 'delete', 'bdm1']);
  }, 90_000);

  it('a server with a sized volume is refused by export and migrate in one sentence, nothing claimed or written', async (ctx) => {
    ctx.skip(!canLoop, NO_LOOP);
    await ok(['volume', 'create', '--size', '16M', 'img1']);
    await create('sz1', ['--volume', 'img1:/data']);
    const sentence = (verb: string) =>
      `novabox: server "sz1" has the sized volume "img1" (an ext4 image) attached, and a server stream carries only directory volumes: it cannot be ${verb}; detach it first ("novabox server remove volume sz1 img1")\n`;
    const mig = await nb(['server', 'migrate', 'sz1', '--to', 'exec:false']);
    expect(mig.stderr).toBe(sentence('migrated'));
    expect(mig.exitCode).toBe(4);
    await ok(['server', 'stop', 'sz1']);
    const out = join(root, 'sz1.stream');
    const exp = await nb(['server', 'export', 'sz1', '--file', out]);
    expect(exp.stderr).toBe(sentence('exported'));
    expect(exp.exitCode).toBe(4);
    expect(existsSync(out)).toBe(false);
    const shown = JSON.parse(await ok(['server', 'show', 'sz1', '-f', 'json']));
    expect(shown).toMatchObject({ status: 'SHUTOFF', 'OS-EXT-STS:task_state': null });
    await ok(['server', 'delete', 'sz1']);
  }, 90_000);

  it('sized volumes: bad sizes are one sentence and make nothing', async (ctx) => {
    ctx.skip(!canLoop, NO_LOOP);
    for (const [size, message] of [
      ['0', 'invalid volume size "0": a sized volume is at least 16MiB'],
      ['1M', 'invalid volume size "1M": a sized volume is at least 16MiB'],
      ['ten', 'invalid volume size "ten": expected a number of GiB or a size with a unit (512M, 2G, 1T)'],
      ['-5', 'invalid volume size "-5": expected a number of GiB or a size with a unit (512M, 2G, 1T)'],
      ['2P', 'invalid volume size "2P": at most 1PiB'],
    ]) {
      const r = await nb(['volume', 'create', '--size', size, 'bad']);
      expect(r.stderr).toBe(`novabox: ${message}\n`);
      expect(r.exitCode).toBe(2);
    }
    const huge = await nb(['volume', 'create', '--size', '1000T', 'bad']);
    expect(huge.stderr).toMatch(/^novabox: a 1000TiB volume does not fit: the filesystem of \/\S+ is [\d.]+[GT]iB in all\n$/);
    expect(huge.exitCode).toBe(2);
    expect((await ok(['volume', 'list', '-f', 'value'])).trim()).toBe('');
    expect(volumeDirs()).toEqual([]);
  });
});

describe.skipIf(!isRoot)('shiftTree (root: chown)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-shift-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('moves owners from one range to another, keeps ids outside it, set-id bits and symlinks (never followed)', () => {
    const outside = join(tmpdir(), `nbx-shift-target-${process.pid}`);
    writeFileSync(outside, 'x');
    try {
      mkdirSync(join(dir, 'd'));
      writeFileSync(join(dir, 'd', 'f'), 'f');
      writeFileSync(join(dir, 'suid'), 's');
      symlinkSync(outside, join(dir, 'link'));
      chownSync(dir, 100000, 100000);
      chownSync(join(dir, 'd'), 100005, 100007);
      chownSync(join(dir, 'd', 'f'), 7, 7); // outside the range: kept
      chownSync(join(dir, 'suid'), 100000, 100000);
      chmodSync(join(dir, 'suid'), 0o6755);
      lchownSync(join(dir, 'link'), 100001, 100001);
      expect(shiftTree(dir, { uid: 100000, gid: 100000 }, { uid: 300000, gid: 400000 })).toBe(4);
      expect(statSync(dir).uid).toBe(300000);
      expect([statSync(join(dir, 'd')).uid, statSync(join(dir, 'd')).gid]).toEqual([300005, 400007]);
      expect(statSync(join(dir, 'd', 'f')).uid).toBe(7);
      expect(statSync(join(dir, 'suid')).mode & 0o7777).toBe(0o6755);
      expect(statSync(join(dir, 'suid')).gid).toBe(400000);
      expect(lstatSync(join(dir, 'link')).uid).toBe(300001);
      expect(statSync(outside).uid).toBe(0);
      expect(shiftTree(dir, { uid: 300000, gid: 400000 }, { uid: 300000, gid: 400000 })).toBe(0);
    } finally {
      rmSync(outside, { force: true });
    }
  });
});

/** A character device like /dev/null (host root may mknod in a volume). */
function mknod(path: string): void {
  execFileSync('mknod', [path, 'c', '1', '3']);
}

/** A user xattr set with Python's os.setxattr; false where the filesystem has none. */
function setXattr(path: string, name: string, value: string): boolean {
  try {
    execFileSync('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())', path, name, value], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

function getXattr(path: string, name: string): string {
  return execFileSync('python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], sys.argv[2]).decode(), end="")', path, name], {
    encoding: 'utf8',
  });
}
