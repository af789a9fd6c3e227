import { describe, expect, it } from 'vitest';
import { useApi } from './app.js';

const api = useApi();

describe('os-server-diagnostics', () => {
  it('admin only; a stopped server is 409 naming its vm_state; an unknown one 404', async () => {
    const { req, token, store } = api();
    const admin = await token();
    const id = '33333333-3333-4333-8333-333333333333';
    store.servers.insert({
      id,
      name: 'd0',
      projectId: store.getSetting('local_project_id')!,
      userId: store.getSetting('local_user_id')!,
      vmState: 'stopped',
      powerState: 4,
      imageName: 'busybox',
      imageRef: 'busybox',
      flavorId: '1',
      host: 'h1',
    });
    const r = await req('GET', `/compute/v2.1/servers/${id}/diagnostics`, { token: admin });
    expect(r.status).toBe(409);
    expect(r.json.conflictingRequest.message).toBe(`Cannot 'get_diagnostics' instance ${id} while it is in vm_state stopped`);
    expect((await req('GET', '/compute/v2.1/servers/44444444-4444-4444-8444-444444444444/diagnostics', { token: admin })).status).toBe(404);
    const p2 = (await req('POST', '/identity/v3/projects', { token: admin, body: { project: { name: 'p2' } } })).json.project;
    const u2 = (await req('POST', '/identity/v3/users', { token: admin, body: { user: { name: 'u2', password: 'pw' } } })).json.user;
    const member = (await req('GET', '/identity/v3/roles?name=member', { token: admin })).json.roles[0];
    await req('PUT', `/identity/v3/projects/${p2.id}/users/${u2.id}/roles/${member.id}`, { token: admin });
    const t2 = await token('u2', 'pw', 'p2');
    expect((await req('GET', `/compute/v2.1/servers/${id}/diagnostics`, { token: t2 })).status).toBe(403);
  });
});
