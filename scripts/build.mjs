// Bundles src/ into dist/ with esbuild at install time: bin/novabox never compiles
// TypeScript at run time, and one file (plus lazily loaded chunks) starts fastest.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: { novabox: 'src/cli/main.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // native addons and anything with a .node file stay as ordinary dependencies
  external: ['koffi', 'better-sqlite3', 'tar'],
  define: { NOVABOX_VERSION: JSON.stringify(pkg.version) },
  chunkNames: 'chunks/[name]-[hash]',
  // CommonJS dependencies (commander) call require() for node builtins
  banner: { js: "import { createRequire as __nbCreateRequire } from 'node:module'; const require = __nbCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
