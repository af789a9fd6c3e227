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
 *
 * This file holds the options and the two entry points; the formats live by concern in
 * output/: python.ts (values, str/repr, sorting, json, csv, shell), table.ts, yaml.ts.
 */
import { fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { BadRequest } from '../errors.js';
import {
  QUOTE_MODES,
  csvWrite,
  dictOf,
  isNumber,
  normalize,
  pyJson,
  pyRepr,
  pyStr,
  shellEscape,
  sortRows,
  type PyValue,
  type QuoteMode,
} from './output/python.js';
import { fitWidths, prettyTable, type Align, type TableOptions } from './output/table.js';
import { yamlDump } from './output/yaml.js';

/** Plain text table, as the openstack client prints with -f table (but without borders). */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------
// Options

export const OUTPUT_FORMATS = ['table', 'json', 'yaml', 'value', 'csv', 'shell'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
/** The formats cliff offers for show (ShowOne) and list (Lister) commands. */
export const SHOW_FORMATS: readonly OutputFormat[] = ['json', 'shell', 'table', 'value', 'yaml'];
export const LIST_FORMATS: readonly OutputFormat[] = ['csv', 'json', 'table', 'value', 'yaml'];
export { QUOTE_MODES, type QuoteMode };

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
  /** table --max-width (or CLIFF_MAX_TERM_WIDTH): wrap columns to fit this width; < 1: none */
  maxWidth?: number;
  /** table --fit-width (or CLIFF_FIT_WIDTH=1): wrap columns to fit the terminal's width */
  fitWidth?: boolean;
  /** the width to fit with fitWidth (tests); else the terminal's, when stdout is one */
  termWidth?: number;
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
    new Option(
      '--max-width <integer>',
      'maximum display width, <1 to disable; the CLIFF_MAX_TERM_WIDTH environment variable too, the option takes precedence',
    ).argParser((v: string) => {
      if (!/^-?\d+$/.test(v.trim())) throw new InvalidArgumentError(`invalid int value: '${v}'`);
      return Number.parseInt(v, 10);
    }),
    new Option(
      '--fit-width',
      "fit the table to the terminal's width (the default when stdout is a terminal; CLIFF_FIT_WIDTH=0 turns the default off, =1 as the option)",
    ),
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
    ...tableWidth(opts),
  };
  if (opts.noTruncate !== undefined || opts.noTrunc !== undefined) out.noTruncate = Boolean(opts.noTruncate ?? opts.noTrunc);
  return out;
}

/**
 * cliff's --max-width and --fit-width with their environment variables. One difference,
 * made on purpose: fitting is on by default when stdout is a terminal (cliff needs
 * CLIFF_FIT_WIDTH=1), so tables fit a narrow terminal; output to a pipe or file is never
 * fitted unless --max-width says so, and is byte for byte openstackclient's.
 */
function tableWidth(opts: Record<string, unknown>): Pick<OutputOptions, 'maxWidth' | 'fitWidth'> {
  const env = process.env;
  const envMax = /^-?\d+$/.test(env.CLIFF_MAX_TERM_WIDTH ?? '') ? Number.parseInt(env.CLIFF_MAX_TERM_WIDTH!, 10) : 0;
  const maxWidth = typeof opts.maxWidth === 'number' ? opts.maxWidth : envMax;
  const envFit = env.CLIFF_FIT_WIDTH;
  const fitWidth = Boolean(opts.fitWidth) || (envFit !== undefined && envFit !== '' ? envFit !== '0' : true);
  return { maxWidth, fitWidth };
}

/**
 * False when `fd` cannot be a terminal: not a character device (a pipe, a file, a socket),
 * or one of the memory devices (major 1: /dev/null, /dev/zero). Only the rest ask isatty,
 * whose node:tty loads node:net and node:stream (~1.5 ms per start) when first used.
 */
export function maybeTerminal(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    // glibc's major(): bits 8-19 and 32-43 of the device number
    const major = ((st.rdev >>> 8) & 0xfff) | (Math.floor(st.rdev / 2 ** 32) & ~0xfff);
    return st.isCharacterDevice() && major !== 1;
  } catch {
    return false;
  }
}

/** cliff's utils.terminal_width(stdout): the terminal's columns, undefined when stdout is not one. */
function terminalWidth(): number | undefined {
  // isatty(1) first: process.stdout (a stream, ~1 ms to set up) only for a terminal
  if (!maybeTerminal(1) || !isatty(1)) return undefined;
  const cols = process.stdout.columns;
  return cols > 0 ? cols : undefined;
}

/** The width a table must fit, or undefined for none (cliff's _assign_max_widths, first lines). */
function fitTo(opts: OutputOptions): number | undefined {
  if ((opts.maxWidth ?? 0) > 0) return opts.maxWidth;
  if (!opts.fitWidth) return undefined;
  return opts.termWidth ?? terminalWidth();
}

function table(headers: string[], rows: PyValue[][], o: TableOptions, opts: OutputOptions, minWidth: number): string {
  const width = fitTo(opts);
  const maxWidths = width === undefined ? undefined : fitWidths(headers, rows, o, width, minWidth);
  return prettyTable(headers, rows, maxWidths ? { ...o, maxWidths } : o);
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
      return (
        table(
          ['Field', 'Value'],
          names.map((n, i) => [n, values[i]]),
          { align: ['l', 'l'], printEmpty: false },
          opts,
          16,
        ) + '\n'
      );
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
      return table(names, data, { align, printEmpty: Boolean(opts.printEmpty) }, opts, 8) + '\n';
    }
    case 'json':
      return (
        pyJson(
          data.map((r) => dictOf(names, r)),
          opts.noIndent ? null : 2,
        ) + '\n'
      );
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
