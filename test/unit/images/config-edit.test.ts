import { describe, expect, it } from 'vitest';
import { applyConfigPatch, checkConfigFlags, parseCommand, parseStopSignal } from '../../../src/images/config-edit.js';
import type { ImageConfig } from '../../../src/model/records.js';

const base: ImageConfig = { cmd: ['sh'], env: ['PATH=/bin', 'A=1'], workingDir: '/', user: '' };

describe('image configuration from flags', () => {
  it.each([
    ['["nginx", "-g", "daemon off;"]', ['nginx', '-g', 'daemon off;']],
    ['echo $HOME', ['/bin/sh', '-c', 'echo $HOME']],
    ['', []],
  ])('command %j -> %j', (v, out) => expect(parseCommand('--command', v)).toEqual(out));

  it.each(['[1]', '[]', '["a"'])('command %j is refused', (v) => {
    expect(() => parseCommand('--command', v)).toThrow(/invalid --command/);
  });

  it.each([
    ['SIGINT', 'SIGINT'],
    ['term', 'SIGTERM'],
    ['15', '15'],
    ['SIGRTMIN+3', 'SIGRTMIN+3'],
  ])('stop signal %j -> %j', (v, out) => expect(parseStopSignal(v)).toBe(out));
  it.each(['NOPE', '0', '99', ''])('stop signal %j is refused', (v) => expect(() => parseStopSignal(v)).toThrow(/--stop-signal/));

  it.each([
    [{ workdir: 'srv' }, /--workdir/],
    [{ env: ['=x'] }, /--env/],
    [{ env: ['A B=1'] }, /--env/],
    [{ user: 'a b' }, /--user/],
    [{ unsetEnv: ['A=1'] }, /--env/],
  ])('%j is refused', (flags, msg) => expect(() => checkConfigFlags(flags)).toThrow(msg));

  it('applies env (replacing a name), workdir, user, stop signal and the server command', () => {
    const p = checkConfigFlags({ env: ['A=2', 'B=3'], workdir: '/srv', user: 'www:www', stopSignal: 'INT', command: '["httpd"]' });
    expect(applyConfigPatch(base, p)).toEqual({
      cmd: ['sh'],
      env: ['PATH=/bin', 'A=2', 'B=3'],
      workingDir: '/srv',
      user: 'www:www',
      stopSignal: 'SIGINT',
      serverCmd: ['httpd'],
    });
    expect(applyConfigPatch(base, checkConfigFlags({ unsetEnv: ['A'] })).env).toEqual(['PATH=/bin']);
  });

  it('entrypoint and cmd: cmd is the whole default command; a new entrypoint clears the arguments unless --cmd gives them', () => {
    const e = applyConfigPatch(base, checkConfigFlags({ entrypoint: '["echo", "E"]' }));
    expect(e).toMatchObject({ entrypoint: ['echo', 'E'], cmd: ['echo', 'E'] });
    const c = applyConfigPatch(e, checkConfigFlags({ cmd: '["x"]' }));
    expect(c).toMatchObject({ entrypoint: ['echo', 'E'], cmd: ['echo', 'E', 'x'] });
    const both = applyConfigPatch(c, checkConfigFlags({ entrypoint: '["printf"]', cmd: '["%s\\n", "y"]' }));
    expect(both).toMatchObject({ entrypoint: ['printf'], cmd: ['printf', '%s\n', 'y'] });
    const none = applyConfigPatch(both, checkConfigFlags({ entrypoint: '' }));
    expect(none.entrypoint).toBeUndefined();
    expect(none.cmd).toEqual([]);
  });
});
