/**
 * The lingering close of an answer sent before the body ended (src/api/linger.ts), on a
 * plain Node HTTP server on loopback: it reads to the end of the body, and no further than
 * its bounds when a client keeps sending.
 */
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bodyUnread, lingerOnClose, type LingerLimits } from '../../../src/api/linger.js';

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

/** A server that refuses every body at once with a 413 and `Connection: close`, lingering within `limits`. */
async function refusing(limits: LingerLimits): Promise<{ port: number; closed: Promise<{ bytesRead: number; atMs: number }> }> {
  let closed!: (v: { bytesRead: number; atMs: number }) => void;
  const closedP = new Promise<{ bytesRead: number; atMs: number }>((r) => (closed = r));
  server = createServer((req, res) => {
    expect(bodyUnread(req)).toBe(true);
    lingerOnClose(req, limits);
    req.socket.once('close', () => closed({ bytesRead: req.socket.bytesRead, atMs: Date.now() }));
    res.writeHead(413, { 'content-type': 'application/json', connection: 'close' }).end('{"overLimit":{"code":413}}');
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, closed: closedP };
}

/** Send headers announcing `length` bytes, then `chunk`-byte writes every `everyMs` for at most `forMs`. */
function client(port: number, length: number, chunk: number, everyMs: number, forMs: number): Promise<{ response: string; sock: Socket }> {
  return new Promise((done) => {
    const sock = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let response = '';
    sock.on('data', (d) => (response += d));
    sock.on('error', () => {});
    sock.on('close', () => done({ response, sock }));
    sock.on('connect', async () => {
      sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n\r\n`);
      const end = Date.now() + forMs;
      let sent = 0;
      while (!sock.destroyed && sent < length && Date.now() < end) {
        const n = Math.min(chunk, length - sent);
        sent += n;
        if (!sock.write(Buffer.alloc(n, 'x'))) await new Promise((r) => sock.once('drain', r).once('close', r));
        if (everyMs) await new Promise((r) => setTimeout(r, everyMs));
      }
      sock.end();
    });
  });
}

describe('lingering close', () => {
  it('knows a request whose body is still to come', () => {
    const req = (headers: Record<string, string>, complete = false) => ({ headers, complete }) as never;
    expect(bodyUnread(req({}))).toBe(false);
    expect(bodyUnread(req({ 'content-length': '0' }))).toBe(false);
    expect(bodyUnread(req({ 'content-length': '10' }))).toBe(true);
    expect(bodyUnread(req({ 'content-length': '10' }, true))).toBe(false);
    expect(bodyUnread(req({ 'transfer-encoding': 'chunked' }))).toBe(true);
  });

  it('reads to the end of the body, then closes at once', async () => {
    const { port, closed } = await refusing({ maxBytes: 64 << 20, maxMs: 5000 });
    const t0 = Date.now();
    const { response } = await client(port, 2 << 20, 64 << 10, 2, 10_000);
    const c = await closed;
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expect(response).toContain('{"overLimit":{"code":413}}');
    expect(c.bytesRead).toBeGreaterThan(2 << 20);
    expect(c.atMs - t0).toBeLessThan(3000);
  });

  it('stops reading after maxBytes', async () => {
    const { port, closed } = await refusing({ maxBytes: 1 << 20, maxMs: 10_000 });
    const { response } = await client(port, 1 << 30, 256 << 10, 0, 5000);
    const c = await closed;
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expect(c.bytesRead).toBeLessThan(8 << 20);
  });

  it('stops waiting after maxMs', async () => {
    const { port, closed } = await refusing({ maxBytes: 64 << 20, maxMs: 300 });
    const t0 = Date.now();
    const { response } = await client(port, 1 << 30, 16, 20, 5000);
    const c = await closed;
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expect(c.atMs - t0).toBeGreaterThanOrEqual(250);
    expect(c.atMs - t0).toBeLessThan(2000);
  });
});
