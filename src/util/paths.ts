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

const PARENT = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;

/**
 * The cgroup every container and server of this state root lives under (like podman's
 * --cgroup-parent): NOVABOX_CGROUP_PARENT, default "novabox". Keep it the same for a
 * given NOVABOX_ROOT.
 */
export function cgroupParent(): string {
  const p = process.env.NOVABOX_CGROUP_PARENT || 'novabox';
  if (!PARENT.test(p) || p.split('/').some((seg) => seg === '.' || seg === '..')) {
    throw new Error(`invalid NOVABOX_CGROUP_PARENT ${JSON.stringify(p)}: use path segments of letters, digits, '_', '.' and '-'`);
  }
  return p;
}

export function cgroupPathOf(id: string): string {
  return `${cgroupParent()}/${id}`;
}
