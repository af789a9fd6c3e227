import { constants } from 'node:os';

/** number -> first name; built on first use (an error), not on every start */
let names: Map<number, string> | undefined;

/** 2 -> 'ENOENT' */
export function errnoName(errno: number): string {
  if (!names) {
    names = new Map();
    for (const [name, num] of Object.entries(constants.errno)) if (!names.has(num)) names.set(num, name);
  }
  return names.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/** Human text as strerror(3) has it, lower-cased: 'no such file or directory'. */
const TEXT: Record<string, string> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ESRCH: 'no such process',
  EINTR: 'interrupted system call',
  EIO: 'input/output error',
  E2BIG: 'argument list too long',
  ENOEXEC: 'exec format error',
  EBADF: 'bad file descriptor',
  ECHILD: 'no child processes',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'cannot allocate memory',
  EACCES: 'permission denied',
  EBUSY: 'device or resource busy',
  EEXIST: 'file exists',
  EXDEV: 'invalid cross-device link',
  ENODEV: 'no such device',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EINVAL: 'invalid argument',
  EMFILE: 'too many open files',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EPIPE: 'broken pipe',
  ENAMETOOLONG: 'file name too long',
  ENOSYS: 'function not implemented',
  ENOTEMPTY: 'directory not empty',
  ELOOP: 'too many levels of symbolic links',
  EPROTO: 'protocol error',
  EOPNOTSUPP: 'operation not supported',
  ETXTBSY: 'text file busy',
};

export function errnoText(errno: number): string {
  const name = errnoName(errno);
  return TEXT[name] || name;
}
