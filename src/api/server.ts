/**
 * The HTTP façade: one fastify app serving Keystone at /identity, Nova at /compute and
 * Glance at /image over the same compute service as the CLI. This file holds what every
 * route shares: JSON parsing, request ids, errors and the access log (the token check and
 * the services a route reaches: request.ts).
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { BadRequest } from '../errors.js';
import { faultBody, glanceHtmlFault, glanceWantsJson, serviceOf, statusOf } from './faults.js';
import { baseUrl, type ApiDeps } from './request.js';
import { bodyUnread, lingerOnClose } from './linger.js';
import { registerIdentity } from './identity/routes.js';
import { registerCompute } from './compute/routes.js';
import { registerImage } from './image/routes.js';

export { baseUrl, callerOf, requireAdmin, tokenHeader, type ApiDeps } from './request.js';

export interface AppOptions {
  /** largest JSON body accepted (image uploads stream and are not limited by this) */
  bodyLimitBytes?: number;
  https?: { cert: Buffer; key: Buffer };
}

export const DEFAULT_BODY_LIMIT = 1 << 20;

function parseJson(_req: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void): void {
  if (body.trim() === '') return done(null, undefined);
  try {
    done(null, JSON.parse(body));
  } catch (err) {
    done(new BadRequest(`Malformed request body: ${(err as Error).message}`));
  }
}

export async function buildApp(deps: ApiDeps, opts: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT,
    genReqId: () => `req-${randomUUID()}`,
    requestIdHeader: false,
    exposeHeadRoutes: false,
    // fastify's default strips the trailing slash of `/compute/v2.1/` differently per route: be lenient
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 1024 },
    ...(opts.https ? { https: opts.https } : {}),
  } as FastifyServerOptions) as unknown as FastifyInstance;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', 'application/openstack-images-v2.1-json-patch'], { parseAs: 'string' }, parseJson);
  // Uploads stream to disk: the body is the request stream itself, never buffered.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  // Clients that send JSON without saying so (curl -d): parse text as JSON too.
  app.addContentTypeParser(['text/plain', 'application/x-www-form-urlencoded'], { parseAs: 'string' }, parseJson);

  app.addHook('onRequest', async (req, reply) => {
    reply.header('X-OpenStack-Request-Id', req.id);
    if (req.url.startsWith('/compute')) reply.header('X-Compute-Request-Id', req.id);
  });

  // An answer before the end of the body (413, 401 before an upload): close, but read the
  // rest first (linger.ts), so that every client reads the answer, not a reset.
  app.addHook('onSend', async (req, reply, payload) => {
    if (bodyUnread(req.raw)) {
      reply.header('connection', 'close');
      lingerOnClose(req.raw);
    }
    return payload;
  });

  const log = deps.log;
  if (log) {
    app.addHook('onResponse', async (req, reply) => {
      const who = req.token ? ` user=${req.token.user.name}` : '';
      // the path only: query strings may carry names, never credentials, but keep lines short
      log(
        `${new Date().toISOString()} ${req.ip} "${req.method} ${req.url.split('?')[0]}" ${reply.statusCode} ` +
          `${reply.elapsedTime.toFixed(1)}ms ${req.id}${who}`,
      );
    });
  }

  app.setErrorHandler((err, req, reply) => sendFault(req, reply, err, log));
  app.setNotFoundHandler((req, reply) => {
    void sendStatus(req, reply, 404, `The resource could not be found: ${req.method} ${req.url.split('?')[0]}`);
  });

  app.get('/', async (req, reply) => {
    const base = baseUrl(req);
    return reply.code(300).send({
      versions: {
        values: [
          { id: 'identity', links: [{ rel: 'self', href: `${base}/identity/` }] },
          { id: 'compute', links: [{ rel: 'self', href: `${base}/compute/` }] },
          { id: 'image', links: [{ rel: 'self', href: `${base}/image/` }] },
        ],
      },
    });
  });

  await app.register((a, _o, done) => (registerIdentity(a, deps), done()), { prefix: '/identity' });
  await app.register((a, _o, done) => (registerCompute(a, deps), done()), { prefix: '/compute' });
  await app.register((a, _o, done) => (registerImage(a, deps), done()), { prefix: '/image' });
  return app;
}

function sendFault(req: FastifyRequest, reply: FastifyReply, err: unknown, log?: (l: string) => void): FastifyReply {
  const { status, message, internal } = statusOf(err);
  if (internal && log) log(`${req.id} error: ${(err as Error)?.stack ?? String(err)}`);
  if (status === 401) reply.header('WWW-Authenticate', `Keystone uri="${baseUrl(req)}/identity"`);
  return sendStatus(req, reply, status, message);
}

/** A fault in the shape of the service the URL names (Glance's negotiated: faults.ts). */
function sendStatus(req: FastifyRequest, reply: FastifyReply, status: number, message: string): FastifyReply {
  const service = serviceOf(req.url);
  if (service === 'image' && status !== 401 && !glanceWantsJson(req.headers.accept)) {
    return reply.code(status).type('text/html; charset=UTF-8').send(glanceHtmlFault(status, message));
  }
  return reply.code(status).send(faultBody(service, status, message));
}
