import { describe, expect, it } from 'vitest';
import { BadRequest, NovaboxError } from '../../../src/errors.js';
import { MESSAGE_MAX_CHARS, boundMessage, clip, listSome, quote } from '../../../src/util/text.js';

describe('bounded messages', () => {
  it('clips long text with an ellipsis, never half a surrogate pair', () => {
    expect(clip('abc', 5)).toBe('abc');
    expect(clip('abcdef', 3)).toBe('abc…');
    expect(clip('ab😀cd', 3)).toBe('ab…');
    expect(clip('ab😀cd', 4)).toBe('ab😀…');
  });

  it('quotes a value as JSON, clipped outside the quotes', () => {
    expect(quote('a"b')).toBe('"a\\"b"');
    expect(quote('x'.repeat(1000), 10)).toBe(`"${'x'.repeat(10)}"…`);
    expect(quote('a\nb')).toBe('"a\\nb"'); // one line
    expect(quote(5)).toBe('5');
    expect(quote(undefined)).toBe('undefined');
    expect(quote({ k: 'v'.repeat(1000) }, 20)).toBe('{"k":"vvvvvvvvvvvvvv…');
  });

  it('names a few items of a long list and counts the rest', () => {
    expect(listSome(['a', 'b'])).toBe('a, b');
    expect(listSome(Array.from({ length: 10_000 }, (_, i) => `img${i}`))).toBe('img0, img1, img2, img3, img4 and 9995 more');
  });

  it('bounds every novabox error message and hint, whatever it quotes', () => {
    const big = 'y'.repeat(1 << 20);
    const e = new BadRequest(`invalid thing ${big}`, { hint: big });
    expect(e.message.length).toBeLessThanOrEqual(MESSAGE_MAX_CHARS + 1);
    expect(e.message.startsWith('invalid thing yyy')).toBe(true);
    expect(e.message.endsWith('…')).toBe(true);
    expect(e.hint!.length).toBeLessThanOrEqual(MESSAGE_MAX_CHARS + 1);
    expect(new NovaboxError('internal', 'short').message).toBe('short');
    expect(boundMessage('ok')).toBe('ok');
  });
});
