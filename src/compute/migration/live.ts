/**
 * Live migration with CRIU (`server migrate --live`), the parts migrate.ts adds to a
 * pre-copy migration: which servers it can move (liveRefusal, pure: checked before
 * anything is recorded), and one dump round of a server's tree as a `C` frame's payload
 * (dumpRound). The target restores the final round under a monitor of its own
 * (runtime/server.ts restoreServer); docs/server-stream.md draws the exchange.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NovaboxError } from '../../errors.js';
import { criuDumpArgs, type DumpOptions, runCriu } from '../../runtime/criu.js';

/** What liveRefusal looks at: the server's record and what it has attached. */
export interface LiveCandidate {
  name: string;
  vmState: string;
  network: string;
  userns: 'auto' | 'host';
  init: 'novabox' | 'systemd';
}

/**
 * Why this server cannot move live, in one sentence, or null (pure). A restore rebuilds
 * the tree's namespaces from its images (a bridged server's veth made on the target's
 * bridge, its address readdressed, its published ports made there again for that address,
 * listening sockets restored; its instance data's seed written there and bound again in
 * its place; its volumes, whose contents the stream carries as the writable layer's, bound
 * again from the target's copies by their ids); what still names this host (the host's
 * network namespace) cannot be carried, nor can a systemd system: CRIU (Debian 12's 3.17)
 * refuses its services' nested UTS namespaces ("Can't dump nested uts namespace", from
 * ProtectHostname=), and with those turned off, the inotify watches of systemd and its
 * services on the overlay root, whose file handles overlayfs does not open ("fsnotify: Can't
 * dump that handle"; both seen in the guest, docs/server-stream.md). A server in its
 * own user namespace moves: the target leases the same range (receive.ts) and the monitor
 * idmaps its root as for a start.
 */
export function liveRefusal(s: LiveCandidate): string | null {
  const not = `server "${s.name}" cannot be migrated live`;
  const cold = `migrate it without --live (its writable layer is pre-copied while it runs)`;
  if (s.vmState !== 'active')
    return `${not}: it is not ACTIVE (vm_state ${s.vmState}), and only a running process tree can be dumped; ${cold}`;
  if (s.init === 'systemd')
    return `${not}: systemd is its pid 1, and CRIU cannot dump a systemd system (its services' UTS namespaces of their own, from ProtectHostname=, and its inotify watches on the overlay root file system); ${cold}`;
  if (s.network !== 'none' && s.network !== 'novabox')
    return `${not}: it shares this host's network namespace (--network ${s.network}), whose sockets cannot move to another host; ${cold}`;
  return null;
}

function hashFile(file: string): string {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.allocUnsafe(1 << 20);
    for (let n = readSync(fd, b); n > 0; n = readSync(fd, b)) h.update(b.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

export interface DumpRound {
  /** the `C` frame's meta: its directory's name, the tar's digest, criu's time */
  meta: { dir: string; digest: string; ms: number };
  payload: { file: string; size: number };
  ms: number;
  /** bytes of memory pages the round wrote (its `pages-*.img`): all of it in the first, then what was dirtied since */
  pages: number;
}

/** The most pre-dump rounds `migrate --live` takes before its final dump, unless told otherwise. */
export const PREDUMP_ROUNDS = 3;

/** A dirty set this small (bytes) is left to the final dump: another round would cost more than it saves. */
export const PREDUMP_SMALL = 64 * 1024;

/**
 * Whether another pre-dump round is worth it after rounds that wrote these bytes of pages
 * (pure): at most `max` rounds, and only while the dirty set shrinks (each round's pages
 * are those dirtied during the one before) and is not already small.
 */
export function morePreDumps(pages: number[], max: number): boolean {
  const last = pages.at(-1);
  if (last === undefined) return max > 0;
  if (pages.length >= max || last <= PREDUMP_SMALL) return false;
  return pages.length === 1 || last < pages.at(-2)!;
}

/** The bytes of memory pages in a CRIU image directory (its `pages-*.img` files). */
export function pagesIn(images: string): number {
  let n = 0;
  for (const f of readdirSync(images)) if (/^pages-\d+\.img$/.test(f)) n += statSync(join(images, f)).size;
  return n;
}

/**
 * One `criu pre-dump` (pre) or `dump` of the tree whose root is `pid` into base/dir, packed
 * as base/dir.tar (the directory itself inside, its `parent` link kept); a failure is one
 * sentence with criu's reason (a failed dump leaves the tree running, as criu resumes it;
 * onDumped says when a dump succeeded, which ends the tree).
 */
export function dumpRound(
  pid: number,
  base: string,
  dir: string,
  o: Omit<DumpOptions, 'images' | 'log' | 'leaveRunning'> & { onDumped?: () => void },
): DumpRound {
  const images = join(base, dir);
  mkdirSync(images, { recursive: true, mode: 0o700 });
  const log = o.pre ? 'pre-dump.log' : 'dump.log';
  const { onDumped, ...dump } = o;
  const r = runCriu(criuDumpArgs(pid, { ...dump, images, log }), images, log);
  if (!r.ok) throw new NovaboxError('sys', `criu ${o.pre ? 'pre-dump' : 'dump'} of the server failed: ${r.reason}`);
  onDumped?.();
  const file = `${images}.tar`;
  const t = spawnSync('tar', ['-c', '-f', file, '-C', base, '--', dir], { encoding: 'utf8' });
  if (t.status !== 0) throw new NovaboxError('sys', `cannot pack the CRIU images: ${(t.stderr || t.error?.message || '').trim()}`);
  const ms = Math.round(r.ms);
  return {
    meta: { dir, digest: `sha256:${hashFile(file)}`, ms },
    payload: { file, size: statSync(file).size },
    ms,
    pages: pagesIn(images),
  };
}

/** readlink(2), or undefined (a process gone, an fd closed). */
export function readlinkOr(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
