import type { Command } from 'commander';
import { BadRequest } from '../../../errors.js';

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--property k=v` (repeatable) -> { k: v } */
export function keyValues(items: string[] | undefined, flag = '--property'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw new BadRequest(`invalid ${flag} ${JSON.stringify(item)}: expected KEY=VALUE`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

export function positiveInt(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new BadRequest(`invalid ${name} ${JSON.stringify(v)}: expected a whole number >= 1`);
    return Number(v);
  };
}

export function seconds(name: string) {
  return (v: string): number => {
    if (!/^\d+(\.\d+)?$/.test(v)) throw new BadRequest(`invalid ${name} ${JSON.stringify(v)}: expected seconds`);
    return Number(v);
  };
}

/** --wait is accepted on every mutating verb: the CLI is daemonless, so actions finish before it returns. */
export function waitOption(cmd: Command): Command {
  return cmd.option('--wait', 'wait for the action to complete (always the case: novabox has no daemon)');
}

/** `--override-lock` on every verb a lock refuses: the CLI is admin of its root, but acts on a locked server only when told to. */
export function lockOption(cmd: Command): Command {
  return cmd.option('--override-lock', 'act on a locked server anyway (as an admin may through the API)');
}
