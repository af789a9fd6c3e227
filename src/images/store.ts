/**
 * The image store as the container core needs it: named images made of read-only
 * layer directories keyed by their diff id. The images issue generalises this
 * (import, export, reference counts, Glance metadata).
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { BadRequest, NotFound } from '../errors.js';
import { paths } from '../util/paths.js';
import { writeFileAtomic } from '../util/fs.js';

import type { Image } from '../model/records.js';
export type { Image, ImageConfig } from '../model/records.js';

/** Names that are also file names: published as images/<name>.json (what novabox wrote before free-text names). */
const FILE_SAFE = /^[a-z0-9][a-z0-9._-]{0,127}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const IMAGE_NAME_MAX = 255;

/** Glance's rule: any text of 1 to 255 characters (capitals, spaces, punctuation, non-ASCII). */
export function checkImageName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || [...name].length > IMAGE_NAME_MAX) {
    throw new BadRequest(`invalid image name: it must be 1 to ${IMAGE_NAME_MAX} characters long`);
  }
  if (name.includes('\0')) throw new BadRequest('invalid image name: it contains a NUL character');
}

/**
 * The file an image name is published under: the name itself when it is a safe file name
 * (as before), else by-name/<sha256 of the name> (the name is free text: "/", "..", spaces).
 */
function nameFile(name: string): string {
  if (FILE_SAFE.test(name)) return join(paths.images(), `${name}.json`);
  return join(paths.images(), 'by-name', `${sha256Hex(name)}.json`);
}

/** node:crypto only for free-text names: loading it costs milliseconds on `run`'s start path. */
function sha256Hex(text: string): string {
  type Crypto = typeof import('node:crypto');
  const p = process as unknown as { getBuiltinModule?: (id: string) => Crypto };
  const crypto = p.getBuiltinModule?.('node:crypto') ?? (createRequire(`${process.cwd()}/`)('node:crypto') as Crypto);
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

function idFile(id: string): string {
  return join(paths.images(), 'by-id', `${id}.json`);
}

function readJson(file: string): Image | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Image;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The newest active image published under this name (the database may hold several of one name). */
export function readImage(name: string): Image | undefined {
  checkImageName(name);
  return readJson(nameFile(name));
}

/** An active image by its id (images published before ids had files: by name). */
export function readImageById(id: string, nameHint?: string): Image | undefined {
  if (UUID.test(id)) {
    const img = readJson(idFile(id));
    if (img) return img;
  }
  if (nameHint === undefined) return undefined;
  const byName = readImage(nameHint);
  return byName && (byName.id === undefined || byName.id === id) ? byName : undefined;
}

/** `novabox run REF`: an id, else a name. */
export function readImageRef(ref: string): Image | undefined {
  return (UUID.test(ref) ? readJson(idFile(ref)) : undefined) ?? readImage(ref);
}

function writeJson(file: string, image: Image): void {
  mkdirSync(dirname(file), { recursive: true });
  // atomic, not fsynced: the database row it mirrors is not fsynced at commit either (WAL,
  // synchronous=NORMAL); a power cut may lose both, never leave half a file
  writeFileAtomic(file, JSON.stringify(image, null, 2) + '\n', 0o644, false);
}

/** Publish an active image by id, and under its name (the newest of that name wins the name). */
export function writeImage(image: Image): void {
  checkImageName(image.name);
  if (image.id !== undefined) writeJson(idFile(image.id), image);
  writeJson(nameFile(image.name), image);
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

/**
 * The layer directories of an image that exist now, top first: a snapshot's top layer is
 * made on the first boot from it, so before that its image is looked into without it (a
 * file the snapshot deleted may still be seen; nothing it added is).
 */
export function presentLayerDirs(image: Image): string[] {
  return image.layers
    .map((digest) => paths.layer(digest.replace(/^sha256:/, '')))
    .filter((dir) => existsSync(dir))
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

/** Unpublish an image: its id file, and its name file when that still points at it. */
export function removeImageRef(name: string, id?: string): void {
  checkImageName(name);
  if (id !== undefined) rmSync(idFile(id), { force: true });
  const cur = readJson(nameFile(name));
  if (!cur || id === undefined || cur.id === undefined || cur.id === id) rmSync(nameFile(name), { force: true });
}

/** Point a name file at this image (after another image of the name went), or remove it (undefined). */
export function republishName(name: string, image: Image | undefined): void {
  if (image) writeJson(nameFile(name), image);
  else rmSync(nameFile(name), { force: true });
}

/** A published image whose config changed: its id file, and its name file if the name points at it. */
export function republishConfig(image: Image & { id: string }): void {
  checkImageName(image.name);
  writeJson(idFile(image.id), image);
  const cur = readJson(nameFile(image.name));
  if (cur && (cur.id === undefined || cur.id === image.id)) writeJson(nameFile(image.name), image);
}
