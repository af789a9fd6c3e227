/**
 * Glance v2 at /image: version document, image list (filters, paging) and show. Writes
 * (create, upload, download, delete) arrive with the images issue's store.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../errors.js';
import { ApiError } from '../faults.js';
import { baseUrl, callerOf, type ApiDeps } from '../server.js';
import type { GlanceImage } from './catalog.js';
import { glanceImage, imageVersions } from './views.js';

type Req = FastifyRequest<{ Params: Record<string, string>; Querystring: Record<string, string | undefined> }>;

const CORE_FILTERS = ['name', 'status', 'visibility', 'owner', 'container_format', 'disk_format', 'id'] as const;

export function registerImage(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/', async (req, reply) => reply.code(300).send({ versions: imageVersions(baseUrl(req)) }));
  app.get('/versions', async (req) => ({ versions: imageVersions(baseUrl(req)) }));

  const visible = (req: Req): GlanceImage[] => {
    const c = callerOf(req, deps);
    return deps.images.list(c.projectId, c.isAdmin);
  };

  app.get('/v2/images', async (req: Req) => {
    const q = req.query;
    let list = visible(req);
    for (const key of CORE_FILTERS) {
      const want = q[key];
      if (want === undefined) continue;
      const values = key === 'name' ? [want] : want.split(',');
      list = list.filter((i) => values.includes(String((i as unknown as Record<string, unknown>)[key === 'container_format' ? 'containerFormat' : key === 'disk_format' ? 'diskFormat' : key])));
    }
    const reserved = new Set([...CORE_FILTERS, 'limit', 'marker', 'sort_key', 'sort_dir', 'sort', 'member_status', 'tag', 'os_hidden', 'protected']);
    for (const [k, v] of Object.entries(q)) if (!reserved.has(k as never) && v !== undefined) list = list.filter((i) => i.properties[k] === v);
    if (q.sort_key !== undefined || q.sort_dir !== undefined) {
      const key = q.sort_key ?? 'created_at';
      const dir = q.sort_dir ?? 'desc';
      if (!['asc', 'desc'].includes(dir)) throw new BadRequest(`Invalid sort direction: ${dir}`);
      const field = ({ created_at: 'createdAt', updated_at: 'updatedAt', name: 'name', id: 'id', size: 'size', status: 'status' } as Record<string, keyof GlanceImage>)[key];
      if (!field) throw new BadRequest(`Invalid sort key: ${key}`);
      list.sort((a, b) => String(a[field] ?? '').localeCompare(String(b[field] ?? '')) * (dir === 'asc' ? 1 : -1));
    }
    if (q.marker !== undefined) {
      const i = list.findIndex((x) => x.id === q.marker);
      if (i < 0) throw new BadRequest(`marker ${q.marker} could not be found.`);
      list = list.slice(i + 1);
    }
    const base = baseUrl(req);
    const body: Record<string, unknown> = { first: '/v2/images', schema: '/v2/schemas/images' };
    if (q.limit !== undefined) {
      if (!/^\d+$/.test(q.limit)) throw new BadRequest(`limit param must be an integer`);
      const limit = Number(q.limit);
      if (list.length > limit) {
        list = list.slice(0, limit);
        if (limit > 0) body.next = `/v2/images?marker=${list.at(-1)!.id}&limit=${limit}`;
      }
    }
    return { images: list.map((i) => glanceImage(i, base)), ...body };
  });

  app.get('/v2/images/:id', async (req: Req) => {
    const c = callerOf(req, deps);
    const i = deps.images.get(req.params.id!, c.projectId, c.isAdmin);
    if (!i) throw new NotFound(`No image found with ID ${req.params.id}`);
    return glanceImage(i, baseUrl(req));
  });

  const notYet = async (req: Req) => {
    callerOf(req, deps);
    throw new ApiError(501, 'Image writes (create, upload, download, delete) need the image store of novabox issue 4, not merged yet');
  };
  app.post('/v2/images', notYet);
  app.put('/v2/images/:id/file', notYet);
  app.get('/v2/images/:id/file', notYet);
  app.patch('/v2/images/:id', notYet);
  app.delete('/v2/images/:id', notYet);
}
