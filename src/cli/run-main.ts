/**
 * The `run`-only entry (dist/novabox-run.cjs): what `novabox run` needs and nothing else,
 * no commander, no other command, no database until `--network novabox` asks for it
 * (ctx.compute(), loaded lazily inside this bundle). bin/novabox loads it for a command
 * line starting with `run`; main() returns undefined when run-args.ts does not accept the
 * line (help, an unusual or bad option), and the launcher hands the line to the full CLI
 * (dist/novabox.cjs), which parses it with commander as before.
 *
 * The same entry makes dist/novabox-run-local.cjs, for `--network none|host` lines: the
 * bridge network's and the first-use image paths' modules left out; main() resolves to
 * FULL_BUNDLE when the line needs one of them (scripts/build.mjs).
 */
import { type FULL_BUNDLE, runParsedLine } from './run-action.js';
import { trace } from '../util/trace.js';
export { exitNow } from '../util/exit.js';
export { cacheable } from '../util/cache-hint.js';

trace('main loaded');

/** argv without node and the script; undefined: not a line for this bundle. */
export function main(argv: string[]): Promise<number | typeof FULL_BUNDLE> | undefined {
  return runParsedLine(argv);
}
