import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/** n bytes from the kernel's CSPRNG (node:crypto costs milliseconds to load on the start path). */
export function randomBytesSync(n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync('/dev/urandom', 'r');
  try {
    readSync(fd, b, 0, n, null);
  } finally {
    closeSync(fd);
  }
  return b;
}

/** A random (version 4) UUID, from randomBytesSync: no node:crypto (OpenSSL's RNG start-up costs ~0.5 ms). */
export function randomUuid(): string {
  const b = randomBytesSync(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * 64 hex digits (a container id) from two of the kernel's random UUIDs: 244 random bits
 * from the kernel's CSPRNG, read as utf8 (one native call per file). randomBytesSync's
 * open/read/close and Buffer hex encoding cost ~0.25 ms of first use on `run`'s start path,
 * where nothing else calls them before the container starts.
 */
export function randomHex64(): string {
  try {
    const a = readFileSync('/proc/sys/kernel/random/uuid', 'utf8');
    const b = readFileSync('/proc/sys/kernel/random/uuid', 'utf8');
    const hex = (u: string) => u.slice(0, 8) + u.slice(9, 13) + u.slice(14, 18) + u.slice(19, 23) + u.slice(24, 36);
    const id = hex(a) + hex(b);
    if (id.length === 64 && a !== b) return id;
  } catch {
    /* no /proc (a chroot): below */
  }
  return randomBytesSync(32).toString('hex');
}
