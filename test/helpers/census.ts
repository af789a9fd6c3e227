/**
 * What novabox can leave behind on a host: mounts, cgroup directories, monitor
 * processes, files in the state root. Take one before and one after; they must match.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Each test state root gets its own cgroup parent, so tests never count other novabox users. */
export function cgroupParentFor(stateRoot: string): string {
  return `novabox-test-${basename(stateRoot)}`;
}

export interface Census {
  mounts: string[];
  cgroups: string[];
  monitors: number[];
  stateFiles: string[];
}

function cgroupDirs(parent: string): string[] {
  const out: string[] = [];
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => {
      const fstype = f[f.indexOf('-') + 1];
      return fstype === 'cgroup' || fstype === 'cgroup2';
    })
    .map((f) => f[4]);
  for (const m of mounts) {
    const dir = join(m, parent);
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(join(dir, e.name));
  }
  return out.sort();
}

function monitors(parent: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      // A zombie holds nothing but its pid until whoever adopted it reaps it.
      const tag = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[1] ?? '';
      if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'novabox-monitor' && state !== 'Z' && tag.startsWith(`${parent}/`)) {
        out.push(Number(p));
      }
    } catch {
      /* gone */
    }
  }
  return out.sort();
}

function stateFiles(root: string): string[] {
  const out: string[] = [];
  for (const sub of ['containers', 'names', 'tmp']) {
    const d = join(root, sub);
    if (existsSync(d)) for (const e of readdirSync(d)) out.push(`${sub}/${e}`);
  }
  return out.sort();
}

/** Everything of one state root; its cgroups live under the parent cliEnv() gives it. */
export function census(stateRoot: string, parent = cgroupParentFor(stateRoot)): Census {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(stateRoot) || l.includes('novabox'));
  return { mounts, cgroups: cgroupDirs(parent), monitors: monitors(parent), stateFiles: stateFiles(stateRoot) };
}
