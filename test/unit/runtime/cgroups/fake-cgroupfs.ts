/**
 * A temp dir that imitates cgroupfs closely enough for the drivers: mkdir fills a new
 * cgroup with the files the kernel would show, rmdir refuses (EBUSY) while processes or
 * child cgroups remain, and SIGKILL takes a pid out of every cgroup.procs.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { CgroupIo } from '../../../../src/runtime/cgroups/cgroupfs.js';

type Files = Record<string, string>;

export interface FakeCgroupfs {
  root: string;
  io: CgroupIo;
  /** every io.kill call */
  kills: Array<[number, NodeJS.Signals | number]>;
  /** every io.devices call (the v2 device filter) */
  devices: string[];
  read(rel: string): string;
  write(rel: string, text: string): void;
  exists(rel: string): boolean;
  cleanup(): void;
}

function errnoError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path });
}

function fake(filesFor: (dir: string) => Files, prepare: (root: string) => void): FakeCgroupfs {
  const root = mkdtempSync(join(tmpdir(), 'novabox-fake-cgroupfs-'));
  prepare(root);
  const kills: FakeCgroupfs['kills'] = [];
  const devices: string[] = [];

  const walk = (dir: string, visit: (dir: string) => void) => {
    visit(dir);
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name), visit);
  };

  const io: CgroupIo = {
    mkdir(path) {
      mkdirSync(path);
      for (const [file, text] of Object.entries(filesFor(path))) writeFileSync(join(path, file), text);
    },
    rmdir(path) {
      if (!existsSync(path)) throw errnoError('ENOENT', 'rmdir', path);
      const hasChild = readdirSync(path, { withFileTypes: true }).some((e) => e.isDirectory());
      const procs = existsSync(join(path, 'cgroup.procs')) ? readFileSync(join(path, 'cgroup.procs'), 'utf8') : '';
      if (hasChild || procs.trim()) throw errnoError('EBUSY', 'rmdir', path);
      rmSync(path, { recursive: true });
    },
    devices(dir) {
      devices.push(dir);
    },
    kill(pid, signal) {
      kills.push([pid, signal]);
      if (signal !== 'SIGKILL' && signal !== 9) return;
      walk(root, (dir) => {
        const procs = join(dir, 'cgroup.procs');
        if (!existsSync(procs)) return;
        const left = readFileSync(procs, 'utf8')
          .split('\n')
          .filter((p) => p && Number(p) !== pid);
        writeFileSync(procs, left.map((p) => `${p}\n`).join(''));
      });
    },
  };

  return {
    root,
    io,
    kills,
    devices,
    read: (rel) => readFileSync(join(root, rel), 'utf8'),
    write: (rel, text) => writeFileSync(join(root, rel), text),
    exists: (rel) => existsSync(join(root, rel)),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

const V2_CONTROLLER_FILES: Record<string, Files> = {
  memory: {
    'memory.max': 'max\n',
    'memory.swap.max': 'max\n',
    'memory.current': '0\n',
    'memory.peak': '0\n',
    'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n',
  },
  cpu: { 'cpu.max': 'max 100000\n', 'cpu.weight': '100\n' },
  pids: { 'pids.max': 'max\n', 'pids.current': '0\n' },
};

/** A pure v2 tree at `root`; `drop` lists file names the kernel would not have (cgroup.kill, memory.peak). */
export function fakeV2(opts: { controllers?: string[]; drop?: string[] } = {}): FakeCgroupfs {
  const controllers = opts.controllers ?? ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'];
  const filesFor = (dir: string): Files => {
    const enabled = readFileSync(join(dirname(dir), 'cgroup.subtree_control'), 'utf8')
      .split(/\s+/)
      .filter(Boolean)
      .map((c) => c.replace(/^\+/, ''));
    const files: Files = {
      'cgroup.procs': '',
      'cgroup.controllers': `${enabled.join(' ')}\n`,
      'cgroup.subtree_control': '',
      'cgroup.events': 'populated 0\nfrozen 0\n',
      'cgroup.freeze': '0\n',
      'cgroup.kill': '',
      'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n',
    };
    for (const c of enabled) Object.assign(files, V2_CONTROLLER_FILES[c]);
    for (const name of opts.drop ?? []) delete files[name];
    return files;
  };
  return fake(filesFor, (root) => {
    writeFileSync(join(root, 'cgroup.controllers'), `${controllers.join(' ')}\n`);
    writeFileSync(join(root, 'cgroup.subtree_control'), '');
    writeFileSync(join(root, 'cgroup.procs'), '1\n');
    writeFileSync(join(root, 'cpu.stat'), 'usage_usec 5\n');
  });
}

const V1_CONTROLLER_FILES: Record<string, Files> = {
  memory: {
    'memory.limit_in_bytes': '9223372036854771712\n',
    'memory.memsw.limit_in_bytes': '9223372036854771712\n',
    'memory.usage_in_bytes': '0\n',
    'memory.max_usage_in_bytes': '0\n',
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
  },
  cpu: { 'cpu.cfs_period_us': '100000\n', 'cpu.cfs_quota_us': '-1\n', 'cpu.shares': '1024\n' },
  cpuacct: { 'cpuacct.usage': '0\n' },
  pids: { 'pids.max': 'max\n', 'pids.current': '0\n' },
  freezer: { 'freezer.state': 'THAWED\n' },
  cpuset: { 'cpuset.cpus': '\n', 'cpuset.mems': '\n' },
  devices: { 'devices.allow': '', 'devices.deny': '', 'devices.list': 'a *:* rwm\n' },
  blkio: {},
};

/** The hierarchies of a v1 host: mount dir name -> controllers ('cgroup2' for the unified mount). */
export const V1_HIERARCHIES: Record<string, string[]> = {
  memory: ['memory'],
  'cpu,cpuacct': ['cpu', 'cpuacct'],
  pids: ['pids'],
  freezer: ['freezer'],
  cpuset: ['cpuset'],
  devices: ['devices'],
  blkio: ['blkio'],
  systemd: ['name=systemd'],
};

export interface FakeV1 extends FakeCgroupfs {
  mounts: Record<string, string>;
  unified?: string;
}

export function fakeV1(opts: { hierarchies?: Record<string, string[]>; unified?: boolean; drop?: string[] } = {}): FakeV1 {
  const hierarchies = opts.hierarchies ?? V1_HIERARCHIES;
  let root = '';
  const controllersOf = (dir: string): string[] => {
    const top = relative(root, dir).split('/')[0];
    return top === 'unified' ? ['cgroup2'] : (hierarchies[top] ?? []);
  };
  const filesFor = (dir: string): Files => {
    const files: Files = { 'cgroup.procs': '' };
    for (const c of controllersOf(dir)) Object.assign(files, V1_CONTROLLER_FILES[c]);
    for (const name of opts.drop ?? []) delete files[name];
    return files;
  };
  const fs = fake(filesFor, (r) => {
    root = r;
    for (const name of [...Object.keys(hierarchies), ...(opts.unified ? ['unified'] : [])]) {
      mkdirSync(join(r, name));
      writeFileSync(join(r, name, 'cgroup.procs'), '1\n');
    }
    if (hierarchies.cpuset) {
      writeFileSync(join(r, 'cpuset', 'cpuset.cpus'), '0-3\n');
      writeFileSync(join(r, 'cpuset', 'cpuset.mems'), '0\n');
    }
  });
  const mounts: Record<string, string> = {};
  for (const [name, controllers] of Object.entries(hierarchies)) {
    for (const c of controllers) if (!c.startsWith('name=')) mounts[c] = join(fs.root, name);
  }
  return { ...fs, mounts, ...(opts.unified ? { unified: join(fs.root, 'unified') } : {}) };
}
