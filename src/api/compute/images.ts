/** Compute's deprecated image proxy onto Glance (tempest still uses it at 2.1). */
import type { FastifyInstance } from 'fastify';
import { BadRequest, NotFound } from '../../errors.js';
import { ApiError } from '../faults.js';
import { baseUrl } from '../request.js';
import { isObject, isUuid, metadata, refId, type Json } from '../validate.js';
import type { GlanceImage } from '../image/catalog.js';
import { computeImage, computeImageStatus } from './views.js';
import { QUOTAS } from './limits.js';
import type { ComputeCtx, Req } from './context.js';

/** Nova's image list filters (nova/api/openstack/compute/images.py), applied to what Glance shows the caller. */
export function filterImages(list: GlanceImage[], q: Record<string, string | undefined>): GlanceImage[] {
  let out = list;
  if (q.name !== undefined) out = out.filter((i) => i.name === q.name);
  if (q.status !== undefined) {
    const want = q.status.toLowerCase();
    out = out.filter((i) => i.status === want || computeImageStatus(i.status).toLowerCase() === want);
  }
  if (q.server !== undefined) {
    const id = refId(q.server);
    out = out.filter((i) => i.properties.instance_uuid === id);
  }
  if (q.type !== undefined) out = out.filter((i) => (i.properties.image_type ?? '') === q.type);
  if (q.minRam !== undefined) out = out.filter((i) => i.minRam >= Number(q.minRam));
  if (q.minDisk !== undefined) out = out.filter((i) => i.minDisk >= Number(q.minDisk));
  const since = q['changes-since'];
  if (since !== undefined) {
    const t = Date.parse(since);
    if (Number.isNaN(t)) throw new BadRequest(`Invalid changes-since value: ${since}`);
    out = out.filter((i) => Date.parse(`${i.updatedAt.slice(0, 23)}Z`) >= t - (t % 1000));
  }
  return out;
}

export function registerImageProxy(app: FastifyInstance, ctx: ComputeCtx): void {
  const { deps, caller } = ctx;
  const oneImage = (req: Req): GlanceImage => {
    const c = caller(req);
    if (!isUuid(req.params.id!)) throw new NotFound('Image not found.');
    try {
      return deps.images.show(req.params.id!, c);
    } catch (err) {
      if (err instanceof NotFound) throw new NotFound('Image not found.');
      throw err;
    }
  };
  /** filters, then marker/limit with Nova's images_links when the page is cut */
  const page = (req: Req, detail: boolean) => {
    const q = req.query;
    let list = filterImages(deps.images.list({}, caller(req)), q);
    if (q.marker !== undefined) {
      const at = list.findIndex((i) => i.id === q.marker);
      if (at < 0) throw new BadRequest(`marker [${q.marker}] not found`);
      list = list.slice(at + 1);
    }
    const base = baseUrl(req);
    const body: Json = {};
    if (q.limit !== undefined) {
      if (!/^\d+$/.test(q.limit)) throw new BadRequest(`Invalid limit value: ${q.limit}: it must be a whole number >= 0`);
      const limit = Number(q.limit);
      if (list.length > limit) {
        list = list.slice(0, limit);
        if (limit > 0)
          body.images_links = [
            { rel: 'next', href: `${base}/compute/v2.1/images${detail ? '/detail' : ''}?limit=${limit}&marker=${list.at(-1)!.id}` },
          ];
      }
    }
    return { images: list.map((i) => computeImage(i, base, detail)), ...body };
  };
  app.get('/v2.1/images', async (req: Req) => page(req, false));
  app.get('/v2.1/images/detail', async (req: Req) => page(req, true));
  app.get('/v2.1/images/:id', async (req: Req) => ({ image: computeImage(oneImage(req), baseUrl(req), true) }));
  app.delete('/v2.1/images/:id', async (req: Req, reply) => {
    deps.images.delete(oneImage(req).id, caller(req));
    return reply.code(204).send();
  });

  // ---- image metadata: Glance's custom properties
  const metaBody = (body: unknown, key: 'metadata' | 'meta'): Record<string, string> => {
    if (!isObject(body)) throw new BadRequest(`The request body must be a JSON object with "${key}"`);
    return metadata(body as Json, key, { required: true })!;
  };
  const checkCount = (m: Record<string, string>) => {
    if (Object.keys(m).length > QUOTAS.metadata_items)
      throw new ApiError(403, `Quota exceeded for metadata_items: at most ${QUOTAS.metadata_items} properties`);
  };
  app.get('/v2.1/images/:id/metadata', async (req: Req) => ({ metadata: { ...oneImage(req).properties } }));
  app.post('/v2.1/images/:id/metadata', async (req: Req) => {
    const img = oneImage(req);
    const m = metaBody(req.body, 'metadata');
    checkCount({ ...img.properties, ...m });
    return { metadata: { ...deps.images.update(img.id, { properties: m }, caller(req)).properties } };
  });
  app.put('/v2.1/images/:id/metadata', async (req: Req) => {
    const img = oneImage(req);
    const m = metaBody(req.body, 'metadata');
    checkCount(m);
    const gone = Object.keys(img.properties).filter((k) => !(k in m));
    return { metadata: { ...deps.images.update(img.id, { properties: m, removeProperties: gone }, caller(req)).properties } };
  });
  app.get('/v2.1/images/:id/metadata/:key', async (req: Req) => {
    const img = oneImage(req);
    const key = req.params.key!;
    if (!Object.hasOwn(img.properties, key)) throw new NotFound(`Metadata item was not found`);
    return { meta: { [key]: img.properties[key] } };
  });
  app.put('/v2.1/images/:id/metadata/:key', async (req: Req) => {
    const img = oneImage(req);
    const key = req.params.key!;
    const m = metaBody(req.body, 'meta');
    if (Object.keys(m).length !== 1 || !(key in m)) throw new BadRequest('Request body and URI mismatch');
    checkCount({ ...img.properties, ...m });
    deps.images.update(img.id, { properties: m }, caller(req));
    return { meta: m };
  });
  app.delete('/v2.1/images/:id/metadata/:key', async (req: Req, reply) => {
    const img = oneImage(req);
    const key = req.params.key!;
    if (!Object.hasOwn(img.properties, key)) throw new NotFound(`Metadata item was not found`);
    deps.images.update(img.id, { removeProperties: [key] }, caller(req));
    return reply.code(204).send();
  });
}
