/**
 * The C lease taker (native-bindings/src/idmap.c, `run`'s start path) against the
 * JavaScript one it stands in for (leases.ts takeLease over subid.ts): on the same files
 * and links both take the same slot and range, and where the JavaScript has something to
 * say or do (first use, bad input, none free) the C one makes nothing and leaves it to it.
 * Temporary files only, no root. Needs build/novabox.node (npm run build).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { idmapTake, nativeBuildDir } from '../../../../src/sys/native.js';
import { loadSubids } from '../../../../src/runtime/userns/files.js';
import {
  decodeLease,
  leaseFromNative,
  listLeases,
  releaseLease,
  takeLease,
  type IdmapLease,
} from '../../../../src/runtime/userns/leases.js';
import { selfStart, bootId } from '../../../../src/runtime/proc.js';

const built = existsSync(join(nativeBuildDir(), 'novabox.node')) && process.env.NOVABOX_FFI !== 'koffi';
const PASSWD = 'root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n';
const GROUP = 'root:x:0:\nbob:x:1000:\n';

describe.skipIf(!built)('C id range lease (novabox.node idmapTake; skipped: not built or NOVABOX_FFI=koffi)', () => {
  let dir: string;
  const files = (d: string): [string, string, string, string] => [
    join(d, 'subuid'),
    join(d, 'subgid'),
    join(d, 'passwd'),
    join(d, 'group'),
  ];
  const paths = (d: string) => {
    const [subuid, subgid, passwd, group] = files(d);
    return { subuid, subgid, passwd, group };
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-clease-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** two copies of a setup: one for C, one for JavaScript */
  function setup(subuid: string, subgid: string, links: Record<string, string> = {}, passwd = PASSWD, group = GROUP): [string, string] {
    const out: string[] = [];
    for (const side of ['c', 'js']) {
      const d = join(dir, side);
      mkdirSync(join(d, 'idmap'), { recursive: true });
      writeFileSync(join(d, 'subuid'), subuid);
      writeFileSync(join(d, 'subgid'), subgid);
      writeFileSync(join(d, 'passwd'), passwd);
      writeFileSync(join(d, 'group'), group);
      for (const [name, target] of Object.entries(links)) symlinkSync(target, join(d, 'idmap', name));
      out.push(d);
    }
    return out as [string, string];
  }

  function both(c: string, js: string, id: string): { c?: IdmapLease; js: IdmapLease; seen: IdmapLease[] } {
    const seen: IdmapLease[] = [];
    const text = idmapTake(join(c, 'idmap'), files(c), `c${id}`);
    const js1 = takeLease(
      'container',
      id,
      loadSubids(() => {}, paths(js)),
      join(js, 'idmap'),
    );
    return { c: text === undefined ? undefined : leaseFromNative('container', id, text, seen), js: js1, seen };
  }

  it('takes the slot and range the JavaScript takes, writes the same link format, and lists what it read', () => {
    const links = {
      '0': 'nbidmap1 server aaa 1000000 1000000 65536 1 2 boot 3 n1',
      '2': 'cbbbbbbbbbbbbbbbb mtc0 = 1 2 0123abcd n2',
      '7': 'not a lease',
      '.rm-0-n1': 'x',
    };
    const [c, js] = setup('# comment\nbob:500000:65536\ntoor:1000000:1000000\n  root:3000000:200000  \n', 'root:1000000:2000000\n', links);
    const id = 'f'.repeat(64);
    for (let i = 0; i < 8; i++) {
      const r = both(c, js, `${id.slice(0, 63)}${i}`);
      expect(r.c).toBeDefined();
      expect([r.c!.slot, r.c!.idmap]).toEqual([r.js.slot, r.js.idmap]);
      const target = readlinkSync(join(c, 'idmap', String(r.c!.slot)));
      expect(decodeLease(r.c!.slot, target)).toEqual({ ...r.c, boot: bootId().slice(0, 8) });
      expect(r.c!.pidStart).toBe(selfStart());
      if (i === 0) expect(r.seen.map((l) => l.slot).sort()).toEqual([0, 2]); // '7' is taken but no lease
    }
    expect(listLeases(join(c, 'idmap')).slots).toEqual(listLeases(join(js, 'idmap')).slots);
  });

  it('skips slots holding a real id, as the JavaScript does', () => {
    const passwd = `${PASSWD}svc:x:1065600:1065600::/:/bin/false\n`;
    const [c, js] = setup('root:1000000:655360\n', 'root:2000000:655360\n', {}, passwd, `${GROUP}g:x:2131072:\n`);
    const r1 = both(c, js, 'a1');
    const r2 = both(c, js, 'a2');
    expect([r1.c!.slot, r2.c!.slot]).toEqual([0, 3]); // 1: uid 1065600 is svc's; 2: gid 2131072 is g's
    expect([r1.js.slot, r2.js.slot]).toEqual([0, 3]);
  });

  it('avoids a range a link holds (base 36: lfls is 1000000) even when its slot number means another range now', () => {
    const [c, js] = setup('root:1000000:655360\n', 'root:1000000:655360\n', { '9': 'cowner lfls = 1 2 0123abcd n9' });
    const r = both(c, js, 'x');
    expect([r.c!.slot, r.c!.idmap.uidBase]).toEqual([1, 1065536]);
    expect([r.js.slot, r.js.idmap.uidBase]).toEqual([1, 1065536]);
  });

  it('leaves to the JavaScript, making nothing: no entry for root, too few ids, none free, no lease directory, a file missing, odd numbers or names', () => {
    const cases: [string, string, Record<string, string>?][] = [
      ['bob:1000000:65536\n', 'root:1000000:65536\n'], // root has no uid entry: JavaScript adds one
      ['root:1000000:100\n', 'root:1000000:65536\n'], // fewer than one range
      ['root:1000000:65536\n', 'root:1000000:65536\n', { '0': 'cx 1 = 1 1 ab n' }], // none free: its sentence
      ['root:10000000000:65536\n', 'root:1000000:65536\n'], // past 2^32: Number() reads it its way
      ['root:1000000:65536\n', 'root:1000000:65536\n', { '007': 'cx 1 = 1 1 ab n' }], // a slot name JavaScript reads as 7
      ['root:1000000:65536\n', 'root:1000000:65536\n', { '1': 'nbidmap1 server a 1e3 2 3 4 5 boot 6 n' }], // Number('1e3')
      ['root\u00a0:1000000:65536\n', 'root:1000000:65536\n'], // a space only JavaScript's trim() knows
      ['root:1000000:65536\n\0root:2000000:65536\n', 'root:1000000:131072\n'], // a NUL: C strings would stop there
    ];
    for (const [subuid, subgid, links] of cases) {
      const [c] = setup(subuid, subgid, links);
      const before = readdirSync(join(c, 'idmap')).sort();
      expect(idmapTake(join(c, 'idmap'), files(c), 'cabc')).toBeUndefined();
      expect(readdirSync(join(c, 'idmap')).sort()).toEqual(before);
      rmSync(dir, { recursive: true });
      mkdirSync(dir);
    }
    const [c] = setup('root:1000000:65536\n', 'root:1000000:65536\n');
    rmSync(join(c, 'idmap'), { recursive: true });
    expect(idmapTake(join(c, 'idmap'), files(c), 'cabc')).toBeUndefined(); // the first lease: JavaScript makes the directory
    rmSync(join(c, 'group'));
    mkdirSync(join(c, 'idmap'));
    expect(idmapTake(join(c, 'idmap'), files(c), 'cabc')).toBeUndefined();
    expect(readdirSync(join(c, 'idmap'))).toEqual([]);
  });

  it("gives a lease its own release takes back (the run's exit path)", () => {
    const [c] = setup('root:1000000:655360\n', 'root:1000000:655360\n');
    const l = leaseFromNative('container', 'abc', idmapTake(join(c, 'idmap'), files(c), 'cabc')!);
    expect(l.owner).toBe('abc');
    expect(releaseLease(l, join(c, 'idmap'))).toBe(true);
    expect(readdirSync(join(c, 'idmap'))).toEqual([]);
  });
});
