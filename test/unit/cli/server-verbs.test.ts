/**
 * src/cli/commands/server/index.ts builds only the verb a command line names (SERVER_VERBS):
 * the table must name every `server` verb, with the function that registers it, or a verb
 * would be missing from its own command line.
 */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { newContext } from '../../../src/cli/context.js';
import { buildProgram } from '../../../src/cli/main.js';
import { SERVER_VERBS } from '../../../src/cli/commands/server/index.js';

const verbsOf = (program: Command, group: string) =>
  program.commands
    .find((c) => c.name() === group)!
    .commands.map((c) => c.name())
    .sort();

describe('server verbs', () => {
  const all = verbsOf(buildProgram(newContext([]), []), 'server');

  it('the table names every verb the whole group registers', () => {
    expect(all.length).toBeGreaterThan(15);
    expect(Object.keys(SERVER_VERBS).sort()).toEqual(all);
  });

  it.each(all)('a line naming %s builds that verb, and not the whole group', (verb) => {
    const got = verbsOf(buildProgram(newContext([]), ['server', verb, 'x']), 'server');
    expect(got).toContain(verb);
    expect(got.length).toBeLessThan(all.length);
  });

  it.each(['list', 'show', 'start', 'stop', 'reboot', 'pause', 'unpause', 'lock', 'unlock', 'suspend', 'resume', 'set', 'unset', 'delete'])(
    'a line naming %s builds that verb alone, though its function registers others too',
    (verb) => {
      expect(verbsOf(buildProgram(newContext([]), ['server', verb, 'x']), 'server')).toEqual([verb]);
    },
  );

  it.each([[['server', 'list', '--help']], [['server', 'lst']], [['server']]])(
    '%j builds the whole group (help, a suggestion for a typo)',
    (argv) => {
      expect(verbsOf(buildProgram(newContext([]), argv), 'server')).toEqual(all);
    },
  );
});
