/**
 * Output formatting for list and show commands, byte for byte like python-openstackclient
 * (cliff formatters over PrettyTable, PyYAML `safe_dump`, Python `json` and `csv`).
 *
 * - `formatShow(record, opts)` is cliff's ShowOne: `-f table|json|yaml|value|shell`.
 * - `formatList(columns, rows, opts)` is cliff's Lister: `-f table|json|yaml|value|csv`,
 *   with `--sort-column` sorting applied before `-c` selection, as cliff does.
 * - `-c` keeps the command's column order (not the order given on the command line),
 *   ignores unknown names, and fails with cliff's message when none is recognized.
 *
 * Values are rendered the way osc renders them:
 * - table: null -> `None`, booleans `True`/`False`, dicts `k='v', k2='v2'` (osc-lib
 *   format_dict: sorted keys, nested keys dotted), lists joined with `, ` (lists of dicts:
 *   one dict per line), numbers right-aligned when the first row holds a number.
 * - value/csv/shell: Python `str()` of the raw value (`None`, `{'k': 'v'}`, `['a', 'b']`).
 * - json: Python `json.dump` (indent 2, or `--noindent` with `, `/`: ` separators,
 *   non-ASCII escaped as \uXXXX like `ensure_ascii`).
 * - yaml: PyYAML `safe_dump(default_flow_style=False)`: show = one document per field
 *   (field order kept), list = sequence of mappings with sorted keys; nested mapping
 *   keys are sorted; strings quoted exactly as PyYAML quotes them (and also when YAML
 *   1.2 would read them as something else than a string), lines folded at 80 columns.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { BadRequest } from '../errors.js';

/** Plain text table, as the openstack client prints with -f table (but without borders). */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------
// Options

export const OUTPUT_FORMATS = ['table', 'json', 'yaml', 'value', 'csv', 'shell'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
/** The formats cliff offers for show (ShowOne) and list (Lister) commands. */
export const SHOW_FORMATS: readonly OutputFormat[] = ['json', 'shell', 'table', 'value', 'yaml'];
export const LIST_FORMATS: readonly OutputFormat[] = ['csv', 'json', 'table', 'value', 'yaml'];
export const QUOTE_MODES = ['all', 'minimal', 'none', 'nonnumeric'] as const;
export type QuoteMode = (typeof QUOTE_MODES)[number];

export interface OutputOptions {
  format: OutputFormat;
  /** -c/--column, repeatable: the columns to include (unknown names are ignored) */
  columns?: string[];
  /** accepted for callers that offer it; tables are never truncated (cliff wraps only with --max-width/--fit-width) */
  noTruncate?: boolean;
  /** csv --quote, default nonnumeric */
  quoteMode?: QuoteMode;
  /** shell --prefix for variable names */
  prefix?: string;
  /** json --noindent */
  noIndent?: boolean;
  /** table --print-empty: an empty list prints its header instead of nothing */
  printEmpty?: boolean;
  /** list --sort-column, repeatable: first one has priority, unknown ones are ignored */
  sortColumns?: string[];
  /** list --sort-ascending (default) / --sort-descending */
  sortDirection?: 'asc' | 'desc';
}

const GROUP = 'Output formatters:';

/** Adds cliff's output formatter options to a show or list command. */
export function addOutputOptions(cmd: Command, kind: 'show' | 'list'): Command {
  const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];
  const choices = kind === 'show' ? SHOW_FORMATS : LIST_FORMATS;
  const opts: Option[] = [
    new Option('-f, --format <fmt>', 'the output format, defaults to table').choices(choices).default('table'),
    new Option('-c, --column <name>', 'specify the column(s) to include, can be repeated to show multiple columns')
      .argParser(collect)
      .default([]),
    new Option('--noindent', 'whether to disable indenting the JSON'),
  ];
  if (kind === 'list') {
    opts.push(new Option('--quote <mode>', 'when to include quotes, defaults to nonnumeric').choices(QUOTE_MODES).default('nonnumeric'));
  } else {
    opts.push(new Option('--prefix <prefix>', 'add a prefix to all variable names').default(''));
  }
  opts.push(
    new Option('--max-width <integer>', 'maximum display width, <1 to disable (accepted, not applied)').argParser((v: string) => {
      if (!/^-?\d+$/.test(v.trim())) throw new InvalidArgumentError(`invalid int value: '${v}'`);
      return Number.parseInt(v, 10);
    }),
    new Option('--fit-width', 'fit the table to the display width (accepted, not applied)'),
    new Option('--print-empty', 'print empty table if there is no data to show'),
  );
  if (kind === 'list') {
    opts.push(
      new Option(
        '--sort-column <name>',
        'specify the column(s) to sort the data (columns specified first have a priority, non-existing columns are ignored), can be repeated',
      )
        .argParser(collect)
        .default([]),
      new Option('--sort-ascending', 'sort the column(s) in ascending order').conflicts('sortDescending'),
      new Option('--sort-descending', 'sort the column(s) in descending order').conflicts('sortAscending'),
    );
  }
  for (const o of opts) cmd.addOption(o.helpGroup(GROUP));
  return cmd;
}

/** Turns the options commander parsed (see addOutputOptions) into OutputOptions. */
export function outputOptionsFrom(opts: Record<string, unknown>): OutputOptions {
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);
  const format = typeof opts.format === 'string' ? opts.format : 'table';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) throw new BadRequest(`unknown output format '${format}'`);
  const quote = typeof opts.quote === 'string' ? opts.quote : 'nonnumeric';
  if (!(QUOTE_MODES as readonly string[]).includes(quote)) throw new BadRequest(`unknown quote mode '${quote}'`);
  const out: OutputOptions = {
    format: format as OutputFormat,
    columns: strings(opts.column),
    quoteMode: quote as QuoteMode,
    prefix: typeof opts.prefix === 'string' ? opts.prefix : '',
    noIndent: Boolean(opts.noindent),
    printEmpty: Boolean(opts.printEmpty),
    sortColumns: strings(opts.sortColumn),
    sortDirection: opts.sortDescending ? 'desc' : 'asc',
  };
  if (opts.noTruncate !== undefined || opts.noTrunc !== undefined) out.noTruncate = Boolean(opts.noTruncate ?? opts.noTrunc);
  return out;
}

// ---------------------------------------------------------------------------------------
// Entry points

/** One object, as `openstack <thing> show` prints it. Fields keep the record's key order. */
export function formatShow(record: Record<string, unknown>, opts: OutputOptions): string {
  const all = Object.keys(record);
  const names = selectColumns(all, opts.columns);
  const values = names.map((n) => normalize(record[n]));
  switch (opts.format) {
    case 'table':
      return prettyTable(['Field', 'Value'], names.map((n, i) => [n, values[i]]), { align: ['l', 'l'], printEmpty: false }) + '\n';
    case 'json':
      return pyJson(dictOf(names, values), opts.noIndent ? null : 2) + '\n';
    case 'yaml':
      return names.map((n, i) => yamlDump(dictOf([n], [values[i]]))).join('');
    case 'value':
      return values.map((v) => pyStr(v) + '\n').join('');
    case 'shell':
      return names
        .map((n, i) => {
          const name = n.toLowerCase().replace(/[^A-Za-z0-9_]/g, '_');
          return `${opts.prefix ?? ''}${name}="${shellEscape(pyStr(values[i]))}"\n`;
        })
        .join('');
    case 'csv':
      return csvWrite(names, [values], opts.quoteMode ?? 'nonnumeric');
    default:
      throw new BadRequest(`unknown output format '${String(opts.format)}'`);
  }
}

/** Rows of objects, as `openstack <thing> list` prints them. */
export function formatList(columns: string[], rows: Record<string, unknown>[], opts: OutputOptions): string {
  let data: PyValue[][] = rows.map((r) => columns.map((c) => normalize(r[c])));
  data = sortRows(columns, data, opts.sortColumns ?? [], opts.sortDirection === 'desc');
  const names = selectColumns(columns, opts.columns);
  const idx = names.map((n) => columns.indexOf(n));
  data = data.map((r) => idx.map((i) => r[i]));
  switch (opts.format) {
    case 'table': {
      const align: Align[] = names.map((_, i) => (data.length && isNumber(data[0][i]) ? 'r' : 'l'));
      return prettyTable(names, data, { align, printEmpty: Boolean(opts.printEmpty) }) + '\n';
    }
    case 'json':
      return pyJson(data.map((r) => dictOf(names, r)), opts.noIndent ? null : 2) + '\n';
    case 'yaml':
      return yamlDump(data.map((r) => dictOf(names, r)));
    case 'value':
      return data.map((r) => r.map(pyStr).join(' ') + '\n').join('');
    case 'csv':
      return csvWrite(names, data, opts.quoteMode ?? 'nonnumeric');
    case 'shell':
      throw new BadRequest("output format 'shell' is only available for show commands");
    default:
      throw new BadRequest(`unknown output format '${String(opts.format)}'`);
  }
}

/** cliff's -c handling: command order kept, unknown names ignored, none recognized is an error. */
function selectColumns(all: string[], wanted: string[] | undefined): string[] {
  if (!wanted || wanted.length === 0) return all;
  const picked = all.filter((c) => wanted.includes(c));
  if (picked.length === 0) {
    throw new BadRequest(`No recognized column names in ${pyRepr(wanted)}. Recognized columns are ${pyRepr(all)}.`);
  }
  return picked;
}

// ---------------------------------------------------------------------------------------
// Values: JS values mapped onto the Python values cliff formats

type PyDict = { [k: string]: PyValue };
type PyValue = null | boolean | number | bigint | string | PyValue[] | PyDict;

function isDict(v: unknown): v is PyDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNumber(v: PyValue): boolean {
  return typeof v === 'number' || typeof v === 'bigint';
}

function dictOf(names: string[], values: PyValue[]): PyDict {
  const d: PyDict = {};
  names.forEach((n, i) => {
    d[n] = values[i];
  });
  return d;
}

function normalize(v: unknown, seen: Set<object> = new Set()): PyValue {
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
    if (o instanceof Map) return dictOf([...o.keys()].map(String), [...o.values()].map((x) => normalize(x, seen)));
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
function pyNumber(n: number | bigint): string {
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

function hex(c: number, width: number): string {
  return c.toString(16).padStart(width, '0');
}

/** Python's repr(). */
function pyRepr(v: PyValue): string {
  if (typeof v === 'string') return pyStrRepr(v);
  if (Array.isArray(v)) return '[' + v.map(pyRepr).join(', ') + ']';
  if (isDict(v)) return '{' + Object.entries(v).map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`).join(', ') + '}';
  return pyStr(v);
}

/** Python's str(): what cliff's value, csv and shell formatters print. */
function pyStr(v: PyValue): string {
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
function humanReadable(v: PyValue): string {
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

function codePointCompare(a: string, b: string): number {
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
  if ((typeof a === 'number' || typeof a === 'bigint' || typeof a === 'boolean') && (typeof b === 'number' || typeof b === 'bigint' || typeof b === 'boolean')) {
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

function sortRows(columns: string[], data: PyValue[][], sortColumns: string[], reverse: boolean): PyValue[][] {
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
// Table (PrettyTable as cliff configures it: padding 1, frame border, top valign)

type Align = 'l' | 'r' | 'c';

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const ANSI = /\x1b\[[0-9;]*m|\x1b\(B/g;

function isWide(c: number): boolean {
  return (
    (c >= 0x1100 && c <= 0x115f) ||
    (c >= 0x2e80 && c <= 0x303e) ||
    (c >= 0x3041 && c <= 0x33ff) ||
    (c >= 0x3400 && c <= 0x4dbf) ||
    (c >= 0x4e00 && c <= 0x9fff) ||
    (c >= 0xa000 && c <= 0xa4cf) ||
    (c >= 0xac00 && c <= 0xd7a3) ||
    (c >= 0xf900 && c <= 0xfaff) ||
    (c >= 0xfe30 && c <= 0xfe4f) ||
    (c >= 0xff00 && c <= 0xff60) ||
    (c >= 0xffe0 && c <= 0xffe6) ||
    (c >= 0x1f300 && c <= 0x1f64f) ||
    (c >= 0x1f900 && c <= 0x1f9ff) ||
    (c >= 0x20000 && c <= 0x3fffd)
  );
}

/** Display width in terminal cells (wcwidth-like). */
function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s.replace(ANSI, '')) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || (c >= 0x7f && c < 0xa0) || /[\p{Mn}\p{Me}\p{Cf}]/u.test(ch)) continue;
    w += isWide(c) ? 2 : 1;
  }
  return w;
}

/** Python str.expandtabs(8). */
function expandTabs(s: string): string {
  if (!s.includes('\t')) return s;
  let out = '';
  let col = 0;
  for (const ch of s) {
    if (ch === '\t') {
      const n = 8 - (col % 8);
      out += ' '.repeat(n);
      col += n;
    } else {
      out += ch;
      col = ch === '\n' || ch === '\r' ? 0 : col + 1;
    }
  }
  return out;
}

function cellText(v: PyValue): string {
  return expandTabs(humanReadable(v).replace(/\r\n/g, '\n').replace(/\r/g, ' '));
}

function justify(text: string, width: number, align: Align): string {
  const len = displayWidth(text);
  const excess = width - len;
  if (align === 'l') return text + ' '.repeat(excess);
  if (align === 'r') return ' '.repeat(excess) + text;
  const half = Math.floor(excess / 2);
  if (excess % 2 === 0) return ' '.repeat(half) + text + ' '.repeat(half);
  return len % 2 ? ' '.repeat(half) + text + ' '.repeat(half + 1) : ' '.repeat(half + 1) + text + ' '.repeat(half);
}

/** PrettyTable.get_string() without the trailing newline ('' for no rows unless printEmpty). */
function prettyTable(headers: string[], rows: PyValue[][], o: { align: Align[]; printEmpty: boolean }): string {
  if (rows.length === 0 && !o.printEmpty) return '';
  const cells = rows.map((r) => r.map(cellText));
  const widths = headers.map((h, i) =>
    Math.max(displayWidth(h), ...cells.map((r) => Math.max(...r[i].split('\n').map(displayWidth)))),
  );
  const hrule = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const line = (parts: string[]) => '|' + parts.map((p, i) => ' ' + justify(p, widths[i], o.align[i] ?? 'l') + ' ').join('|') + '|';
  const lines = [hrule, headers.length ? line(headers) : '||', hrule];
  for (const r of cells) {
    const split = r.map((c) => c.split('\n'));
    const height = Math.max(1, ...split.map((l) => l.length));
    for (let y = 0; y < height; y++) lines.push(headers.length ? line(split.map((l) => l[y] ?? '')) : '||');
  }
  lines.push(hrule);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------
// JSON (Python json.dump, ensure_ascii)

function jsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => '\\u' + hex(c.charCodeAt(0), 4));
}

function pyJson(v: PyValue, indent: number | null, level = 0): string {
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

function csvWrite(header: string[], rows: PyValue[][], mode: QuoteMode): string {
  const field = (v: PyValue): string => {
    let quoted = mode === 'all' || (mode === 'nonnumeric' && !(isNumber(v) || typeof v === 'boolean'));
    const s = v === null ? '' : pyStr(v);
    let out = '';
    for (const ch of s) {
      if (ch === ',' || ch === '"' || ch === '\\' || ch === '\n' || ch === '\r') {
        if (mode === 'none' || ch === '\\') out += '\\'; // escaped, not quoted
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

function shellEscape(s: string): string {
  return s.replace(/[\\"$`]/g, (c) => '\\' + c);
}

// ---------------------------------------------------------------------------------------
// YAML (PyYAML safe_dump(default_flow_style=False): block style, indent 2, width 80,
// allow_unicode=False, sort_keys=True)

const BOOL_11 = /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/;
const FLOAT_11 =
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const INT_11 = /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
const NULL_11 = /^(?:~|null|Null|NULL|)$/;
const TIMESTAMP_11 =
  /^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$/;
const OTHER_11 = /^(?:<<|=)$/;
// YAML 1.2 core schema forms PyYAML (YAML 1.1) would leave plain
const INT_12 = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/;
const FLOAT_12 = /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

/** Would a plain scalar with this text be read as something other than a string? */
function resolvesAsNonString(s: string): boolean {
  return [BOOL_11, FLOAT_11, INT_11, NULL_11, TIMESTAMP_11, OTHER_11, INT_12, FLOAT_12].some((re) => re.test(s));
}

const BREAKS = '\n\x85\u2028\u2029';
const SPACE_OR_BREAK = '\0 \t\r\n\x85\u2028\u2029';

interface Analysis {
  empty: boolean;
  multiline: boolean;
  allowBlockPlain: boolean;
  allowSingleQuoted: boolean;
}

/** PyYAML Emitter.analyze_scalar (block context, allow_unicode=False). */
function analyzeScalar(chars: string[]): Analysis {
  if (chars.length === 0) return { empty: true, multiline: false, allowBlockPlain: true, allowSingleQuoted: true };
  let blockIndicators = false;
  let lineBreaks = false;
  let special = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  const text = chars.join('');
  if (text.startsWith('---') || text.startsWith('...')) blockIndicators = true;
  let precededByWs = true;
  let followedByWs = chars.length === 1 || SPACE_OR_BREAK.includes(chars[1]);
  let prevSpace = false;
  let prevBreak = false;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(ch)) blockIndicators = true;
      if ('?:'.includes(ch) && followedByWs) blockIndicators = true;
      if (ch === '-' && followedByWs) blockIndicators = true;
    } else {
      if (ch === ':' && followedByWs) blockIndicators = true;
      if (ch === '#' && precededByWs) blockIndicators = true;
    }
    if (BREAKS.includes(ch)) lineBreaks = true;
    const c = ch.codePointAt(0)!;
    if (!(ch === '\n' || (c >= 0x20 && c <= 0x7e))) special = true; // allow_unicode=False
    if (ch === ' ') {
      if (i === 0) leadingSpace = true;
      if (i === chars.length - 1) trailingSpace = true;
      if (prevBreak) breakSpace = true;
      prevSpace = true;
      prevBreak = false;
    } else if (BREAKS.includes(ch)) {
      if (i === 0) leadingBreak = true;
      if (i === chars.length - 1) trailingBreak = true;
      if (prevSpace) spaceBreak = true;
      prevSpace = false;
      prevBreak = true;
    } else {
      prevSpace = false;
      prevBreak = false;
    }
    precededByWs = SPACE_OR_BREAK.includes(ch);
    followedByWs = i + 2 >= chars.length || SPACE_OR_BREAK.includes(chars[i + 2]);
  }
  let allowBlockPlain = true;
  let allowSingleQuoted = true;
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) allowBlockPlain = false;
  if (breakSpace) allowBlockPlain = allowSingleQuoted = false;
  if (spaceBreak || special) allowBlockPlain = allowSingleQuoted = false;
  if (lineBreaks) allowBlockPlain = false;
  if (blockIndicators) allowBlockPlain = false;
  return { empty: false, multiline: lineBreaks, allowBlockPlain, allowSingleQuoted };
}

const DQ_ESCAPES: Record<string, string> = {
  '\0': '0',
  '\x07': 'a',
  '\x08': 'b',
  '\x09': 't',
  '\x0A': 'n',
  '\x0B': 'v',
  '\x0C': 'f',
  '\x0D': 'r',
  '\x1B': 'e',
  '"': '"',
  '\\': '\\',
  '\x85': 'N',
  '\xA0': '_',
  '\u2028': 'L',
  '\u2029': 'P',
};

/** A small port of the parts of PyYAML's Emitter that safe_dump uses for our data. */
class YamlEmitter {
  private out = '';
  private column = 0;
  private whitespace = true;
  private indention = true;
  private indent: number | null = null;
  private readonly bestIndent = 2;
  private readonly bestWidth = 80;

  dump(root: PyValue): string {
    this.node(root, { mapping: false, simpleKey: false });
    this.writeIndent(); // document end
    return this.out;
  }

  private write(s: string): void {
    this.out += s;
    this.column += Array.from(s).length;
  }

  private lineBreak(): void {
    this.whitespace = true;
    this.indention = true;
    this.column = 0;
    this.out += '\n';
  }

  private writeIndent(): void {
    const indent = this.indent ?? 0;
    if (!this.indention || this.column > indent || (this.column === indent && !this.whitespace)) this.lineBreak();
    if (this.column < indent) {
      this.whitespace = true;
      this.write(' '.repeat(indent - this.column));
    }
  }

  private indicator(ind: string, needWhitespace: boolean, whitespace = false, indention = false): void {
    this.write(this.whitespace || !needWhitespace ? ind : ' ' + ind);
    this.whitespace = whitespace;
    this.indention = this.indention && indention;
  }

  private withIndent(flow: boolean, indentless: boolean, body: () => void): void {
    const saved = this.indent;
    if (this.indent === null) this.indent = flow ? this.bestIndent : 0;
    else if (!indentless) this.indent += this.bestIndent;
    body();
    this.indent = saved;
  }

  private node(v: PyValue, ctx: { mapping: boolean; simpleKey: boolean }): void {
    if (Array.isArray(v)) {
      if (v.length === 0) return this.flowEmpty('[', ']');
      const indentless = ctx.mapping && !this.indention;
      this.withIndent(false, indentless, () => {
        for (const item of v) {
          this.writeIndent();
          this.indicator('-', true, false, true);
          this.node(item, { mapping: false, simpleKey: false });
        }
      });
    } else if (isDict(v)) {
      const keys = Object.keys(v).sort(codePointCompare);
      if (keys.length === 0) return this.flowEmpty('{', '}');
      this.withIndent(false, false, () => {
        for (const k of keys) {
          this.writeIndent();
          this.node(k, { mapping: true, simpleKey: true });
          this.indicator(':', false);
          this.node(v[k], { mapping: true, simpleKey: false });
        }
      });
    } else {
      this.withIndent(true, false, () => this.scalar(v, ctx.simpleKey));
    }
  }

  private flowEmpty(open: string, close: string): void {
    this.indicator(open, true, true);
    this.indicator(close, false);
  }

  private scalar(v: null | boolean | number | bigint | string, simpleKey: boolean): void {
    if (typeof v !== 'string') return this.plain(yamlNonString(v), false);
    const chars = Array.from(v);
    const a = analyzeScalar(chars);
    const split = !simpleKey;
    const implicit = !resolvesAsNonString(v);
    if (implicit && !(simpleKey && (a.empty || a.multiline)) && a.allowBlockPlain) return this.plain(v, split);
    if (a.allowSingleQuoted && !(simpleKey && a.multiline)) return this.singleQuoted(chars, split);
    this.doubleQuoted(chars, split);
  }

  private plain(text: string, split: boolean): void {
    if (!text) return;
    if (!this.whitespace) this.write(' ');
    this.whitespace = false;
    this.indention = false;
    const chars = Array.from(text);
    let spaces = false;
    let start = 0;
    for (let end = 0; end <= chars.length; end++) {
      const ch = end < chars.length ? chars[end] : null;
      if (spaces) {
        if (ch !== ' ') {
          if (start + 1 === end && this.column > this.bestWidth && split) {
            this.writeIndent();
            this.whitespace = false;
            this.indention = false;
          } else this.write(chars.slice(start, end).join(''));
          start = end;
        }
      } else if (ch === null || ch === ' ') {
        this.write(chars.slice(start, end).join(''));
        start = end;
      }
      if (ch !== null) spaces = ch === ' ';
    }
  }

  private singleQuoted(chars: string[], split: boolean): void {
    this.indicator("'", true);
    let spaces = false;
    let breaks = false;
    let start = 0;
    for (let end = 0; end <= chars.length; end++) {
      const ch = end < chars.length ? chars[end] : null;
      if (spaces) {
        if (ch === null || ch !== ' ') {
          if (start + 1 === end && this.column > this.bestWidth && split && start !== 0 && end !== chars.length) {
            this.writeIndent();
          } else this.write(chars.slice(start, end).join(''));
          start = end;
        }
      } else if (breaks) {
        if (ch === null || !BREAKS.includes(ch)) {
          if (chars[start] === '\n') this.lineBreak();
          // only '\n' gets here: the other line breaks are non-ASCII, hence double-quoted
          for (let i = start; i < end; i++) this.lineBreak();
          this.writeIndent();
          start = end;
        }
      } else if (ch === null || ' \n\x85\u2028\u2029'.includes(ch) || ch === "'") {
        if (start < end) {
          this.write(chars.slice(start, end).join(''));
          start = end;
        }
      }
      if (ch === "'") {
        this.write("''");
        start = end + 1;
      }
      if (ch !== null) {
        spaces = ch === ' ';
        breaks = BREAKS.includes(ch);
      }
    }
    this.indicator("'", false);
  }

  private doubleQuoted(chars: string[], split: boolean): void {
    this.indicator('"', true);
    let start = 0;
    for (let end = 0; end <= chars.length; end++) {
      const ch = end < chars.length ? chars[end] : null;
      const c = ch === null ? 0 : ch.codePointAt(0)!;
      if (ch === null || '"\\\x85\u2028\u2029\uFEFF'.includes(ch) || !(c >= 0x20 && c <= 0x7e)) {
        if (start < end) {
          this.write(chars.slice(start, end).join(''));
          start = end;
        }
        if (ch !== null) {
          const esc = DQ_ESCAPES[ch];
          const data =
            esc !== undefined
              ? '\\' + esc
              : c <= 0xff
                ? '\\x' + hex(c, 2).toUpperCase()
                : c <= 0xffff
                  ? '\\u' + hex(c, 4).toUpperCase()
                  : '\\U' + hex(c, 8).toUpperCase();
          this.write(data);
          start = end + 1;
        }
      }
      if (0 < end && end < chars.length - 1 && (ch === ' ' || start >= end) && this.column + (end - start) > this.bestWidth && split) {
        this.write(chars.slice(start, end).join('') + '\\');
        if (start < end) start = end;
        this.writeIndent();
        this.whitespace = false;
        this.indention = false;
        if (chars[start] === ' ') this.write('\\');
      }
    }
    this.indicator('"', false);
  }
}

/** PyYAML SafeRepresenter for None, bool, int, float. */
function yamlNonString(v: null | boolean | number | bigint): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  if (Number.isNaN(v)) return '.nan';
  if (!Number.isFinite(v)) return v > 0 ? '.inf' : '-.inf';
  const s = pyNumber(v).toLowerCase();
  return !Number.isInteger(v) && !s.includes('.') && s.includes('e') ? s.replace('e', '.0e') : s;
}

function yamlDump(v: PyValue): string {
  return new YamlEmitter().dump(v);
}
