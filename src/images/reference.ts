/**
 * What `image pull` is given: a transport and a reference, as skopeo(1) writes them
 * (containers-transports(5)). Pure: text in, a checked reference out, or one sentence
 * saying what is wrong with it. The docker grammar is distribution's (reference/regexp.go):
 * a registry host (a dot, a port or `localhost` tells it from a path), lowercase path
 * components, a tag or a sha256 digest; Docker Hub when no host is named.
 */
import { BadRequest } from '../errors.js';
import { quote } from '../util/text.js';

export const PULL_TRANSPORTS = ['docker', 'oci', 'oci-archive', 'docker-archive'] as const;
export type PullTransport = (typeof PULL_TRANSPORTS)[number];

export interface RegistryReference {
  transport: 'docker';
  /** host[:port], docker.io when the reference names none */
  registry: string;
  /** path in the registry: `library/busybox`, `team/app` */
  repository: string;
  tag?: string;
  digest?: string;
}

export interface LocalReference {
  transport: 'oci' | 'oci-archive' | 'docker-archive';
  path: string;
  /** the image inside a multi-image layout or archive (skopeo's `:REF` suffix) */
  ref?: string;
}

export type PullReference = RegistryReference | LocalReference;

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]{1,5})?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const NAME_MAX = 255;

/** `docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]`, `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]`. */
export function parsePullReference(text: string): PullReference {
  const colon = text.indexOf(':');
  const transport = colon > 0 ? text.slice(0, colon) : '';
  if (!/^[a-z][a-z0-9-]*$/.test(transport)) {
    throw new BadRequest(
      `invalid image reference ${quote(text)}: it must start with a transport (docker://HOST/REPO:TAG, oci:, oci-archive:, docker-archive:)`,
    );
  }
  if (!(PULL_TRANSPORTS as readonly string[]).includes(transport)) {
    throw new BadRequest(`unknown transport ${quote(transport)} in ${quote(text)}: expected one of ${PULL_TRANSPORTS.join(', ')}`);
  }
  const rest = text.slice(colon + 1);
  if (transport === 'docker') {
    if (!rest.startsWith('//'))
      throw new BadRequest(`invalid image reference ${quote(text)}: a registry reference is docker://HOST/REPO[:TAG]`);
    return parseDockerReference(rest.slice(2), text);
  }
  const [path, ...refParts] = rest.split(':');
  const ref = refParts.join(':');
  if (!path) throw new BadRequest(`invalid image reference ${quote(text)}: ${transport}: needs a path`);
  return { transport: transport as LocalReference['transport'], path, ...(ref ? { ref } : {}) };
}

function parseDockerReference(name: string, text: string): RegistryReference {
  const bad = (why: string) => new BadRequest(`invalid image reference ${quote(text)}: ${why}`);
  if (!name) throw bad('it names no repository');
  let rest = name;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('a digest is sha256: and 64 lowercase hex digits');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const tagColon = rest.indexOf(':', lastSlash + 1);
  if (tagColon >= 0) {
    tag = rest.slice(tagColon + 1);
    rest = rest.slice(0, tagColon);
    if (!TAG.test(tag)) throw bad(`the tag ${quote(tag)} is not 1 to 128 letters, digits, '_', '.' or '-' (not starting with '.' or '-')`);
  }
  if (tag && digest) throw bad('give a tag or a digest, not both');
  const parts = rest.split('/');
  const first = parts[0];
  const hasHost = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['));
  let registry = 'docker.io';
  if (hasHost) {
    registry = parts.shift()!;
    if (!DOMAIN.test(registry)) throw bad(`${quote(registry)} is not a registry host[:port]`);
    const port = /:([0-9]+)$/.exec(registry)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw bad(`the port ${port} is out of range`);
  }
  if (parts.some((p) => p === '')) throw bad('it has an empty path component');
  const wrong = parts.find((p) => !PATH_COMPONENT.test(p));
  if (wrong !== undefined) {
    throw bad(
      wrong.toLowerCase() !== wrong
        ? 'repository names are lowercase'
        : `${quote(wrong)} is not a repository path component (lowercase letters and digits, separated by '.', '_', '__' or '-')`,
    );
  }
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (`${hasHost ? `${registry}/` : ''}${repository}`.length > NAME_MAX) throw bad(`the repository name is over ${NAME_MAX} characters`);
  return { transport: 'docker', registry, repository, ...(digest ? { digest } : { tag: tag ?? 'latest' }) };
}

/** The reference as skopeo takes it: the tag or digest explicit, Docker Hub named. */
export function formatPullReference(r: PullReference): string {
  if (r.transport !== 'docker') return `${r.transport}:${r.path}${r.ref ? `:${r.ref}` : ''}`;
  return `docker://${r.registry}/${r.repository}${r.digest ? `@${r.digest}` : `:${r.tag}`}`;
}

/** The same image pinned to one manifest: what is copied once the digest is known (a tag may move meanwhile). */
export function pinnedReference(r: PullReference, digest: string): PullReference {
  if (r.transport !== 'docker') return r;
  const { tag: _tag, ...rest } = r;
  return { ...rest, digest };
}

/**
 * The image's name when --name is not given: the repository's last component with its tag
 * (`app:1.0`) or digest (`app@sha256:…`), as `podman images` shows a short name; for a file,
 * its name inside (`:REF`) or the file's base name.
 */
export function defaultImageName(r: PullReference): string {
  if (r.transport === 'docker') {
    const last = r.repository.slice(r.repository.lastIndexOf('/') + 1);
    return r.digest ? `${last}@${r.digest}` : `${last}:${r.tag}`;
  }
  if (r.ref && !r.ref.startsWith('@')) return r.ref;
  const base = r.path.replace(/\/+$/, '');
  return base.slice(base.lastIndexOf('/') + 1).replace(/\.(tar(\.[a-z0-9]+)?|oci)$/, '') || 'image';
}
