/**
 * CRIU and a running server (issue 18, live migration's first half): where `criu check`
 * passes (the pure cgroup v2 guest: Debian 12's CRIU 3.17.1 on Debian's 6.1 kernel; it
 * fails on newer kernels, "vdso: Unexpected rt vDSO area bounds"), a server with a process
 * `server exec` left running is dumped whole (its pid, mount, uts, ipc and network
 * namespaces) while it keeps running, and the process keeps counting. What this needs of
 * novabox: every command leads a session of its own (a session leader outside the pid
 * namespace is refused), and pid 1's /dev/null stdin is the server's own (a file on a host
 * mount outside the server is refused).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseConstructor } from '../../src/store/sqlite.js';
import { criuCheck, criuDumpArgs, criuRestoreArgs, runCriu } from '../../src/runtime/criu.js';
import { morePreDumps, PREDUMP_ROUNDS } from '../../src/compute/migration/live.js';
import { initCopy } from '../../src/runtime/server.js';
import { macFor, parseIp } from '../../src/runtime/network/ipam.js';
import { census, cgroupParentFor, type Census } from '../helpers/census.js';
import { BIN, ROOT, cliEnv, runCli, tempRoot } from '../helpers/run-cli.js';
import { skipEachIf } from '../helpers/skip.js';

const isRoot = process.getuid?.() === 0;
const Database = Sqlite as unknown as DatabaseConstructor;

/** The counter's last whole line in its open file (appended to, so never caught empty). */
function lastCount(file: string): number {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  return Number(lines.at(-1));
}

/** The counter's /cnt: `echo > /cnt` truncates first, so an empty read is a moment between; read again. */
async function readCount(file: string): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const t = readFileSync(file, 'utf8').trim();
    if (t) return Number(t);
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error(`${file} stayed empty`);
}
const check = isRoot ? criuCheck() : ({ ok: false, reason: 'not root' } as const);

describe.skipIf(!isRoot)('CRIU dumps a running server (root, where "criu check" passes)', () => {
  skipEachIf(check.ok ? undefined : `"criu check" fails here: ${check.reason}`);
  let r: ReturnType<typeof tempRoot>;
  let before: Census;
  const nb = (args: string[]) => runCli(args, { root: r.root, timeoutMs: 60_000 });
  const ok = async (args: string[]) => {
    const res = await nb(args);
    expect(res.stderr).toBe('');
    expect(res.exitCode).toBe(0);
    return res.stdout;
  };

  beforeAll(() => {
    if (!check.ok) return;
    r = tempRoot('nbx-criu-');
    before = census(r.root);
  });
  afterAll(() => {
    if (!r) return;
    expect(census(r.root)).toEqual(before);
    r.remove();
  });

  it.each(['auto', 'host'])(
    'a server (--userns %s) with a counter left by server exec is dumped while it runs (criu dump --leave-running) and keeps counting',
    async (userns) => {
      await ok(['server', 'create', '--network', 'none', '--userns', userns, '--image', 'busybox', '--flavor', 'm1.tiny', 'dumped']);
      const images = mkdtempSync(join(tmpdir(), 'nbx-criu-img-'));
      try {
        await ok([
          'server',
          'exec',
          'dumped',
          '--',
          'sh',
          '-c',
          'i=0; (exec 3>/tmp/open; while :; do i=$((i+1)); echo $i > /cnt; echo $i >&3; sleep 0.1; done) >/dev/null 2>&1 & sleep 0.3',
        ]);
        const pid = (await ok(['server', 'show', 'dumped', '-f', 'value', '-c', 'pid'])).trim();
        expect(pid).toMatch(/^\d+$/);
        const d = spawnSync(
          'criu',
          [
            'dump',
            '-t',
            pid,
            '-D',
            images,
            '-o',
            'dump.log',
            '--leave-running',
            '--manage-cgroups',
            '--network-lock',
            'nftables',
            '--external',
            'mnt[]',
            '--shell-job',
          ],
          { encoding: 'utf8', timeout: 60_000 },
        );
        const log = existsSync(join(images, 'dump.log'))
          ? spawnSync('grep', ['-E', 'Error', join(images, 'dump.log')], { encoding: 'utf8' }).stdout
          : '';
        expect(d.status, `${d.stderr}\n${log}`).toBe(0);
        expect(existsSync(join(images, 'inventory.img'))).toBe(true);
        // the appended file's last line, never /cnt, which `echo > /cnt` truncates before each count
        const count = async () => Number((await ok(['server', 'exec', 'dumped', '--', 'tail', '-n', '1', '/tmp/open'])).trim());
        const first = await count();
        expect(first).toBeGreaterThan(0);
        await new Promise((res) => setTimeout(res, 500));
        const later = await count();
        expect(later).toBeGreaterThan(first);
        expect(await ok(['server', 'show', 'dumped', '-f', 'value', '-c', 'status'])).toBe('ACTIVE\n');
      } finally {
        rmSync(images, { recursive: true, force: true });
        await nb(['server', 'delete', '--force', 'dumped']);
      }
    },
    120_000,
  );

  it('a server (--userns host) with a counter and an open file: pre-dumped while it runs, dumped, restored under its root mounted again: pid 1 is novabox-init again, the counter goes on from where it was, the file is still open', async () => {
    await ok(['server', 'create', '--network', 'none', '--userns', 'host', '--image', 'busybox', '--flavor', 'm1.tiny', 'moved']);
    const base = mkdtempSync(join(tmpdir(), 'nbx-criu-img-'));
    const root = mkdtempSync(join(tmpdir(), 'nbx-criu-root-'));
    let restored = 0;
    let cgroup = '';
    try {
      await ok([
        'server',
        'exec',
        'moved',
        '--',
        'sh',
        '-c',
        'i=0; (exec 3>/tmp/open; while :; do i=$((i+1)); echo $i > /cnt; echo $i >&3; sleep 0.1; done) >/dev/null 2>&1 & sleep 0.3',
      ]);
      const id = (await ok(['server', 'show', 'moved', '-f', 'value', '-c', 'id'])).trim();
      const pid = Number((await ok(['server', 'show', 'moved', '-f', 'value', '-c', 'pid'])).trim());
      expect(readlinkSync(`/proc/${pid}/exe`)).toBe('/dev/.novabox-init');
      // its root as the target rebuilds it: the same layers and writable layer
      const rootLine = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[4] === '/');
      const fields = rootLine?.split(' ') ?? [];
      const overlay = fields[fields.indexOf('-') + 3];
      expect(overlay).toMatch(/lowerdir=.*upperdir=.*workdir=/);
      mkdirSync(join(base, '1'));
      mkdirSync(join(base, '2'));
      const t0 = performance.now();
      const pre = runCriu(criuDumpArgs(pid, { images: join(base, '1'), pre: true, log: 'pre.log' }), join(base, '1'), 'pre.log');
      expect(pre, pre.ok ? '' : pre.reason).toMatchObject({ ok: true });
      // still running after the pre-dump
      // the appended file's last line, never /cnt, which `echo > /cnt` truncates before each count
      const count = async () => Number((await ok(['server', 'exec', 'moved', '--', 'tail', '-n', '1', '/tmp/open'])).trim());
      const a = await count();
      expect(a).toBeGreaterThan(0);
      await new Promise((res) => setTimeout(res, 300));
      expect(await count()).toBeGreaterThan(a);
      const down = performance.now();
      const dump = runCriu(criuDumpArgs(pid, { images: join(base, '2'), prev: '../1' }), join(base, '2'), 'dump.log');
      expect(dump, dump.ok ? '' : dump.reason).toMatchObject({ ok: true });
      const upper = /upperdir=([^,]+)/.exec(overlay)![1];
      const atDump = lastCount(join(upper, 'tmp/open'));
      // the source's monitor saw its tree go (on another host that is the source's business)
      for (let i = 0; i < 100 && (await ok(['server', 'show', 'moved', '-f', 'value', '-c', 'status'])) !== 'SHUTOFF\n'; i++)
        await new Promise((res) => setTimeout(res, 100));
      const waited = performance.now();
      expect(spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', overlay, root]).status).toBe(0);
      const pidfile = join(base, '2', 'restored.pid');
      const res = runCriu(
        criuRestoreArgs({ images: join(base, '2'), root, pidfile, initCopy: initCopy(undefined, r.root) }),
        join(base, '2'),
        'restore.log',
      );
      expect(res, res.ok ? '' : res.reason).toMatchObject({ ok: true });
      const up = performance.now();
      restored = Number(readFileSync(pidfile, 'utf8').trim());
      cgroup = readFileSync(`/proc/${restored}/cgroup`, 'utf8').trim().split('::')[1] ?? '';
      expect(cgroup).toContain(id);
      // downtime: the final dump, the root mounted again and the restore (the wait for the
      // source's monitor above is this one-host test's, not a migration's)
      const downtime = dump.ms + (up - waited);
      console.log(
        `criu (guest): pre-dump ${pre.ms.toFixed(0)} ms, dump ${dump.ms.toFixed(0)} ms, restore ${res.ms.toFixed(0)} ms; downtime ${downtime.toFixed(0)} ms, total ${(down - t0 + downtime).toFixed(0)} ms`,
      );
      expect(readlinkSync(`/proc/${restored}/exe`)).toBe('/dev/.novabox-init');
      expect(readFileSync(`/proc/${restored}/comm`, 'utf8')).toBe('novabox-init\n');
      const cnt = () => readCount(`/proc/${restored}/root/cnt`);
      const first = await cnt();
      expect(first).toBeGreaterThanOrEqual(atDump);
      expect(first).toBeLessThan(atDump + 30);
      await new Promise((res) => setTimeout(res, 500));
      expect(await cnt()).toBeGreaterThan(first);
      // the counter's fd 3 is still /tmp/open, in the restored pid namespace
      const ns = readlinkSync(`/proc/${restored}/ns/pid`);
      const open = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readlinkSync(`/proc/${p}/ns/pid`) === ns && readlinkSync(`/proc/${p}/fd/3`) === '/tmp/open';
          } catch {
            return false;
          }
        });
      expect(open.length).toBeGreaterThan(0);
      // and it is written through: its last line is past the dump's
      const text = readFileSync(`/proc/${restored}/root/tmp/open`, 'utf8');
      const st = statSync(`/proc/${restored}/root/tmp/open`);
      expect(lastCount(`/proc/${restored}/root/tmp/open`), `size ${st.size}, tail ${JSON.stringify(text.slice(-60))}`).toBeGreaterThan(
        atDump,
      );
    } finally {
      if (restored) {
        // the restored tree has no monitor yet: end it by hand, its cgroup too
        spawnSync('kill', ['-KILL', String(restored)]);
        for (let i = 0; i < 100 && existsSync(`/proc/${restored}`); i++) await new Promise((res) => setTimeout(res, 50));
        for (let i = 0; cgroup && i < 50; i++) {
          try {
            rmdirSync(join('/sys/fs/cgroup', cgroup));
            break;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
            await new Promise((res) => setTimeout(res, 50));
          }
        }
      }
      spawnSync('umount', [root]);
      rmSync(root, { recursive: true, force: true });
      rmSync(base, { recursive: true, force: true });
      await nb(['server', 'delete', '--force', 'moved']);
    }
  }, 180_000);

  it("between two state roots: a server with a counter and an open file pre-dumped and dumped on A, its stream exported from A and imported on B, its images restored on B under B's root and cgroup: the counter goes on, the file is still open", async () => {
    const b = tempRoot('nbx-criu-b-');
    const beforeB = census(b.root);
    const nbB = (args: string[]) => runCli(args, { root: b.root, timeoutMs: 60_000 });
    const base = mkdtempSync(join(tmpdir(), 'nbx-criu-img-'));
    const root = mkdtempSync(join(tmpdir(), 'nbx-criu-root-'));
    const stream = join(base, 'server.nbx');
    let restored = 0;
    let cgroup = '';
    try {
      await ok(['server', 'create', '--network', 'none', '--userns', 'host', '--image', 'busybox', '--flavor', 'm1.tiny', 'mover']);
      await ok([
        'server',
        'exec',
        'mover',
        '--',
        'sh',
        '-c',
        'i=0; (exec 3>/tmp/open; while :; do i=$((i+1)); echo $i > /cnt; echo $i >&3; sleep 0.1; done) >/dev/null 2>&1 & sleep 0.3',
      ]);
      const id = (await ok(['server', 'show', 'mover', '-f', 'value', '-c', 'id'])).trim();
      const pid = Number((await ok(['server', 'show', 'mover', '-f', 'value', '-c', 'pid'])).trim());
      const fields =
        readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
          .split('\n')
          .find((l) => l.split(' ')[4] === '/')
          ?.split(' ') ?? [];
      const overlayA = fields[fields.indexOf('-') + 3];
      mkdirSync(join(base, '1'));
      mkdirSync(join(base, '2'));
      const pre = runCriu(criuDumpArgs(pid, { images: join(base, '1'), pre: true, log: 'pre.log' }), join(base, '1'), 'pre.log');
      expect(pre, pre.ok ? '' : pre.reason).toMatchObject({ ok: true });
      const dump = runCriu(criuDumpArgs(pid, { images: join(base, '2'), prev: '../1' }), join(base, '2'), 'dump.log');
      expect(dump, dump.ok ? '' : dump.reason).toMatchObject({ ok: true });
      const atDump = lastCount(join(/upperdir=([^,]+)/.exec(overlayA)![1], 'tmp/open'));
      for (let i = 0; i < 100 && (await ok(['server', 'show', 'mover', '-f', 'value', '-c', 'status'])) !== 'SHUTOFF\n'; i++)
        await new Promise((res) => setTimeout(res, 100));
      // the writable layer as it was at the dump, through novabox's own stream
      await ok(['server', 'export', 'mover', '--file', stream]);
      const imported = await nbB(['server', 'import', '--file', stream, '-f', 'value', '-c', 'id']);
      expect(imported.stderr).toBe('');
      expect(imported.stdout.trim()).toBe(id);
      // B's root for it: B's copies of the layers (content-addressed: the same names) and
      // B's writable layer of the server
      const overlayB = overlayA.split(r.root).join(b.root);
      expect(overlayB).not.toContain(r.root);
      for (const m of overlayB.matchAll(/(?:lowerdir|upperdir)=([^,]+)/g))
        for (const d of m[1].split(':')) expect(existsSync(d), d).toBe(true);
      mkdirSync(/workdir=([^,]+)/.exec(overlayB)![1], { recursive: true });
      expect(spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', overlayB, root]).status).toBe(0);
      // B's cgroup for the server, not A's
      const cgB = `/${cgroupParentFor(b.root)}/${id}`;
      const pidfile = join(base, '2', 'restored.pid');
      const copyB = initCopy(undefined, b.root);
      const res = runCriu(
        criuRestoreArgs({ images: join(base, '2'), root, pidfile, initCopy: copyB, cgroupRoot: cgB }),
        join(base, '2'),
        'restore.log',
      );
      expect(res, res.ok ? '' : res.reason).toMatchObject({ ok: true });
      restored = Number(readFileSync(pidfile, 'utf8').trim());
      cgroup = readFileSync(`/proc/${restored}/cgroup`, 'utf8').trim().split('::')[1] ?? '';
      expect(cgroup).toBe(cgB);
      // pid 1 runs from B's own copy of novabox-init now, not A's
      const exe = statSync(`/proc/${restored}/exe`);
      expect([exe.dev, exe.ino]).toEqual([statSync(copyB).dev, statSync(copyB).ino]);
      console.log(
        `criu (guest, A to B): pre-dump ${pre.ms.toFixed(0)} ms, dump ${dump.ms.toFixed(0)} ms, restore on B ${res.ms.toFixed(0)} ms`,
      );
      expect(readlinkSync(`/proc/${restored}/exe`)).toBe('/dev/.novabox-init');
      const cnt = () => readCount(`/proc/${restored}/root/cnt`);
      const first = await cnt();
      expect(first).toBeGreaterThanOrEqual(atDump);
      expect(first).toBeLessThan(atDump + 30);
      await new Promise((res) => setTimeout(res, 500));
      expect(await cnt()).toBeGreaterThan(first);
      // B's writable layer is the one written now
      expect(await readCount(join(/upperdir=([^,]+)/.exec(overlayB)![1], 'cnt'))).toBeGreaterThan(atDump);
      const ns = readlinkSync(`/proc/${restored}/ns/pid`);
      const open = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readlinkSync(`/proc/${p}/ns/pid`) === ns && readlinkSync(`/proc/${p}/fd/3`) === '/tmp/open';
          } catch {
            return false;
          }
        });
      expect(open.length).toBeGreaterThan(0);
    } finally {
      if (restored) {
        spawnSync('kill', ['-KILL', String(restored)]);
        for (let i = 0; i < 100 && existsSync(`/proc/${restored}`); i++) await new Promise((res) => setTimeout(res, 50));
        for (let i = 0; cgroup && i < 50; i++) {
          try {
            rmdirSync(join('/sys/fs/cgroup', cgroup));
            break;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
            await new Promise((res) => setTimeout(res, 50));
          }
        }
      }
      spawnSync('umount', [root]);
      rmSync(root, { recursive: true, force: true });
      rmSync(base, { recursive: true, force: true });
      await nb(['server', 'delete', '--force', 'mover']);
      await nbB(['server', 'delete', '--force', 'mover']);
      expect(census(b.root)).toEqual(beforeB);
      b.remove();
    }
  }, 180_000);
});

/** the migration records a root keeps of a server (os-migrations' rows) */
function migrationsOf(root: string, serverId: string) {
  const db = new Database(join(root, 'novabox.db'), { timeout: 10_000 });
  try {
    return db.prepare('SELECT kind, status FROM server_migrations WHERE server_id = ? ORDER BY id').all(serverId);
  } finally {
    db.close();
  }
}

function readlinkOr(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** `ip netns`: iproute2's ip, or in the guest (whose ip is busybox's) the copy shipped for criu */
function netnsTool(): string | undefined {
  for (const ip of ['ip', process.env.CR_IP_TOOL].filter((x): x is string => !!x))
    if (spawnSync(ip, ['netns', 'list'], { stdio: 'ignore' }).status === 0) return ip;
  return undefined;
}

describe.skipIf(!isRoot)('server migrate --live between two namespaced "hosts" (root, where "criu check" passes)', () => {
  const ip = isRoot ? netnsTool() : undefined;
  skipEachIf(!check.ok ? `"criu check" fails here: ${check.reason}` : ip ? undefined : 'no `ip netns` here (iproute2)');
  const tag = randomBytes(3).toString('hex');
  const nsA = `nbxl-a-${tag}`;
  const nsB = `nbxl-b-${tag}`;
  const IN_NS = join(ROOT, 'test/helpers/in-netns.sh');
  let a: ReturnType<typeof tempRoot>;
  let b: ReturnType<typeof tempRoot>;
  let beforeA: Census;
  let beforeB: Census;
  const inNs = (ns: string, root: string, args: string[]) =>
    new Promise<{ exitCode: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const c = spawn(IN_NS, [ns, process.execPath, BIN, ...args], { env: cliEnv(root), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d) => (stdout += d));
      c.stderr.on('data', (d) => (stderr += d));
      c.on('error', reject);
      c.on('close', (exitCode) => resolve({ exitCode, stdout, stderr }));
    });
  /** `--to` for B's `server receive`, in B's namespace and state root (`env`: more of its environment, as `VAR=x `) */
  const toB = (env = '') =>
    `exec:${IN_NS} ${nsB} env ${env}NOVABOX_ROOT=${b.root} NOVABOX_CGROUP_PARENT=${cgroupParentFor(b.root)} ${process.execPath} ${BIN} server receive`;
  const onA = (args: string[]) => inNs(nsA, a.root, args);
  const onB = (args: string[]) => inNs(nsB, b.root, args);
  const ok = async (p: Promise<{ exitCode: number | null; stdout: string; stderr: string }>) => {
    const r = await p;
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    return r.stdout;
  };

  beforeAll(() => {
    if (!check.ok || !ip) return;
    a = tempRoot('nbx-live-a-');
    b = tempRoot('nbx-live-b-');
    beforeA = census(a.root);
    beforeB = census(b.root);
    for (const ns of [nsA, nsB]) execFileSync(ip, ['netns', 'add', ns]);
  });
  afterAll(async () => {
    for (const [ns, r] of [
      [nsA, a],
      [nsB, b],
    ] as const) {
      if (!r) continue;
      const list = await inNs(ns, r.root, ['server', 'list', '-f', 'value', '-c', 'ID']);
      for (const id of list.stdout.split('\n').filter(Boolean)) await inNs(ns, r.root, ['server', 'delete', '--force', id]);
      if (ip) spawnSync(ip, ['netns', 'del', ns]);
    }
    if (a) expect(census(a.root)).toEqual(beforeA);
    if (b) expect(census(b.root)).toEqual(beforeB);
    a?.remove();
    b?.remove();
  });

  it("a --network none --userns host server with a counter and an open file moves live: ACTIVE on B and gone from A, the counter goes on from where it was, the file still open, pid 1 adopted by B's monitor (stop and delete work there), nothing left on either", async () => {
    const id = JSON.parse(
      await ok(
        onA(['server', 'create', '--network', 'none', '--userns', 'host', '--image', 'busybox', '--flavor', 'm1.tiny', 'lm', '-f', 'json']),
      ),
    ).id;
    await ok(
      onA([
        'server',
        'exec',
        'lm',
        '--',
        'sh',
        '-c',
        'i=0; (exec 3>/tmp/open; while :; do i=$((i+1)); echo $i > /cnt; echo $i >&3; sleep 0.1; done) >/dev/null 2>&1 & sleep 0.3',
      ]),
    );
    const count = async (on: typeof onA) => Number((await ok(on(['server', 'exec', 'lm', '--', 'tail', '-n', '1', '/tmp/open']))).trim());
    const before = await count(onA);
    expect(before).toBeGreaterThan(0);
    const to = toB();
    const m = await onA(['--debug', 'server', 'migrate', 'lm', '--live', '--to', to]);
    expect(m.exitCode, m.stderr).toBe(0);
    const said =
      /pre-dump (\d+) ms \((\d+) bytes\) in (\d+) rounds? \(pages ([\d/]+) bytes\), final dump (\d+) ms \((\d+) bytes, pages (\d+) bytes\), downtime (\d+) ms, total (\d+) ms/.exec(
        m.stderr,
      );
    expect(said, m.stderr).not.toBeNull();
    const [, pre, preBytes, rounds, pages, dump, dumpBytes, dumpPages, downtime, total] = said!;
    console.log(
      `live migrate (guest): pre-dump ${pre} ms (${preBytes} bytes) in ${rounds} rounds (pages ${pages}), final dump ${dump} ms (${dumpBytes} bytes, pages ${dumpPages}), downtime ${downtime} ms, total ${total} ms`,
    );
    // the pre-dump rounds (at most 3 by default) went on exactly while the dirty set shrank
    const dirty = pages.split('/').map(Number);
    expect(dirty.length).toBe(Number(rounds));
    expect(dirty.length).toBeGreaterThanOrEqual(1);
    expect(dirty.length).toBeLessThanOrEqual(PREDUMP_ROUNDS);
    for (let i = 0; i < dirty.length; i++) expect(morePreDumps(dirty.slice(0, i), PREDUMP_ROUNDS)).toBe(true);
    expect(morePreDumps(dirty, PREDUMP_ROUNDS)).toBe(false);
    expect(migrationsOf(a.root, id)).toEqual([{ kind: 'live-migration', status: 'confirmed' }]);
    // gone from A, ACTIVE on B under its id
    const gone = await onA(['server', 'show', 'lm']);
    expect(gone.exitCode).not.toBe(0);
    expect(JSON.parse(await ok(onB(['server', 'show', 'lm', '-f', 'json'])))).toMatchObject({ id, status: 'ACTIVE' });
    // the counter went on from where it was (not from 0), and keeps counting
    const after = await count(onB);
    expect(after).toBeGreaterThan(before);
    await new Promise((res) => setTimeout(res, 500));
    expect(await count(onB)).toBeGreaterThan(after);
    // pid 1 is novabox-init, restored, a child of B's monitor; the counter's fd 3 is still /tmp/open
    const pid = Number((await ok(onB(['server', 'show', 'lm', '-f', 'value', '-c', 'pid']))).trim());
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe('/dev/.novabox-init');
    // its network namespace is its own again: CRIU's lock table (--network-lock nftables) is gone
    expect(execFileSync('nsenter', ['-t', String(pid), '-n', 'nft', 'list', 'tables'], { encoding: 'utf8' })).not.toContain('CRIU-');
    const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
    expect(readFileSync(`/proc/${ppid}/comm`, 'utf8')).toBe('novabox-monitor\n');
    // its stdout is the log pipe B's monitor reads (criu --inherit-fd), not a pipe criu made up
    const out = readlinkSync(`/proc/${pid}/fd/1`);
    expect(out).toMatch(/^pipe:\[\d+\]$/);
    expect(readdirSync(`/proc/${ppid}/fd`).map((fd) => readlinkOr(`/proc/${ppid}/fd/${fd}`))).toContain(out);
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`${cgroupParentFor(b.root)}/${id}`);
    const ns = readlinkSync(`/proc/${pid}/ns/pid`);
    const open = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readlinkSync(`/proc/${p}/ns/pid`) === ns && readlinkSync(`/proc/${p}/fd/3`) === '/tmp/open';
        } catch {
          return false;
        }
      });
    expect(open.length).toBeGreaterThan(0);
    // the source's migration record and B's instance actions
    await ok(onB(['server', 'stop', 'lm']));
    expect(JSON.parse(await ok(onB(['server', 'show', 'lm', '-f', 'json'])))).toMatchObject({ status: 'SHUTOFF' });
    expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')).toBe(false);
    await ok(onB(['server', 'delete', 'lm']));
    expect((await onB(['server', 'show', 'lm'])).exitCode).not.toBe(0);
    expect(census(a.root)).toEqual(beforeA);
    expect(census(b.root)).toEqual(beforeB);
  }, 300_000);

  it('a default (--userns auto) server with a counter and an open file moves live: B leases the same id range (CRIU restores its user namespace with the dumped maps) and idmaps its root as a start does; the counter goes on, the file still open, stop and delete work on B; the range is released on A and held on B, nothing left on either', async () => {
    const created = JSON.parse(
      await ok(onA(['server', 'create', '--network', 'none', '--image', 'busybox', '--flavor', 'm1.tiny', 'lu', '-f', 'json'])),
    );
    const id = created.id;
    const shown = JSON.parse(await ok(onA(['server', 'show', 'lu', '-f', 'json'])));
    expect(shown.idmap).toMatch(/^uid 0 \d+ 65536, gid 0 \d+ 65536$/);
    const range = shown.idmap as string;
    await ok(
      onA([
        'server',
        'exec',
        'lu',
        '--',
        'sh',
        '-c',
        'i=0; (exec 3>/tmp/open; while :; do i=$((i+1)); echo $i > /cnt; echo $i >&3; sleep 0.1; done) >/dev/null 2>&1 & sleep 0.3',
      ]),
    );
    const count = async (on: typeof onA) => Number((await ok(on(['server', 'exec', 'lu', '--', 'tail', '-n', '1', '/tmp/open']))).trim());
    const before = await count(onA);
    expect(before).toBeGreaterThan(0);
    const to = toB();
    const m = await onA(['--debug', 'server', 'migrate', 'lu', '--live', '--to', to]);
    expect(m.exitCode, m.stderr).toBe(0);
    const said = /downtime (\d+) ms, total (\d+) ms/.exec(m.stderr);
    expect(said, m.stderr).not.toBeNull();
    console.log(`live migrate --userns auto (guest): downtime ${said![1]} ms, total ${said![2]} ms`);
    expect((await onA(['server', 'show', 'lu'])).exitCode).not.toBe(0);
    const onb = JSON.parse(await ok(onB(['server', 'show', 'lu', '-f', 'json'])));
    expect(onb).toMatchObject({ id, status: 'ACTIVE', idmap: range });
    // the range: released on A (no lease link left), held on B (one, the server's)
    expect(existsSync(join(a.root, 'idmap')) ? readdirSync(join(a.root, 'idmap')) : []).toEqual([]);
    expect(readdirSync(join(b.root, 'idmap')).filter((f) => /^\d+$/.test(f))).toHaveLength(1);
    const after = await count(onB);
    expect(after).toBeGreaterThan(before);
    await new Promise((res) => setTimeout(res, 500));
    expect(await count(onB)).toBeGreaterThan(after);
    const pid = Number((await ok(onB(['server', 'show', 'lu', '-f', 'value', '-c', 'pid']))).trim());
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe('/dev/.novabox-init');
    // its user namespace has the range's maps, and its root reads the layers' files as its own root's
    const base = Number(/^uid 0 (\d+)/.exec(range)![1]);
    expect(readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).map(Number)).toEqual([0, base, 65536]);
    expect((await ok(onB(['server', 'exec', 'lu', '--', 'stat', '-c', '%u:%g', '/bin/busybox']))).trim()).toBe('0:0');
    expect((await ok(onB(['server', 'exec', 'lu', '--', 'stat', '-c', '%u', '/cnt']))).trim()).toBe('0');
    const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
    expect(readFileSync(`/proc/${ppid}/comm`, 'utf8')).toBe('novabox-monitor\n');
    const ns = readlinkSync(`/proc/${pid}/ns/pid`);
    const open = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readlinkSync(`/proc/${p}/ns/pid`) === ns && readlinkSync(`/proc/${p}/fd/3`) === '/tmp/open';
        } catch {
          return false;
        }
      });
    expect(open.length).toBeGreaterThan(0);
    await ok(onB(['server', 'stop', 'lu']));
    expect(JSON.parse(await ok(onB(['server', 'show', 'lu', '-f', 'json'])))).toMatchObject({ status: 'SHUTOFF' });
    await ok(onB(['server', 'delete', 'lu']));
    expect(readdirSync(join(b.root, 'idmap')).filter((f) => /^\d+$/.test(f))).toEqual([]);
    expect(census(a.root)).toEqual(beforeA);
    expect(census(b.root)).toEqual(beforeB);
  }, 300_000);

  it.each(['host', 'auto'])(
    "a --userns %s server with instance data (user data, a NoCloud seed bound from A's state root) moves live: B writes its seed and binds it in its place, the server reads its user data there, its process keeps counting; nothing left on either",
    async (userns) => {
      const userData = join(tmpdir(), `nbx-live-ud-${tag}-${userns}.txt`);
      writeFileSync(userData, '#cloud-config\nruncmd: [moved live]\n');
      const created = JSON.parse(
        await ok(
          onA([
            'server',
            'create',
            '--network',
            'none',
            '--userns',
            userns,
            '--user-data',
            userData,
            '--image',
            'busybox',
            '--flavor',
            'm1.tiny',
            'ls',
            '-f',
            'json',
          ]),
        ),
      );
      const seedOf = async (on: typeof onA) => ok(on(['server', 'exec', 'ls', '--', 'cat', '/var/lib/cloud/seed/nocloud/user-data']));
      expect(await seedOf(onA)).toBe('#cloud-config\nruncmd: [moved live]\n');
      await ok(
        onA([
          'server',
          'exec',
          'ls',
          '--',
          'sh',
          '-c',
          'i=0; (while :; do i=$((i+1)); echo $i > /cnt; sleep 0.1; done) >/dev/null 2>&1 & sleep 0.3',
        ]),
      );
      const count = async (on: typeof onA) => Number((await ok(on(['server', 'exec', 'ls', '--', 'cat', '/cnt']))).trim());
      const before = await count(onA);
      const to = toB();
      const m = await onA(['server', 'migrate', 'ls', '--live', '--to', to]);
      expect(m.exitCode, m.stderr).toBe(0);
      expect(JSON.parse(await ok(onB(['server', 'show', 'ls', '-f', 'json'])))).toMatchObject({ id: created.id, status: 'ACTIVE' });
      expect(await count(onB)).toBeGreaterThan(before);
      expect(await seedOf(onB)).toBe('#cloud-config\nruncmd: [moved live]\n');
      expect(await ok(onB(['server', 'exec', 'ls', '--', 'cat', '/var/lib/cloud/seed/nocloud/meta-data']))).toContain(created.id);
      // the mount is B's seed directory, written by B
      const pid = Number((await ok(onB(['server', 'show', 'ls', '-f', 'value', '-c', 'pid']))).trim());
      const line = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[4] === '/var/lib/cloud/seed/nocloud');
      expect(line?.split(' ')[3]).toContain(`/servers/${created.id}/seed`);
      expect(existsSync(join(b.root, 'servers', created.id, 'seed', 'user-data'))).toBe(true);
      expect(existsSync(join(a.root, 'servers', created.id))).toBe(false);
      await ok(onB(['server', 'delete', 'ls']));
      rmSync(userData);
      expect(census(a.root)).toEqual(beforeA);
      expect(census(b.root)).toEqual(beforeB);
    },
    300_000,
  );

  it.each(['host', 'auto'])(
    "a --userns %s server with a volume moves live: its files go with it (the last delta taken under the final dump), B binds its own copy of the volume where A's was, a writer holding a file of it open keeps appending there, no line lost or doubled; the volume is B's and gone from A; nothing left on either",
    async (userns) => {
      const vol = `lvol-${userns}`;
      const name = `lv-${userns}`;
      await ok(onA(['volume', 'create', vol]));
      const volId = JSON.parse(await ok(onA(['volume', 'show', vol, '-f', 'json']))).id as string;
      const created = JSON.parse(
        await ok(
          onA([
            'server',
            'create',
            '--network',
            'none',
            '--userns',
            userns,
            '--volume',
            `${vol}:/data`,
            '--image',
            'busybox',
            '--flavor',
            'm1.tiny',
            name,
            '-f',
            'json',
          ]),
        ),
      );
      // a file written before, and a writer that holds /data/log open (fd 3) and appends a line per tick
      await ok(
        onA([
          'server',
          'exec',
          name,
          '--',
          'sh',
          '-c',
          'echo before > /data/kept; (exec 3>>/data/log; i=0; while :; do i=$((i+1)); echo $i >&3; sleep 0.1 3>&-; done) >/dev/null 2>&1 & sleep 0.3',
        ]),
      );
      const lines = async (on: typeof onA) =>
        (await ok(on(['server', 'exec', name, '--', 'cat', '/data/log']))).trim().split('\n').map(Number);
      const before = await lines(onA);
      expect(before.length).toBeGreaterThan(0);
      const to = toB();
      const m = await onA(['server', 'migrate', name, '--live', '--to', to]);
      expect(m.exitCode, m.stderr).toBe(0);
      expect(JSON.parse(await ok(onB(['server', 'show', name, '-f', 'json'])))).toMatchObject({ id: created.id, status: 'ACTIVE' });
      await new Promise((res) => setTimeout(res, 400));
      const after = await lines(onB);
      // 1, 2, 3, … with no gap and no repeat: the delta under the dump and the writer's file offset agree
      expect(after).toEqual(after.map((_, i) => i + 1));
      expect(after.length).toBeGreaterThan(before.length + 2);
      expect(await ok(onB(['server', 'exec', name, '--', 'cat', '/data/kept']))).toBe('before\n');
      // the writer is the same process, in the server's pid namespace on B, the volume's file still
      // open in it (at fd 3, or while its `sleep` runs at the fd ash saved 3 to)
      const pid = Number((await ok(onB(['server', 'show', name, '-f', 'value', '-c', 'pid']))).trim());
      const pidNs = readlinkSync(`/proc/${pid}/ns/pid`);
      // a `sleep` of the writer's loop may end between two reads: gone is not a match
      const commOf = (p: string) => {
        try {
          return readFileSync(`/proc/${p}/comm`, 'utf8').trim();
        } catch {
          return undefined;
        }
      };
      const fdsOf = (p: string) => {
        try {
          return readdirSync(`/proc/${p}/fd`).map((fd) => readlinkOr(`/proc/${p}/fd/${fd}`));
        } catch {
          return [];
        }
      };
      const writers = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p) && readlinkOr(`/proc/${p}/ns/pid`) === pidNs && commOf(p) === 'sh')
        .filter((p) => fdsOf(p).includes('/data/log'));
      expect(writers).toHaveLength(1);
      // /data is B's directory of the volume (the mount's root names its path under B's state root)
      const line = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[4] === '/data');
      expect(line?.split(' ')[3]).toMatch(new RegExp(`/${b.root.split('/').pop()}/volumes/${volId}$`));
      expect(readFileSync(join(b.root, 'volumes', volId, 'kept'), 'utf8')).toBe('before\n');
      expect(existsSync(join(a.root, 'volumes', volId))).toBe(false);
      expect(JSON.parse(await ok(onB(['volume', 'show', vol, '-f', 'json'])))).toMatchObject({
        id: volId,
        attachments: [expect.objectContaining({ server_id: created.id, path: '/data' })],
      });
      expect((await onA(['volume', 'show', vol])).exitCode).not.toBe(0);
      await ok(onB(['server', 'delete', name]));
      await ok(onB(['volume', 'delete', vol]));
      expect(census(a.root)).toEqual(beforeA);
      expect(census(b.root)).toEqual(beforeB);
    },
    300_000,
  );

  it('a --userns auto server whose id range is leased on B is refused before anything changes, in one sentence naming the range: it runs on A as before, B has only its own server', async () => {
    // the same lowest slot on both hosts (one subuid file): B's own server holds it
    await ok(onB(['server', 'create', '--network', 'none', '--image', 'busybox', '--flavor', 'm1.tiny', 'holder']));
    await ok(onA(['server', 'create', '--network', 'none', '--image', 'busybox', '--flavor', 'm1.tiny', 'lt']));
    const rangeA = JSON.parse(await ok(onA(['server', 'show', 'lt', '-f', 'json']))).idmap;
    expect(JSON.parse(await ok(onB(['server', 'show', 'holder', '-f', 'json']))).idmap).toBe(rangeA);
    const to = toB();
    const m = await onA(['server', 'migrate', 'lt', '--live', '--to', to]);
    expect(m.exitCode).not.toBe(0);
    expect(m.stderr).toMatch(/cannot be migrated live: its id range \(uids \d+-\d+, gids \d+-\d+\) is not free on the target host/);
    expect(m.stderr.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(await ok(onA(['server', 'show', 'lt', '-f', 'json'])))).toMatchObject({ status: 'ACTIVE', idmap: rangeA });
    expect((await ok(onB(['server', 'list', '-f', 'value', '-c', 'Name']))).trim()).toBe('holder');
    await ok(onA(['server', 'delete', 'lt']));
    await ok(onB(['server', 'delete', 'holder']));
    expect(census(a.root)).toEqual(beforeA);
    expect(census(b.root)).toEqual(beforeB);
  }, 120_000);

  it.each(['host', 'auto'])(
    "the target's restore fails after the final dump of a --userns %s server: the command fails in one sentence, the server runs again on A from that dump (the counter goes on; its id range kept), B keeps nothing (no range either)",
    async (userns) => {
      await ok(onA(['server', 'create', '--network', 'none', '--userns', userns, '--image', 'busybox', '--flavor', 'm1.tiny', 'lf']));
      const range = JSON.parse(await ok(onA(['server', 'show', 'lf', '-f', 'json']))).idmap;
      await ok(
        onA([
          'server',
          'exec',
          'lf',
          '--',
          'sh',
          '-c',
          'i=0; (exec 3>/tmp/open; while :; do i=$((i+1)); echo $i >&3; sleep 0.1; done) >/dev/null 2>&1 & sleep 0.3',
        ]),
      );
      const count = async () => Number((await ok(onA(['server', 'exec', 'lf', '--', 'tail', '-n', '1', '/tmp/open']))).trim());
      const before = await count();
      const bin = mkdtempSync(join(tmpdir(), 'nbx-live-criu-'));
      try {
        // B's criu passes its check and fails every restore
        const criu = join(bin, 'criu-norestore');
        writeFileSync(criu, '#!/bin/sh\n[ "$1" = restore ] && { echo "injected: no restore here" >&2; exit 1; }\nexec criu "$@"\n', {
          mode: 0o755,
        });
        const to = toB(`NOVABOX_CRIU=${criu} `);
        const m = await onA(['server', 'migrate', 'lf', '--live', '--to', to]);
        expect(m.exitCode).toBe(4);
        expect(m.stderr).toMatch(
          /^novabox: the target refused the server: criu restore of server [0-9a-f-]+ failed \(wait status 256\)\n$/,
        );
      } finally {
        rmSync(bin, { recursive: true, force: true });
      }
      expect(JSON.parse(await ok(onA(['server', 'show', 'lf', '-f', 'json'])))).toMatchObject({
        status: 'ACTIVE',
        'OS-EXT-STS:task_state': null,
        idmap: range,
      });
      expect(existsSync(join(b.root, 'idmap')) ? readdirSync(join(b.root, 'idmap')) : []).toEqual([]);
      const pid = Number((await ok(onA(['server', 'show', 'lf', '-f', 'value', '-c', 'pid']))).trim());
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      expect(readFileSync(`/proc/${ppid}/comm`, 'utf8')).toBe('novabox-monitor\n');
      const after = await count();
      expect(after).toBeGreaterThan(before);
      await new Promise((res) => setTimeout(res, 500));
      expect(await count()).toBeGreaterThan(after);
      expect((await ok(onB(['server', 'list', '-f', 'value', '-c', 'ID']))).trim()).toBe('');
      expect(census(b.root)).toEqual(beforeB);
      await ok(onA(['server', 'delete', 'lf']));
      expect(census(a.root)).toEqual(beforeA);
    },
    300_000,
  );

  it("the receiver killed with SIGKILL after it restored the server and said ok: the server runs again on A from its final dump (the counter, writing to a volume's file it holds open, goes on), and the next command on B takes the restored arrival back (and its copy of the volume)", async () => {
    await ok(onA(['volume', 'create', 'lkv']));
    await ok(
      onA([
        'server',
        'create',
        '--network',
        'none',
        '--userns',
        'host',
        '--volume',
        'lkv:/data',
        '--image',
        'busybox',
        '--flavor',
        'm1.tiny',
        'lk',
      ]),
    );
    await ok(
      onA([
        'server',
        'exec',
        'lk',
        '--',
        'sh',
        '-c',
        'i=0; (exec 3>/data/open; while :; do i=$((i+1)); echo $i >&3; sleep 0.1; done) >/dev/null 2>&1 & sleep 0.3',
      ]),
    );
    const count = async () => Number((await ok(onA(['server', 'exec', 'lk', '--', 'tail', '-n', '1', '/data/open']))).trim());
    const before = await count();
    const pidFile = join(tmpdir(), `nbx-live-receiver-${process.pid}-${tag}`);
    try {
      // the receiver stops itself (SIGSTOP) once it said ok; $$ is the pid node gets by exec
      const to = `exec:${IN_NS} ${nsB} sh -c 'echo $$ > ${pidFile}; exec env NOVABOX_TEST_PAUSE=receive-ok NOVABOX_ROOT=${b.root} NOVABOX_CGROUP_PARENT=${cgroupParentFor(b.root)} ${process.execPath} ${BIN} server receive'`;
      const sender = onA(['server', 'migrate', 'lk', '--live', '--to', to]);
      let pid = 0;
      for (let i = 0; i < 1200 && !pid; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const p = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
        if (p && /^\d+ \(.*\) T /.test(readFileSync(`/proc/${p}/stat`, 'utf8'))) pid = p;
      }
      expect(pid, 'the receiver reached its pause after ok').toBeGreaterThan(0);
      process.kill(pid, 'SIGKILL');
      const r = await sender;
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/^novabox: the receiving side ended before it confirmed the migration[^\n]*\n$/);
    } finally {
      rmSync(pidFile, { force: true });
    }
    expect(JSON.parse(await ok(onA(['server', 'show', 'lk', '-f', 'json'])))).toMatchObject({
      status: 'ACTIVE',
      'OS-EXT-STS:task_state': null,
    });
    const after = await count();
    expect(after).toBeGreaterThan(before);
    await new Promise((res) => setTimeout(res, 500));
    expect(await count()).toBeGreaterThan(after);
    // B's next command finds the arrival's receiver dead and takes it back: the restored tree, its monitor, its cgroup
    expect((await ok(onB(['server', 'list', '-f', 'value', '-c', 'ID']))).trim()).toBe('');
    expect(census(b.root)).toEqual(beforeB);
    expect(existsSync(join(b.root, 'volumes')) ? readdirSync(join(b.root, 'volumes')) : []).toEqual([]);
    await ok(onA(['server', 'delete', 'lk']));
    await ok(onA(['volume', 'delete', 'lkv']));
    expect(census(a.root)).toEqual(beforeA);
  }, 300_000);

  it.each(['host', 'auto'])(
    "a --userns %s server on the bridge network with a published port moves live: its eth0 restored on B's bridge with B's lease, that address's MAC and B's gateway (A's subnet is not B's), its /etc files B's, the counter goes on, it reaches B's gateway, its listening httpd answers on B's published port (the rule made in B, gone from A); delete removes its veth",
    async (userns) => {
      const port = 18000 + randomInt(1000);
      await ok(
        onA(['server', 'create', '--userns', userns, '--image', 'busybox', '--flavor', 'm1.tiny', '--publish', `${port}:8080`, 'lb']),
      );
      await ok(
        onA([
          'server',
          'exec',
          'lb',
          '--',
          'sh',
          '-c',
          'i=0; (exec 3>/tmp/open; while :; do i=$((i+1)); echo $i >&3; sleep 0.1; done) >/dev/null 2>&1 & mkdir -p /srv; echo moved > /srv/index.html; httpd -p 8080 -h /srv; sleep 0.3',
        ]),
      );
      // a client on each "host": its own address on the bridge (the gateway), the published port
      for (const ns of [nsA, nsB]) execFileSync(ip!, ['-n', ns, 'link', 'set', 'lo', 'up']);
      // node as the client: busybox-static's wget crashes (a static glibc's resolver)
      const fetch = (ns: string, gateway: string) =>
        spawnSync(
          ip!,
          [
            'netns',
            'exec',
            ns,
            process.execPath,
            '-e',
            `require('http').get('http://${gateway}:${port}/', { timeout: 5000 }, (r) => r.pipe(process.stdout)).on('error', (e) => { console.error(e.message); process.exit(1); })`,
          ],
          { encoding: 'utf8', timeout: 20_000 },
        );
      const rules = (ns: string) => spawnSync(ip!, ['netns', 'exec', ns, 'nft', 'list', 'ruleset'], { encoding: 'utf8' }).stdout ?? '';
      const addrA = /(\d+\.\d+\.\d+)\.(\d+)/.exec(
        JSON.stringify(JSON.parse(await ok(onA(['server', 'show', 'lb', '-f', 'json']))).addresses),
      );
      const first = fetch(nsA, `${addrA![1]}.1`);
      expect(first.stdout, first.stderr).toBe('moved\n');
      const count = async (on: typeof onA) => Number((await ok(on(['server', 'exec', 'lb', '--', 'tail', '-n', '1', '/tmp/open']))).trim());
      const before = await count(onA);
      const to = toB();
      const m = await onA(['server', 'migrate', 'lb', '--live', '--to', to]);
      expect(m.exitCode, m.stderr).toBe(0);
      const shown = JSON.parse(await ok(onB(['server', 'show', 'lb', '-f', 'json'])));
      expect(shown).toMatchObject({ status: 'ACTIVE' });
      const addr = /(\d+\.\d+\.\d+)\.(\d+)/.exec(JSON.stringify(shown.addresses));
      expect(addr, JSON.stringify(shown.addresses)).not.toBeNull();
      expect(`${addr![1]}.0/24`).toBe(b.subnet);
      expect(await count(onB)).toBeGreaterThan(before);
      const eth0 = await ok(onB(['server', 'exec', 'lb', '--', 'ip', 'addr', 'show', 'dev', 'eth0']));
      expect(eth0).toContain(`inet ${addr![0]}/24`);
      // and the MAC of that address, as a start on B gives it (A's went with A's address)
      expect(eth0).toContain(`link/ether ${macFor(parseIp(addr![0])!)} `);
      await ok(onB(['server', 'exec', 'lb', '--', 'ping', '-c', '1', '-W', '5', `${addr![1]}.1`]));
      // the listening socket came with it, and B publishes the port for B's address
      const got = fetch(nsB, `${addr![1]}.1`);
      expect(got.stdout, got.stderr).toBe('moved\n');
      expect(rules(nsB)).toContain(`${port} : `);
      expect(rules(nsA)).not.toContain(`${port} : `);
      // its /etc/hosts is B's file (bound from B's state root), naming B's address
      expect(await ok(onB(['server', 'exec', 'lb', '--', 'cat', '/etc/hosts']))).toContain(addr![0]);
      const hostEnds = (ns: string) =>
        execFileSync(ip!, ['-n', ns, '-o', 'link', 'show'], { encoding: 'utf8' }).match(/ nbv\S*?[@:]/g) ?? [];
      expect(hostEnds(nsB)).toHaveLength(1);
      await ok(onB(['server', 'delete', 'lb']));
      expect((await onB(['server', 'list', '-f', 'value', '-c', 'ID'])).stdout.trim()).toBe('');
      expect(hostEnds(nsB)).toEqual([]);
      expect(hostEnds(nsA)).toEqual([]);
      expect(census(a.root)).toEqual(beforeA);
      expect(census(b.root)).toEqual(beforeB);
    },
    300_000,
  );
});
