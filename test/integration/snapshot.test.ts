/**
 * Snapshots for real: `server image create` of running servers (frozen while packed),
 * servers booted from the snapshot, a writer running during the snapshot, and a
 * snapshot command killed with SIGKILL. Census checked after every test.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { BIN, cliEnv, runCli, tempRoot } from '../helpers/run-cli.js';
import { getXattr, setXattr, sh } from '../helpers/image-fixtures.js';
import { hasGnuTar } from '../../src/compute/snapshot.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('novabox server image create (root, real overlays)', () => {
  let root: string;
  let removeRoot: () => void;
  let before: Census;
  const nb = (args: string[]) => runCli(args, { root, timeoutMs: 60_000 });
  const idOf = async (server: string) => (await nb(['server', 'show', server, '-f', 'value', '-c', 'id'])).stdout.trim();
  const upper = async (server: string) => join(root, 'servers', await idOf(server), 'upper');
  const exec = async (server: string, script: string) => {
    const r = await nb(['server', 'exec', server, '--', 'sh', '-c', script]);
    expect(r.stderr).toBe('');
    return r.stdout;
  };
  const freezerState = (id: string): string | undefined => {
    for (const p of [
      `/sys/fs/cgroup/freezer/${cliEnv(root).NOVABOX_CGROUP_PARENT}/${id}/freezer.state`,
      `/sys/fs/cgroup/${cliEnv(root).NOVABOX_CGROUP_PARENT}/${id}/cgroup.freeze`,
    ]) {
      if (existsSync(p)) return readFileSync(p, 'utf8').trim();
    }
    return undefined;
  };

  beforeAll(async () => {
    ({ root, remove: removeRoot } = tempRoot('nbx-snap-'));
    expect((await nb(['image', 'show', 'busybox', '-f', 'value', '-c', 'status'])).stdout).toBe('active\n');
  });
  afterAll(() => removeRoot?.());
  beforeEach(() => {
    before = census(root);
  });
  afterEach(async () => {
    for (const s of JSON.parse((await nb(['server', 'list', '-f', 'json'])).stdout || '[]') as { ID: string }[])
      await nb(['server', 'delete', '--force', s.ID]);
    for (const i of JSON.parse((await nb(['image', 'list', '-f', 'json'])).stdout || '[]') as { Name: string }[])
      if (i.Name !== 'busybox') await nb(['image', 'delete', i.Name]);
    const after = census(root);
    const strip = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')) });
    expect(strip(after)).toEqual(strip(before));
    expect(existsSync(join(root, 'tmp')) ? readdirSync(join(root, 'tmp')) : []).toEqual([]);
  });

  // one stat and one md5sum for the whole tree (few forks: the QEMU guest runs them under TCG)
  const TREE = 'find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o';
  const STATE = `${TREE} -print | sort | xargs stat -c '%n %F %a %u:%g %h'; ${TREE} -type f -print | sort | xargs md5sum`;

  it('snapshots a running server; a server from the snapshot has the same files, deletions, owners, modes, xattrs and hard links', async () => {
    // --network none: the bridge network binds /etc/hosts, /etc/hostname (which differs per
    // server) and /etc/resolv.conf over the image's, and this test removes /etc/hosts.
    expect(
      (await nb(['server', 'create', '--network', 'none', '--image', 'busybox', '--flavor', 'm1.tiny', '--property', 'role=src', 'src1']))
        .exitCode,
    ).toBe(0);
    await exec(
      'src1',
      [
        'mkdir -p /srv/app /srv/opq && echo hello > /srv/app/a && ln /srv/app/a /srv/app/a-link',
        'dd if=/dev/urandom of=/srv/app/blob bs=1k count=300 2>/dev/null',
        'echo x > /srv/app/suid && chown 1000:50 /srv/app/suid && chmod 4750 /srv/app/suid',
        'rm /etc/hosts && rm -rf /var && rm /bin/vi',
        'echo base > /srv/opq/keep',
        'ln -s /srv/app/a /srv/app/sym && mkfifo /srv/app/fifo',
      ].join(' && '),
    );
    setXattr(join(await upper('src1'), 'srv/app/a'), 'trusted.novabox.snap', 'yes');
    const want = await exec('src1', STATE);
    expect(want).toContain('/srv/app/a-link');
    const r = await nb(['server', 'image', 'create', '--name', 'snap1', '--wait', 'src1', '-f', 'json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const img = JSON.parse(r.stdout);
    expect(img).toMatchObject({
      name: 'snap1',
      status: 'active',
      visibility: 'private',
      properties: { image_type: 'snapshot', base_image_name: 'busybox', novabox_source: 'snapshot' },
    });
    const layers = img.properties.layers.split(',');
    expect(layers).toHaveLength(2);
    expect(layers[0]).toBe(JSON.parse((await nb(['image', 'show', 'busybox', '-f', 'json'])).stdout).properties.layers);
    // the source keeps running, thawed, with its action recorded
    const src = JSON.parse((await nb(['server', 'show', 'src1', '-f', 'json'])).stdout);
    expect(src).toMatchObject({ status: 'ACTIVE', 'OS-EXT-STS:task_state': null });
    expect(freezerState(src.id)).toMatch(/^(THAWED|0)$/);
    const events = JSON.parse((await nb(['server', 'event', 'list', 'src1', '-f', 'json'])).stdout) as { Action: string }[];
    expect(events.map((e) => e.Action)).toContain('createImage');
    // the new layer is its blob until the first boot makes its directory (with GNU tar;
    // without it, as in the QEMU guest, the snapshot writes the directory at once)
    const layerDir = join(root, 'layers/sha256', layers[1].slice(7));
    expect(existsSync(layerDir)).toBe(!hasGnuTar());
    // the blob is an OCI layer: OCI whiteouts
    const blob = join(root, 'blobs/sha256', layers[1].slice(7));
    // keyed by its diff id: the sha256 the packer computed while writing is the file's
    expect(`sha256:${createHash('sha256').update(readFileSync(blob)).digest('hex')}`).toBe(layers[1]);
    const names = sh('tar', ['-tf', blob]).split('\n');
    expect(names).toEqual(expect.arrayContaining(['etc/.wh.hosts', '.wh.var', 'srv/app/a-link']));
    // a server from the snapshot: the same tree
    expect((await nb(['server', 'create', '--network', 'none', '--image', 'snap1', '--flavor', 'm1.tiny', 'dst1'])).exitCode).toBe(0);
    expect(await exec('dst1', STATE)).toBe(want);
    // the layer dir is in overlay form: whiteouts are 0/0 devices, the xattr is there
    expect(sh('stat', ['-c', '%F %t:%T', join(layerDir, 'etc/hosts')]).trim()).toBe('character special file 0:0');
    expect(getXattr(join(layerDir, 'srv/app/a'), 'trusted.novabox.snap')).toBe('yes');
    expect(await exec('dst1', 'test -e /etc/hosts || echo gone; test -e /var || echo gone; cat /srv/app/sym')).toBe('gone\ngone\nhello\n');
    // the snapshot of a stopped server works too, and its image is refused for delete while used
    expect((await nb(['server', 'stop', 'src1'])).exitCode).toBe(0);
    const s2 = await nb(['server', 'image', 'create', '--name', 'snap2', 'src1', '-f', 'value', '-c', 'status']);
    expect(s2.stdout).toBe('active\n');
    expect(await exec('dst1', 'echo ok')).toBe('ok\n');
    expect((await nb(['image', 'delete', 'snap1'])).exitCode).toBe(4);
    // refused input changes nothing: no new instance action, no task left on the server
    const eventCount = async () => (JSON.parse((await nb(['server', 'event', 'list', 'src1', '-f', 'json'])).stdout) as unknown[]).length;
    const actionsBefore = await eventCount();
    // (names are free text and may repeat, as in Glance: only too long or empty is refused)
    expect((await nb(['server', 'image', 'create', '--name', 'x'.repeat(256), 'src1'])).exitCode).toBe(2);
    expect((await nb(['server', 'image', 'create', '--name', '', 'src1'])).exitCode).toBe(2);
    expect(await eventCount()).toBe(actionsBefore);
    expect(JSON.parse((await nb(['server', 'show', 'src1', '-f', 'json'])).stdout)).toMatchObject({ 'OS-EXT-STS:task_state': null });
    expect((await nb(['server', 'image', 'create', '--name', 'x', 'nosuch'])).exitCode).toBe(3);
  }, 120_000);

  it('is consistent while a writer runs inside, and the server keeps running', async () => {
    expect((await nb(['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', 'w1'])).exitCode).toBe(0);
    // each file is written under a temporary name and renamed: a complete file or none
    await exec(
      'w1',
      'mkdir -p /w && (i=0; while [ $i -lt 200000 ]; do echo "$i $i $i $i" > /w/.tmp; mv /w/.tmp /w/$i; i=$((i+1)); done) >/dev/null 2>&1 </dev/null &',
    );
    await new Promise((r) => setTimeout(r, 300));
    const r = await nb(['server', 'image', 'create', '--name', 'wsnap', 'w1']);
    expect(r.exitCode).toBe(0);
    const id = await idOf('w1');
    expect(freezerState(id)).toMatch(/^(THAWED|0)$/);
    const count = () => exec('w1', 'ls /w | wc -l').then(Number);
    const c1 = await count();
    await new Promise((r2) => setTimeout(r2, 200));
    expect(await count()).toBeGreaterThan(c1); // the writer still runs
    expect((await nb(['server', 'create', '--image', 'wsnap', '--flavor', 'm1.tiny', 'w2'])).exitCode).toBe(0);
    const files = (await exec('w2', 'ls /w'))
      .split('\n')
      .filter((f) => /^\d+$/.test(f))
      .map(Number)
      .sort((a, b) => a - b);
    expect(files.length).toBeGreaterThan(10);
    expect(files).toEqual(files.map((_, i) => i)); // 0..N-1, no holes
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
    const bad = await exec('w2', 'for f in /w/[0-9]*; do n=${f#/w/}; [ "$(cat $f)" = "$n $n $n $n" ] || echo "$f"; done');
    expect(bad).toBe('');
  }, 120_000);

  it('rebuilds a server from another image keeping its id, name and metadata, in the same power state', async () => {
    expect((await nb(['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', '--property', 'k=v', 'rb1'])).exitCode).toBe(0);
    await exec('rb1', 'echo old > /root/old');
    expect((await nb(['server', 'image', 'create', '--name', 'rbimg', 'rb1'])).exitCode).toBe(0);
    await exec('rb1', 'echo newer > /root/newer');
    const before1 = JSON.parse((await nb(['server', 'show', 'rb1', '-f', 'json'])).stdout);
    const r = await nb(['server', 'rebuild', '--image', 'rbimg', '--wait', 'rb1', '-f', 'json']);
    expect(r.stderr).toBe('');
    const after1 = JSON.parse(r.stdout);
    expect(after1).toMatchObject({ id: before1.id, name: 'rb1', status: 'ACTIVE', properties: { k: 'v' } });
    expect(after1.image).toMatch(/^rbimg /);
    expect(await exec('rb1', 'cat /root/old; test -e /root/newer || echo fresh')).toBe('old\nfresh\n');
    const events = JSON.parse((await nb(['server', 'event', 'list', 'rb1', '-f', 'json'])).stdout) as { Action: string }[];
    expect(events.map((e) => e.Action)).toContain('rebuild');
    // from SHUTOFF it stays SHUTOFF
    expect((await nb(['server', 'stop', 'rb1'])).exitCode).toBe(0);
    expect((await nb(['server', 'rebuild', '--image', 'busybox', 'rb1'])).exitCode).toBe(0);
    expect(JSON.parse((await nb(['server', 'show', 'rb1', '-f', 'json'])).stdout)).toMatchObject({ status: 'SHUTOFF', id: before1.id });
    expect((await nb(['server', 'start', 'rb1'])).exitCode).toBe(0);
    expect(await exec('rb1', 'test -e /root/old || echo fresh')).toBe('fresh\n');
    // rbimg is no longer used by rb1: it may go
    expect((await nb(['image', 'delete', 'rbimg'])).exitCode).toBe(0);
    expect((await nb(['server', 'rebuild', '--image', 'nosuch', 'rb1'])).exitCode).toBe(3);
  }, 120_000);

  it('ephemeral servers keep their writable layer on a tmpfs inside the server, gone when stopped', async () => {
    const c = await nb(['server', 'create', '--ephemeral', '--image', 'busybox', '--flavor', 'm1.tiny', 'eph1']);
    expect(c.stderr).toBe('');
    await exec('eph1', 'echo x > /root/f');
    expect(readdirSync(await upper('eph1'))).toEqual([]); // nothing on the host disk
    expect(sh('sh', ['-c', `grep -c ' ${root}' /proc/self/mountinfo || true`]).trim()).toBe('0'); // nor in the host's mounts
    expect(await exec('eph1', 'grep -c " / / .*overlay" /proc/self/mountinfo; cat /root/f')).toBe('1\nx\n');
    const snap = await nb(['server', 'image', 'create', '--name', 'ephsnap', 'eph1']);
    expect(snap.exitCode).toBe(4);
    expect(snap.stderr).toMatch(/ephemeral/);
    expect((await nb(['server', 'stop', 'eph1'])).exitCode).toBe(0);
    expect((await nb(['server', 'start', 'eph1'])).exitCode).toBe(0);
    expect(await exec('eph1', 'test -e /root/f || echo gone')).toBe('gone\n');
  }, 120_000);

  it('kill -9 during a snapshot: no active image, the server thawed and running, no temp dirs after the next command', async () => {
    expect((await nb(['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', 'k1'])).exitCode).toBe(0);
    const up = await upper('k1');
    sh('mkdir', ['-p', join(up, 'root')]);
    for (let i = 0; i < 6; i++) sh('dd', ['if=/dev/urandom', `of=${join(up, `root/big${i}`)}`, 'bs=1M', 'count=40', 'status=none']);
    writeFileSync(join(up, 'root/marker'), 'm\n');
    const child = spawn(process.execPath, [BIN, 'server', 'image', 'create', '--name', 'ksnap', 'k1'], {
      env: cliEnv(root),
      stdio: 'ignore',
    });
    // until the snapshot is under way: by the clock, since a cold CLI takes ~50 ms here and seconds in the TCG guest
    const deadline = Date.now() + 60_000;
    while (!(existsSync(join(root, 'tmp')) && readdirSync(join(root, 'tmp')).some((d) => d.startsWith('snap-')))) {
      if (Date.now() > deadline) throw new Error('the snapshot never started packing');
      await new Promise((r) => setTimeout(r, 2));
    }
    await new Promise((r) => setTimeout(r, 15));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const list = JSON.parse((await nb(['image', 'list', '-f', 'json'])).stdout) as { Name: string; Status: string }[];
    const k = list.find((i) => i.Name === 'ksnap');
    // killed mid-way (240 MiB take far longer to pack than the 15 ms we waited)
    expect(k?.Status).toBe('killed');
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    const s = JSON.parse((await nb(['server', 'show', 'k1', '-f', 'json'])).stdout);
    expect(s).toMatchObject({ status: 'ACTIVE', 'OS-EXT-STS:task_state': null });
    expect(freezerState(s.id)).toMatch(/^(THAWED|0)$/);
    expect(await exec('k1', 'cat /root/marker')).toBe('m\n');
  }, 120_000);
});
