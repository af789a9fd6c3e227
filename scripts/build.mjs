// Bundles src/ into dist/novabox.cjs with esbuild at install time: bin/novabox never
// compiles TypeScript at run time. One CommonJS file starts faster than ESM chunks
// (no ESM loader, no resolution per chunk), and bin/novabox adds a V8 code cache.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { koffiNativePath } from './koffi-path.mjs';
import { standInSource } from './lazy-builtins.mjs';
import { shebangFor, writeLauncher } from './launcher.mjs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });

const DEFINE = {
  NOVABOX_VERSION: JSON.stringify(pkg.version),
  // koffi.node relative to the project, or null: koffi's own loader (src/sys/native.ts)
  NOVABOX_KOFFI_NODE: JSON.stringify(koffiNativePath(fileURLToPath(new URL('..', import.meta.url)))),
  'import.meta.url': '__nb_meta.url',
  'import.meta.dirname': '__dirname',
};
/**
 * node:child_process (with net and dgram behind it), node:zlib, node:stream/promises
 * (all of node:stream behind it) and node:tty load in ~1.5-4 ms each per start, yet most
 * commands never call them: commander requires child_process at load time (for
 * executable subcommands, which novabox does not use), the image modules use GNU tar,
 * gunzip and pipeline() on import paths only, src/cli/commands/image.ts (part of the
 * bundle's top level) imports pipeline for `image save`, and `run` wants a tty only with -t.
 * node:http and node:https (~3 ms with node:tls, node:crypto and node:net behind them) serve
 * only `image build`'s downloads, yet src/images/debootstrap.ts is initialised with the image
 * service, as by `image list`.
 * node:module (~0.4 ms: it loads the ES module loader) only serves createRequire on rare
 * paths; bin/novabox takes the loader's Module class from `module.constructor`. Every
 * importer gets a stand-in that loads the real module when one of its functions is first
 * used (but see SRC_ONLY). Named imports only (esbuild reads
 * `mod.fn` at the call), which is how src/ imports them.
 */
const LAZY_BUILTINS = /^(node:)?(child_process|zlib|crypto|stream|stream\/promises|tty|module|os|http|https)$/;
/**
 * node:crypto (~1.5-2.5 ms: the store's modules import it for ids and password hashes),
 * node:http, node:https (fastify reads their non-function exports), node:stream and node:stream/promises (~1.5 ms, with the stream classes: cli/commands/image.ts is loaded
 * by every command) are stand-ins for novabox's own sources only: a dependency may use an
 * export that is not a function (crypto.webcrypto, crypto.constants).
 */
const SRC_ONLY = /^(node:)?(crypto|stream|stream\/promises|os|http|https)$/;
/**
 * node:os (~0.2 ms to load) only gives `run` its `constants`: the signal numbers on every
 * run (the kernel's ABI, the same for every run of this build on this machine), so the
 * stand-in carries them as data taken at build time; the rest of `constants` (errno names,
 * wanted on errors only) and every function load node:os on first use.
 */
const BAKED = {
  os: `export const constants = Object.freeze({ signals: Object.freeze(${JSON.stringify(os.constants.signals)}), ${Object.keys(os.constants)
    .filter((k) => k !== 'signals')
    .map((k) => `get ${k}() { return load().constants.${k}; }`)
    .join(', ')} });\n`,
};
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: LAZY_BUILTINS }, (args) =>
      // the stand-in's own require is the real module
      args.namespace === 'novabox-lazy' || (SRC_ONLY.test(args.path) && !/[\\/]src[\\/]/.test(args.importer))
        ? { path: args.path, external: true }
        : { path: args.path.replace(/^node:/, ''), namespace: 'novabox-lazy' },
    );
    // the stand-in: scripts/lazy-builtins.mjs
    b.onLoad({ filter: /.*/, namespace: 'novabox-lazy' }, (args) => {
      const real = createRequire(import.meta.url)(`node:${args.path}`);
      return { contents: standInSource(args.path, real, BAKED[args.path] ?? ''), loader: 'js' };
    });
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
  define: DEFINE,
  // import.meta.url made on first use: a process's first pathToFileURL costs ~0.5 ms
  banner: { js: "var __nb_meta = { get url() { return (this.u ??= require('node:url').pathToFileURL(__filename).href); } };" },
  logLevel: 'warning',
};

await build({
  ...common,
  plugins: [lazyBuiltins],
  entryPoints: ['src/api/serve.ts'],
  outfile: 'dist/novabox-api.cjs',
  external: ['koffi', 'tar', '*.node'],
});

/**
 * What the command-line bundles share. Native addons and what is loaded only on rare paths
 * stay ordinary dependencies. Whitespace and comments are minified only (names and syntax
 * stay; the source map maps back): every start reads the file and V8 takes it whole even
 * with a code cache, ~1 ms less for 531 -> 368 KB here. --minify-syntax would save little
 * more; --keep-names costs 0.6 ms.
 */
const cli = { ...common, external: ['koffi', 'tar', '*.node'], minifyWhitespace: true };

/**
 * What bin/novabox loads (the full CLI, the command bundles, the run bundles) is written
 * already in a function expression of Node's module wrapper's parameters, and ASCII
 * (esbuild escapes everything else; checked by `launcherBundle`): the launcher maps the
 * file and hands V8 its pages as the script's source (native-bindings/src/napi.c
 * mapScript), with no copy, decoding or concatenation on the JavaScript heap. Such a file
 * is not a module: nothing require()s it.
 */
const WRAP_OPEN = '(function (exports, require, module, __filename, __dirname) {';
const launched = {
  banner: { js: `${WRAP_OPEN}${common.banner.js}` },
  footer: { js: '})' },
  charset: 'ascii',
};
/** Check a bundle bin/novabox maps: its function expression, and nothing but ASCII. */
function launcherBundle(file) {
  const buf = readFileSync(file);
  if (
    !buf.subarray(0, WRAP_OPEN.length).equals(Buffer.from(WRAP_OPEN)) ||
    !buf
      .toString('latin1')
      .replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '')
      .trimEnd()
      .endsWith('})')
  )
    throw new Error(`${file}: not in the launcher's function expression`);
  const at = buf.findIndex((b) => b > 0x7f);
  if (at >= 0) throw new Error(`${file}: byte ${at} is not ASCII (bin/novabox maps it as Latin-1)`);
}

await build({
  ...cli,
  // names too, as the run bundles (below): the file 644 -> 488 KB, its code cache ~6% smaller;
  // ~0.5 ms less per start to read, deserialise and initialise it. Nothing in src/ reads a
  // function's or class's name; commander names its errors after their classes
  // (this.constructor.name), which novabox never prints (main.ts takes them by class).
  // NOVABOX_BUILD_NAMES=1 keeps the names (whitespace minified only): a --cpu-prof of a
  // command then reads without the source map.
  ...launched,
  minify: process.env.NOVABOX_BUILD_NAMES !== '1',
  plugins: [lazyBuiltins, apiBundleApart],
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/novabox.cjs',
});
launcherBundle('dist/novabox.cjs');

/**
 * One bundle per command (dist/verbs/<word>.cjs, <word> the launcher's: `server-list`,
 * `flavor`, `ps`): the full CLI's entry with every other command's module left out, so a
 * cold `server list` reads, deserialises and initialises neither create's nor `image
 * build`'s code. The command tree's two dispatch tables (src/cli/main.ts's GROUPS,
 * src/cli/commands/server/index.ts's SERVER_VERBS) name each command's register function;
 * here, an import from one of those two files of another command's module gets a stand-in
 * whose every export throws NOVABOX_FULL_BUNDLE. Those functions run only while commander's
 * program is built (help, an unknown verb, completion build them all), before any command
 * acted: main() then returns 'full' and bin/novabox runs the line with dist/novabox.cjs.
 * Verbs one register function serves (list and show, the actions) share one file, linked.
 */
const MAIN_TS = resolvePath('src/cli/main.ts');
const SERVER_TS = resolvePath('src/cli/commands/server/index.ts');
/** A dispatch table's entries: word -> the module (absolute .ts path) that registers it. */
function dispatchTable(file, table) {
  const src = readFileSync(file, 'utf8');
  const from = new Map();
  for (const m of src.matchAll(/import \{([^}]*)\} from '(\.[^']+)\.js'/g))
    for (const n of m[1].split(',')) from.set(n.trim().replace(/^.* as /, ''), resolvePath(dirname(file), `${m[2]}.ts`));
  const body = src.slice(src.indexOf(table)).match(/\{([^}]*)\}/)[1];
  const words = new Map();
  for (const m of body.matchAll(/^\s*([\w-]+):\s*(\w+),/gm)) {
    if (!from.has(m[2])) throw new Error(`${file}: ${m[1]}'s ${m[2]} is not imported by name`);
    words.set(m[1], from.get(m[2]));
  }
  if (words.size < 2) throw new Error(`${file}: no ${table} table found`);
  return words;
}
/** The names a module exports (esbuild fails the build on an import the stand-in lacks). */
function exportNames(file) {
  const src = readFileSync(file, 'utf8');
  const names = [...src.matchAll(/^export (?:async )?(?:function\*?|const|let|class) ([\w$]+)/gm)].map((m) => m[1]);
  for (const m of src.matchAll(/^export \{([^}]*)\}/gm)) for (const n of m[1].split(',')) names.push(n.trim().replace(/^.* as /, ''));
  return names.filter(Boolean);
}
function leaveOutCommands(keep) {
  return {
    name: 'leave-out-commands',
    setup(b) {
      b.onResolve({ filter: /\.js$/ }, (args) => {
        if (args.importer !== MAIN_TS && args.importer !== SERVER_TS) return undefined;
        const ts = resolvePath(dirname(args.importer), args.path.replace(/\.js$/, '.ts'));
        if (keep.has(ts) || !/[\\/]src[\\/]cli[\\/]commands[\\/]/.test(ts)) return undefined;
        return { path: ts, namespace: 'novabox-other-command' };
      });
      b.onLoad({ filter: /.*/, namespace: 'novabox-other-command' }, (args) => ({
        contents: exportNames(args.path)
          .map(
            (n) =>
              `export function ${n}() { throw Object.assign(new Error(${JSON.stringify(`${args.path}: not in this bundle`)}), { code: 'NOVABOX_FULL_BUNDLE' }); }\n`,
          )
          .join(''),
        loader: 'js',
      }));
    },
  };
}
const groups = dispatchTable(MAIN_TS, 'GROUPS');
const serverVerbs = dispatchTable(SERVER_TS, 'SERVER_VERBS');
/** word -> the modules kept; completion describes every command (the full bundle). */
const commandBundles = new Map();
for (const [group, mod] of groups) {
  // completion describes every command; serve loads dist/novabox-api.cjs beside its own file
  if (group === 'completion' || group === 'serve') continue;
  if (group !== 'server') commandBundles.set(group, new Set([mod]));
}
for (const [verb, mod] of serverVerbs)
  if (!verb.startsWith('_')) commandBundles.set(`server-${verb}`, new Set([groups.get('server'), mod]));
mkdirSync('dist/verbs');
const built = new Map(); // the kept modules -> the file built for them
for (const [word, keep] of commandBundles) {
  const key = [...keep].sort().join('\n');
  const out = `dist/verbs/${word}.cjs`;
  if (built.has(key)) {
    try {
      linkSync(built.get(key), out);
    } catch {
      copyFileSync(built.get(key), out); // a filesystem without hard links
    }
    continue;
  }
  await build({
    ...cli,
    ...launched,
    minify: process.env.NOVABOX_BUILD_NAMES !== '1',
    sourcemap: false,
    plugins: [lazyBuiltins, apiBundleApart, leaveOutCommands(keep)],
    entryPoints: ['src/cli/main.ts'],
    outfile: out,
  });
  launcherBundle(out);
  built.set(key, out);
}

/**
 * `novabox run`'s own bundle (src/cli/run-main.ts): bin/novabox loads it for a `run` line
 * that run-args.ts accepts, so a start reads, deserialises and initialises only the run
 * path: no commander, no other command. The state database and the compute service
 * (`--network novabox` only) are in it behind dynamic imports: esbuild wraps them in
 * functions that run on first import, so `--network none` never initialises them.
 * Modules that must not be in it at all fail the build (checked on esbuild's metafile).
 */
const RUN_FORBIDDEN = /node_modules\/(commander|fastify|@fastify)\/|src\/cli\/commands\/|src\/api\//;
/**
 * The run bundles are minified whole, names too (the source map has them): V8 reads and
 * deserialises less on every start (the local bundle 98 -> 70 KB, its code cache 160 ->
 * 152 KB: -0.7 ms to read it, -0.5 ms to deserialise, measured). Nothing in src/ reads a
 * function's or class's name (error names are string literals).
 */
const runCli = { ...cli, minify: true };

/**
 * Build src/cli/run-main.ts into `outfile` and check it: no module matching `forbidden`
 * (esbuild's metafile), and no relative require (bin/novabox hands the bundle its own
 * require, which resolves from bin/, not dist/). Returns the metafile.
 */
async function buildRunBundle(outfile, plugins, forbidden) {
  const r = await build({ ...runCli, ...launched, plugins, entryPoints: ['src/cli/run-main.ts'], outfile, metafile: true });
  const strays = Object.keys(r.metafile.inputs).filter((f) => forbidden.test(f));
  if (strays.length) throw new Error(`${outfile} must not contain: ${strays.join(', ')}`);
  if (/\brequire\(["']\.\.?\//.test(readFileSync(outfile, 'utf8'))) throw new Error(`${outfile} must not require a relative path`);
  launcherBundle(outfile);
  return r.metafile;
}

const runMeta = await buildRunBundle('dist/novabox-run.cjs', [lazyBuiltins], RUN_FORBIDDEN);
if (process.env.NOVABOX_METAFILE) writeFileSync(process.env.NOVABOX_METAFILE, JSON.stringify(runMeta));

/**
 * The same entry once more, for a `run` on `--network none|host` with its image in place
 * (dist/novabox-run-local.cjs, what bin/novabox loads for such a line): the modules `run`
 * reaches only by dynamic import on the bridge network (the store, the compute service)
 * or on first use of an image (building busybox, materialising layers) are left out (70
 * KB against 193, both minified). A start reads it and deserialises its code cache in
 * ~2 ms less: V8's cache holds every function of the script, run or not. Importing one of
 * the modules left out gets a stand-in that throws NOVABOX_FULL_BUNDLE before `run`
 * changed anything; the entry then returns 'full' (run-action.ts), and bin/novabox runs
 * the line again with dist/novabox-run.cjs.
 */
const FULL_ONLY = /[\\/]src[\\/](compute[\\/](open|servers)|store[\\/]db|images[\\/]service|images[\\/]materialize)\.js$/;
const leaveOut = {
  name: 'leave-out',
  setup(b) {
    b.onResolve({ filter: /\.js$/ }, (args) =>
      args.kind === 'dynamic-import' && FULL_ONLY.test(resolvePath(dirname(args.importer), args.path))
        ? { path: args.path, namespace: 'novabox-full-only' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'novabox-full-only' }, (args) => ({
      contents: `throw Object.assign(new Error(${JSON.stringify(`${args.path}: not in this bundle`)}), { code: 'NOVABOX_FULL_BUNDLE' });\n`,
      loader: 'js',
    }));
  },
};
const LOCAL_FORBIDDEN = new RegExp(
  `${RUN_FORBIDDEN.source}|src\\/compute\\/(?!run\\.ts)|src\\/store\\/|src\\/images\\/(busybox|materialize|service|layers)\\.ts|node_modules\\/better-sqlite3\\/`,
);
await buildRunBundle('dist/novabox-run-local.cjs', [lazyBuiltins, leaveOut], LOCAL_FORBIDDEN);

/**
 * novabox-oci (src/oci/main.ts): the OCI runtime command line, a bundle of its own with
 * nothing of the CLI, the API, the store or the image store in it.
 */
await buildRunBundleLike(
  'dist/novabox-oci.cjs',
  'src/oci/main.ts',
  /node_modules\/(commander|fastify|@fastify|better-sqlite3)\/|src\/(cli|api|compute|store|images)\//,
);

async function buildRunBundleLike(outfile, entry, forbidden) {
  // minified whole, names too, as the run bundles: `create` reads and deserialises it once per container
  const r = await build({ ...runCli, plugins: [lazyBuiltins], entryPoints: [entry], outfile, metafile: true });
  const strays = Object.keys(r.metafile.inputs).filter((f) => forbidden.test(f));
  if (strays.length) throw new Error(`${outfile} must not contain: ${strays.join(', ')}`);
}

// bin/novabox: bin/launcher.cjs with this node's absolute path as its #! line (scripts/launcher.mjs)
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
writeLauncher(here('../bin/launcher.cjs'), here('../bin/novabox'), shebangFor(process.execPath));
// bin/novabox-oci: the C executable (native-bindings/src/oci.c), which execs bin/novabox-oci-js
// (bin/oci-launcher.cjs with the same #! line) for what it does not do itself
writeLauncher(here('../bin/oci-launcher.cjs'), here('../bin/novabox-oci-js'), shebangFor(process.execPath));
// (without the native build, e.g. `node scripts/build.mjs` alone: the JS front end serves every verb, slower)
if (existsSync(here('../native-bindings/build/novabox-oci'))) {
  const ociTmp = here(`../bin/novabox-oci.${process.pid}`);
  copyFileSync(here('../native-bindings/build/novabox-oci'), ociTmp);
  chmodSync(ociTmp, 0o755);
  renameSync(ociTmp, here('../bin/novabox-oci'));
} else {
  console.warn('native-bindings/build/novabox-oci is not built (make -C native-bindings): bin/novabox-oci is the JS front end alone');
  writeLauncher(here('../bin/oci-launcher.cjs'), here('../bin/novabox-oci'), shebangFor(process.execPath));
}
