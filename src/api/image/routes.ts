/**
 * Glance v2 at /image: versions, images (list with filters and paging, show, create,
 * JSON-patch update, delete), data (upload streamed from the request to the store,
 * download streamed from it) and the schemas glanceclient reads.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Staging } from '../../images/service.js';
import { BadRequest, NotFound } from '../../errors.js';
import { ApiError } from '../faults.js';
import { baseUrl, callerOf, type ApiDeps } from '../request.js';
import { bool, int, isObject, isUuid, str, type Json } from '../validate.js';
import type { CreateImageRequest, GlanceImage, ImagePatch } from './catalog.js';
import { glanceImage, imageSchema, imageVersions, metadefsSchema, CORE_KEYS } from './views.js';
import { quote } from '../../util/text.js';

type Req = FastifyRequest<{ Params: Record<string, string>; Querystring: Record<string, string | undefined> }>;

const VISIBILITY = ['public', 'private', 'shared', 'community'] as const;
const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'];
const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'];
const LIST_PARAMS = new Set([
  'name',
  'status',
  'visibility',
  'owner',
  'limit',
  'marker',
  'sort_key',
  'sort_dir',
  'sort',
  'member_status',
  'tag',
  'os_hidden',
  'protected',
  'id',
  'container_format',
  'disk_format',
]);
/** read-only or reserved: Glance refuses them in create and patch */
const READ_ONLY = new Set([
  'id',
  'status',
  'size',
  'virtual_size',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'owner',
  'created_at',
  'updated_at',
  'file',
  'self',
  'schema',
  'direct_url',
  'locations',
]);

export function registerImage(app: FastifyInstance, deps: ApiDeps): void {
  const images = deps.images;
  app.get('/', async (req, reply) => reply.code(300).send({ versions: imageVersions(baseUrl(req)) }));
  app.get('/versions', async (req) => ({ versions: imageVersions(baseUrl(req)) }));

  /** By id only: a name is a 404 (the client then lists by name). */
  const image = (req: Req): GlanceImage => {
    const c = callerOf(req, deps);
    const id = req.params.id!;
    if (!isUuid(id)) throw new NotFound(`No image found with ID ${id}`);
    try {
      return images.show(id, c);
    } catch (err) {
      if (err instanceof NotFound) throw new NotFound(`No image found with ID ${id}`);
      throw err;
    }
  };

  app.get('/v2/images', async (req: Req) => {
    const c = callerOf(req, deps);
    const q = req.query;
    const properties: Record<string, string> = {};
    for (const [k, v] of Object.entries(q)) if (!LIST_PARAMS.has(k) && v !== undefined) properties[k] = v;
    if (q.visibility !== undefined && ![...VISIBILITY, 'all'].includes(q.visibility as never))
      throw new BadRequest(`Invalid visibility value: ${q.visibility}`);
    let list = images.list({ name: q.name, status: q.status, visibility: q.visibility as never, owner: q.owner, properties }, c);
    if (q.id !== undefined) list = list.filter((i) => q.id!.split(',').includes(i.id));
    if (q.container_format !== undefined) list = list.filter((i) => i.containerFormat === q.container_format);
    if (q.disk_format !== undefined) list = list.filter((i) => i.diskFormat === q.disk_format);
    if (q.protected !== undefined) list = list.filter((i) => String(i.protected) === q.protected);
    if (q.tag !== undefined) list = list.filter((i) => (i.tags ?? []).includes(q.tag!));
    list = sorted(list, q.sort_key, q.sort_dir, q.sort);
    if (q.marker !== undefined) {
      const i = list.findIndex((x) => x.id === q.marker);
      if (i < 0) throw new BadRequest(`marker ${q.marker} could not be found.`);
      list = list.slice(i + 1);
    }
    const body: Json = {};
    if (q.limit !== undefined) {
      if (!/^\d+$/.test(q.limit)) throw new BadRequest('limit param must be an integer');
      const limit = Number(q.limit);
      if (list.length > limit) {
        list = list.slice(0, limit);
        if (limit > 0) body.next = `/v2/images?marker=${list.at(-1)!.id}&limit=${limit}`;
      }
    }
    return { images: list.map((i) => glanceImage(i)), first: '/v2/images', schema: '/v2/schemas/images', ...body };
  });

  app.get('/v2/images/:id', async (req: Req) => glanceImage(image(req)));

  app.post('/v2/images', async (req: Req, reply) => {
    const c = callerOf(req, deps);
    if (!isObject(req.body)) throw new BadRequest('The request body must be a JSON object');
    const b = req.body;
    const r: CreateImageRequest = { name: str(b, 'name', { min: 1, max: 255, nullable: true }) ?? '' };
    if (!r.name) throw new BadRequest("Invalid input for field 'name': an image needs a name");
    const id = str(b, 'id');
    if (id !== undefined && !isUuid(id)) throw new BadRequest(`Invalid input for field 'id': ${id} is not a UUID`);
    r.id = id;
    r.visibility = enumField(b, 'visibility', VISIBILITY);
    r.diskFormat = enumField(b, 'disk_format', DISK_FORMATS);
    r.containerFormat = enumField(b, 'container_format', CONTAINER_FORMATS);
    r.minDisk = int(b, 'min_disk', { min: 0 });
    r.minRam = int(b, 'min_ram', { min: 0 });
    r.protected = strictBool(b, 'protected');
    r.tags = tags(b.tags);
    r.properties = customProperties(b);
    const made = images.createRecord(r, c);
    return reply
      .code(201)
      .header('Location', `${baseUrl(req)}/image/v2/images/${made.id}`)
      .send(glanceImage(made));
  });

  app.patch('/v2/images/:id', async (req: Req) => {
    const c = callerOf(req, deps);
    const img = image(req);
    const ct = String(req.headers['content-type'] ?? '');
    if (!ct.startsWith('application/openstack-images-v2.1-json-patch') && !ct.startsWith('application/openstack-images-v2.0-json-patch')) {
      throw new ApiError(415, `Unsupported Content-Type ${ct}: use application/openstack-images-v2.1-json-patch`);
    }
    return glanceImage(images.update(img.id, patchOf(req.body, img), c));
  });

  app.delete('/v2/images/:id', async (req: Req, reply) => {
    const c = callerOf(req, deps);
    const img = image(req);
    if (img.protected) throw new ApiError(403, `Image ${img.id} is protected and cannot be deleted.`);
    images.delete(img.id, c);
    return reply.code(204).send();
  });

  // data: the body is the request stream itself (server.ts passes octet-stream through)
  app.put('/v2/images/:id/file', async (req: Req, reply) => {
    const c = callerOf(req, deps);
    const img = image(req);
    if (!(req.body instanceof Readable)) throw new ApiError(415, 'Upload the data as Content-Type: application/octet-stream');
    if (img.status !== 'queued') throw new ApiError(409, `Image ${img.id} is ${img.status}: data can only be uploaded to a queued image`);
    await images.upload(img.id, req.body, c);
    return reply.code(204).send();
  });

  app.get('/v2/images/:id/file', async (req: Req, reply) => {
    const c = callerOf(req, deps);
    const img = image(req);
    if (img.status === 'queued') return reply.code(204).send();
    // The data is an OCI archive made on the fly; clients check it against Content-MD5
    // (else against the image's checksum, the md5 of what was uploaded): spool it once to
    // a staging file while hashing, then stream that file.
    const { stream } = images.download(img.id, c);
    const staging = new Staging('download');
    try {
      const file = staging.path('data');
      const md5 = createHash('md5');
      await pipeline(
        stream,
        async function* (src: AsyncIterable<Buffer>) {
          for await (const chunk of src) {
            md5.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(file, { mode: 0o600 }),
      );
      const out = createReadStream(file);
      reply.raw.on('close', () => staging.remove());
      reply
        .header('Content-Type', 'application/octet-stream')
        .header('Content-Length', String(statSync(file).size))
        .header('Content-MD5', md5.digest('hex'));
      return reply.send(out);
    } catch (err) {
      staging.remove();
      throw err;
    }
  });

  app.get('/v2/schemas/image', async () => imageSchema());
  app.get('/v2/schemas/images', async () => ({
    name: 'images',
    properties: {
      images: { type: 'array', items: imageSchema() },
      schema: { type: 'string' },
      first: { type: 'string' },
      next: { type: 'string' },
    },
    links: [
      { rel: 'first', href: '{first}' },
      { rel: 'next', href: '{next}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  }));

  // Metadata definitions (Horizon's "Update Metadata" and the launch workflow ask for them):
  // novabox keeps no catalog of them, so the list is empty and any one namespace is unknown.
  app.get('/v2/metadefs/namespaces', async (req: Req) => {
    callerOf(req, deps);
    return {
      namespaces: [],
      first: '/v2/metadefs/namespaces',
      schema: '/v2/schemas/metadefs/namespaces',
    };
  });
  app.get('/v2/schemas/metadefs/:name', async (req: Req) => {
    const name = req.params.name!;
    const schema = metadefsSchema(name);
    if (!schema) throw new NotFound(`No schema metadefs/${name}.`);
    return schema;
  });
  app.get('/v2/metadefs/resource_types', async (req: Req) => {
    callerOf(req, deps);
    return { resource_types: [] };
  });
}

function enumField<T extends string>(b: Json, field: string, allowed: readonly T[]): T | undefined {
  const v = str(b, field, { nullable: true });
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T))
    throw new BadRequest(`Invalid input for field '${field}': ${quote(v)} is not one of ${allowed.join(', ')}`);
  return v as T;
}

function strictBool(b: Json, field: string): boolean | undefined {
  const v = b[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new BadRequest(`Invalid input for field '${field}': ${quote(v)} is not of type 'boolean'`);
  return bool(b, field);
}

function tags(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((t) => typeof t === 'string' && t.length >= 1 && t.length <= 255)) {
    throw new BadRequest("Invalid input for field 'tags': expected a list of strings of 1 to 255 characters");
  }
  return v as string[];
}

/** Any other top-level key is a custom property (a string). */
function customProperties(b: Json): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(b)) {
    if (k === 'id') continue; // a client may choose the id at create
    if (READ_ONLY.has(k)) throw new ApiError(403, `Attribute '${k}' is read-only.`);
    if (CORE_KEYS.has(k)) continue;
    if (typeof v !== 'string') throw new BadRequest(`Invalid input for property '${k}': custom properties are strings`);
    if (k.length > 255 || v.length > 65535) throw new BadRequest(`Invalid input for property '${k}': too long`);
    out[k] = v;
  }
  return out;
}

/** RFC 6902 as Glance takes it: add/replace/remove on top-level paths. */
export function patchOf(body: unknown, img: GlanceImage): ImagePatch {
  if (!Array.isArray(body)) throw new BadRequest('The patch must be a JSON list of operations');
  const patch: ImagePatch = {};
  const props: Record<string, string> = {};
  const removed: string[] = [];
  for (const op of body) {
    if (!isObject(op) || typeof op.op !== 'string' || typeof op.path !== 'string' || !/^\/[^/]+$/.test(op.path)) {
      throw new BadRequest('Each patch operation needs "op" and a top-level "path" such as "/name"');
    }
    const key = op.path.slice(1).replace(/~1/g, '/').replace(/~0/g, '~');
    if (READ_ONLY.has(key)) throw new ApiError(403, `Attribute '${key}' is read-only.`);
    if (op.op === 'remove') {
      if (CORE_KEYS.has(key)) throw new ApiError(403, `Attribute '${key}' cannot be removed.`);
      if (!Object.hasOwn(img.properties, key)) throw new ApiError(409, `Property ${key} does not exist.`);
      removed.push(key);
      continue;
    }
    if (op.op !== 'add' && op.op !== 'replace') throw new BadRequest(`Unsupported patch operation "${op.op}": use add, replace or remove`);
    if (!('value' in op)) throw new BadRequest(`The "${op.op}" of ${op.path} needs a "value"`);
    const one: Json = { [key]: op.value };
    switch (key) {
      case 'name':
        patch.name = str(one, 'name', { required: true, min: 1, max: 255 });
        break;
      case 'visibility':
        patch.visibility = enumField(one, 'visibility', VISIBILITY);
        break;
      case 'protected':
        patch.protected = strictBool(one, 'protected');
        break;
      case 'min_disk':
        patch.minDisk = int(one, 'min_disk', { min: 0 });
        break;
      case 'min_ram':
        patch.minRam = int(one, 'min_ram', { min: 0 });
        break;
      case 'tags':
        patch.tags = tags(op.value);
        break;
      case 'disk_format':
        patch.diskFormat = enumField(one, 'disk_format', DISK_FORMATS);
        break;
      case 'container_format':
        patch.containerFormat = enumField(one, 'container_format', CONTAINER_FORMATS);
        break;
      case 'os_hidden':
        break;
      default:
        if (typeof op.value !== 'string') throw new BadRequest(`Invalid input for property '${key}': custom properties are strings`);
        props[key] = op.value;
    }
  }
  if (Object.keys(props).length) patch.properties = props;
  if (removed.length) patch.removeProperties = removed;
  return patch;
}

function sorted(list: GlanceImage[], key = 'created_at', dir = 'desc', sort?: string): GlanceImage[] {
  if (sort !== undefined) {
    const [k, d] = sort.split(',')[0]!.split(':');
    return sorted(list, k, d ?? 'desc');
  }
  if (!['asc', 'desc'].includes(dir)) throw new BadRequest(`Invalid sort direction: ${dir}`);
  const field = (
    {
      created_at: 'createdAt',
      updated_at: 'updatedAt',
      name: 'name',
      id: 'id',
      size: 'size',
      status: 'status',
      min_disk: 'minDisk',
      min_ram: 'minRam',
    } as Record<string, keyof GlanceImage>
  )[key];
  if (!field) throw new BadRequest(`Invalid sort key: ${key}`);
  const sign = dir === 'asc' ? 1 : -1;
  return [...list].sort((a, b) => {
    const x = a[field] ?? '';
    const y = b[field] ?? '';
    return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * sign || a.id.localeCompare(b.id);
  });
}
