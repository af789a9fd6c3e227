/**
 * Nova's keypairs: per user; imported (an OpenSSH public key, checked by decoding it) or
 * generated (RSA 2048 as Nova at 2.1: the private half is returned once, never stored).
 */
import { X509Certificate, createHash, createPublicKey, generateKeyPair, generateKeyPairSync, randomBytes } from 'node:crypto';
import { BadRequest } from '../errors.js';
import type { Store } from '../store/db.js';
import type { Keypair } from '../store/keypairs.js';
import type { Caller } from './servers.js';

const NAME = /^[A-Za-z0-9 ._-]+$/;

export function checkKeypairName(name: unknown): string {
  if (typeof name !== 'string' || name.length < 1 || name.length > 255) {
    throw new BadRequest('Keypair data is invalid: the name must be a string of 1 to 255 characters');
  }
  if (!NAME.test(name) || name.trim() !== name) {
    throw new BadRequest(
      `Keypair data is invalid: the name "${name}" may only hold letters, digits, spaces, '.', '_' and '-', and not start or end with a space`,
    );
  }
  return name;
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** SSH mpint: big-endian, a leading zero byte when the top bit is set. */
function mpint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const trimmed = b.subarray(i);
  return sshString(trimmed[0]! & 0x80 ? Buffer.concat([Buffer.alloc(1), trimmed]) : trimmed);
}

function readStrings(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < blob.length) {
    if (off + 4 > blob.length) throw new Error('truncated');
    const len = blob.readUInt32BE(off);
    if (off + 4 + len > blob.length) throw new Error('truncated');
    out.push(blob.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}

export function fingerprintOf(blob: Buffer): string {
  return createHash('md5')
    .update(blob)
    .digest('hex')
    .replace(/(..)(?!$)/g, '$1:');
}

const KEY_PARTS: Record<string, (parts: Buffer[]) => boolean> = {
  'ssh-rsa': (p) => p.length === 3 && p[2]!.length >= 128,
  'ssh-ed25519': (p) => p.length === 2 && p[1]!.length === 32,
  'ecdsa-sha2-nistp256': (p) => p.length === 3 && p[1]!.toString() === 'nistp256',
  'ecdsa-sha2-nistp384': (p) => p.length === 3 && p[1]!.toString() === 'nistp384',
  'ecdsa-sha2-nistp521': (p) => p.length === 3 && p[1]!.toString() === 'nistp521',
};

/** An OpenSSH public key line, decoded and checked; its MD5 fingerprint. */
/** An x509 certificate (PEM) as Nova takes it for a 2.2 key pair: fingerprint = SHA-1 of the DER, colon-separated. */
export function parseCertificate(text: unknown): { publicKey: string; fingerprint: string } {
  if (typeof text !== 'string' || text.trim() === '') throw new BadRequest('Keypair data is invalid: the certificate is empty');
  try {
    const cert = new X509Certificate(text);
    return { publicKey: text, fingerprint: cert.fingerprint.toLowerCase() };
  } catch {
    throw new BadRequest('Keypair data is invalid: failed to generate fingerprint (not a PEM x509 certificate)');
  }
}

export function parsePublicKey(text: unknown): { publicKey: string; fingerprint: string } {
  if (typeof text !== 'string' || text.trim() === '') throw new BadRequest('Keypair data is invalid: the public key is empty');
  if (text.includes('PRIVATE KEY-----'))
    throw new BadRequest('Keypair data is invalid: this is a private key; give its public half (the .pub file)');
  const [type, b64] = text.trim().split(/\s+/);
  const bad = () => new BadRequest(`Keypair data is invalid: failed to generate fingerprint (not an OpenSSH public key of a known type)`);
  if (!type || !b64 || !KEY_PARTS[type] || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw bad();
  const blob = Buffer.from(b64, 'base64');
  let parts: Buffer[];
  try {
    parts = readStrings(blob);
  } catch {
    throw bad();
  }
  if (parts[0]?.toString() !== type || !KEY_PARTS[type](parts)) throw bad();
  return { publicKey: text.trim(), fingerprint: fingerprintOf(blob) };
}

/** A new RSA pair: OpenSSH public key, PKCS#1 PEM private key (what Nova returns at 2.1). */
export async function generateRsa(comment: string): Promise<{ publicKey: string; privateKey: string; fingerprint: string }> {
  const { publicKey, privateKey } = await new Promise<{ publicKey: string; privateKey: string }>((done, fail) =>
    generateKeyPair(
      'rsa',
      {
        modulusLength: 2048,
        publicExponent: 0x10001,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      },
      (err: Error | null, pub: string, priv: string) => (err ? fail(err) : done({ publicKey: pub, privateKey: priv })),
    ),
  );
  const jwk = createPublicKey(publicKey).export({ format: 'jwk' });
  const blob = Buffer.concat([
    sshString(Buffer.from('ssh-rsa')),
    mpint(Buffer.from(jwk.e!, 'base64url')),
    mpint(Buffer.from(jwk.n!, 'base64url')),
  ]);
  return { publicKey: `ssh-rsa ${blob.toString('base64')} ${comment}`, privateKey, fingerprint: fingerprintOf(blob) };
}

/**
 * A new Ed25519 pair in OpenSSH's own formats: the public key line and an unencrypted
 * "OPENSSH PRIVATE KEY" (openssh-key-v1, PROTOCOL.key in OpenSSH's sources), as
 * `ssh-keygen -t ed25519 -N ''` writes them.
 */
export function generateEd25519(comment: string): { publicKey: string; privateKey: string; fingerprint: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const type = Buffer.from('ssh-ed25519');
  const blob = Buffer.concat([sshString(type), sshString(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([
    check,
    check,
    sshString(type),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(Buffer.from(comment)),
  ]);
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString(Buffer.from('none')),
    sshString(Buffer.from('none')),
    sshString(Buffer.alloc(0)),
    count,
    sshString(blob),
    sshString(secret),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return {
    publicKey: `ssh-ed25519 ${blob.toString('base64')} ${comment}`,
    privateKey: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
    fingerprint: fingerprintOf(blob),
  };
}

export const MAX_KEYPAIRS = 100;

export class KeypairService {
  constructor(private readonly store: Store) {}

  list(caller: Caller): Keypair[] {
    return this.store.keypairs.list(caller.userId);
  }

  get(name: string, caller: Caller): Keypair {
    return this.store.keypairs.get(caller.userId, name);
  }

  /** Imports `publicKey`, or generates a pair and returns its private half once. */
  /** `type` (microversion 2.2): ssh, or x509 (a PEM certificate to import; novabox generates ssh keys only). */
  /** `generate`: the algorithm of a generated pair (the API: RSA as Nova; the CLI: Ed25519, as ssh-keygen's default). */
  async create(
    name: unknown,
    publicKey: unknown,
    caller: Caller,
    type: unknown = 'ssh',
    generate: 'rsa' | 'ed25519' = 'rsa',
  ): Promise<Keypair & { privateKey?: string }> {
    const n = checkKeypairName(name);
    if (type !== 'ssh' && type !== 'x509')
      throw new BadRequest(`Invalid input for field/attribute type. Value: ${JSON.stringify(type)}. It must be 'ssh' or 'x509'`);
    if (this.store.keypairs.count(caller.userId) >= MAX_KEYPAIRS) {
      throw new BadRequest(`Quota exceeded, too many key pairs (at most ${MAX_KEYPAIRS})`);
    }
    if (type === 'x509') {
      if (publicKey === undefined || publicKey === null)
        throw new BadRequest('Keypair data is invalid: novabox generates ssh key pairs only; import an x509 certificate as public_key');
      return this.store.keypairs.insert({ userId: caller.userId, name: n, type: 'x509', ...parseCertificate(publicKey) });
    }
    if (publicKey !== undefined && publicKey !== null) {
      const k = parsePublicKey(publicKey);
      return this.store.keypairs.insert({ userId: caller.userId, name: n, type: 'ssh', ...k });
    }
    const g = generate === 'ed25519' ? generateEd25519('Generated-by-novabox') : await generateRsa('Generated-by-novabox');
    const k = this.store.keypairs.insert({
      userId: caller.userId,
      name: n,
      type: 'ssh',
      publicKey: g.publicKey,
      fingerprint: g.fingerprint,
    });
    return { ...k, privateKey: g.privateKey };
  }

  delete(name: string, caller: Caller): void {
    this.store.keypairs.delete(caller.userId, name);
  }
}
