import { describe, expect, it } from 'vitest';
import { patchOf } from '../../../src/api/image/routes.js';
import type { GlanceImage } from '../../../src/api/image/catalog.js';
import { useApi } from './app.js';

const IMG: GlanceImage = {
  id: '11111111-2222-4333-8444-555555555555',
  name: 'busybox',
  status: 'active',
  visibility: 'public',
  protected: false,
  containerFormat: 'bare',
  diskFormat: 'raw',
  size: null,
  checksum: null,
  minDisk: 0,
  minRam: 0,
  owner: 'p',
  createdAt: '2024-01-01T00:00:00.000000',
  updatedAt: '2024-01-01T00:00:00.000000',
  properties: { image_type: 'snapshot' },
};

describe('Glance JSON patch', () => {
  it('maps add/replace/remove on top-level paths to one patch', () => {
    expect(
      patchOf(
        [
          { op: 'replace', path: '/name', value: 'n2' },
          { op: 'add', path: '/color', value: 'red' },
          { op: 'replace', path: '/min_ram', value: 64 },
          { op: 'replace', path: '/protected', value: true },
          { op: 'remove', path: '/image_type' },
        ],
        IMG,
      ),
    ).toEqual({ name: 'n2', minRam: 64, protected: true, properties: { color: 'red' }, removeProperties: ['image_type'] });
  });

  it.each([
    [{ op: 'replace', path: '/name' }, /value/],
    [{ op: 'move', path: '/name', value: 'x' }, /Unsupported patch operation/],
    [{ op: 'replace', path: '/a/b', value: 'x' }, /top-level/],
    [{ op: 'replace', path: '/visibility', value: 'everyone' }, /visibility/],
    [{ op: 'replace', path: '/protected', value: 'yes' }, /protected/],
    [{ op: 'add', path: '/color', value: 5 }, /strings/],
    [{ op: 'replace', path: '/id', value: 'x' }, /read-only/],
    [{ op: 'remove', path: '/nothere' }, /does not exist/],
  ])('refuses %j', (op, why) => {
    expect(() => patchOf([op], IMG)).toThrow(why);
  });
});

describe('Glance v2 (in process)', () => {
  const api = useApi();

  it('lists and shows images with the Glance fields; a name is not an id', async () => {
    const { req, token, imageId } = api();
    const t = await token();
    const list = await req('GET', '/image/v2/images', { token: t });
    expect(list.status).toBe(200);
    expect(list.json).toMatchObject({ first: '/v2/images', schema: '/v2/schemas/images' });
    expect(list.json.next).toBeUndefined();
    const img = list.json.images[0];
    expect(img).toMatchObject({
      id: imageId,
      name: 'busybox',
      status: 'active',
      visibility: 'public',
      disk_format: 'raw',
      container_format: 'bare',
      tags: [],
      file: `/v2/images/${imageId}/file`,
    });
    for (const k of [
      'protected',
      'os_hidden',
      'size',
      'virtual_size',
      'checksum',
      'os_hash_algo',
      'os_hash_value',
      'min_disk',
      'min_ram',
      'owner',
      'created_at',
      'updated_at',
      'self',
      'schema',
    ])
      expect(img).toHaveProperty(k);
    expect((await req('GET', `/image/v2/images/${img.id}`, { token: t })).json.name).toBe('busybox');
    expect((await req('GET', '/image/v2/images/busybox', { token: t })).status).toBe(404);
    expect((await req('GET', '/image/v2/images/00000000-0000-4000-8000-000000000000', { token: t })).status).toBe(404);
    expect((await req('GET', '/image/v2/images?name=busybox', { token: t })).json.images).toHaveLength(1);
    expect((await req('GET', '/image/v2/images?name=nope', { token: t })).json.images).toHaveLength(0);
    expect((await req('GET', '/image/v2/images?limit=x', { token: t })).status).toBe(400);
    expect((await req('GET', '/image/v2/images?sort_key=colour', { token: t })).status).toBe(400);
    expect((await req('GET', '/image/v2/images')).status).toBe(401);
    expect((await req('GET', '/image/v2/schemas/image', { token: t })).json.name).toBe('image');
    // the compute proxy
    const c = await req('GET', `/compute/v2.1/images/${img.id}`, { token: t });
    expect(c.json.image).toMatchObject({ id: img.id, status: 'ACTIVE', minDisk: 0, minRam: 0, progress: 100, metadata: {} });
    expect(c.json.image.links.map((l: { rel: string }) => l.rel)).toEqual(['self', 'bookmark', 'alternate']);
  });

  it.each([
    ['{"name": ""}', 400, /name/],
    ['{"name": "x", "visibility": "everyone"}', 400, /visibility/],
    ['{"name": "x", "disk_format": "floppy"}', 400, /disk_format/],
    ['{"name": "x", "min_ram": -1}', 400, /min_ram/],
    ['{"name": "x", "protected": "yes"}', 400, /protected/],
    ['{"name": "x", "tags": [1]}', 400, /tags/],
    ['{"name": "x", "color": 5}', 400, /strings/],
    ['{"name": "x", "status": "active"}', 403, /read-only/],
    ['{"name": "x", "id": "not-a-uuid"}', 400, /UUID/],
    ['[]', 400, /JSON object/],
  ])('POST /v2/images %s → %i', async (raw, status, why) => {
    const { req, token } = api();
    const r = await req('POST', '/image/v2/images', { token: await token(), raw, headers: { accept: 'application/json' } });
    expect(r.status).toBe(status);
    expect(r.json.message).toMatch(why);
  });

  it('lists no metadata definitions (novabox keeps none): the shape glanceclient pages through', async () => {
    const { req, token } = api();
    const t = await token();
    const r = await req('GET', '/image/v2/metadefs/namespaces?resource_types=OS%3A%3AGlance%3A%3AImage', { token: t });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ namespaces: [], first: '/v2/metadefs/namespaces', schema: '/v2/schemas/metadefs/namespaces' });
    expect((await req('GET', '/image/v2/metadefs/resource_types', { token: t })).json).toEqual({ resource_types: [] });
    expect((await req('GET', '/image/v2/metadefs/namespaces')).status).toBe(401);
  });

  it("serves the metadefs schemas glanceclient builds its model from before listing (Horizon's Images page)", async () => {
    const { req } = api();
    const ns = await req('GET', '/image/v2/schemas/metadefs/namespace');
    expect(ns.status).toBe(200);
    expect(ns.json).toMatchObject({ name: 'namespace', required: ['namespace'], additionalProperties: false });
    expect(ns.json.properties.visibility.enum).toEqual(['public', 'private']);
    expect(ns.json.properties.resource_type_associations.type).toBe('array');
    const list = await req('GET', '/image/v2/schemas/metadefs/namespaces');
    expect(list.json.name).toBe('namespaces');
    expect(list.json.properties.namespaces.items).toEqual(ns.json);
    expect((await req('GET', '/image/v2/schemas/metadefs/resource_type')).json).toMatchObject({
      name: 'resource_type',
      required: ['name'],
    });
    expect((await req('GET', '/image/v2/schemas/metadefs/resource_types')).json.name).toBe('resource_types');
    for (const bad of ['property', 'toString', '__proto__']) {
      const r = await req('GET', `/image/v2/schemas/metadefs/${bad}`, { headers: { accept: 'application/json' } });
      expect(r.status).toBe(404);
    }
  });

  it("answers a fault as Glance's webob does: JSON to a client that asks for it, else the HTML page glanceclient parses", async () => {
    const { req, token } = api();
    const t = await token();
    const missing = '/image/v2/images/00000000-0000-4000-8000-000000000000';
    const asJson = await req('GET', missing, { token: t, headers: { accept: 'application/json' } });
    expect(asJson.status).toBe(404);
    expect(asJson.json).toMatchObject({ code: 404, title: 'Not Found' });
    for (const accept of [undefined, '*/*', 'text/html', 'application/json;q=0.5, text/html']) {
      const r = await req('GET', missing, { token: t, headers: accept ? { accept } : {} });
      expect(r.status).toBe(404);
      expect(r.headers['content-type']).toMatch(/^text\/html/);
      expect(r.text).toContain('<title>404 Not Found</title>');
      expect(r.text).toContain('00000000-0000-4000-8000-000000000000');
    }
    // python-glanceclient's own parse of each top-level JSON value must not be what it gets
    const bad = await req('POST', '/image/v2/images', { token: t, raw: '{"name": "<x>", "disk_format": "floppy"}' });
    expect(bad.status).toBe(400);
    expect(bad.text).not.toContain('<x>');
    // 401 stays Keystone's JSON on every service
    expect((await req('GET', '/image/v2/images')).json.error.code).toBe(401);
  });

  it('creates a queued record (201 + Location), patches it, serves no data yet, deletes it; private to its project', async () => {
    const { req, token } = api();
    const admin = await token();
    const c = await req('POST', '/image/v2/images', {
      token: admin,
      body: { name: 'img1', disk_format: 'raw', container_format: 'bare', color: 'blue', min_ram: 64 },
    });
    expect(c.status).toBe(201);
    expect(c.json).toMatchObject({ name: 'img1', status: 'queued', color: 'blue', min_ram: 64, size: null, checksum: null });
    expect(c.headers.location).toBe(`http://localhost:80/image/v2/images/${c.json.id}`);
    const id = c.json.id;
    const patch = await req('PATCH', `/image/v2/images/${id}`, {
      token: admin,
      raw: JSON.stringify([
        { op: 'replace', path: '/name', value: 'img2' },
        { op: 'add', path: '/shape', value: 'round' },
        { op: 'remove', path: '/color' },
      ]),
      headers: { 'content-type': 'application/openstack-images-v2.1-json-patch' },
    });
    expect(patch.status).toBe(200);
    expect(patch.json).toMatchObject({ name: 'img2', shape: 'round' });
    expect(patch.json.color).toBeUndefined();
    expect((await req('PATCH', `/image/v2/images/${id}`, { token: admin, body: [] })).status).toBe(415);
    expect((await req('GET', `/image/v2/images/${id}/file`, { token: admin })).status).toBe(204);
    expect((await req('PUT', `/image/v2/images/${id}/file`, { token: admin, raw: '{}' })).status).toBe(415);
    // another project sees nothing of it
    const p2 = (await req('POST', '/identity/v3/projects', { token: admin, body: { project: { name: 'p2' } } })).json.project;
    const u2 = (await req('POST', '/identity/v3/users', { token: admin, body: { user: { name: 'u2', password: 'pw' } } })).json.user;
    const member = (await req('GET', '/identity/v3/roles?name=member', { token: admin })).json.roles[0];
    await req('PUT', `/identity/v3/projects/${p2.id}/users/${u2.id}/roles/${member.id}`, { token: admin });
    const t2 = await token('u2', 'pw', 'p2');
    expect((await req('GET', `/image/v2/images/${id}`, { token: t2 })).status).toBe(404);
    expect((await req('GET', '/image/v2/images', { token: t2 })).json.images.map((i: { name: string }) => i.name)).toEqual(['busybox']);
    expect((await req('DELETE', `/image/v2/images/${id}`, { token: t2 })).status).toBe(404);
    expect((await req('DELETE', `/image/v2/images/${id}`, { token: admin })).status).toBe(204);
    expect((await req('GET', `/image/v2/images/${id}`, { token: admin })).status).toBe(404);
  });
});
