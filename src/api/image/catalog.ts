/**
 * The images the API shows, as Glance records. For now over the container core's image
 * store (src/images/store.ts: named images of layer directories), which has no ids: an
 * image's id is a UUID derived from its name, stable across restarts. The images issue
 * replaces this with its Glance-like records.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { paths } from '../../util/paths.js';
import { readImage } from '../../images/store.js';

export interface GlanceImage {
  id: string;
  name: string;
  status: 'queued' | 'saving' | 'active' | 'killed' | 'deleted';
  visibility: 'public' | 'private' | 'shared' | 'community';
  protected: boolean;
  containerFormat: string;
  diskFormat: string;
  size: number | null;
  checksum: string | null;
  minDisk: number;
  minRam: number;
  owner: string | null;
  createdAt: string;
  updatedAt: string;
  properties: Record<string, string>;
  /** the name servers are created from (the core's image name) */
  localName: string;
}

export interface ImageCatalog {
  /** the images a project may see */
  list(projectId: string, isAdmin: boolean): GlanceImage[];
  get(id: string, projectId: string, isAdmin: boolean): GlanceImage | undefined;
  /** a server's image record, by the name the server keeps */
  ofServer(imageName: string): GlanceImage | undefined;
}

export function imageIdOf(name: string): string {
  const h = createHash('sha256').update(`novabox-image:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function storedTime(iso: string | undefined): string {
  const d = iso ? new Date(iso) : new Date(0);
  return (Number.isNaN(d.getTime()) ? new Date(0) : d).toISOString().slice(0, 23) + '000';
}

export class LocalImageCatalog implements ImageCatalog {
  constructor(private readonly ownerProjectId: string) {}

  private names(): string[] {
    try {
      return readdirSync(paths.images()).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
    } catch {
      return [];
    }
  }

  list(): GlanceImage[] {
    const out = this.names().map((n) => this.ofServer(n)).filter((i): i is GlanceImage => i !== undefined);
    return out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id.localeCompare(b.id)));
  }

  /** Only the image whose derived id matches is read. */
  get(id: string): GlanceImage | undefined {
    const name = this.names().find((n) => imageIdOf(n) === id);
    return name === undefined ? undefined : this.ofServer(name);
  }

  ofServer(name: string): GlanceImage | undefined {
    let img;
    try {
      img = readImage(name);
    } catch {
      return undefined;
    }
    if (!img) return undefined;
    const t = storedTime(img.created);
    return {
      id: imageIdOf(img.name), name: img.name, status: 'active', visibility: 'public', protected: false,
      containerFormat: 'bare', diskFormat: 'raw', size: null, checksum: null, minDisk: 0, minRam: 0,
      owner: this.ownerProjectId, createdAt: t, updatedAt: t, properties: {}, localName: img.name,
    };
  }
}
