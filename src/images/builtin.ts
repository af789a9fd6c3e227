/**
 * The built-in image's one fallback, for `run`, `server create` and `server rebuild`: an
 * image by name, or, when "busybox" is asked for and missing, busybox built on first use
 * (its builder and the image service, with tar, crypto and child_process behind them, load
 * only then: `run`'s local bundle leaves them out).
 */
import { NovaboxError } from '../errors.js';
import { atypicalRun } from '../util/cache-hint.js';
import { readImage, readImageRef, type Image } from './store.js';

/** The image named `name` (the resolved form of the `ref` the user gave); for a missing "busybox", built now. */
export async function imageOrBuiltin(name: string, ref: string = name): Promise<Image | undefined> {
  const image = readImageRef(name);
  if (image || ref !== 'busybox') return image;
  return ensureBusybox();
}

/**
 * The busybox image, built on first use into the image store (one database record, one
 * layer). Concurrent first uses are safe: the name is unique, the loser reuses the winner's.
 */
export async function ensureBusybox(): Promise<Image> {
  const have = readImage('busybox');
  if (have) return have;
  // loaded first: in `run`'s local bundle they are stand-ins that throw, before anything changed
  const { openStore } = await import('../store/db.js');
  const { ImageService } = await import('./service.js');
  atypicalRun(); // built once: the CLI's code cache must not come from this run
  const store = openStore();
  try {
    new ImageService(store).ensureBuiltin();
  } finally {
    store.close();
  }
  const img = readImage('busybox');
  if (!img) throw new NovaboxError('internal', 'the busybox image was built but is not published');
  return img;
}
