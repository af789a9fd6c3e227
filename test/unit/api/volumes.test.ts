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
});
