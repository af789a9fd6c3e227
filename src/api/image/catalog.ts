/**
 * What the Glance and compute routes need from the image store, shaped as the images
 * issue's ImageService (src/images/service.ts) so that it plugs in as is. Until it lands,
 * LocalImageCatalog shows the container core's named images (src/images/store.ts) as
 * read-only Glance records whose id is a UUID derived from the name, stable across
 * restarts; writes answer 501.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { NotFound } from '../../errors.js';
import { paths } from '../../util/paths.js';
import { readImage } from '../../images/store.js';
import { ApiError } from '../faults.js';

export interface GlanceImage {
  id: string;
  name: string;
  status: string;
  visibility: 'public' | 'private' | 'shared' | 'community';
  protected: boolean;
  containerFormat: string | null;
  diskFormat: string | null;
  size: number | null;
  virtualSize?: number | null;
  checksum: string | null;
  osHashAlgo?: string | null;
  osHashValue?: string | null;
  minDisk: number;
  minRam: number;
  owner: string | null;
  createdAt: string;
  updatedAt: string;
  tags?: string[];
  properties: Record<string, string>;
}

export interface ImageCaller {
  projectId: string;
  userId: string;
  isAdmin: boolean;
}

export interface ImageFilters {
  name?: string;
  status?: string;
  visibility?: GlanceImage['visibility'] | 'all';
  owner?: string;
  properties?: Record<string, string>;
}

export interface CreateImageRequest {
  name: string;
  id?: string;
  visibility?: GlanceImage['visibility'];
  diskFormat?: string;
  containerFormat?: string;
  properties?: Record<string, string>;
  tags?: string[];
  minDisk?: number;
  minRam?: number;
  protected?: boolean;
}

export type ImagePatch = Partial<Pick<GlanceImage, 'name' | 'visibility' | 'protected' | 'minDisk' | 'minRam' | 'tags'>> & {
  diskFormat?: string;
  containerFormat?: string;
  properties?: Record<string, string>;
  removeProperties?: string[];
};

export interface ImageBackend {
  /** the images a caller may see (Glance's visibility rules) */
  list(f: ImageFilters, caller: ImageCaller): GlanceImage[];
  /** by id (or name); NotFound when missing or not visible */
  show(ref: string, caller: ImageCaller): GlanceImage;
  createRecord(req: CreateImageRequest, caller: ImageCaller): GlanceImage;
  upload(ref: string, data: Readable, caller: ImageCaller): Promise<GlanceImage>;
  download(ref: string, caller: ImageCaller): { stream: Readable; size: number; record: GlanceImage };
  update(ref: string, patch: ImagePatch, caller: ImageCaller): GlanceImage;
  delete(ref: string, caller: ImageCaller): void;
}

/** The Glance id of a server's image: its imageRef when that is an id, else by name. */
export function imageIdOfServer(images: ImageBackend, s: { imageRef: string; imageName: string }, caller: ImageCaller): string {
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s.imageRef)) return s.imageRef;
  try {
    return images.show(s.imageName, { ...caller, isAdmin: true }).id;
  } catch {
    return '';
  }
}

export function imageIdOf(name: string): string {
  const h = createHash('sha256').update(`novabox-image:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function storedTime(iso: string | undefined): string {
  const d = iso ? new Date(iso) : new Date(0);
  return (Number.isNaN(d.getTime()) ? new Date(0) : d).toISOString().slice(0, 23) + '000';
}

const writesNeedImageStore = () =>
  new ApiError(501, 'Image writes (create, upload, download, delete, snapshot) need the image store of novabox issue 4, not merged yet');

export class LocalImageCatalog implements ImageBackend {
  constructor(private readonly ownerProjectId: string) {}

  private names(): string[] {
    try {
      return readdirSync(paths.images()).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
    } catch {
      return [];
    }
  }

  private byName(name: string): GlanceImage | undefined {
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
      owner: this.ownerProjectId, createdAt: t, updatedAt: t, properties: {},
    };
  }

  list(f: ImageFilters): GlanceImage[] {
    let out = this.names().map((n) => this.byName(n)).filter((i): i is GlanceImage => i !== undefined);
    if (f.name !== undefined) out = out.filter((i) => i.name === f.name);
    if (f.status !== undefined) out = out.filter((i) => i.status === f.status);
    if (f.visibility !== undefined && f.visibility !== 'all') out = out.filter((i) => i.visibility === f.visibility);
    if (f.owner !== undefined) out = out.filter((i) => i.owner === f.owner);
    for (const [k, v] of Object.entries(f.properties ?? {})) out = out.filter((i) => i.properties[k] === v);
    return out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id.localeCompare(b.id)));
  }

  /** By derived id (only that record is read), else by name. */
  show(ref: string): GlanceImage {
    const name = this.names().find((n) => imageIdOf(n) === ref) ?? ref;
    const img = this.byName(name);
    if (!img) throw new NotFound(`image "${ref}" not found`);
    return img;
  }

  createRecord(): GlanceImage {
    throw writesNeedImageStore();
  }

  async upload(): Promise<GlanceImage> {
    throw writesNeedImageStore();
  }

  download(): { stream: Readable; size: number; record: GlanceImage } {
    throw writesNeedImageStore();
  }

  update(): GlanceImage {
    throw writesNeedImageStore();
  }

  delete(): void {
    throw writesNeedImageStore();
  }
}
