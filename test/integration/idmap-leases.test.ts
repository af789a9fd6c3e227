/**
 * Id range leases for real, through bin/novabox as root: concurrent CLIs of both kinds
 * (`run`, which never opens the database, and `server create`) get disjoint ranges;
 * ranges come back on rm, delete, a failed build and after a kill -9; bad subordinate id
 * files are refused in one sentence with nothing left behind. Each test has its own
 * /etc/subuid and /etc/subgid pair (NOVABOX_SUBUID / NOVABOX_SUBGID) and state root.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { census } from '../helpers/census.js';
import { IN_GUEST, killCliAt, runCli, tempRoot } from '../helpers/run-cli.js';
import { listLeases } from '../../src/runtime/userns/leases.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('id range leases (root, real CLIs)', () => {
  let root: string;
  let remove: () => void;
  let ids: string;
  let env: NodeJS.ProcessEnv;
  const nb = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(args, { root, env: { ...env, ...extra }, timeoutMs: 60_000 });
  const leases = () => listLeases(join(root, 'idmap')).leases;
  const files = (sub: string) => (existsSync(join(root, sub)) ? readdirSync(join(root, sub)) : []);

  beforeEach(() => {
    ({ root, remove } = tempRoot('nbx-idmap-'));
    ids = mkdtempSync(join(tmpdir(), 'nbx-subid-'));
    writeFileSync(join(ids, 'subuid'), 'root:1000000:1000000000\n');
    writeFileSync(join(ids, 'subgid'), 'root:1000000:1000000000\n');
    env = { NOVABOX_SUBUID: join(ids, 'subuid'), NOVABOX_SUBGID: join(ids, 'subgid') };
  });
  afterEach(() => {
    remove();
    rmSync(ids, { recursive: true, force: true });
  });

  it('50 concurrent CLIs (run and server create) get 50 disjoint ranges; rm and delete give them back', async () => {
    expect((await nb(['run', '--rm', '--network', 'none', 'busybox', 'true'])).exitCode).toBe(0); // the image, built once
    expect(leases()).toEqual([]);
    const servers = IN_GUEST ? 4 : 10;
    const runs = IN_GUEST ? 8 : 40;
    const results = await Promise.all([
      ...Array.from({ length: runs }, (_, i) => nb(['run', '--network', 'none', '--name', `c${i}`, 'busybox', 'true'])),
      ...Array.from({ length: servers }, (_, i) =>
        nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', `s${i}`, '-f', 'value', '-c', 'idmap']),
      ),
    ]);
    for (const r of results) expect(r.exitCode, r.stderr).toBe(0);
    const all = leases();
    expect(all).toHaveLength(runs + servers);
    expect(new Set(all.map((l) => l.slot)).size).toBe(all.length);
    const sorted = [...all].sort((a, b) => a.idmap.uidBase - b.idmap.uidBase);
    for (let i = 1; i < sorted.length; i++) {
      expect(sorted[i]!.idmap.uidBase).toBeGreaterThanOrEqual(sorted[i - 1]!.idmap.uidBase + 65536);
      expect(sorted[i]!.idmap.gidBase).not.toBe(sorted[i - 1]!.idmap.gidBase);
    }
    // each server shows the range its lease holds
    const shown = results.slice(runs).map((r) => r.stdout.trim());
    const serverLeases = all.filter((l) => l.kind === 'server');
    expect(shown.sort()).toEqual(serverLeases.map((l) => `uid 0 ${l.idmap.uidBase} 65536, gid 0 ${l.idmap.gidBase} 65536`).sort());
    // stop/start keeps it
    const before = (await nb(['server', 'show', 's0', '-f', 'value', '-c', 'idmap'])).stdout;
    expect((await nb(['server', 'stop', 's0'])).exitCode).toBe(0);
    expect((await nb(['server', 'start', 's0'])).exitCode).toBe(0);
    expect((await nb(['server', 'show', 's0', '-f', 'value', '-c', 'idmap'])).stdout).toBe(before);
    // kept run containers keep theirs until rm
    for (let i = 0; i < runs; i++) expect((await nb(['rm', `c${i}`])).exitCode).toBe(0);
    expect(leases().map((l) => l.kind)).toEqual(Array(servers).fill('server'));
    expect((await nb(['server', 'delete', ...Array.from({ length: servers }, (_, i) => `s${i}`)])).exitCode).toBe(0);
    expect(leases()).toEqual([]);
    expect(files('idmap')).toEqual([]);
  }, 240_000);

  it('run --rm gives its range back at exit; --userns host takes none; config.json sets the default', async () => {
    const r = await nb(['run', '--rm', '--network', 'none', 'busybox', 'true']);
    expect(r.exitCode).toBe(0);
    expect(files('idmap')).toEqual([]);
    writeFileSync(join(root, 'config.json'), JSON.stringify({ userns: 'host' }));
    const s = await nb([
      'server',
      'create',
      '--image',
      'busybox',
      '--flavor',
      'c1.nano',
      '--network',
      'none',
      'h',
      '-f',
      'value',
      '-c',
      'idmap',
    ]);
    expect(s.stdout).toBe('host\n');
    const a = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', '--userns', 'auto', 'a']);
    expect(a.exitCode).toBe(0);
    expect(leases().map((l) => l.owner)).toHaveLength(1);
    expect((await nb(['server', 'delete', 'h', 'a'])).exitCode).toBe(0);
    expect(files('idmap')).toEqual([]);
  }, 60_000);

  it('kill -9 of run after its lease was taken: the next command frees the range', async () => {
    expect((await nb(['run', '--rm', '--network', 'none', 'busybox', 'true'])).exitCode).toBe(0);
    await killCliAt('idmap-leased', ['run', '--rm', '--network', 'none', 'busybox', 'true'], root);
    // killCliAt's environment has no test subid files: the CLI read the shared ones of the tests
    expect(leases()).toHaveLength(1);
    expect((await nb(['ps', '-a'])).exitCode).toBe(0);
    expect(leases()).toEqual([]);
  }, 60_000);

  it('kill -9 of server create after its lease was recorded: the next command frees the range', async () => {
    await killCliAt(
      'create-recorded',
      ['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', 'victim'],
      root,
    );
    expect(leases()).toHaveLength(1);
    const s = JSON.parse((await nb(['server', 'show', 'victim', '-f', 'json', '-c', 'status', '-c', 'idmap'])).stdout);
    expect(s).toEqual({ status: 'ERROR', idmap: 'none' });
    expect(leases()).toEqual([]);
    expect((await nb(['server', 'delete', 'victim'])).exitCode).toBe(0);
  }, 60_000);

  it('kill -9 of server create inside the transaction that records its range: the link stays, the next server list frees it', async () => {
    await killCliAt(
      'server-idmap-leased',
      ['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', 'torn'],
      root,
    );
    expect(leases()).toHaveLength(1);
    const list = await nb(['server', 'list', '-f', 'value', '-c', 'Name']);
    expect(list.exitCode).toBe(0);
    expect(list.stdout).not.toContain('torn'); // the transaction rolled back: no record
    expect(leases()).toEqual([]);
  }, 60_000);

  it('one range in all, held by a create killed before its record: the next create frees it and takes it', async () => {
    writeFileSync(join(ids, 'subuid'), 'root:1000000:65536\n');
    writeFileSync(join(ids, 'subgid'), 'root:1000000:65536\n');
    await killCliAt(
      'server-idmap-leased',
      ['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', 'torn'],
      root,
      undefined,
      env,
    );
    const torn = leases();
    expect(torn).toHaveLength(1);
    const r = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', 'next']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const now = leases();
    expect(now).toHaveLength(1);
    expect(now[0]!.slot).toBe(torn[0]!.slot);
    expect(now[0]!.nonce).not.toBe(torn[0]!.nonce);
    expect((await nb(['server', 'delete', '--force', 'next'])).exitCode).toBe(0);
    expect(leases()).toEqual([]);
  }, 60_000);

  it('a failed build gives its range back', async () => {
    expect((await nb(['run', '--rm', '--network', 'none', 'busybox', 'true'])).exitCode).toBe(0);
    const work = mkdtempSync(join(tmpdir(), 'nbx-badimg-'));
    try {
      const layer = readdirSync(join(root, 'layers/sha256'))[0]!;
      const img = join(work, 'img');
      execFileSync('cp', ['-a', join(root, 'layers/sha256', layer, '.'), img]);
      rmSync(join(img, 'proc'), { recursive: true, force: true });
      symlinkSync('../../../nbx-nowhere-proc', join(img, 'proc'));
      execFileSync('tar', ['-C', img, '-cf', `${img}.tar`, '.']);
      expect((await nb(['image', 'create', '--file', `${img}.tar`, 'badproc'])).exitCode).toBe(0);
      const r = await nb(['server', 'create', '--image', 'badproc', '--flavor', 'c1.nano', '--network', 'none', 'bad']);
      expect(r.exitCode).toBe(1);
      expect(leases()).toEqual([]);
      expect((await nb(['server', 'show', 'bad', '-f', 'value', '-c', 'idmap'])).stdout).toBe('none\n');
      expect((await nb(['server', 'delete', 'bad'])).exitCode).toBe(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 60_000);

  it('refuses an exhausted range, a missing unwritable file and a range over real users in one sentence, leaving nothing', async () => {
    expect((await nb(['run', '--rm', '--network', 'none', 'busybox', 'true'])).exitCode).toBe(0);
    const start = census(root);
    writeFileSync(join(ids, 'subuid'), 'root:1000000:65536\n');
    writeFileSync(join(ids, 'subgid'), 'root:1000000:65536\n');
    expect((await nb(['run', '--network', 'none', '--name', 'one', 'busybox', 'true'])).exitCode).toBe(0);
    const held = files('idmap');
    expect(held).toHaveLength(1);
    const one = census(root);
    const full = await nb(['run', '--rm', '--network', 'none', 'busybox', 'true']);
    expect(full.exitCode).not.toBe(0);
    expect(full.stderr).toMatch(
      /^novabox: all 1 id ranges of root's entries in \S+ and \S+ are in use: delete servers or containers, give root a larger range there, or use --userns host\n$/,
    );
    const create = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--network', 'none', 'x']);
    expect(create.exitCode).not.toBe(0);
    expect(create.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect((await nb(['server', 'list', '-f', 'value'])).stdout).toBe('');
    expect(census(root)).toEqual(one);
    expect((await nb(['rm', 'one'])).exitCode).toBe(0);

    const missing = await nb(['run', '--rm', '--network', 'none', 'busybox', 'true'], {
      NOVABOX_SUBUID: join(ids, 'no-such-dir', 'subuid'),
    });
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toMatch(
      /^novabox: cannot add root's subordinate ids to \S+\/no-such-dir\/subuid \(ENOENT\): add a line like root:1000000:1000000000 to it yourself, or use --userns host\n$/,
    );

    writeFileSync(join(ids, 'passwd'), 'root:x:0:0::/root:/bin/sh\nldap:x:1000042:100::/:/bin/sh\n');
    const real = await nb(['run', '--rm', '--network', 'none', 'busybox', 'true'], { NOVABOX_PASSWD: join(ids, 'passwd') });
    expect(real.exitCode).not.toBe(0);
    expect(real.stderr).toMatch(
      /^novabox: every id range of root's entries in \S+ and \S+ holds a real id \(uid 1000042 of user "ldap" in \S+\): move root's entries above the ids of real users and groups, or use --userns host\n$/,
    );
    expect(census(root)).toEqual(start);
    expect(readdirSync(ids).sort()).toEqual(['passwd', 'subgid', 'subuid']);
  }, 60_000);
});
