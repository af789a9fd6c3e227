/**
 * Pre-copy for `server migrate`: the writable layer is sent while the server runs; once
 * it is stopped only what changed since goes: entries whose inode or ctime differ from a
 * listing taken before the first pack (a write, chmod, chown, xattr, link or rename all
 * move ctime), new entries, and the paths that are gone. The delta is a GNU tar in the
 * upper dir's own (overlay) form: whiteouts stay 0/0 character devices, opaque dirs keep
 * their trusted.overlay.opaque; owners go back to the container's ids (--owner-map, from
 * the ids the delta holds) and are shifted into the target's range on arrival
 * (images/id-shift.ts), as the writable layer's are.
 */
import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequest, NovaboxError } from '../../errors.js';
import { TarIdShifter } from '../../images/id-shift.js';
import { fileStream } from '../../images/layers.js';
import type { IdShift } from '../../sys/layer.js';

export interface Entry {
  ino: bigint;
  ctimeNs: bigint;
  uid: number;
  gid: number;
}

/** Every entry below `root` (relative paths, parents before children). */
export function listTree(root: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? join(root, rel) : root).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p), { bigint: true });
      out.set(p, { ino: st.ino, ctimeNs: st.ctimeNs, uid: Number(st.uid), gid: Number(st.gid) });
      if (st.isDirectory()) walk(p);
    }
  };
  walk('');
  return out;
}

/** What changed from `before` to `after` (pure). Deleted: only the topmost gone path of a gone subtree. */
export function treeDelta(before: Map<string, Entry>, after: Map<string, Entry>): { changed: string[]; deleted: string[] } {
  const changed: string[] = [];
  for (const [p, e] of after) {
    const b = before.get(p);
    if (!b || b.ino !== e.ino || b.ctimeNs !== e.ctimeNs) changed.push(p);
  }
  const deleted: string[] = [];
  for (const p of before.keys()) {
    if (after.has(p)) continue;
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    if (parent && !after.has(parent) && before.has(parent)) continue; // its parent is listed
    deleted.push(p);
  }
  return { changed, deleted };
}

const XATTRS = ['--xattrs', '--xattrs-include=*', '--xattrs-exclude=trusted.overlay.origin', '--xattrs-exclude=trusted.overlay.impure'];

/** Pack `changed` (from the upper dir `root`) into `file`; host ids of `shift`'s range back to the container's. */
export function packDelta(root: string, changed: string[], file: string, after: Map<string, Entry>, shift?: IdShift): void {
  const args = ['-c', '-f', file, '-C', root, '--no-recursion', '--numeric-owner', '--format=posix', ...XATTRS, '--null', '-T', '-'];
  if (shift) {
    const uids = new Set<number>();
    const gids = new Set<number>();
    for (const p of changed) {
      const e = after.get(p)!;
      uids.add(e.uid);
      gids.add(e.gid);
    }
    const map = (ids: Set<number>, base: number) =>
      [...ids]
        .filter((id) => id >= base && id < base + shift.count)
        .map((id) => `+${id} +${id - base}\n`)
        .join('');
    writeFileSync(`${file}.uids`, map(uids, shift.uidBase));
    writeFileSync(`${file}.gids`, map(gids, shift.gidBase));
    args.push(`--owner-map=${file}.uids`, `--group-map=${file}.gids`);
  }
  const r = spawnSync('tar', args, { input: changed.map((p) => `${p}\0`).join(''), encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0)
    throw new NovaboxError(
      'sys',
      `packing what changed in the writable layer failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`,
    );
}

function checkRel(p: string): string {
  if (typeof p !== 'string' || p === '' || p.startsWith('/') || p.split('/').some((c) => c === '..' || c === '.' || c === '')) {
    throw new BadRequest(`the server stream is corrupt: a deleted path ${JSON.stringify(p)} is not a plain relative path`);
  }
  return p;
}

/** On the target: remove what is gone, then extract the delta over the staged upper dir (its owners shifted into `shift`). */
export async function applyDelta(root: string, deleted: string[], file: string, shift?: IdShift): Promise<void> {
  for (const p of deleted) {
    // never through a symbolic link: every component above the path must be a directory
    const parts = checkRel(p).split('/');
    let dir = root;
    let real = true;
    for (const c of parts.slice(0, -1)) {
      dir = join(dir, c);
      if (!lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
        real = false;
        break;
      }
    }
    if (real) rmSync(join(root, p), { recursive: true, force: true });
  }
  const tar = spawn(
    'tar',
    [
      '-x',
      '-f',
      '-',
      '-C',
      root,
      '--numeric-owner',
      '--same-owner',
      '--same-permissions',
      ...XATTRS,
      '--overwrite',
      '--warning=no-timestamp',
    ],
    { stdio: ['pipe', 'ignore', 'pipe'] },
  );
  let err = '';
  tar.stderr.on('data', (d) => (err += d));
  const done = new Promise<number>((resolve, reject) => {
    tar.on('error', reject);
    tar.on('close', (code) => resolve(code ?? 1));
  });
  const src = fileStream(file);
  const stream = shift ? src.pipe(new TarIdShifter(shift)) : src;
  stream.on('error', (e) => {
    err ||= (e as Error).message;
    tar.kill('SIGKILL');
  });
  stream.pipe(tar.stdin);
  tar.stdin.on('error', () => {
    /* reported by the exit status */
  });
  const code = await done;
  if (code !== 0)
    throw new BadRequest(
      `applying what changed in the writable layer failed: ${err
        .trim()
        .split('\n')[0]
        ?.replace(/^tar: /, '')}`,
    );
}
