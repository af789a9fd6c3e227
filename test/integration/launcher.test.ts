/**
 * bin/novabox's code cache: one per command word, written only by a run that did the
 * command's whole work. Runs a copy of the launcher and the bundle in a temp dir (the
 * checkout's dist/ caches are shared with everything else running the CLI).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, ROOT } from '../helpers/run-cli.js';

describe('the launcher code cache', () => {
  let tree: string;
  let state: string;
  beforeAll(() => {
    tree = mkdtempSync(join(tmpdir(), 'nbx-launcher-'));
    state = mkdtempSync(join(tmpdir(), 'nbx-launcher-root-'));
    mkdirSync(join(tree, 'dist'));
    cpSync(join(ROOT, 'bin'), join(tree, 'bin'), { recursive: true });
    cpSync(join(ROOT, 'dist/novabox.cjs'), join(tree, 'dist/novabox.cjs'));
    symlinkSync(join(ROOT, 'native-bindings'), join(tree, 'native-bindings'));
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
  });
  afterAll(() => {
    rmSync(tree, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => spawnSync(process.execPath, [join(tree, 'bin/novabox'), ...args], { env: cliEnv(state), encoding: 'utf8' });
  const caches = () => readdirSync(join(tree, 'dist')).filter((f) => f.endsWith('.cache')).sort();

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
});
