/**
 * Podman 4.3 (Debian) drives novabox-oci through conmon, as it drives crun: `podman
 * --runtime bin/novabox-oci` on busybox loaded by `podman load` from `novabox image
 * save`'s archive. Podman runs with private storage, state, temporary and network
 * directories, file locks and events (containers.conf and storage.conf of its own under a
 * mkdtemp directory), cgroupfs under a cgroup parent of its own, and no network (--network
 * none, CNI's backend: no netavark). novabox-oci keeps its state in its default --root (/run/novabox-oci):
 * podman 4.3 passes its --runtime-flag options to every verb but `delete`, so a root of
 * our own would leave each container's state and cgroup behind; its --log is passed so
 * (create writes the warnings).
 *
 * Podman asks for RLIMIT_NOFILE 1048576 (and RLIMIT_NPROC): where root cannot raise its
 * hard limit (no CAP_SYS_RESOURCE, as on the CI host, where podman's own crun fails with
 * "setrlimit `RLIMIT_NOFILE`: Operation not permitted"), novabox-oci lowers it to what
 * it can set and says so in its --log (runtime/oci/plan.ts planRlimits).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectCgroups } from '../../src/runtime/cgroups/detect.js';
import { cgroupHierarchyDirs } from '../helpers/census.js';
import { BIN, cliEnv, ROOT } from '../helpers/run-cli.js';
import { missingCommands, skipEachIf } from '../helpers/skip.js';

const OCI = join(ROOT, 'bin/novabox-oci');
const missing = missingCommands(['podman', 'conmon']);
const skip =
  process.getuid?.() !== 0
    ? 'needs root'
    : missing.length
      ? `Podman is not installed (${missing.join(', ')}: apt-get install podman)`
      : !existsSync(OCI)
        ? 'bin/novabox-oci is not built (npm run build)'
        : undefined;

const rand = randomBytes(3).toString('hex');
/** the cgroup parent of this podman's containers and conmons (nothing named "novabox": other tests count those) */
const parent = `oci-pd-${rand}`;
const IMAGE = 'localhost/busybox:latest';
/** novabox-oci's default --root, where podman's containers have their state */
const OCI_ROOT = '/run/novabox-oci';
let work: string;
let env: NodeJS.ProcessEnv;
let ociRootExisted = true;

/** this test's private storage, state and tmp, and novabox-oci as the runtime: every podman call's first flags */
function storageArgs(): string[] {
  return [
    '--root',
    join(work, 'root'),
    '--runroot',
    join(work, 'runroot'),
    '--tmpdir',
    join(work, 'tmp'),
    '--storage-driver',
    'overlay',
    '--runtime',
    OCI,
  ];
}

/** `fds`: more fds for podman, as its 3, 4, … (`--preserve-fds`) */
function podman(args: string[], timeoutMs = 60_000, fds: number[] = []): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    'podman',
    [
      ...storageArgs(),
      '--cgroup-manager',
      'cgroupfs',
      '--events-backend',
      'file',
      '--runtime-flag',
      `log=${join(work, 'oci.log')}`,
      '--runtime-flag',
      'log-format=json',
      ...args,
    ],
    // cwd: conmon writes a file "oom" into its working directory when a container is OOM-killed
    { encoding: 'utf8', timeout: timeoutMs, env, cwd: work, stdio: ['pipe', 'pipe', 'pipe', ...fds] },
  );
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** `podman run` with what every container here gets: novabox-oci's, no network, our cgroup parent */
function run(args: string[], timeoutMs?: number, fds?: number[]) {
  return podman(['run', '--network', 'none', '--cgroup-parent', `/${parent}`, ...args], timeoutMs, fds);
}

function ociState(id: string): { status: string; pid: number } {
  const r = spawnSync(OCI, ['state', id], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

/** The json lines of novabox-oci's --log. */
function ociLog(): { level: string; msg: string }[] {
  const file = join(work, 'oci.log');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** What a removed container may leave: cgroups, processes in them, rootfs mounts, novabox-oci's state, podman's records. */
function leftovers(): string[] {
  const out: string[] = [];
  for (const d of cgroupHierarchyDirs(parent)) {
    if (!existsSync(d)) continue;
    // conmon's own cgroup (<parent>/conmon) is podman's, kept between containers: removed at the end
    for (const e of readdirSync(d, { withFileTypes: true }))
      if (e.isDirectory() && e.name !== 'conmon') out.push(`cgroup ${join(d, e.name)}`);
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${parent}/`)) out.push(`process ${pid}`);
    } catch {
      /* gone */
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const point = line.split(' ')[4] ?? '';
    // the storage's own: its overlay directory, made a private mount by containers/storage
    if (point.startsWith(`${work}/`) && point !== `${work}/root/overlay`) out.push(`mount ${point}`);
  }
  for (const e of ourStates()) out.push(`novabox-oci state ${e}`);
  const containers = podman(['ps', '-aq']).stdout.trim();
  if (containers) out.push(`podman containers ${containers.replace(/\n/g, ' ')}`);
  return out;
}

/** The containers in novabox-oci's root whose bundle is one of this podman's. */
function ourStates(): string[] {
  if (!existsSync(OCI_ROOT)) return [];
  return readdirSync(OCI_ROOT).filter((e) => {
    try {
      return JSON.parse(readFileSync(join(OCI_ROOT, e, 'state.json'), 'utf8')).bundle.startsWith(`${work}/`);
    } catch {
      return false;
    }
  });
}

function waitUntil(done: () => boolean, ms = 20_000): boolean {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (done()) return true;
    spawnSync('sleep', ['0.2']);
  }
  return done();
}

/** The hard RLIMIT_NOFILE a container gets here when podman asks for `wanted` (plan.ts's ceiling). */
function nofileCeiling(wanted: number): { hard: number; clamped: boolean } {
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  const canRaise = ((BigInt(`0x${eff}`) >> 24n) & 1n) === 1n;
  const own = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 'unlimited';
  const nrOpen = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8'));
  const ceiling = Math.min(nrOpen, canRaise || own === 'unlimited' ? Number.POSITIVE_INFINITY : Number(own));
  return ceiling < wanted ? { hard: ceiling, clamped: true } : { hard: wanted, clamped: false };
}

describe('novabox-oci under Podman (podman --runtime)', () => {
  skipEachIf(skip);

  beforeAll(() => {
    if (skip) return;
    work = mkdtempSync(join(tmpdir(), 'oci-pd-'));
    for (const d of ['root', 'runroot', 'tmp', 'networks']) mkdirSync(join(work, d));
    ociRootExisted = existsSync(OCI_ROOT);

    // everything of podman's under work: the host's /etc/containers, /var/lib/containers,
    // /run/containers and /dev/shm are not written
    writeFileSync(
      join(work, 'containers.conf'),
      [
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = "${work}/events.log"`,
        'lock_type = "file"',
        `volume_path = "${work}/root/volumes"`,
        '[network]',
        // CNI's backend: it needs no helper binary with --network none (netavark's needs
        // netavark found, and a root podman with it makes /run/containers/networks)
        'network_backend = "cni"',
        `network_config_dir = "${work}/networks"`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(work, 'storage.conf'),
      ['[storage]', 'driver = "overlay"', `runroot = "${work}/runroot"`, `graphroot = "${work}/root"`, ''].join('\n'),
    );
    writeFileSync(join(work, 'registries.conf'), 'unqualified-search-registries = []\n');
    writeFileSync(join(work, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    env = {
      ...process.env,
      CONTAINERS_CONF: join(work, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(work, 'storage.conf'),
      CONTAINERS_REGISTRIES_CONF: join(work, 'registries.conf'),
      // podman load's temporary files (/var/tmp otherwise)
      TMPDIR: join(work, 'tmp'),
    };
    // the image: novabox's busybox, as `novabox image save` writes it (an OCI archive)
    const archive = join(work, 'busybox.tar');
    const save = spawnSync(process.execPath, [BIN, 'image', 'save', 'busybox', '--file', archive], {
      env: cliEnv(join(work, 'nb-state')),
      encoding: 'utf8',
    });
    expect(save.stderr).toBe('');
    // podman load keeps a blob-info cache in /var/lib/containers/cache whatever its --root,
    // and unpacks the archive in /var/tmp whatever TMPDIR: it runs in a mount namespace of
    // its own with a tmpfs on each (the cache's, or above it where it is not)
    const load = spawnSync(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'for d in /var/lib/containers/cache /var/lib/containers /var/lib; do [ -d $d ] && mount -t tmpfs podman-cache $d && break; done; ' +
          'mount -t tmpfs podman-tmp /var/tmp && exec "$@"',
        'sh',
        'podman',
        ...storageArgs(),
        'load',
        '--signature-policy',
        join(work, 'policy.json'),
        '-q',
        '-i',
        archive,
      ],
      { encoding: 'utf8', env },
    );
    expect(load.stderr).toBe('');
    expect(load.stdout).toContain('localhost/busybox:latest');
  }, 120_000);

  afterAll(() => {
    if (skip || !work) return;
    const ids = podman(['ps', '-aq']).stdout.split('\n').filter(Boolean);
    if (ids.length) podman(['rm', '-f', '-t', '0', ...ids]);
    // the storage's private mount of its overlay directory, and any a failed test left
    spawnSync('sh', ['-c', `grep -o ' ${work}/[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    // podman's cgroupfs manager makes <parent>/conmon in every directory of /sys/fs/cgroup,
    // hierarchies and (v1 hosts) directories that are none, where it writes a plain file
    for (const h of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
      const d = join('/sys/fs/cgroup', h, parent);
      if (!existsSync(d)) continue;
      try {
        rmdirSync(join(d, 'conmon'));
      } catch {
        /* not made here */
      }
      try {
        rmdirSync(d);
      } catch {
        if (!isCgroupMount(join('/sys/fs/cgroup', h))) rmSync(d, { recursive: true, force: true });
      }
    }
    for (const d of cgroupHierarchyDirs(parent)) {
      for (const c of [join(d, 'conmon'), d]) {
        try {
          rmdirSync(c);
        } catch {
          /* not made, or reported by the tests */
        }
      }
    }
    // what a failed test left in novabox-oci's root (podman's rm removed the rest)
    for (const e of ourStates()) spawnSync(OCI, ['delete', '--force', e]);
    rmSync(work, { recursive: true, force: true });
    if (!ociRootExisted) {
      try {
        rmdirSync(OCI_ROOT);
      } catch {
        /* another user's containers are in it */
      }
    }
  }, 120_000);

  it('podman run --rm: the output, the runtime novabox-oci, its rlimits and umask, and nothing left', () => {
    const r = run(['--rm', IMAGE, 'sh', '-c', 'echo hi; ulimit -Hn; ulimit -Hu; umask']);
    const nofile = nofileCeiling(1048576);
    // podman's defaults: RLIMIT_NOFILE 1048576 (lowered where it cannot be set) and
    // RLIMIT_NPROC 32768 (lower than the host's: as asked), umask 0022
    expect(r).toMatchObject({ code: 0, stdout: `hi\n${nofile.hard}\n32768\n0022\n`, stderr: '' });
    const warnings = ociLog().filter((l) => l.level === 'warning');
    if (nofile.clamped)
      expect(warnings.map((w) => w.msg)).toContain(
        `process.rlimits[0]: RLIMIT_NOFILE hard limit 1048576 is above what novabox-oci can set here (` +
          `its own hard limit is ${nofile.hard}, no CAP_SYS_RESOURCE): set to soft ${nofile.hard}, hard ${nofile.hard}`,
      );
    else expect(warnings).toEqual([]);
    expect(ociLog().filter((l) => l.level === 'error')).toEqual([]);
    // podman's own seccomp profile is loaded (a filter: mode 2)
    const s = run(['--rm', IMAGE, 'grep', 'Seccomp:', '/proc/self/status']);
    expect(s.stdout).toMatch(/^Seccomp:\s+2\n$/);
    waitUntil(() => leftovers().length === 0);
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it('run -d, exec, logs, pause/unpause, stop, kill, rm: each seen by Podman and by novabox-oci', () => {
    const d = run(['-d', '--name', 'life', IMAGE, 'sh', '-c', 'trap "echo bye; exit 0" TERM; echo started; while :; do sleep 0.2; done']);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    const id = d.stdout.trim();
    expect(podman(['inspect', '-f', '{{.OCIRuntime}}', id]).stdout.trim()).toBe(OCI);
    expect(ociState(id).status).toBe('running');
    const ex = podman(['exec', 'life', 'sh', '-c', 'echo "in $(hostname) as $(id -u)"; exit 3']);
    expect(ex).toMatchObject({ code: 3, stdout: `in ${id.slice(0, 12)} as 0\n` });
    expect(waitUntil(() => podman(['logs', 'life']).stdout.includes('started'))).toBe(true);
    expect(podman(['pause', 'life']).code).toBe(0);
    expect(podman(['inspect', '-f', '{{.State.Status}}', 'life']).stdout.trim()).toBe('paused');
    expect(ociState(id).status).toBe('paused');
    expect(podman(['unpause', 'life']).code).toBe(0);
    expect(podman(['inspect', '-f', '{{.State.Status}}', 'life']).stdout.trim()).toBe('running');
    expect(ociState(id).status).toBe('running');
    expect(podman(['stop', '-t', '10', 'life']).code).toBe(0);
    expect(podman(['inspect', '-f', '{{.State.ExitCode}}', 'life']).stdout.trim()).toBe('0');
    expect(podman(['logs', 'life']).stdout).toBe('started\nbye\n');
    expect(podman(['rm', 'life']).code).toBe(0);

    const k = run(['-d', '--name', 'victim', IMAGE, 'sleep', '600']);
    expect(k.code).toBe(0);
    expect(podman(['kill', 'victim']).code).toBe(0);
    expect(waitUntil(() => podman(['inspect', '-f', '{{.State.Status}}', 'victim']).stdout.trim() === 'exited')).toBe(true);
    expect(podman(['inspect', '-f', '{{.State.ExitCode}}', 'victim']).stdout.trim()).toBe('137');
    expect(podman(['rm', 'victim']).code).toBe(0);
    waitUntil(() => leftovers().length === 0);
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it("podman run --preserve-fds 1: the fd podman was given is the process's fd 3", () => {
    const file = join(work, 'preserved');
    const fd = openSync(file, 'w');
    try {
      const r = run(['--rm', '--preserve-fds', '1', IMAGE, 'sh', '-c', 'echo through podman >&3'], undefined, [fd]);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, 'utf8')).toBe('through podman\n');
    waitUntil(() => leftovers().length === 0);
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it('a memory limit is enforced: a process allocating beyond it is OOM-killed (137)', () => {
    const r = run([
      '--name',
      'oom',
      '--memory',
      '32m',
      '--memory-swap',
      '32m',
      IMAGE,
      'sh',
      '-c',
      'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived',
    ]);
    expect(r.code).toBe(137);
    expect(r.stdout).not.toContain('survived');
    expect(podman(['rm', 'oom']).code).toBe(0);
    // the limit is the container's cgroup's, as the host sees it
    const d = run(['-d', '--memory', '32m', '--memory-swap', '32m', IMAGE, 'sleep', '600']);
    const id = d.stdout.trim();
    const layout = detectCgroups();
    const file =
      layout.kind === 'v2'
        ? join(layout.root, parent, `libpod-${id}`, 'memory.max')
        : join(layout.mounts.memory ?? '', parent, `libpod-${id}`, 'memory.limit_in_bytes');
    expect(readFileSync(file, 'utf8').trim()).toBe(String(32 << 20));
    expect(podman(['rm', '-f', '-t', '0', id]).code).toBe(0);
    waitUntil(() => leftovers().length === 0);
    expect(leftovers()).toEqual([]);
  }, 120_000);
});

function isCgroupMount(dir: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir && / - cgroup2? /.test(l));
}
