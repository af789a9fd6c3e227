/**
 * The host-wide default of --userns: `userns` in $NOVABOX_ROOT/config.json,
 *
 *   { "userns": "auto" }   every container in a user namespace with an id range of its own (the default)
 *   { "userns": "host" }   none: root inside is root on the host
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequest } from '../../errors.js';
import { stateRoot } from '../../util/paths.js';
import { parseUserns, type UsernsMode } from './subid.js';

/** Pure: the default from config.json's text (undefined: no file). */
export function parseUsernsDefault(text: string | undefined, file: string): UsernsMode {
  if (text === undefined) return 'auto';
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new BadRequest(`invalid ${file}: ${(err as Error).message}`);
  }
  const v = (doc as { userns?: unknown } | null)?.userns;
  return v === undefined ? 'auto' : parseUserns(v, `"userns" in ${file}`);
}

export function readUsernsDefault(root = stateRoot()): UsernsMode {
  const file = join(root, 'config.json');
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return parseUsernsDefault(text, file);
}

/** --userns as given, else the host's default. */
export function usernsMode(given: string | undefined, root = stateRoot()): UsernsMode {
  return given === undefined ? readUsernsDefault(root) : parseUserns(given);
}
