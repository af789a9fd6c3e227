#!/usr/bin/env node
// The guards that run before the unit tests (`npm test`, or alone: `npm run guards`):
// the type check (tsc --noEmit), the linter (Biome), the format check (Biome; `npm run
// format` applies it; code only, Markdown is left as written) and the layer check
// (dependency-cruiser, .dependency-cruiser.cjs).
// Each prints its own diagnostics; the result is the list of the guards that failed.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const GUARDS = [
  { name: 'type check (tsc --noEmit)', cmd: ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.'] },
  { name: 'lint (biome lint)', cmd: ['node_modules/@biomejs/biome/bin/biome', 'lint', '--error-on-warnings', '.'] },
  { name: 'format (biome format)', cmd: ['node_modules/@biomejs/biome/bin/biome', 'format', '.'] },
  {
    name: 'layers (depcruise)',
    cmd: [
      'node_modules/dependency-cruiser/bin/dependency-cruise.mjs',
      '--config',
      '.dependency-cruiser.cjs',
      '--output-type',
      'err',
      'src',
    ],
  },
];

/** Runs every guard (stdio inherited); returns the names of those that failed. */
export function runGuards(env = process.env) {
  const failed = [];
  for (const g of GUARDS) {
    process.stdout.write(`-- ${g.name}\n`);
    const r = spawnSync(process.execPath, g.cmd, { stdio: 'inherit', env });
    if (r.status !== 0) failed.push(g.name);
  }
  return failed;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const failed = runGuards();
  process.stdout.write(failed.length ? `guards failed: ${failed.join(', ')}\n` : 'guards passed\n');
  process.exit(failed.length ? 1 : 0);
}
