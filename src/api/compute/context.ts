/** What the compute route files share: request lookups, background work, small helpers. */
import type { FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../errors.js';
import type { Caller } from '../../compute/servers.js';
import type { Server, Flavor } from '../../model/records.js';
import { novaAddresses } from '../../compute/addresses.js';
import { ApiError } from '../faults.js';
import { baseUrl, callerOf, type ApiDeps } from '../request.js';
import { isObject, isUuid, refId, type Json } from '../validate.js';
import { imageIdOfServer, type GlanceImage } from '../image/catalog.js';
import type { ServerViewContext } from './views.js';
import { QUOTAS } from './limits.js';
import { inlineRunner } from './blocking.js';

export type Req = FastifyRequest<{ Params: Record<string, string>; Querystring: Record<string, string | undefined> }>;

/** What runs after a 202: kept so `serve` can let it finish on shutdown. */
export const background = new Set<Promise<unknown>>();

export function inBackground(p: Promise<unknown>, log: ((l: string) => void) | undefined, what: string): void {
  const tracked = p
    .catch((err: unknown) => log?.(`${what} failed: ${(err as Error)?.message ?? String(err)}`))
    .finally(() => background.delete(tracked));
  background.add(tracked);
}

/**
 * An async compute action claims the server synchronously, before its first await: a
 * refusal (409, 404) rejects the promise at once and becomes the answer; the rest of the
 * work continues in the background.
 */
export async function claimed(p: Promise<unknown>, log: ApiDeps['log'], what: string): Promise<void> {
  let failed: unknown;
  let settled = false;
  p.then(
    () => (settled = true),
    (err: unknown) => {
      settled = true;
      failed = err;
    },
  );
  await null;
  await null;
  if (settled && failed !== undefined) throw failed;
  inBackground(p, log, what);
}

/** What every compute route file shares: the services and the per-request lookups. */
export interface ComputeCtx {
  deps: ApiDeps;
  compute: ApiDeps['compute'];
  store: ApiDeps['store'];
  log: ApiDeps['log'];
  blocking: NonNullable<ApiDeps['blocking']>;
  caller(req: FastifyRequest): Caller;
  /** by id only (a name is a 404, so the client falls back to a list); other projects' → 404 */
  server(req: Req): Server;
  viewCtx(req: FastifyRequest, s: Server): ServerViewContext;
  /** a flavor the caller may use; forBoot turns 404 into Nova's 400 */
  flavorFor(ref: string, c: Caller, forBoot?: boolean): Flavor;
}

export function computeCtx(deps: ApiDeps): ComputeCtx {
  const caller = (req: FastifyRequest): Caller => callerOf(req, deps);
  return {
    deps,
    compute: deps.compute,
    store: deps.store,
    log: deps.log,
    blocking: deps.blocking ?? inlineRunner(deps.compute),
    caller,
    server: (req) => {
      const c = caller(req);
      const id = req.params.id!;
      const s = deps.store.servers.get(id);
      if (!s || (!c.isAdmin && s.projectId !== c.projectId)) throw new NotFound(`Instance ${id} could not be found.`);
      return deps.compute.reconcile(s);
    },
    viewCtx: (req, s) => ({
      base: baseUrl(req),
      isAdmin: caller(req).isAdmin,
      imageId: imageIdOfServer(deps.images, s, caller(req)),
      addresses: novaAddresses(deps.store.leases.ofOwner(s.id)),
      volumeIds: deps.store.volumes.ofServer(s.id).map((v) => v.id),
    }),
    flavorFor: (ref, c, forBoot = false) => {
      try {
        return deps.store.flavors.get(refId(ref), c.isAdmin ? {} : { projectId: c.projectId });
      } catch (err) {
        if (forBoot && err instanceof NotFound) throw new BadRequest(`Flavor ${ref} could not be found.`);
        throw err;
      }
    },
  };
}

export function wrappedAny(body: unknown): Json {
  if (!isObject(body)) throw new BadRequest('The request body must be a JSON object');
  return body;
}

export function checkMetaCount(m: Record<string, string>): void {
  if (Object.keys(m).length > QUOTAS.metadata_items) {
    throw new ApiError(403, `Quota exceeded for metadata_items: at most ${QUOTAS.metadata_items} properties`);
  }
}

export function newAdminPass(): string {
  const abc = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => abc[b % abc.length]).join('');
}

/**
 * The image an `imageRef` names (create, rebuild): a uuid or an image URL ending in one,
 * visible to the caller; Nova answers 400, not 404, for a missing image.
 */
export function imageOfRef(deps: ApiDeps, ref: string, caller: Caller): GlanceImage {
  const imageId = refId(ref);
  if (!isUuid(imageId)) throw new BadRequest(`Invalid input for field/attribute imageRef. Value: ${ref}. '${ref}' is not a 'uuid'`);
  try {
    return deps.images.show(imageId, caller);
  } catch (err) {
    if (err instanceof NotFound) throw new BadRequest(`Image ${imageId} could not be found.`);
    throw err;
  }
}
