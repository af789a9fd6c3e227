import { describe, expect, it } from 'vitest';
import { randomHex64, randomUuid } from '../../../src/util/random.js';

describe('randomUuid', () => {
  it('makes version 4, RFC 4122 variant UUIDs, all different', () => {
    const ids = Array.from({ length: 200 }, () => randomUuid());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('randomHex64', () => {
  it('makes 64 hex digits, all different', () => {
    const ids = Array.from({ length: 200 }, () => randomHex64());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // the first 12 digits are the default hostname: random too
    expect(new Set(ids.map((id) => id.slice(0, 12))).size).toBe(ids.length);
  });
});
