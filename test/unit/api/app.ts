/** An in-process API on a temp state root (no root needed: nothing here starts a container). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ComputeService } from '../../../src/compute/servers.js';
import { IdentityService } from '../../../src/identity/service.js';
import { openStore, type Store } from '../../../src/store/db.js';
import { buildApp } from '../../../src/api/server.js';
import { ImageService } from '../../../src/images/service.js';
import { randomUUID } from 'node:crypto';

export const ADMIN_PASSWORD = 'admin-secret';

export interface TestApi {
  app: FastifyInstance;
  store: Store;
  identity: IdentityService;
  logLines: string[];
  /** the id of the active image "busybox" */
  imageId: string;
  /** a project-scoped token of user/password on project */
  token(user?: string, password?: string, project?: string | null): Promise<string>;
  req(
    method: string,
    url: string,
    opts?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> },
    // biome-ignore lint/suspicious/noExplicitAny: the tests read any JSON body
  ): Promise<{ status: number; json: any; headers: Record<string, unknown>; text: string }>;
}

export function useApi(): () => TestApi {
  let api: TestApi | undefined;
  let root = '';
  const saved = process.env.NOVABOX_ROOT;
  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'nbx-api-unit-'));
    process.env.NOVABOX_ROOT = root;
    const store = openStore(join(root, 'novabox.db'));
    const identity = new IdentityService(store);
    await identity.bootstrap(ADMIN_PASSWORD);
    const logLines: string[] = [];
    const compute = new ComputeService(store);
    const images = new ImageService(store);
    // an active image record (no layers: nothing here boots it; requests are only validated)
    const imageId = images.repo.insert({
      id: randomUUID(),
      name: 'busybox',
      owner: compute.localCaller().projectId,
      status: 'active',
      visibility: 'public',
      diskFormat: 'raw',
      containerFormat: 'bare',
      createdAt: '2024-01-01T00:00:00.000000',
    }).id;
    const app = await buildApp({ store, compute, identity, images, log: (l) => logLines.push(l) });
    const req: TestApi['req'] = async (method, url, opts = {}) => {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (opts.token) headers['x-auth-token'] = opts.token;
      let payload: string | undefined;
      if (opts.raw !== undefined) payload = opts.raw;
      else if (opts.body !== undefined) payload = JSON.stringify(opts.body);
      if (payload !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
      const r = await app.inject({ method: method as 'GET', url, headers, payload });
      let json: unknown;
      try {
        json = r.body ? JSON.parse(r.body) : undefined;
      } catch {
        json = undefined;
      }
      return { status: r.statusCode, json, headers: r.headers, text: r.body };
    };
    const token: TestApi['token'] = async (user = 'admin', password = ADMIN_PASSWORD, project = 'admin') => {
      const r = await req('POST', '/identity/v3/auth/tokens', {
        body: {
          auth: {
            identity: { methods: ['password'], password: { user: { name: user, domain: { name: 'Default' }, password } } },
            ...(project === null ? {} : { scope: { project: { name: project, domain: { id: 'default' } } } }),
          },
        },
      });
      if (r.status !== 201) throw new Error(`token for ${user}: ${r.status} ${r.text}`);
      return r.headers['x-subject-token'] as string;
    };
    api = { app, store, identity, logLines, token, req, imageId };
  });
  afterEach(async () => {
    await api?.app.close();
    api?.store.close();
    api = undefined;
    rmSync(root, { recursive: true, force: true });
    if (saved === undefined) delete process.env.NOVABOX_ROOT;
    else process.env.NOVABOX_ROOT = saved;
  });
  return () => api!;
}
