// Bundles src/ into dist/novabox.cjs with esbuild at install time: bin/novabox never
// compiles TypeScript at run time. One CommonJS file starts faster than ESM chunks
// (no ESM loader, no resolution per chunk), and bin/novabox adds a V8 code cache.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/novabox.cjs',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // native addons and what is loaded only on rare paths stay ordinary dependencies
  external: ['koffi', 'better-sqlite3', 'tar'],
  define: { NOVABOX_VERSION: JSON.stringify(pkg.version), 'import.meta.url': '__nb_import_meta_url' },
  banner: { js: "var __nb_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
