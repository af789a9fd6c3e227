/**
 * /etc/hosts, /etc/hostname and /etc/resolv.conf of a container on the bridge network.
 * novabox writes them under the container's state directory and the init bind-mounts
 * them over the image's files, with paths resolved inside the container's root
 * (RESOLVE_IN_ROOT), so an image's symlink can never send the mount to the host. They
 * never land in the writable layer (nor in a snapshot), as with podman.
 */
import { chownSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/fs.js';

export interface EtcFiles {
  hosts: string;
  hostname: string;
  resolv: string;
}

export function hostsText(hostname: string, address: string): string {
  return ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', `${address}\t${hostname}`, ''].join('\n');
}

/**
 * The host's resolver settings without loopback name servers (127.0.0.53 of
 * systemd-resolved means nothing inside another network namespace); `fallback` is
 * systemd-resolved's list of real upstream servers, used when nothing else is left.
 */
export function resolvText(host: string, fallback = ''): string {
  const keep = (text: string) =>
    text.split('\n').filter((l) => /^(nameserver|search|domain|options)\s/.test(l) && !/^nameserver\s+(127\.|::1\b)/.test(l));
  let lines = keep(host);
  if (!lines.some((l) => l.startsWith('nameserver'))) {
    lines = [...lines.filter((l) => !l.startsWith('nameserver')), ...keep(fallback).filter((l) => l.startsWith('nameserver'))];
  }
  return ['# written by novabox', ...lines, ''].join('\n');
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** A container's resolv.conf: the host's, without loopback name servers. */
export function serverResolvText(): string {
  return resolvText(readOr('/etc/resolv.conf'), readOr('/run/systemd/resolve/resolv.conf'));
}

/** Where a container's files live: `dir/etc/...` (pure). */
export function etcPaths(dir: string): EtcFiles {
  const etc = join(dir, 'etc');
  return { hosts: join(etc, 'hosts'), hostname: join(etc, 'hostname'), resolv: join(etc, 'resolv.conf') };
}

/** Write the three files under `dir/etc`; returns their host paths for the plan. */
/** `owner`: a container in its own user namespace, whose root may then edit them (as podman's). */
export function writeEtcFiles(dir: string, hostname: string, address: string, owner?: { uid: number; gid: number }): EtcFiles {
  const files = etcPaths(dir);
  mkdirSync(join(dir, 'etc'), { recursive: true, mode: 0o755 });
  // At a restart they are as a rule what the last start wrote: left alone then. Renaming
  // over an existing file makes ext4 (auto_da_alloc) write the new one out first, ~1 ms
  // each: a third of the boot unit's time for 100 servers.
  const put = (path: string, text: string) => {
    if (readOr(path) !== text) writeFileAtomic(path, text, 0o644, false);
  };
  put(files.hosts, hostsText(hostname, address));
  put(files.hostname, hostname + '\n');
  put(files.resolv, serverResolvText());
  if (owner) for (const f of [files.hosts, files.hostname, files.resolv]) chownSync(f, owner.uid, owner.gid);
  return files;
}
