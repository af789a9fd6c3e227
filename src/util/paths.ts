import { join } from 'node:path';

/** The state directory: NOVABOX_ROOT, default /var/lib/novabox. */
export function stateRoot(): string {
  return process.env.NOVABOX_ROOT || '/var/lib/novabox';
}

export const paths = {
  layers: () => join(stateRoot(), 'layers', 'sha256'),
  layer: (hex: string) => join(stateRoot(), 'layers', 'sha256', hex),
  images: () => join(stateRoot(), 'images'),
  containers: () => join(stateRoot(), 'containers'),
  container: (id: string) => join(stateRoot(), 'containers', id),
  names: () => join(stateRoot(), 'names'),
  servers: () => join(stateRoot(), 'servers'),
  tmp: () => join(stateRoot(), 'tmp'),
};
