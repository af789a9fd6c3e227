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
