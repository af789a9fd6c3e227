/**
 * bin/novabox: which bundle a command line runs in (`run` in its own bundle when
 * run-args.ts takes the line, the local one without the store for `--network none|host`,
 * else the full CLI), and the code cache of each: one per bundle and command (a group's
 * verb included), written only by a run that did the command's whole work.
 * Runs a copy of the launcher and the bundles in a temp dir (the checkout's dist/ caches
 * are shared with everything else running the CLI).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { census } from '../helpers/census.js';
import { cliEnv, ROOT, tempRoot } from '../helpers/run-cli.js';

// `ps` reads the store: root only (exit 5 otherwise), as every integration test
describe.skipIf(process.getuid?.() !== 0)('the launcher code cache', () => {
  let tree: string;
  let state: string;
  beforeAll(() => {
    tree = mkdtempSync(join(tmpdir(), 'nbx-launcher-'));
    state = mkdtempSync(join(tmpdir(), 'nbx-launcher-root-'));
    mkdirSync(join(tree, 'dist'));
    cpSync(join(ROOT, 'bin'), join(tree, 'bin'), { recursive: true });
    cpSync(join(ROOT, 'dist/novabox.cjs'), join(tree, 'dist/novabox.cjs'));
    cpSync(join(ROOT, 'dist/novabox-run.cjs'), join(tree, 'dist/novabox-run.cjs'));
    symlinkSync(join(ROOT, 'native-bindings'), join(tree, 'native-bindings'));
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
  });
  afterAll(() => {
    rmSync(tree, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  });

  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(tree, 'bin/novabox'), ...args], { env: cliEnv(state), encoding: 'utf8' });
  const caches = () =>
    readdirSync(join(tree, 'dist'))
      .filter((f) => f.endsWith('.cache'))
      .sort();

  it('writes none for help, version or a failed command', () => {
    expect(cli('ps', '--help').status).toBe(0);
    expect(cli('--version').status).toBe(0);
    expect(cli('ps', '--bogus').status).toBe(2);
    expect(caches()).toEqual([]);
  });

  it("writes the command word's cache after a whole run, and uses it next time", () => {
    const first = cli('ps');
    expect(first.status).toBe(0);
    expect(caches()).toEqual(['novabox.cjs.ps.cache']);
    const written = statSync(join(tree, 'dist/novabox.cjs.ps.cache')).mtimeMs;
    const again = cli('ps');
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(first.stdout);
    // accepted, so not written again (a rejected cache is replaced)
    expect(statSync(join(tree, 'dist/novabox.cjs.ps.cache')).mtimeMs).toBe(written);
  });

  it("gives a group's verbs a cache each (a failed one writes none)", () => {
    expect(cli('flavor', 'list').status).toBe(0);
    expect(cli('flavor', 'show', 'c1.nano').status).toBe(0);
    expect(cli('flavor', 'show', 'nope').status).toBe(3);
    expect(caches()).toEqual(['novabox.cjs.flavor-list.cache', 'novabox.cjs.flavor-show.cache', 'novabox.cjs.ps.cache']);
  });
});

describe.skipIf(process.getuid?.() !== 0)('the launcher: the run bundle or the full CLI', () => {
  let tree: string;
  let root: string;
  let removeRoot: () => void;
  beforeAll(() => {
    tree = mkdtempSync(join(tmpdir(), 'nbx-launcher-run-'));
    ({ root, remove: removeRoot } = tempRoot('nbx-launcher-run-root-'));
    mkdirSync(join(tree, 'dist'));
    cpSync(join(ROOT, 'bin'), join(tree, 'bin'), { recursive: true });
    for (const f of ['novabox.cjs', 'novabox-run.cjs', 'novabox-run-local.cjs']) cpSync(join(ROOT, 'dist', f), join(tree, 'dist', f));
    symlinkSync(join(ROOT, 'native-bindings'), join(tree, 'native-bindings'));
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
    symlinkSync(join(ROOT, 'images'), join(tree, 'images'));
  });
  afterAll(() => {
    rmSync(tree, { recursive: true, force: true });
    removeRoot?.();
  });

  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(tree, 'bin/novabox'), ...args], { env: cliEnv(root), encoding: 'utf8', input: '' });
  const caches = () =>
    readdirSync(join(tree, 'dist'))
      .filter((f) => f.endsWith('.cache'))
      .sort();

  it('help, a bad option and a dry run write no cache; help and errors read as before', () => {
    const help = cli('run', '--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: novabox run \[options\] \[image\] \[command\.\.\.\]\n/);
    const bogus = cli('run', '--bogus', 'busybox', 'true');
    expect(bogus.status).toBe(2);
    expect(bogus.stderr).toBe("error: unknown option '--bogus'\n");
    const pids = cli('run', '--pids-limit', '0', 'busybox', 'true');
    expect(pids.status).toBe(2);
    expect(pids.stderr).toBe('novabox: invalid --pids-limit "0": expected a whole number >= 1\n');
    const noImage = cli('run', '--rm');
    expect(noImage.status).toBe(2); // bad input
    expect(noImage.stderr).toBe('novabox: no image given: try "novabox run --rm busybox echo hello"\n');
    expect(cli('run', '--dry-run', '--network', 'none', '--rootfs', tree, 'true').status).toBe(0);
    expect(caches()).toEqual([]);
  });

  it('runs an ordinary `run` line in the run bundle, which writes its own cache', () => {
    // The first run builds the busybox image into this root: the local run bundle has no
    // image builder, so the whole run bundle runs the line again; one-time work, no cache.
    const first = cli('run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo once');
    expect(first.status).toBe(0);
    expect(first.stdout).toBe('once\n');
    expect(first.stderr).toBe('');
    expect(caches()).toEqual([]);
    const before = census(root);
    const failed = cli('run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo hi; exit 3');
    expect(failed.status).toBe(3);
    expect(failed.stdout).toBe('hi\n');
    expect(caches()).toEqual([]);
    const r = cli('run', '--rm', '--network', 'none', 'busybox', 'echo', 'hi');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('hi\n');
    expect(caches()).toEqual(['novabox-run-local.cjs.cache']);
    const written = statSync(join(tree, 'dist/novabox-run-local.cjs.cache')).mtimeMs;
    expect(cli('run', '--rm', '--network', 'none', 'busybox', 'true').status).toBe(0);
    expect(statSync(join(tree, 'dist/novabox-run-local.cjs.cache')).mtimeMs).toBe(written);
    expect(census(root)).toEqual(before);
  });

  it("keeps the bridge network's runs in a cache of their own", () => {
    // the first bridge run of this root makes its bridge: the census is taken after it
    const first = cli('run', '--rm', 'busybox', 'true');
    expect(first.status).toBe(0);
    expect(caches()).toEqual(['novabox-run-local.cjs.cache', 'novabox-run.cjs.net.cache']);
    const before = census(root);
    const r = cli('run', '--rm', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0 | wc -l');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('1\n');
    // a bridge run despite the words in its command: it writes no cache of the other kind
    rmSync(join(tree, 'dist/novabox-run-local.cjs.cache'));
    expect(cli('run', '--rm', 'busybox', 'echo', '--network', 'none').stdout).toBe('--network none\n');
    expect(caches()).toEqual(['novabox-run.cjs.net.cache']);
    expect(census(root)).toEqual(before);
  });

  it("hands a line the fast parser leaves (-ie VALUE) to the full CLI, whose cache is the `run` word's", () => {
    const before = census(root);
    const r = cli('run', '--rm', '--network', 'none', '-ie', 'FOO=bar', 'busybox', 'sh', '-c', 'echo $FOO');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('bar\n');
    expect(caches()).toEqual(['novabox-run.cjs.net.cache', 'novabox.cjs.run.cache']);
    expect(census(root)).toEqual(before);
  });
});

describe.skipIf(process.getuid?.() !== 0)("the launcher: a command's own bundle (dist/verbs/)", () => {
  let tree: string;
  let state: string;
  beforeAll(() => {
    tree = mkdtempSync(join(tmpdir(), 'nbx-launcher-verbs-'));
    state = mkdtempSync(join(tmpdir(), 'nbx-launcher-verbs-root-'));
    mkdirSync(join(tree, 'dist', 'verbs'), { recursive: true });
    cpSync(join(ROOT, 'bin'), join(tree, 'bin'), { recursive: true });
    cpSync(join(ROOT, 'dist/novabox.cjs'), join(tree, 'dist/novabox.cjs'));
    for (const f of ['server-list.cjs', 'server-show.cjs', 'flavor.cjs']) cpSync(join(ROOT, 'dist/verbs', f), join(tree, 'dist/verbs', f));
    // a bundle without keypair's module, where keypair's would be: every line of it falls back
    cpSync(join(ROOT, 'dist/verbs/flavor.cjs'), join(tree, 'dist/verbs/keypair.cjs'));
    symlinkSync(join(ROOT, 'native-bindings'), join(tree, 'native-bindings'));
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
  });
  afterAll(() => {
    rmSync(tree, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  });

  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(tree, 'bin/novabox'), ...args], { env: cliEnv(state), encoding: 'utf8' });
  const caches = (dir: string) =>
    readdirSync(join(tree, dir))
      .filter((f) => f.endsWith('.cache'))
      .sort();
  /** the same line with the full CLI only: the command's bundle moved away for it */
  const full = (...args: string[]) => {
    renameSync(join(tree, 'dist/verbs'), join(tree, 'dist/verbs-away'));
    try {
      return cli(...args);
    } finally {
      renameSync(join(tree, 'dist/verbs-away'), join(tree, 'dist/verbs'));
    }
  };

  it('runs a verb in its own bundle, with its own cache, printing what the full CLI prints', () => {
    for (const f of ['json', 'value', 'csv', 'yaml', 'table']) {
      const own = cli('flavor', 'list', '-f', f);
      expect(own.status).toBe(0);
      expect(own.stdout).toBe(full('flavor', 'list', '-f', f).stdout);
    }
    const shell = cli('flavor', 'show', 'm1.tiny', '-f', 'shell');
    expect(shell.status).toBe(0);
    expect(shell.stdout).toBe(full('flavor', 'show', 'm1.tiny', '-f', 'shell').stdout);
    expect(cli('server', 'list').status).toBe(0);
    expect(caches('dist/verbs')).toEqual(['flavor-list.cache', 'flavor-show.cache', 'server-list.cache']);
    // the full CLI's caches are written by the full runs only
    expect(caches('dist')).toEqual(['novabox.cjs.flavor-list.cache', 'novabox.cjs.flavor-show.cache']);
    const bad = cli('flavor', 'show', 'nope');
    expect(bad.status).toBe(3);
    expect(bad.stderr).toBe(full('flavor', 'show', 'nope').stderr);
    expect(cli('server', 'show', 'nope').status).toBe(3);
    expect(caches('dist/verbs')).toEqual(['flavor-list.cache', 'flavor-show.cache', 'server-list.cache']);
  });

  it("runs a line its bundle lacks the command's module for in the full CLI, once", () => {
    const r = cli('keypair', 'list', '-f', 'json');
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(full('keypair', 'list', '-f', 'json').stdout);
    const bad = cli('keypair', 'show', 'nope');
    expect(bad.status).toBe(3);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    // not the stand-in's bundle's cache: it did none of the work
    expect(caches('dist/verbs')).not.toContain('keypair.cache');
  });

  it('gives help to the full CLI (it describes every command)', () => {
    const help = cli('server', 'list', '--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: novabox server list');
    const group = cli('flavor', '-h');
    expect(group.status).toBe(0);
    expect(group.stdout).toBe(full('flavor', '-h').stdout);
    // help writes no cache (the verbs' are the first test's)
    expect(caches('dist/verbs')).toEqual(['flavor-list.cache', 'flavor-show.cache', 'server-list.cache']);
  });
});
