import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../../src/oci/main.js';

let dir: string;
let err: string;
let out: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'oci-main-'));
  err = '';
  out = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
});

afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

describe('novabox-oci command line (no root: nothing reaches the kernel)', () => {
  it.each<[string[], string]>([
    [['--systemd-cgroup', 'state', 'x'], '--systemd-cgroup is not supported'],
    [['--log-format', 'xml', 'state', 'x'], '--log-format must be text or json, not "xml"'],
    [['--bogus', 'state', 'x'], 'unknown global option --bogus'],
    [['frobnicate', 'x'], '"frobnicate" is not a novabox-oci command'],
    [['state'], 'state: the container id is missing'],
    [['state', 'a', 'b'], 'state: unexpected argument "b"'],
    [['kill', '--bogus', 'x'], 'kill: unknown option --bogus'],
    [['kill', 'x', 'NOSUCH'], 'kill: "NOSUCH" is not a signal'],
    [['create', '--preserve-fds', 'all', 'x'], 'create: --preserve-fds must be a number of fds from 0 to 200'],
    [['events', 'x'], 'events: only --stats (one sample) is supported'],
    [['state', '../etc'], 'invalid container id "../etc"'],
  ])('%j: one sentence, exit 1', async (argv, message) => {
    expect(await main(['--root', dir, ...argv])).toBe(1);
    expect(err).toContain(message);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err.startsWith('novabox-oci: ')).toBe(true);
  });

  it('--log-format json writes the error as a JSON line go-runc reads back', async () => {
    const log = join(dir, 'log.json');
    expect(await main(['--root', dir, '--log', log, '--log-format', 'json', 'state', 'nope'])).toBe(1);
    const line = JSON.parse(readFileSync(log, 'utf8'));
    expect(line).toEqual({ level: 'error', msg: 'container "nope" does not exist', time: expect.any(String) });
  });

  it('list of an empty root, --version and features', async () => {
    expect(await main(['--root', dir, 'list', '--format', 'json'])).toBe(0);
    expect(JSON.parse(out)).toEqual([]);
    out = '';
    expect(await main(['--version'])).toBe(0);
    expect(out).toMatch(/^novabox-oci version \S+\nspec: 1\.0\.2\n$/);
    out = '';
    expect(await main(['features'])).toBe(0);
    expect(JSON.parse(out)).toMatchObject({
      ociVersionMax: '1.0.2',
      hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    });
  });
});
