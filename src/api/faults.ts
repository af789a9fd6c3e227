/**
 * Errors on the wire: one table from novabox's error codes to HTTP statuses, and the body
 * each service writes (Nova: {"<key>": {code, message}}; Keystone: {"error": {code, title,
 * message}}; Glance: {code, title, message} to a client that asks for JSON, else webob's HTML
 * page, as Glance answers python-glanceclient, which sends no Accept and cannot parse the JSON
 * form). 401 is Keystone-style on every service, as keystonemiddleware writes it in a real cloud.
 */
import { NovaboxError, type ErrorCode } from '../errors.js';
import { boundMessage } from '../util/text.js';
import { stateRoot } from '../util/paths.js';

/** An HTTP-only condition (405, 406, 413, 501 ...) with its own status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const STATUS_OF: Record<ErrorCode, number> = {
  'bad-request': 400,
  'not-found': 404,
  conflict: 409,
  permission: 403,
  sys: 500,
  'op-failed': 500,
  internal: 500,
};

/** Nova's fault keys by status. */
const NOVA_KEY: Record<number, string> = {
  400: 'badRequest',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  406: 'computeFault',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  501: 'notImplemented',
};

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  501: 'Not Implemented',
};

export type Service = 'identity' | 'compute' | 'image' | 'other';

export function serviceOf(url: string): Service {
  if (url.startsWith('/identity')) return 'identity';
  if (url.startsWith('/compute')) return 'compute';
  if (url.startsWith('/image')) return 'image';
  return 'other';
}

/**
 * A fault names the image, server or field, never a file of the host: any path under the
 * state root (a staging file, a layer, a server's directory) becomes "a file of novabox".
 */
export function withoutHostPaths(message: string): string {
  const root = stateRoot().replace(/\/+$/, '');
  if (!root || !message.includes(root)) return message;
  return message
    .split(root)
    .map((part, i) => (i === 0 ? part : `(a file of novabox)${part.replace(/^\/[^\s'":,]*/, '')}`))
    .join('');
}

/** Status and message of anything thrown by a handler. */
export function statusOf(err: unknown): { status: number; message: string; internal: boolean } {
  if (err instanceof ApiError) return { status: err.status, message: boundMessage(withoutHostPaths(err.message)), internal: false };
  if (err instanceof NovaboxError) {
    const explicit = (err as { status?: number }).status;
    const status = explicit ?? STATUS_OF[err.code];
    return { status, message: withoutHostPaths(err.message), internal: status >= 500 };
  }
  const e = err as { statusCode?: number; message?: string; code?: string };
  // fastify's own (body too large, bad media type, ...) carry a statusCode
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, message: boundMessage(plainFastifyMessage(e)), internal: false };
  }
  return { status: 500, message: 'Unexpected API Error. Please report this at the novabox issue tracker.', internal: true };
}

function plainFastifyMessage(e: { message?: string; code?: string }): string {
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return 'Request body is too large';
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return 'Unsupported Content-Type';
  return e.message ?? 'Bad request';
}

/**
 * Glance's fault as webob negotiates it: JSON only where the client's Accept ranks
 * application/json above text/html (webob offers text/html first, so `*\/*`, none, or a tie
 * is HTML). python-glanceclient (Horizon's) sends no Accept and reads every top-level JSON
 * value as an object, so a JSON fault breaks it; the HTML page is what it parses.
 */
export function glanceWantsJson(accept: string | undefined): boolean {
  if (!accept?.trim()) return false;
  const ranges = accept.split(',').map((part) => {
    const [range = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const n = q ? Number(q.slice(2)) : 1;
    return { range: range.trim(), q: Number.isFinite(n) ? n : 0 };
  });
  // the q of an offer is the one of its most specific matching range (type/sub > type/* > */*)
  const qOf = (offer: string) => {
    const type = offer.split('/')[0];
    for (const r of [offer, `${type}/*`, '*/*']) {
      const hit = ranges.filter((x) => x.range === r);
      if (hit.length) return Math.max(...hit.map((x) => x.q));
    }
    return 0;
  };
  const json = qOf('application/json');
  return json > 0 && json > qOf('text/html');
}

// text content only: quotes stay as they are (clients that strip the tags show them as typed)
const escapeHtml = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** webob's HTML page for a fault (what Glance sends a client that does not ask for JSON). */
export function glanceHtmlFault(status: number, message: string): string {
  const line = `${status} ${TITLES[status] ?? (status >= 500 ? 'Internal Server Error' : 'Error')}`;
  return `<html>\n <head>\n  <title>${line}</title>\n </head>\n <body>\n  <h1>${line}</h1>\n  ${escapeHtml(message)}<br /><br />\n\n\n\n </body>\n</html>`;
}

export function faultBody(service: Service, status: number, message: string): Record<string, unknown> {
  const title = TITLES[status] ?? (status >= 500 ? 'Internal Server Error' : 'Error');
  if (status === 401 || service === 'identity') return { error: { code: status, title, message } };
  if (service === 'compute') return { [NOVA_KEY[status] ?? 'computeFault']: { code: status, message } };
  return { code: status, title, message };
}
