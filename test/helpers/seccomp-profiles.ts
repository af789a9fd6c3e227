/** The engines' default seccomp profiles as they write them into config.json (test/fixtures). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Docker 20.10's, as dockerd wrote it into a bundle's config.json on this host. */
export function dockerProfile(): unknown {
  return JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/docker-20.10-seccomp.json'), 'utf8'));
}

/**
 * Podman 4.3's default profile (containers-common 0.50's /usr/share/containers/seccomp.json,
 * test/fixtures) as podman writes it into config.json for its default capabilities on
 * amd64: a rule is kept when every capability it includes is held and none it excludes
 * is, and its architectures (if any) include amd64 (containers/common's setupSeccomp).
 */
const PODMAN_CAPS = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
].map((c) => `CAP_${c}`);
interface PodmanRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: unknown[] | null;
  includes?: { caps?: string[]; arches?: string[] };
  excludes?: { caps?: string[]; arches?: string[] };
}
export function podmanProfile(): unknown {
  const p = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/podman-4.3-seccomp.json'), 'utf8'));
  const keep = (r: PodmanRule) =>
    (r.includes?.caps ?? []).every((c) => PODMAN_CAPS.includes(c)) &&
    (!r.includes?.arches?.length || r.includes.arches.includes('amd64')) &&
    !(r.excludes?.caps ?? []).some((c) => PODMAN_CAPS.includes(c)) &&
    !(r.excludes?.arches ?? []).includes('amd64');
  return {
    defaultAction: p.defaultAction,
    defaultErrnoRet: p.defaultErrnoRet,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: (p.syscalls as PodmanRule[]).filter(keep).map((r) => ({
      names: r.names,
      action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args?.length ? { args: r.args } : {}),
    })),
  };
}
