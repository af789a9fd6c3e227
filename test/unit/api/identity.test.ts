import { describe, expect, it } from 'vitest';
import { tokenHash, hashPassword, verifyPassword, newToken } from '../../../src/identity/passwords.js';
import { ADMIN_PASSWORD, useApi } from './app.js';

describe('passwords and tokens', () => {
  it('hashes with scrypt and a random salt; verifies only the right password', async () => {
    const a = await hashPassword('s3cret');
    const b = await hashPassword('s3cret');
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain('s3cret');
    expect(await verifyPassword('s3cret', a)).toBe(true);
    expect(await verifyPassword('s3cret ', a)).toBe(false);
    expect(await verifyPassword('s3cret', null)).toBe(false);
    expect(await verifyPassword('s3cret', 'scrypt$99999999999$8$1$x$y')).toBe(false);
    expect(await verifyPassword('s3cret', 'plain')).toBe(false);
  });

  it('makes 256-bit url-safe tokens and stores only their SHA-256', () => {
    const t = newToken();
    expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newToken()).not.toBe(t);
    expect(tokenHash(t)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('Keystone v3 (in process)', () => {
  const api = useApi();

  it('answers the version documents without a token', async () => {
    const { req } = api();
    const list = await req('GET', '/identity');
    expect(list.status).toBe(300);
    expect(list.json.versions.values[0]).toMatchObject({ id: 'v3.14', status: 'stable' });
    const one = await req('GET', '/identity/v3');
    expect(one.status).toBe(200);
    expect(one.json.version.links[0].href).toBe('http://localhost:80/identity/v3/');
    expect(one.headers['x-openstack-request-id']).toMatch(/^req-[0-9a-f-]{36}$/);
    expect(one.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('issues a project-scoped token with roles and a compute/image/identity catalog, none for network', async () => {
    const { req } = api();
    const r = await req('POST', '/identity/v3/auth/tokens', {
      body: {
        auth: {
          identity: { methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password: ADMIN_PASSWORD } } },
          scope: { project: { name: 'admin', domain: { name: 'Default' } } },
        },
      },
    });
    expect(r.status).toBe(201);
    const id = r.headers['x-subject-token'] as string;
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(r.text).not.toContain(id);
    const t = r.json.token;
    expect(t.methods).toEqual(['password']);
    expect(t.user).toMatchObject({ name: 'admin', domain: { id: 'default', name: 'Default' }, password_expires_at: null });
    expect(t.project).toMatchObject({ name: 'admin', domain: { id: 'default' } });
    expect(t.roles.map((x: { name: string }) => x.name)).toEqual(['admin']);
    expect(t.is_domain).toBe(false);
    expect(t.expires_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(Date.parse(t.expires_at) - Date.now()).toBeGreaterThan(3500_000);
    expect(t.catalog.map((s: { type: string }) => s.type).sort()).toEqual(['compute', 'identity', 'image']);
    for (const s of t.catalog) {
      expect(s.endpoints.map((e: { interface: string }) => e.interface).sort()).toEqual(['admin', 'internal', 'public']);
      for (const e of s.endpoints) expect(e).toMatchObject({ region: 'RegionOne', region_id: 'RegionOne' });
    }
  });

  it('issues unscoped tokens without catalog or roles; they list projects but cannot call compute', async () => {
    const { req, token } = api();
    const t = await token('admin', ADMIN_PASSWORD, null);
    const v = await req('GET', '/identity/v3/auth/tokens', { token: t, headers: { 'x-subject-token': t } });
    expect(v.status).toBe(200);
    expect(v.json.token.catalog).toBeUndefined();
    expect(v.json.token.roles).toBeUndefined();
    expect(v.json.token.project).toBeUndefined();
    const p = await req('GET', '/identity/v3/auth/projects', { token: t });
    expect(p.json.projects.map((x: { name: string }) => x.name)).toEqual(['admin']);
    const s = await req('GET', '/compute/v2.1/servers', { token: t });
    expect(s.status).toBe(403);
    expect(s.json.forbidden.message).toMatch(/not scoped/);
    // re-scoping the unscoped token with the token method
    const r = await req('POST', '/identity/v3/auth/tokens', {
      body: {
        auth: { identity: { methods: ['token'], token: { id: t } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } },
      },
    });
    expect(r.status).toBe(201);
    expect(r.json.token.catalog).toHaveLength(3);
    expect((await req('GET', '/compute/v2.1/servers', { token: r.headers['x-subject-token'] as string })).status).toBe(200);
  });

  it('refuses wrong passwords, unknown users and projects without a role with the same 401', async () => {
    const { req, token } = api();
    const bad = async (user: string, password: string, project = 'admin') =>
      req('POST', '/identity/v3/auth/tokens', {
        body: {
          auth: {
            identity: { methods: ['password'], password: { user: { name: user, domain: { id: 'default' }, password } } },
            scope: { project: { name: project, domain: { id: 'default' } } },
          },
        },
      });
    for (const r of [await bad('admin', 'nope'), await bad('ghost', ADMIN_PASSWORD), await bad('admin', ADMIN_PASSWORD, 'nothere')]) {
      expect(r.status).toBe(401);
      expect(r.json.error).toMatchObject({ code: 401, title: 'Unauthorized' });
    }
    const admin = await token();
    await req('POST', '/identity/v3/projects', { token: admin, body: { project: { name: 'p9' } } });
    expect((await bad('admin', ADMIN_PASSWORD, 'p9')).status).toBe(401);
  });

  it('validates, checks and revokes tokens; a revoked or expired token is 401 everywhere', async () => {
    const { req, token, store } = api();
    const a = await token();
    const b = await token();
    expect((await req('HEAD', '/identity/v3/auth/tokens', { token: a, headers: { 'x-subject-token': b } })).status).toBe(200);
    expect((await req('DELETE', '/identity/v3/auth/tokens', { token: a, headers: { 'x-subject-token': b } })).status).toBe(204);
    expect((await req('HEAD', '/identity/v3/auth/tokens', { token: a, headers: { 'x-subject-token': b } })).status).toBe(404);
    const r = await req('GET', '/compute/v2.1/servers', { token: b });
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe(401);
    expect(r.headers['www-authenticate']).toMatch(/^Keystone uri=/);
    // expiry: move a's expiry into the past
    store.db.prepare("UPDATE tokens SET expires_at = '2000-01-01T00:00:00.000000' WHERE hash = ?").run(tokenHash(a));
    expect((await req('GET', '/compute/v2.1/flavors', { token: a })).status).toBe(401);
    expect((await req('GET', '/compute/v2.1/flavors')).status).toBe(401);
    expect((await req('GET', '/compute/v2.1/flavors', { token: 'x'.repeat(600) })).status).toBe(401);
  });

  it('stores no token and no password in the clear, and logs neither', async () => {
    const { req, token, store, logLines } = api();
    const t = await token();
    await req('GET', '/compute/v2.1/servers', { token: t });
    const dump =
      JSON.stringify(store.db.prepare('SELECT * FROM tokens').all()) + JSON.stringify(store.db.prepare('SELECT * FROM users').all());
    expect(dump).not.toContain(t);
    expect(dump).not.toContain(ADMIN_PASSWORD);
    const log = logLines.join('\n');
    expect(log).toContain('"GET /compute/v2.1/servers" 200');
    expect(log).not.toContain(t);
    expect(log).not.toContain(ADMIN_PASSWORD);
  });

  it('creates projects, users and role assignments (admin only); the new user gets a scoped token', async () => {
    const { req, token } = api();
    const admin = await token();
    const p = await req('POST', '/identity/v3/projects', {
      token: admin,
      body: { project: { name: 'p2', description: 'two', domain_id: 'default' } },
    });
    expect(p.status).toBe(201);
    expect(p.json.project).toMatchObject({ name: 'p2', domain_id: 'default', enabled: true, is_domain: false, description: 'two' });
    const u = await req('POST', '/identity/v3/users', {
      token: admin,
      body: { user: { name: 'u2', password: 'pw2', default_project_id: p.json.project.id } },
    });
    expect(u.status).toBe(201);
    expect(u.json.user).toMatchObject({ name: 'u2', default_project_id: p.json.project.id, enabled: true });
    expect(JSON.stringify(u.json)).not.toContain('pw2');
    const roles = await req('GET', '/identity/v3/roles?name=member', { token: admin });
    const member = roles.json.roles[0];
    expect(member.name).toBe('member');
    const g = await req('PUT', `/identity/v3/projects/${p.json.project.id}/users/${u.json.user.id}/roles/${member.id}`, { token: admin });
    expect(g.status).toBe(204);
    const a = await req('GET', `/identity/v3/role_assignments?scope.project.id=${p.json.project.id}&include_names=1`, { token: admin });
    expect(a.json.role_assignments).toEqual([
      expect.objectContaining({ role: { id: member.id, name: 'member' }, user: expect.objectContaining({ name: 'u2' }) }),
    ]);
    const t2 = await token('u2', 'pw2', 'p2');
    const v = await req('GET', '/identity/v3/auth/tokens', { token: t2, headers: { 'x-subject-token': t2 } });
    expect(v.json.token.roles.map((r: { name: string }) => r.name)).toEqual(['member']);
    // a user changes its own password: old tokens end, the new password works
    const changed = await req('POST', `/identity/v3/users/${u.json.user.id}/password`, {
      token: t2,
      body: { user: { password: 'pw3', original_password: 'pw2' } },
    });
    expect(changed.status).toBe(204);
    expect((await req('GET', '/compute/v2.1/servers', { token: t2 })).status).toBe(401);
    await expect(token('u2', 'pw2', 'p2')).rejects.toThrow(/401/);
    const t3 = await token('u2', 'pw3', 'p2');
    expect(
      (
        await req('POST', `/identity/v3/users/${u.json.user.id}/password`, {
          token: t3,
          body: { user: { password: 'x', original_password: 'wrong' } },
        })
      ).status,
    ).toBe(401);
    // non-admin: no identity administration
    const t2b = t3;
    expect((await req('POST', '/identity/v3/projects', { token: t2b, body: { project: { name: 'p3' } } })).status).toBe(403);
    expect((await req('GET', '/identity/v3/users', { token: t2b })).status).toBe(403);
    // duplicates
    expect((await req('POST', '/identity/v3/projects', { token: admin, body: { project: { name: 'p2' } } })).status).toBe(409);
    expect((await req('POST', '/identity/v3/users', { token: admin, body: { user: { name: 'u2' } } })).status).toBe(409);
    // the bootstrap admin cannot be removed
    expect((await req('DELETE', `/identity/v3/users/${v.json.token.user.id}`, { token: admin })).status).toBe(204);
    const who = (await req('GET', '/identity/v3/auth/tokens', { token: admin, headers: { 'x-subject-token': admin } })).json.token;
    expect((await req('DELETE', `/identity/v3/users/${who.user.id}`, { token: admin })).status).toBe(403);
    expect((await req('DELETE', `/identity/v3/projects/${who.project.id}`, { token: admin })).status).toBe(403);
  });

  it.each([
    ['POST', '/identity/v3/auth/tokens', '{not json', /Malformed request body/],
    ['POST', '/identity/v3/auth/tokens', '{}', /auth/],
    ['POST', '/identity/v3/auth/tokens', '{"auth": {"identity": {"methods": []}}}', /methods/],
    [
      'POST',
      '/identity/v3/auth/tokens',
      '{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin"}}}}}',
      /password/,
    ],
    ['POST', '/identity/v3/projects', '{"project": {}}', /name/],
    ['POST', '/identity/v3/projects', '{"project": {"name": " x"}}', /name/],
    ['POST', '/identity/v3/projects', '{"project": {"name": "x", "domain_id": "other"}}', /domain_id/],
    ['POST', '/identity/v3/users', '{"user": {"name": 5}}', /name/],
    ['POST', '/identity/v3/users', '{"user": {"name": "u", "password": ""}}', /password/],
    ['POST', '/identity/v3/users', '{"user": {"name": "u", "enabled": "maybe"}}', /enabled/],
    ['POST', '/identity/v3/roles', '{"role": {"name": ""}}', /name/],
    ['PATCH', '/identity/v3/projects/PID', '{"project": {"name": ""}}', /name/],
  ])('%s %s %s → 400 naming the field', async (method, url, raw, why) => {
    const { req, token, store } = api();
    const admin = await token();
    const pid = store.getSetting('local_project_id')!;
    const before = store.identity.listProjects().length + store.identity.listUsers().length;
    const r = await req(method, url.replace('PID', pid), { token: admin, raw });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 400, title: 'Bad Request' });
    expect(r.json.error.message).toMatch(why);
    expect(store.identity.listProjects().length + store.identity.listUsers().length).toBe(before);
  });
});
