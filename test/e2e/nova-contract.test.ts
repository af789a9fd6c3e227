/**
 * Issue 16: the Nova/Glance behaviours a real cloud has, one `it` per item, through the real
 * `openstack` client and openstacksdk (raw HTTP where no client command exists) against
 * `novabox serve` on 127.0.0.1, on a temp state root, with real containers. Ends with the
 * leak census.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { census, cgroupParentFor, type Census } from '../helpers/census.js';
import { runCli, tempRoot } from '../helpers/run-cli.js';
import { run, startServe, tokenFor, type Serve } from './serve.js';

const isRoot = process.getuid?.() === 0;
const hasClient = ['/usr/bin/openstack', '/usr/local/bin/openstack'].some((f) => existsSync(f));
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

describe.skipIf(!isRoot || !hasClient)('issue 16: the OpenStack contract, behaviour by behaviour (root, real containers)', () => {
  let root: string;
  let removeRoot: () => void;
  let serve: Serve;
  let before: Census;
  let adminEnv: NodeJS.ProcessEnv;
  const password = randomBytes(12).toString('hex');

  const osc = (args: string[], extra: NodeJS.ProcessEnv = {}) => run('openstack', args, { ...adminEnv, ...extra });
  const ok = async (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const r = await osc(args, extra);
    if (r.code !== 0) throw new Error(`openstack ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const json = async (args: string[], extra: NodeJS.ProcessEnv = {}) => JSON.parse(await ok([...args, '-f', 'json'], extra));
  const nb = (args: string[]) => runCli(args, { root });
  const api = async (method: string, path: string, token: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(`${serve.url}${path}`, {
      method,
      headers: { 'x-auth-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: (body === undefined
        ? undefined
        : typeof body === 'string' || body instanceof Uint8Array
          ? body
          : JSON.stringify(body)) as RequestInit['body'],
    });
    const text = await r.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    // biome-ignore lint/suspicious/noExplicitAny: the tests read whatever JSON the API answers
    return { status: r.status, headers: r.headers, json: parsed as any, text };
  };
  const adminToken = () => tokenFor(serve.url, 'admin', password, 'admin');
  const server = async (id: string) => (await api('GET', `/compute/v2.1/servers/${id}`, await adminToken())).json.server;
  const waitFor = async (id: string, want: (s: { status: string; 'OS-EXT-STS:task_state': string | null }) => boolean, ms = 60_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const s = await server(id);
      if (want(s)) return s;
      if (Date.now() > end) throw new Error(`server ${id} stayed ${s.status}/${s['OS-EXT-STS:task_state']}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const _sdk = async (script: string) => {
    const r = await run(PY, ['-c', `import openstack, json\nc = openstack.connect(cloud='novabox')\n${script}`], adminEnv);
    if (r.code !== 0) throw new Error(`python exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };

  beforeAll(async () => {
    ({ root, remove: removeRoot } = tempRoot('nbx-e2e16-'));
    serve = await startServe(root, { NOVABOX_ADMIN_PASSWORD: password });
    adminEnv = {
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
    await serve?.stop();
    removeRoot?.();
  });

  let webId = '';
  let rootfsArchive = '';

  it('1: image names are free text (Glance upload, createImage, the CLI), an ambiguous name is refused', async () => {
    const web = await json(['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', '--wait', 'web16']);
    webId = web.id;
    rootfsArchive = join(root, 'busybox-oci.tar');
    expect((await nb(['image', 'save', 'busybox', '--file', rootfsArchive])).exitCode).toBe(0);
    // Glance: POST + PUT file, with a name of capitals, spaces, punctuation and non-ASCII
    const up = await json([
      'image',
      'create',
      '--disk-format',
      'raw',
      '--container-format',
      'bare',
      '--file',
      rootfsArchive,
      'Up / load: ₡ "1"',
    ]);
    // (the client prints the record as created, before its upload)
    expect(await json(['image', 'show', up.id])).toMatchObject({ name: 'Up / load: ₡ "1"', status: 'active' });
    // createImage through the client (openstacksdk), and boot a server from it by that name
    const snap = await json(['server', 'image', 'create', '--name', 'Snap ₡ 1', '--wait', 'web16']);
    expect(snap).toMatchObject({ name: 'Snap ₡ 1', status: 'active' });
    const fromSnap = await json(['server', 'create', '--image', 'Snap ₡ 1', '--flavor', 'm1.tiny', '--wait', 'from-snap']);
    expect(fromSnap.status).toBe('ACTIVE');
    // the novabox CLI takes the same names, and refuses a name two images share
    expect(JSON.parse((await nb(['image', 'show', 'Snap ₡ 1', '-f', 'json'])).stdout).id).toBe(snap.id);
    const second = await nb(['image', 'create', '--file', rootfsArchive, 'Snap ₡ 1', '-f', 'json']);
    expect(second.exitCode).toBe(0);
    const secondId = JSON.parse(second.stdout).id;
    const amb = await nb(['image', 'show', 'Snap ₡ 1']);
    expect(amb.exitCode).toBe(4);
    expect(amb.stderr).toMatch(/more than one image is named "Snap ₡ 1"/);
    expect((await nb(['server', 'create', '--image', 'Snap ₡ 1', '--flavor', 'm1.tiny', 'amb1'])).exitCode).toBe(4);
    // by id, each of the two boots and deletes
    expect((await nb(['image', 'delete', secondId])).exitCode).toBe(0);
    expect(JSON.parse((await nb(['image', 'show', 'Snap ₡ 1', '-f', 'json'])).stdout).id).toBe(snap.id);
    // bad names: too long, empty
    const t = await adminToken();
    const long = await api('POST', `/compute/v2.1/servers/${webId}/action`, t, { createImage: { name: 'x'.repeat(256) } });
    expect(long.status).toBe(400);
    expect((await nb(['image', 'create', '--file', rootfsArchive, ''])).exitCode).toBe(2);
    await ok(['server', 'delete', '--wait', 'from-snap']);
    await ok(['image', 'delete', snap.id, up.id]);
  }, 240_000);

  it('2 and 13: Glance keeps any bytes (active, downloadable); booting them is a Nova fault; no host path in any fault', async () => {
    const blob = join(root, 'disk.qcow2');
    const bytes = randomBytes(200_000);
    writeFileSync(blob, bytes);
    await ok(['image', 'create', '--disk-format', 'qcow2', '--container-format', 'bare', '--file', blob, 'raw-disk']);
    const img = await json(['image', 'show', 'raw-disk']);
    expect(img).toMatchObject({ status: 'active', disk_format: 'qcow2', size: bytes.length });
    expect(img.checksum).toBe(createHash('md5').update(bytes).digest('hex'));
    const back = join(root, 'back.bin');
    await ok(['image', 'save', '--file', back, 'raw-disk']);
    expect(readFileSync(back).equals(bytes)).toBe(true);
    // boot: accepted (202), then ERROR with Nova's fault, naming the image and no file of the host
    const t = await adminToken();
    const c = await api('POST', '/compute/v2.1/servers', t, { server: { name: 'rawboot', imageRef: img.id, flavorRef: '1' } });
    expect(c.status).toBe(202);
    const s = await waitFor(c.json.server.id, (x) => x.status !== 'BUILD');
    expect(s.status).toBe('ERROR');
    expect(s.fault.message).toMatch(/^novabox cannot boot this image: /);
    expect(s.fault.message).not.toContain(root);
    expect((await json(['server', 'show', 'rawboot'])).fault?.message ?? '').toMatch(/novabox cannot boot this image/);
    await ok(['server', 'delete', '--wait', 'rawboot']);
    // the compute API's image metadata and list filters on such an image
    const meta = await api('POST', `/compute/v2.1/images/${img.id}/metadata`, t, { metadata: { purpose: 'disk' } });
    expect(meta.status).toBe(200);
    expect(meta.json.metadata).toMatchObject({ purpose: 'disk' });
    expect((await api('GET', `/compute/v2.1/images/${img.id}/metadata/purpose`, t)).json).toEqual({ meta: { purpose: 'disk' } });
    expect((await api('PUT', `/compute/v2.1/images/${img.id}/metadata/purpose`, t, { meta: { purpose: 'other' } })).json).toEqual({
      meta: { purpose: 'other' },
    });
    expect((await api('DELETE', `/compute/v2.1/images/${img.id}/metadata/purpose`, t)).status).toBe(204);
    expect((await api('GET', `/compute/v2.1/images/${img.id}/metadata/purpose`, t)).status).toBe(404);
    const names = async (q: string) =>
      (await api('GET', `/compute/v2.1/images/detail?${q}`, t)).json.images.map((i: { name: string }) => i.name).sort();
    expect(await names('status=ACTIVE')).toEqual(['busybox', 'raw-disk']);
    expect(await names('name=raw-disk')).toEqual(['raw-disk']);
    expect(await names('status=SAVING')).toEqual([]);
    expect(await names(`changes-since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`)).toEqual([]);
    expect(await names('changes-since=2000-01-01T00:00:00Z')).toEqual(['busybox', 'raw-disk']);
    expect((await api('GET', '/compute/v2.1/images/detail?changes-since=yesterday', t)).status).toBe(400);
    const page1 = (await api('GET', '/compute/v2.1/images?limit=1', t)).json;
    expect(page1.images).toHaveLength(1);
    expect(page1.images_links[0].href).toContain(`marker=${page1.images[0].id}`);
    const page2 = (await api('GET', `/compute/v2.1/images?limit=1&marker=${page1.images[0].id}`, t)).json;
    expect(page2.images).toHaveLength(1);
    expect(page2.images[0].id).not.toBe(page1.images[0].id);
    // server and type: a snapshot of web16
    const snap = await json(['server', 'image', 'create', '--name', 'typed', '--wait', 'web16']);
    expect(await names(`server=${webId}`)).toEqual(['typed']);
    expect(await names('type=snapshot')).toEqual(['typed']);
    await ok(['image', 'delete', snap.id]);
    // 13: a bad upload's fault names the image, not a file of the host
    const q = await api('POST', '/image/v2/images', t, { name: 'again', disk_format: 'raw', container_format: 'bare' });
    const put = await api('PUT', `/image/v2/images/${q.json.id}/file`, t, new Uint8Array([1, 2, 3]), {
      'content-type': 'application/octet-stream',
    });
    expect(put.status).toBe(204);
    const twice = await api('PUT', `/image/v2/images/${q.json.id}/file`, t, new Uint8Array([1]), {
      'content-type': 'application/octet-stream',
    });
    expect(twice.status).toBe(409);
    expect(twice.text).not.toContain(root);
    expect(twice.text).toContain(q.json.id);
    const bad = await api('POST', `/compute/v2.1/servers/${webId}/action`, t, { rebuild: { imageRef: q.json.id } });
    expect(bad.status).toBe(400);
    expect(bad.json.badRequest.message).toMatch(/^novabox cannot boot this image/);
    expect(bad.text).not.toContain(root);
    await ok(['image', 'delete', 'raw-disk', 'again']);
  }, 240_000);

  it("3: booting on a flavor below the image's min_ram / min_disk is Nova's 400", async () => {
    const img = await json([
      'image',
      'create',
      '--disk-format',
      'raw',
      '--container-format',
      'bare',
      '--min-ram',
      '100000',
      '--file',
      rootfsArchive,
      'big-ram',
    ]);
    const r = await osc(['server', 'create', '--image', 'big-ram', '--flavor', 'm1.tiny', 'small']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Flavor's memory is too small for requested image\. \(HTTP 400\)/);
    await ok(['image', 'set', '--min-ram', '0', '--min-disk', '1000', 'big-ram']);
    const d = await osc(['server', 'create', '--image', 'big-ram', '--flavor', 'm1.tiny', 'small']);
    expect(d.stderr).toMatch(/Flavor's disk is too small for requested image\. \(HTTP 400\)/);
    // rebuild and resize check it too
    const t = await adminToken();
    const rb = await api('POST', `/compute/v2.1/servers/${webId}/action`, t, { rebuild: { imageRef: img.id } });
    expect(rb.status).toBe(400);
    await ok(['image', 'set', '--min-disk', '0', 'big-ram']);
    const fine = await json(['server', 'create', '--image', 'big-ram', '--flavor', 'm1.tiny', '--wait', 'fits']);
    expect(fine.status).toBe('ACTIVE');
    await ok(['server', 'delete', '--wait', 'fits']);
    await ok(['image', 'delete', 'big-ram']);
    expect((await json(['server', 'list'])).map((s: { Name: string }) => s.Name)).toEqual(['web16']);
  }, 240_000);

  let userToken = '';
  it('7: flavor lists parse is_public as Nova does (true/false/none and their spellings; admin only)', async () => {
    await ok(['project', 'create', 'p16']);
    await ok(['user', 'create', '--project', 'p16', '--password', 'pw16', 'u16']);
    await ok(['role', 'add', '--project', 'p16', '--user', 'u16', 'member']);
    userToken = await tokenFor(serve.url, 'u16', 'pw16', 'p16');
    await ok(['flavor', 'create', '--private', '--ram', '64', '--vcpus', '1', '--disk', '1', '--id', 'priv16', 'priv16']);
    const names = (list: { Name: string }[]) => list.map((f) => f.Name);
    const [pub, priv, all] = await Promise.all([
      json(['flavor', 'list', '--public']),
      json(['flavor', 'list', '--private']),
      json(['flavor', 'list', '--all']),
    ]);
    expect(names(pub)).not.toContain('priv16');
    expect(names(priv)).toEqual(['priv16']);
    expect(names(all)).toEqual(expect.arrayContaining(['priv16', 'm1.tiny']));
    const t = await adminToken();
    const q = async (v: string, tok = t) => {
      const r = await api('GET', `/compute/v2.1/flavors/detail?is_public=${v}`, tok);
      return r.status === 200 ? r.json.flavors.map((f: { id: string }) => f.id) : r.status;
    };
    for (const v of ['none', 'None', 'NONE']) expect(await q(v)).toContain('priv16');
    for (const v of ['false', 'False', '0', 'f', 'no', 'off', 'N']) expect(await q(v)).toEqual(['priv16']);
    for (const v of ['true', 'TRUE', '1', 't', 'yes', 'on', 'Y']) {
      expect(await q(v)).toContain('1');
      expect(await q(v)).not.toContain('priv16');
    }
    expect(await q('maybe')).toBe(400);
    // a non-admin's is_public is not read: public ones (and private ones shared with the project)
    expect(await q('none', userToken)).not.toContain('priv16');
    expect(await q('maybe', userToken)).toContain('1');
    await ok(['flavor', 'set', '--project', 'p16', 'priv16']);
    expect(await q('false', userToken)).toContain('priv16');
    await ok(['flavor', 'delete', 'priv16']);
  }, 120_000);

  it('6: hypervisor servers and search (2.1 forms, admin only)', async () => {
    const host = (await json(['hypervisor', 'list']))[0]['Hypervisor Hostname'];
    const t = await adminToken();
    const servers = await api('GET', `/compute/v2.1/os-hypervisors/${encodeURIComponent(host)}/servers`, t);
    expect(servers.status).toBe(200);
    expect(servers.json.hypervisors).toEqual([
      { id: 1, hypervisor_hostname: host, state: 'up', status: 'enabled', servers: [{ uuid: webId, name: 'web16' }] },
    ]);
    const search = await api('GET', `/compute/v2.1/os-hypervisors/${encodeURIComponent(host.slice(1, 4))}/search`, t);
    expect(search.json.hypervisors).toEqual([{ id: 1, hypervisor_hostname: host, state: 'up', status: 'enabled' }]);
    expect((await api('GET', '/compute/v2.1/os-hypervisors/no-such-host-16/search', t)).status).toBe(404);
    expect((await api('GET', '/compute/v2.1/os-hypervisors/no-such-host-16/servers', t)).status).toBe(404);
    expect((await api('GET', `/compute/v2.1/os-hypervisors/${encodeURIComponent(host)}/servers`, userToken)).status).toBe(403);
    expect((await api('GET', `/compute/v2.1/os-hypervisors/${encodeURIComponent(host)}/search`, userToken)).status).toBe(403);
    // novaclient's own calls for them (hypervisor list --matching)
    const matching = await json(['hypervisor', 'list', '--matching', host.slice(0, 3)]);
    expect(matching.map((h: { 'Hypervisor Hostname': string }) => h['Hypervisor Hostname'])).toEqual([host]);
  }, 120_000);

  it('12: usage list/show (os-simple-tenant-usage) and availability zones without a network endpoint', async () => {
    const gone = await json(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--wait', 'short-lived']);
    await ok(['server', 'delete', '--wait', gone.id]);
    // (in -f json the client prints the list of server usages under "Servers")
    const count = (v: unknown) => (Array.isArray(v) ? v.length : Number(v));
    const list = await json(['usage', 'list']);
    const admin = list.find((u: { Servers: unknown }) => count(u.Servers) >= 2);
    expect(admin).toBeDefined();
    expect(admin['RAM MB-Hours']).toBeGreaterThan(0);
    const show = await json(['usage', 'show', '--project', 'admin']);
    expect(count(show.Servers)).toBeGreaterThanOrEqual(2);
    const t = await adminToken();
    const raw = await api(
      'GET',
      `/compute/v2.1/os-simple-tenant-usage?detailed=1&start=2000-01-01T00:00:00&end=${new Date(Date.now() + 60_000).toISOString().slice(0, 19)}`,
      t,
    );
    const usages = raw.json.tenant_usages[0].server_usages;
    expect(usages.find((u: { instance_id: string }) => u.instance_id === gone.id)).toMatchObject({
      state: 'terminated',
      flavor: 'c1.nano',
      ended_at: expect.any(String),
    });
    expect(usages.find((u: { instance_id: string }) => u.instance_id === webId)).toMatchObject({
      state: 'active',
      ended_at: null,
      flavor: 'm1.tiny',
    });
    expect((await api('GET', '/compute/v2.1/os-simple-tenant-usage?start=yesterday', t)).status).toBe(400);
    expect((await api('GET', '/compute/v2.1/os-simple-tenant-usage?start=2030-01-01T00:00:00&end=2020-01-01T00:00:00', t)).status).toBe(
      400,
    );
    expect((await api('GET', '/compute/v2.1/os-simple-tenant-usage', userToken)).status).toBe(403);
    const own = await api('GET', `/compute/v2.1/os-simple-tenant-usage/${(await json(['project', 'show', 'p16'])).id}`, userToken);
    expect(own).toMatchObject({ status: 200, json: { tenant_usage: {} } });
    const zones = await json(['availability', 'zone', 'list', '--compute']);
    expect(zones).toEqual(expect.arrayContaining([expect.objectContaining({ 'Zone Name': 'nova', 'Zone Status': 'available' })]));
    const long = await json(['availability', 'zone', 'list', '--compute', '--long']);
    expect(long.some((z: { 'Service Name': string }) => z['Service Name'] === 'nova-compute')).toBe(true);
  }, 120_000);

  it('9: os-resetState sticks: ERROR until an action moves it, power state reconciled; rebuild from ERROR', async () => {
    const srv = await json(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--wait', 'reset16']);
    await ok(['server', 'set', '--state', 'error', srv.id]);
    let s = await server(srv.id);
    expect(s).toMatchObject({ status: 'ERROR', 'OS-EXT-STS:vm_state': 'error', 'OS-EXT-STS:power_state': 1 });
    // the container dies: the power state follows, the vm_state stays
    const pid = JSON.parse((await nb(['server', 'show', srv.id, '-f', 'json'])).stdout);
    const initPid = pid.pid;
    expect(typeof initPid).toBe('number');
    process.kill(initPid, 'SIGKILL');
    s = await waitFor(srv.id, (x) => (x as unknown as Record<string, number>)['OS-EXT-STS:power_state'] !== 1, 20_000);
    expect(s).toMatchObject({ status: 'ERROR', 'OS-EXT-STS:vm_state': 'error', 'OS-EXT-STS:power_state': 4 });
    expect((await json(['server', 'list'])).find((x: { ID: string }) => x.ID === srv.id).Status).toBe('ERROR');
    // actions that Nova refuses in ERROR still refuse; rebuild works and ends ACTIVE
    expect((await osc(['server', 'start', srv.id])).stderr).toMatch(/HTTP 409/);
    await ok(['server', 'rebuild', '--image', 'busybox', '--wait', srv.id]);
    expect(await server(srv.id)).toMatchObject({ status: 'ACTIVE', 'OS-EXT-STS:power_state': 1 });
    await ok(['server', 'delete', '--wait', srv.id]);
  }, 120_000);

  it('8: resize revert after the old flavor was deleted; show keeps the flavor', async () => {
    await ok(['flavor', 'create', '--ram', '96', '--vcpus', '1', '--disk', '1', '--id', 'old16', 'old16']);
    const srv = await json(['server', 'create', '--image', 'busybox', '--flavor', 'old16', '--wait', 'resize16']);
    await ok(['server', 'resize', '--flavor', 'c1.nano', '--wait', srv.id]);
    expect((await server(srv.id)).status).toBe('VERIFY_RESIZE');
    await ok(['flavor', 'delete', 'old16']);
    await ok(['server', 'resize', 'revert', srv.id]);
    const s = await waitFor(srv.id, (x) => x.status === 'ACTIVE');
    expect(s.flavor.id).toBe('old16');
    expect((await json(['server', 'show', srv.id])).flavor).toBe('old16 (old16)');
    const t = await adminToken();
    expect((await api('GET', '/compute/v2.1/flavors/old16', t)).json.flavor).toMatchObject({ id: 'old16', name: 'old16', ram: 96 });
    expect((await api('GET', '/compute/v2.1/flavors/detail', t)).json.flavors.map((f: { id: string }) => f.id)).not.toContain('old16');
    await ok(['server', 'delete', '--wait', srv.id]);
  }, 180_000);

  it('14: a just-deleted server is still a list marker', async () => {
    const t = await adminToken();
    const a = await json(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--wait', 'mark-a']);
    const b = await json(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--wait', 'mark-b']);
    await ok(['server', 'delete', '--wait', b.id]);
    const after = await api('GET', `/compute/v2.1/servers/detail?marker=${b.id}`, t);
    expect(after.status).toBe(200);
    expect(after.json.servers.map((x: { id: string }) => x.id)).toEqual([a.id, webId]);
    expect((await api('GET', '/compute/v2.1/servers/detail?marker=00000000-0000-4000-8000-000000000000', t)).status).toBe(400);
    await ok(['server', 'delete', '--wait', a.id]);
  }, 120_000);

  it('14: os-services, server groups (anti-affinity: No valid host), microversions to 2.2 (406 above), volume attachments, domain-scoped tokens', async () => {
    const services = await json(['compute', 'service', 'list']);
    expect(services).toEqual([expect.objectContaining({ Binary: 'nova-compute', Zone: 'nova', Status: 'enabled', State: 'up' })]);
    // server groups through the client
    const g = await json(['server', 'group', 'create', '--policy', 'anti-affinity', 'spread16']);
    expect(g).toMatchObject({ name: 'spread16', policies: ['anti-affinity'] });
    const one = await json(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--hint', `group=${g.id}`, '--wait', 'g16-a']);
    expect(one.status).toBe('ACTIVE');
    await ok(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--hint', `group=${g.id}`, 'g16-b']);
    const two = await waitFor((await json(['server', 'show', 'g16-b'])).id, (x) => x.status !== 'BUILD');
    expect(two.status).toBe('ERROR');
    expect((two as unknown as { fault: { message: string } }).fault.message).toMatch(/No valid host was found/);
    expect((await json(['server', 'group', 'show', 'spread16'])).members).toContain(one.id);
    expect((await json(['server', 'group', 'list'])).map((x: { Name: string }) => x.Name)).toEqual(['spread16']);
    const aff = await json(['server', 'group', 'create', '--policy', 'affinity', 'together16']);
    const t = await adminToken();
    const bad = await api('POST', '/compute/v2.1/os-server-groups', t, { server_group: { name: 'x', policies: ['nearby'] } });
    expect(bad.status).toBe(400);
    await ok(['server', 'delete', '--wait', 'g16-a', 'g16-b']);
    await ok(['server', 'group', 'delete', 'spread16', aff.id]);
    expect((await api('GET', `/compute/v2.1/os-server-groups/${g.id}`, t)).status).toBe(404);
    // microversions: the version document says 2.2, 2.2 has key pair types, above is 406
    const doc = await (await fetch(`${serve.url}/compute/v2.1`)).json();
    expect(doc.version).toMatchObject({ version: '2.2', min_version: '2.1' });
    const k = await api(
      'POST',
      '/compute/v2.1/os-keypairs',
      t,
      { keypair: { name: 'k22', type: 'ssh' } },
      { 'OpenStack-API-Version': 'compute 2.2' },
    );
    expect(k.status).toBe(200);
    expect(k.headers.get('openstack-api-version')).toBe('compute 2.2');
    expect(k.json.keypair).toMatchObject({ name: 'k22', type: 'ssh' });
    expect(
      (await api('GET', '/compute/v2.1/os-keypairs/k22', t, undefined, { 'X-OpenStack-Nova-API-Version': '2.2' })).json.keypair.type,
    ).toBe('ssh');
    expect((await api('GET', '/compute/v2.1/os-keypairs/k22', t)).json.keypair.type).toBeUndefined(); // 2.1
    expect((await api('GET', '/compute/v2.1/servers', t, undefined, { 'OpenStack-API-Version': 'compute 2.3' })).status).toBe(406);
    expect(
      (await api('GET', '/compute/v2.1/servers', t, undefined, { 'OpenStack-API-Version': 'compute latest' })).headers.get(
        'x-openstack-nova-api-version',
      ),
    ).toBe('2.2');
    // openstacksdk negotiates 2.2 from the version document: --type needs it
    await ok(['keypair', 'create', '--type', 'ssh', 'k22b']);
    expect((await json(['keypair', 'show', 'k22b'])).type).toBe('ssh');
    await ok(['keypair', 'delete', 'k22b']);
    await ok(['keypair', 'delete', 'k22']);
    // volumes: none, as Nova answers for a server without any
    expect((await api('GET', `/compute/v2.1/servers/${webId}/os-volume_attachments`, t)).json).toEqual({ volumeAttachments: [] });
    // Keystone: a domain-scoped token, for an admin; used on the identity API
    const dom = await fetch(`${serve.url}/identity/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: { methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password } } },
          scope: { domain: { name: 'Default' } },
        },
      }),
    });
    expect(dom.status).toBe(201);
    const body = await dom.json();
    expect(body.token.domain).toMatchObject({ id: 'default', name: 'Default' });
    expect(body.token.project).toBeUndefined();
    expect(body.token.roles.map((r: { name: string }) => r.name)).toContain('admin');
    const domTok = dom.headers.get('x-subject-token')!;
    expect((await api('GET', '/identity/v3/projects', domTok)).status).toBe(200);
    expect((await api('GET', '/compute/v2.1/servers', domTok)).status).toBe(403);
    const member = await fetch(`${serve.url}/identity/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: { methods: ['password'], password: { user: { name: 'u16', domain: { name: 'Default' }, password: 'pw16' } } },
          scope: { domain: { id: 'default' } },
        },
      }),
    });
    expect(member.status).toBe(401);
  }, 180_000);

  it('4: suspend / resume: frozen (memory given back on cgroup v2), every other action 409, snapshot and delete work; the CLI too', async () => {
    const frozen = (id: string) => {
      const parent = cgroupParentFor(root);
      const v1 = `/sys/fs/cgroup/freezer/${parent}/${id}/freezer.state`;
      if (existsSync(v1)) return readFileSync(v1, 'utf8').trim() === 'FROZEN';
      return readFileSync(`/sys/fs/cgroup/${parent}/${id}/cgroup.freeze`, 'utf8').trim() === '1';
    };
    await ok(['server', 'suspend', webId]);
    let s = await waitFor(webId, (x) => x.status === 'SUSPENDED');
    expect(s).toMatchObject({ 'OS-EXT-STS:vm_state': 'suspended', 'OS-EXT-STS:power_state': 7, 'OS-EXT-STS:task_state': null });
    expect(frozen(webId)).toBe(true);
    const t = await adminToken();
    for (const body of [
      { 'os-stop': null },
      { pause: null },
      { reboot: { type: 'SOFT' } },
      { resize: { flavorRef: '6' } },
      { suspend: null },
      { migrate: null },
      { 'os-migrateLive': { host: null, block_migration: 'auto' } },
    ]) {
      const r = await api('POST', `/compute/v2.1/servers/${webId}/action`, t, body);
      expect([Object.keys(body)[0], r.status]).toEqual([Object.keys(body)[0], 409]);
    }
    // a snapshot of the suspended server; it stays suspended and frozen
    const snap = await json(['server', 'image', 'create', '--name', 'of-suspended', '--wait', webId]);
    expect((await json(['image', 'show', snap.id])).status).toBe('active');
    expect((await server(webId)).status).toBe('SUSPENDED');
    expect(frozen(webId)).toBe(true);
    await ok(['image', 'delete', snap.id]);
    await ok(['server', 'resume', webId]);
    s = await waitFor(webId, (x) => x.status === 'ACTIVE');
    expect(frozen(webId)).toBe(false);
    expect((await nb(['server', 'exec', webId, '--', 'true'])).exitCode).toBe(0);
    const events = (await api('GET', `/compute/v2.1/servers/${webId}/os-instance-actions`, t)).json.instanceActions.map(
      (a: { action: string }) => a.action,
    );
    expect(events.slice(0, 3)).toEqual(['resume', 'createImage', 'suspend']);
    expect((await api('GET', `/compute/v2.1/servers/${webId}/action`, t)).status).not.toBe(501);
    // the novabox CLI, and delete of a suspended server
    expect((await nb(['server', 'suspend', 'web16'])).exitCode).toBe(0);
    expect((await server(webId)).status).toBe('SUSPENDED');
    expect((await nb(['server', 'resume', 'web16'])).exitCode).toBe(0);
    expect((await nb(['server', 'resume', 'web16'])).exitCode).toBe(4);
    expect((await nb(['server', 'suspend', '--help'])).stdout).toMatch(/without swap, or on cgroup v1/i);
    const other = await json(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '--wait', 'susp16']);
    await ok(['server', 'suspend', other.id]);
    await waitFor(other.id, (x) => x.status === 'SUSPENDED');
    await ok(['server', 'delete', '--wait', other.id]);
    expect((await api('GET', `/compute/v2.1/servers/${other.id}`, t)).status).toBe(404);
  }, 180_000);

  it('5: createBackup keeps `rotation` backups per backup_type; rotation 0 deletes all; server backup create in both CLIs', async () => {
    const t = await adminToken();
    const backups = async (type?: string) =>
      (
        await api('GET', `/image/v2/images?instance_uuid=${webId}&image_type=backup${type ? `&backup_type=${type}` : ''}`, t)
      ).json.images.filter((i: { status: string }) => i.status === 'active');
    const backup = async (name: string, type: string, rotation: number) => {
      const r = await api('POST', `/compute/v2.1/servers/${webId}/action`, t, { createBackup: { name, backup_type: type, rotation } });
      expect(r.status).toBe(202);
      expect(Boolean(r.headers.get('location'))).toBe(rotation > 0);
      await waitFor(webId, (x) => x['OS-EXT-STS:task_state'] === null);
      return r.headers.get('location')?.split('/').pop();
    };
    const b1 = await backup('bk1', 'daily', 2);
    const img = (await api('GET', `/image/v2/images/${b1}`, t)).json;
    expect(img).toMatchObject({ status: 'active', image_type: 'backup', backup_type: 'daily', instance_uuid: webId });
    await backup('bk2', 'daily', 2);
    await backup('wk1', 'weekly', 2);
    await backup('bk3', 'daily', 2);
    expect((await backups('daily')).map((i: { name: string }) => i.name).sort()).toEqual(['bk2', 'bk3']);
    expect((await backups('weekly')).map((i: { name: string }) => i.name)).toEqual(['wk1']);
    const actions = (await api('GET', `/compute/v2.1/servers/${webId}/os-instance-actions`, t)).json.instanceActions;
    expect(actions[0].action).toBe('createBackup');
    // the openstack client and the novabox CLI; the same name may repeat
    await ok(['server', 'backup', 'create', '--name', 'bk-osc', '--type', 'weekly', '--rotate', '2', '--wait', webId]);
    expect((await backups('weekly')).map((i: { name: string }) => i.name).sort()).toEqual(['bk-osc', 'wk1']);
    const cli = await nb(['server', 'backup', 'create', '--name', 'bk-osc', '--type', 'weekly', '--rotate', '2', 'web16', '-f', 'json']);
    expect(cli.exitCode).toBe(0);
    expect(JSON.parse(cli.stdout).properties).toMatchObject({ image_type: 'backup', backup_type: 'weekly' });
    expect((await backups('weekly')).map((i: { name: string }) => i.name)).toEqual(['bk-osc', 'bk-osc']);
    expect((await nb(['server', 'backup', 'create', '--rotate', '-1', 'web16'])).exitCode).toBe(2);
    const bad = await api('POST', `/compute/v2.1/servers/${webId}/action`, t, {
      createBackup: { name: 'x', backup_type: 'daily', rotation: -1 },
    });
    expect(bad.status).toBe(400);
    // rotation 0: every backup of that type goes, the new one too
    await backup('gone', 'daily', 0);
    expect(await backups('daily')).toEqual([]);
    await backup('gone', 'weekly', 0);
    expect(await backups()).toEqual([]);
  }, 240_000);

  it('10: createImage is asynchronous: 202 at once, 409 for a second one or an action meanwhile, deleting the saving image leaves nothing', async () => {
    const t = await adminToken();
    // enough written data that packing takes a while
    expect((await nb(['server', 'exec', webId, '--', 'dd', 'if=/dev/urandom', 'of=/big', 'bs=1M', 'count=300'])).exitCode).toBe(0);
    const started = Date.now();
    const r = await api('POST', `/compute/v2.1/servers/${webId}/action`, t, { createImage: { name: 'async16' } });
    expect(r.status).toBe(202);
    const imageId = r.headers.get('location')!.split('/').pop()!;
    const [second, stop, shown, img] = await Promise.all([
      api('POST', `/compute/v2.1/servers/${webId}/action`, t, { createImage: { name: 'async16b' } }),
      api('POST', `/compute/v2.1/servers/${webId}/action`, t, { 'os-stop': null }),
      server(webId),
      api('GET', `/image/v2/images/${imageId}`, t),
    ]);
    expect(second.status).toBe(409);
    expect(stop.status).toBe(409);
    expect(shown['OS-EXT-STS:task_state']).toBe('image_snapshot');
    expect(['queued', 'saving']).toContain(img.json.status);
    expect(Date.now() - started).toBeLessThan(5_000);
    // delete it while it is saving: 204, and nothing of it stays
    expect((await api('DELETE', `/image/v2/images/${imageId}`, t)).status).toBe(204);
    await waitFor(webId, (x) => x['OS-EXT-STS:task_state'] === null);
    expect((await api('GET', `/image/v2/images/${imageId}`, t)).status).toBe(404);
    expect((await server(webId)).status).toBe('ACTIVE');
    const last = (await api('GET', `/compute/v2.1/servers/${webId}/os-instance-actions`, t)).json.instanceActions[0];
    expect(last.action).toBe('createImage');
    expect((await api('GET', '/image/v2/images', t)).json.images.map((i: { name: string }) => i.name)).toEqual(['busybox']);
    expect((await nb(['server', 'exec', webId, '--', 'rm', '/big'])).exitCode).toBe(0);
  }, 240_000);

  it('11: the advertised security group exists: one read-only "default" per project, as the bridge network behaves', async () => {
    const list = await json(['security', 'group', 'list']);
    expect(list).toEqual([expect.objectContaining({ Name: 'default' })]);
    const shown = await json(['security', 'group', 'show', 'default']);
    expect(shown).toMatchObject({ name: 'default', id: list[0].ID });
    const rules = await json(['security', 'group', 'rule', 'list', 'default']);
    expect(rules).toEqual([expect.objectContaining({ 'IP Range': '0.0.0.0/0' })]);
    await ok(['server', 'add', 'security', 'group', 'web16', 'default']);
    const other = await osc(['server', 'add', 'security', 'group', 'web16', 'web-only']);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/not found|none found/); // the client's own lookup (GET /os-security-groups/web-only: 404)
    const rm = await osc(['server', 'remove', 'security', 'group', 'web16', 'default']);
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toMatch(/stays in its project's "default" group .*\(HTTP 400\)/);
    const create = await osc(['security', 'group', 'create', 'web-only']);
    expect(create.code).not.toBe(0);
    expect(create.stderr).toMatch(/HTTP 403/);
    const t = await adminToken();
    expect(
      (await api('GET', `/compute/v2.1/servers/${webId}/os-security-groups`, t)).json.security_groups.map((g: { name: string }) => g.name),
    ).toEqual(['default']);
    expect(
      (
        await api('POST', '/compute/v2.1/os-security-group-rules', t, {
          security_group_rule: { parent_group_id: list[0].ID, ip_protocol: 'tcp', from_port: 22, to_port: 22, cidr: '0.0.0.0/0' },
        })
      ).status,
    ).toBe(403);
    // another project's default is its own
    expect((await api('GET', '/compute/v2.1/os-security-groups', userToken)).json.security_groups[0].id).not.toBe(list[0].ID);
    expect((await api('GET', `/compute/v2.1/os-security-groups/${list[0].ID}`, userToken)).status).toBe(404);
  }, 120_000);

  it('stops cleanly and leaves nothing behind', async () => {
    await ok(['server', 'delete', '--wait', 'web16']);
    expect(await serve.stop('SIGTERM')).toBe(0);
    const after = census(root);
    const strip = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')) });
    expect(strip(after)).toEqual(strip(before));
  }, 60_000);
});
