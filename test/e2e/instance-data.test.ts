/**
 * Instance data through the real `openstack` client against `novabox serve` (issue 17):
 * `keypair create` (generated and imported), `server create --key-name --user-data
 * --property --config-drive True`, the seed seen from inside the server, and Nova's 400s
 * for user_data over 65535 characters and for fields a container cannot honour.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { runCli, tempRoot } from '../helpers/run-cli.js';
import { missingCommands, skipEachIf } from '../helpers/skip.js';
import { run, startServe, tokenFor, type Serve } from './serve.js';

const isRoot = process.getuid?.() === 0;
const missing = missingCommands(['openstack', 'ssh-keygen']);
const SEED = '/var/lib/cloud/seed/nocloud';

describe.skipIf(!isRoot)('openstack keypair and server create --key-name --user-data against novabox serve', () => {
  const why = missing.length ? `missing ${missing.join(', ')}` : undefined;
  skipEachIf(why);
  let root: string;
  let removeRoot: () => void;
  let files: string;
  let serve: Serve;
  let before: Census;
  let env: NodeJS.ProcessEnv;
  const password = randomBytes(12).toString('hex');

  const ok = async (args: string[]) => {
    const r = await run('openstack', args, env);
    if (r.code !== 0) throw new Error(`openstack ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const api = async (method: string, path: string, body?: unknown) => {
    const token = await tokenFor(serve.url, 'admin', password, 'admin');
    const r = await fetch(`${serve.url}${path}`, {
      method,
      headers: { 'x-auth-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    if (why) return;
    ({ root, remove: removeRoot } = tempRoot('nbx-e2e-nocloud-'));
    files = mkdtempSync(join(tmpdir(), 'nbx-e2e-nocloud-files-'));
    serve = await startServe(root, { NOVABOX_ADMIN_PASSWORD: password });
    env = {
      PATH: process.env.PATH,
      HOME: root,
      LANG: 'C.UTF-8',
      PYTHONWARNINGS: 'ignore',
      OS_CLIENT_CONFIG_FILE: join(root, 'clouds.yaml'),
      OS_CLOUD: 'novabox',
    };
    before = census(root);
  }, 60_000);

  afterAll(async () => {
    // a failed test's server goes before its root
    if (root)
      for (const id of (await runCli(['server', 'list', '-f', 'value', '-c', 'ID'], { root })).stdout.split('\n').filter(Boolean))
        await runCli(['server', 'delete', '--force', id], { root });
    await serve?.stop();
    removeRoot?.();
    if (files) rmSync(files, { recursive: true, force: true });
  });

  it('creates keypairs, boots a server with the key and user data, and refuses what it cannot honour', async () => {
    // generated: the client prints the private key once
    const priv = await ok(['keypair', 'create', 'gen']);
    expect(priv).toMatch(/-----BEGIN RSA PRIVATE KEY-----/);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@e2e', '-f', join(files, 'id')]);
    const imported = JSON.parse(await ok(['keypair', 'create', '--public-key', join(files, 'id.pub'), 'mine', '-f', 'json']));
    expect(imported).toMatchObject({ name: 'mine', type: 'ssh' });
    const list = JSON.parse(await ok(['keypair', 'list', '-f', 'json'])) as { Name: string }[];
    expect(list.map((k) => k.Name).sort()).toEqual(['gen', 'mine']);
    writeFileSync(join(files, 'bad.pub'), 'ssh-ed25519 AAAAnotakey me\n');
    const bad = await run('openstack', ['keypair', 'create', '--public-key', join(files, 'bad.pub'), 'bad'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/400.*Keypair data is invalid/);

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
        'mine',
        '--user-data',
        join(files, 'ud.yaml'),
        '--property',
        'role=db',
        '--config-drive',
        'True',
        '--wait',
        'seeded',
        '-f',
        'json',
      ]),
    );
    expect(made).toMatchObject({ name: 'seeded', status: 'ACTIVE', key_name: 'mine', config_drive: 'True' });
    const inside = async (script: string) => {
      const r = await runCli(['server', 'exec', 'seeded', '--', 'sh', '-c', script], { root });
      expect(r.stderr).toBe('');
      return r.stdout;
    };
    const pub = readFileSync(join(files, 'id.pub'), 'utf8').trim();
    expect(await inside(`cat ${SEED}/user-data`)).toBe(userData);
    expect(await inside(`cat ${SEED}/meta-data`)).toBe(
      `instance-id: "${made.id}"\nlocal-hostname: "seeded"\npublic-keys:\n  - "${pub}"\nmeta:\n  "role": "db"\n`,
    );
    expect(await inside('cat /root/.ssh/authorized_keys')).toBe(`${pub}\n`);

    // Nova's 400s, nothing made
    const img = (await api('GET', '/image/v2/images?name=busybox')).json.images[0].id as string;
    const base = { name: 'no', imageRef: img, flavorRef: '1' };
    const tooBig = await api('POST', '/compute/v2.1/servers', { server: { ...base, user_data: 'A'.repeat(65536) } });
    expect(tooBig.status).toBe(400);
    expect(tooBig.json.badRequest.message).toMatch(/^Invalid input for field\/attribute user_data\. .*is too long/);
    writeFileSync(join(files, 'big'), Buffer.alloc(50_000, 'x'));
    const big = await run(
      'openstack',
      ['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', '--user-data', join(files, 'big'), 'no'],
      env,
    );
    expect(big.code).not.toBe(0);
    expect(big.stderr).toMatch(/user_data.* is too long .*\(HTTP 400\)/);
    for (const [field, value, re] of [
      ['personality', [{ path: '/etc/x', contents: 'eA==' }], /personality/],
      [
        'block_device_mapping_v2',
        [{ boot_index: 0, uuid: img, source_type: 'image', destination_type: 'volume' }],
        /^Block Device Mapping is Invalid: source_type "image" with destination_type "volume" is not supported/,
      ],
      ['description', 'x', /Additional properties are not allowed \('description' was unexpected\)/],
      ['config_drive', 'maybe', /config_drive/],
      ['key_name', 'nokey', /^Invalid key_name provided\.$/],
    ] as [string, unknown, RegExp][]) {
      const r = await api('POST', '/compute/v2.1/servers', { server: { ...base, [field]: value } });
      expect(r.status).toBe(400);
      expect(r.json.badRequest.message).toMatch(re);
    }
    const servers = JSON.parse(await ok(['server', 'list', '-f', 'json'])) as { Name: string }[];
    expect(servers.map((s) => s.Name)).toEqual(['seeded']);

    await ok(['server', 'delete', '--wait', 'seeded']);
    await ok(['keypair', 'delete', 'gen', 'mine']);
    expect(census(root)).toEqual(before);
  }, 180_000);
});
