import { boundMessage } from './util/text.js';

/** Stable error codes: cli/main.ts maps them to exit codes, api/faults.ts to HTTP statuses. */
export type ErrorCode = 'not-found' | 'conflict' | 'bad-request' | 'permission' | 'sys' | 'op-failed' | 'internal';

export class NovaboxError extends Error {
  readonly hint?: string;
  constructor(
    readonly code: ErrorCode,
    message: string,
    opts: { cause?: unknown; hint?: string } = {},
  ) {
    // bounded here, once: messages quote input of any size (util/text.ts)
    super(boundMessage(message), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'NovaboxError';
    this.hint = opts.hint === undefined ? undefined : boundMessage(opts.hint);
  }
}

export class NotFound extends NovaboxError {
  constructor(message: string, opts?: { cause?: unknown; hint?: string }) {
    super('not-found', message, opts);
  }
}

export class Conflict extends NovaboxError {
  constructor(message: string, opts?: { cause?: unknown; hint?: string }) {
    super('conflict', message, opts);
  }
}

export class BadRequest extends NovaboxError {
  constructor(message: string, opts?: { cause?: unknown; hint?: string }) {
    super('bad-request', message, opts);
  }
}

/** A failed system call: `mount overlay on /x: EINVAL (invalid argument)`. */
export class SysError extends NovaboxError {
  constructor(
    readonly syscall: string,
    readonly errno: string,
    readonly path?: string,
    detail?: string,
  ) {
    super('sys', `${syscall}${path ? ` ${path}` : ''}: ${errno}${detail ? ` (${detail})` : ''}`);
    this.name = 'SysError';
  }
}

/** An op of a launch plan failed inside the new container before execve. */
export class OpFailed extends NovaboxError {
  constructor(
    message: string,
    readonly opIndex: number,
    readonly errno: string,
  ) {
    super('op-failed', message);
    this.name = 'OpFailed';
  }
}

/** Turn a Node fs error (err.code = 'EBUSY', err.syscall = 'rmdir') into a SysError. */
export function fromNodeError(err: unknown, path?: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && typeof e.syscall === 'string') {
    return new SysError(e.syscall, e.code, path ?? e.path);
  }
  return err;
}
