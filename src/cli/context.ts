/**
 * What every command gets, shared by the full CLI (main.ts) and the `run`-only entry
 * (run-main.ts): the context, the root check, and errors turned into exit statuses.
 * Nothing here imports commander or a command module: the `run` bundle includes it.
 */
import { writeSync } from 'node:fs';
import { NovaboxError, type ErrorCode } from '../errors.js';
import { trace } from '../util/trace.js';
import { boundMessage } from '../util/text.js';

/**
 * One table: error code -> exit status. Documented in `novabox --help`. `run` keeps
 * podman's convention instead (125 for setup failures, 1 for novabox's own errors), but
 * bad input is 2 there too.
 */
export const EXIT_CODES: Record<ErrorCode, number> = {
  'bad-request': 2,
  'not-found': 3,
  conflict: 4,
  permission: 5,
  sys: 1,
  'op-failed': 125,
  internal: 1,
};

/** `run`'s own errors: 125 when the container could not be set up, 2 for bad input, else 1 (the command's codes are its own). */
const RUN_EXIT_CODES: Record<ErrorCode, number> = {
  'bad-request': 2,
  'not-found': 1,
  conflict: 1,
  permission: 1,
  sys: 1,
  'op-failed': 125,
  internal: 1,
};

export interface CliContext {
  /** set by a command that wants a specific exit status */
  exitCode: number;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  debug: boolean;
  /** `run` maps errors as podman does */
  runStyleExit?: boolean;
  /** the compute service on the state database, opened on first use */
  compute: () => Promise<import('../compute/servers.js').ComputeService>;
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new NovaboxError('permission', 'novabox needs root: run it with sudo (rootless mode is not supported yet)');
  }
}

function lazyCompute(): CliContext['compute'] {
  let svc: Promise<import('../compute/servers.js').ComputeService> | undefined;
  return () => {
    svc ??= (async () => {
      requireRoot();
      const { CLI_WAL_PAGES, openCompute } = await import('../compute/open.js');
      trace('compute loaded');
      const svc = openCompute({ walPages: CLI_WAL_PAGES });
      trace('store open');
      return svc;
    })();
    return svc;
  };
}

/**
 * A reader that went away (`novabox server list | head -1`) must not kill us half way:
 * a `run` still has a container to clean up. Further output is dropped; the command ends
 * normally.
 */
function toleratePipeClose(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

/**
 * Output goes to the descriptor with write(2): process.stdout would be built on the first
 * line printed (node:stream, and node:net or node:tty behind it), and Node writes to files,
 * pipes and terminals synchronously anyway, so the bytes and their order are the same. A
 * reader that went away (EPIPE) ends the output as above; a non-blocking descriptor that is
 * full (EAGAIN: set so by another process sharing it) hands the rest to the stream, which
 * waits for it.
 */
/**
 * The write(2) a command's output goes through: unit tests capture output by spying on it.
 * (A default import of node:fs for the same end cost every command ~0.2 ms: the bundle
 * copies the module's hundred properties into an ES namespace at start.)
 */
export const output = { writeSync: writeSync as (fd: number, data: string | Buffer, offset?: number) => number };

function writer(fd: 1 | 2, get: () => NodeJS.WriteStream): (s: string) => void {
  let stream: NodeJS.WriteStream | undefined;
  let closed = false;
  return (s) => {
    if (closed || s === '') return;
    if (stream) {
      stream.write(s);
      return;
    }
    let buf: Buffer | undefined;
    let done = 0;
    try {
      done = output.writeSync(fd, s);
      const total = Buffer.byteLength(s);
      if (done === total) return;
      buf = Buffer.from(s);
      while (done < buf.length) done += output.writeSync(fd, buf, done);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') {
        closed = true;
        return;
      }
      if (code !== 'EAGAIN') throw err;
      stream = get();
      toleratePipeClose(stream);
      stream.write((buf ?? Buffer.from(s)).subarray(done));
    }
  };
}

export function newContext(argv: readonly string[]): CliContext {
  return {
    exitCode: 0,
    stdout: writer(1, () => process.stdout),
    stderr: writer(2, () => process.stderr),
    debug: argv.includes('--debug'),
    compute: lazyCompute(),
  };
}

/**
 * An error as one sentence, what to do in parentheses: `an image named "x" already exists
 * (pick another name, or delete that image first)`; after a `;` when the message ends in
 * parentheses itself.
 */
export function errorLine(err: NovaboxError): string {
  if (!err.hint) return err.message;
  return err.message.endsWith(')') ? `${err.message}; ${err.hint}` : `${err.message} (${err.hint})`;
}

/** A command's error on stderr: one line, what to do in parentheses (the stack with --debug); returns the exit status. */
export function reportError(err: unknown, ctx: CliContext): number {
  if (err instanceof NovaboxError) {
    ctx.stderr(`novabox: ${errorLine(err)}\n`);
    if (ctx.debug && err.stack) ctx.stderr(err.stack + '\n');
    return (ctx.runStyleExit ? RUN_EXIT_CODES : EXIT_CODES)[err.code];
  }
  const e = err as Error;
  ctx.stderr(`novabox: ${boundMessage(e?.message ?? String(err))}\n`);
  if (ctx.debug && e?.stack) ctx.stderr(e.stack + '\n');
  return 1;
}
