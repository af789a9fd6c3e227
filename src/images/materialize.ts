/**
 * A snapshot stores its new layer as a blob only (the OCI tar, keyed by its diff id):
 * packing a lowerdir copy as well doubled the work done while the server is frozen. The
 * layer's directory is made here, on the first boot of an image that needs it: the blob
 * is extracted through the same checked path as an import (TarValidator + GNU tar, diff
 * id verified, whiteouts back into overlay form) and renamed into place. Loaded only
 * when a layer directory is missing, so `run` on a ready image never pays for it.
 */
import { existsSync } from 'node:fs';
import { NotFound } from '../errors.js';
import { Staging, blobPath, extractLayer, fileStream, installLayer, layerPath } from './layers.js';
import type { Image } from '../model/records.js';

export async function materializeLayers(image: Image): Promise<void> {
  for (const diffId of image.layers) {
    if (existsSync(layerPath(diffId))) continue;
    const blob = blobPath(diffId); // snapshot layers: uncompressed, blob digest = diff id
    if (!existsSync(blob)) throw new NotFound(`image "${image.name}": layer ${diffId} is missing from the store`);
    const staging = new Staging('layer');
    try {
      const dir = staging.newDir();
      // devices: the layer is a server's own upper dir, which the mirror copy kept as it was
      await extractLayer(fileStream(blob), 'none', dir, staging.path('blob'), { trusted: true, expectDiffId: diffId });
      installLayer(diffId, dir, undefined);
    } finally {
      staging.remove();
    }
  }
}
