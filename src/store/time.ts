import { BadRequest } from '../errors.js';

let lastUs = 0;

/**
 * Now as Nova writes times: `YYYY-MM-DDTHH:MM:SS.ffffff`, UTC, no zone suffix. The
 * microseconds never repeat or go back within a process, so rows written one after
 * another sort in that order.
 */
export function nowIso(): string {
  const sub = Number((process.hrtime.bigint() / 1000n) % 1000n);
  lastUs = Math.max(Date.now() * 1000 + sub, lastUs + 1);
  return formatUs(lastUs);
}

function formatUs(us: number): string {
  const ms = Math.floor(us / 1000);
  return new Date(ms).toISOString().slice(0, 23) + String(us % 1000).padStart(3, '0');
}

const ISO = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * An ISO 8601 time from a user (`changes-since`) in the stored form, so that the two
 * compare as strings. No zone means UTC, as in Nova.
 */
export function toStoredTime(input: string): string {
  const m = ISO.exec(input.trim());
  const time = m?.[2] === undefined ? '00:00:00' : m[2].length === 5 ? `${m[2]}:00` : m[2];
  const ms = m ? Date.parse(`${m[1]}T${time}.${(m[3] ?? '').padEnd(3, '0').slice(0, 3)}${zoneOf(m[4])}`) : NaN;
  if (!m || Number.isNaN(ms)) {
    throw new BadRequest(`invalid time "${input}": expected ISO 8601, e.g. 2024-05-01T12:00:00Z`);
  }
  const micro = Number((m[3] ?? '').padEnd(6, '0').slice(3, 6));
  return formatUs(ms * 1000 + micro);
}

function zoneOf(z: string | undefined): string {
  if (!z || z.toUpperCase() === 'Z') return 'Z';
  if (z.length === 3) return `${z}:00`;
  return z.includes(':') ? z : `${z.slice(0, 3)}:${z.slice(3)}`;
}
