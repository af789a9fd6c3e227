import { describe, expect, it } from 'vitest';
import { Conflict, NotFound } from '../../../src/errors.js';
import { errorLine, reportError, type CliContext } from '../../../src/cli/context.js';

describe('an error on stderr', () => {
  it('is one sentence, what to do in parentheses', () => {
    expect(errorLine(new Conflict('an image named "x" already exists', { hint: 'pick another name, or delete that image first' }))).toBe(
      'an image named "x" already exists (pick another name, or delete that image first)',
    );
    expect(errorLine(new Conflict('image "x" is in use by 1 server (web)', { hint: 'delete or rebuild those servers first' }))).toBe(
      'image "x" is in use by 1 server (web); delete or rebuild those servers first',
    );
    expect(errorLine(new NotFound('server "ghost" not found'))).toBe('server "ghost" not found');
  });

  it('is written as one line with the exit status of its code', () => {
    let err = '';
    const ctx = { stderr: (s: string) => (err += s), debug: false } as unknown as CliContext;
    expect(
      reportError(
        new Conflict('container name "kept" is already in use', { hint: 'remove it with "novabox rm" or pick another --name' }),
        ctx,
      ),
    ).toBe(4);
    expect(err).toBe('novabox: container name "kept" is already in use (remove it with "novabox rm" or pick another --name)\n');
  });
});
