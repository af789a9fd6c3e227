import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatList, formatShow } from '../../../src/cli/output.js';
import { fill } from '../../../src/cli/output/textwrap.js';

// cliff's --max-width / --fit-width: columns wider than an equal share of the width get
// max widths, and PrettyTable wraps their cells with Python's textwrap.fill.

describe('textwrap.fill (Python 3.11)', () => {
  it.each<[string, number, string]>([
    ['hello world', 5, 'hello\nworld'],
    ['a-very-long-hyphenated-word here', 10, 'a-very-\nlong-hyphe\nnated-word\nhere'],
    ['abcdefghijklmnop', 5, 'abcde\nfghij\nklmno\np'],
    ['  leading spaces kept', 8, 'leading\nspaces\nkept'],
    ['x  y', 1, 'x\ny'],
    ['10.0.0.2, 10.0.0.3, 10.0.0.4', 12, '10.0.0.2,\n10.0.0.3,\n10.0.0.4'],
    ['', 4, ''],
  ])('fill(%j, %d)', (text, width, want) => {
    expect(fill(text, width)).toBe(want);
  });
});

describe('--max-width', () => {
  const rows = [
    { ID: 'b2a4c6e8-0000-4000-8000-000000000001', Name: 'web-1', Status: 'ACTIVE', Networks: 'novabox0=10.88.0.2, 10.88.0.3' },
    { ID: 'b2a4c6e8-0000-4000-8000-000000000002', Name: 'db', Status: 'SHUTOFF', Networks: '' },
  ];
  const cols = ['ID', 'Name', 'Status', 'Networks'];

  it('leaves a table that fits alone, and wraps the widest columns of one that does not', () => {
    const wide = formatList(cols, rows, { format: 'table', maxWidth: 200 });
    expect(wide).toBe(formatList(cols, rows, { format: 'table' }));
    const narrow = formatList(cols, rows, { format: 'table', maxWidth: 60 });
    const lines = narrow.trimEnd().split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(60);
    expect(narrow).toContain('| b2a4c6e8-0000-    | web-1 | ACTIVE  | novabox0=10.88.0.2 |');
  });

  it('fits a show table too, no column below 16', () => {
    const out = formatShow({ id: 'x'.repeat(40), name: 'web' }, { format: 'table', maxWidth: 30 });
    // 30 columns: 23 for text, the Field column's 5 leave 18 for the value
    expect(out.split('\n')[0]).toBe(`+-------+${'-'.repeat(20)}+`);
    // 20 would leave 8: the value column keeps 16 and the table overflows, as cliff's does
    expect(formatShow({ id: 'x'.repeat(40) }, { format: 'table', maxWidth: 20 }).split('\n')[0]).toBe(`+-------+${'-'.repeat(18)}+`);
  });

  it('--fit-width without a terminal (a pipe: tests) changes nothing, as cliff', () => {
    expect(formatList(cols, rows, { format: 'table', fitWidth: true })).toBe(formatList(cols, rows, { format: 'table' }));
    expect(formatList(cols, rows, { format: 'table', fitWidth: true, termWidth: 60 })).toBe(
      formatList(cols, rows, { format: 'table', maxWidth: 60 }),
    );
  });
});

// The same cases through Debian's cliff and prettytable (python3-openstackclient pulls
// them in), byte for byte.
const oracle = join(__dirname, '../../fixtures/cliff-table.py');
const hasCliff = spawnSync('/usr/bin/python3', ['-c', 'import cliff.formatters.table'], { stdio: 'ignore' }).status === 0;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe.skipIf(!hasCliff)('byte for byte against cliff (python3-cliff, python3-prettytable)', () => {
  it('300 random tables, widths 20 to 120', () => {
    const r = rng(42);
    const words = [
      'web',
      'db-1',
      'ACTIVE',
      '10.88.0.12,',
      'a-hyphenated-name',
      'x',
      'novabox0=10.88.0.2',
      'SHUTOFF',
      '',
      'properties=a=b,c=d',
    ];
    const text = () =>
      Array.from({ length: Math.floor(r() * 8) }, () => words[Math.floor(r() * words.length)])
        .join(r() < 0.8 ? ' ' : '')
        .concat(r() < 0.1 ? '\nsecond line of the cell' : '');
    const cases = Array.from({ length: 300 }, (_, i) => {
      const kind = i % 3 === 0 ? 'show' : 'list';
      const headers =
        kind === 'show'
          ? ['Field', 'Value']
          : Array.from({ length: 1 + Math.floor(r() * 6) }, (_, k) => `Col${k}${'x'.repeat(Math.floor(r() * 6))}`);
      const rows = Array.from({ length: 1 + Math.floor(r() * 5) }, (_, k) =>
        kind === 'show' ? [`field_${k}`, text()] : headers.map(() => text()),
      );
      return { kind, headers, rows, max_width: 20 + Math.floor(r() * 100) };
    });
    const res = spawnSync('/usr/bin/python3', [oracle], { input: cases.map((c) => JSON.stringify(c)).join('\n') + '\n', encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
    const want = res.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as string);
    const got = cases.map((c) =>
      c.kind === 'list'
        ? formatList(
            c.headers,
            c.rows.map((row) => Object.fromEntries(c.headers.map((h, k) => [h, row[k]]))),
            { format: 'table', maxWidth: c.max_width },
          )
        : formatShow(Object.fromEntries(c.rows.map((row) => [row[0], row[1]])), { format: 'table', maxWidth: c.max_width }),
    );
    const bad = got.map((g, i) => (g === want[i] ? -1 : i)).filter((i) => i >= 0);
    expect(bad.slice(0, 3).map((i) => ({ case: cases[i], got: got[i], want: want[i] }))).toEqual([]);
  });
});
