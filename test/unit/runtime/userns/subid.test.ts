import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  formatIdmap,
  freeSlots,
  parseIdTable,
  parseSubid,
  parseUserns,
  planRootEntry,
  rootEntries,
  slotBases,
  type SubidState,
} from '../../../../src/runtime/userns/subid.js';
import { parseUsernsDefault } from '../../../../src/runtime/userns/config.js';
import { loadSubids } from '../../../../src/runtime/userns/files.js';
import {
  decodeLease,
  encodeLease,
  gcLeases,
  leaseCreatedMs,
  listLeases,
  ownedBy,
  releaseLease,
  releaseOwner,
  freeSlotOf,
  takeLease,
  takeLeaseOf,
} from '../../../../src/runtime/userns/leases.js';

const PATHS = { subuid: '/etc/subuid', subgid: '/etc/subgid', passwd: '/etc/passwd', group: '/etc/group' };
const PASSWD = parseIdTable('root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\nnobody:x:65534:65534::/:/sbin/nologin\n');
const GROUP = parseIdTable('root:x:0:\nwheel:x:10:root\nbob:x:1000:\n');

function state(subuid: string, subgid = subuid, passwd = PASSWD, group = GROUP): SubidState {
  return { subuid: parseSubid(subuid), subgid: parseSubid(subgid), passwd, group, paths: PATHS };
}

describe('subordinate id files', () => {
  it('parses name and uid forms, several lines, skipping comments and malformed lines', () => {
    const e = parseSubid('# comment\nroot:100000:65536\n\n0:300000:131072\nbob:165536:65536\nbad line\nroot:x:1\nroot:1:2:3\n');
    expect(e).toEqual([
      { owner: 'root', start: 100000, count: 65536 },
      { owner: '0', start: 300000, count: 131072 },
      { owner: 'bob', start: 165536, count: 65536 },
    ]);
    expect(rootEntries(e, PASSWD).map((x) => x.start)).toEqual([100000, 300000]);
  });

  it("counts another name of uid 0 in /etc/passwd as root's", () => {
    const passwd = parseIdTable('toor:x:0:0::/root:/bin/sh\n');
    expect(rootEntries(parseSubid('toor:500000:65536\n'), passwd)).toHaveLength(1);
  });

  it.each([
    [65536, 1],
    [65535, 0],
    [200000, 3],
  ])('cuts %i ids into %i aligned slots', (count, n) => {
    expect(slotBases([{ owner: 'root', start: 100000, count }])).toEqual(Array.from({ length: n }, (_, i) => 100000 + i * 65536));
  });

  it('slot n is the n-th range of every entry in file order, uid and gid together', () => {
    const s = state('root:100000:65536\nroot:1000000:131072\n', 'root:2000000:196608\n');
    expect(freeSlots(s, new Set(), []).map((x) => x.idmap)).toEqual([
      { uidBase: 100000, gidBase: 2000000, size: 65536 },
      { uidBase: 1000000, gidBase: 2065536, size: 65536 },
      { uidBase: 1065536, gidBase: 2131072, size: 65536 },
    ]);
  });

  it('skips taken slots and ranges overlapping a lease made under another layout', () => {
    const s = state('root:1000000:327680\n');
    const free = freeSlots(s, new Set([0]), [{ uidBase: 1100000, gidBase: 1100000, size: 65536 }]);
    expect(free.map((x) => x.slot)).toEqual([3, 4]); // 1: 1065536..1131071 and 2: 1131072.. overlap the old lease
  });

  it("skips a slot holding a real user's uid or a real group's gid", () => {
    const passwd = parseIdTable('root:x:0:0::/:/bin/sh\nldap:x:1070000:100::/:/bin/sh\n');
    const group = parseIdTable('root:x:0:\nstaff:x:1200000:\n');
    const s = state('root:1000000:262144\n', 'root:1000000:262144\n', passwd, group);
    expect(freeSlots(s, new Set(), []).map((x) => x.slot)).toEqual([0, 2]); // 1070000 is in slot 1, 1200000 in slot 3
  });

  it('refuses in one sentence when every slot holds a real id', () => {
    const passwd = parseIdTable('root:x:0:0::/:/bin/sh\nldap:x:1000001:100::/:/bin/sh\n');
    expect(() => freeSlots(state('root:1000000:65536\n', 'root:1000000:65536\n', passwd), new Set(), [])).toThrow(
      /^every id range of root's entries in \/etc\/subuid and \/etc\/subgid holds a real id \(uid 1000001 of user "ldap" in \/etc\/passwd\): move root's entries above the ids of real users and groups, or use --userns host$/,
    );
  });

  it('refuses a range smaller than one container, naming the file and the fix', () => {
    expect(() => freeSlots(state('root:100000:1000\n', 'root:100000:65536\n'), new Set(), [])).toThrow(
      "root's subordinate ids in /etc/subuid (root:100000:1000) are fewer than one container's 65536: give root a larger range there (e.g. root:1000000:1000000000) or use --userns host",
    );
  });

  it('refuses when every slot is in use', () => {
    const e = (() => {
      try {
        freeSlots(state('root:100000:131072\n'), new Set([0, 1]), []);
      } catch (err) {
        return err as Error & { code: string };
      }
    })();
    expect(e?.code).toBe('conflict');
    expect(e?.message).toBe(
      "all 2 id ranges of root's entries in /etc/subuid and /etc/subgid are in use: delete servers or containers, give root a larger range there, or use --userns host",
    );
  });

  it("places root's new entry as Incus does, clear of other users' entries and real ids", () => {
    expect(planRootEntry(state(''))).toEqual({ start: 1_000_000, count: 1_000_000_000 });
    expect(planRootEntry(state('bob:1000000:65536\n', 'eve:1065536:10\n'))).toEqual({ start: 1_065_546, count: 1_000_000_000 });
    const passwd = parseIdTable('root:x:0:0::/:/bin/sh\nbig:x:2000000:1::/:/bin/sh\n');
    expect(planRootEntry(state('', '', passwd))).toEqual({ start: 2_000_001, count: 1_000_000_000 });
    // no room for 1e9: the largest gap, in whole ranges
    const crowded = parseIdTable(
      'root:x:0:0::/:/bin/sh\na:x:2000000:1::/:/bin/sh\nb:x:4000000000:1::/:/bin/sh\nc:x:3000000000:1::/:/bin/sh\n',
    );
    expect(planRootEntry(state('x:5000000:2994999999\n', '', crowded))).toEqual({ start: 3_000_000_001, count: 999_948_288 });
  });

  it('shows a range as Incus shows volatile.idmap', () => {
    expect(formatIdmap({ uidBase: 1065536, gidBase: 1065536, size: 65536 })).toBe('uid 0 1065536 65536, gid 0 1065536 65536');
    expect(formatIdmap(undefined)).toBe('host');
  });

  it('reads --userns and config.json\'s "userns"', () => {
    expect(parseUserns('auto')).toBe('auto');
    expect(() => parseUserns('keep-id')).toThrow(/^invalid --userns "keep-id": expected auto/);
    expect(parseUsernsDefault(undefined, 'c.json')).toBe('auto');
    expect(parseUsernsDefault('{"network":{}}', 'c.json')).toBe('auto');
    expect(parseUsernsDefault('{"userns":"host"}', 'c.json')).toBe('host');
    expect(() => parseUsernsDefault('{"userns":1}', 'c.json')).toThrow(/^invalid "userns" in c.json 1/);
  });
});

describe('adding root entry and leasing slots (temp files)', () => {
  let dir: string;
  let notices: string[];
  const paths = () => ({
    subuid: join(dir, 'subuid'),
    subgid: join(dir, 'subgid'),
    passwd: join(dir, 'passwd'),
    group: join(dir, 'group'),
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-subid-'));
    notices = [];
    writeFileSync(join(dir, 'passwd'), 'root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/:/bin/sh\n');
    writeFileSync(join(dir, 'group'), 'root:x:0:\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('adds root:1000000:1000000000 to missing files and says so once', () => {
    const s = loadSubids((l) => notices.push(l), paths());
    expect(readFileSync(join(dir, 'subuid'), 'utf8')).toBe('root:1000000:1000000000\n');
    expect(readFileSync(join(dir, 'subgid'), 'utf8')).toBe('root:1000000:1000000000\n');
    expect(notices).toEqual([`novabox: added root:1000000:1000000000 to ${dir}/subuid and ${dir}/subgid for isolated id ranges`]);
    expect(rootEntries(s.subuid, s.passwd)).toHaveLength(1);
    loadSubids((l) => notices.push(l), paths());
    expect(notices).toHaveLength(1);
    expect(readdirSync(dir).sort()).toEqual(['group', 'passwd', 'subgid', 'subuid']); // no lock or temporary file left
  });

  it("appends to the file that lacks root, keeping other users' lines", () => {
    writeFileSync(join(dir, 'subuid'), 'bob:1000000:65536\nroot:100000:65536');
    writeFileSync(join(dir, 'subgid'), 'bob:1000000:65536\n');
    loadSubids((l) => notices.push(l), paths());
    expect(readFileSync(join(dir, 'subuid'), 'utf8')).toBe('bob:1000000:65536\nroot:100000:65536');
    expect(readFileSync(join(dir, 'subgid'), 'utf8')).toBe('bob:1000000:65536\nroot:1065536:1000000000\n');
    expect(notices).toEqual([`novabox: added root:1065536:1000000000 to ${dir}/subgid for isolated id ranges`]);
  });

  it('refuses in one sentence when the file cannot be written, and leaves nothing', () => {
    const p = { ...paths(), subuid: join(dir, 'missing-dir', 'subuid') };
    expect(() => loadSubids((l) => notices.push(l), p)).toThrow(
      new RegExp(
        `^cannot add root's subordinate ids to ${dir}/missing-dir/subuid \\(ENOENT\\): add a line like root:1000000:1000000000 to it yourself, or use --userns host$`,
      ),
    );
    expect(notices).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(['group', 'passwd']);
  });

  it('refuses a path whose parent is a file (ENOTDIR), whoever runs it, and leaves nothing', () => {
    writeFileSync(join(dir, 'a-file'), '');
    const p = { ...paths(), subgid: join(dir, 'a-file', 'subgid') };
    expect(() => loadSubids((l) => notices.push(l), p)).toThrow(/^cannot read .*\/a-file\/subgid/);
    expect(notices).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(['a-file', 'group', 'passwd']);
  });

  it("takes exactly a given range (a live migration's arrival) or nothing: not when leased, overlapped, or not a slot of root's entries here", () => {
    writeFileSync(join(dir, 'subuid'), 'root:1000000:196608\n');
    writeFileSync(join(dir, 'subgid'), 'root:2000000:196608\n');
    const leases = join(dir, 'idmap');
    const s = loadSubids(() => {}, paths());
    const want = { uidBase: 1065536, gidBase: 2065536 };
    expect(freeSlotOf(s, want, leases)).toEqual({ slot: 1, idmap: { ...want, size: 65536 } });
    const l = takeLeaseOf('server', 'mover', s, want, leases);
    expect(l).toMatchObject({ slot: 1, owner: 'mover', idmap: { ...want, size: 65536 } });
    expect(listLeases(leases).leases.map((x) => [x.slot, x.owner])).toEqual([[1, 'mover']]);
    // taken now: nothing more is taken
    expect(freeSlotOf(s, want, leases)).toBeUndefined();
    expect(takeLeaseOf('server', 'other', s, want, leases)).toBeUndefined();
    // not a slot here: a uid base off the slots, uid and gid of different slots, beyond the entries
    expect(takeLeaseOf('server', 'x', s, { uidBase: 1000001, gidBase: 2000000 }, leases)).toBeUndefined();
    expect(takeLeaseOf('server', 'x', s, { uidBase: 1000000, gidBase: 2065536 }, leases)).toBeUndefined();
    expect(takeLeaseOf('server', 'x', s, { uidBase: 1196608, gidBase: 2196608 }, leases)).toBeUndefined();
    expect(readdirSync(leases)).toEqual(['1']);
    // the next ordinary lease goes around it
    expect(takeLease('container', 'c', s, leases).slot).toBe(0);
    expect(releaseOwner('mover', leases) + releaseOwner('c', leases)).toBe(2);
    expect(takeLeaseOf('server', 'mover', s, want, leases)?.slot).toBe(1);
    expect(releaseOwner('mover', leases)).toBe(1);
  });

  it('takes the lowest free slot, releases exactly its own lease, and gc frees only what it is told', () => {
    writeFileSync(join(dir, 'subuid'), 'root:1000000:196608\n');
    writeFileSync(join(dir, 'subgid'), 'root:2000000:196608\n');
    const leases = join(dir, 'idmap');
    const s = loadSubids(() => {}, paths());
    const a = takeLease('server', 'a', s, leases);
    const b = takeLease('container', 'b', s, leases);
    expect([a.slot, b.slot]).toEqual([0, 1]);
    expect(b.idmap).toEqual({ uidBase: 1065536, gidBase: 2065536, size: 65536 });
    expect(decodeLease(0, `nbidmap1 server a 1 2 3 4 5 boot 6 n`)).toMatchObject({
      owner: 'a',
      idmap: { uidBase: 1, gidBase: 2, size: 3 },
      createdMs: 6,
    });
    expect(releaseLease(a, leases)).toBe(true);
    const c = takeLease('container', 'c', s, leases);
    expect(c.slot).toBe(0);
    expect(releaseLease(a, leases)).toBe(false); // a's generation is gone: c's lease of the same slot stays
    expect(
      listLeases(leases)
        .leases.map((l) => l.owner)
        .sort(),
    ).toEqual(['b', 'c']);
    expect(gcLeases(['server'], () => true, leases)).toEqual([]); // only containers' here
    expect(gcLeases(['container'], (l) => l.owner === 'b', leases).map((l) => l.owner)).toEqual(['b']);
    expect([takeLease('container', 'd', s, leases).slot, takeLease('container', 'e', s, leases).slot]).toEqual([1, 2]);
    expect(() => takeLease('container', 'f', s, leases)).toThrow(/^all 3 id ranges of root's entries in .* are in use/);
    expect(releaseOwner('c', leases) + releaseOwner('d', leases) + releaseOwner('e', leases)).toBe(3);
    expect(readdirSync(leases)).toEqual([]); // no removal marker left
    expect(existsSync(join(dir, 'idmap'))).toBe(true);
    mkdirSync(join(leases, 'x'));
    expect(listLeases(leases).slots.size).toBe(0);
  });
  it('writes a link ext4 keeps in its inode (at most 59 bytes), naming the owner by a prefix of its id', () => {
    writeFileSync(join(dir, 'subuid'), 'root:1000000:1000000000\n');
    writeFileSync(join(dir, 'subgid'), 'root:1000000:1000000000\n');
    const leases = join(dir, 'idmap');
    const s = loadSubids(() => {}, paths());
    const id = 'f'.repeat(64);
    const l = takeLease('container', id, s, leases);
    const target = readlinkSync(join(leases, String(l.slot)));
    expect(target.length).toBeLessThanOrEqual(59);
    expect(decodeLease(l.slot, target)).toEqual(l);
    expect(l.owner).toBe('f'.repeat(16));
    expect([ownedBy(l, id), ownedBy(l, 'f'.repeat(16)), ownedBy(l, `${'f'.repeat(15)}e`)]).toEqual([true, true, false]);
    expect(Math.abs(leaseCreatedMs(l, leases) - Date.now())).toBeLessThan(60_000);
    // the longest: the highest ids, pid and start time a link may hold, a server's uuid
    const worst = encodeLease({
      kind: 'server',
      owner: '01234567-89ab-4cde-8f01-23456789abcd'.slice(0, 16),
      idmap: { uidBase: 4_294_901_760, gidBase: 4_294_836_224, size: 65536 },
      pid: 4_194_304,
      pidStart: 36 ** 6, // 252 days of uptime at 100 ticks a second
      boot: '0123abcd',
      nonce: 'zzzzzzzz',
    });
    expect(worst.length).toBeLessThanOrEqual(65); // past 59 only on hosts up that long with ids that high: a slower link, same meaning
    expect(decodeLease(3, worst)).toMatchObject({
      kind: 'server',
      idmap: { uidBase: 4_294_901_760, gidBase: 4_294_836_224 },
      pid: 4_194_304,
    });
    expect(decodeLease(3, 'c0123 1 = 1 1 ab n')).toMatchObject({ owner: '0123', idmap: { uidBase: 1, gidBase: 1, size: 65536 } });
    expect([decodeLease(3, 'x0123 1 = 1 1 ab n'), decodeLease(3, 'c0123 1 = 1 1 ab'), decodeLease(3, 'c0123 1 = 1 1 AB n')]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect(releaseLease(l, leases)).toBe(true);
  });
});
