/**
 * An image's runtime configuration edited from the command line (`image set`, `image
 * create`): the server command (kept in the OCI config as the `io.novabox.server-cmd`
 * label), the OCI Entrypoint and Cmd, Env, WorkingDir, User and StopSignal. Pure: flags
 * are checked into a patch first (one sentence per bad value, before anything changes),
 * then applied.
 */
import { constants } from 'node:os';
import { BadRequest } from '../errors.js';
import type { ImageConfig } from '../model/records.js';

export interface ConfigPatch {
  serverCmd?: string[];
  entrypoint?: string[];
  /** the OCI Cmd: arguments after the entrypoint */
  cmd?: string[];
  /** NAME=VALUE to set (replacing NAME) */
  env?: string[];
  /** names to remove */
  unsetEnv?: string[];
  workingDir?: string;
  user?: string;
  stopSignal?: string;
}

export interface ConfigFlags {
  command?: string;
  entrypoint?: string;
  cmd?: string;
  env?: string[];
  unsetEnv?: string[];
  workdir?: string;
  user?: string;
  stopSignal?: string;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * A command as given: a JSON array of strings (exec form), or a string run by /bin/sh -c
 * (shell form), as a Dockerfile's CMD; "" is no command.
 */
export function parseCommand(flag: string, v: string): string[] {
  const t = v.trim();
  if (t === '') return [];
  if (t.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(t);
    } catch {
      throw new BadRequest(
        `invalid ${flag} ${JSON.stringify(v)}: not a JSON array (use ["prog", "arg"], or a plain string for /bin/sh -c)`,
      );
    }
    if (!Array.isArray(parsed) || !parsed.length || parsed.some((a) => typeof a !== 'string'))
      throw new BadRequest(`invalid ${flag} ${JSON.stringify(v)}: expected a non-empty JSON array of strings`);
    if ((parsed as string[]).some((a) => a.includes('\0'))) throw new BadRequest(`invalid ${flag}: it contains a NUL byte`);
    return parsed as string[];
  }
  if (v.includes('\0')) throw new BadRequest(`invalid ${flag}: it contains a NUL byte`);
  return ['/bin/sh', '-c', v];
}

/** SIGTERM, TERM, 15, SIGRTMIN+3 -> the name kept in the config ("SIGTERM", "15", "SIGRTMIN+3"). */
export function parseStopSignal(v: string): string {
  if (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 64) return v;
  const name = v.toUpperCase().startsWith('SIG') ? v.toUpperCase() : `SIG${v.toUpperCase()}`;
  if (/^SIGRTMIN\+([0-9]|1[0-5])$/.test(name) || name in constants.signals) return name;
  throw new BadRequest(`invalid --stop-signal ${JSON.stringify(v)}: expected a signal name (SIGTERM, TERM) or number (1-64)`);
}

export function checkConfigFlags(f: ConfigFlags): ConfigPatch {
  const p: ConfigPatch = {};
  if (f.command !== undefined) p.serverCmd = parseCommand('--command', f.command);
  if (f.entrypoint !== undefined) p.entrypoint = parseCommand('--entrypoint', f.entrypoint);
  if (f.cmd !== undefined) p.cmd = parseCommand('--cmd', f.cmd);
  for (const e of f.env ?? []) {
    const i = e.indexOf('=');
    if (i <= 0 || CONTROL.test(e.slice(0, i)) || /\s/.test(e.slice(0, i)))
      throw new BadRequest(`invalid --env ${JSON.stringify(e)}: expected NAME=VALUE`);
    if (e.includes('\0')) throw new BadRequest('invalid --env: it contains a NUL byte');
  }
  if (f.env?.length) p.env = f.env;
  for (const n of f.unsetEnv ?? []) if (!n || n.includes('=')) throw new BadRequest(`invalid --env ${JSON.stringify(n)}: expected a NAME`);
  if (f.unsetEnv?.length) p.unsetEnv = f.unsetEnv;
  if (f.workdir !== undefined) {
    if (!f.workdir.startsWith('/') || CONTROL.test(f.workdir))
      throw new BadRequest(`invalid --workdir ${JSON.stringify(f.workdir)}: expected an absolute path`);
    p.workingDir = f.workdir;
  }
  if (f.user !== undefined) {
    if (!/^[A-Za-z0-9_.-]*(:[A-Za-z0-9_.-]+)?$/.test(f.user))
      throw new BadRequest(`invalid --user ${JSON.stringify(f.user)}: expected USER[:GROUP] (names or ids)`);
    p.user = f.user;
  }
  if (f.stopSignal !== undefined) p.stopSignal = parseStopSignal(f.stopSignal);
  return p;
}

export function isEmptyPatch(p: ConfigPatch): boolean {
  return Object.keys(p).length === 0;
}

/**
 * The config with the patch applied. `cmd` stays what it always was (the whole default
 * command: entrypoint then its arguments), `entrypoint` the prefix `run IMAGE ARGS` keeps.
 */
export function applyConfigPatch(c: ImageConfig, p: ConfigPatch): ImageConfig {
  const oldEntry = c.entrypoint ?? [];
  const oldArgs = oldEntry.length && oldEntry.every((a, i) => c.cmd[i] === a) ? c.cmd.slice(oldEntry.length) : c.cmd;
  const entry = p.entrypoint ?? oldEntry;
  // a new entrypoint resets the arguments (as ENTRYPOINT does in a Dockerfile) unless --cmd gives them
  const args = p.cmd ?? (p.entrypoint !== undefined ? [] : oldArgs);
  let env = c.env;
  const drop = new Set([...(p.unsetEnv ?? []), ...(p.env ?? []).map((e) => e.slice(0, e.indexOf('=')))]);
  if (drop.size) env = [...env.filter((e) => !drop.has(e.split('=')[0])), ...(p.env ?? [])];
  const out: ImageConfig = {
    ...c,
    cmd: p.entrypoint !== undefined || p.cmd !== undefined ? [...entry, ...args] : c.cmd,
    env,
    workingDir: p.workingDir ?? c.workingDir,
    user: p.user ?? c.user,
  };
  if (p.entrypoint !== undefined) {
    if (entry.length) out.entrypoint = entry;
    else delete out.entrypoint;
  }
  if (p.stopSignal !== undefined) out.stopSignal = p.stopSignal;
  if (p.serverCmd !== undefined) out.serverCmd = p.serverCmd;
  return out;
}
