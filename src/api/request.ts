/**
 * What every route of the HTTP façade shares about a request: the services it reaches
 * (ApiDeps), the base URL of its links, the caller its token names, the admin check.
 * The routes import this, and server.ts (which registers the routes) re-exports it.
 */
import type { FastifyRequest } from 'fastify';
import type { Caller, ComputeService } from '../compute/servers.js';
import type { IdentityService, Token } from '../identity/service.js';
import { Forbidden } from '../identity/service.js';
import type { Store } from '../compute/open.js';
import type { GlanceImage, ImageBackend } from './image/catalog.js';
import type { BlockingRunner } from './compute/blocking.js';

export interface ApiDeps {
  store: Store;
  compute: ComputeService;
  identity: IdentityService;
  images: ImageBackend;
  /** Nova's createImage: a snapshot of a server into a new image (compute/snapshot.ts) */
  snapshot?: (
    req: {
      server: string;
      name: string;
      properties?: Record<string, string>;
      onRecord?: (rec: GlanceImage) => void;
      backup?: { type: string; rotation: number };
    },
    caller: Caller,
  ) => Promise<unknown>;
  /** where stop and delete run (default: inline, in the calling thread) */
  blocking?: BlockingRunner;
  /** one access-log line per request; never given a token or a password */
  log?: (line: string) => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    token?: Token;
  }
}

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
