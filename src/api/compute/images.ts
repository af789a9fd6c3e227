/** Compute's deprecated image proxy onto Glance (tempest still uses it at 2.1). */
import type { FastifyInstance } from 'fastify';
import { NotFound } from '../../errors.js';
import { baseUrl } from '../request.js';
import { isUuid } from '../validate.js';
import type { GlanceImage } from '../image/catalog.js';
import { computeImage } from './views.js';
import type { ComputeCtx, Req } from './context.js';

export function registerImageProxy(app: FastifyInstance, ctx: ComputeCtx): void {
  const { deps, caller } = ctx;
  // ---- images (compute's proxy onto Glance)
  const visibleImages = (req: Req) => deps.images.list({}, caller(req));
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
  app.get('/v2.1/images', async (req: Req) => ({ images: visibleImages(req).map((i) => computeImage(i, baseUrl(req), false)) }));
  app.get('/v2.1/images/detail', async (req: Req) => ({ images: visibleImages(req).map((i) => computeImage(i, baseUrl(req), true)) }));
  app.get('/v2.1/images/:id', async (req: Req) => ({ image: computeImage(oneImage(req), baseUrl(req), true) }));
  app.delete('/v2.1/images/:id', async (req: Req, reply) => {
    deps.images.delete(oneImage(req).id, caller(req));
    return reply.code(204).send();
  });
  app.get('/v2.1/images/:id/metadata', async (req: Req) => ({ metadata: { ...oneImage(req).properties } }));

}
