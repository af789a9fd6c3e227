/**
 * Passwords and tokens. Passwords: scrypt (RFC 7914) from node:crypto with a random salt,
 * stored as `scrypt$N$r$p$salt$hash`. Tokens: 32 random bytes; the database keeps their
 * SHA-256 only, so a copy of it cannot be replayed.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEY_BYTES = 32;

function scryptAsync(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((done, fail) =>
    scrypt(password, salt, KEY_BYTES, { N: n, r, p, maxmem: 256 * n * r + (1 << 20) }, (err, key) => (err ? fail(err) : done(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Constant-time check; false for any malformed stored value. */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const f = stored?.split('$');
  if (!f || f.length !== 6 || f[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(f[1]), Number(f[2]), Number(f[3])];
  if (![n, r, p].every((x) => Number.isSafeInteger(x) && x > 0) || n > 1 << 20) return false;
  const want = Buffer.from(f[5]!, 'base64');
  const got = await scryptAsync(password, Buffer.from(f[4]!, 'base64'), n, r, p);
  return want.length === got.length && timingSafeEqual(want, got);
}

/** A new token id: 256 random bits, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A password for the first admin: 24 characters from 144 random bits. */
export function newPassword(): string {
  return randomBytes(18).toString('base64url');
}
