/** PrettyTable as cliff configures it, for `-f table` (cli/output.ts). */
import { type PyValue, humanReadable } from './python.js';
import { fill } from './textwrap.js';

// ---------------------------------------------------------------------------------------
// Table (PrettyTable as cliff configures it: padding 1, frame border, top valign)

export type Align = 'l' | 'r' | 'c';

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const ANSI = /\x1b\[[0-9;]*m|\x1b\(B/g;

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

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
  // printable ASCII, nearly every cell: one column a character, and the Unicode property
  // test below (its first use compiles the property tables: ~0.5 ms a start) not needed
  if (PRINTABLE_ASCII.test(s)) return s.length;
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

/** The widest line of a cell. */
function blockWidth(text: string): number {
  return Math.max(...text.split('\n').map(displayWidth));
}

export interface TableOptions {
  align: Align[];
  printEmpty: boolean;
  /** PrettyTable's max_width per column (cliff sets them to fit a width: fitWidths) */
  maxWidths?: (number | undefined)[];
}

/** PrettyTable.get_string() without the trailing newline ('' for no rows unless printEmpty). */
export function prettyTable(headers: string[], rows: PyValue[][], o: TableOptions): string {
  if (rows.length === 0 && !o.printEmpty) return '';
  let cells = rows.map((r) => r.map(cellText));
  // _compute_widths: a column is as wide as its header, and its cells up to its max width
  const widths = headers.map((h, i) =>
    Math.max(displayWidth(h), ...cells.map((r) => Math.min(blockWidth(r[i]!), o.maxWidths?.[i] ?? Number.POSITIVE_INFINITY))),
  );
  // _stringify_row: each line of a cell wider than its column is wrapped (textwrap.fill)
  if (o.maxWidths?.some((m) => m !== undefined)) {
    cells = cells.map((r) =>
      r.map((c, i) =>
        c
          .split('\n')
          .map((l) => (displayWidth(l) > widths[i]! ? fill(l, widths[i]!) : l))
          .join('\n'),
      ),
    );
  }
  const hrule = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const line = (parts: string[]) => '|' + parts.map((p, i) => ' ' + justify(p, widths[i]!, o.align[i] ?? 'l') + ' ').join('|') + '|';
  const lines = [hrule, headers.length ? line(headers) : '||', hrule];
  for (const r of cells) {
    const split = r.map((c) => c.split('\n'));
    const height = Math.max(1, ...split.map((l) => l.length));
    for (let y = 0; y < height; y++) lines.push(headers.length ? line(split.map((l) => l[y] ?? '')) : '||');
  }
  lines.push(hrule);
  return lines.join('\n');
}

/**
 * cliff's TableFormatter._assign_max_widths: when the table is wider than `termWidth`,
 * the columns wider than an equal share get max widths that split what the narrower ones
 * leave, none below `minWidth` (8 for lists, 16 for show: a table overflows rather than
 * wrap a column narrower than that). undefined: the table fits as it is.
 */
export function fitWidths(
  headers: string[],
  rows: PyValue[][],
  o: TableOptions,
  termWidth: number,
  minWidth: number,
): (number | undefined)[] | undefined {
  const first = prettyTable(headers, rows, { ...o, maxWidths: undefined }).split('\n')[0];
  if (first === undefined || first === '' || first.length <= termWidth) return undefined;
  const widths = first
    .split('+')
    .slice(1, -1)
    .map((seg) => Math.max(0, seg.length - 2));
  const n = headers.length;
  const usable = Math.max(0, termWidth - 1 - 3 * n);
  const optimal = n === 0 ? 0 : Math.max(0, Math.floor(usable / n));
  const shrink: number[] = [];
  let remaining = usable;
  widths.forEach((w, i) => {
    if (w <= optimal) remaining -= w;
    else shrink.push(i);
  });
  if (shrink.length === 0) return undefined;
  const max: (number | undefined)[] = headers.map(() => undefined);
  const shrinkTo = Math.floor(remaining / shrink.length);
  for (const i of shrink.slice(0, -1)) {
    max[i] = Math.max(minWidth, shrinkTo);
    remaining -= shrinkTo;
  }
  max[shrink[shrink.length - 1]!] = Math.max(minWidth, remaining);
  return max;
}
