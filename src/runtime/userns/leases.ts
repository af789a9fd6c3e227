/**
 * Id range leases: the one place that decides which container owns which range.
 *
 * A lease is a symlink $NOVABOX_ROOT/idmap/<slot> whose target names its owner and the
 * process that took it (the names/ reservations work the same way). symlink(2) creates
 * it with its content in one step and fails with EEXIST when the slot is taken, so any
 * number of CLIs allocate at once without a lock, and `novabox run` never opens the
 * state database for it (a directory read, a few readlinks and one symlink). Servers
 * also keep a copy of their lease in the database (store/idmap-leases.ts), written in
 * the transaction that creates the server; the symlink alone decides.
 *
 * The target is short (format 2, encode()): ext4 keeps a target of up to 59 bytes in the
 * inode ("fast" symlink), while a longer one gets a data block of its own, whose
 * allocation and freeing cost ~0.2 ms each on `run`'s start and exit path (format 1, with
 * the whole owner id and boot id, was ~130 bytes). So the owner is named by the first 16
 * characters of its id, the boot by the first 8 of its id, the numbers in base 36, the
 * range's size is RANGE_SIZE and its age the link's own mtime. Format 1 links are still read.
 *
 * Removal is the delicate part: a slot freed by one process may be taken by another at
 * once, so a remover must never unlink a lease newer than the one it judged. Each lease
 * has a nonce; whoever removes it first creates `.rm-<slot>-<nonce>` with O_EXCL (only
 * one remover per lease), reads the slot again and unlinks it only if it still holds
 * that nonce: a newer lease can only appear after the old one was unlinked, which only
 * the marker's holder does.
 */
import {
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { stateRoot } from '../../util/paths.js';
import { bootId, isSameProcess, knowSelf, selfStart } from '../proc.js';
import type { Idmap } from '../plan/spec.js';
import { freeSlots, RANGE_SIZE, type SubidState } from './subid.js';

export type LeaseOwnerKind = 'server' | 'container';

export interface IdmapLease {
  slot: number;
  kind: LeaseOwnerKind;
  /** the owner's id, or its first OWNER_CHARS characters (format 2): match with ownedBy() */
  owner: string;
  idmap: Idmap;
  /** the process that took it: a lease whose owner has no record yet is alive while it is */
  pid: number;
  pidStart: number;
  /** the boot it was taken in: the boot id, or its first BOOT_CHARS characters (format 2) */
  boot: string;
  /** format 1 only; a format 2 lease's age is its link's mtime (leaseCreatedMs) */
  createdMs?: number;
  nonce: string;
}

const FORMAT1 = 'nbidmap1';
/** how much of an owner's id and of the boot id a format 2 link keeps */
const OWNER_CHARS = 16;
const BOOT_CHARS = 8;
/** a marker of a remover that died between marking and unlinking is broken after this */
const MARKER_STALE_MS = 60_000;

export function leaseDir(root = stateRoot()): string {
  return join(root, 'idmap');
}

const b36 = (n: number) => n.toString(36);

/**
 * Format 2: `<c|s><owner> <uid base> <gid base|=> <pid> <start> <boot> <nonce>`, numbers in
 * base 36, e.g. `c3f9a0c1d2e4b5a6f mtc0 = 2gosa 1a9rc 3f2a9c1d k2j9x0qa` (52 bytes: an
 * ext4 fast symlink up to 59).
 */
export function encodeLease(l: Omit<IdmapLease, 'slot' | 'createdMs'>): string {
  const { uidBase, gidBase } = l.idmap;
  return [
    `${l.kind === 'server' ? 's' : 'c'}${l.owner.slice(0, OWNER_CHARS)}`,
    b36(uidBase),
    gidBase === uidBase ? '=' : b36(gidBase),
    b36(l.pid),
    b36(l.pidStart),
    l.boot.slice(0, BOOT_CHARS),
    l.nonce,
  ].join(' ');
}

const FORMAT2 =
  /^([cs])([^ ]{1,64}) ([0-9a-z]{1,7}) ([0-9a-z]{1,7}|=) ([0-9a-z]{1,7}) ([0-9a-z]{1,13}) ([0-9a-f-]{1,36}) ([0-9a-z]{1,16})$/;

export function decodeLease(slot: number, target: string): IdmapLease | undefined {
  const m = FORMAT2.exec(target);
  if (m) {
    const uidBase = Number.parseInt(m[3]!, 36);
    return {
      slot,
      kind: m[1] === 's' ? 'server' : 'container',
      owner: m[2]!,
      idmap: { uidBase, gidBase: m[4] === '=' ? uidBase : Number.parseInt(m[4]!, 36), size: RANGE_SIZE },
      pid: Number.parseInt(m[5]!, 36),
      pidStart: Number.parseInt(m[6]!, 36),
      boot: m[7]!,
      nonce: m[8]!,
    };
  }
  const f = target.split(' ');
  if (f.length !== 11 || f[0] !== FORMAT1 || (f[1] !== 'server' && f[1] !== 'container')) return undefined;
  const n = f.slice(3, 8).map(Number);
  if (n.some((x) => !Number.isSafeInteger(x))) return undefined;
  return {
    slot,
    kind: f[1],
    owner: f[2]!,
    idmap: { uidBase: n[0]!, gidBase: n[1]!, size: n[2]! },
    pid: n[3]!,
    pidStart: n[4]!,
    boot: f[8]!,
    createdMs: Number(f[9]),
    nonce: f[10]!,
  };
}

/** Does the lease belong to the owner of this (whole) id? */
export function ownedBy(l: Pick<IdmapLease, 'owner'>, id: string): boolean {
  return id.startsWith(l.owner) && (l.owner.length === OWNER_CHARS || l.owner.length === id.length);
}

/** When the lease was taken: format 1 says so; format 2's is its link's mtime (0 if it is gone). */
export function leaseCreatedMs(l: IdmapLease, dir = leaseDir()): number {
  if (l.createdMs !== undefined) return l.createdMs;
  try {
    return lstatSync(join(dir, String(l.slot))).mtimeMs;
  } catch {
    return 0;
  }
}

function readLease(dir: string, slot: number): IdmapLease | undefined {
  try {
    return decodeLease(slot, readlinkSync(join(dir, String(slot))));
  } catch {
    return undefined;
  }
}

/** Every lease; a slot whose link cannot be read is still counted as taken (`undefined` lease). */
export function listLeases(dir = leaseDir()): { slots: Set<number>; leases: IdmapLease[] } {
  const slots = new Set<number>();
  const leases: IdmapLease[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    /* none yet */
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const slot = Number(name);
    slots.add(slot);
    const l = readLease(dir, slot);
    if (l) leases.push(l);
  }
  return { slots, leases };
}

/** a nonce: 8 base-36 digits (41 bits); it tells apart the leases one slot held over time */
function newNonce(): string {
  return Math.floor(Math.random() * 36 ** 8)
    .toString(36)
    .padStart(8, '0');
}

/**
 * Take the lowest free slot for an owner. Loses a race for a slot to another process
 * without harm (EEXIST: the next one); throws the planner's sentence when none is left.
 */
export function takeLease(kind: LeaseOwnerKind, ownerId: string, subid: SubidState, dir = leaseDir(), seen?: IdmapLease[]): IdmapLease {
  const base = { kind, owner: ownerId.slice(0, OWNER_CHARS), pid: process.pid, pidStart: selfStart(), boot: bootId().slice(0, BOOT_CHARS) };
  for (let round = 0; ; round++) {
    const { slots, leases } = listLeases(dir);
    // the caller's gc may use what we read (`seen`): no second walk of the directory
    if (seen) seen.splice(0, seen.length, ...leases);
    // a few candidates: losing the lowest to a concurrent CLI is the common race
    const free = freeSlots(
      subid,
      slots,
      leases.map((l) => l.idmap),
      16,
    );
    for (const { slot, idmap } of free) {
      const lease: IdmapLease = { ...base, slot, idmap, nonce: newNonce() };
      if (link(encodeLease(lease), dir, slot)) return lease;
    }
    // every slot we saw free was taken meanwhile: look again (freeSlots throws when none is left)
    if (round > 1000) throw new Error(`cannot take an id range lease in ${dir}: too much contention`);
  }
}

/** The free slot whose range is exactly `want` on this host, or undefined (takeLeaseOf; nothing taken). */
export function freeSlotOf(
  subid: SubidState,
  want: { uidBase: number; gidBase: number },
  dir = leaseDir(),
): { slot: number; idmap: IdmapLease['idmap'] } | undefined {
  const { slots, leases } = listLeases(dir);
  try {
    return freeSlots(
      subid,
      slots,
      leases.map((l) => l.idmap),
    ).find((f) => f.idmap.uidBase === want.uidBase && f.idmap.gidBase === want.gidBase);
  } catch {
    return undefined; // none free at all (freeSlots' sentence is about a new lease)
  }
}

/**
 * Take the slot whose range is exactly `want` (uid and gid bases) for an owner: a live
 * migration's target, whose restored user namespace has the dumped maps. undefined when
 * this host's subordinate ids have no free slot of that range (not root's here, holding a
 * real id, overlapping a lease, or taken, a race lost included); nothing is taken then.
 */
export function takeLeaseOf(
  kind: LeaseOwnerKind,
  ownerId: string,
  subid: SubidState,
  want: { uidBase: number; gidBase: number },
  dir = leaseDir(),
): IdmapLease | undefined {
  const hit = freeSlotOf(subid, want, dir);
  if (!hit) return undefined;
  const base = { kind, owner: ownerId.slice(0, OWNER_CHARS), pid: process.pid, pidStart: selfStart(), boot: bootId().slice(0, BOOT_CHARS) };
  const lease: IdmapLease = { ...base, slot: hit.slot, idmap: hit.idmap, nonce: newNonce() };
  return link(encodeLease(lease), dir, hit.slot) ? lease : undefined;
}

/**
 * The lease a C taker made (native-bindings/src/idmap.c, the rules of takeLease): its
 * line "slot uidBase gidBase start bootid nonce", then "slot target" per link it read.
 * `seen` gets those links' leases, as takeLease's listing would give them.
 */
export function leaseFromNative(kind: LeaseOwnerKind, ownerId: string, text: string, seen?: IdmapLease[]): IdmapLease {
  const lines = text.split('\n');
  const [slot, uidBase, gidBase, start, boot, nonce] = lines[0]!.split(' ');
  knowSelf(Number(start), boot!);
  if (seen) {
    seen.length = 0;
    for (let i = 1; i < lines.length; i++) {
      const sp = lines[i]!.indexOf(' ');
      const l = sp > 0 ? decodeLease(Number(lines[i]!.slice(0, sp)), lines[i]!.slice(sp + 1)) : undefined;
      if (l) seen.push(l);
    }
  }
  return {
    slot: Number(slot),
    kind,
    owner: ownerId.slice(0, OWNER_CHARS),
    idmap: { uidBase: Number(uidBase), gidBase: Number(gidBase), size: RANGE_SIZE },
    pid: process.pid,
    pidStart: Number(start),
    boot: boot!.slice(0, BOOT_CHARS),
    nonce: nonce!,
  };
}

/** symlink(2) the lease; false when the slot is taken. The directory is made on the first lease of a state root. */
function link(target: string, dir: string, slot: number): boolean {
  for (let first = true; ; first = false) {
    try {
      symlinkSync(target, join(dir, String(slot)));
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code !== 'ENOENT' || !first) throw err;
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
  }
}

/** The owner's lease, if it has one. */
export function leaseOf(ownerId: string, dir = leaseDir()): IdmapLease | undefined {
  return listLeases(dir).leases.find((l) => ownedBy(l, ownerId));
}

/** Remove exactly this lease (not a newer one of the same slot); false if it was gone already. */
export function releaseLease(l: IdmapLease, dir = leaseDir()): boolean {
  // A container's lease we took, while we live: nothing else removes it (its gc frees only
  // a dead taker's), so the readlink and the unlink need no marker: two syscalls on every
  // `run --rm` exit. (A server's may be freed by another's gc once a minute old.)
  if (l.kind === 'container' && l.pid === process.pid && l.pidStart === selfStart()) {
    const path = join(dir, String(l.slot));
    let cur: string;
    try {
      cur = readlinkSync(path);
    } catch {
      return false;
    }
    // the nonce ends the link in both formats: no decoding on the exit path
    if (!cur.endsWith(` ${l.nonce}`)) return false;
    unlinkSync(path);
    return true;
  }
  const marker = join(dir, `.rm-${l.slot}-${l.nonce}`);
  let fd: number;
  try {
    fd = openSync(marker, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // another remover has it, or died holding it
    if (!markerStale(marker)) return false;
    try {
      unlinkSync(marker);
    } catch {
      /* broken by another */
    }
    return releaseLease(l, dir);
  }
  try {
    writeSync(fd, `${process.pid} ${selfStart()}\n`);
    closeSync(fd);
    const cur = readLease(dir, l.slot);
    if (!cur || cur.nonce !== l.nonce) return false;
    unlinkSync(join(dir, String(l.slot)));
    return true;
  } finally {
    try {
      unlinkSync(marker);
    } catch {
      /* gone */
    }
  }
}

function markerStale(marker: string): boolean {
  try {
    return Date.now() - statSync(marker).mtimeMs > MARKER_STALE_MS;
  } catch {
    return true;
  }
}

/** Release every lease of an owner; returns how many there were. */
export function releaseOwner(ownerId: string, dir = leaseDir()): number {
  let n = 0;
  for (const l of listLeases(dir).leases) if (ownedBy(l, ownerId) && releaseLease(l, dir)) n++;
  return n;
}

/** Is the process that took the lease still running (the lease may not be recorded by its owner yet)? */
export function takerAlive(l: IdmapLease): boolean {
  return bootId().startsWith(l.boot) && isSameProcess(l.pid, l.pidStart);
}

/**
 * Give back the leases `gone` says have no owner any more (the reconcile after a kill -9).
 * Only leases of `kinds` are judged: `run` cannot tell a live server from a dead one.
 */
/**
 * `seen`: the leases a takeLease of this process just read, instead of a walk of its own
 * (a lease taken since is a live taker's; one freed since fails releaseLease's nonce check).
 */
export function gcLeases(kinds: LeaseOwnerKind[], gone: (l: IdmapLease) => boolean, dir = leaseDir(), seen?: IdmapLease[]): IdmapLease[] {
  const freed: IdmapLease[] = [];
  for (const l of seen ?? listLeases(dir).leases) {
    if (!kinds.includes(l.kind) || !gone(l)) continue;
    if (releaseLease(l, dir)) freed.push(l);
  }
  return freed;
}
