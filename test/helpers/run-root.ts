/**
 * The frame of a file of `run` tests: a fresh state root whose busybox image the first
 * `run` builds, removed after the file; after every test the leak census must match the
 * one taken before it. Call inside a describe; `onRoot` gets the root before any test.
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { census, type Census } from './census.js';
import { runCli, tempRoot } from './run-cli.js';

export function useRunRoot(onRoot: (root: string) => void): void {
  let root = '';
  let remove: (() => void) | undefined;
  let before: Census;
  beforeAll(async () => {
    ({ root, remove } = tempRoot());
    onRoot(root);
    // First use builds the busybox image; later runs reuse it.
    const r = await runCli(['run', '--rm', 'busybox', 'true'], { root });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });
  afterAll(() => remove?.());
  beforeEach(() => {
    before = census(root);
  });
  afterEach(() => {
    expect(census(root)).toEqual(before);
  });
}
