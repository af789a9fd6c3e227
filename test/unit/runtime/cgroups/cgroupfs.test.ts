import { describe, expect, it } from 'vitest';
import { retryVanished } from '../../../../src/runtime/cgroups/cgroupfs.js';

const errno = (code: string) => Object.assign(new Error(code), { code });

describe('retryVanished', () => {
  it('runs again while a parent vanishes under it (ENOENT gone, ENODEV being removed)', () => {
    const thrown = ['ENODEV', 'ENOENT'];
    let calls = 0;
    expect(
      retryVanished(() => {
        calls++;
        const next = thrown.shift();
        if (next) throw errno(next);
        return 'made';
      }),
    ).toBe('made');
    expect(calls).toBe(3);
  });

  it('gives up after the attempts, and never retries other errors', () => {
    let calls = 0;
    expect(() =>
      retryVanished(() => {
        calls++;
        throw errno('ENODEV');
      }, 3),
    ).toThrow('ENODEV');
    expect(calls).toBe(3);
    calls = 0;
    expect(() =>
      retryVanished(() => {
        calls++;
        throw errno('EACCES');
      }),
    ).toThrow('EACCES');
    expect(calls).toBe(1);
  });
});
