/**
 * What novabox can leave behind on a host: mounts, cgroup directories, monitor
 * processes, files in the state root. Take one before and one after; they must match.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import Sqlite from 'better-sqlite3';
import type { DatabaseConstructor } from '../../src/store/sqlite.js';
import { detectCgroups } from '../../src/runtime/cgroups/detect.js';

const Database = Sqlite as unknown as DatabaseConstructor;
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
  /** host veths of this root's bridge (by ifalias or master) */
  veths: string[];
  /** nftables tables of this root's bridge */
  nftTables: string[];
  /** address leases in this root's database */
  leases: string[];
}

/** The bridge a test root's config names (tempRoot writes one per root). */
export function bridgeOf(stateRoot: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(stateRoot, 'config.json'), 'utf8')) as { network?: { bridge?: string } }).network?.bridge;
  } catch {
    return undefined;
  }
}

export function vethsOf(bridge: string | undefined): string[] {
  if (!bridge) return [];
  const out: string[] = [];
  for (const name of readdirSync('/sys/class/net')) {
    if (!name.startsWith('nbv')) continue;
    let alias = '';
    let master = '';
    try {
      alias = readFileSync(`/sys/class/net/${name}/ifalias`, 'utf8').trim();
    } catch {
      /* gone */
    }
    try {
      master = basename(readlinkSync(`/sys/class/net/${name}/master`));
    } catch {
      /* none */
    }
    if (alias.split(' ')[1] === bridge || master === bridge) out.push(name);
  }
  return out.sort();
}

export function nftTablesOf(bridge: string | undefined): string[] {
  if (!bridge) return [];
  try {
    const text = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const mine = `novabox_${bridge.replace(/[^A-Za-z0-9_]/g, '_')}`;
    return text
      .split('\n')
      .filter((l) => l.trim().endsWith(` ${mine}`) || l.trim().endsWith(` ${mine}_ports`))
      .map((l) => l.trim());
  } catch {
    return [];
  }
}

export function leasesOf(stateRoot: string): string[] {
  const file = join(stateRoot, 'novabox.db');
  if (!existsSync(file)) return [];
  const db = new Database(file, { timeout: 10_000 });
  try {
    const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'network_leases'").get();
    if (!has) return [];
    return (
      db.prepare('SELECT address, owner_id FROM network_leases ORDER BY address').all() as { address: string; owner_id: string }[]
    ).map((r) => `${r.address} ${r.owner_id}`);
  } finally {
    db.close();
  }
}

/**
 * `rel` in every cgroup hierarchy a runtime places containers in: on v1 each controller's
 * and a hybrid host's cgroup2 mount beside them (the driver tracks containers there too);
 * on v2 the one.
 */
export function cgroupHierarchyDirs(rel: string): string[] {
  const layout = detectCgroups();
  const roots =
    layout.kind === 'v2' ? [layout.root] : [...new Set([...Object.values(layout.mounts), ...(layout.unified ? [layout.unified] : [])])];
  return roots.map((r) => join(r, rel));
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
  for (const sub of ['containers', 'names', 'tmp', 'idmap', 'volumes']) {
    const d = join(root, sub);
    if (existsSync(d)) for (const e of readdirSync(d)) out.push(`${sub}/${e}`);
  }
  return out.sort();
}

/**
 * The root's veths, once the kernel has removed those of containers that ended: a `run`
 * leaves its veth to the kernel, which removes the pair with the container's network
 * namespace shortly after the CLI exits (src/runtime/run.ts). A veth whose owner has no
 * directory in the root any more (containers/<id>, servers/<id>) is waited for, up to 5 s;
 * one still there then is a leak, and is counted.
 */
export function settledVeths(stateRoot: string, bridge = bridgeOf(stateRoot)): string[] {
  const owned = (name: string) => {
    let owner = '';
    try {
      owner = readFileSync(`/sys/class/net/${name}/ifalias`, 'utf8').trim().split(' ')[2] ?? '';
    } catch {
      return false; // gone meanwhile
    }
    return owner !== '' && (existsSync(join(stateRoot, 'containers', owner)) || existsSync(join(stateRoot, 'servers', owner)));
  };
  const deadline = Date.now() + 5000;
  for (;;) {
    const veths = vethsOf(bridge);
    if (veths.every(owned) || Date.now() >= deadline) return vethsOf(bridge);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

/** Everything of one state root; its cgroups live under the parent cliEnv() gives it. */
export function census(stateRoot: string, parent = cgroupParentFor(stateRoot)): Census {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    // novabox's own mounts outside the root are under a path segment named novabox…
    // (/run/novabox…, /tmp/novabox…); a container another engine named b-novabox-oci-3 is not
    .filter((l) => l.includes(stateRoot) || /\/novabox/.test(l));
  const bridge = bridgeOf(stateRoot);
  return {
    mounts,
    cgroups: cgroupDirs(parent),
    monitors: monitors(parent),
    stateFiles: stateFiles(stateRoot),
    veths: settledVeths(stateRoot, bridge),
    nftTables: nftTablesOf(bridge),
    leases: leasesOf(stateRoot),
  };
}
