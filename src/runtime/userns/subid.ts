/**
 * Isolated id ranges, planned (pure): root's subordinate ids in /etc/subuid and
 * /etc/subgid (subuid(5)) cut into slots of RANGE_SIZE ids, aligned to RANGE_SIZE from
 * the start of each of root's entries. Slot n is the n-th slot of root's uid entries and
 * the n-th of its gid entries, taken together. A slot holding the uid (gid) of a real
 * user or group in /etc/passwd (/etc/group) is never handed out: a container's root
 * would own that user's files.
 */
import { BadRequest, Conflict } from '../../errors.js';
import type { Idmap } from '../plan/spec.js';

/** ids per container, as Podman's --userns=auto and Incus's isolated maps */
export const RANGE_SIZE = 65_536;

/** root's entry when it has none, as Incus/LXD add it: 1e9 ids from 1,000,000 */
export const ROOT_ENTRY_START = 1_000_000;
export const ROOT_ENTRY_SIZE = 1_000_000_000;
/** uid_map takes ids below 2^32 - 1 ((uid_t)-1 is no id) */
const ID_LIMIT = 4_294_967_295;

export interface SubidEntry {
  /** a user name or a numeric uid, as written */
  owner: string;
  start: number;
  count: number;
}

/** The ids of real users or groups: name -> id, from /etc/passwd or /etc/group. */
export type IdTable = { name: string; id: number }[];

/** Where the files are (test hooks: NOVABOX_SUBUID, NOVABOX_SUBGID, NOVABOX_PASSWD, NOVABOX_GROUP). */
export interface SubidPaths {
  subuid: string;
  subgid: string;
  passwd: string;
  group: string;
}

export function subidPaths(env: NodeJS.ProcessEnv = process.env): SubidPaths {
  return {
    subuid: env.NOVABOX_SUBUID || '/etc/subuid',
    subgid: env.NOVABOX_SUBGID || '/etc/subgid',
    passwd: env.NOVABOX_PASSWD || '/etc/passwd',
    group: env.NOVABOX_GROUP || '/etc/group',
  };
}

/** subuid(5): `name-or-uid:start:count` per line; comments and malformed lines are skipped, as shadow does. */
export function parseSubid(text: string): SubidEntry[] {
  const out: SubidEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [owner, start, count, ...rest] = line.split(':');
    if (rest.length || !owner || !/^\d+$/.test(start ?? '') || !/^\d+$/.test(count ?? '')) continue;
    out.push({ owner, start: Number(start), count: Number(count) });
  }
  return out;
}

/** passwd(5) or group(5): the name and the numeric id (third field) of each line. */
export function parseIdTable(text: string): IdTable {
  const out: IdTable = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[0] && /^\d+$/.test(f[2]!)) out.push({ name: f[0], id: Number(f[2]) });
  }
  return out;
}

/** The names root goes by: "root", "0", and any other name of uid 0 in /etc/passwd. */
function rootNames(passwd: IdTable): Set<string> {
  return new Set(['root', '0', ...passwd.filter((u) => u.id === 0).map((u) => u.name)]);
}

export function rootEntries(entries: SubidEntry[], passwd: IdTable): SubidEntry[] {
  const names = rootNames(passwd);
  return entries.filter((e) => names.has(e.owner));
}

/** How many slots root's entries hold. */
export function slotCount(root: SubidEntry[]): number {
  return root.reduce((n, e) => n + Math.floor(e.count / RANGE_SIZE), 0);
}

/** The base of slot n of root's entries (file order), computed: an entry of 1e9 ids holds 15,258 slots. */
export function slotBase(root: SubidEntry[], n: number): number {
  for (const e of root) {
    const k = Math.floor(e.count / RANGE_SIZE);
    if (n < k) return e.start + n * RANGE_SIZE;
    n -= k;
  }
  throw new RangeError(`no slot ${n}`);
}

/** The bases of every slot of root's entries, in file order. */
export function slotBases(root: SubidEntry[]): number[] {
  return Array.from({ length: slotCount(root) }, (_, n) => slotBase(root, n));
}

export interface SubidState {
  subuid: SubidEntry[];
  subgid: SubidEntry[];
  passwd: IdTable;
  group: IdTable;
  paths: SubidPaths;
}

/** A range in use: [base, base + size) of uids and of gids. */
export type UsedRange = Pick<Idmap, 'uidBase' | 'gidBase' | 'size'>;

function overlaps(aBase: number, aSize: number, bBase: number, bSize: number): boolean {
  return aBase < bBase + bSize && bBase < aBase + aSize;
}

/** The first real user (group) whose id lies in [base, base + RANGE_SIZE). */
function realIdIn(table: IdTable, base: number): { name: string; id: number } | undefined {
  return table.find((u) => u.id >= base && u.id < base + RANGE_SIZE);
}

export interface Slot {
  slot: number;
  idmap: Idmap;
}

/**
 * The slots, lowest first, that may be handed out (at most `max`): inside root's entries
 * of both files, no real user's or group's id inside, not overlapping a range in use.
 * `taken` are slot numbers leased already; `used` their ranges (a lease made before
 * /etc/subuid changed keeps its ids, so its range is avoided whatever its slot number now
 * means). Throws the one sentence that explains why there is none.
 */
export function freeSlots(s: SubidState, taken: ReadonlySet<number>, used: UsedRange[], max = Number.POSITIVE_INFINITY): Slot[] {
  const rootUid = rootEntries(s.subuid, s.passwd);
  const rootGid = rootEntries(s.subgid, s.passwd);
  const total = Math.min(slotCount(rootUid), slotCount(rootGid));
  if (total === 0) {
    const [file, entries] = slotCount(rootUid) === 0 ? [s.paths.subuid, rootUid] : [s.paths.subgid, rootGid];
    const have = entries.map((e) => `root:${e.start}:${e.count}`).join(', ');
    throw new Conflict(
      `root's subordinate ids in ${file} (${have}) are fewer than one container's ${RANGE_SIZE}: ` +
        `give root a larger range there (e.g. root:${ROOT_ENTRY_START}:${ROOT_ENTRY_SIZE}) or use --userns host`,
    );
  }
  const out: Slot[] = [];
  let clash: string | undefined;
  for (let n = 0; n < total && out.length < max; n++) {
    const uidBase = slotBase(rootUid, n);
    const gidBase = slotBase(rootGid, n);
    const user = realIdIn(s.passwd, uidBase);
    const group = realIdIn(s.group, gidBase);
    if (user || group) {
      clash ??= user
        ? `uid ${user.id} of user "${user.name}" in ${s.paths.passwd}`
        : `gid ${group!.id} of group "${group!.name}" in ${s.paths.group}`;
      continue;
    }
    if (taken.has(n)) continue;
    if (used.some((u) => overlaps(uidBase, RANGE_SIZE, u.uidBase, u.size) || overlaps(gidBase, RANGE_SIZE, u.gidBase, u.size))) continue;
    out.push({ slot: n, idmap: { uidBase, gidBase, size: RANGE_SIZE } });
  }
  if (out.length) return out;
  if (clash && taken.size === 0 && used.length === 0) {
    throw new BadRequest(
      `every id range of root's entries in ${s.paths.subuid} and ${s.paths.subgid} holds a real id (${clash}): ` +
        `move root's entries above the ids of real users and groups, or use --userns host`,
    );
  }
  throw new Conflict(
    `all ${total} id ranges of root's entries in ${s.paths.subuid} and ${s.paths.subgid} are in use` +
      `${clash ? ` or hold a real id (${clash})` : ''}: delete servers or containers, give root a larger range there, or use --userns host`,
  );
}

/**
 * Where root's entry goes when it has none: ROOT_ENTRY_SIZE ids from ROOT_ENTRY_START,
 * or the first place after it clear of every other entry of both files and of every real
 * uid and gid; failing that, the largest such gap above ROOT_ENTRY_START that holds at
 * least one range.
 */
export function planRootEntry(s: Pick<SubidState, 'subuid' | 'subgid' | 'passwd' | 'group'>): { start: number; count: number } | undefined {
  const names = rootNames(s.passwd);
  const busy: [number, number][] = [
    ...[...s.subuid, ...s.subgid].filter((e) => !names.has(e.owner)).map((e): [number, number] => [e.start, e.start + e.count]),
    ...[...s.passwd, ...s.group].map((u): [number, number] => [u.id, u.id + 1]),
  ].sort((a, b) => a[0] - b[0]);
  let best: { start: number; count: number } | undefined;
  let at = ROOT_ENTRY_START;
  const consider = (end: number): boolean => {
    const count = Math.min(end, ID_LIMIT) - at;
    if (count >= ROOT_ENTRY_SIZE) {
      best = { start: at, count: ROOT_ENTRY_SIZE };
      return true;
    }
    if (count >= RANGE_SIZE && (!best || count > best.count)) best = { start: at, count: count - (count % RANGE_SIZE) };
    return false;
  };
  for (const [lo, hi] of busy) {
    if (hi <= at) continue;
    if (lo > at && consider(lo)) return best;
    at = Math.max(at, hi);
  }
  consider(ID_LIMIT);
  return best;
}

/** "uid 0 1065536 65536, gid 0 1065536 65536": a range as Incus shows volatile.idmap; "host" for none. */
export function formatIdmap(m: Idmap | undefined): string {
  return m ? `uid 0 ${m.uidBase} ${m.size}, gid 0 ${m.gidBase} ${m.size}` : 'host';
}

/** --userns and config.json's "userns": auto (a range of its own) or host (none). */
export type UsernsMode = 'auto' | 'host';
export const USERNS_MODES: readonly UsernsMode[] = ['auto', 'host'];

export function parseUserns(value: unknown, what = '--userns'): UsernsMode {
  if (value === 'auto' || value === 'host') return value;
  throw new BadRequest(
    `invalid ${what} ${JSON.stringify(value)}: expected auto (an id range of its own) or host (root inside is root on the host)`,
  );
}
