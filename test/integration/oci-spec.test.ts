/**
 * novabox-oci and what the OCI runtime validation suite (runtime-tools validation/, run by
 * test/oci-validation/run.sh) asks of a runtime and runc does: each case is one behaviour
 * the suite found missing, seen from inside a real container on a busybox bundle, with
 * nothing left afterwards.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxLayer } from '../../src/images/busybox.js';
import type { OciConfig } from '../../src/runtime/oci/plan.js';
import { cgroupHierarchyDirs } from '../helpers/census.js';
import { ROOT } from '../helpers/run-cli.js';
import { skipEachIf } from '../helpers/skip.js';

const OCI = join(ROOT, 'bin/novabox-oci');
const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync(OCI) ? 'bin/novabox-oci is not built (npm run build)' : undefined;

let work: string;
let stateRoot: string;
let bundle: string;
const tag = `s${randomBytes(3).toString('hex')}`;

function oci(args: string[], out?: number): { code: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(OCI, ['--root', stateRoot, ...args], {
    encoding: 'utf8',
    env,
    timeout: 20_000,
    stdio: ['ignore', out ?? 'pipe', out ?? 'pipe'],
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function waitUntil(done: () => boolean, ms = 5000): boolean {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (done()) return true;
    spawnSync('sleep', ['0.02']);
  }
  return done();
}

function status(id: string): string {
  return JSON.parse(oci(['state', id]).stdout).status;
}

/** Processes, cgroups and state of this file's containers still there. */
function leftovers(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      if (readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/novabox-oci/${tag}-`)) out.push(`process ${pid}`);
    } catch {
      /* gone */
    }
  }
  for (const d of cgroupHierarchyDirs('novabox-oci')) {
    if (!existsSync(d)) continue;
    for (const e of readdirSync(d)) if (e.startsWith(`${tag}-`)) out.push(`cgroup ${join(d, e)}`);
  }
  if (existsSync(stateRoot)) for (const e of readdirSync(stateRoot)) out.push(`state ${e}`);
  return out;
}

/**
 * A container of the bundle's config changed by `patch`, created and started; its output
 * once it exited; deleted. `during(pid)` runs while it is created (its init at the gate).
 */
function runToEnd(name: string, patch: (c: OciConfig) => void, during?: (pid: number) => void): string {
  const id = `${tag}-${name}`;
  const dir = join(work, name);
  spawnSync('mkdir', ['-p', dir]);
  const base = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  base.root.path = join(bundle, 'rootfs');
  patch(base);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(base));
  const outFile = join(work, `${name}.out`);
  const fd = openSync(outFile, 'w');
  const created = oci(['create', '--bundle', dir, id], fd);
  closeSync(fd);
  expect(readFileSync(outFile, 'utf8')).toBe('');
  expect(created.code).toBe(0);
  if (during) during(JSON.parse(oci(['state', id]).stdout).pid);
  expect(oci(['start', id]).code).toBe(0);
  expect(waitUntil(() => status(id) === 'stopped')).toBe(true);
  expect(oci(['delete', id])).toMatchObject({ code: 0, stderr: '' });
  return readFileSync(outFile, 'utf8');
}

/** A /proc/self/status line's capability mask as a number. */
function capMask(status: string, field: string): bigint {
  const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status);
  expect(m).not.toBeNull();
  return BigInt(`0x${m![1]}`);
}

const CAP_CHOWN = 1n << 0n;
const CAP_KILL = 1n << 5n;
const CAP_NET_BIND_SERVICE = 1n << 10n;

describe('novabox-oci: what the OCI validation suite asks', () => {
  skipEachIf(skip);

  beforeAll(() => {
    if (skip) return;
    work = mkdtempSync(join(tmpdir(), 'oci-spec-'));
    stateRoot = join(work, 'state');
    bundle = join(work, 'bundle');
    spawnSync('mkdir', ['-p', bundle]);
    spawnSync('mv', [buildBusyboxLayer(work), join(bundle, 'rootfs')]);
    expect(spawnSync(OCI, ['spec', '--bundle', bundle]).status).toBe(0);
  }, 60_000);

  afterAll(() => {
    if (skip || !work) return;
    for (const e of existsSync(stateRoot) ? readdirSync(stateRoot) : []) oci(['delete', '--force', e]);
    rmSync(work, { recursive: true, force: true });
  });

  it('process.capabilities: inheritable and ambient sets, and a user other than root keeps its ambient ones through execve', () => {
    const caps = ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
    const want = CAP_CHOWN | CAP_KILL | CAP_NET_BIND_SERVICE;
    const all = { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: caps };
    const root = runToEnd('caps-root', (c) => {
      c.process.capabilities = all;
      c.process.args = ['cat', '/proc/self/status'];
    });
    for (const f of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(capMask(root, f)).toBe(want);
    const user = runToEnd('caps-user', (c) => {
      c.process.user = { uid: 10, gid: 10 };
      c.process.capabilities = all;
      c.process.args = ['sh', '-c', 'id -u; cat /proc/self/status'];
    });
    expect(user.split('\n')[0]).toBe('10');
    for (const f of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(capMask(user, f)).toBe(want);
    // root with an inheritable set smaller than the others, no ambient one
    const inh = runToEnd('caps-inh', (c) => {
      c.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: ['CAP_KILL'] };
      c.process.args = ['cat', '/proc/self/status'];
    });
    expect(capMask(inh, 'CapInh')).toBe(CAP_KILL);
    expect(capMask(inh, 'CapPrm')).toBe(want);
    expect(capMask(inh, 'CapAmb')).toBe(0n);
    expect(leftovers()).toEqual([]);
  });

  it('linux.devices: a block device, a fifo and a character device beyond the default ones, allowed in the device cgroup (v1 devices.allow, v2 the device program)', () => {
    const out = runToEnd('devices', (c) => {
      c.linux.devices = [
        { path: '/dev/test1', type: 'c', major: 10, minor: 666, fileMode: 0o660 },
        { path: '/dev/test2', type: 'b', major: 8, minor: 666, fileMode: 0o660 },
        { path: '/dev/test3', type: 'p', major: 0, minor: 0 },
        // opened below (loop-control, a loop device without a file): the device cgroup would
        // say EPERM
        { path: '/dev/test4', type: 'c', major: 10, minor: 237, fileMode: 0o600 },
        { path: '/dev/test5', type: 'b', major: 7, minor: 250, fileMode: 0o600 },
      ];
      c.process.args = [
        'sh',
        '-c',
        'stat -c "%n %F %t:%T" /dev/test1 /dev/test2 /dev/test3; : </dev/test4 && echo test4 opened; : </dev/test5 && echo test5 opened; : </dev/denied; true',
      ];
      // the host's /dev/loop0, bound in but not listed: the device cgroup refuses to open it
      c.mounts.push({ destination: '/dev/denied', type: 'bind', source: '/dev/loop0', options: ['bind'] });
    });
    const lines = out.trim().split('\n');
    expect(lines.slice(0, 5)).toEqual([
      '/dev/test1 character special file a:29a',
      '/dev/test2 block special file 8:29a',
      '/dev/test3 fifo 0:0',
      'test4 opened',
      'test5 opened',
    ]);
    // not listed: the filter still refuses it
    expect(out).toMatch(/denied.*Operation not permitted/);
    expect(leftovers()).toEqual([]);
  });

  it('linux.resources.cpu cpus and mems: the cpuset the process runs in', () => {
    const out = runToEnd('cpuset', (c) => {
      c.linux.resources.cpu = { cpus: '0', mems: '0' };
      c.process.args = ['sh', '-c', 'grep -E "^(Cpus|Mems)_allowed_list" /proc/self/status'];
    });
    expect(out).toMatch(/^Cpus_allowed_list:\s+0$/m);
    expect(out).toMatch(/^Mems_allowed_list:\s+0$/m);
    expect(leftovers()).toEqual([]);
  });

  it('rootfsPropagation rshared (pivot_root refuses a shared root: made so after it), unbindable and a bind with file system data', () => {
    const out = runToEnd('propagation', (c) => {
      c.linux.rootfsPropagation = 'rshared';
      c.mounts.push({ destination: '/mnt', source: '/etc', options: ['rbind', 'nosuid', 'mode=755', 'runbindable'] });
      c.process.args = ['sh', '-c', 'awk \'$5 == "/" || $5 == "/mnt"\' /proc/self/mountinfo'];
    });
    const root = out.split('\n').find((l) => l.split(' ')[4] === '/');
    const mnt = out.split('\n').find((l) => l.split(' ')[4] === '/mnt');
    expect(root).toMatch(/ shared:\d+/);
    expect(mnt).toMatch(/ unbindable /);
    // an unbindable root: made so after the pivot (the root could not be bound onto itself)
    const unbindable = runToEnd('propagation-unbindable', (c) => {
      c.linux.rootfsPropagation = 'unbindable';
      c.process.args = ['sh', '-c', 'awk \'$5 == "/"\' /proc/self/mountinfo'];
    });
    expect(unbindable).toMatch(/ unbindable /);
    expect(leftovers()).toEqual([]);
  });

  it('sysfs in a user namespace: mounted with a network namespace of its own, the host one bound without', () => {
    const dir = join(work, 'userns-rootfs');
    expect(spawnSync('cp', ['-a', join(bundle, 'rootfs'), dir]).status).toBe(0);
    expect(spawnSync('chown', ['-R', '200000:200000', dir]).status).toBe(0);
    const userns = (c: OciConfig) => {
      c.root.path = dir;
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      c.process.args = ['sh', '-c', 'awk \'$5 == "/sys"\' /proc/self/mountinfo; ls /sys/class/net'];
    };
    const own = runToEnd('sysfs-own', userns);
    expect(own.split('\n')[0]).toMatch(/ - sysfs /);
    expect(own.split('\n').slice(1).filter(Boolean)).toEqual(['lo']);
    const host = runToEnd('sysfs-host', (c) => {
      userns(c);
      c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'network');
    });
    expect(host.split('\n')[0]).toMatch(/ - sysfs /);
    expect(host.split('\n').slice(1).filter(Boolean)).toEqual(readdirSync('/sys/class/net').sort());
    expect(leftovers()).toEqual([]);
  });

  it('a mount and a uts namespace joined by path: the container is in them, sets the hostname there, and its rootfs is set up in the joined one', () => {
    // a holder of a mount and a uts namespace of its own (a copy of the host's mounts)
    const holder = spawn('unshare', ['--mount', '--uts', '--fork', 'sleep', '60'], { stdio: 'ignore', detached: true });
    try {
      const child = () => {
        const kids = readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim();
        return kids ? Number(kids.split(' ')[0]) : 0;
      };
      expect(waitUntil(() => child() > 0 && readlinkSync(`/proc/${child()}/ns/mnt`) !== readlinkSync('/proc/self/ns/mnt'))).toBe(true);
      const pid = child();
      const out = runToEnd(
        'nsjoin',
        (c) => {
          c.hostname = 'joined-uts';
          c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) =>
            n.type === 'mount'
              ? { type: 'mount', path: `/proc/${pid}/ns/mnt` }
              : n.type === 'uts'
                ? { type: 'uts', path: `/proc/${pid}/ns/uts` }
                : n,
          );
          c.process.args = ['sh', '-c', 'readlink /proc/self/ns/mnt; readlink /proc/self/ns/uts; hostname; ls /bin/busybox'];
        },
        (init) => {
          // the init is in the joined namespaces while created, the host's are untouched
          expect(readlinkSync(`/proc/${init}/ns/mnt`)).toBe(readlinkSync(`/proc/${pid}/ns/mnt`));
          expect(readlinkSync(`/proc/${init}/ns/uts`)).toBe(readlinkSync(`/proc/${pid}/ns/uts`));
        },
      );
      expect(out.trim().split('\n')).toEqual([
        readlinkSync(`/proc/${pid}/ns/mnt`),
        readlinkSync(`/proc/${pid}/ns/uts`),
        'joined-uts',
        '/bin/busybox',
      ]);
      expect(spawnSync('hostname', { encoding: 'utf8' }).stdout.trim()).not.toBe('joined-uts');
    } finally {
      if (holder.pid) process.kill(-holder.pid, 'SIGKILL');
    }
    expect(leftovers()).toEqual([]);
  });

  it("a user namespace joined by path with a network namespace it owns (a Kubernetes pod sandbox's): the namespaces the container makes are the joined one's, its root is the range's, exec enters it; maps other than the namespace's are refused", () => {
    const dir = join(work, 'userns-join-rootfs');
    expect(spawnSync('cp', ['-a', join(bundle, 'rootfs'), dir]).status).toBe(0);
    expect(spawnSync('chown', ['-R', '210000:210000', dir]).status).toBe(0);
    // the sandbox: a user namespace and a network namespace it owns, its maps written by host root
    const holder = spawn('unshare', ['--user', '--net', 'sleep', '60'], { stdio: 'ignore', detached: true });
    const pid = holder.pid ?? 0;
    const ns = (p: number | string, type: string) => readlinkSync(`/proc/${p}/ns/${type}`);
    try {
      expect(waitUntil(() => ns(pid, 'user') !== ns('self', 'user'))).toBe(true);
      writeFileSync(`/proc/${pid}/uid_map`, '0 210000 65536\n');
      writeFileSync(`/proc/${pid}/gid_map`, '0 210000 65536\n');
      const joined = (c: OciConfig, hostID: number) => {
        c.root.path = dir;
        c.hostname = 'in-the-pod';
        c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) =>
          n.type === 'network' ? { type: 'network', path: `/proc/${pid}/ns/net` } : n,
        );
        c.linux.namespaces.push({ type: 'user', path: `/proc/${pid}/ns/user` });
        c.linux.uidMappings = [{ containerID: 0, hostID, size: 65536 }];
        c.linux.gidMappings = [{ containerID: 0, hostID, size: 65536 }];
      };
      const out = runToEnd(
        'userns-join',
        (c) => {
          joined(c, 210000);
          c.process.args = [
            'sh',
            '-c',
            'readlink /proc/self/ns/user; readlink /proc/self/ns/net; cat /proc/self/uid_map; id -u; stat -c %u /bin/busybox; hostname',
          ];
        },
        (init) => {
          // born in the joined user namespace: every namespace it made is owned by that one
          expect(ns(init, 'user')).toBe(ns(pid, 'user'));
          const owners = spawnSync('lsns', ['-p', String(init), '-n', '-o', 'TYPE,NS,ONS'], { encoding: 'utf8' })
            .stdout.trim()
            .split('\n')
            .map((l) => l.trim().split(/\s+/));
          const userInode = ns(pid, 'user').replace(/\D/g, '');
          for (const type of ['mnt', 'pid', 'uts', 'ipc', 'net']) {
            const row = owners.find((r) => r[0] === type);
            expect(row?.[1], type).not.toBe(ns('self', type).replace(/\D/g, ''));
            expect(row?.[2], `the owner of its ${type} namespace`).toBe(userInode);
          }
        },
      );
      expect(
        out
          .trim()
          .split('\n')
          .map((l) => l.trim().replace(/\s+/g, ' ')),
      ).toEqual([ns(pid, 'user'), ns(pid, 'net'), '0 210000 65536', '0', '0', 'in-the-pod']);

      // exec enters it too
      const id = `${tag}-userns-join-exec`;
      const edir = join(work, 'userns-join-exec');
      spawnSync('mkdir', ['-p', edir]);
      const base = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
      joined(base, 210000);
      base.process.args = ['sleep', '30'];
      writeFileSync(join(edir, 'config.json'), JSON.stringify(base));
      expect(oci(['create', '--bundle', edir, id])).toMatchObject({ code: 0, stderr: '' });
      expect(oci(['start', id]).code).toBe(0);
      const e = oci(['exec', id, 'sh', '-c', 'readlink /proc/self/ns/user; id -u']);
      expect(e).toMatchObject({ code: 0, stdout: `${ns(pid, 'user')}\n0\n` });
      expect(oci(['delete', '--force', id])).toMatchObject({ code: 0, stderr: '' });

      // maps that are not the namespace's: one sentence, nothing made
      const bad = `${tag}-userns-join-bad`;
      const bdir = join(work, 'userns-join-bad');
      spawnSync('mkdir', ['-p', bdir]);
      const wrong = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
      joined(wrong, 300000);
      writeFileSync(join(bdir, 'config.json'), JSON.stringify(wrong));
      expect(oci(['create', '--bundle', bdir, bad])).toMatchObject({
        code: 1,
        stderr:
          'novabox-oci: linux.uidMappings and linux.gidMappings are not the maps of the user namespace the container joins (linux.namespaces, type user)\n',
      });
    } finally {
      if (pid) process.kill(pid, 'SIGKILL');
    }
    expect(leftovers()).toEqual([]);
  });

  it("no namespaces at all: the host's, chrooted into the rootfs; its mounts made in the host's namespace are gone after delete, exec runs in its root", () => {
    const id = `${tag}-nons`;
    const dir = join(work, 'nons');
    const rootfs = join(work, 'nons-rootfs');
    spawnSync('mkdir', ['-p', dir]);
    expect(spawnSync('cp', ['-a', join(bundle, 'rootfs'), rootfs]).status).toBe(0);
    writeFileSync(join(rootfs, 'marker'), 'inside\n');
    const base = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    base.root = { path: rootfs };
    delete base.linux.namespaces;
    delete base.hostname;
    delete base.linux.maskedPaths;
    delete base.linux.readonlyPaths;
    base.process.args = ['sh', '-c', 'cat /marker; readlink /proc/self/ns/mnt; sleep 60 & wait'];
    writeFileSync(join(dir, 'config.json'), JSON.stringify(base));
    const mounted = () =>
      readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.split(' ')[4]?.startsWith(`${rootfs}/`)).length;
    const outFile = join(work, 'nons.out');
    const fd = openSync(outFile, 'w');
    expect(oci(['create', '--bundle', dir, id], fd).code).toBe(0);
    closeSync(fd);
    const { pid } = JSON.parse(oci(['state', id]).stdout);
    for (const ns of ['mnt', 'pid', 'net', 'ipc', 'uts', 'cgroup'])
      expect(readlinkSync(`/proc/${pid}/ns/${ns}`)).toBe(readlinkSync(`/proc/self/ns/${ns}`));
    // the config's mounts (proc, /dev and its own, sysfs) are the host's while it lives
    expect(mounted()).toBeGreaterThanOrEqual(5);
    expect(oci(['start', id]).code).toBe(0);
    expect(waitUntil(() => readFileSync(outFile, 'utf8').includes('mnt:['))).toBe(true);
    expect(readFileSync(outFile, 'utf8').trim().split('\n')).toEqual(['inside', readlinkSync('/proc/self/ns/mnt')]);
    expect(oci(['exec', id, 'cat', '/marker'])).toMatchObject({ code: 0, stdout: 'inside\n' });
    expect(oci(['exec', '--detach', id, 'true'])).toMatchObject({ code: 0, stderr: '' });
    expect(oci(['delete', '--force', id])).toMatchObject({ code: 0, stderr: '' });
    expect(mounted()).toBe(0);
    // what would change the host without a mount namespace: one sentence, nothing made
    base.linux.maskedPaths = ['/proc/kcore'];
    writeFileSync(join(dir, 'config.json'), JSON.stringify(base));
    expect(oci(['create', '--bundle', dir, id])).toMatchObject({
      code: 1,
      stderr:
        'novabox-oci: config.json: linux.maskedPaths needs a mount namespace in linux.namespaces (without one it would change the host)\n',
    });
    expect(mounted()).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it('a top-level property the runtime-spec does not have: ignored, with a line in --log', () => {
    const log = join(work, 'unknown.log');
    const out = runToEnd('unknown', (c) => {
      (c as Record<string, unknown>).unknown = 'unknown';
      c.process.args = ['echo', 'ran'];
    });
    expect(out).toBe('ran\n');
    // the line goes to --log (the runtime's stderr is the container's own under a shim)
    const id = `${tag}-unknown-log`;
    const dir = join(work, 'unknown');
    const fd = openSync(join(work, 'unknown-log.out'), 'w');
    expect(oci(['--log', log, '--log-format', 'json', 'create', '--bundle', dir, id], fd).code).toBe(0);
    closeSync(fd);
    expect(oci(['delete', '--force', id]).code).toBe(0);
    expect(JSON.parse(readFileSync(log, 'utf8').trim().split('\n')[0])).toMatchObject({
      level: 'warning',
      msg: 'config.json: unknown is not a runtime-spec property: ignored',
    });
    expect(leftovers()).toEqual([]);
  });

  it('a relative cgroupsPath of several levels: every level gone after delete, in C (stopped) and in JS (--force)', () => {
    const levels = () => cgroupHierarchyDirs('novabox-oci').filter((d) => existsSync(join(d, `${tag}-lvl`)));
    runToEnd(
      'lvl',
      (c) => {
        c.linux.cgroupsPath = `${tag}-lvl/a/b`;
        c.process.args = ['true'];
      },
      (pid) => {
        expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`/novabox-oci/${tag}-lvl/a/b`);
        expect(levels().length).toBeGreaterThan(0);
      },
    );
    expect(levels()).toEqual([]);
    const id = `${tag}-lvl-force`;
    const fd = openSync(join(work, 'lvl-force.out'), 'w');
    expect(oci(['create', '--bundle', join(work, 'lvl'), id], fd).code).toBe(0);
    closeSync(fd);
    expect(levels().length).toBeGreaterThan(0);
    expect(oci(['delete', '--force', id])).toMatchObject({ code: 0, stderr: '' });
    expect(levels()).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it('refuses to join the mount namespace novabox-oci runs in, in one sentence (pivot_root there would move the host root)', () => {
    const id = `${tag}-nsjoin-own`;
    const dir = join(work, 'nsjoin-own');
    spawnSync('mkdir', ['-p', dir]);
    const base = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    base.root.path = join(bundle, 'rootfs');
    base.linux.namespaces = base.linux.namespaces.map((n: { type: string }) =>
      n.type === 'mount' ? { type: 'mount', path: `/proc/${process.pid}/ns/mnt` } : n,
    );
    writeFileSync(join(dir, 'config.json'), JSON.stringify(base));
    expect(oci(['create', '--bundle', dir, id])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(
        /^novabox-oci: config\.json: linux\.namespaces\[\d+\]\.path is the mount namespace novabox-oci runs in: the container's pivot_root there would move the root of every process in it\n$/,
      ),
    });
    expect(leftovers()).toEqual([]);
  });

  it('refuses a mount namespace joined by path together with a user namespace of its own, in one sentence', () => {
    const id = `${tag}-nsjoin-userns`;
    const dir = join(work, 'nsjoin-userns');
    spawnSync('mkdir', ['-p', dir]);
    // a mount namespace of its own to name (novabox-oci's own is refused for another reason)
    const holder = spawn('unshare', ['--mount', '--fork', 'sleep', '60'], { stdio: 'ignore', detached: true });
    try {
      const child = () => {
        const kids = readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim();
        return kids ? Number(kids.split(' ')[0]) : 0;
      };
      expect(waitUntil(() => child() > 0 && readlinkSync(`/proc/${child()}/ns/mnt`) !== readlinkSync('/proc/self/ns/mnt'))).toBe(true);
      const base = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
      base.root.path = join(bundle, 'rootfs');
      base.linux.namespaces = base.linux.namespaces.map((n: { type: string }) =>
        n.type === 'mount' ? { type: 'mount', path: `/proc/${child()}/ns/mnt` } : n,
      );
      base.linux.namespaces.push({ type: 'user' });
      base.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      base.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      writeFileSync(join(dir, 'config.json'), JSON.stringify(base));
      expect(oci(['create', '--bundle', dir, id])).toMatchObject({
        code: 1,
        stderr: 'novabox-oci: config.json: linux.namespaces cannot join a mount namespace by path and have a user namespace of its own\n',
      });
    } finally {
      if (holder.pid) process.kill(-holder.pid, 'SIGKILL');
    }
    expect(leftovers()).toEqual([]);
  });
});
