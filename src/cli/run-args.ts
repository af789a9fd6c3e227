/**
 * `novabox run`'s command line without commander, for the usual case: building the
 * commander program (an Option object per flag, each split and camel-cased by regular
 * expressions run for the first time) and parsing with it cost ~1.3 ms of every start.
 *
 * It reads argv exactly as commander does for the `run` command that commands/run.ts
 * declares (passThroughOptions: options end at the first operand or at `--`; `--opt v`,
 * `--opt=v`, `-x v`, `-xv`, grouped flags `-it`; a repeated option: the last wins, or
 * collected), and gives up (undefined) on anything else: help, an unknown or malformed
 * option, a missing value, a value commander or its parser would reject. Commander
 * then parses argv as before and reports the error in its own words.
 * test/unit/cli/run-args.test.ts checks it against commander, flag table included.
 */

/** commander's opts() of the run command */
export interface RunCliOptions {
  rm?: true;
  name?: string;
  hostname?: string;
  memory?: string;
  cpus?: string;
  pidsLimit?: number;
  env: string[];
  workdir?: string;
  user?: string;
  interactive?: true;
  tty?: true;
  network: string;
  readOnly?: true;
  volume: string[];
  publish: string[];
  securityOpt: string[];
  rootfs?: string;
  userns?: string;
  dryRun?: true;
}

type Key = keyof RunCliOptions;

/** flags taking a value; the collected ones are repeatable */
export const RUN_VALUE_FLAGS: Record<string, Key> = {
  '--name': 'name',
  '--hostname': 'hostname',
  '-m': 'memory',
  '--memory': 'memory',
  '--cpus': 'cpus',
  '--pids-limit': 'pidsLimit',
  '-e': 'env',
  '--env': 'env',
  '-w': 'workdir',
  '--workdir': 'workdir',
  '-u': 'user',
  '--user': 'user',
  '--network': 'network',
  '-v': 'volume',
  '--volume': 'volume',
  '-p': 'publish',
  '--publish': 'publish',
  '--security-opt': 'securityOpt',
  '--rootfs': 'rootfs',
  '--userns': 'userns',
};
export const RUN_BOOLEAN_FLAGS: Record<string, Key> = {
  '--rm': 'rm',
  '-i': 'interactive',
  '--interactive': 'interactive',
  '-t': 'tty',
  '--tty': 'tty',
  '--read-only': 'readOnly',
  '--dry-run': 'dryRun',
};
export const RUN_COLLECTED: ReadonlySet<Key> = new Set(['env', 'volume', 'publish', 'securityOpt']);
export const RUN_NETWORKS = ['novabox', 'none', 'host'];
export const RUN_USERNS = ['auto', 'host'];

/** argv after the word `run`: the image, the command and the options, or undefined */
export function parseRunArgs(args: readonly string[]): { image?: string; command: string[]; opts: RunCliOptions } | undefined {
  const o: RunCliOptions = { env: [], network: 'novabox', volume: [], publish: [], securityOpt: [] };
  const set = (key: Key, value: string): boolean => {
    if (RUN_COLLECTED.has(key)) (o[key] as string[]).push(value);
    else if (key === 'pidsLimit') {
      if (!/^\d+$/.test(value) || Number(value) < 1) return false; // int('--pids-limit', 1) throws
      o.pidsLimit = Number(value);
    } else if (key === 'network') {
      if (!RUN_NETWORKS.includes(value)) return false;
      o.network = value;
    } else if (key === 'userns') {
      if (!RUN_USERNS.includes(value)) return false;
      o.userns = value;
    } else (o as unknown as Record<string, string>)[key] = value;
    return true;
  };
  let operands: string[] = [];
  let i = 0;
  while (i < args.length) {
    const arg = args[i++];
    if (arg === '--') {
      operands = args.slice(i);
      break;
    }
    if (arg.length < 2 || arg[0] !== '-') {
      operands = args.slice(i - 1);
      break;
    }
    const valueKey = RUN_VALUE_FLAGS[arg];
    if (valueKey) {
      if (i >= args.length || !set(valueKey, args[i++])) return undefined;
      continue;
    }
    const flagKey = RUN_BOOLEAN_FLAGS[arg];
    if (flagKey) {
      (o as unknown as Record<string, boolean>)[flagKey] = true;
      continue;
    }
    if (arg[1] !== '-') {
      // -xVALUE, or a group of flags whose last member may take the rest as its value
      let j = 1;
      for (; j < arg.length; j++) {
        const short = `-${arg[j]}`;
        const k = RUN_VALUE_FLAGS[short];
        if (k) {
          if (j + 1 === arg.length || !set(k, arg.slice(j + 1))) return undefined; // "-e" last: not this simple case
          break;
        }
        const f = RUN_BOOLEAN_FLAGS[short];
        if (!f) return undefined;
        (o as unknown as Record<string, boolean>)[f] = true;
      }
      continue;
    }
    const eq = arg.indexOf('=');
    const k = eq > 2 ? RUN_VALUE_FLAGS[arg.slice(0, eq)] : undefined;
    if (!k || !set(k, arg.slice(eq + 1))) return undefined;
  }
  return { image: operands[0], command: operands.slice(1), opts: o };
}
