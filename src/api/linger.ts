/**
 * Closing a connection whose request body was not read: the answer (a 413 for a body over
 * the limit, a 401 before an upload) goes out while the client is still sending.
 *
 * Node ends a `Connection: close` socket and destroys it as soon as the response is
 * written (`socket.destroySoon()`). Body bytes still in flight then reach a closed socket
 * and the kernel answers RST (RFC 1122 4.2.2.13); a client that writes its body while it
 * reads (Node's fetch) fails with EPIPE before it has read the fault. So close as nginx's
 * `lingering_close` and Apache's lingering close do: send the answer, end our side
 * (FIN), read and drop what the client still sends, and close when its body ends, when it
 * closes, or at a bound in bytes or time: a client may not keep the socket busy for free.
 */
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';

export interface LingerLimits {
  /** body bytes read and dropped after the answer before the socket is destroyed */
  maxBytes: number;
  /** time after the answer before the socket is destroyed */
  maxMs: number;
}

export const LINGER: LingerLimits = { maxBytes: 64 << 20, maxMs: 10_000 };

/** The request announces a body (content-length > 0, or chunked) that the parser has not seen end yet. */
export function bodyUnread(req: IncomingMessage): boolean {
  if (req.complete) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

type Closing = Socket & { destroySoon?: () => void };

/**
 * Make the socket of `req` linger when Node closes it after the response. Call before the
 * response is written; the caller also answers with `Connection: close`, so that the client
 * neither reuses the socket nor sends a next request on it.
 */
export function lingerOnClose(req: IncomingMessage, limits: LingerLimits = LINGER): void {
  const socket = req.socket as Closing;
  // light-my-request (app.inject) has no real socket: nothing to protect there
  if (!(socket instanceof Socket) || socket.destroyed || Object.hasOwn(socket, 'destroySoon')) return;
  let read = 0;
  let flushed = false;
  let timer: NodeJS.Timeout | undefined;
  // Read the body from now on: a request nobody reads is dumped once answered, and the
  // bytes of a dumped request are dropped without events, beyond any count.
  const onData = (chunk: Buffer) => {
    read += chunk.length;
    if (read > limits.maxBytes) socket.destroy();
  };
  const closeIfDone = () => {
    if (flushed && (req.complete || socket.readableEnded)) socket.destroy();
  };
  req.on('data', onData);
  req.once('end', closeIfDone);
  socket.once('end', closeIfDone);
  socket.once('close', () => {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', closeIfDone);
  });
  // what Node calls after a `Connection: close` response, in place of end-then-destroy
  socket.destroySoon = () => {
    timer = setTimeout(() => socket.destroy(), limits.maxMs);
    socket.once('finish', () => {
      flushed = true;
      closeIfDone();
    });
    if (socket.writable) socket.end();
    flushed = socket.writableFinished;
    closeIfDone();
  };
}
