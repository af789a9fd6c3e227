/**
 * src/cli/context.ts: a command's output goes to fd 1 and 2 with write(2). A reader that
 * went away (EPIPE) ends the output without failing the command; a full non-blocking
 * descriptor (EAGAIN) hands the rest to process.stdout; a short write is finished.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { newContext, output } from '../../../src/cli/context.js';

const errno = (code: string) => Object.assign(new Error(code), { code });

describe('command output', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes the whole text to its descriptor', () => {
    const calls: [number, string][] = [];
    vi.spyOn(output, 'writeSync').mockImplementation(((fd: number, s: string) => {
      calls.push([fd, String(s)]);
      return Buffer.byteLength(String(s));
    }) as typeof output.writeSync);
    const ctx = newContext([]);
    ctx.stdout('tête\n');
    ctx.stderr('oops\n');
    ctx.stdout('');
    expect(calls).toEqual([
      [1, 'tête\n'],
      [2, 'oops\n'],
    ]);
  });

  it('finishes a short write from where it stopped', () => {
    const got: Buffer[] = [];
    vi.spyOn(output, 'writeSync').mockImplementation(((_fd: number, data: string | Buffer, offset?: number) => {
      if (typeof data === 'string') return 3; // "tê" is 3 bytes: a short write
      got.push(data.subarray(offset));
      return data.length - (offset ?? 0);
    }) as typeof output.writeSync);
    newContext([]).stdout('tête\n');
    expect(Buffer.concat(got).toString()).toBe('te\n');
  });

  it('drops the rest of the output once the reader is gone (EPIPE), without an error', () => {
    const write = vi.spyOn(output, 'writeSync').mockImplementation((() => {
      throw errno('EPIPE');
    }) as typeof output.writeSync);
    const ctx = newContext([]);
    expect(() => ctx.stdout('a\n')).not.toThrow();
    ctx.stdout('b\n');
    expect(write).toHaveBeenCalledTimes(1);
  });

  it('hands a full non-blocking descriptor (EAGAIN) to the stream', () => {
    vi.spyOn(output, 'writeSync').mockImplementation((() => {
      throw errno('EAGAIN');
    }) as typeof output.writeSync);
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    const ctx = newContext([]);
    ctx.stdout('a\n');
    ctx.stdout('b\n');
    expect(out.join('')).toBe('a\nb\n');
  });

  it('lets other errors through', () => {
    vi.spyOn(output, 'writeSync').mockImplementation((() => {
      throw errno('EIO');
    }) as typeof output.writeSync);
    expect(() => newContext([]).stdout('a\n')).toThrow('EIO');
  });
});
