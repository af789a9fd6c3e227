/**
 * Bounds for messages. Errors quote names, paths and values that come from images,
 * archives and requests, which may be of any size: a message is one readable line whatever
 * the input, on stderr, in an API fault and in a server's stored fault.
 */

/** The longest message printed, answered or stored. */
export const MESSAGE_MAX_CHARS = 1024;
/** How much of one value a message quotes. */
export const QUOTE_MAX_CHARS = 200;
/** How many items of a list a message names. */
export const LIST_MAX_ITEMS = 5;

/** The first `max` characters of s (never half a surrogate pair), and "…" if it was longer. */
export function clip(s: string, max = QUOTE_MAX_CHARS): string {
  if (s.length <= max) return s;
  let end = max;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return `${s.slice(0, end)}…`;
}

/** A value as JSON (a string in double quotes), clipped: `"aaaa"…` says the rest was left out. */
export function quote(v: unknown, max = QUOTE_MAX_CHARS): string {
  if (typeof v === 'string') return v.length <= max ? JSON.stringify(v) : `${JSON.stringify(clip(v, max).slice(0, -1))}…`;
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return clip(s, max);
}

/** "a, b, c" or "a, b, c, d, e and 9995 more", each item clipped. */
export function listSome(items: readonly string[], max = LIST_MAX_ITEMS): string {
  const shown = items.slice(0, max).map((i) => clip(i, 100));
  return items.length <= max ? shown.join(', ') : `${shown.join(', ')} and ${items.length - max} more`;
}

/** A whole message, bounded. */
export function boundMessage(message: string): string {
  return clip(message, MESSAGE_MAX_CHARS);
}
