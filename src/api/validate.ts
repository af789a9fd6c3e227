/**
 * Request body checks: small functions, each throwing one 400 that names the field, in
 * Nova's words ("Invalid input for field/attribute name. ..."). Pure.
 */
import { BadRequest } from '../errors.js';
import { clip, quote } from '../util/text.js';

export type Json = Record<string, unknown>;

function invalid(field: string, why: string): BadRequest {
  return new BadRequest(`Invalid input for field/attribute ${field}. ${why}`);
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** body[key] must be an object: `{"server": {...}}`. */
export function wrapped(body: unknown, key: string): Json {
  if (!isObject(body)) throw new BadRequest(`The request body must be a JSON object with "${key}"`);
  const v = body[key];
  if (!isObject(v)) throw invalid(key, `'${key}' is a required property and must be an object`);
  return v;
}

export interface StrOpts {
  required?: boolean;
  min?: number;
  max?: number;
  /** no white space at either end (Nova's names) */
  trimmed?: boolean;
  pattern?: RegExp;
  patternText?: string;
  nullable?: boolean;
}

export function str(o: Json, field: string, opts: StrOpts = {}): string | undefined {
  const v = o[field];
  if (v === undefined || (v === null && opts.nullable)) {
    if (opts.required) throw invalid(field, `'${field}' is a required property`);
    return undefined;
  }
  if (typeof v !== 'string') throw invalid(field, `${quote(v)} is not of type 'string'`);
  const min = opts.min ?? 0;
  if (v.length < min)
    throw invalid(field, min === 1 ? `'${clip(v)}' is too short (it must not be empty)` : `'${clip(v)}' is shorter than ${min} characters`);
  if (opts.max !== undefined && v.length > opts.max) throw invalid(field, `the value is longer than ${opts.max} characters`);
  if (opts.trimmed && v.trim() !== v) throw invalid(field, `'${clip(v)}' has leading or trailing white space`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  if (opts.trimmed && /[\x00-\x1f\x7f]/.test(v)) throw invalid(field, 'it contains control characters');
  if (opts.pattern && !opts.pattern.test(v)) throw invalid(field, `'${clip(v)}' ${opts.patternText ?? 'is not valid'}`);
  return v;
}

/** Integers; numeric strings count (Nova's flavor API accepts "512"). */
export function int(o: Json, field: string, opts: { required?: boolean; min?: number; max?: number } = {}): number | undefined {
  let v = o[field];
  if (v === undefined || v === null) {
    if (opts.required) throw invalid(field, `'${field}' is a required property`);
    return undefined;
  }
  if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) v = Number(v);
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw invalid(field, `${quote(o[field])} is not an integer`);
  if (opts.min !== undefined && v < opts.min) throw invalid(field, `${v} is less than the minimum of ${opts.min}`);
  if (opts.max !== undefined && v > opts.max) throw invalid(field, `${v} is greater than the maximum of ${opts.max}`);
  return v;
}

export function num(o: Json, field: string, opts: { min?: number; exclusiveMin?: boolean } = {}): number | undefined {
  let v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) v = Number(v);
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(field, `${quote(o[field])} is not a number`);
  if (opts.min !== undefined && (opts.exclusiveMin ? v <= opts.min : v < opts.min)) {
    throw invalid(field, `${v} must be ${opts.exclusiveMin ? 'greater than' : 'at least'} ${opts.min}`);
  }
  return v;
}

/** Booleans; Nova's strings "True"/"false"/"1"/"yes" … count. */
export function bool(o: Json, field: string): boolean | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const l = v.trim().toLowerCase();
    if (['true', '1', 'yes', 'on', 't', 'y'].includes(l)) return true;
    if (['false', '0', 'no', 'off', 'f', 'n'].includes(l)) return false;
  }
  throw invalid(field, `${quote(v)} is not a boolean`);
}

/** {string: string} with Nova's key/value rules (1–255 / 0–255 characters). */
export function metadata(o: Json, field: string, opts: { required?: boolean; maxItems?: number } = {}): Record<string, string> | undefined {
  const v = o[field];
  if (v === undefined) {
    if (opts.required) throw invalid(field, `'${field}' is a required property`);
    return undefined;
  }
  if (!isObject(v)) throw invalid(field, `${quote(v)} is not of type 'object'`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (k.length < 1 || k.length > 255) throw invalid(field, `the key '${clip(k)}' must be 1 to 255 characters`);
    if (typeof val !== 'string') throw invalid(field, `the value of '${clip(k)}' is not a string`);
    if (val.length > 255) throw invalid(field, `the value of '${clip(k)}' is longer than 255 characters`);
    out[k] = val;
  }
  return out;
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export function isUuid(v: string): boolean {
  return UUID.test(v);
}

/** The last path segment of a reference that may be a URL (`http://…/flavors/1` → `1`). */
export function refId(v: string): string {
  return v.includes('/') ? v.replace(/\/+$/, '').split('/').pop()! : v;
}

export function isIPv4(v: string): boolean {
  const p = v.split('.');
  return p.length === 4 && p.every((x) => /^\d{1,3}$/.test(x) && Number(x) <= 255 && (x === '0' || !x.startsWith('0')));
}

/** An IPv6 literal in compact form (`0000::babe:220.12.22.2` → `::babe:dc0c:1602`), or undefined. */
export function compactIPv6(v: string): string | undefined {
  let s = v;
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (m) {
    if (!isIPv4(m[2]!)) return undefined;
    const b = m[2]!.split('.').map(Number);
    s = `${m[1]}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string) => (h === '' ? [] : h.split(':'));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || fill < (halves.length === 2 ? 1 : 0)) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  const nums = groups.map((g) => parseInt(g, 16));
  // RFC 5952: the longest run (≥ 2) of zero groups becomes '::'
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (nums[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && nums[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = nums.map((n) => n.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function ipAddress(o: Json, field: string, version: 4 | 6): string | undefined {
  const v = str(o, field);
  if (v === undefined || v === '') return v;
  if (version === 4) {
    if (!isIPv4(v)) throw invalid(field, `'${clip(v)}' is not a 'ipv4'`);
    return v;
  }
  const c = compactIPv6(v);
  if (c === undefined) throw invalid(field, `'${clip(v)}' is not a 'ipv6'`);
  return c;
}

/** Only these keys, or 400 naming the first stranger (Nova: additionalProperties false). */
export function onlyKeys(o: Json, where: string, allowed: string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new BadRequest(`Additional properties are not allowed ('${clip(k)}' was unexpected) in ${where}`);
  }
}
