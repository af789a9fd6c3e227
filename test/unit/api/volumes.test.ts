import { describe, expect, it } from 'vitest';
import { ComputeService } from '../../../src/compute/servers.js';
import { useApi } from './app.js';

const api = useApi();

describe('os-volume_attachments', () => {
  it('attaches a named volume to a stopped server at a path (device), lists, shows and detaches it; the server view names it', async () => {
    const { req, token, store } = api();
    const admin = await token();
    const id = '55555555-5555-4555-8555-555555555555';
    store.servers.insert({
      id,
      name: 'v0',
      projectId: store.getSetting('local_project_id')!,
      userId: store.getSetting('local_user_id')!,
      vmState: 'stopped',
      powerState: 4,
      imageName: 'busybox',
      imageRef: 'busybox',
      flavorId: '1',
      host: 'h1',
    });
    const vol = new ComputeService(store).volumes.create('data', { projectId: store.getSetting('local_project_id')! });
    const base = `/compute/v2.1/servers/${id}/os-volume_attachments`;
    expect((await req('GET', base, { token: admin })).json).toEqual({ volumeAttachments: [] });

    const bad = await req('POST', base, { token: admin, body: { volumeAttachment: { volumeId: vol.id } } });
    expect(bad.status).toBe(400);
    const missing = await req('POST', base, { token: admin, body: { volumeAttachment: { volumeId: 'nope', device: '/srv' } } });
    expect(missing.status).toBe(404);
    const relative = await req('POST', base, { token: admin, body: { volumeAttachment: { volumeId: vol.id, device: '/dev/../x' } } });
    expect(relative.status).toBe(400);

    const r = await req('POST', base, { token: admin, body: { volumeAttachment: { volumeId: vol.id, device: '/srv/data' } } });
    expect(r.status).toBe(200);
    const want = { id: vol.id, volumeId: vol.id, serverId: id, device: '/srv/data', tag: null, delete_on_termination: false };
    expect(r.json).toEqual({ volumeAttachment: want });
    expect((await req('GET', base, { token: admin })).json).toEqual({ volumeAttachments: [want] });
    expect((await req('GET', `${base}/${vol.id}`, { token: admin })).json).toEqual({ volumeAttachment: want });
    const detail = (await req('GET', `/compute/v2.1/servers/${id}`, { token: admin })).json.server;
    expect(detail['os-extended-volumes:volumes_attached']).toEqual([{ id: vol.id, delete_on_termination: false }]);
    // in use: a second attachment is a conflict
    const again = await req('POST', base, { token: admin, body: { volumeAttachment: { volumeId: 'data', device: '/other' } } });
    expect(again.status).toBe(409);

    expect((await req('DELETE', `${base}/${vol.id}`, { token: admin })).status).toBe(202);
    expect((await req('GET', base, { token: admin })).json).toEqual({ volumeAttachments: [] });
    expect((await req('GET', `${base}/${vol.id}`, { token: admin })).status).toBe(404);
  });

  it('block_device_mapping_v2 at create: what cannot be a novabox volume attachment is a 400 that says why, and nothing is made', async () => {
    const { req, token, store, imageId } = api();
    const admin = await token();
    const compute = new ComputeService(store);
    const vol = compute.volumes.create('bdm', { projectId: store.getSetting('local_project_id')! });
    const other = '66666666-6666-4666-8666-666666666666';
    const post = (bdm: unknown, extra: Record<string, unknown> = {}) =>
      req('POST', '/compute/v2.1/servers', {
        token: admin,
        body: { server: { name: 'b', imageRef: imageId, flavorRef: '1', block_device_mapping_v2: bdm, ...extra } },
      });
    const vv = { source_type: 'volume', destination_type: 'volume', uuid: vol.id, device_name: '/srv/data' };
    const cases: [unknown, RegExp, Record<string, unknown>?][] = [
      [{}, /expected a list/],
      [
        [{ source_type: 'image', destination_type: 'local', boot_index: 0, uuid: imageId }],
        /source_type "image" with destination_type "local" is not supported/,
      ],
      [
        [{ source_type: 'blank', destination_type: 'volume', volume_size: 1 }],
        /source_type "blank" with destination_type "volume" is not supported/,
      ],
      [[{ ...vv, boot_index: 0 }], /a volume cannot be the boot device \(boot_index 0\)/],
      [[{ ...vv, delete_on_termination: true }], /delete_on_termination true is not supported/],
      [[{ ...vv, device_name: '/dev/vdb' }], /device_name "\/dev\/vdb" must be the absolute path the volume is mounted at/],
      [[{ ...vv, device_name: 'vdb' }], /must be the absolute path/],
      [[{ ...vv, device_name: '/a/../b' }], /"\." or "\.\." in the path/],
      [[{ ...vv, uuid: 'bdm' }], /uuid\. Value: "bdm"\. It is not a 'uuid'/],
      [[{ ...vv, uuid: other }], new RegExp(`failed to get volume ${other}\\.`)],
      [[{ ...vv, colour: 'red' }], /'colour' was unexpected/],
      [[vv], /not with max_count > 1/, { max_count: 2 }],
    ];
    for (const [bdm, message, extra] of cases) {
      const r = await post(bdm, extra);
      expect(r.status, JSON.stringify(bdm)).toBe(400);
      expect(r.json.badRequest.message).toMatch(message);
    }
    // in use by another server: Nova's InvalidVolume (400)
    const id = '77777777-7777-4777-8777-777777777777';
    store.servers.insert({
      id,
      name: 'holder',
      projectId: store.getSetting('local_project_id')!,
      userId: store.getSetting('local_user_id')!,
      vmState: 'stopped',
      powerState: 4,
      imageName: 'busybox',
      imageRef: 'busybox',
      flavorId: '1',
      host: 'h1',
    });
    compute.volumes.attach(id, 'bdm', '/x', false);
    const used = await post([vv]);
    expect(used.status).toBe(400);
    expect(used.json.badRequest.message).toBe(
      `Invalid volume: volume ${vol.id} status must be available, but it is in-use (server "holder")`,
    );
    expect(store.servers.list().map((s) => s.name)).toEqual(['holder']);
    const v1 = await req('POST', '/compute/v2.1/servers', {
      token: admin,
      body: { server: { name: 'b', imageRef: imageId, flavorRef: '1', block_device_mapping: [{ volume_id: vol.id }] } },
    });
    expect(v1.status).toBe(400);
    expect(v1.json.badRequest.message).toMatch(/attach volumes with block_device_mapping_v2/);
  });
});
