/**
 * A body over the limit, against `novabox serve` in its own process (in one process the
 * client and the server take turns and the race never shows): the client is still writing
 * when the 413 is ready, and must read the fault, never a reset, whatever its write speed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempRoot } from '../helpers/run-cli.js';
import { run, startServe, tokenFor, type Serve } from './serve.js';

const isRoot = process.getuid?.() === 0;
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : undefined;
const MiB = 1 << 20;

interface RawResult {
  response: string;
  /** the client wrote every byte of its body without an error */
  wroteAll: boolean;
  error?: string;
  /** ms from the last byte written to the server's close */
  closedAfterMs: number;
}

/**
 * POST a `size`-byte body over a plain socket, in `chunk`-byte writes `delayMs` apart,
 * writing all of it whatever comes back (as a client that reads only after sending does).
 */
function rawPost(url: string, path: string, token: string, size: number, chunk: number, delayMs: number): Promise<RawResult> {
  const { hostname, port } = new URL(url);
  return new Promise((done) => {
    const s = connect({ host: hostname, port: Number(port), allowHalfOpen: true });
    let response = '';
    let error: string | undefined;
    let wroteAll = false;
    let lastWrite = 0;
    s.on('data', (d) => (response += d));
    s.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    s.on('close', () => done({ response, wroteAll, error, closedAfterMs: Date.now() - lastWrite }));
    s.on('connect', async () => {
      s.write(
        `POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nX-Auth-Token: ${token}\r\nContent-Length: ${size}\r\n\r\n`,
      );
      const block = Buffer.alloc(chunk, 'x');
      for (let sent = 0; sent < size && !s.destroyed; sent += chunk) {
        const piece = block.subarray(0, Math.min(chunk, size - sent));
        if (!s.write(piece)) await new Promise((r) => s.once('drain', r).once('close', r));
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      }
      lastWrite = Date.now();
      wroteAll = !s.destroyed && error === undefined;
      s.end();
    });
  });
}

describe.skipIf(!isRoot)('serve answers an oversized body with the 413 fault, whatever the client', () => {
  let removeRoot: () => void;
  let serve: Serve;
  let token = '';
  const password = randomBytes(12).toString('hex');
  const path = '/compute/v2.1/servers';

  beforeAll(async () => {
    let root: string;
    ({ root, remove: removeRoot } = tempRoot('nbx-413-'));
    serve = await startServe(root, { NOVABOX_ADMIN_PASSWORD: password });
    token = await tokenFor(serve.url, 'admin', password, 'admin');
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    removeRoot?.();
  });

  it('30 posts of 4 MiB with Node fetch in a row: each one reads the 413 fault', async () => {
    const body = JSON.stringify({ server: { name: 'x'.repeat(4 * MiB) } });
    const got: string[] = [];
    for (let i = 0; i < 30; i++) {
      try {
        const r = await fetch(`${serve.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-auth-token': token },
          body,
        });
        const j = (await r.json()) as { overLimit?: { code: number; message: string } };
        got.push(`${r.status} ${j.overLimit?.code} ${r.headers.get('connection')}`);
        expect(j.overLimit?.message).toMatch(/too large/i);
      } catch (err) {
        got.push(String((err as Error & { cause?: Error }).cause ?? err));
      }
    }
    expect(got).toEqual(Array(30).fill('413 413 close'));
    // the API still answers on new connections
    expect((await fetch(`${serve.url}/compute/v2.1/flavors`, { headers: { 'x-auth-token': token } })).status).toBe(200);
  }, 60_000);

  it.each([
    ['fast, 1 MiB writes', 1 * MiB, 0],
    ['slow, 64 KiB every 5 ms', 64 << 10, 5],
  ])(
    'a client that writes all 4 MiB before it reads (%s) gets the fault, then a clean close',
    async (_what, chunk, delayMs) => {
      for (let i = 0; i < 3; i++) {
        const r = await rawPost(serve.url, path, token, 4 * MiB, chunk, delayMs);
        expect(r.error).toBeUndefined();
        expect(r.wroteAll).toBe(true);
        expect(r.response).toMatch(/^HTTP\/1\.1 413 /);
        expect(r.response).toMatch(/\r\nconnection: close\r\n/i);
        expect(JSON.parse(r.response.slice(r.response.indexOf('\r\n\r\n') + 4)).overLimit.code).toBe(413);
        // closed when the body ended, not at the linger bound
        expect(r.closedAfterMs).toBeLessThan(2000);
      }
    },
    60_000,
  );

  it.skipIf(!PY)(
    "Python's http.client reads it too",
    async () => {
      const script = `
import http.client, json, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]))
for i in range(5):
    c.request('POST', '${path}', body=b'x' * (4 << 20), headers={'Content-Type': 'application/json', 'X-Auth-Token': sys.argv[3]})
    r = c.getresponse()
    print(r.status, r.getheader('connection'), json.loads(r.read())['overLimit']['code'])
    c.close()
`;
      const { hostname, port } = new URL(serve.url);
      const r = await run(PY!, ['-c', script, hostname, port, token], { PATH: process.env.PATH });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toEqual(Array(5).fill('413 close 413'));
    },
    60_000,
  );
});
