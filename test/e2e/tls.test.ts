/**
 * `novabox serve --tls-cert/--tls-key`: HTTPS on loopback with a self-signed certificate
 * made here by openssl; the real `openstack` client trusts it through the `cacert` that
 * serve writes into clouds.yaml. Plain HTTP to the same port gets no API answer.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:https';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempRoot } from '../helpers/run-cli.js';
import { missingCommands, skipEachIf } from '../helpers/skip.js';
import { run, startServe, type Serve } from './serve.js';

const isRoot = process.getuid?.() === 0;
// found as scripts/test.mjs finds them: on PATH
const missing = missingCommands(['openstack', 'openssl']);

describe.skipIf(!isRoot)('novabox serve over TLS (root, real client)', () => {
  const why = missing.length ? `missing ${missing.join(', ')} (python3-openstackclient, openssl)` : undefined;
  skipEachIf(why);
  let root: string;
  let removeRoot: () => void;
  let serve: Serve;
  const password = randomBytes(12).toString('hex');

  beforeAll(async () => {
    if (why) return;
    ({ root, remove: removeRoot } = tempRoot('nbx-tls-'));
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(root, 'tls.key'),
        '-out',
        join(root, 'tls.crt'),
      ],
      { encoding: 'utf8' },
    );
    expect(made.status, made.stderr).toBe(0);
    serve = await startServe(root, { NOVABOX_ADMIN_PASSWORD: password }, [
      '--tls-cert',
      join(root, 'tls.crt'),
      '--tls-key',
      join(root, 'tls.key'),
    ]);
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    removeRoot?.();
  });

  it("serves HTTPS that the real client trusts through clouds.yaml's cacert", async () => {
    expect(serve.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const clouds = readFileSync(join(root, 'clouds.yaml'), 'utf8');
    expect(clouds).toContain(`auth_url: "${serve.url}/identity/v3"`);
    expect(clouds).toContain(`cacert: "${join(root, 'tls.crt')}"`);
    const env = {
      PATH: process.env.PATH,
      HOME: root,
      LANG: 'C.UTF-8',
      PYTHONWARNINGS: 'ignore',
      OS_CLIENT_CONFIG_FILE: join(root, 'clouds.yaml'),
      OS_CLOUD: 'novabox',
    };
    const [tok, flavors] = await Promise.all([
      run('openstack', ['token', 'issue', '-f', 'json'], env),
      run('openstack', ['flavor', 'list', '-f', 'json'], env),
    ]);
    expect(tok.code, tok.stderr).toBe(0);
    expect(JSON.parse(tok.stdout).id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(flavors.code, flavors.stderr).toBe(0);
    expect(JSON.parse(flavors.stdout).map((f: { Name: string }) => f.Name)).toContain('m1.tiny');
    // loopback with TLS: no clear-text warning
    expect(serve.output()).not.toContain('without TLS');
  }, 120_000);

  it('answers no API request in clear text, and a client that does not trust the certificate is refused', async () => {
    const plain = await fetch(`${serve.url.replace('https:', 'http:')}/identity/v3`).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(plain === 'refused' || plain === 400).toBe(true); // node's TLS server answers a plain request with 400 at most
    const untrusted = await new Promise<string>((done) => {
      const req = request(`${serve.url}/identity/v3`, (res) => done(`status ${res.statusCode}`));
      req.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
      req.end();
    });
    expect(untrusted).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('a restart with TLS rewrites an older clouds.yaml (https, cacert), and one without drops the cacert; all 0600', async () => {
    const { root: r2, remove } = tempRoot('nbx-tls2-');
    try {
      const clouds = join(r2, 'clouds.yaml');
      const env = {
        PATH: process.env.PATH,
        HOME: r2,
        LANG: 'C.UTF-8',
        PYTHONWARNINGS: 'ignore',
        OS_CLIENT_CONFIG_FILE: clouds,
        OS_CLOUD: 'novabox',
      };
      const plain = await startServe(r2, { NOVABOX_ADMIN_PASSWORD: password });
      await plain.stop();
      expect(readFileSync(clouds, 'utf8')).not.toContain('cacert');
      chmodSync(clouds, 0o644); // as an older novabox, or a user, may have left it
      const cert = join(root, 'tls.crt');
      const secure = await startServe(r2, {}, ['--tls-cert', cert, '--tls-key', join(root, 'tls.key')]);
      try {
        const text = readFileSync(clouds, 'utf8');
        expect(text).toContain(`auth_url: "${secure.url}/identity/v3"`);
        expect(text).toContain(`cacert: "${cert}"`);
        expect(text).toContain(`password: "${password}"`);
        const tok = await run('openstack', ['token', 'issue', '-f', 'value', '-c', 'id'], env);
        expect(tok.code, tok.stderr).toBe(0);
      } finally {
        await secure.stop();
      }
      const again = await startServe(r2);
      await again.stop();
      expect(readFileSync(clouds, 'utf8')).toContain(`auth_url: "${again.url}/identity/v3"`);
      expect(readFileSync(clouds, 'utf8')).not.toContain('cacert');
      // the state database holds password hashes and tokens: 0600 as clouds.yaml
      for (const f of ['clouds.yaml', 'novabox.db', 'novabox.db-wal', 'novabox.db-shm'].filter((f) => existsSync(join(r2, f)))) {
        expect((statSync(join(r2, f)).mode & 0o777).toString(8), f).toBe('600');
      }
    } finally {
      remove();
    }
  }, 120_000);

  it('the CLI still sees the same store', async () => {
    const r = await runCli(['flavor', 'list', '-f', 'value', '-c', 'Name'], { root });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('m1.tiny');
  });
});
