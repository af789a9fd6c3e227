/**
 * What an image file is, and what its manifests say. Pure: names and JSON in, plans out.
 */
import { BadRequest } from '../errors.js';
import type { ImageConfig } from './store.js';
import { listSome, quote } from '../util/text.js';

export const IMPORT_FORMATS = ['auto', 'tar', 'oci', 'docker-archive', 'lxc'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** The format of a tar archive from the names of its first entries. */
export function formatFromEntries(names: string[]): Exclude<ImportFormat, 'auto'> {
  const set = new Set(names.map((n) => n.replace(/^\.\//, '').replace(/\/$/, '')));
  if (set.has('oci-layout')) return 'oci';
  if (
    set.has('manifest.json') &&
    (set.has('repositories') ||
      names.some((n) => /\.json$/.test(n) && n !== 'manifest.json') ||
      names.some((n) => /(^|\/)layer\.tar$/.test(n)) ||
      names.some((n) => n.startsWith('blobs/')))
  ) {
    return 'docker-archive';
  }
  if (set.has('metadata.yaml') && names.some((n) => n === 'rootfs' || n.startsWith('rootfs/') || n.startsWith('./rootfs'))) return 'lxc';
  if (set.has('metadata.yaml') && set.size <= 3) return 'lxc';
  return 'tar';
}

/** The format of an unpacked directory from its top-level names. */
export function formatFromDir(names: string[]): Exclude<ImportFormat, 'auto'> | 'rootfs-dir' {
  const set = new Set(names);
  if (set.has('oci-layout') && set.has('index.json')) return 'oci';
  if (set.has('manifest.json') && !set.has('etc')) return 'docker-archive';
  if (set.has('metadata.yaml') && set.has('rootfs')) return 'lxc';
  return 'rootfs-dir';
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture?: string; os?: string };
}

/** What a server of the image runs under novabox-init (JSON argv; [] = idle), kept across save/import. */
export const SERVER_CMD_LABEL = 'io.novabox.server-cmd';

export const MEDIA_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function checkDescriptor(d: unknown, what: string): Descriptor {
  const x = d as Descriptor;
  if (!x || typeof x !== 'object' || typeof x.digest !== 'string' || !DIGEST.test(x.digest)) {
    throw new BadRequest(`invalid OCI ${what}: a descriptor without a sha256 digest`);
  }
  return x;
}

/** The manifest to import from an index: the one named `ref`, else linux/<arch>, else the only one. */
export function pickManifest(index: unknown, ref?: string, arch = hostArch()): Descriptor {
  const ms = (index as { manifests?: unknown[] })?.manifests;
  if (!Array.isArray(ms) || ms.length === 0) throw new BadRequest('invalid OCI layout: index.json lists no manifests');
  const all = ms.map((m) => checkDescriptor(m, 'index'));
  if (ref) {
    const hit = all.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref);
    if (!hit) throw new BadRequest(`the OCI layout has no image named ${quote(ref)}`);
    return hit;
  }
  if (all.length === 1) return all[0];
  const plat = all.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === arch);
  if (plat) return plat;
  const names = all.map((m) => m.annotations?.['org.opencontainers.image.ref.name'] ?? m.digest);
  throw new BadRequest(`the OCI layout holds ${all.length} images: name one (${listSome(names.map(String))})`);
}

export function hostArch(): string {
  return (
    (
      { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<
        string,
        string
      >
    )[process.arch] ?? process.arch
  );
}

export interface ManifestPlan {
  config: Descriptor;
  layers: Descriptor[];
}

export function parseManifest(m: unknown): ManifestPlan {
  const x = m as { mediaType?: string; config?: unknown; layers?: unknown[]; manifests?: unknown };
  if (x?.manifests) throw new BadRequest('nested image indexes are not supported: point at a single-platform image');
  if (!x || !x.config || !Array.isArray(x.layers)) throw new BadRequest('invalid OCI manifest: it needs a config and a layers list');
  return { config: checkDescriptor(x.config, 'manifest config'), layers: x.layers.map((l) => checkDescriptor(l, 'manifest layer')) };
}

/** OCI/Docker image config -> what novabox runs, and the layer diff ids. */
export function parseImageConfig(c: unknown): { config: ImageConfig; diffIds: string[]; architecture?: string; os?: string } {
  const x = c as {
    architecture?: string;
    os?: string;
    config?: {
      Cmd?: string[] | null;
      Entrypoint?: string[] | null;
      Env?: string[] | null;
      WorkingDir?: string;
      User?: string;
      StopSignal?: string;
      Labels?: Record<string, string> | null;
    };
    rootfs?: { type?: string; diff_ids?: string[] };
  };
  const diffIds = x?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.some((d) => typeof d !== 'string' || !DIGEST.test(d))) {
    throw new BadRequest('invalid image config: rootfs.diff_ids must list sha256 digests');
  }
  const cfg = x.config ?? {};
  let serverCmd: string[] | undefined;
  const label = cfg.Labels?.[SERVER_CMD_LABEL];
  if (label !== undefined) {
    try {
      const v = JSON.parse(label) as unknown;
      if (Array.isArray(v) && v.every((a) => typeof a === 'string')) serverCmd = v;
    } catch {
      /* not ours: ignored */
    }
  }
  return {
    config: {
      cmd: [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])],
      ...(cfg.Entrypoint?.length ? { entrypoint: cfg.Entrypoint } : {}),
      env: cfg.Env ?? [],
      workingDir: cfg.WorkingDir || '/',
      user: cfg.User ?? '',
      ...(cfg.StopSignal ? { stopSignal: cfg.StopSignal } : {}),
      ...(serverCmd ? { serverCmd } : {}),
    },
    diffIds,
    architecture: x.architecture,
    os: x.os,
  };
}

/** docker save's manifest.json: [{Config, RepoTags, Layers}] */
export function parseDockerManifest(m: unknown, ref?: string): { config: string; layers: string[]; tags: string[] } {
  if (!Array.isArray(m) || m.length === 0) throw new BadRequest('invalid docker archive: manifest.json is not a non-empty list');
  const items = m as { Config?: string; RepoTags?: string[] | null; Layers?: string[] }[];
  let item = items[0];
  if (ref) {
    const hit = items.find((i) => (i.RepoTags ?? []).includes(ref));
    if (!hit) throw new BadRequest(`the docker archive has no image tagged ${quote(ref)}`);
    item = hit;
  } else if (items.length > 1) {
    throw new BadRequest('the docker archive holds several images: name one');
  }
  if (typeof item.Config !== 'string' || !Array.isArray(item.Layers))
    throw new BadRequest('invalid docker archive: an entry without Config or Layers');
  for (const p of [item.Config, ...item.Layers]) {
    if (p.startsWith('/') || p.split('/').includes('..'))
      throw new BadRequest(`invalid docker archive: path ${quote(p)} escapes the archive`);
  }
  return { config: item.Config, layers: item.Layers, tags: item.RepoTags ?? [] };
}

/** LXC/Incus metadata.yaml: the flat scalar fields we keep as image properties. */
export function parseLxcMetadata(text: string): Record<string, string> {
  const props: Record<string, string> = {};
  let section = '';
  for (const line of text.split('\n')) {
    const top = /^([a-z_]+):\s*(.*)$/.exec(line);
    if (top) {
      section = top[1];
      if (top[2] && section !== 'templates') props[section] = top[2].replace(/^["']|["']$/g, '');
      continue;
    }
    const sub = /^ {2}([a-z_]+):\s*(.+)$/.exec(line);
    if (sub && section === 'properties') props[sub[1]] = sub[2].replace(/^["']|["']$/g, '');
  }
  const out: Record<string, string> = {};
  const map: Record<string, string> = {
    architecture: 'architecture',
    os: 'os_distro',
    release: 'os_version',
    description: 'description',
    variant: 'variant',
    creation_date: 'lxc_creation_date',
  };
  for (const [k, v] of Object.entries(props)) if (map[k]) out[map[k]] = v;
  return out;
}
