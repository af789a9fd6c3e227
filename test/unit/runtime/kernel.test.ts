import { describe, expect, it } from 'vitest';
import { kernelAtLeast, parseRelease } from '../../../src/runtime/kernel.js';

describe('parseRelease', () => {
  it.each([
    ['6.18.44-fc-v782\n', [6, 18]],
    ['5.10.0-28-amd64', [5, 10]],
    ['4.19.0', [4, 19]],
    ['garbage', null],
  ])('%j -> %j', (text, expected) => {
    expect(parseRelease(text)).toEqual(expected);
  });
});

describe('kernelAtLeast', () => {
  it('compares with the running kernel', () => {
    expect(kernelAtLeast(2, 6)).toBe(true);
    expect(kernelAtLeast(99, 0)).toBe(false);
  });
});
