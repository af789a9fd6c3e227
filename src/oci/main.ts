/**
 * novabox-oci: the runc command line (as containerd's shim, dockerd and podman call it)
 * over novabox's start path (runtime/oci). A third front end beside cli/ and api/: an OCI
 * container is not a Nova server, so it drives runtime directly, without the store.
 *
 *   novabox-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug] VERB ...
 *
 * Errors: one sentence on stderr, and the same line in --log (JSON lines with
 * --log-format json, which go-runc reads back when a command fails), exit status 1.
 */
import { appendFileSync, existsSync, fstatSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { constants } from 'node:os';
import { BadRequest, NovaboxError } from '../errors.js';
import {
  checkId,
  configProcess,
  containerStats,
  createContainer,
  execContainer,
  deleteContainer,
  containerPids,
  killContainer,
  listStates,
  pauseContainer,
  resumeContainer,
  ociState,
  startContainer,
  updateContainer,
} from '../runtime/oci/container.js';
import { defaultSpec, features } from '../runtime/oci/documents.js';
import { readProcess } from '../runtime/oci/plan.js';

/** A command's own exit status (exec without --detach): not an error of novabox-oci's. */
class ExitStatus extends Error {
  constructor(readonly code: number) {
    super(`exit status ${code}`);
  }
}

declare const NOVABOX_VERSION: string;
const VERSION = typeof NOVABOX_VERSION === 'string' ? NOVABOX_VERSION : '0.0.0-dev';

interface Globals {
  root: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
}

const HELP = `usage: novabox-oci [global options] <command> [options] <container-id>

An OCI runtime (runc's command line) on novabox's executor.

commands:
  create --bundle DIR [--pid-file FILE] [--console-socket SOCK] [--preserve-fds N] [--no-pivot] ID
                                             the container's init waits for start
  start ID                                   run the container's process
  state ID                                   the OCI state (JSON)
  kill [--all] ID [SIGNAL]                   signal the init (default SIGTERM)
  delete [--force] ID                        remove a stopped (or created) container
  exec [--process FILE | ID COMMAND...] [--detach] [--pid-file F] [--tty --console-socket S]
       [--cwd DIR] [--env K=V]... [--user UID[:GID]] [--cap CAP]... [--preserve-fds N]
                                             a process in a running container
  update [--resources FILE|-] ID             new memory, cpu, pids, block I/O and huge page limits (linux.resources JSON)
  events --stats ID                          one sample of its cgroup's cpu, memory and pids (JSON)
  pause ID, resume ID                        freeze and thaw its processes (cgroup freezer)
  ps [--format table|json] ID                the host pids of its processes
  list [--format table|json] [--quiet]       the containers under --root
  spec [--bundle DIR]                        write a default config.json
  features                                   the OCI features document (JSON)

global options:
  --root DIR            state directory (default /run/novabox-oci)
  --log FILE            also write errors, warnings (an rlimit lowered to what the
                        host allows) and --debug lines here
  --log-format FORMAT   text or json
  --debug               more in the log
  --systemd-cgroup      refused: cgroupfs paths only
  --version, --help
`;

/** Options of a verb: `--name value`, `--name=value`, booleans; the rest positional. */
function parseVerb(
  args: string[],
  valued: string[],
  flags: string[],
  verb: string,
  repeated: string[] = [],
  /** stop at this many positionals (exec: the command's own options follow) */
  stopAfter = Number.POSITIVE_INFINITY,
): { opts: Record<string, string | boolean>; rest: string[]; lists: Record<string, string[]> } {
  const opts: Record<string, string | boolean> = {};
  const lists: Record<string, string[]> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      rest.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      rest.push(a);
      if (rest.length >= stopAfter) {
        rest.push(...args.slice(i + 1));
        break;
      }
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.replace(/^--?/, '').slice(0, eq < 0 ? undefined : eq - (a.startsWith('--') ? 2 : 1));
    if (repeated.includes(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined) throw new BadRequest(`${verb}: --${name} needs a value`);
      (lists[name] ??= []).push(v);
    } else if (valued.includes(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined) throw new BadRequest(`${verb}: --${name} needs a value`);
      opts[name] = v;
    } else if (flags.includes(name)) {
      opts[name] = eq >= 0 ? a.slice(eq + 1) !== 'false' : true;
    } else {
      throw new BadRequest(`${verb}: unknown option ${a}`);
    }
  }
  return { opts, rest, lists };
}

function oneId(rest: string[], verb: string, more = 0): string {
  if (rest.length === 0) throw new BadRequest(`${verb}: the container id is missing`);
  if (rest.length > 1 + more) throw new BadRequest(`${verb}: unexpected argument "${rest[1 + more]}"`);
  checkId(rest[0]);
  return rest[0];
}

function parseSignal(text: string | undefined): NodeJS.Signals | number {
  if (text === undefined) return 'SIGTERM';
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < 1 || n > 64) throw new BadRequest(`kill: signal ${text} is not a signal number`);
    return n;
  }
  const name = (text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`) as NodeJS.Signals;
  if (!(name in constants.signals)) throw new BadRequest(`kill: "${text}" is not a signal`);
  return name;
}

/**
 * --preserve-fds N: fds 3 .. 3+N-1 of this process (the engine's) go to the container
 * process as its own 3 .. 3+N-1 (systemd socket activation: LISTEN_FDS). Each must be open.
 */
function preserveCount(v: string | boolean | undefined, verb: string): number {
  if (v === undefined) return 0;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 0 && n <= 200)) throw new BadRequest(`${verb}: --preserve-fds must be a number of fds from 0 to 200`);
  for (let fd = 3; fd < 3 + n; fd++) {
    try {
      fstatSync(fd);
    } catch {
      throw new BadRequest(`${verb}: --preserve-fds ${n}: fd ${fd} is not open`);
    }
  }
  return n;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function runVerb(g: Globals, verb: string, args: string[]): Promise<void> {
  switch (verb) {
    case 'create': {
      const { opts, rest } = parseVerb(
        args,
        ['bundle', 'b', 'pid-file', 'console-socket', 'preserve-fds'],
        ['no-pivot', 'no-new-keyring', 'detach', 'd'],
        verb,
      );
      const id = oneId(rest, verb);
      const preserveFds = preserveCount(opts['preserve-fds'], verb);
      // --no-new-keyring: novabox never makes a session keyring (the container keeps the caller's), which is what it asks for
      const bundle = resolve(String(opts.bundle ?? opts.b ?? '.'));
      createContainer({
        root: g.root,
        id,
        bundle,
        pidFile: typeof opts['pid-file'] === 'string' ? resolve(opts['pid-file']) : undefined,
        consoleSocket: typeof opts['console-socket'] === 'string' ? resolve(opts['console-socket']) : undefined,
        warn: (msg) => logLine(g, 'warning', msg),
        preserveFds,
        noPivot: opts['no-pivot'] === true,
      });
      return;
    }
    case 'start': {
      const { rest } = parseVerb(args, [], [], verb);
      startContainer(g.root, oneId(rest, verb));
      return;
    }
    case 'state': {
      const { rest } = parseVerb(args, [], [], verb);
      print(ociState(g.root, oneId(rest, verb)));
      return;
    }
    case 'kill': {
      const { opts, rest } = parseVerb(args, [], ['all', 'a'], verb);
      const id = oneId(rest, verb, 1);
      killContainer(g.root, id, parseSignal(rest[1]), opts.all === true || opts.a === true);
      return;
    }
    case 'delete': {
      const { opts, rest } = parseVerb(args, [], ['force', 'f'], verb);
      deleteContainer(g.root, oneId(rest, verb), opts.force === true || opts.f === true);
      return;
    }
    case 'exec': {
      const { opts, rest, lists } = parseVerb(
        args,
        ['process', 'p', 'pid-file', 'console-socket', 'cwd', 'user', 'u', 'preserve-fds', 'process-label', 'apparmor'],
        ['detach', 'd', 'tty', 't', 'no-new-privs'],
        verb,
        ['env', 'e', 'cap', 'c', 'additional-gids', 'g'],
        1,
      );
      const id = oneId(rest.slice(0, 1), verb);
      for (const o of ['process-label', 'apparmor'])
        if (opts[o] !== undefined) throw new BadRequest(`exec: --${o} is not supported by novabox-oci`);
      const preserveFds = preserveCount(opts['preserve-fds'], verb);
      const file = opts.process ?? opts.p;
      let raw: Record<string, unknown>;
      if (typeof file === 'string') {
        if (rest.length > 1) throw new BadRequest('exec: give the command in --process or on the line, not both');
        try {
          raw = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
        } catch (err) {
          throw new BadRequest(`exec: --process ${file} is not a readable JSON process: ${(err as Error).message}`);
        }
      } else {
        if (rest.length < 2) throw new BadRequest('exec: the command is missing (after the container id, or in --process)');
        raw = configProcess(g.root, id);
        raw.args = rest.slice(1);
        raw.terminal = opts.tty === true || opts.t === true;
        if (typeof opts.cwd === 'string') raw.cwd = opts.cwd;
        raw.env = [...((raw.env as string[] | undefined) ?? []), ...(lists.env ?? []), ...(lists.e ?? [])];
        const user = (opts.user ?? opts.u) as string | undefined;
        const gids = [...(lists['additional-gids'] ?? []), ...(lists.g ?? [])].map(Number);
        if (user !== undefined || gids.length) {
          const base = (raw.user as { uid?: number; gid?: number } | undefined) ?? {};
          const [uid, gid] = user === undefined ? [base.uid, base.gid] : user.split(':').map(Number);
          raw.user = { uid, gid: gid ?? 0, ...(gids.length ? { additionalGids: gids } : {}) };
        }
        const caps = [...(lists.cap ?? []), ...(lists.c ?? [])];
        if (caps.length) {
          const c = (raw.capabilities as Record<string, string[]> | undefined) ?? {};
          const add = (l: string[] | undefined) => [...new Set([...(l ?? []), ...caps])];
          raw.capabilities = { ...c, bounding: add(c.bounding), effective: add(c.effective), permitted: add(c.permitted) };
        }
        if (opts['no-new-privs'] === true) raw.noNewPrivileges = true;
      }
      const code = await execContainer(g.root, id, {
        process: readProcess(raw, 'process'),
        detach: opts.detach === true || opts.d === true,
        pidFile: typeof opts['pid-file'] === 'string' ? resolve(opts['pid-file']) : undefined,
        consoleSocket: typeof opts['console-socket'] === 'string' ? resolve(opts['console-socket']) : undefined,
        warn: (msg) => logLine(g, 'warning', msg),
        preserveFds,
      });
      if (code !== 0) throw new ExitStatus(code);
      return;
    }
    case 'update': {
      const { opts, rest } = parseVerb(
        args,
        ['resources', 'r', 'memory', 'm', 'memory-swap', 'cpu-quota', 'cpu-period', 'cpu-share', 'pids-limit'],
        [],
        verb,
      );
      const id = oneId(rest, verb);
      const file = opts.resources ?? opts.r;
      let resources: Record<string, unknown>;
      if (typeof file === 'string') {
        try {
          resources = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
        } catch (err) {
          throw new BadRequest(`update: --resources ${file} is not readable JSON: ${(err as Error).message}`);
        }
      } else {
        const num = (name: string) => {
          const v = opts[name];
          if (v === undefined) return undefined;
          const n = Number(v);
          if (!Number.isInteger(n)) throw new BadRequest(`update: --${name} must be a whole number, not "${String(v)}"`);
          return n;
        };
        resources = {
          memory: { limit: num('memory') ?? num('m'), swap: num('memory-swap') },
          cpu: { quota: num('cpu-quota'), period: num('cpu-period'), shares: num('cpu-share') },
          pids: { limit: num('pids-limit') },
        };
      }
      updateContainer(g.root, id, resources);
      return;
    }
    case 'events': {
      const { opts, rest } = parseVerb(args, ['interval'], ['stats'], verb);
      const id = oneId(rest, verb);
      if (opts.stats !== true)
        throw new BadRequest('events: only --stats (one sample) is supported by novabox-oci; the event stream is not');
      process.stdout.write(`${JSON.stringify(containerStats(g.root, id))}\n`);
      return;
    }
    case 'pause':
    case 'resume': {
      const { rest } = parseVerb(args, [], [], verb);
      (verb === 'pause' ? pauseContainer : resumeContainer)(g.root, oneId(rest, verb));
      return;
    }
    case 'ps': {
      const { opts, rest } = parseVerb(args, ['format', 'f'], [], verb);
      const id = oneId(rest, verb);
      const format = String(opts.format ?? opts.f ?? 'table');
      const pids = containerPids(g.root, id);
      if (format === 'json') process.stdout.write(`${JSON.stringify(pids)}\n`);
      else if (format === 'table') process.stdout.write(`PID\n${pids.map((p) => `${p}\n`).join('')}`);
      else throw new BadRequest(`ps: --format must be table or json, not "${format}"`);
      return;
    }
    case 'list': {
      const { opts, rest } = parseVerb(args, ['format', 'f'], ['quiet', 'q'], verb);
      if (rest.length) throw new BadRequest(`list: unexpected argument "${rest[0]}"`);
      const states = listStates(g.root);
      const format = String(opts.format ?? opts.f ?? 'table');
      if (opts.quiet === true || opts.q === true) for (const s of states) process.stdout.write(`${s.id}\n`);
      else if (format === 'json') process.stdout.write(`${JSON.stringify(states)}\n`);
      else if (format === 'table') {
        process.stdout.write('ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n');
        for (const s of states) process.stdout.write(`${s.id}\t${s.pid}\t${s.status}\t${s.bundle}\t${s.created}\t${s.owner || 'root'}\n`);
      } else throw new BadRequest(`list: --format must be table or json, not "${format}"`);
      return;
    }
    case 'spec': {
      const { opts, rest } = parseVerb(args, ['bundle', 'b'], ['rootless'], verb);
      if (rest.length) throw new BadRequest(`spec: unexpected argument "${rest[0]}"`);
      if (opts.rootless === true) throw new BadRequest('spec: --rootless is not supported by novabox-oci');
      const file = resolve(String(opts.bundle ?? opts.b ?? '.'), 'config.json');
      if (existsSync(file)) throw new BadRequest(`spec: ${file} exists already`);
      writeFileSync(file, `${JSON.stringify(defaultSpec(), null, 2)}\n`, { flag: 'wx', mode: 0o644 });
      return;
    }
    case 'features': {
      const { rest } = parseVerb(args, [], [], verb);
      if (rest.length) throw new BadRequest(`features: unexpected argument "${rest[0]}"`);
      print(features());
      return;
    }
    default:
      throw new BadRequest(`"${verb}" is not a novabox-oci command (see novabox-oci --help)`);
  }
}

/**
 * A line in --log (nowhere without it: under conmon and containerd's shim the runtime's
 * stderr is the container's own). Warnings say what novabox-oci changed of the config
 * (an rlimit this host refuses, clamped: runtime/oci/plan.ts planRlimits).
 */
function logLine(g: Globals, level: 'error' | 'warning' | 'debug', msg: string): void {
  if (!g.log) return;
  const time = new Date().toISOString();
  const line = g.logFormat === 'json' ? JSON.stringify({ level, msg, time }) : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
  try {
    appendFileSync(g.log, `${line}\n`);
  } catch {
    /* the log is the engine's: stderr still has it */
  }
}

/** The whole command line; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const g: Globals = { root: '/run/novabox-oci', logFormat: 'text', debug: false };
  let i = 0;
  try {
    for (; i < argv.length && argv[i].startsWith('-'); i++) {
      const a = argv[i];
      const eq = a.indexOf('=');
      const name = eq < 0 ? a : a.slice(0, eq);
      const value = () => {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new BadRequest(`${name} needs a value`);
        return v;
      };
      if (name === '--root') g.root = resolve(value());
      else if (name === '--log') g.log = value();
      else if (name === '--log-format') {
        const f = value();
        if (f !== 'text' && f !== 'json') throw new BadRequest(`--log-format must be text or json, not "${f}"`);
        g.logFormat = f;
      } else if (name === '--debug') g.debug = true;
      else if (name === '--systemd-cgroup') {
        throw new BadRequest(
          '--systemd-cgroup is not supported: novabox-oci manages cgroups through cgroupfs only (drop the option, or SystemdCgroup = false for containerd)',
        );
      } else if (name === '--help' || name === '-h') {
        process.stdout.write(HELP);
        return 0;
      } else if (name === '--version' || name === '-v') {
        process.stdout.write(`novabox-oci version ${VERSION}\nspec: 1.0.2\n`);
        return 0;
      } else if (name === '--criu' || name === '--rootless') {
        throw new BadRequest(`${name} is not supported by novabox-oci`);
      } else throw new BadRequest(`unknown global option ${a} (see novabox-oci --help)`);
    }
    const verb = argv[i];
    if (verb === undefined) {
      process.stderr.write(HELP);
      return 1;
    }
    if (g.debug) logLine(g, 'debug', `novabox-oci ${argv.join(' ')}`);
    await runVerb(g, verb, argv.slice(i + 1));
    return 0;
  } catch (err) {
    if (err instanceof ExitStatus) return err.code;
    const msg = err instanceof NovaboxError ? err.message : err instanceof Error ? err.message : String(err);
    const hint = err instanceof NovaboxError && err.hint ? ` (${err.hint})` : '';
    logLine(g, 'error', msg + hint);
    process.stderr.write(`novabox-oci: ${msg}${hint}\n`);
    if (g.debug && err instanceof Error && err.stack) logLine(g, 'debug', err.stack);
    return 1;
  }
}
