import { describe, expect, it } from 'vitest';
import { decideRestart, parseRestart } from '../../../src/compute/restart.js';

describe('restart policies', () => {
  it('parses no, always, on-failure and on-failure:N', () => {
    expect(parseRestart('no')).toEqual({ mode: 'no' });
    expect(parseRestart('always')).toEqual({ mode: 'always' });
    expect(parseRestart('on-failure')).toEqual({ mode: 'on-failure' });
    expect(parseRestart('on-failure:3')).toEqual({ mode: 'on-failure', max: 3 });
  });

  it.each(['', 'yes', 'on-failure:0', 'on-failure:-1', 'on-failure:x', 'always:2', 'unless-stopped'])('refuses %j in one sentence', (t) => {
    expect(() => parseRestart(t)).toThrow(/^invalid restart policy .*: expected no, always, on-failure or on-failure:N \(N >= 1\)$/);
  });

  it('decides: policy, status, a cap, doubling backoff up to 30 s, reset after a long run', () => {
    expect(decideRestart({ mode: 'no' }, true, 0, 0).restart).toBe(false);
    expect(decideRestart({ mode: 'on-failure' }, false, 0, 0)).toMatchObject({ restart: false, reason: 'it exited with status 0' });
    expect(decideRestart({ mode: 'on-failure' }, true, 0, 0)).toEqual({ restart: true, delayMs: 100, count: 1 });
    expect(decideRestart({ mode: 'always' }, false, 3, 500)).toEqual({ restart: true, delayMs: 800, count: 4 });
    expect(decideRestart({ mode: 'always' }, true, 50, 0).delayMs).toBe(30_000);
    expect(decideRestart({ mode: 'on-failure', max: 2 }, true, 2, 0)).toMatchObject({
      restart: false,
      reason: 'restarted 2 times in a row (on-failure:2)',
    });
    expect(decideRestart({ mode: 'on-failure', max: 2 }, true, 2, 60_000)).toEqual({ restart: true, delayMs: 100, count: 1 });
  });
});
