/**
 * What the Glance and compute routes need from the image store: the shape of
 * src/images/service.ts's ImageService, which serve passes in as is (tests may pass
 * another implementation).
 */
import type { Readable } from 'node:stream';

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

import type { CreateImageRequest, ImageCaller, ImageFilters, ImagePatch } from '../../images/service.js';
export type { CreateImageRequest, ImageCaller, ImageFilters, ImagePatch };

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
