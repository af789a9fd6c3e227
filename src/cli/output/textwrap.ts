/**
 * Python's textwrap.fill(text, width) with TextWrapper's defaults (break_long_words,
 * break_on_hyphens, drop_whitespace, replace_whitespace), as PrettyTable uses it to wrap
 * a cell to its column's max width (cli/output/table.ts). Python 3.11's algorithm.
 */

const WS = '\\t\\n\\x0b\\x0c\\r ';
// word_punct = [\w!"'&.,?], letter = [^\d\W] (Python's \w and \d are Unicode-aware)
const WP = `[\\p{L}\\p{M}\\p{N}_!"'&.,?]`;
const LT = '[\\p{L}\\p{M}_]';
const WORD = '[\\p{L}\\p{M}\\p{N}_]';
/**
 * Made on first use: V8 builds the Unicode property classes when the pattern is compiled
 * (~1 ms), and only a table fitted to a width wraps; this module is loaded by every command.
 */
let wordsep: RegExp | undefined;
const WORDSEP = (): RegExp =>
  (wordsep ??= new RegExp(
    `([${WS}]+` +
      `|(?<=${WP})-{2,}(?=${WORD})` +
      `|[^${WS}]+?(?:-(?:(?<=${LT}{2}-)|(?<=${LT}-${LT}-))(?=${LT}-?${LT})|(?=[${WS}]|$)|(?<=${WP})(?=-{2,}${WORD})))`,
    'gu',
  ));

/** textwrap's _split: the chunks (words, whitespace runs, hyphenated parts) of a line. */
function split(text: string): string[] {
  // re.split with one capturing group: the separators (our chunks) with empty strings between
  return text.split(WORDSEP()).filter((c) => c !== '');
}

export function wrap(text: string, width: number): string[] {
  if (width <= 0) throw new RangeError(`invalid width ${width} (must be > 0)`);
  // _munge_whitespace: tabs expanded by the caller (PrettyTable's cells are), each whitespace character a space
  // biome-ignore lint/suspicious/noControlCharactersInRegex: Python's whitespace set is what it replaces
  const chunks = split(text.replace(/[\t\n\x0b\x0c\r]/g, ' ')).reverse();
  const lines: string[] = [];
  while (chunks.length) {
    const cur: string[] = [];
    let len = 0;
    if (chunks[chunks.length - 1]!.trim() === '' && lines.length) chunks.pop();
    while (chunks.length) {
      const l = [...chunks[chunks.length - 1]!].length;
      if (len + l > width) break;
      cur.push(chunks.pop()!);
      len += l;
    }
    if (chunks.length && [...chunks[chunks.length - 1]!].length > width) {
      handleLongWord(chunks, cur, len, width);
    }
    if (cur.length && cur[cur.length - 1]!.trim() === '') cur.pop();
    if (cur.length) lines.push(cur.join(''));
  }
  return lines;
}

function handleLongWord(chunks: string[], cur: string[], len: number, width: number): void {
  const spaceLeft = width < 1 ? 1 : width - len;
  const chunk = [...chunks[chunks.length - 1]!];
  let end = spaceLeft;
  if (chunk.length > spaceLeft) {
    const hyphen = chunk.slice(0, spaceLeft).lastIndexOf('-');
    if (hyphen > 0 && chunk.slice(0, hyphen).some((c) => c !== '-')) end = hyphen + 1;
  }
  cur.push(chunk.slice(0, end).join(''));
  chunks[chunks.length - 1] = chunk.slice(end).join('');
}

/** textwrap.fill */
export function fill(text: string, width: number): string {
  return wrap(text, width).join('\n');
}
