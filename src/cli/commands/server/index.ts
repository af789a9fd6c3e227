import type { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { registerCreate } from './create.js';
import { registerList } from './list.js';
import { registerActions } from './actions.js';
import { registerExec } from './exec.js';
import { registerLogs } from './logs.js';
import { registerCp } from './cp.js';
import { registerStats } from './stats.js';
import { registerEvents } from './event.js';
import { registerImage } from './image.js';
import { registerMigrate, registerMigration } from './migration.js';
import { registerVolume } from './volume.js';

/** `verb`: the one verb of the command line; a function serving several builds only that one's command (all without it) */
type Register = (server: Command, ctx: CliContext, verb?: string) => void;

/**
 * Which function registers each verb. A command line naming one builds only that
 * function's commands: every verb's commander options cost a cold start ~2 ms for the
 * whole group. Help, or a word not here, builds them all (test/unit/cli/server-verbs.test.ts
 * checks that this table names every verb, and the function that registers it).
 */
export const SERVER_VERBS: Readonly<Record<string, Register>> = {
  create: registerCreate,
  list: registerList,
  show: registerList,
  start: registerActions,
  stop: registerActions,
  reboot: registerActions,
  pause: registerActions,
  unpause: registerActions,
  lock: registerActions,
  unlock: registerActions,
  suspend: registerActions,
  resume: registerActions,
  set: registerActions,
  unset: registerActions,
  delete: registerActions,
  _exited: registerActions,
  exec: registerExec,
  logs: registerLogs,
  cp: registerCp,
  stats: registerStats,
  event: registerEvents,
  image: registerImage,
  backup: registerImage,
  rebuild: registerImage,
  export: registerMigration,
  import: registerMigration,
  migrate: registerMigrate,
  receive: registerMigrate,
  add: registerVolume,
  remove: registerVolume,
};

const ALL: Register[] = [
  registerCreate,
  registerList,
  registerActions,
  registerExec,
  registerLogs,
  registerCp,
  registerStats,
  registerEvents,
  registerImage,
  registerMigration,
  registerMigrate,
  registerVolume,
];

/** `argv` is the command line after `novabox`. */
export function register(program: Command, ctx: CliContext, argv: string[] = []): void {
  const server = program
    .command('server')
    .description('long-lived containers as OpenStack-Nova-style servers (openstack server ... grammar)');
  const words = argv.filter((a) => !a.startsWith('-'));
  const verb = words[0] === 'server' ? words[1] : undefined;
  const only = verb !== undefined && Object.hasOwn(SERVER_VERBS, verb) && !argv.includes('--help') && !argv.includes('-h');
  if (only) SERVER_VERBS[verb]!(server, ctx, verb);
  else for (const r of ALL) r(server, ctx);
}
