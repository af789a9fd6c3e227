/**
 * Instance data for real (issue 17): keypairs through the CLI, a busybox server (no
 * cloud-init) created with --key-name, --user-data, --property and --config-drive, the
 * NoCloud seed seen from inside at /var/lib/cloud/seed/nocloud (read-only), root's
 * authorized_keys written by novabox, and nothing left after delete. Bad input changes nothing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingCommands } from '../helpers/skip.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { runCli, tempRoot } from '../helpers/run-cli.js';

const isRoot = process.getuid?.() === 0;
/** the tests that make keys with OpenSSH's own tool (the guest ships it; a host may lack it) */
const noKeygen = missingCommands(['ssh-keygen']).length ? 'missing ssh-keygen (apt-get install openssh-client)' : undefined;
const SEED = '/var/lib/cloud/seed/nocloud';

describe.skipIf(!isRoot)('instance data: keypairs, user data, NoCloud seed (root, real containers)', () => {
  let root: string;
  let removeRoot: () => void;
  let files: string;
  let before: Census;
  const nb = (args: string[]) => runCli(args, { root });
  const ok = async (args: string[]) => {
    const r = await nb(args);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    return r.stdout;
  };
  const inside = (name: string, script: string) => ok(['server', 'exec', name, '--', 'sh', '-c', script]);

  beforeAll(async () => {
    ({ root, remove: removeRoot } = tempRoot('nbx-nocloud-'));
    files = mkdtempSync(join(tmpdir(), 'nbx-nocloud-files-'));
    expect((await runCli(['run', '--rm', 'busybox', 'true'], { root })).exitCode).toBe(0); // builds the image once
  });
  afterAll(() => {
    removeRoot?.();
    rmSync(files, { recursive: true, force: true });
  });
  beforeEach(() => {
    before = census(root);
  });
  afterEach(async () => {
    const list = await nb(['server', 'list', '-f', 'json']);
    for (const s of JSON.parse(list.stdout || '[]') as { ID: string }[]) await nb(['server', 'delete', '--force', s.ID]);
    const keys = await nb(['keypair', 'list', '-f', 'value', '-c', 'Name']);
    for (const k of keys.stdout.split('\n').filter(Boolean)) await nb(['keypair', 'delete', k]);
    expect(census(root)).toEqual(before);
    expect(existsSync(`${root}/servers`) ? readdirSync(`${root}/servers`) : []).toEqual([]);
  }, 60_000);

  it('gives a busybox server its key, user data and metadata; the seed is read-only; delete leaves nothing', async () => {
    const priv = await ok(['keypair', 'create', 'me']);
    expect(priv).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    const pub = (await ok(['keypair', 'show', 'me', '--public-key'])).trim();
    expect(pub).toMatch(/^ssh-ed25519 \S+ Generated-by-novabox$/);
    const userData = '#cloud-config\nruncmd:\n  - [touch, /tmp/ran]\n';
    writeFileSync(join(files, 'ud.yaml'), userData);

    const made = JSON.parse(
      await ok([
        'server',
        'create',
        '--image',
        'busybox',
        '--flavor',
        'm1.tiny',
        '--key-name',
        'me',
        '--user-data',
        join(files, 'ud.yaml'),
        '--property',
        'role=web',
        '--config-drive',
        'True',
        '--wait',
        'seeded',
        '-f',
        'json',
      ]),
    );
    expect(made).toMatchObject({ name: 'seeded', status: 'ACTIVE', key_name: 'me' });
    const id = made.id as string;

    const metaData = await inside('seeded', `cat ${SEED}/meta-data`);
    expect(metaData).toBe(
      `instance-id: "${id}"\nlocal-hostname: "seeded"\npublic-keys:\n  - ${JSON.stringify(pub)}\nmeta:\n  "role": "web"\n`,
    );
    expect(await inside('seeded', `cat ${SEED}/user-data`)).toBe(userData);
    expect(await inside('seeded', `cat ${SEED}/vendor-data`)).toBe('#cloud-config\ndisable_root: false\nlocale: C.UTF-8\n');
    const addr = (await ok(['server', 'show', 'seeded', '-f', 'value', '-c', 'addresses'])).trim();
    const netcfg = await inside('seeded', `cat ${SEED}/network-config`);
    expect(netcfg).toMatch(/^version: 1\n/);
    expect(netcfg).toContain(`address: "${addr.split('=')[1]}/24"`);
    expect(netcfg).toContain('name: eth0');
    const md = JSON.parse(await inside('seeded', `cat ${SEED}/openstack/latest/meta_data.json`));
    expect(md).toMatchObject({ uuid: id, hostname: 'seeded', public_keys: { me: pub }, meta: { role: 'web' } });
    // read-only, as the server sees it
    expect(await inside('seeded', `grep ' ${SEED} ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1`)).toBe('ro\n');
    const w = await nb(['server', 'exec', 'seeded', '--', 'sh', '-c', `echo x > ${SEED}/user-data`]);
    expect(w.exitCode).not.toBe(0);
    expect(w.stderr).toMatch(/Read-only file system/);
    // no cloud-init in busybox: novabox wrote root's authorized_keys, owned by the server's root
    expect(await inside('seeded', 'cat /root/.ssh/authorized_keys')).toBe(`${pub}\n`);
    expect(await inside('seeded', 'stat -c "%a %u %g" /root/.ssh /root/.ssh/authorized_keys')).toBe('700 0 0\n600 0 0\n');
    expect(await inside('seeded', `stat -c "%a %u" ${SEED}/user-data ${SEED}/meta-data`)).toBe('600 0\n644 0\n');

    // a stop and start keeps the key once (first boot only) and the seed
    await ok(['server', 'stop', 'seeded']);
    await ok(['server', 'start', 'seeded']);
    expect(await inside('seeded', 'cat /root/.ssh/authorized_keys')).toBe(`${pub}\n`);
    expect(await inside('seeded', `cat ${SEED}/user-data`)).toBe(userData);

    // a rebuild's new writable layer gets the key again, once
    await ok(['server', 'exec', 'seeded', '--', 'touch', '/root/mark']);
    await ok(['server', 'rebuild', '--image', 'busybox', 'seeded']);
    expect(await inside('seeded', 'ls -A /root; cat /root/.ssh/authorized_keys')).toBe(`.ssh\n${pub}\n`);

    // the server keeps its copy of the key when the keypair goes (as Nova's instance does)
    await ok(['keypair', 'delete', 'me']);
    await ok(['server', 'delete', 'seeded']);
    expect(existsSync(join(root, 'servers', id))).toBe(false);
  }, 120_000);

  it('--network none: network-config disables cloud-init networking; no user data is an empty #cloud-config', async () => {
    await ok([
      'server',
      'create',
      '--image',
      'busybox',
      '--flavor',
      'm1.tiny',
      '--network',
      'none',
      '--config-drive',
      'True',
      '--wait',
      'bare',
    ]);
    expect(await inside('bare', `cat ${SEED}/network-config ${SEED}/user-data`)).toBe('config: disabled\n#cloud-config\n{}\n');
    expect(await inside('bare', `ls -A ${SEED}`)).toBe('meta-data\nnetwork-config\nopenstack\nuser-data\nvendor-data\n');
    expect((await nb(['server', 'exec', 'bare', '--', 'ls', '/root/.ssh'])).exitCode).not.toBe(0);
    await ok(['server', 'delete', 'bare']);
  }, 60_000);

  it('an image without cloud-init and a server given no instance data: no seed, no mount, nothing in its writable layer', async () => {
    const id = (
      await ok([
        'server',
        'create',
        '--image',
        'busybox',
        '--flavor',
        'm1.tiny',
        '--network',
        'none',
        '--wait',
        'plain',
        '-f',
        'value',
        '-c',
        'id',
      ])
    ).trim();
    expect(await inside('plain', 'test -e /var/lib/cloud && echo seed; grep -c /var/lib/cloud /proc/mounts || true')).toBe('0\n');
    expect(existsSync(join(root, 'servers', id, 'seed'))).toBe(false);
    expect(existsSync(join(root, 'servers', id, 'upper', 'var'))).toBe(false);
    await ok(['server', 'delete', 'plain']);
  }, 60_000);

  it('--userns host: the seed and the key belong to the host root, who is the server root', async (ctx) => {
    ctx.skip(noKeygen !== undefined, noKeygen);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'host@test', '-f', join(files, 'hostkey')]);
    await ok(['keypair', 'create', 'hk', '--public-key', join(files, 'hostkey.pub')]);
    const id = (
      await ok([
        'server',
        'create',
        '--image',
        'busybox',
        '--flavor',
        'm1.tiny',
        '--userns',
        'host',
        '--key-name',
        'hk',
        '--wait',
        'hosted',
        '-f',
        'value',
        '-c',
        'id',
      ])
    ).trim();
    expect(await inside('hosted', 'stat -c "%a %u" /root/.ssh/authorized_keys; cat /root/.ssh/authorized_keys')).toMatch(
      /^600 0\nssh-ed25519 \S+ host@test\n$/,
    );
    const st = statSync(join(root, 'servers', id, 'upper', 'root', '.ssh', 'authorized_keys'));
    expect([st.uid, st.mode & 0o777]).toEqual([0, 0o600]);
    expect(statSync(join(root, 'servers', id, 'seed', 'meta-data')).uid).toBe(0);
    await ok(['server', 'delete', 'hosted']);
  }, 60_000);

  it('refuses bad input in one sentence and makes nothing', async (ctx) => {
    ctx.skip(noKeygen !== undefined, noKeygen);
    writeFileSync(join(files, 'big'), Buffer.alloc(49_150, 'x'));
    writeFileSync(join(files, 'bad.pub'), 'ssh-rsa JUNK me@host\n');
    writeFileSync(join(files, 'ok'), '#cloud-config\n');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(files, 'id')]);
    const cases: [string[], RegExp][] = [
      [['keypair', 'create', 'bad', '--public-key', join(files, 'bad.pub')], /^novabox: Keypair data is invalid: .*\n$/],
      [['keypair', 'create', 'bad', '--public-key', join(files, 'id')], /this is a private key/],
      [['keypair', 'create', 'bad', '--public-key', join(files, 'missing.pub')], /^novabox: cannot read --public-key .*ENOENT\n$/],
      [
        ['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', '--user-data', join(files, 'big'), 'x'],
        /^novabox: --user-data .* is too big: Nova takes at most 49149 bytes .*\n$/,
      ],
      [
        ['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', '--key-name', 'nokey', 'x'],
        /Invalid key_name provided: there is no key pair "nokey"/,
      ],
      [['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', '--config-drive', 'vol1', 'x'], /invalid --config-drive "vol1"/],
    ];
    for (const [args, re] of cases) {
      const r = await nb(args);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.split('\n').length).toBe(2);
      expect(r.exitCode).toBe(2);
    }
    await ok(['keypair', 'create', 'eph', '--public-key', join(files, 'id.pub')]);
    const eph = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', '--ephemeral', '--key-name', 'eph', 'x']);
    expect(eph.stderr).toMatch(/cannot give key pair "eph" to an ephemeral server/);
    expect(eph.exitCode).toBe(2);
    expect(JSON.parse(await ok(['server', 'list', '-f', 'json']))).toEqual([]);
    expect((JSON.parse(await ok(['keypair', 'list', '-f', 'json'])) as { Name: string }[]).map((k) => k.Name)).toEqual(['eph']);
    await ok(['keypair', 'delete', 'eph']);
    // the file given to --private-key is refused before anything is made when it exists
    const r = await nb(['keypair', 'create', 'k2', '--private-key', join(files, 'ok')]);
    expect(r.stderr).toMatch(/cannot write --private-key .*EEXIST/);
    expect(JSON.parse(await ok(['keypair', 'list', '-f', 'json']))).toEqual([]);
    await ok(['keypair', 'create', 'k2', '--private-key', join(files, 'k2')]);
    expect(statSync(join(files, 'k2')).mode & 0o777).toBe(0o600);
    expect(
      execFileSync('ssh-keygen', ['-y', '-f', join(files, 'k2')])
        .toString()
        .trim(),
    ).toBe((await ok(['keypair', 'show', 'k2', '--public-key'])).trim());
    await ok(['keypair', 'delete', 'k2']);
  }, 60_000);
});
