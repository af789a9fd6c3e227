/**
 * The image store as the container core needs it: named images made of read-only
 * layer directories keyed by their diff id. The images issue generalises this
 * (import, export, reference counts, Glance metadata).
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequest, NotFound } from '../errors.js';
import { paths } from '../util/paths.js';
import { writeFileAtomic } from '../util/fs.js';
import { quote } from '../util/text.js';

import type { Image } from '../model/records.js';
export type { Image, ImageConfig } from '../model/records.js';

const NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

export function checkImageName(name: string): void {
  if (!NAME.test(name)) {
    throw new BadRequest(`invalid image name ${quote(name)}: use lower-case letters, digits, '.', '_' and '-'`);
  }
}

function imageFile(name: string): string {
  return join(paths.images(), `${name}.json`);
}

export function readImage(name: string): Image | undefined {
  checkImageName(name);
  try {
    return JSON.parse(readFileSync(imageFile(name), 'utf8')) as Image;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function writeImage(image: Image): void {
  checkImageName(image.name);
  mkdirSync(paths.images(), { recursive: true });
  // atomic, not fsynced: the database row it mirrors is not fsynced at commit either (WAL,
  // synchronous=NORMAL); a power cut may lose both, never leave half a file
  writeFileAtomic(imageFile(image.name), JSON.stringify(image, null, 2) + '\n', 0o644, false);
}

/** Layer directories for overlayfs lowerdir: topmost first. */
export function layerDirs(image: Image): string[] {
  return image.layers
    .map((digest) => {
      const dir = paths.layer(digest.replace(/^sha256:/, ''));
      if (!existsSync(dir)) throw new NotFound(`image "${image.name}": layer ${digest} is missing from ${paths.layers()}`);
      return dir;
    })
    .reverse();
}

/** Whether every layer directory of the image exists (a snapshot's top layer is made on first boot). */
export function layersReady(image: Image): boolean {
  return image.layers.every((digest) => existsSync(paths.layer(digest.replace(/^sha256:/, ''))));
}

/** Make the missing layer directories of an image from their blobs (images/materialize.ts). */
export async function ensureLayers(image: Image): Promise<void> {
  if (layersReady(image)) return;
  await (await import('./materialize.js')).materializeLayers(image);
}

export function removeImageRef(name: string): void {
  checkImageName(name);
  rmSync(imageFile(name), { force: true });
}
