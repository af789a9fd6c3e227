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
