import { describe, expect, it } from 'vitest';
import { parseCopyArg } from '../../../src/cli/commands/server/cp.js';

describe('parseCopyArg', () => {
  it.each([
    ['web:/etc/hostname', { server: 'web', path: '/etc/hostname' }],
    ['web:', { server: 'web', path: '/' }],
    ['./a:b', { path: './a:b' }],
    ['/tmp/x:y', { path: '/tmp/x:y' }],
    ['file', { path: 'file' }],
  ])('%j', (arg, out) => expect(parseCopyArg(arg)).toEqual(out));
  it('refuses an empty server name', () => expect(() => parseCopyArg(':/x')).toThrow(/no server name/));
});
