/**
 * Python's view of the values cliff formats (cli/output.ts): JS values mapped onto
 * Python values, their str() and repr(), osc-lib's format_dict, Python's sort order,
 * and Python's json.dump, csv.writer and shell quoting.
 */

/** Python csv's quoting modes (QUOTE_ALL, QUOTE_MINIMAL, QUOTE_NONE, QUOTE_NONNUMERIC), as `--quote` names them. */
export const QUOTE_MODES = ['all', 'minimal', 'none', 'nonnumeric'] as const;
export type QuoteMode = (typeof QUOTE_MODES)[number];

// ---------------------------------------------------------------------------------------
// Values: JS values mapped onto the Python values cliff formats

type PyDict = { [k: string]: PyValue };
export type PyValue = null | boolean | number | bigint | string | PyValue[] | PyDict;

export function isDict(v: unknown): v is PyDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isNumber(v: PyValue): boolean {
  return typeof v === 'number' || typeof v === 'bigint';
}

export function dictOf(names: string[], values: PyValue[]): PyDict {
  const d: PyDict = {};
  names.forEach((n, i) => {
    d[n] = values[i];
  });
  return d;
}

export function normalize(v: unknown, seen: Set<object> = new Set()): PyValue {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'number':
    case 'bigint':
      return v;
    case 'symbol':
      return v.description ?? '';
    case 'function':
      return null;
  }
  const o = v as object;
  if (o instanceof Date) return Number.isNaN(o.getTime()) ? null : o.toISOString();
  if (seen.has(o)) return null;
  seen.add(o);
  try {
    if (Array.isArray(o) || o instanceof Set) return Array.from(o as Iterable<unknown>, (x) => normalize(x, seen));
    if (o instanceof Map)
      return dictOf(
        [...o.keys()].map(String),
        [...o.values()].map((x) => normalize(x, seen)),
      );
    if (Buffer.isBuffer(o)) return o.toString('utf8');
    const toJSON = (o as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return normalize(toJSON.call(o), seen);
    const d: PyDict = {};
    for (const [k, x] of Object.entries(o)) {
      if (x !== undefined) d[k] = normalize(x, seen);
    }
    return d;
  } finally {
    seen.delete(o);
  }
}

/** Python's repr()/str() of a number. */
export function pyNumber(n: number | bigint): string {
  if (typeof n === 'bigint') return n.toString();
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (Number.isInteger(n)) return Math.abs(n) >= 1e21 ? BigInt(n).toString() : String(n === 0 ? 0 : n);
  const [mant, expStr] = n.toExponential().split('e');
  const exp = Number(expStr);
  if (exp >= -4 && exp < 16) return String(n);
  const e = Math.abs(exp).toString().padStart(2, '0');
  return `${mant}e${exp < 0 ? '-' : '+'}${e}`;
}

/** Python's repr() of a str. */
function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f || (c > 0x7f && ch !== ' ' && /[\p{C}\p{Z}]/u.test(ch))) {
      out += c < 0x100 ? '\\x' + hex(c, 2) : c < 0x10000 ? '\\u' + hex(c, 4) : '\\U' + hex(c, 8);
    } else out += ch;
  }
  return out + quote;
}

export function hex(c: number, width: number): string {
  return c.toString(16).padStart(width, '0');
}

/** Python's repr(). */
export function pyRepr(v: PyValue): string {
  if (typeof v === 'string') return pyStrRepr(v);
  if (Array.isArray(v)) return '[' + v.map(pyRepr).join(', ') + ']';
  if (isDict(v))
    return (
      '{' +
      Object.entries(v)
        .map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`)
        .join(', ') +
      '}'
    );
  return pyStr(v);
}

/** Python's str(): what cliff's value, csv and shell formatters print. */
export function pyStr(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number' || typeof v === 'bigint') return pyNumber(v);
  if (typeof v === 'string') return v;
  return pyRepr(v);
}

/** osc-lib utils.format_dict: `a='1', b.c='2', d=` with sorted keys. */
function formatDict(d: PyDict, prefix?: string): string {
  const parts: string[] = [];
  for (const k of Object.keys(d).sort(codePointCompare)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const v = d[k];
    if (isDict(v)) parts.push(formatDict(v, key));
    else if (v !== null) parts.push(`${key}='${pyStr(v)}'`);
    else parts.push(`${key}=`);
  }
  return parts.join(', ');
}

/** What a table cell shows (osc's DictColumn / ListColumn human_readable()). */
export function humanReadable(v: PyValue): string {
  if (isDict(v)) return formatDict(v);
  if (Array.isArray(v)) {
    if (v.length > 0 && v.every(isDict)) return v.map((d) => formatDict(d as PyDict)).join('\n');
    return v.map(pyStr).join(', ');
  }
  return pyStr(v);
}

// ---------------------------------------------------------------------------------------
// Sorting (cliff Lister.produce_output)

class Unorderable extends Error {}

export function codePointCompare(a: string, b: string): number {
  if (a === b) return 0;
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return x.length < y.length ? -1 : x.length > y.length ? 1 : 0;
}

function pyEq(a: PyValue, b: PyValue): boolean {
  if (
    (typeof a === 'number' || typeof a === 'bigint' || typeof a === 'boolean') &&
    (typeof b === 'number' || typeof b === 'bigint' || typeof b === 'boolean')
  ) {
    return Number(a) === Number(b);
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => pyEq(x, b[i]));
  if (isDict(a) && isDict(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && pyEq(a[k], b[k]));
  }
  return a === b;
}

/** Python 3 ordering: numbers with numbers, str with str, lists element-wise; else TypeError. */
function pyCompare(a: PyValue, b: PyValue): number {
  if (pyEq(a, b)) return 0;
  const num = (v: PyValue) => typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean';
  if (num(a) && num(b)) return Number(a) < Number(b) ? -1 : 1;
  if (typeof a === 'string' && typeof b === 'string') return codePointCompare(a, b);
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = pyCompare(a[i], b[i]);
      if (c !== 0) return c;
    }
    return a.length - b.length < 0 ? -1 : 1;
  }
  throw new Unorderable();
}

export function sortRows(columns: string[], data: PyValue[][], sortColumns: string[], reverse: boolean): PyValue[][] {
  const indexes = sortColumns.filter((c) => columns.includes(c)).map((c) => columns.indexOf(c));
  for (const index of indexes.reverse()) {
    // key (value is None, value): None sorts last; unsortable types leave the order alone
    const cmp = (a: PyValue[], b: PyValue[]): number => {
      const na = a[index] === null;
      const nb = b[index] === null;
      if (na !== nb) return na ? 1 : -1;
      if (na) return 0;
      return pyCompare(a[index], b[index]);
    };
    try {
      data = [...data].sort(reverse ? (a, b) => -cmp(a, b) : cmp);
    } catch (e) {
      if (!(e instanceof Unorderable)) throw e;
    }
  }
  return data;
}

// ---------------------------------------------------------------------------------------
// JSON (Python json.dump, ensure_ascii)

function jsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => '\\u' + hex(c.charCodeAt(0), 4));
}

export function pyJson(v: PyValue, indent: number | null, level = 0): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? pyNumber(v) : 'null';
  if (typeof v === 'string') return jsonString(v);
  const entries: [string | null, PyValue][] = Array.isArray(v) ? v.map((x) => [null, x]) : Object.entries(v);
  const [open, close] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) return open + close;
  const item = ([k, x]: [string | null, PyValue]) => (k === null ? '' : jsonString(k) + ': ') + pyJson(x, indent, level + 1);
  if (indent === null) return open + entries.map(item).join(', ') + close;
  const pad = ' '.repeat(indent * (level + 1));
  return open + '\n' + entries.map((e) => pad + item(e)).join(',\n') + '\n' + ' '.repeat(indent * level) + close;
}

// ---------------------------------------------------------------------------------------
// CSV (Python csv.writer: escapechar '\\', lineterminator '\n')

export function csvWrite(header: string[], rows: PyValue[][], mode: QuoteMode): string {
  const field = (v: PyValue): string => {
    let quoted = mode === 'all' || (mode === 'nonnumeric' && !(isNumber(v) || typeof v === 'boolean'));
    const s = v === null ? '' : pyStr(v);
    let out = '';
    for (const ch of s) {
      if (ch === ',' || ch === '"' || ch === '\\' || ch === '\n' || ch === '\r') {
        if (mode === 'none' || ch === '\\')
          out += '\\'; // escaped, not quoted
        else {
          if (ch === '"') out += '"'; // doublequote
          quoted = true;
        }
      }
      out += ch;
    }
    return quoted ? `"${out}"` : out;
  };
  const row = (r: PyValue[]): string => {
    const line = r.map(field).join(',');
    // a record made of one empty field is written as "" so that it is not an empty line
    return (r.length === 1 && line === '' && mode !== 'none' ? '""' : line) + '\n';
  };
  return row(header) + rows.map(row).join('');
}

// ---------------------------------------------------------------------------------------
// Shell

export function shellEscape(s: string): string {
  return s.replace(/[\\"$`]/g, (c) => '\\' + c);
}
