import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  addOutputOptions,
  formatList,
  formatShow,
  formatTable,
  LIST_FORMATS,
  maybeTerminal,
  OUTPUT_FORMATS,
  outputOptionsFrom,
  SHOW_FORMATS,
  type OutputFormat,
  type OutputOptions,
  type QuoteMode,
} from '../../../src/cli/output.js';
import { closeSync, existsSync, openSync } from 'node:fs';
import { NovaboxError } from '../../../src/errors.js';

// Expected strings for json, yaml, csv and value were produced by Python's json, PyYAML
// safe_dump(default_flow_style=False) and csv.writer with cliff's settings; tables follow
// PrettyTable as cliff configures it.

const server = {
  id: 'abc',
  name: 'web-1',
  flavor: null,
  locked: false,
  vcpus: 2,
  properties: { b: '2', a: 'x' },
  addresses: ['10.0.0.2', '::1'],
};

const show = (format: OutputFormat, extra: Partial<OutputOptions> = {}) => formatShow(server, { format, ...extra });

describe('formatShow: every format', () => {
  it.each<[OutputFormat, Partial<OutputOptions>, string]>([
    [
      'table',
      {},
      [
        '+------------+---------------+',
        '| Field      | Value         |',
        '+------------+---------------+',
        '| id         | abc           |',
        '| name       | web-1         |',
        '| flavor     | None          |',
        '| locked     | False         |',
        '| vcpus      | 2             |',
        "| properties | a='x', b='2'  |",
        '| addresses  | 10.0.0.2, ::1 |',
        '+------------+---------------+',
        '',
      ].join('\n'),
    ],
    [
      'json',
      {},
      '{\n  "id": "abc",\n  "name": "web-1",\n  "flavor": null,\n  "locked": false,\n  "vcpus": 2,\n' +
        '  "properties": {\n    "b": "2",\n    "a": "x"\n  },\n  "addresses": [\n    "10.0.0.2",\n    "::1"\n  ]\n}\n',
    ],
    [
      'json',
      { noIndent: true },
      '{"id": "abc", "name": "web-1", "flavor": null, "locked": false, "vcpus": 2, "properties": {"b": "2", "a": "x"}, "addresses": ["10.0.0.2", "::1"]}\n',
    ],
    [
      'yaml',
      {},
      "id: abc\nname: web-1\nflavor: null\nlocked: false\nvcpus: 2\nproperties:\n  a: x\n  b: '2'\naddresses:\n- 10.0.0.2\n- ::1\n",
    ],
    ['value', {}, "abc\nweb-1\nNone\nFalse\n2\n{'b': '2', 'a': 'x'}\n['10.0.0.2', '::1']\n"],
    [
      'shell',
      {},
      'id="abc"\nname="web-1"\nflavor="None"\nlocked="False"\nvcpus="2"\nproperties="{\'b\': \'2\', \'a\': \'x\'}"\naddresses="[\'10.0.0.2\', \'::1\']"\n',
    ],
    [
      'shell',
      { prefix: 'srv_' },
      'srv_id="abc"\nsrv_name="web-1"\nsrv_flavor="None"\nsrv_locked="False"\nsrv_vcpus="2"\nsrv_properties="{\'b\': \'2\', \'a\': \'x\'}"\nsrv_addresses="[\'10.0.0.2\', \'::1\']"\n',
    ],
    [
      'csv',
      {},
      '"id","name","flavor","locked","vcpus","properties","addresses"\n"abc","web-1","",False,2,"{\'b\': \'2\', \'a\': \'x\'}","[\'10.0.0.2\', \'::1\']"\n',
    ],
  ])('%s %j', (format, extra, expected) => {
    expect(show(format, extra)).toBe(expected);
  });

  it.each<[OutputFormat, string]>([
    ['table', '\n'], // PrettyTable with print_empty=False prints nothing, cliff adds the newline
    ['json', '{}\n'],
    ['yaml', ''], // cliff dumps one YAML document per field
    ['value', ''],
    ['shell', ''],
  ])('an empty record in %s', (format, expected) => {
    expect(formatShow({}, { format })).toBe(expected);
  });
});

const columns = ['ID', 'Name', 'Size', 'Note'];
const rows = [
  { ID: 'b', Name: 'two', Size: 10, Note: 'x\ny' },
  { ID: 'a', Name: null, Size: 2, Note: 'ok' },
];
const list = (format: OutputFormat, extra: Partial<OutputOptions> = {}) => formatList(columns, rows, { format, ...extra });

describe('formatList: every format', () => {
  it.each<[OutputFormat, Partial<OutputOptions>, string]>([
    [
      'table',
      {},
      [
        '+----+------+------+------+',
        '| ID | Name | Size | Note |',
        '+----+------+------+------+',
        '| b  | two  |   10 | x    |',
        '|    |      |      | y    |',
        '| a  | None |    2 | ok   |',
        '+----+------+------+------+',
        '',
      ].join('\n'),
    ],
    [
      'json',
      {},
      '[\n  {\n    "ID": "b",\n    "Name": "two",\n    "Size": 10,\n    "Note": "x\\ny"\n  },\n' +
        '  {\n    "ID": "a",\n    "Name": null,\n    "Size": 2,\n    "Note": "ok"\n  }\n]\n',
    ],
    [
      'json',
      { noIndent: true },
      '[{"ID": "b", "Name": "two", "Size": 10, "Note": "x\\ny"}, {"ID": "a", "Name": null, "Size": 2, "Note": "ok"}]\n',
    ],
    // PyYAML sorts mapping keys; a multi-line string is single-quoted with a blank line per break
    ['yaml', {}, "- ID: b\n  Name: two\n  Note: 'x\n\n    y'\n  Size: 10\n- ID: a\n  Name: null\n  Note: ok\n  Size: 2\n"],
    ['value', {}, 'b two 10 x\ny\na None 2 ok\n'],
    ['csv', {}, '"ID","Name","Size","Note"\n"b","two",10,"x\ny"\n"a","",2,"ok"\n'],
    ['csv', { quoteMode: 'minimal' }, 'ID,Name,Size,Note\nb,two,10,"x\ny"\na,,2,ok\n'],
  ])('%s %j', (format, extra, expected) => {
    expect(list(format, extra)).toBe(expected);
  });

  it('shell is for show commands only', () => {
    expect(() => list('shell')).toThrow(/only available for show/);
  });

  it.each<[OutputFormat, Partial<OutputOptions>, string]>([
    ['table', {}, '\n'], // cliff: nothing but a newline unless --print-empty
    [
      'table',
      { printEmpty: true },
      '+----+------+------+------+\n| ID | Name | Size | Note |\n+----+------+------+------+\n+----+------+------+------+\n',
    ],
    ['json', {}, '[]\n'],
    ['json', { noIndent: true }, '[]\n'],
    ['yaml', {}, '[]\n'],
    ['value', {}, ''],
    ['csv', {}, '"ID","Name","Size","Note"\n'],
  ])('an empty list in %s %j', (format, extra, expected) => {
    expect(formatList(columns, [], { format, ...extra })).toBe(expected);
  });

  it('missing keys are None', () => {
    expect(formatList(['a', 'b'], [{ a: 1 }], { format: 'json', noIndent: true })).toBe('[{"a": 1, "b": null}]\n');
    expect(formatList(['a', 'b'], [{ a: 1 }], { format: 'value' })).toBe('1 None\n');
  });
});

describe('-c/--column selection', () => {
  it.each<[string[], OutputFormat, string]>([
    [['name'], 'value', 'web-1\n'],
    // cliff keeps the command's column order, whatever order -c gives
    [['vcpus', 'id'], 'value', 'abc\n2\n'],
    [['vcpus', 'nope', 'id'], 'json', '{\n  "id": "abc",\n  "vcpus": 2\n}\n'],
    [['locked', 'name'], 'yaml', 'name: web-1\nlocked: false\n'],
    [['flavor', 'id'], 'shell', 'id="abc"\nflavor="None"\n'],
    [['name'], 'table', '+-------+-------+\n| Field | Value |\n+-------+-------+\n| name  | web-1 |\n+-------+-------+\n'],
    [[], 'value', "abc\nweb-1\nNone\nFalse\n2\n{'b': '2', 'a': 'x'}\n['10.0.0.2', '::1']\n"],
  ])('show -c %j -f %s', (cols, format, expected) => {
    expect(show(format, { columns: cols })).toBe(expected);
  });

  it.each<[string[], OutputFormat, string]>([
    [['Size', 'ID'], 'value', 'b 10\na 2\n'],
    [['Note', 'bogus', 'Name'], 'csv', '"Name","Note"\n"two","x\ny"\n"","ok"\n'],
    [['Size'], 'json', '[\n  {\n    "Size": 10\n  },\n  {\n    "Size": 2\n  }\n]\n'],
    [['Size', 'Name'], 'yaml', '- Name: two\n  Size: 10\n- Name: null\n  Size: 2\n'],
    [['Size', 'ID'], 'table', '+----+------+\n| ID | Size |\n+----+------+\n| b  |   10 |\n| a  |    2 |\n+----+------+\n'],
  ])('list -c %j -f %s', (cols, format, expected) => {
    expect(list(format, { columns: cols })).toBe(expected);
  });

  it.each<OutputFormat>(['table', 'json', 'yaml', 'value'])("no recognized column is an error (%s), with cliff's message", (format) => {
    expect(() => show(format, { columns: ['nope'] })).toThrow(
      "No recognized column names in ['nope']. Recognized columns are ['id', 'name', 'flavor', 'locked', 'vcpus', 'properties', 'addresses'].",
    );
    let err: unknown;
    try {
      list(format, { columns: ['x', 'y'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NovaboxError);
    expect((err as NovaboxError).code).toBe('bad-request');
    expect((err as Error).message).toBe("No recognized column names in ['x', 'y']. Recognized columns are ['ID', 'Name', 'Size', 'Note'].");
  });
});

describe('values', () => {
  // value, table cell (show), -f value, -f json --noindent, -f yaml
  it.each<[string, unknown, string, string, string, string]>([
    ['null', null, 'None', 'None', 'null', 'null'],
    ['undefined', undefined, 'None', 'None', 'null', 'null'],
    ['true', true, 'True', 'True', 'true', 'true'],
    ['false', false, 'False', 'False', 'false', 'false'],
    ['int', 42, '42', '42', '42', '42'],
    ['negative', -7, '-7', '-7', '-7', '-7'],
    ['float', 1.5, '1.5', '1.5', '1.5', '1.5'],
    ['small float', 0.00001, '1e-05', '1e-05', '1e-05', '1.0e-05'],
    ['tiny float', 1.5e-7, '1.5e-07', '1.5e-07', '1.5e-07', '1.5e-07'],
    ['bigint', 12345678901234567890n, '12345678901234567890', '12345678901234567890', '12345678901234567890', '12345678901234567890'],
    ['string', 'hello', 'hello', 'hello', '"hello"', 'hello'],
    ['empty string', '', '', '', '""', "''"],
    ['numeric string', '123', '123', '123', '"123"', "'123'"],
    ['dict', { b: '2', a: 1 }, "a='1', b='2'", "{'b': '2', 'a': 1}", '{"b": "2", "a": 1}', "\n  a: 1\n  b: '2'"],
    [
      'nested dict',
      { x: { z: null, y: 'v' }, w: null },
      "w=, x.y='v', x.z=",
      "{'x': {'z': None, 'y': 'v'}, 'w': None}",
      '{"x": {"z": null, "y": "v"}, "w": null}',
      '\n  w: null\n  x:\n    y: v\n    z: null',
    ],
    ['empty dict', {}, '', '{}', '{}', '{}'],
    ['list', ['b', 'a', 3], 'b, a, 3', "['b', 'a', 3]", '["b", "a", 3]', '\n- b\n- a\n- 3'],
    ['empty list', [], '', '[]', '[]', '[]'],
    [
      'list of dicts',
      [{ n: 'a' }, { n: 'b', m: 1 }],
      "n='a'\nm='1', n='b'",
      "[{'n': 'a'}, {'n': 'b', 'm': 1}]",
      '[{"n": "a"}, {"n": "b", "m": 1}]',
      '\n- n: a\n- m: 1\n  n: b',
    ],
    ['quotes', 'it\'s "x"', 'it\'s "x"', 'it\'s "x"', '"it\'s \\"x\\""', 'it\'s "x"'],
    [
      'date',
      new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
      '2024-01-02T03:04:05.000Z',
      '2024-01-02T03:04:05.000Z',
      '"2024-01-02T03:04:05.000Z"',
      "'2024-01-02T03:04:05.000Z'",
    ],
    ['non-ascii', 'café', 'café', 'café', '"caf\\u00e9"', '"caf\\xE9"'],
  ])('%s', (_name, v, table, value, json, yaml) => {
    const rec = { k: v };
    const t = formatShow(rec, { format: 'table' }).split('\n');
    const cell = t.slice(3, -2).map((l) => l.slice(l.indexOf('|', 1) + 2, -2).trimEnd());
    expect(cell.join('\n')).toBe(table);
    expect(formatShow(rec, { format: 'value' })).toBe(value + '\n');
    expect(formatShow(rec, { format: 'json', noIndent: true })).toBe(`{"k": ${json}}\n`);
    expect(formatShow(rec, { format: 'yaml' })).toBe(`k:${yaml.startsWith('\n') ? '' : ' '}${yaml}\n`);
  });

  it('python repr quoting in value output', () => {
    expect(formatShow({ k: ["it's", 'a\\b', 'tab\t', 'x\u00a0'] }, { format: 'value' })).toBe(`["it's", 'a\\\\b', 'tab\\t', 'x\\xa0']\n`);
  });
});

describe('table layout', () => {
  it('multi-line cells keep their lines, padded, top-aligned', () => {
    expect(formatShow({ fault: 'line one\nline two is longer\r\nthree', id: 'x' }, { format: 'table' })).toBe(
      [
        '+-------+--------------------+',
        '| Field | Value              |',
        '+-------+--------------------+',
        '| fault | line one           |',
        '|       | line two is longer |',
        '|       | three              |',
        '| id    | x                  |',
        '+-------+--------------------+',
        '',
      ].join('\n'),
    );
  });

  it('carriage returns become spaces, tabs expand to 8', () => {
    expect(formatList(['a'], [{ a: 'x\ry\tz' }], { format: 'table' })).toBe(
      '+-----------+\n| a         |\n+-----------+\n| x y     z |\n+-----------+\n',
    );
  });

  it('wide characters take two cells', () => {
    expect(formatList(['n'], [{ n: '中文' }, { n: 'ab' }], { format: 'table' })).toBe(
      '+------+\n| n    |\n+------+\n| 中文 |\n| ab   |\n+------+\n',
    );
  });

  it('alignment follows the type of the first row, as cliff does', () => {
    const rs = [
      { n: 'x', v: 'text' },
      { n: 12345, v: 1 },
    ];
    expect(formatList(['n', 'v'], rs, { format: 'table' })).toBe(
      '+-------+------+\n| n     | v    |\n+-------+------+\n| x     | text |\n| 12345 | 1    |\n+-------+------+\n',
    );
    expect(formatList(['n', 'v'], [...rs].reverse(), { format: 'table' })).toBe(
      '+-------+------+\n|     n |    v |\n+-------+------+\n| 12345 |    1 |\n|     x | text |\n+-------+------+\n',
    );
  });

  it('booleans are left-aligned (bool is not int for cliff)', () => {
    expect(formatList(['enabled'], [{ enabled: true }], { format: 'table' })).toBe(
      '+---------+\n| enabled |\n+---------+\n| True    |\n+---------+\n',
    );
  });
});

describe('sorting (--sort-column)', () => {
  const data = [
    { id: 1, name: 'b', size: 2 },
    { id: 2, name: 'a', size: null },
    { id: 3, name: 'c', size: 1 },
    { id: 4, name: 'a', size: 1 },
  ];
  const ids = (o: Partial<OutputOptions>) =>
    formatList(['id', 'name', 'size'], data, { format: 'value', columns: ['id'], ...o })
      .split('\n')
      .filter(Boolean);

  it.each<[string[], 'asc' | 'desc' | undefined, string[]]>([
    [['name'], undefined, ['2', '4', '1', '3']],
    [['name'], 'desc', ['3', '1', '2', '4']], // equal keys keep their order, as Python's sorted(reverse=True)
    [['size'], 'asc', ['3', '4', '1', '2']], // None last
    [['size'], 'desc', ['2', '1', '3', '4']], // None first
    [['name', 'size'], 'asc', ['4', '2', '1', '3']], // first column has priority
    [['size', 'name'], 'asc', ['4', '3', '1', '2']],
    [['bogus'], 'asc', ['1', '2', '3', '4']],
    [['bogus', 'name'], 'asc', ['2', '4', '1', '3']],
  ])('%j %s', (sortColumns, sortDirection, expected) => {
    expect(ids({ sortColumns, sortDirection })).toEqual(expected);
  });

  it('sorts on columns that -c leaves out', () => {
    expect(formatList(['id', 'name'], data, { format: 'value', columns: ['id'], sortColumns: ['name'] })).toBe('2\n4\n1\n3\n');
  });

  it('unsortable types leave the order alone, other keys still apply', () => {
    const mixed = [
      { id: 1, v: 'x', n: 2 },
      { id: 2, v: 3, n: 1 },
    ];
    expect(formatList(['id', 'v', 'n'], mixed, { format: 'value', columns: ['id'], sortColumns: ['v'] })).toBe('1\n2\n');
    expect(formatList(['id', 'v', 'n'], mixed, { format: 'value', columns: ['id'], sortColumns: ['n', 'v'] })).toBe('2\n1\n');
  });
});

describe('YAML scalars are quoted as PyYAML quotes them', () => {
  it.each<[string, string]>([
    ['', "k: ''\n"],
    ['plain', 'k: plain\n'],
    [' lead', "k: ' lead'\n"],
    ['trail ', "k: 'trail '\n"],
    ['a: b', "k: 'a: b'\n"],
    ['a:b', 'k: a:b\n'],
    ['http://x:1/', 'k: http://x:1/\n'],
    ['#c', "k: '#c'\n"],
    ['a #c', "k: 'a #c'\n"],
    ['a#c', 'k: a#c\n'],
    ['- x', "k: '- x'\n"],
    ['-x', 'k: -x\n'],
    ['?', "k: '?'\n"],
    ['yes', "k: 'yes'\n"],
    ['No', "k: 'No'\n"],
    ['on', "k: 'on'\n"],
    ['null', "k: 'null'\n"],
    ['~', "k: '~'\n"],
    ['123', "k: '123'\n"],
    ['1.5', "k: '1.5'\n"],
    ['.5', "k: '.5'\n"],
    ['0x1F', "k: '0x1F'\n"],
    ['1_000', "k: '1_000'\n"],
    ['12:30', "k: '12:30'\n"],
    ['2024-01-01', "k: '2024-01-01'\n"],
    ['2024-01-01T10:00:00Z', "k: '2024-01-01T10:00:00Z'\n"],
    ['true', "k: 'true'\n"],
    ['café', 'k: "caf\\xE9"\n'],
    ['中文', 'k: "\\u4E2D\\u6587"\n'],
    ['😀', 'k: "\\U0001F600"\n'],
    ['tab\there', 'k: "tab\\there"\n'],
    ['line1\nline2', "k: 'line1\n\n  line2'\n"],
    ['a\n', "k: 'a\n\n  '\n"],
    ['a\n b', 'k: "a\\n b"\n'],
    ["it's", "k: it's\n"],
    ['say "hi"', 'k: say "hi"\n'],
    ['back\\slash', 'k: back\\slash\n'],
    ['---', "k: '---'\n"],
    ['@x', "k: '@x'\n"],
    ['%x', "k: '%x'\n"],
    ['a,b', 'k: a,b\n'],
    ['[x]', "k: '[x]'\n"],
    ['{x}', "k: '{x}'\n"],
    ['*x', "k: '*x'\n"],
    ['&x', "k: '&x'\n"],
    ['!x', "k: '!x'\n"],
    ['|x', "k: '|x'\n"],
    ['>x', "k: '>x'\n"],
    ['<<', "k: '<<'\n"],
    ['=', "k: '='\n"],
    // PyYAML (YAML 1.1) leaves these plain; YAML 1.2 would read numbers, so they are quoted
    ['08', "k: '08'\n"],
    ['0o17', "k: '0o17'\n"],
    ['1e5', "k: '1e5'\n"],
  ])('%j', (s, expected) => {
    expect(formatShow({ k: s }, { format: 'yaml' })).toBe(expected);
  });

  const words = Array(30).fill('word').join(' ');
  it.each<[string, string]>([
    [
      words,
      'k: word word word word word word word word word word word word word word word word\n  word word word word word word word word word word word word word word\n',
    ],
    [
      `${words}\n${words}`,
      "k: 'word word word word word word word word word word word word word word word word\n  word word word word word word word word word word word word word word\n\n  word word word word word word word word word word word word word word word word\n  word word word word word word word word word word word word word word'\n",
    ],
    [
      `it's ${words}`,
      "k: it's word word word word word word word word word word word word word word word\n  word word word word word word word word word word word word word word word\n",
    ],
    [
      `tab\t ${words}`,
      'k: "tab\\t word word word word word word word word word word word word word word word\\\n  \\ word word word word word word word word word word word word word word word"\n',
    ],
  ])('long lines fold at 80 columns like PyYAML (%#)', (s, expected) => {
    expect(formatShow({ k: s }, { format: 'yaml' })).toBe(expected);
  });

  it('nested collections', () => {
    const v = [{ b: [[1, 2], [], {}], a: { z: [{ x: 1, w: null }], y: 0.00001 } }];
    expect(formatList(['v'], [{ v }], { format: 'yaml' })).toBe(
      '- v:\n  - a:\n      y: 1.0e-05\n      z:\n      - w: null\n        x: 1\n    b:\n    - - 1\n      - 2\n    - []\n    - {}\n',
    );
  });

  it('keys that need quoting are quoted', () => {
    expect(formatShow({ 'a: b': 1, '': 2, '123': 3 }, { format: 'yaml' })).toBe("'123': 3\n'a: b': 1\n'': 2\n");
  });
});

/** A reader for the one-key documents above (`k: <scalar>`): plain, single- and double-quoted. */
function readYamlScalar(doc: string): string {
  expect(doc.startsWith('k: ')).toBe(true);
  expect(doc.endsWith('\n')).toBe(true);
  const body = doc.slice(3, -1);
  const fold = (raw: string, quoted: boolean): string => {
    const lines = raw.split('\n');
    let out = '';
    let blank = 0;
    lines.forEach((line, i) => {
      let l = line;
      if (i > 0) l = l.replace(/^[ \t]+/, '');
      if (i < lines.length - 1 && !(quoted && /(^|[^\\])(\\\\)*\\$/.test(l))) l = l.replace(/[ \t]+$/, '');
      if (i === 0) out = l;
      else if (l === '' && i < lines.length - 1) blank++;
      else {
        const prev = lines[i - 1];
        const escapedBreak = quoted && /(^|[^\\])(\\\\)*\\$/.test(prev);
        if (escapedBreak) out = out.slice(0, -1);
        else out += blank ? '\n'.repeat(blank) : ' ';
        out += l;
        blank = 0;
      }
    });
    return out;
  };
  if (body.startsWith("'")) {
    expect(body.endsWith("'")).toBe(true);
    return fold(body.slice(1, -1), false).replace(/''/g, "'");
  }
  if (body.startsWith('"')) {
    expect(body.endsWith('"')).toBe(true);
    const esc: Record<string, string> = {
      '0': '\0',
      a: '\x07',
      b: '\b',
      t: '\t',
      n: '\n',
      v: '\v',
      f: '\f',
      r: '\r',
      e: '\x1b',
      ' ': ' ',
      '"': '"',
      '/': '/',
      '\\': '\\',
      N: '\x85',
      _: '\xa0',
      L: '\u2028',
      P: '\u2029',
    };
    return fold(body.slice(1, -1), true).replace(/\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)/g, (_m, e: string) =>
      e.length > 1 ? String.fromCodePoint(parseInt(e.slice(1), 16)) : esc[e],
    );
  }
  // plain: must not start with an indicator, hold ': ' or ' #', or read as another type (YAML 1.1 or 1.2)
  expect(body).not.toMatch(/^[-?:,[\]{}#&*!|>'"%@` ]|: | #|:$/);
  const text = fold(body, false);
  expect(text).not.toMatch(/^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~|)$/);
  expect(text).not.toMatch(
    /^[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?$|^0o[0-7]+$|^0x[0-9a-fA-F]+$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$/,
  );
  return text;
}

describe('YAML round trip (strings read back as written)', () => {
  const words = Array(25).fill('lorem').join(' ');
  it.each<string>([
    'plain text',
    '',
    '  two leading, two trailing  ',
    'x: y # z',
    "it's 'quoted'",
    'say "hi" \\ back',
    'line1\nline2\n\nline4',
    '\nleading break',
    'trailing break\n',
    'a\n  indented',
    'space before break \nnext',
    'tab\tand\u0001control',
    'üñíçødé and 中文 and 😀',
    '12',
    'True',
    'null',
    '2024-01-01',
    `${words} ${words}`,
    `${words}\n${words}\n\n${words}`,
    `é ${words} ${words}`,
    `${words}  double  spaces  ${words}`,
    `x\t ${words}  ${words}`,
  ])('%j', (s) => {
    expect(readYamlScalar(formatShow({ k: s }, { format: 'yaml' }))).toBe(s);
  });
});

describe('CSV quoting (Python csv with escapechar \\)', () => {
  // value, nonnumeric (default), all, minimal, none
  it.each<[unknown, string, string, string, string]>([
    ['plain', '"plain","x"\n', '"plain","x"\n', 'plain,x\n', 'plain,x\n'],
    ['a,b', '"a,b","x"\n', '"a,b","x"\n', '"a,b",x\n', 'a\\,b,x\n'],
    ['say "hi"', '"say ""hi""","x"\n', '"say ""hi""","x"\n', '"say ""hi""",x\n', 'say \\"hi\\",x\n'],
    ['back\\slash', '"back\\\\slash","x"\n', '"back\\\\slash","x"\n', 'back\\\\slash,x\n', 'back\\\\slash,x\n'],
    ['two\nlines', '"two\nlines","x"\n', '"two\nlines","x"\n', '"two\nlines",x\n', 'two\\\nlines,x\n'],
    ['', '"","x"\n', '"","x"\n', ',x\n', ',x\n'],
    [null, '"","x"\n', '"","x"\n', ',x\n', ',x\n'],
    [7, '7,"x"\n', '"7","x"\n', '7,x\n', '7,x\n'],
    [1.5, '1.5,"x"\n', '"1.5","x"\n', '1.5,x\n', '1.5,x\n'],
    [true, 'True,"x"\n', '"True","x"\n', 'True,x\n', 'True,x\n'],
    [{ k: 'v' }, '"{\'k\': \'v\'}","x"\n', '"{\'k\': \'v\'}","x"\n', "{'k': 'v'},x\n", "{'k': 'v'},x\n"],
  ])('%j', (v, nonnumeric, all, minimal, none) => {
    const expected: Record<QuoteMode, string> = { nonnumeric, all, minimal, none };
    for (const mode of ['nonnumeric', 'all', 'minimal', 'none'] as QuoteMode[]) {
      const out = formatList(['v', 'w'], [{ v, w: 'x' }], { format: 'csv', quoteMode: mode });
      expect(out.slice(out.indexOf('\n') + 1), mode).toBe(expected[mode]);
    }
  });

  it('the header follows the quote mode', () => {
    expect(formatList(['a b', 'c'], [], { format: 'csv', quoteMode: 'minimal' })).toBe('a b,c\n');
    expect(formatList(['a b', 'c'], [], { format: 'csv', quoteMode: 'all' })).toBe('"a b","c"\n');
  });

  it('a one-column row with an empty field is written as ""', () => {
    expect(formatList(['a'], [{ a: '' }], { format: 'csv', quoteMode: 'minimal' })).toBe('a\n""\n');
  });
});

describe('JSON like Python json.dump', () => {
  it.each<[boolean, string]>([
    [true, '{"a": [1, {"b": null}], "\\u00e9": "\\u00fc", "e": {}, "l": []}\n'],
    [false, '{\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ],\n  "\\u00e9": "\\u00fc",\n  "e": {},\n  "l": []\n}\n'],
  ])('noindent=%s', (noIndent, expected) => {
    expect(formatShow({ a: [1, { b: null }], é: 'ü', e: {}, l: [] }, { format: 'json', noIndent })).toBe(expected);
  });

  it('output parses back to the same values', () => {
    const rec = { s: 'x"\\\n\t😀', n: -1.25, t: true, z: null, o: { a: [1, 'b'] } };
    expect(JSON.parse(formatShow(rec, { format: 'json' }))).toEqual(rec);
    expect(JSON.parse(formatList(['s', 'o'], [rec], { format: 'json', noIndent: true }))).toEqual([{ s: rec.s, o: rec.o }]);
  });
});

describe('shell format', () => {
  it.each<[string, unknown, string]>([
    ['Multi Word', 'x', 'multi_word="x"\n'],
    ['os-ext:host', 'h', 'os_ext_host="h"\n'],
    ['a.b/c', 'v', 'a_b_c="v"\n'],
    ['q', 'say "hi" $HOME `id` \\n', 'q="say \\"hi\\" \\$HOME \\`id\\` \\\\n"\n'],
    ['multi', 'a\nb', 'multi="a\nb"\n'],
    ['n', null, 'n="None"\n'],
  ])('%j', (name, v, expected) => {
    expect(formatShow({ [name]: v }, { format: 'shell' })).toBe(expected);
  });
});

function parse(kind: 'show' | 'list', args: string[]): OutputOptions {
  const cmd = addOutputOptions(new Command('x').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} }), kind);
  cmd.parse(args, { from: 'user' });
  return outputOptionsFrom(cmd.opts());
}

describe('addOutputOptions / outputOptionsFrom', () => {
  it('exports the formats', () => {
    expect([...OUTPUT_FORMATS].sort()).toEqual(['csv', 'json', 'shell', 'table', 'value', 'yaml']);
    expect(SHOW_FORMATS).not.toContain('csv');
    expect(LIST_FORMATS).not.toContain('shell');
  });

  it('defaults', () => {
    expect(parse('list', [])).toEqual({
      format: 'table',
      columns: [],
      quoteMode: 'nonnumeric',
      prefix: '',
      noIndent: false,
      printEmpty: false,
      sortColumns: [],
      sortDirection: 'asc',
      maxWidth: 0,
      fitWidth: true,
    });
    expect(parse('show', []).format).toBe('table');
  });

  it("cliff's environment: CLIFF_MAX_TERM_WIDTH, CLIFF_FIT_WIDTH=0 (the option takes precedence)", () => {
    const saved = { max: process.env.CLIFF_MAX_TERM_WIDTH, fit: process.env.CLIFF_FIT_WIDTH };
    try {
      process.env.CLIFF_MAX_TERM_WIDTH = '70';
      process.env.CLIFF_FIT_WIDTH = '0';
      expect(parse('list', [])).toMatchObject({ maxWidth: 70, fitWidth: false });
      expect(parse('list', ['--max-width', '90', '--fit-width'])).toMatchObject({ maxWidth: 90, fitWidth: true });
    } finally {
      for (const [k, v] of [
        ['CLIFF_MAX_TERM_WIDTH', saved.max],
        ['CLIFF_FIT_WIDTH', saved.fit],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it.each<['show' | 'list', string[], Partial<OutputOptions>]>([
    ['show', ['-f', 'json', '--noindent'], { format: 'json', noIndent: true }],
    ['show', ['--format', 'shell', '--prefix', 'nb_'], { format: 'shell', prefix: 'nb_' }],
    ['show', ['-c', 'id', '--column', 'name', '-c', 'status'], { columns: ['id', 'name', 'status'] }],
    ['list', ['-f', 'csv', '--quote', 'minimal'], { format: 'csv', quoteMode: 'minimal' }],
    ['list', ['--sort-column', 'a', '--sort-column', 'b', '--sort-descending'], { sortColumns: ['a', 'b'], sortDirection: 'desc' }],
    ['list', ['--sort-ascending'], { sortDirection: 'asc' }],
    ['list', ['--print-empty', '--max-width', '80', '--fit-width'], { printEmpty: true, maxWidth: 80, fitWidth: true }],
  ])('%s %j', (kind, args, expected) => {
    expect(parse(kind, args)).toMatchObject(expected);
  });

  it.each<['show' | 'list', string[]]>([
    ['show', ['-f', 'csv']],
    ['list', ['-f', 'shell']],
    ['list', ['-f', 'xml']],
    ['list', ['--quote', 'some']],
    ['list', ['--sort-ascending', '--sort-descending']],
    ['list', ['--max-width', 'wide']],
    ['show', ['--sort-column', 'a']],
    ['list', ['--prefix', 'p']],
  ])('%s rejects %j', (kind, args) => {
    expect(() => parse(kind, args)).toThrow();
  });

  it('groups the options under an "Output formatters" heading in help', () => {
    const cmd = addOutputOptions(new Command('x'), 'list');
    expect(cmd.helpInformation()).toMatch(/Output formatters:\n\s+-f, --format <fmt>/);
  });

  it('parsed options drive the formatters end to end', () => {
    const o = parse('list', ['-f', 'value', '-c', 'Name', '-c', 'ID', '--sort-column', 'ID']);
    expect(formatList(columns, rows, o)).toBe('a None\nb two\n');
  });
});

describe('formatTable (used by ps)', () => {
  it('still prints a plain aligned table', () => {
    expect(
      formatTable(
        ['ID', 'Name'],
        [
          ['1', 'alpha'],
          ['22', 'b'],
        ],
      ),
    ).toBe('ID  Name\n1   alpha\n22  b\n');
  });
});

describe('maybeTerminal', () => {
  it('rules out what cannot be a terminal without asking isatty (node:tty)', () => {
    for (const path of ['/dev/null', '/dev/zero', '/proc/self/status']) {
      const fd = openSync(path, 'r');
      try {
        expect(maybeTerminal(fd), path).toBe(false);
      } finally {
        closeSync(fd);
      }
    }
    expect(maybeTerminal(987654)).toBe(false); // not open
  });

  it.skipIf(!existsSync('/dev/ptmx'))('leaves a terminal device to isatty', () => {
    const fd = openSync('/dev/ptmx', 'r+');
    try {
      expect(maybeTerminal(fd)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });
});
