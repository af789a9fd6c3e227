import { describe, expect, it } from 'vitest';
import { randomUuid } from '../../../src/util/random.js';

describe('randomUuid', () => {
  it('makes version 4, RFC 4122 variant UUIDs, all different', () => {
    const ids = Array.from({ length: 200 }, () => randomUuid());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
