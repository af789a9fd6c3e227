import { describe, expect, it } from 'vitest';
import { consoleTail, parseMicroversion } from '../../../src/api/compute/routes.js';
import { compactIPv6, int, bool, metadata, str } from '../../../src/api/validate.js';
import { faultBody, glanceWantsJson, statusOf } from '../../../src/api/faults.js';
import { Conflict, NotFound } from '../../../src/errors.js';
import { useApi } from './app.js';

/** Nova 2.1's server detail keys (tempest's schema, admin view). */
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
].sort();

describe('pure parts', () => {
  it('parses microversion headers as Nova (2.1 to 2.2)', () => {
    expect(parseMicroversion({})).toBe('2.1');
    expect(parseMicroversion({ 'x-openstack-nova-api-version': '2.1' })).toBe('2.1');
    expect(parseMicroversion({ 'x-openstack-nova-api-version': '2.2' })).toBe('2.2');
    expect(parseMicroversion({ 'openstack-api-version': 'compute 2.2', 'x-openstack-nova-api-version': '2.1' })).toBe('2.2');
    expect(parseMicroversion({ 'openstack-api-version': 'compute latest' })).toBe('2.2');
    expect(() => parseMicroversion({ 'openstack-api-version': 'compute 2.3' })).toThrow(/not supported.*maximum is 2\.2/);
    expect(() => parseMicroversion({ 'openstack-api-version': 'compute 2.79' })).toThrow(/not supported/);
    expect(() => parseMicroversion({ 'x-openstack-nova-api-version': 'abc' })).toThrow(/Invalid microversion/);
  });

  it.each([
    [-1, 'a\nb\nc\nd\n'],
    [0, ''],
    [3, 'c\nd\n'],
    [2, 'd\n'],
    [100, 'a\nb\nc\nd\n'],
  ])('console length %s (nova: "\\n".join(log.split("\\n")[-N:]))', (n, want) => {
    expect(consoleTail('a\nb\nc\nd\n', n)).toBe(want);
  });

  it('validates fields and names them', () => {
    expect(() => str({ name: 5 }, 'name')).toThrow(/field\/attribute name/);
    expect(() => str({}, 'name', { required: true })).toThrow(/'name' is a required property/);
    expect(int({ ram: '512' }, 'ram')).toBe(512);
    expect(() => int({ ram: '5x' }, 'ram')).toThrow(/ram/);
    expect(() => int({ ram: 0 }, 'ram', { min: 1 })).toThrow(/minimum of 1/);
    expect(bool({ p: 'True' }, 'p')).toBe(true);
    expect(bool({ p: 'false' }, 'p')).toBe(false);
    expect(() => bool({ p: 'maybe' }, 'p')).toThrow(/boolean/);
    expect(() => metadata({ metadata: { '': 'v' } }, 'metadata')).toThrow(/key/);
    expect(() => metadata({ metadata: { k: 1 } }, 'metadata')).toThrow(/not a string/);
    expect(compactIPv6('0000:0000:0000:0000:0000:babe:220.12.22.2')).toBe('::babe:dc0c:1602');
    expect(compactIPv6('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(compactIPv6('::1')).toBe('::1');
    expect(compactIPv6('1::2::3')).toBeUndefined();
    expect(compactIPv6('12345::')).toBeUndefined();
  });

  it('maps errors to statuses and per-service fault bodies', () => {
    expect(statusOf(new NotFound('x'))).toMatchObject({ status: 404, message: 'x' });
    expect(statusOf(new Conflict('y')).status).toBe(409);
    expect(statusOf(new Error('boom'))).toMatchObject({ status: 500, internal: true });
    expect(statusOf(new Error('boom')).message).not.toContain('boom');
    expect(faultBody('compute', 409, 'm')).toEqual({ conflictingRequest: { code: 409, message: 'm' } });
    expect(faultBody('compute', 404, 'm')).toEqual({ itemNotFound: { code: 404, message: 'm' } });
    expect(faultBody('compute', 401, 'm')).toEqual({ error: { code: 401, title: 'Unauthorized', message: 'm' } });
    expect(faultBody('identity', 403, 'm')).toEqual({ error: { code: 403, title: 'Forbidden', message: 'm' } });
    expect(faultBody('image', 404, 'm')).toEqual({ code: 404, title: 'Not Found', message: 'm' });
    // webob's negotiation between text/html (offered first) and application/json
    for (const a of ['application/json', 'application/json, */*;q=0.1', 'application/*', 'text/html;q=0.2, application/json'])
      expect(glanceWantsJson(a), a).toBe(true);
    for (const a of [undefined, '', '*/*', 'text/html', 'application/json, */*', 'application/json;q=0, */*', 'text/plain'])
      expect(glanceWantsJson(a), String(a)).toBe(false);
  });
});

describe('Nova 2.1 (in process)', () => {
  const api = useApi();

  it('serves the version documents as tempest and the SDK want them', async () => {
    const { req } = api();
    const root = await req('GET', '/compute/');
    expect(root.status).toBe(200);
    expect(root.json.versions.map((v: { id: string }) => v.id)).toEqual(['v2.0', 'v2.1']);
    expect(root.json.versions[1]).toMatchObject({ status: 'CURRENT', version: '2.2', min_version: '2.1' });
    for (const path of ['/compute/v2.1', '/compute/v2.1/', '/compute/v2/']) {
      const r = await req('GET', path);
      expect(r.status).toBe(200);
      expect(Object.keys(r.json.version).sort()).toEqual(['id', 'links', 'media-types', 'min_version', 'status', 'updated', 'version']);
    }
    const img = await req('GET', '/image');
    expect(img.status).toBe(300);
    expect(img.json.versions[0]).toMatchObject({ id: 'v2.16', status: 'CURRENT' });
  });

  it('answers microversions, request ids and 406 as Nova', async () => {
    const { req, token } = api();
    const t = await token();
    const ok = await req('GET', '/compute/v2.1/flavors', { token: t, headers: { 'openstack-api-version': 'compute 2.1' } });
    expect(ok.headers['openstack-api-version']).toBe('compute 2.1');
    expect(ok.headers['x-openstack-nova-api-version']).toBe('2.1');
    expect(ok.headers['x-compute-request-id']).toBe(ok.headers['x-openstack-request-id']);
    const no = await req('GET', '/compute/v2.1/flavors', { token: t, headers: { 'x-openstack-nova-api-version': '2.95' } });
    expect(no.status).toBe(406);
    expect(no.json.computeFault.code).toBe(406);
    const unknown = await req('GET', '/compute/v2.1/nothing-here', { token: t });
    expect(unknown.status).toBe(404);
    expect(unknown.json.itemNotFound).toBeDefined();
  });

  it('shows a server with exactly the 2.1 fields; other projects get 404; list is newest first', async () => {
    const { req, token, store } = api();
    const admin = await token();
    const pid = store.getSetting('local_project_id')!;
    const uid = store.getSetting('local_user_id')!;
    for (const [i, id] of ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'].entries()) {
      store.servers.insert({
        id,
        name: `s${i}`,
        projectId: pid,
        userId: uid,
        vmState: 'stopped',
        powerState: 4,
        imageName: 'busybox',
        imageRef: 'busybox',
        flavorId: '1',
        host: 'h1',
      });
    }
    const r = await req('GET', '/compute/v2.1/servers/11111111-1111-4111-8111-111111111111', { token: admin });
    expect(r.status).toBe(200);
    const s = r.json.server;
    expect(Object.keys(s).sort()).toEqual(DETAIL_KEYS);
    expect(s).toMatchObject({
      status: 'SHUTOFF',
      tenant_id: pid,
      user_id: uid,
      'OS-EXT-STS:power_state': 4,
      'OS-EXT-STS:vm_state': 'stopped',
      addresses: {},
      config_drive: '',
    });
    expect(s.image.id).toBe(api().imageId);
    expect(s.flavor).toEqual({ id: '1', links: [{ rel: 'bookmark', href: 'http://localhost:80/compute/flavors/1' }] });
    expect(s.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    for (const l of s.links) expect(l.href).toMatch(/^http:\/\/localhost:80\/compute\//);
    const list = await req('GET', '/compute/v2.1/servers', { token: admin });
    expect(list.json.servers.map((x: { name: string }) => x.name)).toEqual(['s1', 's0']);
    expect(Object.keys(list.json.servers[0]).sort()).toEqual(['id', 'links', 'name']);
    const page = await req('GET', '/compute/v2.1/servers/detail?limit=1', { token: admin });
    expect(page.json.servers).toHaveLength(1);
    expect(page.json.servers_links[0].href).toContain('marker=22222222-2222-4222-8222-222222222222');
    expect((await req('GET', '/compute/v2.1/servers?marker=nope', { token: admin })).status).toBe(400);
    expect((await req('GET', '/compute/v2.1/servers?limit=-1', { token: admin })).status).toBe(400);
    expect((await req('GET', '/compute/v2.1/servers/s0', { token: admin })).status).toBe(404); // names are not ids
    // another project's user: 404 on show and action, empty list, 403 on --all-projects
    const p2 = (await req('POST', '/identity/v3/projects', { token: admin, body: { project: { name: 'p2' } } })).json.project;
    const u2 = (await req('POST', '/identity/v3/users', { token: admin, body: { user: { name: 'u2', password: 'pw' } } })).json.user;
    const member = (await req('GET', '/identity/v3/roles?name=member', { token: admin })).json.roles[0];
    await req('PUT', `/identity/v3/projects/${p2.id}/users/${u2.id}/roles/${member.id}`, { token: admin });
    const t2 = await token('u2', 'pw', 'p2');
    expect((await req('GET', '/compute/v2.1/servers/11111111-1111-4111-8111-111111111111', { token: t2 })).status).toBe(404);
    const act = await req('POST', '/compute/v2.1/servers/11111111-1111-4111-8111-111111111111/action', {
      token: t2,
      body: { 'os-start': null },
    });
    expect(act.status).toBe(404);
    expect((await req('DELETE', '/compute/v2.1/servers/11111111-1111-4111-8111-111111111111', { token: t2 })).status).toBe(404);
    expect((await req('GET', '/compute/v2.1/servers/detail', { token: t2 })).json.servers).toEqual([]);
    expect((await req('GET', '/compute/v2.1/servers/detail?all_tenants=True', { token: t2 })).status).toBe(403);
    const all = await req('GET', '/compute/v2.1/servers/detail?all_tenants=1', { token: admin });
    expect(all.json.servers).toHaveLength(2);
    // non-admins never see OS-EXT-SRV-ATTR
    expect((await req('GET', '/compute/v2.1/os-hypervisors', { token: t2 })).status).toBe(403);
  });

  it('keeps state rules: a stopped server cannot be stopped (409), a locked one cannot be changed by others', async () => {
    const { req, token, store } = api();
    const admin = await token();
    const pid = store.getSetting('local_project_id')!;
    store.servers.insert({
      id: '33333333-3333-4333-8333-333333333333',
      name: 'x',
      projectId: pid,
      userId: 'someone',
      vmState: 'stopped',
      powerState: 4,
      imageName: 'busybox',
      flavorId: '1',
    });
    const r = await req('POST', '/compute/v2.1/servers/33333333-3333-4333-8333-333333333333/action', {
      token: admin,
      body: { 'os-stop': null },
    });
    expect(r.status).toBe(409);
    expect(r.json.conflictingRequest.message).toMatch(/Cannot 'stop' instance .* while it is in vm_state stopped/);
    expect(
      (await req('POST', '/compute/v2.1/servers/33333333-3333-4333-8333-333333333333/action', { token: admin, body: { suspend: null } }))
        .status,
    ).toBe(409); // suspend needs ACTIVE
    expect(
      (await req('POST', '/compute/v2.1/servers/33333333-3333-4333-8333-333333333333/action', { token: admin, body: { lock: null } }))
        .status,
    ).toBe(202);
    const console = await req('POST', '/compute/v2.1/servers/33333333-3333-4333-8333-333333333333/action', {
      token: admin,
      body: { 'os-getConsoleOutput': { length: 2 } },
    });
    expect(console.status).toBe(200);
    expect(typeof console.json.output).toBe('string');
    const ev = await req('GET', '/compute/v2.1/servers/33333333-3333-4333-8333-333333333333/os-instance-actions', { token: admin });
    expect(ev.json.instanceActions.map((a: { action: string }) => a.action)).toEqual(['lock']);
    expect(Object.keys(ev.json.instanceActions[0]).sort()).toEqual([
      'action',
      'instance_uuid',
      'message',
      'project_id',
      'request_id',
      'start_time',
      'user_id',
    ]);
    const one = await req(
      'GET',
      `/compute/v2.1/servers/33333333-3333-4333-8333-333333333333/os-instance-actions/${ev.json.instanceActions[0].request_id}`,
      { token: admin },
    );
    expect(one.json.instanceAction.events).toEqual([]);
    // metadata round trip
    const m = await req('POST', '/compute/v2.1/servers/33333333-3333-4333-8333-333333333333/metadata', {
      token: admin,
      body: { metadata: { a: '1' } },
    });
    expect(m.json.metadata).toEqual({ a: '1' });
    expect((await req('GET', '/compute/v2.1/servers/33333333-3333-4333-8333-333333333333/metadata/a', { token: admin })).json).toEqual({
      meta: { a: '1' },
    });
    expect((await req('DELETE', '/compute/v2.1/servers/33333333-3333-4333-8333-333333333333/metadata/a', { token: admin })).status).toBe(
      204,
    );
    expect((await req('DELETE', '/compute/v2.1/servers/33333333-3333-4333-8333-333333333333/metadata/a', { token: admin })).status).toBe(
      404,
    );
  });

  it('resizes a stopped server: VERIFY_RESIZE, then revert or confirm; os-migrations records it', async () => {
    const { req, token, store } = api();
    const t = await token();
    const id = '55555555-5555-4555-8555-555555555555';
    store.servers.insert({
      id,
      name: 'rs',
      projectId: store.getSetting('local_project_id')!,
      userId: 'u',
      vmState: 'stopped',
      powerState: 4,
      imageName: 'busybox',
      flavorId: '1',
    });
    const act = (body: unknown) => req('POST', `/compute/v2.1/servers/${id}/action`, { token: t, body });
    const show = async () => (await req('GET', `/compute/v2.1/servers/${id}`, { token: t })).json.server;
    expect((await act({ resize: { flavorRef: '1' } })).status).toBe(400); // same flavor
    expect((await act({ resize: { flavorRef: '404' } })).status).toBe(400);
    expect((await act({ confirmResize: null })).status).toBe(409);
    expect((await act({ resize: { flavorRef: '6' } })).status).toBe(202);
    expect(await show()).toMatchObject({ status: 'VERIFY_RESIZE', flavor: { id: '6' }, 'OS-EXT-STS:task_state': null });
    expect((await act({ revertResize: null })).status).toBe(202);
    expect(await show()).toMatchObject({ status: 'SHUTOFF', flavor: { id: '1' } });
    expect((await act({ resize: { flavorRef: 'http://x/compute/flavors/6' } })).status).toBe(202);
    const confirm = await act({ confirmResize: null });
    expect(confirm.status).toBe(204);
    expect(confirm.text).toBe('');
    expect(await show()).toMatchObject({ status: 'SHUTOFF', flavor: { id: '6' } });
    const m = (await req('GET', '/compute/v2.1/os-migrations', { token: t })).json.migrations;
    expect(m.map((x: { status: string }) => x.status)).toEqual(['confirmed', 'reverted']);
    expect(m[0]).toMatchObject({ instance_uuid: id, old_instance_type_id: 1, new_instance_type_id: 6 });
    const ev = (await req('GET', `/compute/v2.1/servers/${id}/os-instance-actions`, { token: t })).json.instanceActions.map(
      (a: { action: string }) => a.action,
    );
    expect(ev).toEqual(['confirmResize', 'resize', 'revertResize', 'resize']);
  });

  it("os-migrations lists the CLI's migrations to other hosts beside resizes; migrate answers Nova's No valid host, os-migrateLive of a SHUTOFF server its state conflict", async () => {
    const { req, token, store } = api();
    const t = await token();
    const id = '66666666-6666-4666-8666-666666666666';
    const projectId = store.getSetting('local_project_id')!;
    store.servers.insert({ id, name: 'mv', projectId, userId: 'u', vmState: 'active', powerState: 1, imageName: 'busybox', flavorId: '1' });
    // (no container runs: the record is SHUTOFF, which migrate accepts and os-migrateLive refuses in Nova's words)
    const mig = await req('POST', `/compute/v2.1/servers/${id}/action`, { token: t, body: { migrate: null } });
    expect(mig.status).toBe(400);
    expect(mig.json.badRequest.message).toBe(
      'No valid host was found. This novabox serve knows no other host to migrate to: on this host, run "novabox server migrate mv --to ssh://HOST".',
    );
    const live = await req('POST', `/compute/v2.1/servers/${id}/action`, {
      token: t,
      body: { 'os-migrateLive': { host: null, block_migration: 'auto' } },
    });
    expect(live.status).toBe(409);
    expect(live.json.conflictingRequest.message).toBe(`Cannot 'os-migrateLive' instance ${id} while it is in vm_state stopped`);
    // what `server migrate` records on the source: migrating, then confirmed (or error) with the target's name
    const ok = store.resizes.insertMigration({
      serverId: id,
      projectId,
      flavorId: '1',
      preVmState: 'active',
      host: 'hosta',
      destHost: 'hostb.example',
    });
    expect(ok).toMatchObject({ kind: 'migration', status: 'migrating', destCompute: null, destHost: 'hostb.example' });
    store.resizes.setStatus(ok.id, 'confirmed', { compute: 'hostb', host: null });
    const bad = store.resizes.insertMigration({
      serverId: id,
      projectId,
      flavorId: '1',
      preVmState: 'stopped',
      host: 'hosta',
      destHost: null,
    });
    store.resizes.setStatus(bad.id, 'error', { compute: null, host: null });
    const m = (await req('GET', '/compute/v2.1/os-migrations', { token: t })).json.migrations;
    expect(m).toHaveLength(2);
    for (const row of m) {
      // Nova 2.1's keys exactly (migration_type only from 2.23)
      expect(Object.keys(row).sort()).toEqual(
        [
          'id',
          'status',
          'instance_uuid',
          'source_node',
          'source_compute',
          'dest_node',
          'dest_compute',
          'dest_host',
          'old_instance_type_id',
          'new_instance_type_id',
          'created_at',
          'updated_at',
        ].sort(),
      );
    }
    expect(m[0]).toMatchObject({ id: bad.id, status: 'error', source_compute: 'hosta', dest_compute: null, dest_host: null });
    expect(m[1]).toMatchObject({
      id: ok.id,
      status: 'confirmed',
      instance_uuid: id,
      source_node: 'hosta',
      source_compute: 'hosta',
      dest_node: 'hostb',
      dest_compute: 'hostb',
      dest_host: 'hostb.example',
      old_instance_type_id: 1,
      new_instance_type_id: 1,
    });
    expect(m[1].created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/);
    expect(Date.parse(m[1].updated_at)).toBeGreaterThanOrEqual(Date.parse(m[1].created_at));
    const q = async (query: string) =>
      (await req('GET', `/compute/v2.1/os-migrations?${query}`, { token: t })).json.migrations.map((x: { id: number }) => x.id);
    expect(await q('status=confirmed')).toEqual([ok.id]);
    expect(await q('migration_type=migration')).toEqual([bad.id, ok.id]);
    expect(await q('migration_type=resize')).toEqual([]);
    expect(await q(`instance_uuid=${id}`)).toEqual([bad.id, ok.id]);
    // a resize's confirm never takes a migration's record for its own
    expect((await req('POST', `/compute/v2.1/servers/${id}/action`, { token: t, body: { confirmResize: null } })).status).toBe(409);
  });

  it('manages flavors (numbers from strings; admin only), extra specs and access', async () => {
    const { req, token } = api();
    const admin = await token();
    const f = await req('POST', '/compute/v2.1/flavors', {
      token: admin,
      body: {
        flavor: {
          name: 'small',
          ram: '128',
          vcpus: '1',
          disk: 1,
          id: '42',
          'os-flavor-access:is_public': 'false',
          swap: 0,
          rxtx_factor: 1.0,
        },
      },
    });
    expect(f.status).toBe(200);
    expect(f.json.flavor).toMatchObject({
      id: '42',
      name: 'small',
      ram: 128,
      vcpus: 1,
      disk: 1,
      swap: '',
      'os-flavor-access:is_public': false,
      'OS-FLV-EXT-DATA:ephemeral': 0,
    });
    expect(Object.keys(f.json.flavor).sort()).toEqual([
      'OS-FLV-DISABLED:disabled',
      'OS-FLV-EXT-DATA:ephemeral',
      'disk',
      'id',
      'links',
      'name',
      'os-flavor-access:is_public',
      'ram',
      'rxtx_factor',
      'swap',
      'vcpus',
    ]);
    expect(
      (await req('POST', '/compute/v2.1/flavors', { token: admin, body: { flavor: { name: 'small', ram: 1, vcpus: 1, disk: 1 } } })).status,
    ).toBe(409);
    expect(
      (await req('POST', '/compute/v2.1/flavors/42/os-extra_specs', { token: admin, body: { extra_specs: { 'quota:cpu_shares': '512' } } }))
        .json,
    ).toEqual({ extra_specs: { 'quota:cpu_shares': '512' } });
    expect((await req('PUT', '/compute/v2.1/flavors/42/os-extra_specs/k', { token: admin, body: { other: 'v' } })).status).toBe(400);
    expect(
      (await req('POST', '/compute/v2.1/flavors/42/action', { token: admin, body: { addTenantAccess: { tenant: 'p9' } } })).json
        .flavor_access,
    ).toEqual([{ flavor_id: '42', tenant_id: 'p9' }]);
    expect(
      (await req('GET', '/compute/v2.1/flavors/detail?is_public=None', { token: admin })).json.flavors.map((x: { id: string }) => x.id),
    ).toContain('42');
    expect(
      (await req('GET', '/compute/v2.1/flavors/detail', { token: admin })).json.flavors.map((x: { id: string }) => x.id),
    ).not.toContain('42');
    expect((await req('DELETE', '/compute/v2.1/flavors/42', { token: admin })).status).toBe(202);
    expect((await req('GET', '/compute/v2.1/flavors/42', { token: admin })).status).toBe(404);
  });

  it('generates keypairs (RSA, OpenSSH public key, PEM private key once) and imports ed25519', async () => {
    const { req, token } = api();
    const t = await token();
    const k = await req('POST', '/compute/v2.1/os-keypairs', { token: t, body: { keypair: { name: 'k1' } } });
    expect(k.status).toBe(200);
    expect(k.json.keypair.private_key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(k.json.keypair.public_key).toMatch(/^ssh-rsa AAAAB3NzaC1yc2E/);
    expect(k.json.keypair.fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    const show = await req('GET', '/compute/v2.1/os-keypairs/k1', { token: t });
    expect(Object.keys(show.json.keypair).sort()).toEqual([
      'created_at',
      'deleted',
      'deleted_at',
      'fingerprint',
      'id',
      'name',
      'public_key',
      'updated_at',
      'user_id',
    ]);
    expect(JSON.stringify(show.json)).not.toContain('PRIVATE');
    const ed = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEgkrtyGYPjRvLpaIxlKvZ1eYQ1nP7vLSA2xp9tk8b2m me@host';
    const imp = await req('POST', '/compute/v2.1/os-keypairs', { token: t, body: { keypair: { name: 'k2', public_key: ed } } });
    expect(imp.status).toBe(200);
    expect(imp.json.keypair.private_key).toBeUndefined();
    expect(
      (await req('GET', '/compute/v2.1/os-keypairs', { token: t })).json.keypairs.map((x: { keypair: { name: string } }) => x.keypair.name),
    ).toEqual(['k1', 'k2']);
    expect((await req('POST', '/compute/v2.1/os-keypairs', { token: t, body: { keypair: { name: 'k2', public_key: ed } } })).status).toBe(
      409,
    );
    expect((await req('DELETE', '/compute/v2.1/os-keypairs/k2', { token: t })).status).toBe(202);
    expect((await req('DELETE', '/compute/v2.1/os-keypairs/k2', { token: t })).status).toBe(404);
  });

  it('reports limits with exactly the required keys', async () => {
    const { req, token } = api();
    const r = await req('GET', '/compute/v2.1/limits', { token: await token() });
    expect(r.json.limits.rate).toEqual([]);
    expect(Object.keys(r.json.limits.absolute).sort()).toEqual([
      'maxImageMeta',
      'maxPersonality',
      'maxPersonalitySize',
      'maxSecurityGroupRules',
      'maxSecurityGroups',
      'maxServerGroupMembers',
      'maxServerGroups',
      'maxServerMeta',
      'maxTotalCores',
      'maxTotalFloatingIps',
      'maxTotalInstances',
      'maxTotalKeypairs',
      'maxTotalRAMSize',
      'totalCoresUsed',
      'totalFloatingIpsUsed',
      'totalInstancesUsed',
      'totalRAMUsed',
      'totalSecurityGroupsUsed',
      'totalServerGroupsUsed',
    ]);
  });

  const IMG = 'IMGID';
  const SID = '44444444-4444-4444-8444-444444444444';
  it.each([
    ['POST', '/compute/v2.1/servers', '{"server": ', /Malformed/],
    ['POST', '/compute/v2.1/servers', '[]', /server/],
    ['POST', '/compute/v2.1/servers', `{"server": {"imageRef": "${IMG}", "flavorRef": "1"}}`, /name/],
    ['POST', '/compute/v2.1/servers', `{"server": {"name": "  ", "imageRef": "${IMG}", "flavorRef": "1"}}`, /name/],
    ['POST', '/compute/v2.1/servers', `{"server": {"name": "${'x'.repeat(256)}", "imageRef": "${IMG}", "flavorRef": "1"}}`, /name/],
    ['POST', '/compute/v2.1/servers', '{"server": {"name": "a", "imageRef": "busybox", "flavorRef": "1"}}', /imageRef/],
    [
      'POST',
      '/compute/v2.1/servers',
      '{"server": {"name": "a", "imageRef": "99999999-9999-4999-8999-999999999999", "flavorRef": "1"}}',
      /Image .* could not be found/,
    ],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "nope"}}`,
      /Flavor nope could not be found/,
    ],
    ['POST', '/compute/v2.1/servers', `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "key_name": "nokey"}}`, /key_name/],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "metadata": {"": "v"}}}`,
      /metadata/,
    ],
    ['POST', '/compute/v2.1/servers', `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "min_count": 0}}`, /min_count/],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "min_count": 3, "max_count": 2}}`,
      /max_count/,
    ],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "accessIPv4": "1.2.3"}}`,
      /accessIPv4/,
    ],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "user_data": "not base64!"}}`,
      /user_data/,
    ],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "user_data": "${'A'.repeat(65536)}"}}`,
      /user_data.*is too long/,
    ],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "personality": [{"path": "/x", "contents": "eA=="}]}}`,
      /personality/,
    ],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "block_device_mapping_v2": [{"boot_index": 0}]}}`,
      /source_type null with destination_type null is not supported/,
    ],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "description": "d"}}`,
      /'description' was unexpected/,
    ],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "config_drive": "maybe"}}`,
      /config_drive/,
    ],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1"}, "os:scheduler_hints": {"different_host": ["${SID}"]}}`,
      /cannot honour the hint "different_host"/,
    ],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "security_groups": [{"name": "web"}]}}`,
      /Security group/,
    ],
    [
      'POST',
      '/compute/v2.1/servers',
      `{"server": {"name": "a", "imageRef": "${IMG}", "flavorRef": "1", "networks": [{"uuid": "x"}]}}`,
      /network/,
    ],
    ['PUT', `/compute/v2.1/servers/${SID}`, '{"server": {"name": ""}}', /name/],
    ['PUT', `/compute/v2.1/servers/${SID}`, '{"server": {"color": "red"}}', /color/],
    ['POST', `/compute/v2.1/servers/${SID}/action`, '{"explode": null}', /no such action/],
    ['POST', `/compute/v2.1/servers/${SID}/action`, '{"os-stop": null, "os-start": null}', /exactly one action/],
    ['POST', `/compute/v2.1/servers/${SID}/action`, '{"reboot": {"type": "GENTLE"}}', /type/],
    ['POST', `/compute/v2.1/servers/${SID}/action`, '{"os-getConsoleOutput": {"length": "x"}}', /length/],
    ['POST', `/compute/v2.1/servers/${SID}/action`, '{"os-getConsoleOutput": {"length": -2}}', /length/],
    ['POST', `/compute/v2.1/servers/${SID}/metadata`, '{"metadata": {"k": 5}}', /metadata/],
    ['PUT', `/compute/v2.1/servers/${SID}/metadata/k`, '{"meta": {"j": "v"}}', /mismatch/],
    ['POST', '/compute/v2.1/flavors', '{"flavor": {"name": "f", "ram": "lots", "vcpus": 1, "disk": 1}}', /ram/],
    ['POST', '/compute/v2.1/flavors', '{"flavor": {"name": "f", "ram": 1, "vcpus": 0, "disk": 1}}', /vcpus/],
    ['POST', '/compute/v2.1/flavors', '{"flavor": {"ram": 1, "vcpus": 1, "disk": 1}}', /name/],
    ['POST', '/compute/v2.1/os-keypairs', '{"keypair": {"name": "bad/name"}}', /name/],
    ['POST', '/compute/v2.1/os-keypairs', '{"keypair": {"name": "k", "public_key": ""}}', /public key/],
    ['POST', '/compute/v2.1/os-keypairs', '{"keypair": {"name": "k", "public_key": "ssh-rsa JUNK"}}', /fingerprint/],
    ['POST', '/compute/v2.1/os-keypairs', '{"keypair": {"name": "k", "colour": "x"}}', /colour/],
  ])('%s %s %s → 400', async (method, url, raw, why) => {
    const { req, token, store } = api();
    const t = await token();
    store.servers.insert({
      id: SID,
      name: 'fixture',
      projectId: store.getSetting('local_project_id')!,
      userId: 'u',
      vmState: 'stopped',
      imageName: 'busybox',
      flavorId: '1',
    });
    const before = JSON.stringify([
      store.servers.list({}),
      store.flavors.list({ includePrivate: true }),
      store.keypairs.list(store.getSetting('local_user_id')!),
    ]);
    const r = await req(method, url, { token: t, raw: raw.replaceAll('IMGID', api().imageId) });
    expect(r.status).toBe(400);
    expect(r.json.badRequest.code).toBe(400);
    expect(r.json.badRequest.message).toMatch(why);
    expect(
      JSON.stringify([
        store.servers.list({}),
        store.flavors.list({ includePrivate: true }),
        store.keypairs.list(store.getSetting('local_user_id')!),
      ]),
    ).toBe(before);
  });

  it('limits body sizes (413) and refuses bodies that are not JSON (415)', async () => {
    const { req, token } = api();
    const t = await token();
    const big = await req('POST', '/compute/v2.1/os-keypairs', {
      token: t,
      raw: JSON.stringify({ keypair: { name: 'k', public_key: 'x'.repeat(2 << 20) } }),
    });
    expect(big.status).toBe(413);
    expect(big.json.overLimit.code).toBe(413);
    const xml = await req('POST', '/compute/v2.1/os-keypairs', {
      token: t,
      raw: '<keypair/>',
      headers: { 'content-type': 'application/xml' },
    });
    expect(xml.status).toBe(415);
  });

  it('quotes at most a bounded part of a bad value in its fault', async () => {
    const { req, token } = api();
    const t = await token();
    const big = 'z'.repeat(500_000);
    for (const body of [
      { server: { name: 'x', imageRef: big, flavorRef: '1' } },
      { server: { name: 'x', imageRef: api().imageId, flavorRef: '1', metadata: { [big]: 'v' } } },
      { server: { name: 'x', imageRef: api().imageId, flavorRef: '1', [big]: 1 } },
      { server: { name: ` ${big}`, imageRef: api().imageId, flavorRef: '1' } },
    ]) {
      const r = await req('POST', '/compute/v2.1/servers', { token: t, body });
      expect([400, 404]).toContain(r.status);
      const fault = Object.values(r.json as Record<string, { message: string }>)[0]!;
      expect(fault.message.length).toBeLessThan(1100);
    }
  });

  it('readers change nothing; non-admins cannot manage flavors or read hypervisors', async () => {
    const { req, token } = api();
    const admin = await token();
    const p2 = (await req('POST', '/identity/v3/projects', { token: admin, body: { project: { name: 'p2' } } })).json.project;
    const u2 = (await req('POST', '/identity/v3/users', { token: admin, body: { user: { name: 'u2', password: 'pw' } } })).json.user;
    const reader = (await req('GET', '/identity/v3/roles?name=reader', { token: admin })).json.roles[0];
    await req('PUT', `/identity/v3/projects/${p2.id}/users/${u2.id}/roles/${reader.id}`, { token: admin });
    const t2 = await token('u2', 'pw', 'p2');
    // a reader reads, and changes nothing
    expect((await req('GET', '/compute/v2.1/servers/detail', { token: t2 })).status).toBe(200);
    const kp = await req('POST', '/compute/v2.1/os-keypairs', { token: t2, body: { keypair: { name: 'k' } } });
    expect(kp.status).toBe(403);
    expect(kp.json.forbidden.message).toMatch(/reader/);
    expect((await req('POST', '/image/v2/images', { token: t2, body: { name: 'x' } })).status).toBe(403);
    const f = await req('POST', '/compute/v2.1/flavors', { token: t2, body: { flavor: { name: 'f', ram: 1, vcpus: 1, disk: 1 } } });
    expect(f.status).toBe(403);
    expect(f.json.forbidden.message).toMatch(/Policy/);
    expect((await req('DELETE', '/compute/v2.1/flavors/1', { token: t2 })).status).toBe(403);
    expect((await req('GET', '/compute/v2.1/os-hypervisors/detail', { token: t2 })).status).toBe(403);
    expect((await req('GET', '/compute/v2.1/os-migrations', { token: t2 })).status).toBe(403);
  });
});
