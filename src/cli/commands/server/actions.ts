import type { Command } from 'commander';
import { parseRestart } from '../../../compute/restart.js';
import type { CliContext } from '../../context.js';
import { collect, keyValues, lockOption, seconds, waitOption } from './common.js';

/**
 * Verbs that change a server's state; each takes one or more servers, like `openstack
 * server stop`. `only`: the verb the command line names (index.ts): the others' commands
 * are not built (each costs a cold start its options).
 */
export function registerActions(server: Command, ctx: CliContext, only?: string): void {
  const each = async (names: string[], fn: (name: string) => Promise<unknown> | unknown) => {
    for (const n of names) await fn(n);
  };
  const want = (verb: string) => only === undefined || only === verb;

  if (want('start')) {
    lockOption(waitOption(server.command('start').description('start stopped servers').argument('<server...>', 'names or ids'))).action(
      async (names: string[], o) => {
        const c = await ctx.compute();
        await each(names, (n) => c.start(n, c.localCaller({ overrideLock: o.overrideLock })));
      },
    );
  }

  if (want('stop')) {
    lockOption(
      waitOption(
        server
          .command('stop')
          .description('stop servers: the stop signal, then SIGKILL after --timeout seconds')
          .argument('<server...>', 'names or ids')
          .option('--timeout <seconds>', 'grace period before everything is killed', seconds('--timeout'), 10),
      ),
    ).action(async (names: string[], o) => {
      const c = await ctx.compute();
      await each(names, async (n) => {
        const { step } = await c.stop(n, c.localCaller({ overrideLock: o.overrideLock }), { timeoutMs: o.timeout * 1000 });
        if (ctx.debug)
          ctx.stderr(
            `novabox: ${n}: stopped by ${step === 'kill' ? 'SIGKILL after the timeout' : step === 'signal' ? 'the stop signal' : 'nothing (it was not running)'}\n`,
          );
      });
    });
  }

  if (want('reboot')) {
    lockOption(
      waitOption(
        server
          .command('reboot')
          .description('reboot servers (soft: stop + start keeping the writable layer; --hard: kill + start)')
          .argument('<server...>', 'names or ids')
          .option('--hard', 'kill instead of a graceful stop')
          .option('--soft', 'graceful stop (default)')
          .option('--timeout <seconds>', 'grace period of a soft reboot', seconds('--timeout'), 10),
      ),
    ).action(async (names: string[], o) => {
      const c = await ctx.compute();
      await each(names, (n) =>
        c.reboot(n, c.localCaller({ overrideLock: o.overrideLock }), { hard: Boolean(o.hard), timeoutMs: o.timeout * 1000 }),
      );
    });
  }

  for (const [verb, desc] of [
    ['pause', 'freeze every process of servers (cgroup freezer)'],
    ['unpause', 'thaw paused servers'],
    ['lock', 'lock servers: state changes and delete are refused until unlock (or with --override-lock)'],
    ['unlock', 'unlock servers'],
  ] as const) {
    if (!want(verb)) continue;
    const cmd = waitOption(server.command(verb).description(desc).argument('<server...>', 'names or ids'));
    if (verb === 'pause' || verb === 'unpause') lockOption(cmd);
    cmd.action(async (names: string[], o) => {
      const c = await ctx.compute();
      await each(names, (n) => c[verb](n, c.localCaller({ overrideLock: o.overrideLock })));
    });
  }

  const suspendHelp = `
suspend freezes every process of the server (the cgroup freezer), then gives its memory
back to the host: on cgroup v2, memory.reclaim drops its page cache and, when the host has
swap, pushes its anonymous memory to swap (the flavor's "no swap" is lifted while it is
suspended). Without swap, or on cgroup v1 (no memory.reclaim), the anonymous memory stays
in RAM: suspend is then a freeze, like pause. While suspended every other action but
resume, delete, snapshot and a hard reboot is refused (409). resume thaws it; swapped
pages come back as the processes touch them.

Example:
  novabox server suspend web1 && novabox server resume web1`;
  if (want('suspend')) {
    lockOption(
      waitOption(
        server
          .command('suspend')
          .description('suspend servers: freeze them and give their memory back to the host (see below)')
          .argument('<server...>', 'names or ids')
          .addHelpText('after', suspendHelp),
      ),
    ).action(async (names: string[], o) => {
      const c = await ctx.compute();
      await each(names, (n) => c.suspend(n, c.localCaller({ overrideLock: o.overrideLock })));
    });
  }
  if (want('resume')) {
    lockOption(
      waitOption(
        server
          .command('resume')
          .description('resume suspended servers (thaw them)')
          .argument('<server...>', 'names or ids')
          .addHelpText('after', suspendHelp),
      ),
    ).action(async (names: string[], o) => {
      const c = await ctx.compute();
      await each(names, (n) => c.resume(n, c.localCaller({ overrideLock: o.overrideLock })));
    });
  }

  if (want('set')) {
    server
      .command('set')
      .description('set properties (metadata) or the restart policy of a server')
      .argument('<server>', 'name or id')
      .option('--property <key=value>', 'property to set (repeatable)', collect, [])
      .option('--restart <policy>', 'no, always, on-failure or on-failure:N (see server create --help); from its next start on')
      .option('--override-lock', 'act on a locked server anyway (as an admin may through the API)')
      .action(async (name: string, o) => {
        const c = await ctx.compute();
        const caller = c.localCaller({ overrideLock: o.overrideLock });
        const props = keyValues(o.property);
        if (o.restart !== undefined) parseRestart(o.restart); // bad input changes nothing
        if (o.property.length || o.restart === undefined) c.setProperties(name, props, caller);
        if (o.restart !== undefined) c.setRestart(name, o.restart, caller);
      });
  }

  // what the monitor of a server with a restart policy runs after the server's command exited
  if (want('_exited')) {
    server
      .command('_exited', { hidden: true })
      .argument('<id>')
      .action(async (id: string) => {
        const c = await ctx.compute();
        await c.afterExit(id);
      });
  }

  if (want('unset')) {
    server
      .command('unset')
      .description('remove properties of a server')
      .argument('<server>', 'name or id')
      .option('--property <key>', 'property to remove (repeatable)', collect, [])
      .option('--override-lock', 'act on a locked server anyway (as an admin may through the API)')
      .action(async (name: string, o) => {
        const c = await ctx.compute();
        c.unsetProperties(name, o.property, c.localCaller({ overrideLock: o.overrideLock }));
      });
  }

  if (want('delete')) {
    lockOption(
      waitOption(
        server
          .command('delete')
          .description('delete servers, stopping them first (Nova deletes running servers)')
          .argument('<server...>', 'names or ids')
          .option('--force', 'kill at once instead of a graceful stop')
          .option('--timeout <seconds>', 'grace period of the stop', seconds('--timeout'), 10),
      ),
    ).action(async (names: string[], o) => {
      const c = await ctx.compute();
      await each(names, (n) =>
        c.delete(n, c.localCaller({ overrideLock: o.overrideLock }), { force: Boolean(o.force), timeoutMs: o.timeout * 1000 }),
      );
    });
  }
}
