import { closeSync, openSync, readSync } from 'node:fs';

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
