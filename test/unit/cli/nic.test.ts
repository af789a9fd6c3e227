import { describe, expect, it } from 'vitest';
import { parseNic } from '../../../src/cli/commands/server/create.js';

describe('--nic', () => {
  it.each([
    ['none', { network: 'none' }],
    ['auto', { network: 'novabox' }],
    ['net-id=novabox', { network: 'novabox', fixedIp: undefined }],
    ['net-id=novabox,v4-fixed-ip=10.89.0.9', { network: 'novabox', fixedIp: '10.89.0.9' }],
  ])('%s', (spec, want) => {
    expect(parseNic(spec)).toEqual(want);
  });

  it.each([
    ['net-id=private', /network "private" not found/],
    ['v4-fixed-ip=10.0.0.1', /network "" not found/],
    ['port-id=abc', /expected net-id=novabox/],
  ])('refuses %s', (spec, msg) => {
    expect(() => parseNic(spec)).toThrow(msg);
  });
});
