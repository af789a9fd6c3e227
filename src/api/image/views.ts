/** Glance v2's JSON: version list, image object (core fields + custom properties), schema. Pure. */
import type { GlanceImage } from './catalog.js';

export function imageVersions(base: string) {
  const link = (v: string) => [{ rel: 'self', href: `${base}/image/${v}/` }];
  return [
    { id: 'v2.16', status: 'CURRENT', links: link('v2') },
    { id: 'v2.0', status: 'SUPPORTED', links: link('v2') },
  ];
}

/** The core keys of an image; every other top-level key is a custom property. */
export const CORE_KEYS = new Set([
  'id',
  'name',
  'status',
  'visibility',
  'protected',
  'os_hidden',
  'container_format',
  'disk_format',
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
  'tags',
  'file',
  'self',
  'schema',
]);

/** Glance writes `YYYY-MM-DDTHH:MM:SSZ`. */
function glanceTime(stored: string): string {
  return `${stored.slice(0, 19)}Z`;
}

export function glanceImage(i: GlanceImage): Record<string, unknown> {
  const custom = Object.fromEntries(Object.entries(i.properties).filter(([k]) => !CORE_KEYS.has(k)));
  return {
    ...custom,
    id: i.id,
    name: i.name,
    status: i.status,
    visibility: i.visibility,
    protected: i.protected,
    os_hidden: false,
    container_format: i.containerFormat,
    disk_format: i.diskFormat,
    size: i.size,
    virtual_size: i.virtualSize ?? null,
    checksum: i.checksum,
    os_hash_algo: i.osHashAlgo ?? null,
    os_hash_value: i.osHashValue ?? null,
    min_disk: i.minDisk,
    min_ram: i.minRam,
    owner: i.owner,
    created_at: glanceTime(i.createdAt),
    updated_at: glanceTime(i.updatedAt),
    tags: i.tags ?? [],
    file: `/v2/images/${i.id}/file`,
    self: `/v2/images/${i.id}`,
    schema: '/v2/schemas/image',
  };
}

/** Enough of Glance's image schema for glanceclient (additional properties are strings). */
export function imageSchema() {
  const s = (type: unknown, extra: Record<string, unknown> = {}) => ({ type, ...extra });
  return {
    name: 'image',
    properties: {
      id: s('string'),
      name: s(['null', 'string']),
      status: s('string'),
      visibility: s('string', { enum: ['community', 'public', 'private', 'shared'] }),
      protected: s('boolean'),
      os_hidden: s('boolean'),
      checksum: s(['null', 'string']),
      os_hash_algo: s(['null', 'string']),
      os_hash_value: s(['null', 'string']),
      owner: s(['null', 'string']),
      size: s(['null', 'integer']),
      virtual_size: s(['null', 'integer']),
      min_ram: s('integer'),
      min_disk: s('integer'),
      created_at: s('string'),
      updated_at: s('string'),
      tags: s('array', { items: { type: 'string' } }),
      container_format: s(['null', 'string']),
      disk_format: s(['null', 'string']),
      self: s('string'),
      file: s('string'),
      schema: s('string'),
    },
    additionalProperties: { type: 'string' },
    links: [
      { rel: 'self', href: '{self}' },
      { rel: 'enclosure', href: '{file}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

/**
 * Glance's metadata-definition schemas, trimmed to their fields: glanceclient fetches
 * `/v2/schemas/metadefs/<name>` to build its model before any metadefs listing (Horizon's
 * Images page and Update Metadata list the namespaces), so without them the list fails.
 */
export function metadefsSchema(name: string): Record<string, unknown> | undefined {
  const str = { type: 'string' };
  const time = { type: 'string', format: 'date-time' };
  const resourceType = {
    name: 'resource_type_association',
    properties: {
      name: { ...str, maxLength: 80 },
      prefix: { ...str, maxLength: 80 },
      properties_target: { ...str, maxLength: 80 },
      created_at: time,
      updated_at: time,
    },
    required: ['name'],
    additionalProperties: false,
  };
  const namespace = {
    name: 'namespace',
    properties: {
      namespace: { ...str, maxLength: 80 },
      display_name: { ...str, maxLength: 80 },
      description: { ...str, maxLength: 500 },
      visibility: { ...str, enum: ['public', 'private'] },
      protected: { type: 'boolean' },
      owner: { ...str, maxLength: 255 },
      created_at: time,
      updated_at: time,
      schema: { ...str, readOnly: true },
      self: { ...str, readOnly: true },
      resource_type_associations: { type: 'array', items: resourceType.properties },
      properties: { type: 'object' },
      objects: { type: 'array' },
      tags: { type: 'array' },
    },
    required: ['namespace'],
    additionalProperties: false,
  };
  const list = (of: string, items: Record<string, unknown>) => ({
    name: `${of}s`,
    properties: {
      [`${of}s`]: { type: 'array', items },
      first: str,
      next: str,
      schema: str,
    },
    links: [
      { rel: 'first', href: '{first}' },
      { rel: 'next', href: '{next}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  });
  const schemas: Record<string, Record<string, unknown>> = {
    namespace,
    namespaces: list('namespace', namespace),
    resource_type: { ...resourceType, name: 'resource_type' },
    resource_types: { name: 'resource_types', properties: { resource_types: { type: 'array', items: resourceType } } },
  };
  return Object.hasOwn(schemas, name) ? schemas[name] : undefined;
}
