/**
 * The real `openstack` client (python3-openstackclient) and openstacksdk against
 * `novabox serve` on 127.0.0.1, on a temp state root, with real containers. Independent
 * client runs go in parallel (each costs 1-2 s of Python start-up); the many field and
 * bad-input checks use fetch. Ends with the leak census.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { census, cgroupParentFor, type Census } from '../helpers/census.js';
import { BIN, runCli, tempRoot } from '../helpers/run-cli.js';
import { missingCommands, skipEachIf } from '../helpers/skip.js';
import { cloudsFor, run, startServe, tokenFor, type Serve } from './serve.js';

const isRoot = process.getuid?.() === 0;
// found as scripts/test.mjs finds them: on PATH
const missing = missingCommands(['openstack', 'python3']);
/** openstacksdk's python: the one the client runs on (its #! line), not whichever python3 is first on PATH */
const PY = (() => {
  try {
    const bin = execFileSync('sh', ['-c', 'command -v openstack'], { encoding: 'utf8' }).trim();
    return /^#!\s*(\S*python\S*)/.exec(readFileSync(bin, 'utf8').split('\n')[0])?.[1] ?? 'python3';
  } catch {
    return 'python3';
  }
})();

/** Nova 2.1 server detail keys, admin view (tempest's schema, additionalProperties false). */
const DETAIL_KEYS = [
  'id',
  'name',
  'status',
  'tenant_id',
  'user_id',
  'metadata',
  'hostId',
  'image',
  'flavor',
  'created',
  'updated',
  'addresses',
  'accessIPv4',
  'accessIPv6',
  'links',
  'OS-DCF:diskConfig',
  'key_name',
  'security_groups',
  'OS-EXT-AZ:availability_zone',
  'OS-SRV-USG:launched_at',
  'OS-SRV-USG:terminated_at',
  'OS-EXT-STS:vm_state',
  'OS-EXT-STS:task_state',
  'OS-EXT-STS:power_state',
  'os-extended-volumes:volumes_attached',
  'config_drive',
  'OS-EXT-SRV-ATTR:host',
  'OS-EXT-SRV-ATTR:hypervisor_hostname',
  'OS-EXT-SRV-ATTR:instance_name',
  'progress',
].sort();

/** The memory limit of a server's cgroup, v1 or v2. */
function memoryLimit(root: string, id: string): number {
  const parent = cgroupParentFor(root);
  for (const f of [`/sys/fs/cgroup/memory/${parent}/${id}/memory.limit_in_bytes`, `/sys/fs/cgroup/${parent}/${id}/memory.max`]) {
    if (existsSync(f)) return Number(readFileSync(f, 'utf8').trim());
  }
  throw new Error(`no memory cgroup for ${id}`);
}

describe.skipIf(!isRoot)('openstack client against novabox serve (root, real containers)', () => {
  const why = missing.length ? `missing ${missing.join(', ')} (python3-openstackclient)` : undefined;
  skipEachIf(why);
  let root: string;
  let removeRoot: () => void;
  let serve: Serve;
  let before: Census;
  let adminEnv: NodeJS.ProcessEnv;
  let extraClouds = '';
  const password = randomBytes(12).toString('hex');
  let webId = '';

  const baseEnv = (): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: root, LANG: 'C.UTF-8', PYTHONWARNINGS: 'ignore' };
    return env;
  };
  /** `openstack ARGS` as the admin (cloud "novabox" of serve's clouds.yaml), or as another cloud of the e2e file */
  const osc = (args: string[], cloud?: string) =>
    run('openstack', args, cloud ? { ...baseEnv(), OS_CLIENT_CONFIG_FILE: extraClouds, OS_CLOUD: cloud } : adminEnv);
  const ok = async (args: string[], cloud?: string) => {
    const r = await osc(args, cloud);
    if (r.code !== 0) throw new Error(`openstack ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const json = async (args: string[], cloud?: string) => JSON.parse(await ok([...args, '-f', 'json'], cloud));
  const nb = (args: string[]) => runCli(args, { root });
  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const r = await fetch(`${serve.url}${path}`, {
      method,
      headers: { 'x-auth-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, headers: r.headers, json: text ? JSON.parse(text) : undefined };
  };
  const adminToken = () => tokenFor(serve.url, 'admin', password, 'admin');
  const statusOf = async (id: string) => (await api('GET', `/compute/v2.1/servers/${id}`, await adminToken())).json.server.status;

  beforeAll(async () => {
    if (why) return;
    ({ root, remove: removeRoot } = tempRoot('nbx-e2e-'));
    serve = await startServe(root, { NOVABOX_ADMIN_PASSWORD: password });
    adminEnv = { ...baseEnv(), OS_CLIENT_CONFIG_FILE: join(root, 'clouds.yaml'), OS_CLOUD: 'novabox' };
    before = census(root);
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    removeRoot?.();
  });

  it('writes clouds.yaml (0600) and issues tokens to the real client', async () => {
    expect(serve.output()).toContain(`export OS_CLIENT_CONFIG_FILE=${join(root, 'clouds.yaml')} OS_CLOUD=novabox`);
    expect((statSync(join(root, 'clouds.yaml')).mode & 0o777).toString(8)).toBe('600'); // it holds the admin password
    const [tok, flavors, images] = await Promise.all([json(['token', 'issue']), json(['flavor', 'list']), json(['image', 'list'])]);
    expect(tok).toMatchObject({ id: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), project_id: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(flavors.map((f: { Name: string }) => f.Name)).toEqual(expect.arrayContaining(['m1.tiny', 'c1.nano']));
    expect(images).toEqual([expect.objectContaining({ Name: 'busybox', Status: 'active' })]);
    expect(serve.output()).not.toContain(tok.id);
    expect(serve.output()).not.toContain(password);
  });

  it("creates a server with --wait that the CLI sees, and sees the CLI's server", async () => {
    const [web, cli] = await Promise.all([
      json(['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', '--property', 'role=web', '--wait', 'web1']),
      nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', 'cli1', '-f', 'json']),
    ]);
    expect(web).toMatchObject({
      name: 'web1',
      status: 'ACTIVE',
      'OS-EXT-STS:vm_state': 'active',
      'OS-EXT-STS:task_state': null,
      properties: { role: 'web' },
      flavor: 'm1.tiny (1)',
    });
    expect(web.adminPass).toMatch(/^\w{12}$/);
    webId = web.id;
    expect(cli.exitCode).toBe(0);
    const [oscList, cliList] = await Promise.all([json(['server', 'list']), nb(['server', 'list', '-f', 'json'])]);
    expect(oscList.map((s: { Name: string; Status: string }) => `${s.Name}:${s.Status}`).sort()).toEqual(['cli1:ACTIVE', 'web1:ACTIVE']);
    expect(
      JSON.parse(cliList.stdout)
        .map((s: { Name: string }) => s.Name)
        .sort(),
    ).toEqual(['cli1', 'web1']);
    // the body against the contract: exactly the 2.1 fields (admin view)
    const t = await adminToken();
    const show = await api('GET', `/compute/v2.1/servers/${webId}`, t);
    expect(Object.keys(show.json.server).sort()).toEqual(DETAIL_KEYS);
    // the bridge network's fixed address, as Nova shows it, and the same through /ips and the client
    const [addr] = show.json.server.addresses.novabox;
    expect(addr).toEqual({
      version: 4,
      addr: expect.stringMatching(/^\d+\.\d+\.\d+\.\d+$/),
      'OS-EXT-IPS:type': 'fixed',
      'OS-EXT-IPS-MAC:mac_addr': expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
    });
    expect((await api('GET', `/compute/v2.1/servers/${webId}/ips`, t)).json).toEqual({
      addresses: { novabox: [{ version: 4, addr: addr.addr }] },
    });
    expect((await api('GET', `/compute/v2.1/servers/${webId}/ips/other`, t)).status).toBe(404);
    expect(oscList.find((x: { Name: string }) => x.Name === 'web1').Networks).toEqual({ novabox: [addr.addr] });
    expect(
      (await api('GET', `/compute/v2.1/servers?ip=${addr.addr.replaceAll('.', '\\.')}$`, t)).json.servers.map((x: { id: string }) => x.id),
    ).toEqual([webId]);
    expect(show.headers.get('x-compute-request-id')).toBe(show.headers.get('x-openstack-request-id'));
    expect(show.headers.get('content-type')).toBe('application/json; charset=utf-8');
  });

  it('walks stop, start, reboot --hard --wait, pause, unpause, lock, unlock, properties; console and events', async () => {
    await ok(['server', 'stop', 'web1']);
    expect(await statusOf(webId)).toBe('SHUTOFF');
    const again = await osc(['server', 'stop', 'web1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/Cannot 'stop' instance .* vm_state stopped \(HTTP 409\)/);
    await ok(['server', 'start', 'web1']);
    for (let i = 0; i < 100 && (await statusOf(webId)) !== 'ACTIVE'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await statusOf(webId)).toBe('ACTIVE');
    await ok(['server', 'reboot', '--hard', '--wait', 'web1']);
    expect(await statusOf(webId)).toBe('ACTIVE');
    await ok(['server', 'pause', 'web1']);
    expect(await statusOf(webId)).toBe('PAUSED');
    await ok(['server', 'unpause', 'web1']);
    await ok(['server', 'lock', 'web1']);
    await ok(['server', 'unlock', 'web1']);
    await ok(['server', 'suspend', 'web1']); // issue 16: nova-contract.test.ts tests it in depth
    expect(await statusOf(webId)).toBe('SUSPENDED');
    await ok(['server', 'resume', 'web1']);
    expect(await statusOf(webId)).toBe('ACTIVE');
    await ok(['server', 'resize', '--flavor', 'c1.nano', '--wait', 'web1']);
    expect(await statusOf(webId)).toBe('VERIFY_RESIZE');
    expect(memoryLimit(root, webId)).toBe(64 * 2 ** 20); // the live cgroup took c1.nano's RAM
    await ok(['server', 'resize', 'confirm', 'web1']);
    expect(await statusOf(webId)).toBe('ACTIVE');
    await ok(['server', 'set', '--property', 'tier=gold', 'web1']);
    const [shown, consoleOut, events] = await Promise.all([
      json(['server', 'show', 'web1']),
      ok(['console', 'log', 'show', '--lines', '3', 'web1']),
      json(['server', 'event', 'list', 'web1']),
    ]);
    expect(shown).toMatchObject({ status: 'ACTIVE', properties: { role: 'web', tier: 'gold' } });
    const lines = consoleOut.replace(/\n$/, '').split('\n');
    expect(lines.length).toBeLessThanOrEqual(3);
    expect(consoleOut).toMatch(/server (started|resumed|resized)/); // the last 3 lines of its log
    expect(events.map((e: { Action: string }) => e.Action)).toEqual([
      'confirmResize',
      'resize',
      'resume',
      'suspend',
      'unlock',
      'lock',
      'unpause',
      'pause',
      'reboot',
      'start',
      'stop',
      'create',
    ]);
    expect(shown.flavor).toBe('c1.nano (6)');
    // tempest: the create action's request id is the X-Compute-Request-Id of the POST
    const create = events.find((e: { Action: string }) => e.Action === 'create');
    const detail = await json(['server', 'event', 'show', 'web1', create['Request ID']]);
    expect(detail.events ?? detail.Events).toBeTruthy();
  }, 120_000);

  it('creates flavors and keypairs (a usable private key), shows limits', async () => {
    const [flavor, key, limits] = await Promise.all([
      json(['flavor', 'create', '--vcpus', '1', '--ram', '128', '--disk', '1', 'small']),
      ok(['keypair', 'create', 'k1']),
      json(['limits', 'show', '--absolute']),
    ]);
    expect(flavor).toMatchObject({ name: 'small', ram: 128, vcpus: 1, disk: 1 });
    expect(key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n[\s\S]+-----END RSA PRIVATE KEY-----\n*$/);
    const pem = join(root, 'k1.pem');
    writeFileSync(pem, key);
    chmodSync(pem, 0o600);
    const pub = await run('ssh-keygen', ['-y', '-f', pem], baseEnv());
    const [list, shownKey] = await Promise.all([json(['keypair', 'list']), ok(['keypair', 'show', '--public-key', 'k1'])]);
    expect(list).toEqual([expect.objectContaining({ Name: 'k1', Fingerprint: expect.stringMatching(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/) })]);
    expect(pub.code).toBe(0); // ssh-keygen reads the private key and derives the same public key
    expect(shownKey).toContain(pub.stdout.trim().split(' ')[1]!);
    const byName = Object.fromEntries(limits.map((l: { Name: string; Value: number }) => [l.Name, l.Value]));
    expect(byName).toMatchObject({ totalInstancesUsed: 2, maxTotalInstances: 1000, totalRAMUsed: 64 + 64 });
    expect((await json(['flavor', 'list'])).map((f: { Name: string }) => f.Name)).toContain('small');
  }, 60_000);

  it('snapshots a server, lists, shows, saves, uploads, rebuilds from and deletes images', async () => {
    await nb(['server', 'exec', 'web1', '--', 'sh', '-c', 'echo hello > /root/marker']);
    const snap = await json(['server', 'image', 'create', '--name', 'snap', '--wait', 'web1']);
    expect(snap).toMatchObject({ name: 'snap', status: 'active', visibility: 'private' });
    const [list, shown] = await Promise.all([json(['image', 'list']), json(['image', 'show', 'snap'])]);
    expect(list.map((i: { Name: string; Status: string }) => `${i.Name}:${i.Status}`).sort()).toEqual(['busybox:active', 'snap:active']);
    expect(shown.properties).toMatchObject({ image_type: 'snapshot', instance_uuid: webId });
    const saved = join(root, 'snap.tar');
    await ok(['image', 'save', '--file', saved, 'snap']);
    // the download's Content-MD5 is the md5 of the bytes sent (the client checks the file against it)
    const dl = await fetch(`${serve.url}/image/v2/images/${shown.id}/file`, { headers: { 'x-auth-token': await adminToken() } });
    expect(dl.status).toBe(200);
    const bytes = Buffer.from(await dl.arrayBuffer());
    expect(dl.headers.get('content-md5')).toBe(createHash('md5').update(bytes).digest('hex'));
    expect(Number(dl.headers.get('content-length'))).toBe(bytes.length);
    const tarList = await run('tar', ['tf', saved], baseEnv());
    expect(tarList.stdout).toContain('index.json');
    // upload: the saved archive becomes a new image (queued -> active), then a rebuild from it
    const up = await json(['image', 'create', '--file', saved, '--disk-format', 'raw', '--container-format', 'bare', 'up1']);
    expect(up.name).toBe('up1');
    expect((await json(['image', 'show', 'up1'])).status).toBe('active');
    await nb(['server', 'exec', 'web1', '--', 'rm', '/root/marker']);
    await ok(['server', 'rebuild', '--image', 'up1', '--wait', 'web1']);
    expect(await statusOf(webId)).toBe('ACTIVE');
    expect((await nb(['server', 'exec', 'web1', '--', 'cat', '/root/marker'])).stdout).toBe('hello\n');
    const inUse = await osc(['image', 'delete', 'up1']);
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toMatch(/in use by 1 server/);
    await ok(['image', 'delete', 'snap']);
    // createImage through the API: 202, Location, and an instance action under the request's id
    const t0 = await adminToken();
    const ci = await api('POST', `/compute/v2.1/servers/${webId}/action`, t0, {
      createImage: { name: 'snap2', metadata: { image_type: 'test' } },
    });
    expect(ci.status).toBe(202);
    const snap2 = ci.headers.get('location')!.split('/').pop()!;
    for (let i = 0; i < 200 && (await api('GET', `/image/v2/images/${snap2}`, t0)).json.status !== 'active'; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect((await api('GET', `/image/v2/images/${snap2}`, t0)).json).toMatchObject({
      status: 'active',
      image_type: 'test',
      instance_uuid: webId,
    });
    const acts = (await api('GET', `/compute/v2.1/servers/${webId}/os-instance-actions`, t0)).json.instanceActions;
    expect(acts[0]).toMatchObject({ action: 'createImage', request_id: ci.headers.get('x-compute-request-id') });
    expect((await api('DELETE', `/image/v2/images/${snap2}`, t0)).status).toBe(204);
    // the compute proxy sees Glance's images
    const t = await adminToken();
    const proxy = await api('GET', '/compute/v2.1/images/detail', t);
    expect(proxy.json.images.map((i: { name: string }) => i.name).sort()).toEqual(['busybox', 'up1']);
    // back on busybox, so that up1 can go
    const busybox = list.find((i: { Name: string }) => i.Name === 'busybox').ID;
    await ok(['server', 'rebuild', '--image', busybox, '--wait', 'web1']);
    await ok(['image', 'delete', 'up1']);
    expect((await json(['image', 'list'])).map((i: { Name: string }) => i.Name)).toEqual(['busybox']);
  }, 120_000);

  it("keeps projects apart: project B sees none of A, gets 404 on A's server, 403 for --all-projects", async () => {
    await ok(['project', 'create', 'p2']);
    await ok(['user', 'create', '--project', 'p2', '--password', 'pw2', 'u2']);
    await ok(['role', 'add', '--project', 'p2', '--user', 'u2', 'member']);
    extraClouds = cloudsFor(root, serve.url, [{ cloud: 'u2', user: 'u2', password: 'pw2', project: 'p2' }]);
    const [list, show, all, stop] = await Promise.all([
      json(['server', 'list'], 'u2'),
      osc(['server', 'show', webId], 'u2'),
      osc(['server', 'list', '--all-projects'], 'u2'),
      osc(['server', 'stop', webId], 'u2'),
    ]);
    expect(list).toEqual([]);
    expect(show.code).toBe(1);
    expect(show.stderr).toMatch(/No server with a name or ID/);
    expect(all.code).toBe(1);
    expect(all.stderr).toMatch(/HTTP 403/);
    expect(stop.code).toBe(1);
    const t2 = await tokenFor(serve.url, 'u2', 'pw2', 'p2');
    expect((await api('GET', `/compute/v2.1/servers/${webId}`, t2)).status).toBe(404);
    expect((await api('POST', `/compute/v2.1/servers/${webId}/action`, t2, { 'os-stop': null })).status).toBe(404);
    expect((await api('DELETE', `/compute/v2.1/servers/${webId}`, t2)).status).toBe(404);
    // unscoped: no compute at all
    const unscoped = await tokenFor(serve.url, 'u2', 'pw2');
    expect((await api('GET', '/compute/v2.1/servers', unscoped)).status).toBe(403);
    expect((await api('GET', '/identity/v3/auth/projects', unscoped)).json.projects.map((p: { name: string }) => p.name)).toEqual(['p2']);
    expect(await statusOf(webId)).toBe('ACTIVE');
  }, 60_000);

  it("a server the admin locked refuses its owner's state changes (409) until unlocked", async () => {
    expect(extraClouds).not.toBe(''); // u2 of project p2, made by the test before
    const mine = await json(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--wait', 'u2box'], 'u2');
    expect(mine.status).toBe('ACTIVE');
    await ok(['server', 'lock', mine.id]);
    const [stop, del] = await Promise.all([osc(['server', 'stop', mine.id], 'u2'), osc(['server', 'delete', mine.id], 'u2')]);
    expect(stop.code).toBe(1);
    expect(stop.stderr).toMatch(/Instance [0-9a-f-]+ is locked \(HTTP 409\)/);
    expect(del.code).toBe(1);
    expect(await statusOf(mine.id)).toBe('ACTIVE');
    await ok(['server', 'unlock', mine.id]);
    await ok(['server', 'stop', mine.id], 'u2');
    for (let i = 0; i < 100 && (await statusOf(mine.id)) !== 'SHUTOFF'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await statusOf(mine.id)).toBe('SHUTOFF');
    await ok(['server', 'delete', '--wait', mine.id], 'u2');
  }, 60_000);

  it('networks "none" gives a server no address and only lo; a fixed IP is the address it gets', async () => {
    const t = await adminToken();
    const flavor = '1'; // m1.tiny
    const img = (await api('GET', '/image/v2/images?name=busybox', t)).json.images[0].id;
    const none = await api('POST', '/compute/v2.1/servers', t, {
      server: { name: 'nonet', imageRef: img, flavorRef: flavor, networks: 'none' },
    });
    expect(none.status, JSON.stringify(none.json)).toBe(202);
    // a free address of the bridge's subnet, past the ones in use
    const used = (await api('GET', '/compute/v2.1/servers/detail', t)).json.servers.flatMap(
      (x: { addresses: Record<string, { addr: string }[]> }) =>
        Object.values(x.addresses)
          .flat()
          .map((a) => a.addr),
    );
    const [a, b, c] = used[0].split('.');
    const fixed = `${a}.${b}.${c}.${200 + Math.floor(Math.random() * 50)}`;
    expect(used).not.toContain(fixed);
    const withIp = await api('POST', '/compute/v2.1/servers', t, {
      server: { name: 'fixed', imageRef: img, flavorRef: flavor, networks: [{ fixed_ip: fixed }] },
    });
    expect(withIp.status, JSON.stringify(withIp.json)).toBe(202);
    const ids = [none.json.server.id, withIp.json.server.id];
    for (let i = 0; i < 200 && (await Promise.all(ids.map(statusOf))).some((st) => st !== 'ACTIVE'); i++)
      await new Promise((r) => setTimeout(r, 50));
    const [n, f] = await Promise.all(ids.map(async (id) => (await api('GET', `/compute/v2.1/servers/${id}`, t)).json.server));
    expect(n).toMatchObject({ status: 'ACTIVE', addresses: {} });
    expect(f.status).toBe('ACTIVE');
    expect(f.addresses.novabox.map((x: { addr: string }) => x.addr)).toEqual([fixed]);
    expect((await nb(['server', 'exec', 'nonet', '--', 'ls', '/sys/class/net'])).stdout).toBe('lo\n');
    expect((await nb(['server', 'exec', 'fixed', '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout).toContain(` ${fixed}/`);
    // the same address again: refused, nothing made
    const clash = await api('POST', '/compute/v2.1/servers', t, {
      server: { name: 'clash', imageRef: img, flavorRef: flavor, networks: [{ fixed_ip: fixed }] },
    });
    expect(clash.status).toBe(409);
    for (const id of ids) expect((await api('DELETE', `/compute/v2.1/servers/${id}`, t)).status).toBe(204);
    for (
      let i = 0;
      i < 200 && (await api('GET', '/compute/v2.1/servers', t)).json.servers.some((x: { id: string }) => ids.includes(x.id));
      i++
    )
      await new Promise((r) => setTimeout(r, 50));
    expect((await api('GET', '/compute/v2.1/servers', t)).json.servers.map((x: { name: string }) => x.name)).not.toContain('fixed');
  }, 60_000);

  it('revoked and expired tokens are 401', async () => {
    const tok = await json(['token', 'issue']);
    expect((await api('GET', '/compute/v2.1/servers', tok.id)).status).toBe(200);
    await ok(['token', 'revoke', tok.id]);
    const r = await api('GET', '/compute/v2.1/servers', tok.id);
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe(401);
    // expiry: move a token's expiry into the past in the store (tokens are stored by hash)
    const t = await adminToken();
    const Database = createRequire(import.meta.url)('better-sqlite3');
    const db = new Database(join(root, 'novabox.db'));
    db.prepare("UPDATE tokens SET expires_at = '2000-01-01T00:00:00.000000' WHERE hash = ?").run(
      createHash('sha256').update(t).digest('hex'),
    );
    db.close();
    expect((await api('GET', '/compute/v2.1/flavors', t)).status).toBe(401);
  });

  it('refuses bad input with a Nova fault naming the field, and changes nothing', async () => {
    const t = await adminToken();
    const count = async () => (await api('GET', '/compute/v2.1/servers', t)).json.servers.length;
    const n = await count();
    const img = (await api('GET', '/image/v2/images?name=busybox', t)).json.images[0].id;
    const cases: [string, string, unknown, RegExp][] = [
      ['POST', '/compute/v2.1/servers', '{"server": {', /Malformed/],
      ['POST', '/compute/v2.1/servers', { server: { name: 'x', imageRef: img, flavorRef: '999' } }, /Flavor 999 could not be found/],
      ['POST', '/compute/v2.1/servers', { server: { name: '', imageRef: img, flavorRef: '1' } }, /name/],
      ['POST', '/compute/v2.1/servers', { server: { name: 'x', imageRef: 'busybox', flavorRef: '1' } }, /imageRef/],
      ['POST', `/compute/v2.1/servers/${webId}/action`, { reboot: { type: 'NOW' } }, /type/],
      ['POST', '/compute/v2.1/os-keypairs', { keypair: { name: 'k9', public_key: 'ssh-rsa JUNK' } }, /Keypair data is invalid/],
      ['POST', '/compute/v2.1/flavors', { flavor: { name: 'f', ram: -1, vcpus: 1, disk: 1 } }, /ram/],
    ];
    for (const [method, path, body, why] of cases) {
      const r = await api(method, path, t, body);
      expect(r.status, `${method} ${path}`).toBe(400);
      expect(r.json.badRequest.message).toMatch(why);
    }
    const big = await api('POST', '/compute/v2.1/servers', t, JSON.stringify({ server: { name: 'x'.repeat(2 << 20) } }));
    expect(big.status).toBe(413);
    expect(await count()).toBe(n);
  });

  it('drives create, list, stop, snapshot and delete through openstacksdk', async () => {
    const script = `
import json, openstack
c = openstack.connect(cloud='novabox')
img = c.image.find_image('busybox')
fl = c.compute.find_flavor('c1.nano')
s = c.compute.create_server(name='sdk1', image_id=img.id, flavor_id=fl.id)
s = c.compute.wait_for_server(s, status='ACTIVE', wait=60, interval=0.2)
names = sorted(x.name for x in c.compute.servers())
c.compute.stop_server(s)
s = c.compute.wait_for_server(s, status='SHUTOFF', wait=60, interval=0.2)
stopped = s.status
snap = c.compute.create_server_image(s, name='sdksnap', wait=True, timeout=120)
snap_status = c.image.get_image(snap.id).status
c.image.delete_image(snap.id)
c.compute.delete_server(s)
c.compute.wait_for_delete(s, wait=60, interval=0.2)
print(json.dumps({'names': names, 'stopped': stopped, 'snapshot': snap_status, 'left': sorted(x.name for x in c.compute.servers()),
                  'images': sorted(i.name for i in c.image.images())}))
`;
    const r = await run(PY, ['-c', script], adminEnv, 100_000); // one process for the whole walk: 10-30 s
    expect(r.stderr.split('\n').filter((l) => /Error|Traceback/.test(l))).toEqual([]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({
      names: ['cli1', 'sdk1', 'web1'],
      stopped: 'SHUTOFF',
      snapshot: 'active',
      left: ['cli1', 'web1'],
      images: ['busybox'],
    });
  }, 120_000);

  it("server migrate: serve answers Nova's No valid host; the CLI's migration to another host is in server migration list", async () => {
    const created = JSON.parse(
      (await nb(['server', 'create', '--network', 'none', '--image', 'busybox', '--flavor', 'm1.tiny', 'mig1', '-f', 'json'])).stdout,
    );
    const refused = await osc(['server', 'migrate', 'mig1']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      'No valid host was found. This novabox serve knows no other host to migrate to: on this host, run "novabox server migrate mig1 --to ssh://HOST". (HTTP 400)',
    );
    const live = await osc(['server', 'migrate', '--live-migration', 'mig1']);
    expect(live.code).not.toBe(0);
    expect(live.stderr).toContain('No valid host was found. This novabox serve knows no other host to live-migrate to:');
    expect(await statusOf(created.id)).toBe('ACTIVE');
    // a second host: another state root, reached through `server receive`
    const other = tempRoot('nbx-e2e-b-');
    try {
      const receive = `exec:env NOVABOX_ROOT=${other.root} NOVABOX_CGROUP_PARENT=${cgroupParentFor(other.root)} ${process.execPath} ${BIN} server receive`;
      const moved = await nb(['server', 'migrate', 'mig1', '--to', receive]);
      expect(moved.exitCode, moved.stderr).toBe(0);
      const list = await json(['server', 'migration', 'list']);
      const row = list.find((m: Record<string, unknown>) => m['Server UUID'] === created.id);
      expect(row, JSON.stringify(list)).toMatchObject({
        Status: 'confirmed',
        'Source Compute': hostname(),
        'Dest Compute': hostname(),
        'Old Flavor': row['New Flavor'],
      });
      // (--server looks the server up: it is gone from this host)
      const ids = async (status: string) =>
        (await json(['server', 'migration', 'list', '--status', status])).map((m: Record<string, unknown>) => m['Server UUID']);
      expect(await ids('confirmed')).toContain(created.id);
      expect(await ids('error')).not.toContain(created.id);
      expect((await api('GET', `/compute/v2.1/servers/${created.id}`, await adminToken())).status).toBe(404);
    } finally {
      // whatever arrived there goes before its root does
      await runCli(['server', 'delete', '--force', created.id], { root: other.root });
      expect((await runCli(['server', 'list', '-f', 'value'], { root: other.root })).stdout).toBe('');
      other.remove();
    }
  }, 120_000);

  it('deletes with --wait; the CLI deletes its own', async () => {
    const [del, cliDel] = await Promise.all([ok(['server', 'delete', '--wait', 'web1']), nb(['server', 'delete', 'cli1'])]);
    expect(del).toBe('');
    expect(cliDel.exitCode).toBe(0);
    expect(await json(['server', 'list', '--all-projects'])).toEqual([]);
  }, 60_000);

  it('reconciles on restart: nothing stays in BUILD after serve was killed', async () => {
    const t = await adminToken();
    const img = (await api('GET', '/image/v2/images?name=busybox', t)).json.images[0].id;
    const c = await api('POST', '/compute/v2.1/servers', t, { server: { name: 'crash1', imageRef: img, flavorRef: '6' } });
    expect(c.status).toBe(202);
    expect(Object.keys(c.json.server).sort()).toEqual(['OS-DCF:diskConfig', 'adminPass', 'id', 'links', 'security_groups']);
    expect(c.headers.get('location')).toMatch(new RegExp(`/compute/v2.1/servers/${c.json.server.id}$`));
    await serve.stop('SIGKILL');
    serve = await startServe(root, { NOVABOX_ADMIN_PASSWORD: password });
    expect(readFileSync(join(root, 'clouds.yaml'), 'utf8')).toContain(`auth_url: "${serve.url}/identity/v3"`); // the new port
    const t2 = await adminToken();
    const s = (await api('GET', `/compute/v2.1/servers/${c.json.server.id}`, t2)).json.server;
    expect(['ACTIVE', 'ERROR']).toContain(s.status);
    const actions = (await api('GET', `/compute/v2.1/servers/${c.json.server.id}/os-instance-actions`, t2)).json.instanceActions;
    expect(actions.find((a: { action: string }) => a.action === 'create').request_id).toBe(c.headers.get('x-compute-request-id'));
    expect((await api('DELETE', `/compute/v2.1/servers/${c.json.server.id}`, t2)).status).toBe(204);
    expect((await api('DELETE', `/compute/v2.1/servers/${c.json.server.id}`, t2)).status).toBe(404);
  }, 60_000);

  it('stops cleanly on SIGTERM and leaves nothing behind', async () => {
    expect(await serve.stop('SIGTERM')).toBe(0);
    expect(serve.output()).toMatch(/SIGTERM: stopping/);
    const after = census(root);
    const strip = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')) });
    expect(strip(after)).toEqual(strip(before));
  });
});
