import { describe, expect, it } from 'vitest';
import { isoTime } from '../../../src/util/time.js';

describe('isoTime', () => {
  it("writes what Date's toISOString writes", () => {
    const times = [
      0,
      1,
      9,
      10,
      99,
      100,
      999,
      Date.UTC(1999, 11, 31, 23, 59, 59, 999),
      Date.UTC(2024, 1, 29, 4, 5, 6, 7),
      Date.UTC(9999, 0, 1),
    ];
    for (let i = 0; i < 500; i++) times.push(Math.floor(Math.random() * Date.UTC(2200, 0, 1)));
    for (const t of times) expect(isoTime(t)).toBe(new Date(t).toISOString());
  });

  it('defaults to now', () => {
    const before = Date.now();
    const t = Date.parse(isoTime());
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
  });
});
