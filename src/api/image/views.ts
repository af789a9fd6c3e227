/** Glance v2's JSON: version list and image object (core fields + custom properties). Pure. */
import type { GlanceImage } from './catalog.js';

export function imageVersions(base: string) {
  const link = (v: string) => [{ rel: 'self', href: `${base}/image/${v}/` }];
  return [
    { id: 'v2.16', status: 'CURRENT', links: link('v2') },
    { id: 'v2.0', status: 'SUPPORTED', links: link('v2') },
  ];
}

/** Glance writes `YYYY-MM-DDTHH:MM:SSZ`. */
function glanceTime(stored: string): string {
  return `${stored.slice(0, 19)}Z`;
}

export function glanceImage(i: GlanceImage, _base: string): Record<string, unknown> {
  return {
    ...i.properties,
    id: i.id,
    name: i.name,
    status: i.status,
    visibility: i.visibility,
    protected: i.protected,
    os_hidden: false,
    container_format: i.containerFormat,
    disk_format: i.diskFormat,
    size: i.size,
    virtual_size: null,
    checksum: i.checksum,
    os_hash_algo: i.checksum ? 'sha512' : null,
    os_hash_value: null,
    min_disk: i.minDisk,
    min_ram: i.minRam,
    owner: i.owner,
    created_at: glanceTime(i.createdAt),
    updated_at: glanceTime(i.updatedAt),
    tags: [],
    file: `/v2/images/${i.id}/file`,
    self: `/v2/images/${i.id}`,
    schema: '/v2/schemas/image',
  };
}
