// Bundles src/ into dist/novabox.cjs with esbuild at install time: bin/novabox never
// compiles TypeScript at run time. One CommonJS file starts faster than ESM chunks
// (no ESM loader, no resolution per chunk), and bin/novabox adds a V8 code cache.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
/**
 * commander requires node:child_process at load time (for executable subcommands, which
 * novabox does not use); that pulls in net and stream: ~5 ms on every start. Give it a
 * stand-in that loads the real module only if one of its functions is ever called.
 */
const lazyChildProcessForCommander = {
  name: 'lazy-child-process-for-commander',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      /commander/.test(args.importer) ? { path: 'lazy-child-process', namespace: 'novabox-lazy' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'novabox-lazy' }, () => ({
      contents:
        "module.exports = new Proxy({}, { get: (_, key) => require('node:child_process')[key] });",
      loader: 'js',
    }));
  },
};

/** `novabox serve` loads the API (fastify included) from its own bundle, only when it runs. */
const apiBundleApart = {
  name: 'api-bundle-apart',
  setup(b) {
    b.onResolve({ filter: /api\/serve\.js$/ }, (args) =>
      /cli\/commands\/serve\.ts$/.test(args.importer) ? { path: './novabox-api.cjs', external: true } : undefined,
    );
  },
};

const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  define: { NOVABOX_VERSION: JSON.stringify(pkg.version), 'import.meta.url': '__nb_import_meta_url' },
  banner: { js: "var __nb_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
};

await build({
  ...common,
  plugins: [lazyChildProcessForCommander],
  entryPoints: ['src/api/serve.ts'],
  outfile: 'dist/novabox-api.cjs',
  external: ['koffi', 'tar', '*.node'],
});

await build({
  plugins: [lazyChildProcessForCommander, apiBundleApart],
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/novabox.cjs',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // native addons and what is loaded only on rare paths stay ordinary dependencies
  external: ['koffi', 'tar', '*.node'],
  define: { NOVABOX_VERSION: JSON.stringify(pkg.version), 'import.meta.url': '__nb_import_meta_url' },
  banner: { js: "var __nb_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
