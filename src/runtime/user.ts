import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequest } from '../errors.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

/** A file of the image as the container will see it: the topmost layer that has it. */
function readFromLayers(layerDirs: string[], path: string): string | undefined {
  for (const dir of layerDirs) {
    try {
      return readFileSync(join(dir, path), 'utf8');
    } catch {
      /* not in this layer */
    }
  }
  return undefined;
}

function table(text: string | undefined): string[][] {
  return (text ?? '')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

const ID = /^\d{1,10}$/;

/**
 * `-u/--user` as docker reads it: uid[:gid] or name[:group]; names come from the image's
 * /etc/passwd and /etc/group. A numeric uid with no passwd entry is fine (gid 0 then).
 */
export function resolveUser(spec: string, layerDirs: string[]): ResolvedUser {
  const [u = '', g] = spec === '' ? ['0'] : spec.split(':', 2);
  const passwd = table(readFromLayers(layerDirs, 'etc/passwd'));
  const groups = table(readFromLayers(layerDirs, 'etc/group'));
  const entry = ID.test(u) ? passwd.find((p) => p[2] === u) : passwd.find((p) => p[0] === u);
  if (!entry && !ID.test(u)) throw new BadRequest(`unknown user "${u}": it is not in the image's /etc/passwd`);
  const uid = entry ? Number(entry[2]) : Number(u);
  let gid = entry ? Number(entry[3]) : 0;
  if (g !== undefined) {
    if (ID.test(g)) gid = Number(g);
    else {
      const ge = groups.find((x) => x[0] === g);
      if (!ge) throw new BadRequest(`unknown group "${g}": it is not in the image's /etc/group`);
      gid = Number(ge[2]);
    }
  }
  if (uid > 0xfffffffe || gid > 0xfffffffe) throw new BadRequest(`invalid user "${spec}": id out of range`);
  const name = entry?.[0];
  const additionalGids = name
    ? groups
        .filter((x) => (x[3] ?? '').split(',').includes(name))
        .map((x) => Number(x[2]))
        .filter((x) => x !== gid)
    : [];
  return { uid, gid, additionalGids, home: entry?.[5] || (uid === 0 ? '/root' : '/') };
}
