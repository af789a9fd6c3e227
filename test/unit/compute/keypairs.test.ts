import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateEd25519, parsePublicKey } from '../../../src/compute/keypairs.js';

const ED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKJIbxvyK7Mtagad+qip7zcInA4Ky+jGmdVjUKRiA36r me@host';

function hasSshKeygen(): boolean {
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
  } catch (err) {
    return (err as { status?: number }).status !== undefined && (err as { status?: number }).status !== 127;
  }
  return true;
}

describe('public keys', () => {
  it('parses an OpenSSH line: type, blob whose embedded type matches, MD5 fingerprint as ssh-keygen -E md5', () => {
    const k = parsePublicKey(`${ED}\n`);
    expect(k.publicKey).toBe(ED);
    expect(k.fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
  });

  const blob = ED.split(' ')[1]!;
  const rsaTyped = `ssh-rsa ${blob}`; // an ed25519 blob under another type's name
  it.each([
    ['', /the public key is empty/],
    ['garbage', /not an OpenSSH public key/],
    ['ssh-ed25519 JUNK!', /not an OpenSSH public key/],
    [rsaTyped, /not an OpenSSH public key/],
    [`ssh-ed25519 ${blob.slice(0, 20)}`, /not an OpenSSH public key/],
    ['-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n', /this is a private key/],
  ])('refuses %j in one sentence', (text, re) => {
    expect(() => parsePublicKey(text)).toThrow(re);
  });

  it('generates Ed25519 in OpenSSH formats that ssh-keygen reads back', () => {
    const g = generateEd25519('Generated-by-novabox');
    expect(g.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\S+ Generated-by-novabox$/);
    expect(parsePublicKey(g.publicKey).fingerprint).toBe(g.fingerprint);
    expect(g.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END OPENSSH PRIVATE KEY-----\n$/);
    if (!hasSshKeygen()) return;
    const dir = mkdtempSync(join(tmpdir(), 'nb-key-'));
    try {
      writeFileSync(join(dir, 'id'), g.privateKey, { mode: 0o600 });
      const pub = execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'id')])
        .toString()
        .trim();
      expect(pub).toBe(g.publicKey);
      const fp = execFileSync('ssh-keygen', ['-l', '-E', 'md5', '-f', join(dir, 'id')]).toString();
      expect(fp).toContain(`MD5:${g.fingerprint}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
