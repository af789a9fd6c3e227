/**
 * The HTTP façade: one fastify app serving Keystone at /identity, Nova at /compute and
 * Glance at /image over the same compute service as the CLI. This file holds what every
 * route shares: JSON parsing, request ids, the token check, errors and the access log.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { BadRequest } from '../errors.js';
import type { Caller, ComputeService } from '../compute/servers.js';
import type { IdentityService, Token } from '../identity/service.js';
import { Forbidden } from '../identity/service.js';
import type { Store } from '../store/db.js';
import { faultBody, serviceOf, statusOf } from './faults.js';
import type { GlanceImage, ImageBackend } from './image/catalog.js';
import type { BlockingRunner } from './compute/blocking.js';
import { registerIdentity } from './identity/routes.js';
import { registerCompute } from './compute/routes.js';
import { registerImage } from './image/routes.js';

export interface ApiDeps {
  store: Store;
  compute: ComputeService;
  identity: IdentityService;
  images: ImageBackend;
  /** Nova's createImage: a snapshot of a server into a new image (images/snapshot.ts) */
  snapshot?: (
    req: { server: string; name: string; properties?: Record<string, string>; onRecord?: (rec: GlanceImage) => void; backup?: { type: string; rotation: number } },
    caller: Caller,
  ) => Promise<unknown>;
  /** where stop and delete run (default: inline, in the calling thread) */
  blocking?: BlockingRunner;
  /** one access-log line per request; never given a token or a password */
  log?: (line: string) => void;
}

export interface AppOptions {
  /** largest JSON body accepted (image uploads stream and are not limited by this) */
  bodyLimitBytes?: number;
  https?: { cert: Buffer; key: Buffer };
}

declare module 'fastify' {
  interface FastifyRequest {
    token?: Token;
  }
}

export const DEFAULT_BODY_LIMIT = 1 << 20;

/** `http://host:port` as the client reached us: every link and catalog URL starts with it. */
export function baseUrl(req: FastifyRequest): string {
  return `${req.protocol}://${req.host}`;
}

/** The caller of a compute/image request: a valid project-scoped token, or 401/403. */
export function callerOf(req: FastifyRequest, deps: ApiDeps): Caller {
  const t = (req.token ??= deps.identity.authenticate(tokenHeader(req)));
  if (!t.project) throw new Forbidden('The token is not scoped to a project: ask for a project-scoped token.');
  // Nova's and Glance's default policies: the reader role reads, it never changes anything
  if (req.method !== 'GET' && req.method !== 'HEAD' && t.roles.every((r) => r.name === 'reader')) {
    throw new Forbidden(`Policy doesn't allow ${req.method} ${req.url.split('?')[0]} to be performed: the role "reader" is read-only.`);
  }
  return { projectId: t.project.id, userId: t.user.id, isAdmin: t.isAdmin, requestId: req.id };
}

export function tokenHeader(req: FastifyRequest): string | undefined {
  const v = req.headers['x-auth-token'];
  return Array.isArray(v) ? v[0] : v;
}

export function requireAdmin(caller: Caller, what: string): void {
  if (!caller.isAdmin) throw new Forbidden(`Policy doesn't allow ${what} to be performed.`);
}

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
    const service = serviceOf(req.url);
    void reply.code(404).send(faultBody(service, 404, `The resource could not be found: ${req.method} ${req.url.split('?')[0]}`));
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
  return reply.code(status).send(faultBody(serviceOf(req.url), status, message));
}
